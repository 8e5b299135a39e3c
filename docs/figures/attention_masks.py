"""The four attention masks of the Transformer families, drawn with llmarch's own mask functions."""

from __future__ import annotations

import torch

from _common import labels, save, setup


def masks():
    """(key, zh title, en title, bool mask (q, k), x label key) for the four panels."""
    n = 6
    source = torch.tensor([[1, 1, 1, 1, 0]])  # 4 source tokens and one padding slot
    from llmarch.nn.masks import causal_mask, cross_attention_mask, prefix_lm_mask, unilm_mask

    return [
        ("bidirectional", "双向（Encoder-only）", "bidirectional (encoder-only)", unilm_mask("bidirectional", n)),
        ("causal", "因果（Decoder-only）", "causal (decoder-only)", causal_mask(n)),
        ("prefix", "前缀（Prefix-LM，前缀长 3）", "prefix-LM (prefix length 3)", prefix_lm_mask(3, n)[0, 0]),
        ("cross", "交叉注意力（Encoder-Decoder）", "cross-attention (encoder-decoder)", cross_attention_mask(source, 4)[0, 0]),
    ]


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.nn.plotting import plot_mask

    cjk = setup()
    paths = []
    for lang in ("zh", "en"):
        fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
        for ax, (key, zh, en, mask) in zip(axes, masks()):
            plot_mask(mask, ax, title=labels(zh, en, lang, cjk))
            if key == "cross":
                ax.set_xlabel(labels("编码器位置（key，最后一个是填充）", "encoder position (key; last = padding)", lang, cjk))
                ax.set_ylabel(labels("解码器位置（query）", "decoder position (query)", lang, cjk))
            else:
                ax.set_xlabel(labels("被看的位置（key）", "attended position (key)", lang, cjk))
                ax.set_ylabel(labels("当前位置（query）", "current position (query)", lang, cjk))
        fig.suptitle(labels("深色 = 可以注意（True）", "dark = may attend (True)", lang, cjk), y=1.02)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "attention_masks", lang))
    return paths
