"""Chapter 5.1 figure: exact match during training of a causal decoder, a prefix LM and an
encoder-decoder on a mixture of instructed digit tasks -- on the trained task types and on the
held-out ones (every seed); the results table in both languages and the run's summary, which
the page includes. The build stops when a statement the page makes about the run does not hold
for it (``why_zero_shot_report.claims``).

The run is llmarch.lab.why_zero_shot: it trains only when its cache (keyed by a hash of the code
and settings) has no result. Redraw alone: ``python docs/figures/why_zero_shot.py``; the same
numbers on the command line: ``python -m llmarch lab zero-shot``.
"""

from __future__ import annotations

from _common import run_alone, save, save_tables, save_text, setup, texts_for

#: The figure's texts, (Chinese, English).
LABELS = {
    "causal": ("因果 decoder", "causal decoder"),
    "prefix": ("Prefix-LM", "prefix LM"),
    "encdec": ("Encoder-Decoder", "encoder-decoder"),
    "step": ("优化器步数", "optimizer step"),
    "match": ("完全匹配率", "exact match"),
    "trained": ("训练过的任务类型（没见过的数字串）", "trained task types (unseen strings)"),
    "heldout": ("留出的任务类型（从未训练）", "held-out task types (never trained)"),
}


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.lab.claims import require
    from llmarch.lab.why_zero_shot import why_zero_shot
    from llmarch.lab.why_zero_shot_report import claims, markdown_table, plot_results, summary

    cjk = setup()
    result = why_zero_shot()
    require(claims(result), "section 5.1, zero-shot generalisation")  # the page's reading of the numbers
    written = []
    for lang in ("zh", "en"):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
        plot_results(result, axes, labels=texts_for(lang, cjk, **LABELS))
        fig.tight_layout()
        written.append(save(fig, out_dir, "why_zero_shot", lang))
    written += save_tables(out_dir, "why_zero_shot_table", markdown_table, result)
    return written + [save_text(out_dir, "why_zero_shot_run.txt", summary(result))]


if __name__ == "__main__":
    run_alone(draw)
