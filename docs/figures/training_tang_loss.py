"""Training chapter figure: training and validation loss of the Tang-poem GPT (every seed), with
the unigram entropy of the characters; and the run's summary with samples, included in the page
as text (``training_tang_run.txt``).

The run is llmarch.lab.tang_run: it trains only when its cache (keyed by a hash of the code,
corpus and settings) has no result. Redraw alone: ``python docs/figures/training_tang_loss.py``.
"""

from __future__ import annotations

from pathlib import Path

from _common import labels, save, setup


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.lab.tang_run import plot_losses, summary, tang_run

    cjk = setup()
    result = tang_run(verbose=True)
    paths = []
    for lang in ("zh", "en"):
        texts = {
            "train": labels("训练损失（种子 {seed}，10 步平均）", "training loss (seed {seed}, mean of 10 steps)",
                            lang, cjk),
            "val": labels("验证损失，种子 {seed}", "validation loss, seed {seed}", lang, cjk),
            "unigram": labels("字符的一元熵（{h:.2f} nats）", "unigram entropy of the characters ({h:.2f} nats)",
                              lang, cjk),
            "uniform": labels("词表上的均匀分布 log V（{v:.2f} nats）", "uniform over the vocabulary, log V ({v:.2f} nats)",
                              lang, cjk),
            "step": labels("优化器步数", "optimizer step", lang, cjk),
            "loss": labels("损失（nats / 字符）", "loss (nats / character)", lang, cjk),
        }
        fig, ax = plt.subplots(figsize=(7, 4))
        plot_losses(result, ax, labels=texts)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "training_tang_loss", lang))
    text = out_dir / "training_tang_run.txt"
    text.write_text(summary(result) + "\n", encoding="utf-8")
    return paths + [text]


if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "_build"
    out.mkdir(exist_ok=True)
    print("\n".join(str(p) for p in draw(out)))
