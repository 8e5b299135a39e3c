"""Argument checks shared by every module.

Each helper raises ``ValueError`` or ``TypeError`` with a message that names the argument,
the value that was expected and the value that was received, so a user sees *what* to fix.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def check_tensor(name: str, value: object) -> Tensor:
    """Raise ``TypeError`` unless ``value`` is a tensor.

    >>> check_tensor("x", [1, 2])
    Traceback (most recent call last):
    ...
    TypeError: x must be a torch.Tensor, got list
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_ndim(name: str, value: Tensor, ndims: int | Sequence[int], shape_doc: str) -> Tensor:
    """Raise ``ValueError`` unless ``value.ndim`` is one of ``ndims``.

    >>> check_ndim("x", torch.zeros(2, 3), 3, "(batch, seq, d_model)")
    Traceback (most recent call last):
    ...
    ValueError: x must have shape (batch, seq, d_model) (3 dims), got shape (2, 3)
    """
    check_tensor(name, value)
    allowed = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if value.ndim not in allowed:
        dims = " or ".join(str(d) for d in allowed)
        raise ValueError(
            f"{name} must have shape {shape_doc} ({dims} dims), got shape {tuple(value.shape)}"
        )
    return value


def check_positive_int(name: str, value: object, *, allow_zero: bool = False) -> int:
    """Raise unless ``value`` is an int > 0 (or >= 0 with ``allow_zero``).

    >>> check_positive_int("num_heads", 0)
    Traceback (most recent call last):
    ...
    ValueError: num_heads must be a positive int, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < 0 or (value == 0 and not allow_zero):
        kind = "a non-negative int" if allow_zero else "a positive int"
        raise ValueError(f"{name} must be {kind}, got {value}")
    return value


def check_bool(name: str, value: object) -> bool:
    """Raise ``TypeError`` unless ``value`` is ``True`` or ``False``.

    >>> check_bool("compile", "yes")
    Traceback (most recent call last):
    ...
    TypeError: compile must be a bool, got str ('yes')
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} ({value!r})")
    return value


def check_probability(name: str, value: float) -> float:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (a dropout rate).

    >>> check_probability("dropout", 1.5)
    Traceback (most recent call last):
    ...
    ValueError: dropout must be in [0, 1), got 1.5
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in [0, 1), got {type(value).__name__} ({value!r})")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``.

    >>> check_choice("backend", "flash", ("auto", "eager", "sdpa"))
    Traceback (most recent call last):
    ...
    ValueError: backend must be one of 'auto', 'eager', 'sdpa', got 'flash'
    """
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_same_device_dtype(names: Sequence[str], tensors: Sequence[Tensor]) -> None:
    """Raise ``ValueError`` unless all tensors share one dtype and one device.

    >>> check_same_device_dtype(("q", "k"), (torch.zeros(1), torch.zeros(1, dtype=torch.float64)))
    Traceback (most recent call last):
    ...
    ValueError: k must have the dtype of q (torch.float32), got torch.float64
    """
    first_name, first = names[0], tensors[0]
    for name, tensor in zip(names[1:], tensors[1:]):
        if tensor.dtype != first.dtype:
            raise ValueError(
                f"{name} must have the dtype of {first_name} ({first.dtype}), got {tensor.dtype}"
            )
        if tensor.device != first.device:
            raise ValueError(
                f"{name} must be on the device of {first_name} ({first.device}), got {tensor.device}"
            )


def check_bool_mask(name: str, mask: Tensor, target_shape: Sequence[int], target_doc: str) -> Tensor:
    """Raise unless ``mask`` is a boolean tensor broadcastable to ``target_shape``.

    >>> check_bool_mask("mask", torch.ones(3, 3), (1, 1, 3, 3), "(batch, heads, q_len, k_len)")
    Traceback (most recent call last):
    ...
    TypeError: mask must be a bool tensor (True = may attend), got torch.float32
    """
    check_tensor(name, mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor (True = may attend), got {mask.dtype}")
    target = tuple(target_shape)
    ok = mask.ndim <= len(target) and all(
        m in (1, t) for m, t in zip(reversed(mask.shape), reversed(target))
    )
    if not ok:
        raise ValueError(
            f"{name} must be broadcastable to {target_doc} = {target}, got shape {tuple(mask.shape)}"
        )
    return mask
