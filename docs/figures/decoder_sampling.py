"""Chapter 1 figure: how temperature, top-k and top-p reshape one next-token distribution
(computed with llmarch.models.sampling.process_logits; the original distribution in grey behind)."""

from __future__ import annotations

import torch

from _common import labels, save, setup


def panels():
    """(zh title, en title, probabilities (vocab,)) for each setting."""
    from llmarch.models.sampling import process_logits

    logits = torch.tensor([3.0, 2.4, 2.0, 1.5, 1.2, 0.8, 0.5, 0.2, -0.2, -0.6, -1.0, -1.5])
    settings = [
        ("原始分布（T = 1）", "original (T = 1)", {}),
        ("温度 T = 0.5", "temperature T = 0.5", {"temperature": 0.5}),
        ("温度 T = 2", "temperature T = 2", {"temperature": 2.0}),
        ("top-k，k = 3", "top-k, k = 3", {"top_k": 3}),
        ("top-p，p = 0.8", "top-p, p = 0.8", {"top_p": 0.8}),
    ]
    return [(zh, en, process_logits(logits[None], **kw)[0].softmax(-1)) for zh, en, kw in settings]


def draw(out_dir):
    import matplotlib.pyplot as plt

    cjk = setup()
    data = panels()
    paths = []
    for lang in ("zh", "en"):
        fig, axes = plt.subplots(1, len(data), figsize=(14, 2.8), sharey=True)
        for ax, (zh, en, probs) in zip(axes, data):
            ax.bar(range(len(probs)), data[0][2].numpy(), color="#dddddd", width=0.9)  # the original, behind
            ax.bar(range(len(probs)), probs.numpy(), color="#c44e52", width=0.55)
            ax.set_title(labels(zh, en, lang, cjk))
            ax.set_xlabel(labels("词元（按 logit 从大到小）", "token (by logit, high to low)", lang, cjk))
            ax.set_xticks([])
        axes[0].set_ylabel(labels("概率", "probability", lang, cjk))
        fig.tight_layout()
        paths.append(save(fig, out_dir, "decoder_sampling", lang))
    return paths
