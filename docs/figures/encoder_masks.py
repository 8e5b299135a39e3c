"""Encoder-only (BERT) self-attention mask beside the decoder-only causal mask, for one padded
sequence: the encoder hides only the padding; the decoder also hides the future."""

from __future__ import annotations

import torch

from _common import labels, save, setup


def masks():
    """The two (q, k) bool masks of a 6-slot sequence with 5 real tokens and 1 padding slot."""
    from llmarch.nn.masks import causal_mask, combine_masks, padding_mask

    keys = padding_mask(torch.tensor([[1, 1, 1, 1, 1, 0]]))  # (1, 1, 1, 6)
    return keys.expand(1, 1, 6, 6)[0, 0], combine_masks(causal_mask(6), keys)[0, 0]


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.nn.plotting import plot_mask

    cjk = setup()
    tokens = ["[CLS]", "我", "爱", "猫", "[SEP]", "[PAD]"]
    tokens_en = ["[CLS]", "I", "love", "cats", "[SEP]", "[PAD]"]
    bidirectional, causal = masks()
    paths = []
    for lang in ("zh", "en"):
        words = tokens if lang == "zh" and cjk else tokens_en
        fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.8))
        plot_mask(bidirectional, axes[0], tokens=words,
                  title=labels("Encoder-only：双向 + 填充掩码", "encoder-only: bidirectional + padding", lang, cjk))
        plot_mask(causal, axes[1], tokens=words,
                  title=labels("Decoder-only：因果 + 填充掩码", "decoder-only: causal + padding", lang, cjk))
        fig.suptitle(labels("深色 = 可以注意（True）", "dark = may attend (True)", lang, cjk), y=1.0)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "encoder_masks", lang))
    return paths
