"""The three masks of an encoder-decoder for one padded example, made by llmarch's mask functions:
encoder self-attention (padding), decoder self-attention (causal), cross-attention (source padding)."""

from __future__ import annotations

import torch

from _common import labels, save, setup


def masks():
    """(encoder (6, 6), decoder (4, 4), cross (4, 6)) bool masks: 4 source tokens + 2 padding."""
    from llmarch.nn.masks import causal_mask, cross_attention_mask, padding_mask

    source = torch.tensor([[1, 1, 1, 1, 0, 0]])
    encoder = padding_mask(source).expand(1, 1, 6, 6)[0, 0]
    return encoder, causal_mask(4), cross_attention_mask(source, 4)[0, 0]


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.nn.plotting import plot_mask

    cjk = setup()
    source = {"zh": ["我", "爱", "猫", "</s>", "pad", "pad"], "en": ["I", "love", "cats", "</s>", "pad", "pad"]}
    target = {"zh": ["<start>", "I", "love", "cats"], "en": ["<start>", "J'", "aime", "les"]}
    encoder, decoder, cross = masks()
    paths = []
    for lang in ("zh", "en"):
        src = source[lang] if cjk or lang == "en" else source["en"]
        tgt = target[lang] if cjk or lang == "en" else target["en"]
        fig, axes = plt.subplots(1, 3, figsize=(12, 4.0), gridspec_kw={"width_ratios": [6, 4, 6]})
        plot_mask(encoder, axes[0], tokens=src,
                  title=labels("① 编码器自注意力：填充掩码", "① encoder self-attention: padding", lang, cjk))
        plot_mask(decoder, axes[1], tokens=tgt,
                  title=labels("② 解码器自注意力：因果掩码", "② decoder self-attention: causal", lang, cjk))
        plot_mask(cross, axes[2], title=labels("③ 交叉注意力：源序列填充掩码", "③ cross-attention: source padding",
                                               lang, cjk))
        axes[2].set_xticks(range(6), src, rotation=45)
        axes[2].set_yticks(range(4), tgt)
        axes[2].set_xlabel(labels("编码器位置（key）", "encoder position (key)", lang, cjk))
        axes[2].set_ylabel(labels("解码器位置（query）", "decoder position (query)", lang, cjk))
        fig.suptitle(labels("深色 = 可以注意（True）", "dark = may attend (True)", lang, cjk), y=1.0)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "encdec_masks", lang))
    return paths
