"""Checks of what users pass to a model or an objective: token ids, 0/1 attention masks,
position ids and labels.

Each model validates its inputs once, at the public entry point, through these functions.
Ids and labels are value-checked (a negative id, or one past the vocabulary, is a
``ValueError`` here rather than an index error inside ``nn.Embedding`` or the loss).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..nn.checks import check_integer_tensor, check_ndim, check_tensor
from ..nn.masks import padding_mask

__all__ = ["check_token_ids", "check_token_id", "check_attention_mask", "key_padding_mask", "check_position_ids",
           "check_block_position_ids", "check_labels"]

ID_DTYPES = (torch.int64, torch.int32)  # what nn.Embedding indexes with


def check_token_ids(name: str, ids: Tensor, vocab_size: int, *, device: torch.device | None = None,
                    limit_doc: str = " (the vocabulary size)") -> Tensor:
    """Raise unless ``ids`` is a non-empty ``(batch, seq)`` ``torch.long`` (or ``int32``) tensor with
    values in ``[0, vocab_size)``, on ``device`` if given.

    >>> check_token_ids("input_ids", torch.tensor([[5, 100]]), 100)
    Traceback (most recent call last):
    ...
    ValueError: input_ids must lie in [0, 100) (the vocabulary size), got values in [5, 100]
    """
    check_ndim(name, ids, 2, "(batch, seq)")
    if ids.dtype not in ID_DTYPES:
        raise TypeError(f"{name} must be an integer tensor (torch.long or torch.int32), got {ids.dtype}")
    if ids.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one token, got shape {tuple(ids.shape)}")
    if ids.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sequence, got shape {tuple(ids.shape)}")
    if device is not None and ids.device != device:
        raise ValueError(f"{name} must be on the model's device ({device}), got {ids.device}")
    if torch.compiler.is_compiling() or ids.device.type == "meta":  # a value check is a host sync: not inside
        return ids  # a compiled graph; a meta tensor has no values
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(f"{name} must lie in [0, {vocab_size}){limit_doc}, got values in [{low}, {high}]")
    return ids


def check_token_id(name: str, value: object, vocab_size: int) -> int:
    """Raise unless ``value`` is one token id: an int in ``[0, vocab_size)`` (``eos_token_id``, ``pad_token_id`` ...).

    >>> check_token_id("eos_token_id", 100, 100)
    Traceback (most recent call last):
    ...
    ValueError: eos_token_id must be a token id in [0, 100), got 100
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int token id, got {type(value).__name__} ({value!r})")
    if not 0 <= value < vocab_size:
        raise ValueError(f"{name} must be a token id in [0, {vocab_size}), got {value}")
    return value


def check_attention_mask(attention_mask: Tensor, shape: tuple[int, int], *, what: str = "input_ids",
                         device: torch.device | None = None) -> Tensor:
    """Check a 0/1 (or bool) ``attention_mask`` of exactly ``shape`` (on ``device`` if given); return
    it as bool ``(batch, seq)``.

    Raises:
        ValueError: for another shape or device, or values other than 0 and 1.
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
    if device is not None and attention_mask.device != device:
        raise ValueError(f"attention_mask must be on the device of {what} ({device}), got {attention_mask.device}")
    return padding_mask(attention_mask)[:, 0, 0]  # checks the dtype and the 0/1 values


def key_padding_mask(attention_mask: Tensor | None, shape: tuple[int, int], *,
                     what: str = "input_ids", device: torch.device | None = None) -> Tensor | None:
    """Check a 0/1 ``attention_mask`` of ``shape`` and turn it into a key mask.

    A mask that hides nothing gives ``None``: the result is the same, and attention then needs
    no mask tensor at all (the fused kernels take their fastest path).

    Args:
        attention_mask: ``(batch, seq)`` of 0/1 or bool (1 = real token), or ``None``.
        shape: the expected ``(batch, seq)``.
        what: what ``shape`` belongs to, for the error message.
        device: the device the mask must be on (that of the ids), if given.

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
    real = check_attention_mask(attention_mask, shape, what=what, device=device)
    return None if bool(real.all()) else real[:, None, None, :]


