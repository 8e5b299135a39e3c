"""Chapter 5.5 figure: a linear probe of the absolute position from each layer of causal and
masked language models with and without positions, what the probe reads from the NoPos models,
and the held-out loss of both kinds with five kinds of positions (every seed's spread); the
tables (both languages) and the run's summary, included in the page. The build stops when a
statement the page makes about the run does not hold for it (``why_positions_report.claims``).

The run is llmarch.lab.why_positions: it trains only when its cache (keyed by a hash of the code
and settings) has no result. Redraw alone: ``python docs/figures/why_positions.py``; the same
numbers on the command line: ``python -m llmarch lab positions``.
"""

from __future__ import annotations

from _common import run_alone, save, save_tables, save_text, setup, texts_for


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.lab.claims import require
    from llmarch.lab.why_positions import why_positions
    from llmarch.lab.why_positions_report import claims, markdown_table, plot_results, probe_table, summary

    cjk = setup()
    result = why_positions(verbose=True)
    require(claims(result), "section 5.5, positions")  # the page's reading of the numbers
    paths = []
    for lang in ("zh", "en"):
        texts = texts_for(
            lang, cjk,
            causal=("因果语言模型", "causal LM"), bidirectional=("掩码语言模型", "masked LM"),
            none=("无位置编码", "NoPos"), learned=("可学习位置", "learned"),
            layer=("层（0 = 嵌入）", "layer (0 = embeddings)"), r2=("位置探针的 R²", "R² of the position probe"),
            mean=("总猜平均位置", "predict the mean"), true=("真实位置", "true position"),
            predicted=("探针预测的位置（最后一层）", "predicted position (last layer)"),
            perfect=("完全正确", "perfect"),
            loss=("留出集损失（nats）", "held-out loss (nats)"), unigram=("一元熵", "unigram entropy"),
            title_probe=("从隐藏状态读出位置", "position from hidden states"),
            title_pred=("探针读出了什么（无位置编码）", "what the probe reads (NoPos)"),
            title_loss=("不同位置编码的损失", "loss by positions"),
            pos_learned=("可学习", "learned"), pos_sinusoidal=("正弦", "sinusoidal"), pos_rotary=("RoPE", "rotary"),
            pos_alibi=("ALiBi", "ALiBi"), pos_none=("无", "none"),
        )
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        plot_results(result, axes, labels=texts)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "why_positions", lang))
    for stem, table in (("why_positions_loss", markdown_table), ("why_positions_probe", probe_table)):
        paths += save_tables(out_dir, stem, table, result)
    return paths + [save_text(out_dir, "why_positions_run.txt", summary(result))]


if __name__ == "__main__":
    run_alone(draw)
