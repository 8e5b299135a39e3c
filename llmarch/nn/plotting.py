"""Pictures of masks and attention weights for the chapters (matplotlib is imported lazily)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .checks import check_ndim


def _as_matrix(name: str, values: Tensor) -> Tensor:
    """Squeeze leading size-1 dims so that a ``(1, 1, q, k)`` mask plots as ``(q, k)``."""
    while values.ndim > 2 and values.shape[0] == 1:
        values = values[0]
    check_ndim(name, values, 2, "(q_len, k_len) after squeezing leading size-1 dims")
    return values.detach().float().cpu()


def plot_mask(mask: Tensor, ax=None, *, title: str | None = None,
              tokens: Sequence[str] | None = None, cmap: str = "Blues"):
    """Draw a boolean attention mask as a grid (rows = queries, columns = keys).

    Args:
        mask: bool ``(q_len, k_len)`` (leading size-1 dims are squeezed).
        ax: a matplotlib ``Axes`` (a new figure when ``None``).
        title: axes title.
        tokens: optional labels for both axes.
        cmap: matplotlib colour map; allowed cells are dark.

    Returns:
        The ``Axes``.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = plot_mask(torch.ones(3, 3, dtype=torch.bool).tril(), title="causal")
    >>> ax.get_title()
    'causal'
    """
    import matplotlib.pyplot as plt

    matrix = _as_matrix("mask", mask)
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(matrix.numpy(), cmap=cmap, vmin=0, vmax=1)
    q_len, k_len = matrix.shape
    ax.set_xticks(range(k_len))
    ax.set_yticks(range(q_len))
    if tokens is not None:
        ax.set_xticklabels(tokens[:k_len], rotation=90)
        ax.set_yticklabels(tokens[:q_len])
    ax.set_xticks([x - 0.5 for x in range(1, k_len)], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, q_len)], minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    return ax


def plot_attention(weights: Tensor, ax=None, *, title: str | None = None,
                   tokens: Sequence[str] | None = None, cmap: str = "viridis"):
    """Draw attention weights ``(q_len, k_len)`` as a heatmap with a colour bar.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = plot_attention(torch.softmax(torch.randn(4, 4), -1))
    >>> ax.get_xlabel()
    'key'
    """
    import matplotlib.pyplot as plt

    matrix = _as_matrix("weights", weights)
    if ax is None:
        _, ax = plt.subplots(figsize=(3.5, 3))
    image = ax.imshow(matrix.numpy(), cmap=cmap, vmin=0)
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    if tokens is not None:
        ax.set_xticks(range(matrix.shape[1]), tokens[: matrix.shape[1]], rotation=90)
        ax.set_yticks(range(matrix.shape[0]), tokens[: matrix.shape[0]])
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    return ax
