"""Training chapter figure: the learning rate of the Tang-poem run at every step, computed with
llmarch.training.schedule.lr_at from the run's settings (llmarch.lab.tang_run.SETTINGS).

Redraw it alone: ``python docs/figures/training_lr_schedule.py`` (writes into docs/figures/_build/).
"""

from __future__ import annotations

from _common import labels, run_alone, save, setup


def schedule():
    """(steps, rates, settings) of the Tang run's warm-up + cosine schedule."""
    from llmarch.lab.tang_run import SETTINGS
    from llmarch.training.schedule import lr_at

    train = SETTINGS["train"]
    steps = list(range(train["steps"]))
    rates = [lr_at(s, max_lr=train["lr"], total_steps=train["steps"], warmup_steps=train["warmup_steps"],
                   min_lr=train["lr"] * train["min_lr_ratio"]) for s in steps]
    return steps, rates, train


def draw(out_dir):
    import matplotlib.pyplot as plt

    cjk = setup()
    steps, rates, train = schedule()
    paths = []
    for lang in ("zh", "en"):
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.axvspan(0, train["warmup_steps"], color="#dddddd", alpha=0.6,
                   label=labels(f"线性预热（{train['warmup_steps']} 步）",
                                f"linear warm-up ({train['warmup_steps']} steps)", lang, cjk))
        ax.plot(steps, rates, color="#4c72b0", linewidth=1.8,
                label=labels("预热 + 余弦衰减", "warm-up + cosine decay", lang, cjk))
        floor = train["lr"] * train["min_lr_ratio"]
        ax.axhline(floor, color="#555555", linestyle="--", linewidth=1,
                   label=labels(f"下限 min_lr = {floor:g}", f"floor min_lr = {floor:g}", lang, cjk))
        ax.set_xlabel(labels("优化器步数", "optimizer step", lang, cjk))
        ax.set_ylabel(labels("学习率", "learning rate", lang, cjk))
        ax.set_xlim(0, train["steps"])
        ax.set_ylim(0, train["lr"] * 1.1)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, -3))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "training_lr_schedule", lang))
    return paths


if __name__ == "__main__":
    run_alone(draw)
