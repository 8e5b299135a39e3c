"""Checks of what users pass to a model: token ids and 0/1 attention masks.

Each model validates its inputs once, at the public entry point, through these two functions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..nn.checks import check_ndim
from ..nn.masks import padding_mask

__all__ = ["check_token_ids", "check_attention_mask", "key_padding_mask"]


def check_token_ids(name: str, ids: Tensor, vocab_size: int) -> Tensor:
    """Raise unless ``ids`` is an integer ``(batch, seq)`` tensor with values in ``[0, vocab_size)``.

    >>> check_token_ids("input_ids", torch.tensor([[5, 100]]), 100)
    Traceback (most recent call last):
    ...
    ValueError: input_ids must lie in [0, 100) (the vocabulary size), got values in [5, 100]
    """
    check_ndim(name, ids, 2, "(batch, seq)")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor (torch.long), got {ids.dtype}")
    if ids.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one token, got shape {tuple(ids.shape)}")
    if torch.compiler.is_compiling():  # a value check is a host sync: not inside a compiled graph
        return ids
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(f"{name} must lie in [0, {vocab_size}) (the vocabulary size), got values in [{low}, {high}]")
    return ids


def check_attention_mask(attention_mask: Tensor, shape: tuple[int, int], *, what: str = "input_ids") -> Tensor:
    """Check a 0/1 (or bool) ``attention_mask`` of exactly ``shape``; return it as bool ``(batch, seq)``.

    Raises:
        ValueError: for another shape, or values other than 0 and 1.
        TypeError: for a float mask or a non-tensor.

    >>> check_attention_mask(torch.ones(1, 4, dtype=torch.long), (1, 3))
    Traceback (most recent call last):
    ...
    ValueError: attention_mask must have shape (1, 3) (that of input_ids), got (1, 4)
    """
    check_ndim("attention_mask", attention_mask, 2, "(batch, seq)")
    if tuple(attention_mask.shape) != tuple(shape):
        raise ValueError(f"attention_mask must have shape {tuple(shape)} (that of {what}), "
                         f"got {tuple(attention_mask.shape)}")
    return padding_mask(attention_mask)[:, 0, 0]  # checks the dtype and the 0/1 values


def key_padding_mask(attention_mask: Tensor | None, shape: tuple[int, int], *,
                     what: str = "input_ids") -> Tensor | None:
    """Check a 0/1 ``attention_mask`` of ``shape`` and turn it into a key mask.

    A mask that hides nothing gives ``None``: the result is the same, and attention then needs
    no mask tensor at all (the fused kernels take their fastest path).

    Args:
        attention_mask: ``(batch, seq)`` of 0/1 or bool (1 = real token), or ``None``.
        shape: the expected ``(batch, seq)``.
        what: what ``shape`` belongs to, for the error message.

    Returns:
        Bool ``(batch, 1, 1, seq)`` (``True`` = may attend), or ``None`` when nothing is hidden.

    Raises:
        ValueError / TypeError: as ``check_attention_mask``.

    >>> key_padding_mask(torch.tensor([[1, 1, 0]]), (1, 3))[0, 0, 0].tolist()
    [True, True, False]
    >>> key_padding_mask(torch.ones(1, 3, dtype=torch.long), (1, 3)) is None
    True
    """
    if attention_mask is None:
        return None
    real = check_attention_mask(attention_mask, shape, what=what)
    return None if bool(real.all()) else real[:, None, None, :]
