"""Chapter 4.2 figure: UniLM's four self-attention masks (Dong et al. 2019, Figure 1), drawn by
``llmarch.training.unilm.unilm_attention_masks`` for 7 tokens (seq2seq: a source of 3).
Redraw alone: ``python docs/figures/prefix_unilm_masks.py``.
"""

from __future__ import annotations

from _common import labels, run_alone, save, setup

TITLES = {
    "bidirectional": ("双向 LM（1/3）", "bidirectional LM (1/3)"),
    "left_to_right": ("从左到右 LM（1/6）", "left-to-right LM (1/6)"),
    "right_to_left": ("从右到左 LM（1/6）", "right-to-left LM (1/6)"),
    "seq2seq": ("序列到序列 LM（1/3，源序列 3 个词元）", "seq2seq LM (1/3, source of 3)"),
}


def draw(out_dir):
    import matplotlib.pyplot as plt
    import torch

    from llmarch.nn.plotting import plot_mask
    from llmarch.training.unilm import UNILM_KINDS, unilm_attention_masks

    cjk = setup()
    n = 7
    masks = unilm_attention_masks(list(UNILM_KINDS), n, torch.tensor([0, 0, 0, 3]))
    tokens = ["s1", "s2", "s3", "t1", "t2", "t3", "t4"]
    paths = []
    for lang in ("zh", "en"):
        fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
        for ax, kind, mask in zip(axes, UNILM_KINDS, masks):
            zh, en = TITLES[kind]
            plot_mask(mask, ax, title=labels(zh, en, lang, cjk), tokens=tokens if kind == "seq2seq" else None)
            ax.set_xlabel(labels("被看的位置（key）", "attended position (key)", lang, cjk))
            ax.set_ylabel(labels("当前位置（query）", "current position (query)", lang, cjk))
        fig.suptitle(labels("同一组权重，四种掩码；括号里是每种目标在一个批次中所占的比例",
                            "one set of weights, four masks; in brackets: each objective's share of a batch",
                            lang, cjk), y=1.02)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "prefix_unilm_masks", lang))
    return paths


if __name__ == "__main__":
    run_alone(draw)
