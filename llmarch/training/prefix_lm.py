"""The prefix-LM objective: next-token prediction on the target only, with a bidirectional prefix.

Each sequence is split at a point ``p``: tokens ``x_0 .. x_{p-1}`` are the prefix (read with
bidirectional attention, ``DecoderOnlyLM(..., prefix_lengths=p)``), tokens ``x_p ..`` the target
(read causally). The loss is the causal LM's, restricted to the target: the logits at position
``t`` predict ``x_{t+1}`` for ``t >= p - 1`` only. Inside the prefix it cannot be used -- a
prefix position sees the whole prefix, so it would "predict" a token it can already read;
the prefix carries no loss at all. The last prefix position, ``p - 1``, does predict the first
target token ``x_p``: the prefix attends only to itself, so ``x_p`` is not visible there.

T5 trains its prefix LM this way on unlabeled text, splitting each span "at a random point into
prefix and target portions" (Raffel et al. 2020, §3.2.3 and §3.3.1); ``sample_prefix_lengths``
draws that point uniformly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..models.inputs import ID_DTYPES, check_attention_mask
from ..models.prefix_lm import check_prefix_lengths
from ..nn.checks import check_integer_tensor, check_positive_int
from .causal_lm import IGNORE_INDEX, causal_lm_loss

__all__ = ["sample_prefix_lengths", "prefix_lm_labels", "prefix_lm_loss"]


def sample_prefix_lengths(batch_size: int, seq_len: int, *, min_length: int = 1, max_length: int | None = None,
                          generator: torch.Generator | None = None, device=None) -> Tensor:
    """Random split points: one prefix length per row, uniform in ``[min_length, max_length]``.

    Args:
        batch_size: rows.
        seq_len: the sequence length (the largest possible prefix).
        min_length: shortest prefix (default 1).
        max_length: longest prefix (default ``seq_len - 1``: at least one target token inside
            the sequence).
        generator: a CPU ``torch.Generator`` for reproducible draws.
        device: device of the result.

    Returns:
        ``(batch_size,)`` ``torch.long``.

    Raises:
        ValueError: if ``min_length > max_length`` or ``max_length > seq_len``.
        TypeError: for non-int sizes.

    >>> sample_prefix_lengths(4, 10, generator=torch.Generator().manual_seed(0)).tolist()
    [9, 1, 3, 7]
    """
    check_positive_int("batch_size", batch_size)
    check_positive_int("seq_len", seq_len)
    check_positive_int("min_length", min_length, allow_zero=True)
    max_length = seq_len - 1 if max_length is None else check_positive_int("max_length", max_length, allow_zero=True)
    if max_length > seq_len:
        raise ValueError(f"max_length must be <= seq_len = {seq_len}, got {max_length}")
    if min_length > max_length:
        raise ValueError(f"min_length must be <= max_length = {max_length}, got {min_length}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    lengths = torch.randint(min_length, max_length + 1, (batch_size,), generator=generator)
    return lengths.to(device) if device is not None else lengths


# --8<-- [start:prefix_lm_labels]
def prefix_lm_labels(
    input_ids: Tensor,
    prefix_lengths: int | Sequence[int] | Tensor,
    attention_mask: Tensor | None = None,
) -> Tensor:
    """Prefix-LM loss labels: ``input_ids`` with the prefix and the padding set to -100.

    The prefix of row ``b`` is its first ``prefix_lengths[b]`` real tokens (as in the
    model's mask, so left padding works). With ``causal_lm_loss`` (which shifts by one)
    the logits at ``t`` are then scored against ``x_{t+1}`` for target tokens only.

    Args:
        input_ids: ``(batch, seq)`` token ids.
        prefix_lengths: an int or ``(batch,)`` prefix lengths.
        attention_mask: ``(batch, seq)`` 0/1, 0 at padding.

    Returns:
        ``(batch, seq)`` long labels.

    Raises:
        ValueError / TypeError: for bad ids or masks, ``prefix_lengths`` of the wrong
            shape, a negative prefix or one longer than its row.

    >>> prefix_lm_labels(torch.tensor([[5, 6, 7, 8, 9]]), [2])
    tensor([[-100, -100,    7,    8,    9]])
    """
    check_integer_tensor("input_ids", input_ids, shape_doc="(batch, seq)", ndims=2)
    if input_ids.dtype not in ID_DTYPES:
        raise TypeError(
            "input_ids must be an integer tensor (torch.long or torch.int32), "
            f"got {input_ids.dtype}"
        )
    if attention_mask is None:
        real = torch.ones_like(input_ids, dtype=torch.bool)
    else:
        real = check_attention_mask(
            attention_mask, tuple(input_ids.shape), device=input_ids.device
        )
    prefix = check_prefix_lengths(prefix_lengths, real.sum(-1))
    rank = real.long().cumsum(-1) - 1  # index of each token among the real ones
    in_prefix = rank < prefix[:, None]
    return input_ids.long().masked_fill(in_prefix | ~real, IGNORE_INDEX)
# --8<-- [end:prefix_lm_labels]


# --8<-- [start:prefix_lm_loss]
def prefix_lm_loss(
    logits: Tensor,
    input_ids: Tensor,
    prefix_lengths: int | Sequence[int] | Tensor,
    attention_mask: Tensor | None = None,
) -> Tensor:
    """Mean next-token cross-entropy over the target tokens.

    None on the prefix, none on padding.

    Args:
        logits: ``(batch, seq, vocab)`` from
            ``model(input_ids, prefix_lengths=prefix_lengths)``.
        input_ids: ``(batch, seq)`` the same ids.
        prefix_lengths: an int or ``(batch,)``.
        attention_mask: ``(batch, seq)`` 0/1, 0 at padding.

    Returns:
        A scalar (fp32): the mean over the predicted target tokens; 0 if there is none.

    Raises:
        ValueError / TypeError: as ``prefix_lm_labels`` and ``causal_lm_loss``.

    >>> logits = torch.zeros(1, 4, 10)  # uniform over 10 tokens
    >>> ids = torch.tensor([[1, 2, 3, 4]])
    >>> round(prefix_lm_loss(logits, ids, 2).item(), 4)  # log(10)
    2.3026
    """
    labels = prefix_lm_labels(input_ids, prefix_lengths, attention_mask)
    return causal_lm_loss(logits, labels)
# --8<-- [end:prefix_lm_loss]
