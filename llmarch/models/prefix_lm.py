"""Prefix LM ("non-causal decoder"): a decoder-only model that reads a prefix bidirectionally.

One ``DecoderOnlyLM``, one change of mask. Row ``b`` of a batch has a prefix of
``prefix_lengths[b]`` tokens (an instruction, a source sentence, GLM's Part A); query ``i`` may
attend key ``j`` iff ``j`` lies in the prefix **or** ``j <= i``. The prefix is therefore encoded
bidirectionally, like an encoder, and everything after it is generated causally, like a
decoder -- with one stack of weights (Raffel et al. 2020, §3.2.1, "prefix LM"; Dong et al. 2019;
Wang et al. 2022, "non-causal decoder"). ``prefix_lengths = 0`` is the causal LM; ``seq`` is
the fully bidirectional encoder.

Why a KV cache works after the prefix, and only there
-----------------------------------------------------

A cache stores each token's keys and values and never recomputes them. That is correct only if
those keys and values would come out the same when recomputed over the longer sequence, i.e.
if a token's hidden states do not depend on tokens that arrive later.

* A token **after** the prefix attends to the prefix and to its own past, never to anything
  later: its keys and values are final as soon as it is computed. Decoding after the prefix
  is ordinary causal decoding.
* A token **inside** the prefix attends to *every* prefix token, including those to its right.
  Its keys and values (in every layer above the first) are a function of the whole prefix.
  They stay valid while the prefix stays the same -- so the prefix is run once, as one block,
  and cached -- but they go stale the moment the prefix grows: appending one token to the
  prefix changes the hidden states of every earlier prefix token, and the whole prefix must be
  recomputed. A causal LM never has this problem (a token's states never depend on later
  tokens), which is why a multi-turn chat with a prefix LM, where each turn extends the
  prefix, pays the full prefix again every turn (chapter 4 measures it).

``DecoderOnlyLM.forward`` therefore accepts ``prefix_lengths`` with a non-empty cache only when
the prefix lies entirely inside the cache (the new tokens then see exactly the causal mask), and
refuses a prefix that would extend into the new tokens, rather than silently mixing stale and
fresh keys. ``generate`` on a ``config.prefix_lm`` model runs the prompt as the prefix in one
block, then decodes causally (tests/test_prefix_lm.py checks both against a full forward).
"""

from __future__ import annotations

import numbers
from typing import Sequence

import torch
from torch import Tensor

from ..nn.cache import KVCache, StaticLayerCache
from ..nn.checks import check_integer_tensor, check_positive_int
from ..nn.masks import causal_mask
from .inputs import check_attention_mask

__all__ = ["check_prefix_lengths", "prefix_lm_attention_mask", "non_causal_mask"]


def check_prefix_lengths(prefix_lengths: int | Sequence[int] | Tensor, lengths: Tensor) -> Tensor:
    """Validate per-row prefix lengths against the rows' lengths; return them as ``(batch,)`` long.

    Args:
        prefix_lengths: an int (every row), a sequence of ints or an integer tensor ``(batch,)``
            (or 0-dim).
        lengths: ``(batch,)`` the number of real (non-padding) tokens of each row.

    Returns:
        ``(batch,)`` ``torch.long`` on the device of ``lengths``.

    Raises:
        TypeError: for floats, bools or other non-integer values.
        ValueError: for a shape other than ``(batch,)``, a negative length, or a prefix longer
            than its row.

    >>> check_prefix_lengths(2, torch.tensor([4, 3]))
    tensor([2, 2])
    >>> check_prefix_lengths([5, 1], torch.tensor([4, 3]))
    Traceback (most recent call last):
    ...
    ValueError: prefix_lengths must be <= the length of each row ([4, 3] tokens), got [5, 1]
    """
    batch = lengths.shape[0]
    if isinstance(prefix_lengths, Tensor):
        check_integer_tensor("prefix_lengths", prefix_lengths)
        if prefix_lengths.ndim == 0:
            prefix_lengths = prefix_lengths.reshape(1).expand(batch)
        prefix = prefix_lengths.to(device=lengths.device, dtype=torch.long)
    elif isinstance(prefix_lengths, numbers.Integral) and not isinstance(prefix_lengths, bool):
        prefix = torch.full((batch,), int(prefix_lengths), dtype=torch.long, device=lengths.device)
    elif isinstance(prefix_lengths, Sequence) and not isinstance(prefix_lengths, (str, bytes)):
        bad = [v for v in prefix_lengths if isinstance(v, bool) or not isinstance(v, numbers.Integral)]
        if bad:
            raise TypeError(f"prefix_lengths must hold ints, got {type(bad[0]).__name__} ({bad[0]!r})")
        prefix = torch.tensor([int(v) for v in prefix_lengths], dtype=torch.long, device=lengths.device)
    else:
        raise TypeError("prefix_lengths must be an int, a sequence of ints or an integer tensor (batch,), "
                        f"got {type(prefix_lengths).__name__} ({prefix_lengths!r})")
    if tuple(prefix.shape) != (batch,):
        raise ValueError(f"prefix_lengths must have shape (batch,) = ({batch},) (one length per row), "
                         f"got {tuple(prefix.shape)}")
    if prefix.device.type != "meta" and not torch.compiler.is_compiling():
        if bool((prefix < 0).any()):
            raise ValueError(f"prefix_lengths must be >= 0, got {prefix.tolist()}")
        if bool((prefix > lengths).any()):
            raise ValueError(f"prefix_lengths must be <= the length of each row ({lengths.tolist()} tokens), "
                             f"got {prefix.tolist()}")
    return prefix


