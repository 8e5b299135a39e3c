"""UniLM (Dong et al. 2019): one shared Transformer, four language models chosen by the mask.

Every UniLM objective is a **cloze** task (§2.3): pick 15% of the tokens, corrupt them (80%
``[MASK]``, 10% a random token, 10% unchanged) and predict the original token *at its own
position* from the output vector there. The objectives differ only in the self-attention mask,
i.e. in which context that prediction may use:

* ``"bidirectional"`` -- every token sees every token (BERT's masked LM);
* ``"left_to_right"`` -- token ``i`` sees ``j <= i``: "to predict the masked token of
  x1 x2 [MASK] x4, only tokens x1, x2 and itself can be used";
* ``"right_to_left"`` -- token ``i`` sees ``j >= i``;
* ``"seq2seq"`` -- a source segment (the first ``s`` tokens) sees itself bidirectionally and
  not the target; a target token sees the source and the target to its left, itself included
  (the prefix-LM mask with the source as prefix). Masked tokens are drawn from both segments.

Within a batch the objectives are mixed (§2.4): "1/3 of the time we use the bidirectional LM
objective, 1/3 of the time we employ the sequence-to-sequence LM objective, and both
left-to-right and right-to-left LM objectives are sampled with rate of 1/6". Here each row of a
batch draws its objective independently with those probabilities, and the loss is the mean
cross-entropy over all masked tokens of the batch.

Simplifications, stated plainly (what this module does *not* reproduce):

* masking picks single tokens; the paper masks a bigram or trigram 20% of the time;
* no ``[SOS]``/``[EOS]`` tokens, no segment embeddings identifying the objective (§2.1), and no
  next-sentence prediction for the bidirectional objective; a seq2seq row's split point is drawn
  uniformly in ``[1, seq - 1]`` instead of following sentence boundaries;
* the model is ``DecoderOnlyLM`` (its tied linear head; UniLM uses BERT's MLM head).

A UniLM model predicts the token *at* a ``[MASK]`` position, not the next token; decoding with
it appends ``[MASK]`` and reads its prediction (§3), so ``generate`` (next-token) does not apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import Tensor

from ..nn.checks import check_float, check_integer_tensor, check_positive_int
from .masked_lm import mask_tokens, masked_lm_loss

__all__ = ["UNILM_KINDS", "UNILM_PROPORTIONS", "UniLMBatch", "sample_unilm_kinds", "unilm_attention_masks",
           "unilm_batch", "unilm_loss"]

UNILM_KINDS = ("bidirectional", "left_to_right", "right_to_left", "seq2seq")
UNILM_PROPORTIONS = (1 / 3, 1 / 6, 1 / 6, 1 / 3)  # in the order of UNILM_KINDS (Dong et al. 2019, §2.4)


def _kind_codes(kinds: Sequence[str] | Tensor, batch_size: int | None = None) -> Tensor:
    """Names or integer codes -> ``(batch,)`` long codes into ``UNILM_KINDS``."""
    if isinstance(kinds, Tensor):
        check_integer_tensor("kinds", kinds, shape_doc="(batch,)", ndims=1)
        codes = kinds.long()
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= len(UNILM_KINDS)):
            raise ValueError(f"kinds must be codes in [0, {len(UNILM_KINDS)}) (indices into UNILM_KINDS), "
                             f"got values in [{int(codes.min())}, {int(codes.max())}]")
    else:
        if isinstance(kinds, (str, bytes)) or not isinstance(kinds, Sequence):
            raise TypeError(f"kinds must be a sequence of objective names or a (batch,) tensor of codes, "
                            f"got {type(kinds).__name__} ({kinds!r})")
        unknown = [k for k in kinds if k not in UNILM_KINDS]
        if unknown:
            raise ValueError(f"kinds must name objectives among {', '.join(UNILM_KINDS)}, got {unknown[0]!r}")
        codes = torch.tensor([UNILM_KINDS.index(k) for k in kinds], dtype=torch.long)
    if codes.numel() == 0:
        raise ValueError("kinds must hold one objective per row, got none")
    if batch_size is not None and codes.shape[0] != batch_size:
        raise ValueError(f"kinds must have one entry per row ({batch_size}), got {codes.shape[0]}")
    return codes


def sample_unilm_kinds(batch_size: int, *, proportions: Sequence[float] = UNILM_PROPORTIONS,
                       generator: torch.Generator | None = None) -> Tensor:
    """Draw each row's objective: codes into ``UNILM_KINDS`` with probabilities ``proportions``.

    Args:
        batch_size: rows.
        proportions: four non-negative weights, in the order of ``UNILM_KINDS`` (normalised).
        generator: a CPU ``torch.Generator``.

    Returns:
        ``(batch_size,)`` long codes.

    Raises:
        ValueError: for a weight list that is not four non-negative numbers with a positive sum.

    >>> codes = sample_unilm_kinds(6000, generator=torch.Generator().manual_seed(0))
    >>> [round(float((codes == k).float().mean()), 1) for k in range(4)]   # 1/3, 1/6, 1/6, 1/3
    [0.3, 0.2, 0.2, 0.3]
    """
    check_positive_int("batch_size", batch_size)
    weights = [check_float("proportions", p, non_negative=True) for p in proportions]
    if len(weights) != len(UNILM_KINDS) or sum(weights) <= 0:
        raise ValueError(f"proportions must be {len(UNILM_KINDS)} non-negative weights with a positive sum (order "
                         f"{', '.join(UNILM_KINDS)}), got {list(proportions)}")
    return torch.multinomial(torch.tensor(weights, dtype=torch.float), batch_size, replacement=True,
                             generator=generator)


# --8<-- [start:unilm_attention_masks]
def unilm_attention_masks(
    kinds: Sequence[str] | Tensor, seq_len: int, source_lengths: Tensor | None = None
) -> Tensor:
    """One self-attention mask per row, each for that row's objective.

    Args:
        kinds: ``(batch,)`` codes into ``UNILM_KINDS``, or their names.
        seq_len: sequence length.
        source_lengths: ``(batch,)`` source-segment length of the ``"seq2seq"`` rows
            (ignored elsewhere), each in ``[1, seq_len]``.

    Returns:
        Bool ``(batch, 1, seq_len, seq_len)``, ``True`` = may attend
        (``DecoderOnlyLM(..., self_attention_mask=...)``).

    Raises:
        ValueError / TypeError: unknown kinds, a missing or out-of-range source length.

    >>> kinds = ["left_to_right", "seq2seq"]
    >>> masks = unilm_attention_masks(kinds, 4, torch.tensor([0, 2]))
    >>> masks[1, 0].int()  # source x0 x1 bidirectional, target causal
    tensor([[1, 1, 0, 0],
            [1, 1, 0, 0],
            [1, 1, 1, 0],
            [1, 1, 1, 1]], dtype=torch.int32)
    """
    codes = _kind_codes(kinds)
    check_positive_int("seq_len", seq_len)
    seq2seq = codes == UNILM_KINDS.index("seq2seq")
    if source_lengths is None:
        if bool(seq2seq.any()):
            raise ValueError("source_lengths are required for 'seq2seq' rows, got None")
        source_lengths = torch.zeros_like(codes)
    check_integer_tensor(
        "source_lengths", source_lengths, shape_doc="(batch,)", ndims=1
    )
    if source_lengths.shape != codes.shape:
        raise ValueError(
            f"source_lengths must have shape (batch,) = {tuple(codes.shape)}, "
            f"got {tuple(source_lengths.shape)}"
        )
    device = codes.device
    source = source_lengths.to(device).long()
    if bool((seq2seq & ((source < 1) | (source > seq_len))).any()):
        raise ValueError(
            f"source_lengths of 'seq2seq' rows must lie in [1, {seq_len}], "
            f"got {source.tolist()}"
        )
    query = torch.arange(seq_len, device=device)[:, None]
    key = torch.arange(seq_len, device=device)[None, :]
    left = key <= query  # left-to-right: j <= i
    right = key >= query  # right-to-left: j >= i
    in_source = key[None] < source[:, None, None]  # (batch, 1, k)
    candidates = torch.stack(
        [
            torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).expand(
                len(codes), -1, -1
            ),  # bidirectional
            left.expand(len(codes), -1, -1),
            right.expand(len(codes), -1, -1),
            in_source | left,  # seq2seq = prefix LM on the source
        ]
    )  # (4, batch, q, k)
    return candidates[codes, torch.arange(len(codes), device=device)][:, None]
# --8<-- [end:unilm_attention_masks]


@dataclass
class UniLMBatch:
    """Inputs and targets of one UniLM batch.

    Attributes:
        input_ids: ``(batch, seq)`` the corrupted ids (cloze inputs).
        labels: ``(batch, seq)`` the original ids at the masked positions, -100 elsewhere.
        self_attention_mask: bool ``(batch, 1, seq, seq)``, each row its objective's mask.
        kinds: ``(batch,)`` codes into ``UNILM_KINDS``.
        source_lengths: ``(batch,)`` source length of the seq2seq rows (0 for the others).
    """

    input_ids: Tensor
    labels: Tensor
    self_attention_mask: Tensor
    kinds: Tensor
    source_lengths: Tensor


# --8<-- [start:unilm_batch]
def unilm_batch(
    input_ids: Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    kinds: Sequence[str] | Tensor | None = None,
    source_lengths: Tensor | None = None,
    proportions: Sequence[float] = UNILM_PROPORTIONS,
    mlm_probability: float = 0.15,
    special_token_ids: Iterable[int] = (),
    generator: torch.Generator | None = None,
) -> UniLMBatch:
    """Build a mixed-objective UniLM batch: per-row objective, mask, cloze corruption.

    Args:
        input_ids: ``(batch, seq)`` clean token ids (``seq >= 2`` when a row is
            seq2seq).
        mask_token_id: id of ``[MASK]``.
        vocab_size: random replacements are drawn from ``[0, vocab_size)``.
        kinds: each row's objective (names or codes); default: drawn with
            ``proportions``.
        source_lengths: ``(batch,)`` source lengths of seq2seq rows; default: uniform in
            ``[1, seq - 1]``.
        proportions: weights of ``UNILM_KINDS`` when ``kinds`` is drawn.
        mlm_probability: share of tokens masked in each row (15%); 80/10/10 as BERT.
        special_token_ids: ids never masked.
        generator: a CPU ``torch.Generator`` for every draw.

    Returns:
        A ``UniLMBatch`` on the device of ``input_ids``.

    Raises:
        ValueError / TypeError: bad ids, kinds, lengths or probabilities (see the
            helpers).

    >>> batch = unilm_batch(torch.arange(1, 9).repeat(2, 1), mask_token_id=0,
    ...                     vocab_size=20, kinds=["right_to_left", "seq2seq"],
    ...                     generator=torch.Generator().manual_seed(0))
    >>> n_labels = int((batch.labels != -100).sum())  # round(0.15 * 8) per row
    >>> batch.self_attention_mask.shape, n_labels
    (torch.Size([2, 1, 8, 8]), 2)
    """
    check_integer_tensor("input_ids", input_ids, shape_doc="(batch, seq)", ndims=2)
    batch, seq = input_ids.shape
    codes = (
        sample_unilm_kinds(batch, proportions=proportions, generator=generator)
        if kinds is None
        else _kind_codes(kinds, batch)
    )
    if source_lengths is None:
        is_seq2seq = codes == UNILM_KINDS.index("seq2seq")
        if bool(is_seq2seq.any()) and seq < 2:
            raise ValueError(
                "input_ids must hold at least 2 tokens per row for a seq2seq row "
                f"(source and target), got {seq}"
            )
        drawn = torch.randint(1, max(seq, 2), (batch,), generator=generator)
        source_lengths = torch.where(is_seq2seq, drawn, torch.zeros_like(drawn))
    masks = unilm_attention_masks(codes, seq, source_lengths)
    inputs, labels = mask_tokens(
        input_ids,
        mask_token_id=mask_token_id,
        vocab_size=vocab_size,
        special_token_ids=special_token_ids,
        mlm_probability=mlm_probability,
        generator=generator,
    )
    device = input_ids.device
    return UniLMBatch(
        inputs,
        labels,
        masks.to(device),
        codes.to(device),
        source_lengths.to(device).long(),
    )
# --8<-- [end:unilm_batch]


def unilm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """UniLM's objective: the mean cross-entropy over the masked tokens of the batch, every
    objective pooled (the "sum of the LM objectives" of §2.4, averaged per predicted token).

    The logits at a masked position predict the token *there* (no shift, unlike
    ``causal_lm_loss``).

    Args:
        logits: ``(batch, seq, vocab)`` from ``model(batch.input_ids, self_attention_mask=...)``.
        labels: ``(batch, seq)`` from ``unilm_batch``.

    Returns:
        A scalar (fp32); 0 when nothing is masked.

    Raises:
        ValueError / TypeError: shapes that disagree, labels neither a class nor -100.

    >>> round(float(unilm_loss(torch.zeros(1, 3, 4), torch.tensor([[-100, 2, -100]]))), 4)   # log(4)
    1.3863
    """
    return masked_lm_loss(logits, labels)
