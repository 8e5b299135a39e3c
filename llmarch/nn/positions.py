"""Absolute position embeddings: sinusoidal (Vaswani et al., 2017) and learned (GPT, BERT).

Both map position ids ``(batch, seq)`` (or ``(seq,)``) to vectors ``(..., seq, d_model)``
that are *added* to the token embeddings. Rotary embeddings live in ``llmarch.nn.rotary``,
ALiBi and T5's relative bias in ``llmarch.nn.relative``; "no positions" (NoPE) is simply
not adding anything -- the causal mask alone already leaks order (Haviv et al., 2022).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .checks import check_device, check_float, check_offset, check_positive_int, check_tensor

__all__ = ["SinusoidalPositionalEmbedding", "LearnedPositionalEmbedding", "position_ids_from_offset"]


def position_ids_from_offset(offset: int | Tensor, length: int, device=None) -> Tensor:
    """Positions ``offset, ..., offset + length - 1`` as a ``(1, length)`` long tensor.

    >>> position_ids_from_offset(3, 2)
    tensor([[3, 4]])
    """
    check_offset("offset", offset)
    check_positive_int("length", length, allow_zero=True)
    device = check_device("device", device)
    if isinstance(offset, Tensor):
        device = offset.device
    return (offset + torch.arange(length, device=device))[None, :]


def _check_position_ids(position_ids: Tensor, device: torch.device | None = None) -> Tensor:
    check_tensor("position_ids", position_ids)
    if position_ids.dtype.is_floating_point or position_ids.dtype.is_complex or position_ids.dtype == torch.bool:
        raise TypeError(f"position_ids must be an integer tensor, got {position_ids.dtype}")
    if device is not None and position_ids.device != device:
        raise ValueError(f"position_ids must be on the device of the module's weights ({device}), "
                         f"got {position_ids.device}")
    return position_ids


# --8<-- [start:sinusoidal]
class SinusoidalPositionalEmbedding(nn.Module):
    r"""Fixed sinusoids: $PE_{p,2i} = \sin(p / 10000^{2i/d})$, $PE_{p,2i+1} = \cos(\cdot)$.

    Computed on the fly, so there is no maximum length and no parameter.

    Args:
        d_model: embedding size (even).
        base: the wavelength base (10000 in the paper).

    >>> pe = SinusoidalPositionalEmbedding(4)
    >>> pe(torch.tensor([0, 1])).round(decimals=4)
    tensor([[0.0000, 1.0000, 0.0000, 1.0000],
            [0.8415, 0.5403, 0.0100, 1.0000]])
    """

    def __init__(self, d_model: int, base: float = 10000.0) -> None:
        super().__init__()
        check_positive_int("d_model", d_model)
        if d_model % 2:
            raise ValueError(f"d_model must be even for sinusoidal positions, got {d_model}")
        check_float("base", base, positive=True)
        inv_freq = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(base) / d_model))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, position_ids: Tensor) -> Tensor:
        """``(..., seq)`` integer positions -> ``(..., seq, d_model)`` float32 embeddings."""
        angles = _check_position_ids(position_ids).float()[..., None] * self.inv_freq
        # interleave: even dims sin, odd dims cos
        return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)
# --8<-- [end:sinusoidal]


class LearnedPositionalEmbedding(nn.Embedding):
    """A trained vector per position (GPT-1/2, BERT), up to ``max_positions``.

    Raises ``ValueError`` for a position ``>= max_positions`` (instead of an index error deep
    inside the embedding).

    >>> pe = LearnedPositionalEmbedding(8, 4)
    >>> pe(torch.arange(3)[None]).shape
    torch.Size([1, 3, 4])
    >>> pe(torch.tensor([[8]]))
    Traceback (most recent call last):
    ...
    ValueError: position_ids must be < max_positions = 8, got a largest position of 8
    """

    def __init__(self, max_positions: int, d_model: int) -> None:
        check_positive_int("max_positions", max_positions)
        check_positive_int("d_model", d_model)
        super().__init__(max_positions, d_model)

    def forward(self, position_ids: Tensor) -> Tensor:
        _check_position_ids(position_ids, self.weight.device)
        if position_ids.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"position_ids must be a torch.long (or torch.int32) tensor, got {position_ids.dtype}")
        if position_ids.numel() and not torch.compiler.is_compiling():  # value checks sync with the host
            largest, smallest = int(position_ids.max()), int(position_ids.min())
            if largest >= self.num_embeddings:
                raise ValueError(
                    f"position_ids must be < max_positions = {self.num_embeddings}, got a largest position of {largest}"
                )
            if smallest < 0:
                raise ValueError(f"position_ids must be >= 0, got a smallest position of {smallest}")
        return super().forward(position_ids)