def check_position_ids(position_ids: Tensor, batch: int, seq: int, device: torch.device) -> Tensor:
    """Raise unless ``position_ids`` is an integer ``(1 or batch, seq)`` tensor on ``device``.

    Values are checked where they index a table (``LearnedPositionalEmbedding``); rotary and
    sinusoidal positions accept any integer.

    >>> check_position_ids(torch.arange(4)[None], 2, 3, torch.device("cpu"))
    Traceback (most recent call last):
    ...
    ValueError: position_ids must have shape (1 or 2, 3), got (1, 4)
    """
    check_integer_tensor("position_ids", position_ids, shape_doc="(batch or 1, seq)", ndims=2)
    if position_ids.shape[1] != seq or position_ids.shape[0] not in (1, batch):
        raise ValueError(f"position_ids must have shape (1 or {batch}, {seq}), got {tuple(position_ids.shape)}")
    if position_ids.device != device:
        raise ValueError(f"position_ids must be on the device of input_ids ({device}), got {position_ids.device}")
    return position_ids


def check_block_position_ids(block_position_ids: Tensor, shape: tuple[int, int], limit: int,
                             device: torch.device) -> Tensor:
    """Raise unless ``block_position_ids`` (GLM's positions within a span) is an integer
    ``(1 or batch, seq)`` tensor on ``device`` with values in ``[0, limit)``.

    >>> check_block_position_ids(torch.tensor([[0, 1, 9]]), (1, 3), 8, torch.device("cpu"))
    Traceback (most recent call last):
    ...
    ValueError: block_position_ids must lie in [0, 8) (max_positions), got values in [0, 9]
    """
    batch, seq = shape
    check_integer_tensor("block_position_ids", block_position_ids, shape_doc="(batch or 1, seq)", ndims=2)
    if block_position_ids.shape[1] != seq or block_position_ids.shape[0] not in (1, batch):
        raise ValueError(f"block_position_ids must have shape (1 or {batch}, {seq}) (that of input_ids), "
                         f"got {tuple(block_position_ids.shape)}")
    if block_position_ids.device != device:
        raise ValueError(f"block_position_ids must be on the device of input_ids ({device}), "
                         f"got {block_position_ids.device}")
    if block_position_ids.numel() and not torch.compiler.is_compiling() and block_position_ids.device.type != "meta":
        low, high = int(block_position_ids.min()), int(block_position_ids.max())
        if low < 0 or high >= limit:
            raise ValueError(f"block_position_ids must lie in [0, {limit}) (max_positions), got values in "
                             f"[{low}, {high}]")
    return block_position_ids


def check_labels(labels: Tensor, logits: Tensor, *, ignore_index: int = -100, name: str = "labels",
                 shape_doc: str = "(batch, seq)") -> Tensor:
    """Raise unless ``labels`` fit ``logits (batch, seq, vocab)``: integers of shape ``(batch, seq)``
    on the logits' device, each a class in ``[0, vocab)`` or ``ignore_index``. Returns them as ``torch.long``.

    >>> check_labels(torch.tensor([[1, 7]]), torch.zeros(1, 2, 5))
    Traceback (most recent call last):
    ...
    ValueError: labels must be classes in [0, 5) or -100 (ignored), got 7
    """
    check_integer_tensor(name, labels)
    check_tensor("logits", logits)
    if tuple(labels.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"{name} must have shape {shape_doc} = {tuple(logits.shape[:-1])}, got {tuple(labels.shape)}")
    if labels.device != logits.device:
        raise ValueError(f"{name} must be on the device of logits ({logits.device}), got {labels.device}")
    if labels.numel() and not torch.compiler.is_compiling():
        bad = labels[(labels != ignore_index) & ((labels < 0) | (labels >= logits.shape[-1]))]
        if bad.numel():
            raise ValueError(f"{name} must be classes in [0, {logits.shape[-1]}) or {ignore_index} (ignored), "
                             f"got {int(bad[0])}")
    return labels.long()
