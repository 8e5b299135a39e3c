"""Training chapter figure: training and validation loss of the Tang-poem GPT (every seed), with
the unigram entropy of the characters; and the run's summary with samples, included in the page
as text (``training_tang_run.txt``). The build stops when a statement the page makes about the
run does not hold for it (``tang_run.claims``).

The run is llmarch.lab.tang_run: it trains only when its cache (keyed by a hash of the code,
corpus and settings) has no result. Redraw alone: ``python docs/figures/training_tang_loss.py``.
"""

from __future__ import annotations

from _common import run_alone, save, save_text, setup, texts_for


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.lab.claims import require
    from llmarch.lab.tang_run import claims, plot_losses, summary, tang_run

    cjk = setup()
    result = tang_run(verbose=True)
    require(claims(result), "training chapter, Tang poems")  # the page's reading of the run
    paths = []
    for lang in ("zh", "en"):
        texts = texts_for(
            lang, cjk,
            train=("训练损失（种子 {seed}，10 步平均）", "training loss (seed {seed}, mean of 10 steps)"),
            val=("验证损失，种子 {seed}", "validation loss, seed {seed}"),
            unigram=("字符的一元熵（{h:.2f} nats）", "unigram entropy of the characters ({h:.2f} nats)"),
            uniform=("词表上的均匀分布 log V（{v:.2f} nats）", "uniform over the vocabulary, log V ({v:.2f} nats)"),
            step=("优化器步数", "optimizer step"),
            loss=("损失（nats / 字符）", "loss (nats / character)"),
        )
        fig, ax = plt.subplots(figsize=(7, 4))
        plot_losses(result, ax, labels=texts)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "training_tang_loss", lang))
    return paths + [save_text(out_dir, "training_tang_run.txt", summary(result))]


if __name__ == "__main__":
    run_alone(draw)
