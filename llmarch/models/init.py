"""Weight initialisation of GPT and BERT: N(0, 0.02) weights and embeddings, zero biases."""

from __future__ import annotations

import math

from torch import nn

__all__ = ["INIT_STD", "init_weights"]

INIT_STD = 0.02  # initializer_range of GPT-1/2 and BERT


def init_weights(model: nn.Module, std: float = INIT_STD, *, residual_layers: int | None = None) -> None:
    """N(0, ``std``) for every linear and embedding weight, zero biases; norms keep ones and zeros.

    Args:
        model: the module to initialise, in place.
        std: standard deviation (0.02 in GPT and BERT).
        residual_layers: GPT-2's scheme (Radford et al., 2019, §2.3): the projections that write
            into the residual stream (attention ``out_proj``, feed-forward ``down_proj``) get
            ``std / sqrt(2 * residual_layers)``, so the stream's variance does not grow with depth.
            ``None`` (BERT) scales nothing.

    >>> layer = nn.Linear(1000, 1000)
    >>> init_weights(layer)
    >>> round(layer.weight.std().item(), 2), layer.bias.abs().max().item()
    (0.02, 0.0)
    """
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            scaled = residual_layers is not None and name.endswith(("out_proj", "down_proj"))
            nn.init.normal_(module.weight, 0.0, std / math.sqrt(2 * residual_layers) if scaled else std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
