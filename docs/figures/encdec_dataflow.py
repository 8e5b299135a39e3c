"""The data flow of an encoder-decoder: the encoder runs once over the source; every decoder
layer reads its output through cross-attention; the decoder writes the target token by token."""

from __future__ import annotations

from _common import labels, save, setup

BOXES = {
    # key: (x, y, width, height, zh, en, colour)
    "src": (0.2, 0.2, 2.6, 0.7, "源序列 x（含填充）", "source x (padded)", "#eeeeee"),
    "src_emb": (0.2, 1.3, 2.6, 0.7, "共享词嵌入（+ 位置）", "shared embedding (+ positions)", "#e3f2fd"),
    "enc": (0.2, 2.4, 2.6, 1.9, "编码器 × N\n双向自注意力\n前馈网络", "encoder × N\nbidirectional self-attention\nfeed-forward", "#bbdefb"),
    "mem": (0.2, 4.7, 2.6, 0.7, "编码器输出 H（只算一次）", "encoder states H (computed once)", "#90caf9"),
    "tgt": (4.2, 0.2, 2.8, 0.7, "目标右移一位：<start> $y_1 \\dots y_{t-1}$", "target shifted right: <start> $y_1 \\dots y_{t-1}$", "#eeeeee"),
    "tgt_emb": (4.2, 1.3, 2.8, 0.7, "共享词嵌入（+ 位置）", "shared embedding (+ positions)", "#fff3e0"),
    "dec": (4.2, 2.4, 2.8, 2.3, "解码器 × N\n因果自注意力（KV 缓存）\n交叉注意力：Q 来自解码器，\nK、V 来自 H\n前馈网络",
            "decoder × N\ncausal self-attention (KV cache)\ncross-attention: Q from decoder,\nK, V from H\nfeed-forward", "#ffe0b2"),
    "head": (4.2, 5.1, 2.8, 0.7, "输出投影（与词嵌入共享）+ softmax", "output projection (tied) + softmax", "#ffcc80"),
    "next": (4.2, 6.2, 2.8, 0.7, "下一个词元 $y_t$", "next token $y_t$", "#eeeeee"),
}
ARROWS = [("src", "src_emb"), ("src_emb", "enc"), ("enc", "mem"), ("tgt", "tgt_emb"), ("tgt_emb", "dec"),
          ("dec", "head"), ("head", "next")]


def draw(out_dir):
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    cjk = setup()
    paths = []
    for lang in ("zh", "en"):
        fig, ax = plt.subplots(figsize=(8.5, 7.2))
        centres = {}
        for key, (x, y, w, h, zh, en, colour) in BOXES.items():
            ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=colour, ec="#555555"))
            ax.text(x + w / 2, y + h / 2, labels(zh, en, lang, cjk), ha="center", va="center", fontsize=9)
            centres[key] = (x, y, w, h)

        def arrow(start, end, **kw):
            ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color="#333333", **kw))

        for a, b in ARROWS:
            xa, ya, wa, ha = centres[a]
            xb, yb, wb, _ = centres[b]
            arrow((xa + wa / 2, ya + ha + 0.05), (xb + wb / 2, yb - 0.05))
        # H feeds the cross-attention of every decoder layer
        xm, ym, wm, hm = centres["mem"]
        xd, yd, _, hd = centres["dec"]
        arrow((xm + wm + 0.05, ym + hm / 2), (xd - 0.05, yd + hd * 0.45), connectionstyle="arc3,rad=-0.2")
        ax.text(3.35, 5.0, labels("K、V", "K, V", lang, cjk), ha="center", fontsize=9, color="#1565c0")
        # autoregression: the new token is appended to the decoder input
        xn, yn, wn, hn = centres["next"]
        xt, yt, wt, ht = centres["tgt"]
        arrow((xn + wn + 0.05, yn + hn / 2), (xt + wt + 0.05, yt + ht / 2), connectionstyle="arc3,rad=-0.35",
              linestyle="--")
        ax.text(8.15, 3.5, labels("追加到解码器输入\n（自回归）", "appended to the\ndecoder input\n(autoregressive)",
                                  lang, cjk), ha="center", va="center", fontsize=8.5, color="#555555")
        ax.set_xlim(0, 8.9)
        ax.set_ylim(0, 7.1)
        ax.axis("off")
        ax.set_title(labels("Encoder-Decoder 的数据流", "Data flow of an encoder-decoder", lang, cjk))
        paths.append(save(fig, out_dir, "encdec_dataflow", lang))
    return paths
