"""GLM's random spans and padded batches (Du et al. 2022, §2.1 and §2.3; ``THUDM/GLM``,
``blocklm_utils.py``): span lengths ~ Poisson(3), drawn until 15% of the tokens are blanked, placed
at random with a gap between spans; each row becomes a ``GLMExample`` (``llmarch.training.glm``)
and the rows are right-padded into one ``GLMBatch``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..nn.checks import check_float, check_integer_tensor, check_positive_int
from .glm import IGNORE_INDEX, check_spans, glm_blank_infilling  # noqa: F401  (check_spans: doctest)

__all__ = ["sample_glm_spans", "GLMBatch", "glm_batch"]


def sample_glm_spans(length: int, *, mask_ratio: float = 0.15, mean_span_length: float = 3.0,
                     max_span_length: int = 39, generator: torch.Generator | None = None) -> list[tuple[int, int]]:
    """GLM's span sampling: Poisson lengths until ``mask_ratio`` of the text is covered, placed at
    random with at least one unmasked token between two spans.

    Args:
        length: tokens in the text.
        mask_ratio: share of tokens to blank (GLM: 15%); at least one span is drawn.
        mean_span_length: the Poisson mean lambda (GLM: 3).
        max_span_length: longest span (GLM's code: 39).
        generator: a CPU ``torch.Generator``.

    Returns:
        Sorted, non-overlapping ``(start, end)`` spans.

    Raises:
        ValueError / TypeError: a non-positive ``length``, a ratio outside ``(0, 1)``, a
            non-positive mean or maximum.

    >>> spans = sample_glm_spans(100, generator=torch.Generator().manual_seed(0))
    >>> sum(end - start for start, end in spans) >= 15, spans == check_spans(spans, 100)
    (True, True)
    """
    check_positive_int("length", length)
    if not 0.0 < check_float("mask_ratio", mask_ratio) < 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
    lam = check_float("mean_span_length", mean_span_length, positive=True)
    check_positive_int("max_span_length", max_span_length)
    ks = torch.arange(1, max_span_length + 1, dtype=torch.float64)
    pmf = torch.exp(ks * math.log(lam) - lam - torch.lgamma(ks + 1))  # Poisson(lam) on 1 .. max
    target = max(1, int(mask_ratio * length))
    lengths: list[int] = []
    while sum(lengths) < target:
        lengths.append(min(int(torch.multinomial(pmf, 1, generator=generator)) + 1, length))
    while sum(lengths) + len(lengths) - 1 > length:  # too long for the text with a gap between spans:
        excess = sum(lengths) + len(lengths) - 1 - length  # shorten the last span, or drop it
        if lengths[-1] > excess:
            lengths[-1] -= excess
        else:
            lengths.pop()
    room = length - sum(lengths) - len(lengths) + 1            # free places to distribute
    places = torch.randint(0, room + 1, (len(lengths),), generator=generator).sort().values.tolist()
    spans, shift = [], 0
    for place, span_length in zip(places, lengths):
        start = shift + place
        spans.append((start, start + span_length))
        shift += span_length + 1
    return spans


@dataclass
class GLMBatch:
    """A right-padded batch of ``GLMExample`` s: every field ``(batch, L)`` except ``prefix_lengths``
    ``(batch,)`` (each row's Part A length). Feed it as ``model(input_ids, attention_mask,
    position_ids=..., block_position_ids=..., prefix_lengths=...)``."""

    input_ids: Tensor
    attention_mask: Tensor
    position_ids: Tensor
    block_position_ids: Tensor
    labels: Tensor
    prefix_lengths: Tensor


def glm_batch(windows: Tensor, *, mask_token_id: int, start_token_id: int, end_token_id: int,
              mask_ratio: float = 0.15, mean_span_length: float = 3.0,
              generator: torch.Generator | None = None) -> GLMBatch:
    """Sample spans for every row of ``windows`` and pad the examples into one batch.

    Args:
        windows: ``(batch, n)`` token ids.
        mask_token_id: id of ``[MASK]``.
        start_token_id: id of ``[S]``.
        end_token_id: id of ``[E]``.
        mask_ratio: as ``sample_glm_spans``.
        mean_span_length: as ``sample_glm_spans``.
        generator: a CPU ``torch.Generator`` (spans and Part B orders).

    Returns:
        A ``GLMBatch`` on the device of ``windows``; rows differ in length (``n + 2 x spans``) and
        are right-padded with ``end_token_id`` (attention mask 0, label -100, positions 0).

    Raises:
        ValueError / TypeError: as ``sample_glm_spans`` and ``glm_blank_infilling``.

    >>> batch = glm_batch(torch.arange(1, 21).repeat(2, 1), mask_token_id=0, start_token_id=21,
    ...                   end_token_id=22, generator=torch.Generator().manual_seed(0))
    >>> batch.input_ids.shape == batch.labels.shape == batch.block_position_ids.shape
    True
    >>> bool(((batch.labels != -100) == (batch.block_position_ids > 0)).all())   # targets: Part B only
    True
    """
    check_integer_tensor("windows", windows, shape_doc="(batch, n)", ndims=2)
    examples = [glm_blank_infilling(row, sample_glm_spans(windows.shape[1], mask_ratio=mask_ratio,
                                                          mean_span_length=mean_span_length, generator=generator),
                                    mask_token_id=mask_token_id, start_token_id=start_token_id,
                                    end_token_id=end_token_id, generator=generator)
                for row in windows.cpu()]
    width = max(len(e.input_ids) for e in examples)

    def stack(field: str, fill: int) -> Tensor:
        rows = [torch.nn.functional.pad(getattr(e, field), (0, width - len(e.input_ids)), value=fill)
                for e in examples]
        return torch.stack(rows).to(windows.device)

    real = torch.stack([torch.arange(width) < len(e.input_ids) for e in examples]).long().to(windows.device)
    return GLMBatch(stack("input_ids", end_token_id), real, stack("position_ids", 0),
                    stack("block_position_ids", 0), stack("labels", IGNORE_INDEX),
                    torch.tensor([e.part_a_length for e in examples], device=windows.device))