# --8<-- [start:prefix_lm_attention_mask]
def prefix_lm_attention_mask(
    prefix_lengths: Tensor,
    seq_len: int,
    attention_mask: Tensor | None = None,
    *,
    key_len: int | None = None,
) -> Tensor:
    """Prefix-LM mask of a (padded) batch: causal OR key in row's prefix, AND key real.

    The prefix of row ``b`` is its first ``prefix_lengths[b]`` *real* tokens, so left
    and right padding both work (without padding it is
    ``llmarch.nn.masks.prefix_lm_mask``).

    Args:
        prefix_lengths: ``(batch,)`` integer tensor.
        seq_len: number of tokens (queries = keys).
        attention_mask: ``(batch, seq_len)`` bool or 0/1, 0 at padding; ``None`` = no
            padding.
        key_len: pad the key axis with ``False`` up to this length (a static cache's
            slots).

    Returns:
        Bool ``(batch, 1, seq_len, key_len or seq_len)``, ``True`` = may attend. (A
        padding query's row is not meaningful; its output is never used.)

    Raises:
        ValueError / TypeError: a non-integer or non-1-D ``prefix_lengths``, a negative
            prefix or one longer than its row, an ``attention_mask`` that is not
            ``(batch, seq_len)`` 0/1.

    >>> prefix_lm_attention_mask(torch.tensor([2]), 4)[0, 0].int()
    tensor([[1, 1, 0, 0],
            [1, 1, 0, 0],
            [1, 1, 1, 0],
            [1, 1, 1, 1]], dtype=torch.int32)
    >>> left_padded = torch.tensor([[0, 1, 1, 1]])  # prefix: the first 2 *real* tokens
    >>> mask = prefix_lm_attention_mask(torch.tensor([2]), 4, left_padded)
    >>> mask[0, 0].int()  # row 0: a pad
    tensor([[0, 1, 1, 0],
            [0, 1, 1, 0],
            [0, 1, 1, 0],
            [0, 1, 1, 1]], dtype=torch.int32)
    """
    check_integer_tensor(
        "prefix_lengths", prefix_lengths, shape_doc="(batch,)", ndims=1
    )
    check_positive_int("seq_len", seq_len)
    if attention_mask is not None:
        check_attention_mask(
            attention_mask,
            (len(prefix_lengths), seq_len),
            what="prefix_lengths and seq_len",
        )
    lengths = (
        torch.full_like(prefix_lengths, seq_len)
        if attention_mask is None
        else attention_mask.bool().sum(-1).to(prefix_lengths.device)
    )
    prefix_lengths = check_prefix_lengths(prefix_lengths, lengths)
    device = prefix_lengths.device
    if attention_mask is None:
        rank = torch.arange(seq_len, device=device)[
            None, :
        ]  # (1, k): index of each key among real tokens
    else:
        real = attention_mask.bool()
        rank = real.long().cumsum(-1) - 1  # (batch, k); padding is hidden below
    in_prefix = rank < prefix_lengths[:, None]  # (batch, k)
    causal = causal_mask(seq_len, device=device)  # (q, k): j <= i
    mask = in_prefix[:, None, :] | causal[None]  # (batch, q, k)
    if attention_mask is not None:
        mask = mask & real[:, None, :]
    if key_len is not None and key_len > seq_len:
        mask = torch.nn.functional.pad(mask, (0, key_len - seq_len), value=False)
    return mask[:, None]
