"""Chapter 5.3 figure: the held-out loss per predicted token of a causal LM and a masked LM trained
with the same compute (every seed), and linear probes of every layer for three properties,
trained and at initialisation; the tables (both languages) and the run's summary, included in
the page. The build stops when a statement the page makes about the run does not hold for it
(``why_harder_task.claims``).

The run is llmarch.lab.why_causal_vs_mlm (shared with section 5.2): it trains only when its cache
(keyed by a hash of the code and settings) has no result. Redraw alone:
``python docs/figures/why_harder_task.py``; the same numbers on the command line:
``python -m llmarch lab harder-task``.
"""

from __future__ import annotations

from _common import run_alone, save, save_tables, save_text, setup, texts_for


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.lab.claims import require
    from llmarch.lab.why_causal_vs_mlm import causal_vs_mlm
    from llmarch.lab.why_harder_task import claims, markdown_table, ngram_markdown, plot_harder, probe_table, summary

    cjk = setup()
    result = causal_vs_mlm(verbose=True)
    require(claims(result), "section 5.3, a harder task")  # the page's reading of the numbers
    paths = []
    for lang in ("zh", "en"):
        texts = texts_for(
            lang, cjk,
            causal=("因果语言模型", "causal LM"), bidirectional=("掩码语言模型", "masked LM"),
            word_position=("在词中的第几个字母", "letters into the word"), two_back=("往前第二个字符", "character two back"),
            next_char=("下一个字符", "next character"), step=("优化器步数", "optimizer step"),
            loss=("留出集损失（每个被预测词元）", "held-out loss per predicted token"),
            curves=("训练（读入的词元相同）", "training (same tokens read)"),
            accuracy=("探针准确率（留出集）", "probe accuracy (held-out)"), state=("之后", "after"),
            embeddings=("嵌入", "embeddings"), trained=("训练后", "trained"), initial=("初始化", "initialisation"),
            majority=("多数类基线", "most common answer"),
        )
        fig, axes = plt.subplots(1, 4, figsize=(18, 3.9))
        plot_harder(result, list(axes), labels=texts)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "why_harder_task", lang))
    for stem, table in (("why_harder_task_table", markdown_table), ("why_harder_task_probes", probe_table),
                        ("why_harder_task_ngram", ngram_markdown)):
        paths += save_tables(out_dir, stem, table, result)
    return paths + [save_text(out_dir, "why_harder_task_run.txt", summary(result))]


if __name__ == "__main__":
    run_alone(draw)
