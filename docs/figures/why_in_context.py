"""Section 5.4 figure: held-out error of in-context linear regression against the number of
demonstrations, for a causal decoder and a prefix LM trained alike (every seed and the mean),
beside the zero predictor, one gradient-descent step and least squares; and the error during
training. Plus the results table in both languages and the run's summary, included in the page.
The build stops when a statement the page makes about the run does not hold for it
(``why_in_context_report.claims``).

The run is llmarch.lab.why_in_context: it trains only when its cache (keyed by a hash of the
code and settings) has no result. Redraw alone: ``python docs/figures/why_in_context.py``; the
same numbers on the command line: ``python -m llmarch lab in-context``.
"""

from __future__ import annotations

from _common import run_alone, save, save_tables, save_text, setup, texts_for


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.lab.claims import require
    from llmarch.lab.why_in_context import why_in_context
    from llmarch.lab.why_in_context_report import claims, markdown_table, plot_results, summary

    cjk = setup()
    result = why_in_context(verbose=True)
    require(claims(result), "section 5.4, in-context learning")  # the page's reading of the numbers
    last = result["settings"]["task"]["max_examples"]
    paths = []
    for lang in ("zh", "en"):
        texts = texts_for(
            lang, cjk,
            causal=("因果 decoder", "causal decoder"),
            prefix=("Prefix-LM", "prefix LM"),
            zero=("恒为零", "zero predictor"),
            gd=("一步梯度下降（最佳步长）", "one GD step (best step size)"),
            least_squares=("最小二乘", "least squares"),
            k=("提示中的示例数 k", "demonstrations in the prompt (k)"),
            error=("留出集误差（MSE / d）", "held-out error (MSE / d)"),
            step=("优化器步数", "optimizer step"),
            title_k=("误差随示例数的变化", "error against the number of demonstrations"),
            title_steps=(f"训练过程中，k = {last}", f"during training, k = {last}"),
        )
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        plot_results(result, axes, labels=texts)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "why_in_context", lang))
    paths += save_tables(out_dir, "why_in_context_table", markdown_table, result)
    return paths + [save_text(out_dir, "why_in_context_run.txt", summary(result))]


if __name__ == "__main__":
    run_alone(draw)
