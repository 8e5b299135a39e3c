"""Rotary position embeddings, RoPE (Su et al., 2021, "RoFormer").

Each pair of channels of a query or key is rotated by an angle proportional to its position,
so the dot product ``q_m . k_n`` depends only on ``m - n``. The pairing follows the
"rotate half" layout of LLaMA / Hugging Face (channel ``i`` pairs with ``i + head_dim/2``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .checks import check_float, check_ndim, check_positive_int

__all__ = ["RotaryEmbedding"]


def _rotate_half(x: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def _check_inputs(q: Tensor, k: Tensor, position_ids: Tensor, head_dim: int, device: torch.device) -> None:
    check_ndim("q", q, 4, "(batch, heads, seq, head_dim)")
    check_ndim("k", k, 4, "(batch, kv_heads, seq, head_dim)")
    check_ndim("position_ids", position_ids, 2, "(batch, seq)")
    for name, tensor in (("q", q), ("k", k)):
        if not tensor.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating-point tensor, got {tensor.dtype}")
    if position_ids.dtype.is_floating_point or position_ids.dtype.is_complex or position_ids.dtype == torch.bool:
        raise TypeError(f"position_ids must be an integer tensor, got {position_ids.dtype}")
    for name, tensor in (("q", q), ("k", k), ("position_ids", position_ids)):
        if tensor.device != device:
            raise ValueError(f"{name} must be on the device of the rotary embedding ({device}), got {tensor.device}")
    if k.shape[0] != q.shape[0] or k.shape[2] != q.shape[2]:
        raise ValueError(f"k must have the batch size and length of q {(q.shape[0], q.shape[2])}, "
                         f"got shape {tuple(k.shape)}")
    if position_ids.shape[1] != q.shape[2] or position_ids.shape[0] not in (1, q.shape[0]):
        raise ValueError(
            f"position_ids must have shape (1 or {q.shape[0]}, {q.shape[2]}) to match q, got {tuple(position_ids.shape)}"
        )
    if q.shape[-1] != head_dim or k.shape[-1] != head_dim:
        raise ValueError(
            f"q and k must have head_dim {head_dim} (that of the rotary embedding), got {q.shape[-1]} and {k.shape[-1]}"
        )


# --8<-- [start:rotary]
class RotaryEmbedding(nn.Module):
    r"""Rotate queries and keys by position: $x \cos(p\theta) + \mathrm{rot}(x) \sin(p\theta)$.

    Args:
        head_dim: size of each head (even).
        base: $\theta_i = \text{base}^{-2i/\text{head\_dim}}$ (10000 in RoFormer / LLaMA).

    Relative positions survive the rotation: the scores of ``(q at m, k at n)`` equal those of
    ``(q at m + s, k at n + s)``.

    >>> rope = RotaryEmbedding(8)
    >>> q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    >>> def score(m, n):
    ...     qm, _ = rope(q, q, torch.tensor([[m]]))
    ...     _, kn = rope(k, k, torch.tensor([[n]]))
    ...     return (qm * kn).sum()
    >>> torch.allclose(score(5, 2), score(13, 10), atol=1e-5)
    True
    """

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        check_positive_int("head_dim", head_dim)
        if head_dim % 2:
            raise ValueError(f"head_dim must be even for rotary embeddings, got {head_dim}")
        check_float("base", base, positive=True)
        self.head_dim = head_dim
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, q: Tensor, k: Tensor, position_ids: Tensor) -> tuple[Tensor, Tensor]:
        """Rotate ``q`` ``(batch, heads, seq, head_dim)`` and ``k`` ``(batch, kv_heads, seq, head_dim)``.

        ``position_ids`` is ``(batch or 1, seq)``: the absolute position of each token.
        """
        _check_inputs(q, k, position_ids, self.head_dim, self.inv_freq.device)
        angles = position_ids.float()[:, None, :, None] * self.inv_freq  # (b, 1, seq, hd/2)
        angles = torch.cat((angles, angles), dim=-1)
        cos, sin = angles.cos(), angles.sin()
        rotated_q = q.float() * cos + _rotate_half(q.float()) * sin
        rotated_k = k.float() * cos + _rotate_half(k.float()) * sin
        return rotated_q.to(q.dtype), rotated_k.to(k.dtype)
# --8<-- [end:rotary]
