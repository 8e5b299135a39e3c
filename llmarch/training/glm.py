"""GLM's autoregressive blank infilling (Du et al. 2022, arXiv:2103.10360, §2.1-2.2, Figure 2).

Spans of the text are blanked; the model fills them in, one token at a time::

    text    x1 x2 x3 x4 x5 x6          spans {x3} and {x5 x6}
    Part A  x1 x2 [M] x4 [M]           each span -> one [MASK]; read bidirectionally
    Part B  [S] x5 x6 [S] x3           the spans in a random order, each after a start token [S];
    target  x5 x6 [E] x3 [E]           read causally (each sees Part A and the Part B before it)

Every token carries two positions (the "2D positional encoding"): position 1 is its position in
Part A -- for a span token, the position of that span's ``[MASK]`` -- and position 2 is 0 in
Part A and ``1 .. len + 1`` inside a span of Part B. The model therefore knows *where* a span
goes, but not how long it is. The attention mask is the prefix-LM mask with Part A as the
prefix (``DecoderOnlyLM(..., prefix_lengths=part_a_length, block_position_ids=...)`` with
``config.position = "learned_2d"``), and the loss is the cross-entropy of Part B's targets.
Random spans and padded batches: ``llmarch.training.glm_sampling``.

What follows the paper's reference code (``THUDM/GLM``, ``blocklm_utils.py``,
``ConstructBlockStrategy``): span lengths ~ Poisson(3) (1 .. 39) drawn until 15% of the tokens are
covered, spans at random non-adjacent places, shuffled into Part B; ``sop`` ([S]) starts each
span's input and ``eop`` ([E]) ends its target; positions count from 0 (the code's ``[CLS]``
takes position 0, so its ``x1`` has position 1 as in the figure -- here, without ``[CLS]``, ``x1``
is 0). Not reproduced: the multi-task variants (document- and sentence-level spans, ``[gMASK]``,
``[sMASK]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from ..models.inputs import check_token_id
from ..nn.checks import check_integer_tensor, check_positive_int
from ..nn.masks import prefix_lm_mask
from .masked_lm import masked_lm_loss

__all__ = ["GLMExample", "check_spans", "glm_blank_infilling", "glm_loss", "glm_fill_blanks"]

IGNORE_INDEX = -100


@dataclass
class GLMExample:
    """One sequence in GLM's input format (all 1-D, length ``L = len(Part A) + len(Part B)``).

    Attributes:
        input_ids: ``(L,)`` Part A then Part B.
        position_ids: ``(L,)`` position 1: place in Part A (a span's ``[MASK]`` for its tokens).
        block_position_ids: ``(L,)`` position 2: 0 in Part A, ``1 ..`` inside each span.
        labels: ``(L,)`` -100 in Part A; in Part B each span's tokens then ``[E]``.
        part_a_length: tokens of Part A (the bidirectional prefix).
    """

    input_ids: Tensor
    position_ids: Tensor
    block_position_ids: Tensor
    labels: Tensor
    part_a_length: int

    def attention_mask(self) -> Tensor:
        """Bool ``(L, L)``, ``True`` = may attend: Part A sees Part A; Part B sees Part A and
        the Part B tokens up to itself (Figure 2(d)); the model gets it as
        ``prefix_lengths=part_a_length``.

        >>> ex = glm_blank_infilling(torch.tensor([1, 2, 3]), [(1, 2)], mask_token_id=0,
        ...                          start_token_id=4, end_token_id=5)
        >>> ex.attention_mask().int()      # Part A = x1 [M] x3, Part B = [S] x2
        tensor([[1, 1, 1, 0, 0],
                [1, 1, 1, 0, 0],
                [1, 1, 1, 0, 0],
                [1, 1, 1, 1, 0],
                [1, 1, 1, 1, 1]], dtype=torch.int32)
        """
        return prefix_lm_mask(self.part_a_length, len(self.input_ids), device=self.input_ids.device)[0, 0]


def check_spans(spans: Sequence[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Validate half-open spans ``[start, end)`` of a ``length``-token text; return them sorted.

    Raises:
        TypeError: if a span is not a pair of ints.
        ValueError: for no span, an empty span, one outside ``[0, length]``, or overlapping spans.

    >>> check_spans([(4, 6), (2, 3)], 6)
    [(2, 3), (4, 6)]
    >>> check_spans([(2, 4), (3, 5)], 6)
    Traceback (most recent call last):
    ...
    ValueError: spans must not overlap, got (2, 4) and (3, 5)
    """
    if isinstance(spans, (str, bytes)) or not isinstance(spans, Sequence):
        raise TypeError(f"spans must be a sequence of (start, end) pairs, got {type(spans).__name__}")
    if not spans:
        raise ValueError("spans must hold at least one (start, end) span, got none")
    checked = []
    for span in spans:
        if (not isinstance(span, (tuple, list)) or len(span) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in span)):
            raise TypeError(f"spans must hold (start, end) pairs of ints, got {span!r}")
        start, end = span
        if not 0 <= start < end <= length:
            raise ValueError(f"spans must be non-empty [start, end) ranges within the {length} tokens "
                             f"(0 <= start < end <= {length}), got ({start}, {end})")
        checked.append((start, end))
    checked.sort()
    for (s0, e0), (s1, e1) in zip(checked, checked[1:]):
        if s1 < e0:
            raise ValueError(f"spans must not overlap, got ({s0}, {e0}) and ({s1}, {e1})")
    return checked


