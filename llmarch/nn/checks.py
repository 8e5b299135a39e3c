"""Argument checks shared by every module.

Each helper raises ``ValueError`` or ``TypeError`` with a message that names the argument,
the value that was expected and the value that was received, so a user sees *what* to fix.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch
from torch import Tensor

_INT64_MAX = 2**63 - 1


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
    """Raise unless ``value`` is an int > 0 (or >= 0 with ``allow_zero``) that fits in int64.

    NumPy integers are accepted (and returned as ``int``); bools, floats and tensors are not.

    >>> check_positive_int("num_heads", 0)
    Traceback (most recent call last):
    ...
    ValueError: num_heads must be a positive int, got 0
    """
    if type(value) is not int:  # the common case first: plain checks that torch.compile traces
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
        value = int(value)
    if value < 0 or (value == 0 and not allow_zero):
        kind = "a non-negative int" if allow_zero else "a positive int"
        raise ValueError(f"{name} must be {kind}, got {value}")
    if value > _INT64_MAX:
        raise ValueError(f"{name} must fit in int64 (<= {_INT64_MAX}), got {value}")
    return value


def check_float(name: str, value: object, *, positive: bool = False, non_negative: bool = False) -> float:
    """Raise unless ``value`` is a finite real number (optionally ``> 0`` or ``>= 0``); return it as ``float``.

    Ints and NumPy floats are accepted; bools, strings, complex numbers and tensors are not.

    >>> check_float("scale", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: scale must be a finite number, got nan
    >>> check_float("eps", -1.0, non_negative=True)
    Traceback (most recent call last):
    ...
    ValueError: eps must be >= 0, got -1.0
    """
    if type(value) not in (int, float) and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if non_negative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_offset(name: str, value: object) -> int | Tensor:
    """Raise unless ``value`` is a position: an int >= 0, or an integer 0-dim tensor (a static cache's fill level).

    A tensor's value is not read (that would sync with the device on every decoding step).

    >>> check_offset("offset", -1)
    Traceback (most recent call last):
    ...
    ValueError: offset must be a non-negative int, got -1
    >>> check_offset("offset", torch.tensor([1, 2]))
    Traceback (most recent call last):
    ...
    ValueError: offset must be an int or a 0-dim integer tensor, got a tensor of shape (2,)
    """
    if isinstance(value, Tensor):
        if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
            raise TypeError(f"{name} must be an int or a 0-dim integer tensor, got a tensor of dtype {value.dtype}")
        if value.ndim != 0:
            raise ValueError(f"{name} must be an int or a 0-dim integer tensor, got a tensor of shape "
                             f"{tuple(value.shape)}")
        return value
    return check_positive_int(name, value, allow_zero=True)


def check_dtype(name: str, dtype: object, *, floating: bool = True) -> torch.dtype:
    """Raise unless ``dtype`` is a ``torch.dtype`` (a floating-point one by default).

    >>> check_dtype("dtype", "float16")
    Traceback (most recent call last):
    ...
    TypeError: dtype must be a torch.dtype (e.g. torch.float16), got str ('float16')
    >>> check_dtype("dtype", torch.long)
    Traceback (most recent call last):
    ...
    ValueError: dtype must be a floating-point dtype, got torch.int64
    """
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{name} must be a torch.dtype (e.g. torch.float16), got {type(dtype).__name__} ({dtype!r})")
    if floating and not dtype.is_floating_point:
        raise ValueError(f"{name} must be a floating-point dtype, got {dtype}")
    return dtype


def check_device(name: str, device: object) -> torch.device | None:
    """Raise unless ``device`` is ``None``, a ``torch.device``, a device string or index that this machine has.

    >>> check_device("device", "gpu")
    Traceback (most recent call last):
    ...
    ValueError: device must name a torch device such as 'cpu' or 'cuda:0', got 'gpu'
    """
    if device is None:
        return None
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise TypeError(f"{name} must be a torch.device, a string such as 'cuda:0' or None, "
                        f"got {type(device).__name__} ({device!r})")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"{name} must name a torch device such as 'cpu' or 'cuda:0', got {device!r}") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index is not None and parsed.index >= count):
            raise ValueError(f"{name} must be a device this machine has ({count} CUDA devices), got {device!r}")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name} must be a device this machine has (MPS is not available), got {device!r}")
    return parsed


def check_integer_tensor(name: str, value: object, *, shape_doc: str | None = None,
                         ndims: int | Sequence[int] | None = None) -> Tensor:
    """Raise unless ``value`` is a tensor of an integer dtype (not bool), with ``ndims`` dims if given.

    >>> check_integer_tensor("labels", torch.zeros(2))
    Traceback (most recent call last):
    ...
    TypeError: labels must be an integer tensor (torch.long), got torch.float32
    """
    check_tensor(name, value)
    if ndims is not None:
        check_ndim(name, value, ndims, shape_doc or "")
    if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor (torch.long), got {value.dtype}")
    return value


def check_indices(name: str, indices: object, size: int) -> Tensor:
    """Raise unless ``indices`` is a 1-D integer tensor of rows in ``[0, size)`` (``index_select``'s argument).

    >>> check_indices("indices", torch.tensor([0, 2]), 2)
    Traceback (most recent call last):
    ...
    ValueError: indices must lie in [0, 2) (the batch size), got values in [0, 2]
    """
    check_integer_tensor(name, indices, shape_doc="(rows,)", ndims=1)
    if indices.numel() and not torch.compiler.is_compiling():
        low, high = int(indices.min()), int(indices.max())
        if low < 0 or high >= size:
            raise ValueError(f"{name} must lie in [0, {size}) (the batch size), got values in [{low}, {high}]")
    return indices


def check_features(name: str, x: object, weight: Tensor, width: int, shape_doc: str = "(..., d_model)", *,
                   ndims: int | Sequence[int] | None = None) -> Tensor:
    """Raise unless ``x`` is a floating tensor ``(..., width)`` with the dtype and device of ``weight``.

    The dtype is not checked under ``torch.autocast``, which mixes dtypes on purpose.

    >>> check_features("x", torch.zeros(2, 3), torch.zeros(4, 4), 4)
    Traceback (most recent call last):
    ...
    ValueError: x must have last dimension 4, got shape (2, 3)
    """
    check_tensor(name, x)
    if ndims is not None:
        check_ndim(name, x, ndims, shape_doc)
    elif x.ndim == 0:
        raise ValueError(f"{name} must have shape {shape_doc}, got a 0-dim tensor")
    if x.shape[-1] != width:
        raise ValueError(f"{name} must have last dimension {width}, got shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"{name} must have the dtype of the module's weights ({weight.dtype}), got {x.dtype}")
    if x.device != weight.device:
        raise ValueError(f"{name} must be on the device of the module's weights ({weight.device}), got {x.device}")
    return x


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
    if type(value) not in (int, float) and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
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


def lengths_tensor(name: str, lengths: int | Sequence[int] | Tensor, device=None) -> Tensor:
    """Turn an int, a sequence of ints or a 0-/1-D integer tensor of lengths into a non-empty 1-D long tensor."""
    device = check_device("device", device)
    if isinstance(lengths, Tensor):
        if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
            raise TypeError(f"{name} must hold integers, got dtype {lengths.dtype}")
        lengths = lengths.reshape(-1) if lengths.ndim == 0 else check_ndim(name, lengths, 1, "(batch,)")
    else:
        if isinstance(lengths, numbers.Integral) and not isinstance(lengths, bool):
            lengths = [lengths]
        if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence) and not hasattr(lengths, "__array__"):
            raise TypeError(f"{name} must be an int, a sequence of ints or an integer tensor, "
                            f"got {type(lengths).__name__} ({lengths!r})")
        lengths = list(lengths)
        bad = [item for item in lengths if isinstance(item, bool) or not isinstance(item, numbers.Integral)]
        if bad:
            raise TypeError(f"{name} must hold ints, got {type(bad[0]).__name__} ({bad[0]!r})")
        for item in lengths:
            if not -(2**63) <= int(item) < 2**63:
                raise ValueError(f"{name} must fit in int64, got {int(item)}")
        lengths = torch.tensor([int(item) for item in lengths], dtype=torch.long)
    if lengths.numel() == 0:
        raise ValueError(f"{name} must hold at least one length, got none")
    return lengths.to(device=device or lengths.device, dtype=torch.long)


def check_lengths(name: str, lengths: Tensor, max_len: int) -> None:
    """Raise ``ValueError`` unless every length lies in ``[0, max_len]``."""
    if lengths.numel() and lengths.device.type != "meta" and (lengths.min() < 0 or lengths.max() > max_len):
        raise ValueError(
            f"{name} must lie in [0, {max_len}], got {lengths.tolist()}"
        )
