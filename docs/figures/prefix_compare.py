"""Chapter 4.4 figure: held-out loss while training a causal decoder, a prefix LM and an
encoder-decoder on the digit-sorting task (every seed, both conditions); and the results table
(mean ± spread over the seeds) in both languages, plus the run's summary, included in the page.

The run is llmarch.lab.prefix_compare: it trains only when its cache (keyed by a hash of the code
and settings) has no result. Redraw alone: ``python docs/figures/prefix_compare.py``; the same
numbers on the command line: ``python -m llmarch lab prefix-compare``.
"""

from __future__ import annotations

from pathlib import Path

from _common import labels, save, setup


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.lab.prefix_compare import prefix_compare
    from llmarch.lab.prefix_compare_report import markdown_table, plot_results, summary

    cjk = setup()
    result = prefix_compare(verbose=True)
    paths = []
    for lang in ("zh", "en"):
        texts = {
            "causal": labels("因果 decoder", "causal decoder", lang, cjk),
            "prefix": labels("Prefix-LM", "prefix LM", lang, cjk),
            "encdec": labels("Encoder-Decoder", "encoder-decoder", lang, cjk),
            "step": labels("优化器步数", "optimizer step", lang, cjk),
            "loss": labels("留出集损失（nats / 目标词元）", "held-out loss (nats / target token)", lang, cjk),
            "title_varied": labels("源序列 3–8 位，原样输入", "sources of 3-8 digits, as they are", lang, cjk),
            "title_padded": labels("同样的源序列，左侧补齐到 8 个词元", "the same sources, left-padded to 8 tokens",
                                   lang, cjk),
        }
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
        plot_results(result, axes, labels=texts)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "prefix_compare", lang))
    for lang, name in (("zh", "prefix_compare_table.txt"), ("en", "prefix_compare_table.en.txt")):
        path = out_dir / name
        path.write_text(markdown_table(result, lang) + "\n", encoding="utf-8")
        paths.append(path)
    text = out_dir / "prefix_compare_run.txt"
    text.write_text(summary(result) + "\n", encoding="utf-8")
    return paths + [text]


if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "_build"
    out.mkdir(exist_ok=True)
    print("\n".join(str(p) for p in draw(out)))
