"""Chapter 4.4 figure: held-out loss while training a causal decoder, a prefix LM and an
encoder-decoder on the digit-sorting task (every seed, both conditions); and the results table
(mean ± spread over the seeds) in both languages, plus the run's summary, included in the page.
The build stops when a statement the page makes about the run does not hold for it
(``prefix_compare_report.claims``).

The run is llmarch.lab.prefix_compare: it trains only when its cache (keyed by a hash of the code
and settings) has no result. Redraw alone: ``python docs/figures/prefix_compare.py``; the same
numbers on the command line: ``python -m llmarch lab prefix-compare``.
"""

from __future__ import annotations

from _common import run_alone, save, save_tables, save_text, setup, texts_for


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.lab.prefix_compare import prefix_compare
    from llmarch.lab.claims import require
    from llmarch.lab.prefix_compare_report import claims, markdown_table, plot_results, summary

    cjk = setup()
    result = prefix_compare(verbose=True)
    require(claims(result), "section 4.4, the comparison")  # the page's reading of the numbers
    paths = []
    for lang in ("zh", "en"):
        texts = texts_for(
            lang, cjk,
            causal=("因果 decoder", "causal decoder"),
            prefix=("Prefix-LM", "prefix LM"),
            encdec=("Encoder-Decoder", "encoder-decoder"),
            step=("优化器步数", "optimizer step"),
            loss=("留出集损失（nats / 目标词元）", "held-out loss (nats / target token)"),
            title_varied=("源序列 3–8 位，原样输入", "sources of 3-8 digits, as they are"),
            title_padded=("同样的源序列，左侧补齐到 8 个词元", "the same sources, left-padded to 8 tokens"),
        )
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
        plot_results(result, axes, labels=texts)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "prefix_compare", lang))
    paths += save_tables(out_dir, "prefix_compare_table", markdown_table, result)
    return paths + [save_text(out_dir, "prefix_compare_run.txt", summary(result))]


if __name__ == "__main__":
    run_alone(draw)
