"""Chapter 1 figures: attention weights of one self-attention layer (bidirectional vs causal),
and the causal mask next to what it does to the attention matrix."""

from __future__ import annotations

import torch

from _common import labels, save, setup

TOKENS = ["The", "cat", "sat", "on", "the", "mat", "."]


def weights():
    """Head-averaged weights ``(seq, seq)`` of a random layer, without and with the causal mask."""
    from llmarch import MultiHeadAttention

    torch.manual_seed(0)
    mha = MultiHeadAttention(d_model=32, num_heads=4).eval()
    x = torch.randn(1, len(TOKENS), 32) * 2
    with torch.no_grad():
        _, full = mha(x, return_weights=True)
        _, causal = mha(x, is_causal=True, return_weights=True)
    return full[0].mean(0), causal[0].mean(0)


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch import causal_mask
    from llmarch.nn.plotting import plot_attention, plot_mask

    cjk = setup()
    full, causal = weights()
    paths = []
    for lang in ("zh", "en"):
        fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.6))
        plot_attention(full, axes[0], tokens=TOKENS,
                       title=labels("双向自注意力的权重", "bidirectional self-attention weights", lang, cjk))
        title = labels("掩码（因果）自注意力的权重", "masked (causal) self-attention weights", lang, cjk)
        plot_attention(causal, axes[1], tokens=TOKENS, title=title)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "decoder_attention_weights", lang))

        fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.6))
        title = labels("因果掩码（深色 = 可以注意）", "causal mask (dark = may attend)", lang, cjk)
        plot_mask(causal_mask(len(TOKENS)), axes[0], tokens=TOKENS, title=title)
        plot_attention(causal, axes[1], tokens=TOKENS,
                       title=labels("掩码后：下三角、每行和为 1", "after masking: lower-triangular, rows sum to 1",
                                    lang, cjk))
        fig.tight_layout()
        paths.append(save(fig, out_dir, "decoder_causal_mask", lang))
    return paths