# --8<-- [start:glm_blank_infilling]
def glm_blank_infilling(
    tokens: Tensor,
    spans: Sequence[tuple[int, int]],
    *,
    mask_token_id: int,
    start_token_id: int,
    end_token_id: int,
    order: Sequence[int] | None = None,
    generator: torch.Generator | None = None,
) -> GLMExample:
    """Turn a text and its spans into GLM's Part A / Part B input (Figure 2).

    Args:
        tokens: ``(n,)`` token ids of the text (without the special ids below).
        spans: ``[start, end)`` ranges to blank (non-overlapping, within the text).
        mask_token_id: id of ``[MASK]``.
        start_token_id: id of ``[S]``, the start of each span in Part B.
        end_token_id: id of ``[E]``, the target after each span.
        order: the order of the spans in Part B, as indices of the spans sorted by start
            (a permutation); default: a random permutation drawn with ``generator``.
        generator: a CPU ``torch.Generator``.

    Returns:
        A ``GLMExample``.

    Raises:
        ValueError / TypeError: bad ``tokens``, overlapping or out-of-range ``spans``,
            an ``order`` that is not a permutation, ``tokens`` holding a special id.

    >>> x = torch.tensor([1, 2, 3, 4, 5, 6])  # x1 .. x6;  [M] = 0, [S] = 7, [E] = 8
    >>> ex = glm_blank_infilling(x, [(2, 3), (4, 6)], mask_token_id=0, start_token_id=7,
    ...                          end_token_id=8, order=[1, 0])
    >>> ex.input_ids.tolist()  # x1 x2 [M] x4 [M] | [S] x5 x6 [S] x3
    [1, 2, 0, 4, 0, 7, 5, 6, 7, 3]
    >>> ex.position_ids.tolist(), ex.block_position_ids.tolist()
    ([0, 1, 2, 3, 4, 4, 4, 4, 2, 2], [0, 0, 0, 0, 0, 1, 2, 3, 1, 2])
    >>> ex.labels.tolist()  # targets x5 x6 [E] x3 [E] (-100: no loss)
    [-100, -100, -100, -100, -100, 5, 6, 8, 3, 8]
    """
    check_integer_tensor("tokens", tokens, shape_doc="(n,)", ndims=1)
    if tokens.numel() == 0:
        raise ValueError("tokens must hold at least one token, got shape (0,)")
    specials = {
        "mask_token_id": mask_token_id,
        "start_token_id": start_token_id,
        "end_token_id": end_token_id,
    }
    for name, value in specials.items():
        check_token_id(name, value, 2**62)
    if len(set(specials.values())) < 3:
        raise ValueError(
            "mask_token_id, start_token_id and end_token_id must differ, "
            f"got {list(specials.values())}"
        )
    text = tokens.tolist()
    clash = sorted(set(text) & set(specials.values()))
    if clash:
        raise ValueError(
            "tokens must not contain the special ids "
            f"([MASK], [S], [E] = {list(specials.values())}), got {clash[0]}"
        )
    spans = check_spans(spans, len(text))
    if order is None:
        order = torch.randperm(len(spans), generator=generator).tolist()
    elif (
        isinstance(order, (str, bytes))
        or any(isinstance(i, bool) or not isinstance(i, int) for i in order)
        or sorted(order) != list(range(len(spans)))
    ):
        raise ValueError(
            f"order must be a permutation of range({len(spans)}) (one index per span), "
            f"got {list(order)}"
        )
    # Part A: the text, each span replaced by a single [MASK]
    part_a, mask_positions, last = [], [], 0
    for start, end in spans:
        part_a += text[last:start]
        mask_positions.append(len(part_a))
        part_a.append(mask_token_id)
        last = end
    part_a += text[last:]
    # Part B: the spans in `order`; input [S] + span, target span + [E]; 2D positions
    part_b, targets, pos_b, block_b = [], [], [], []
    for index in order:
        start, end = spans[index]
        span = text[start:end]
        part_b += [start_token_id] + span
        targets += span + [end_token_id]
        pos_b += [mask_positions[index]] * (len(span) + 1)  # position 1: the [MASK]'s
        block_b += list(range(1, len(span) + 2))  # position 2: 1 .. len + 1
    n_a = len(part_a)

    def as_tensor(values: list[int]) -> Tensor:
        return torch.tensor(values, dtype=torch.long, device=tokens.device)

    return GLMExample(
        input_ids=as_tensor(part_a + part_b),
        position_ids=as_tensor(list(range(n_a)) + pos_b),
        block_position_ids=as_tensor([0] * n_a + block_b),
        labels=as_tensor([IGNORE_INDEX] * n_a + targets),
        part_a_length=n_a,
    )
