"""Attention masks.

Every mask here is a **boolean** tensor in which ``True`` means *may attend*, broadcastable to
``(batch, heads, q_len, k_len)`` -- the convention of
``torch.nn.functional.scaled_dot_product_attention``. The one additive (float) form is made by
``to_additive_mask``, in the compute dtype, so no module writes its own ``-1e9``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .checks import (
    check_choice,
    check_device,
    check_lengths,
    check_ndim,
    check_offset,
    check_positive_int,
    check_tensor,
    lengths_tensor,
)

__all__ = [
    "causal_mask",
    "padding_mask",
    "prefix_lm_mask",
    "unilm_mask",
    "cross_attention_mask",
    "combine_masks",
    "to_additive_mask",
]


# --8<-- [start:causal_mask]
def causal_mask(
    q_len: int,
    k_len: int | None = None,
    *,
    offset: int | Tensor | None = None,
    device=None,
) -> Tensor:
    """Causal (lower-triangular) mask, bottom-right aligned for a KV cache.

    Query ``i`` may attend key ``j`` iff ``j <= offset + i``. By default
    ``offset = k_len - q_len``: the ``q_len`` new queries are the *last* ``q_len``
    positions of the ``k_len`` keys, as with a KV cache holding ``k_len - q_len``
    earlier tokens. A preallocated (static) cache passes its fill level as ``offset``,
    so the unused slots after it stay hidden.

    Args:
        q_len: number of queries.
        k_len: number of keys (default ``q_len``).
        offset: position of the first query among the keys (an int or a 0-dim tensor).
        device: device of the result.

    Returns:
        Bool tensor ``(q_len, k_len)``.

    Raises:
        ValueError: if ``k_len < q_len`` without an explicit ``offset``, a length is not
            positive, ``offset`` is negative, or ``device`` is not a device of this
            machine.
        TypeError: for a length or ``offset`` that is not an int (or a 0-dim integer
            tensor).

    >>> causal_mask(3).int()
    tensor([[1, 0, 0],
            [1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    >>> causal_mask(1, 4).int()          # one new token after 3 cached ones sees all 4
    tensor([[1, 1, 1, 1]], dtype=torch.int32)
    """
    check_positive_int("q_len", q_len)
    k_len = q_len if k_len is None else check_positive_int("k_len", k_len)
    device = check_device("device", device)
    if offset is not None:
        check_offset("offset", offset)
    if offset is None:
        if k_len < q_len:
            raise ValueError(
                "k_len must be >= q_len for a bottom-right aligned causal mask, "
                f"got k_len={k_len} < q_len={q_len}"
            )
        offset = k_len - q_len
    if isinstance(offset, Tensor):
        device = offset.device
    query_pos = offset + torch.arange(q_len, device=device)
    key_pos = torch.arange(k_len, device=device)
    return key_pos[None, :] <= query_pos[:, None]
# --8<-- [end:causal_mask]


def padding_mask(
    attention_mask: Tensor | None = None,
    *,
    lengths: Sequence[int] | Tensor | None = None,
    max_len: int | None = None,
    padding_side: str = "right",
    device=None,
) -> Tensor:
    """Key-padding mask ``(batch, 1, 1, k_len)`` from an ``attention_mask`` or from lengths.

    Args:
        attention_mask: ``(batch, seq)`` of 0/1 (or bool); 1 marks a real token. Works for right
            and left padding alike.
        lengths: instead of ``attention_mask``, the number of real tokens of each example.
        max_len: padded length when ``lengths`` is given (default: the largest length).
        padding_side: ``"right"`` (tokens first) or ``"left"`` (padding first), with ``lengths``.
        device: device of the result, with ``lengths``.

    Returns:
        Bool tensor ``(batch, 1, 1, k_len)``: ``True`` at real tokens.

    Raises:
        ValueError: if both or neither source is given, a length is negative or exceeds
            ``max_len``, or ``attention_mask`` holds values other than 0 and 1.
        TypeError: if ``attention_mask`` is a float tensor.

    >>> padding_mask(torch.tensor([[1, 1, 0], [1, 1, 1]]))[:, 0, 0].int()
    tensor([[1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    >>> padding_mask(lengths=[1, 3], padding_side="left")[:, 0, 0].int()
    tensor([[0, 0, 1],
            [1, 1, 1]], dtype=torch.int32)
    """
    if (attention_mask is None) == (lengths is None):
        raise ValueError("padding_mask needs exactly one of attention_mask or lengths, got "
                         f"{'both' if attention_mask is not None else 'neither'}")
    if attention_mask is not None:
        check_ndim("attention_mask", attention_mask, 2, "(batch, seq)")
        if attention_mask.dtype.is_floating_point or attention_mask.dtype.is_complex:
            raise TypeError(
                f"attention_mask must be an integer or bool tensor of 0/1, got {attention_mask.dtype}"
            )
        if attention_mask.dtype != torch.bool:
            values_known = attention_mask.numel() and attention_mask.device.type != "meta"
            if values_known and not torch.compiler.is_compiling() and (
                    attention_mask.min() < 0 or attention_mask.max() > 1):
                raise ValueError("attention_mask must hold only 0 and 1, got values in "
                                 f"[{attention_mask.min().item()}, {attention_mask.max().item()}]")
            attention_mask = attention_mask.bool()
        return attention_mask[:, None, None, :]
    check_choice("padding_side", padding_side, ("right", "left"))
    lengths = lengths_tensor("lengths", lengths, device)
    max_len = int(lengths.max()) if max_len is None else check_positive_int("max_len", max_len)
    check_lengths("lengths", lengths, max_len)
    positions = torch.arange(max_len, device=lengths.device)
    if padding_side == "right":
        real = positions[None, :] < lengths[:, None]
    else:
        real = positions[None, :] >= (max_len - lengths)[:, None]
    return real[:, None, None, :]


# --8<-- [start:prefix_lm_mask]
def prefix_lm_mask(
    prefix_lengths: int | Sequence[int] | Tensor, seq_len: int, *, device=None
) -> Tensor:
    """Prefix-LM (non-causal decoder) mask: bidirectional over the prefix, causal after it.

    Position ``i`` may attend ``j`` iff ``j < prefix_len`` or ``j <= i``. A prefix length of 0
    gives the causal mask, ``seq_len`` the fully bidirectional one.

    Args:
        prefix_lengths: prefix length of each example (an int for a batch of one).
        seq_len: sequence length.
        device: device of the result.

    Returns:
        Bool tensor ``(batch, 1, seq_len, seq_len)``.

    Raises:
        ValueError: if a prefix length is negative or longer than ``seq_len``.

    >>> prefix_lm_mask(2, 4)[0, 0].int()
    tensor([[1, 1, 0, 0],
            [1, 1, 0, 0],
            [1, 1, 1, 0],
            [1, 1, 1, 1]], dtype=torch.int32)
    """
    check_positive_int("seq_len", seq_len)
    prefix = lengths_tensor("prefix_lengths", prefix_lengths, device)
    check_lengths("prefix_lengths", prefix, seq_len)
    key_pos = torch.arange(seq_len, device=prefix.device)
    in_prefix = key_pos[None, None, :] < prefix[:, None, None]  # (batch, 1, k)
    causal = causal_mask(seq_len, device=prefix.device)  # (q, k)
    return (in_prefix | causal)[:, None]
# --8<-- [end:prefix_lm_mask]


def unilm_mask(kind: str, seq_len: int, *, source_len: int | Sequence[int] | Tensor | None = None,
               device=None) -> Tensor:
    """The self-attention masks of UniLM (Dong et al., 2019), one per pretraining objective.

    * ``"bidirectional"`` -- every token sees every token (BERT-style cloze).
    * ``"left_to_right"`` -- token ``i`` sees ``j <= i`` (GPT-style).
    * ``"right_to_left"`` -- token ``i`` sees ``j >= i``.
    * ``"seq2seq"`` -- the source segment (first ``source_len`` tokens) is bidirectional and
      cannot see the target; the target sees the source and its own past. This is the prefix-LM
      mask with the source as prefix.

    Args:
        kind: one of the four names above.
        seq_len: total length.
        source_len: source length(s), required for ``"seq2seq"``.
        device: device of the result.

    Returns:
        Bool tensor ``(seq_len, seq_len)``, or ``(batch, 1, seq_len, seq_len)`` for ``"seq2seq"``.

    Raises:
        ValueError: on an unknown ``kind`` or a missing / out-of-range ``source_len``.

    >>> unilm_mask("right_to_left", 3).int()
    tensor([[1, 1, 1],
            [0, 1, 1],
            [0, 0, 1]], dtype=torch.int32)
    """
    check_choice("kind", kind, ("bidirectional", "left_to_right", "right_to_left", "seq2seq"))
    check_positive_int("seq_len", seq_len)
    device = check_device("device", device)
    if kind == "seq2seq":
        if source_len is None:
            raise ValueError("source_len is required for kind='seq2seq', got None")
        source = lengths_tensor("source_len", source_len, device)  # errors name the argument given here
        check_lengths("source_len", source, seq_len)
        return prefix_lm_mask(source, seq_len)
    if kind == "bidirectional":
        return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device)
    causal = causal_mask(seq_len, device=device)
    return causal if kind == "left_to_right" else causal.T


def cross_attention_mask(source_attention_mask: Tensor, target_len: int) -> Tensor:
    """Mask for decoder-to-encoder attention: every target position sees the real source tokens.

    Args:
        source_attention_mask: ``(batch, src_len)`` of 0/1, 1 for real source tokens.
        target_len: number of decoder positions.

    Returns:
        Bool tensor ``(batch, 1, target_len, src_len)`` (an expanded view, no copy).

    >>> cross_attention_mask(torch.tensor([[1, 1, 0]]), 2)[0, 0].int()
    tensor([[1, 1, 0],
            [1, 1, 0]], dtype=torch.int32)
    """
    check_positive_int("target_len", target_len)
    keys = padding_mask(source_attention_mask)
    return keys.expand(-1, -1, target_len, -1)


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """Logical AND of boolean masks (``None`` entries are skipped), with broadcasting.

    Returns ``None`` when every mask is ``None`` (no masking at all).

    Raises:
        TypeError: if a mask is not a bool tensor.
        ValueError: if the masks do not broadcast together to at most 4 dimensions
            ``(batch, heads, q_len, k_len)``, or lie on different devices.

    >>> combine_masks(causal_mask(3), padding_mask(lengths=[2], max_len=3))[0, 0].int()
    tensor([[1, 0, 0],
            [1, 1, 0],
            [1, 1, 0]], dtype=torch.int32)
    >>> combine_masks(None, None) is None
    True
    """
    result = None
    for index, mask in enumerate(masks):
        if mask is None:
            continue
        check_tensor(f"masks[{index}]", mask)
        if mask.dtype != torch.bool:
            raise TypeError(f"masks[{index}] must be a bool tensor (True = may attend), got {mask.dtype}")
        if result is not None:
            if mask.device != result.device:
                raise ValueError(f"masks[{index}] must be on the device of the masks before it ({result.device}), "
                                 f"got {mask.device}")
            try:
                shape = torch.broadcast_shapes(result.shape, mask.shape)
            except RuntimeError:
                raise ValueError(f"masks[{index}] must broadcast with the masks before it (shape "
                                 f"{tuple(result.shape)}), got shape {tuple(mask.shape)}") from None
            if len(shape) > 4:
                raise ValueError(f"masks[{index}] must broadcast to at most 4 dims (batch, heads, q_len, k_len), "
                                 f"got shape {tuple(mask.shape)}")
        result = mask if result is None else result & mask
    return result


def to_additive_mask(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Boolean mask -> additive float mask: 0 where allowed, the dtype's most negative value elsewhere.

    The most negative *finite* value (not ``-inf``) keeps a fully masked row finite in a plain
    softmax (it becomes uniform); the attention function then zeroes such rows.

    Args:
        mask: bool tensor, ``True`` = may attend.
        dtype: floating dtype of the result (the compute dtype).

    Raises:
        TypeError: if ``mask`` is not bool or ``dtype`` is not floating point.

    >>> to_additive_mask(torch.tensor([True, False]), torch.float16)
    tensor([     0., -65504.], dtype=torch.float16)
    """
    check_tensor("mask", mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got {mask.dtype}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    return zero.masked_fill(~mask, torch.finfo(dtype).min)