# --8<-- [end:prefix_lm_attention_mask]


def non_causal_mask(input_shape: tuple[int, int], attention_mask: Tensor | None, cache: KVCache | None, *,
                    prefix_lengths: int | Sequence[int] | Tensor | None = None,
                    self_attention_mask: Tensor | None = None,
                    device: torch.device) -> Tensor | None:
    """The full self-attention mask of a ``DecoderOnlyLM.forward`` call that is not plainly causal.

    Args:
        input_shape: ``(batch, seq)`` of the new tokens.
        attention_mask: the checked ``(batch, past + seq)`` 0/1 padding mask, or ``None``.
        cache: the KV cache (``past`` tokens already in it), or ``None``.
        prefix_lengths: per-row prefix lengths (see ``check_prefix_lengths``).
        self_attention_mask: a bool ``(batch or 1, 1, seq, past + seq)`` mask given by the caller
            (UniLM's four masks); padding is added to it.
        device: the device of ``input_ids``.

    Returns:
        Bool ``(batch or 1, 1, seq, k_len)`` to use *instead of* the causal mask, or ``None`` when
        the causal mask is exactly right (a prefix that lies wholly inside the cache).

    Raises:
        ValueError / TypeError: both arguments given, a bad prefix length (see
            ``check_prefix_lengths``), a prefix that extends past the cached tokens, or a
            ``self_attention_mask`` of the wrong dtype, shape or device.

    >>> non_causal_mask((1, 3), None, None, prefix_lengths=2, device=torch.device("cpu"))[0, 0].int()
    tensor([[1, 1, 0],
            [1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    """
    if prefix_lengths is not None and self_attention_mask is not None:
        raise ValueError("pass prefix_lengths or self_attention_mask, not both (a prefix is one kind of mask), "
                         "got both")
    batch, seq = input_shape
    past = 0 if cache is None else int(cache.offset)
    total = past + seq
    first = None if cache is None else cache.layers[0]
    key_len = first.max_len if isinstance(first, StaticLayerCache) else total
    real = None if attention_mask is None else attention_mask.bool()
    if prefix_lengths is not None:
        lengths = real.sum(-1) if real is not None else torch.full((batch,), total, device=device)
        prefix = check_prefix_lengths(prefix_lengths, lengths)
        if past == 0:
            return prefix_lm_attention_mask(prefix, seq, real, key_len=key_len)
        cached = real[:, :past].sum(-1) if real is not None else torch.full((batch,), past, device=device)
        if bool((prefix > cached).any()):
            raise ValueError(
                f"prefix_lengths must lie within the {cached.tolist()} tokens already in the cache, got "
                f"{prefix.tolist()}: the cached keys of a prefix are valid only for that prefix -- run the whole "
                "prefix in one call (or without a cache); see llmarch.models.prefix_lm")
        return None  # the prefix is all cached: the new tokens see exactly the causal mask
    mask = self_attention_mask
    if not isinstance(mask, Tensor):
        raise TypeError(f"self_attention_mask must be a bool tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"self_attention_mask must be a bool tensor (True = may attend), got {mask.dtype}")
    if mask.ndim != 4 or mask.shape[0] not in (1, batch) or tuple(mask.shape[1:]) != (1, seq, total):
        raise ValueError(f"self_attention_mask must have shape (1 or {batch}, 1, {seq}, {total}) "
                         "(batch, 1, seq, cached + seq), got " + str(tuple(mask.shape)))
    if mask.device != device:
        raise ValueError(f"self_attention_mask must be on the device of input_ids ({device}), got {mask.device}")
    if real is not None:
        mask = mask & real[:, None, None, :]
    if key_len > total:
        mask = torch.nn.functional.pad(mask, (0, key_len - total), value=False)
    return mask
