"""Original Transformer (post-LN, sinusoidal absolute positions) against T5 (pre-LN RMSNorm,
relative position buckets): the two sub-layer layouts, and T5's buckets computed by llmarch."""

from __future__ import annotations

import torch

from _common import labels, save, setup

# (zh, en, colour) from bottom to top; "+" is the residual addition
POST_LN = [("输入 x", "input x", "#eeeeee"), ("自注意力", "self-attention", "#bbdefb"), ("+ 残差", "+ residual", "#ffffff"),
           ("LayerNorm", "LayerNorm", "#c8e6c9"), ("前馈网络", "feed-forward", "#ffe0b2"), ("+ 残差", "+ residual", "#ffffff"),
           ("LayerNorm", "LayerNorm", "#c8e6c9")]
PRE_LN = [("输入 x", "input x", "#eeeeee"), ("RMSNorm", "RMSNorm", "#c8e6c9"), ("自注意力（+ 相对位置偏置）",
          "self-attention (+ relative bias)", "#bbdefb"), ("+ 残差", "+ residual", "#ffffff"), ("RMSNorm", "RMSNorm", "#c8e6c9"),
          ("前馈网络", "feed-forward", "#ffe0b2"), ("+ 残差", "+ residual", "#ffffff")]


def buckets():
    """T5's bucket of every relative distance -40..40 (bidirectional encoder, causal decoder)."""
    from llmarch.nn.relative import relative_position_bucket

    distance = torch.arange(-40, 41)
    return (distance, relative_position_bucket(distance, bidirectional=True),
            relative_position_bucket(distance, bidirectional=False))


def _stack(ax, layers, title, lang, cjk):
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    for i, (zh, en, colour) in enumerate(layers):
        y = 0.2 + i * 0.95
        ax.add_patch(FancyBboxPatch((0.3, y), 2.4, 0.6, boxstyle="round,pad=0.04", fc=colour, ec="#555555"))
        ax.text(1.5, y + 0.3, labels(zh, en, lang, cjk), ha="center", va="center", fontsize=9)
        if i:
            ax.add_patch(FancyArrowPatch((1.5, y - 0.33), (1.5, y - 0.02), arrowstyle="-|>", mutation_scale=10))
    ax.set_xlim(0, 3)
    ax.set_ylim(0, 0.2 + len(layers) * 0.95)
    ax.axis("off")
    ax.set_title(title, fontsize=10)


def draw(out_dir):
    import matplotlib.pyplot as plt

    cjk = setup()
    distance, encoder, decoder = buckets()
    paths = []
    for lang in ("zh", "en"):
        fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1, 1, 1.6]})
        _stack(axes[0], POST_LN, labels("原始 Transformer：Post-LN\n（残差相加之后归一化；正弦绝对位置加在输入上）",
                                        "original Transformer: post-LN\n(normalise after the residual add;\n"
                                        "sinusoidal absolute positions added to the input)", lang, cjk), lang, cjk)
        _stack(axes[1], PRE_LN, labels("T5：Pre-LN\n（归一化子层的输入，残差流不归一化；\n栈末尾再加一个 RMSNorm）",
                                       "T5: pre-LN\n(normalise the sub-layer input; the residual\n"
                                       "stream is not normalised; a final RMSNorm)", lang, cjk), lang, cjk)
        ax = axes[2]
        ax.step(distance, encoder, where="mid", label=labels("编码器（双向）", "encoder (bidirectional)", lang, cjk))
        ax.step(distance, decoder, where="mid", label=labels("解码器（因果）", "decoder (causal)", lang, cjk))
        ax.set_xlabel(labels("相对距离 key − query", "relative distance key − query", lang, cjk))
        ax.set_ylabel(labels("桶编号（每个桶每个头一个可学习标量）", "bucket (one learned scalar per bucket and head)",
                             lang, cjk))
        ax.set_title(labels("T5 的相对位置桶（32 个桶，max_distance 128）",
                            "T5 relative position buckets (32 buckets, max_distance 128)", lang, cjk), fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "encdec_transformer_t5", lang))
    return paths