# --8<-- [end:glm_blank_infilling]


# --8<-- [start:glm_loss]
def glm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """GLM's blank-infilling loss: the mean cross-entropy of Part B's targets.

    The logits at a Part B position predict the label *at that position* (its next span
    token, or ``[E]``): ``GLMExample.labels`` is already aligned, so there is no shift
    here.

    Args:
        logits: ``(batch, L, vocab)``.
        labels: ``(batch, L)`` -100 outside Part B.

    Returns:
        A scalar (fp32); 0 when there is no target.

    >>> labels = torch.tensor([[-100, 1, 3]])
    >>> round(float(glm_loss(torch.zeros(1, 3, 4), labels)), 4)  # log(4)
    1.3863
    """
    return masked_lm_loss(logits, labels)
# --8<-- [end:glm_loss]


# --8<-- [start:glm_fill_blanks]
@torch.no_grad()
def glm_fill_blanks(
    model,
    part_a: Tensor,
    *,
    mask_token_id: int,
    start_token_id: int,
    end_token_id: int,
    max_span_length: int = 16,
) -> list[Tensor]:
    """Greedy blank infilling with a KV cache: Part A once, then each span per token.

    Part A (the text with ``[MASK]`` s) runs once as the bidirectional prefix and is
    cached; the blanks are then filled left to right, each started by ``[S]`` at its
    ``[MASK]`` 's position and ended by ``[E]``, every new token attending to Part A and
    to the spans generated before it -- the Part B of training, produced one token at a
    time.

    Args:
        model: a ``DecoderOnlyLM`` with ``config.position == "learned_2d"`` (in eval
            mode).
        part_a: ``(n,)`` ids holding at least one ``mask_token_id``.
        mask_token_id: id of ``[MASK]``.
        start_token_id: id of ``[S]``.
        end_token_id: id of ``[E]``.
        max_span_length: stop a span after this many tokens if ``[E]`` has not come.

    Returns:
        One ``(len,)`` long tensor per ``[MASK]``, in text order (``[E]`` not included).

    Raises:
        ValueError: if ``part_a`` holds no ``[MASK]`` or is not 1-D, or the model is not
            GLM-shaped.

    >>> from llmarch import create_model
    >>> model = create_model("gpt2", num_layers=1, d_model=16, num_heads=2, d_ff=32,
    ...                      vocab_size=12, position="learned_2d").eval()
    >>> spans = glm_fill_blanks(model, torch.tensor([1, 9, 3, 9]), mask_token_id=9,
    ...                         start_token_id=10, end_token_id=11, max_span_length=3)
    >>> len(spans), all(len(s) <= 3 for s in spans)
    (2, True)
    """
    from ..nn.cache import KVCache

    check_integer_tensor("part_a", part_a, shape_doc="(n,)", ndims=1)
    check_positive_int("max_span_length", max_span_length)
    if getattr(getattr(model, "config", None), "position", None) != "learned_2d":
        raise ValueError(
            "model must be a DecoderOnlyLM with config.position='learned_2d' "
            "(GLM's 2D positions)"
        )
    blanks = (part_a == mask_token_id).nonzero().flatten().tolist()
    if not blanks:
        raise ValueError(
            f"part_a must hold at least one [MASK] (id {mask_token_id}), got none"
        )
    cache = KVCache.dynamic(model.config.num_layers)
    n = part_a.shape[0]
    model(
        part_a[None],
        cache=cache,
        position_ids=torch.arange(n, device=part_a.device)[None],
        prefix_lengths=n,
    )  # Part A: bidirectional, cached once
    spans = []
    for blank in blanks:
        token, span = start_token_id, []
        for step in range(1, max_span_length + 2):  # [S], then up to max tokens
            logits = model(
                part_a.new_tensor([[token]]),
                cache=cache,
                position_ids=part_a.new_tensor([[blank]]),
                block_position_ids=part_a.new_tensor([[step]]),
            )
            token = int(logits[0, -1].argmax())
            if token == end_token_id or len(span) == max_span_length:
                break
            span.append(token)
        spans.append(part_a.new_tensor(span))
    return spans
# --8<-- [end:glm_fill_blanks]
