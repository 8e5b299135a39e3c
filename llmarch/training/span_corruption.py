"""T5's pre-training objective: span corruption (Raffel et al., 2020, Section 3.1.4).

About 15% of the tokens (``noise_density``) are chosen in spans of mean length 3; each span is
replaced in the *input* by one sentinel token, and the *target* lists the sentinels, each
followed by the tokens it hid::

    tokens : Thank you for inviting me to your party last week .
    inputs : Thank you <X> me to your party <Y> week .
    targets: <X> for inviting <Y> last <Z>

Sentinels count down from the top of the vocabulary (T5's ``<extra_id_0>`` is id
``vocab_size - 1``, ``<extra_id_1>`` is ``vocab_size - 2``, ...). The mask follows the reference
``random_spans_noise_mask`` of the T5 code base (``t5.data.preprocessors``): the numbers of
noise tokens and spans are fixed by the length, and both the noise and the non-noise tokens are
split into that many spans by a random segmentation, interleaved starting with non-noise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..models.inputs import check_token_id
from ..nn.checks import check_float, check_integer_tensor, check_positive_int

__all__ = ["random_spans_noise_mask", "span_corruption", "sentinel_id"]


def sentinel_id(index: int, vocab_size: int) -> int:
    """Id of the ``index``-th sentinel (``<extra_id_{index}>``): ``vocab_size - 1 - index``.

    >>> sentinel_id(0, 32128), sentinel_id(1, 32128)
    (32127, 32126)
    """
    check_positive_int("vocab_size", vocab_size)
    check_positive_int("index", index, allow_zero=True)
    if index >= vocab_size:
        raise ValueError(f"index must be < vocab_size = {vocab_size} (one sentinel per top id), got {index}")
    return vocab_size - 1 - index


def _random_segmentation(num_items: int, num_segments: int, generator: torch.Generator | None) -> Tensor:
    """Split ``num_items`` into ``num_segments`` non-empty parts at random; their lengths."""
    first_in_segment = torch.zeros(num_items, dtype=torch.long)
    starts = torch.randperm(num_items - 1, generator=generator)[: num_segments - 1] + 1
    first_in_segment[starts] = 1
    segment_id = first_in_segment.cumsum(0)
    return torch.bincount(segment_id, minlength=num_segments)


def _float32(x: float) -> Tensor:
    # The reference counts in TensorFlow float32 and rounds halves to even (tf.round, as
    # torch.round). float64 gives other counts: 190 * 0.15 is 28.5 -> 28 there, 28.500002 -> 29 here.
    return torch.tensor(x, dtype=torch.float32)


# --8<-- [start:noise_mask]
def random_spans_noise_mask(
    length: int,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Which of ``length`` tokens to corrupt: a bool ``(length,)`` mask of noise spans.

    ``round(length * noise_density)`` noise tokens (at least 1, at most ``length - 1``)
    in ``round(noise_tokens / mean_noise_span_length)`` spans (at least 1); the sequence
    always starts with non-noise and ends with noise, as in the reference
    implementation.

    >>> mask = random_spans_noise_mask(20, generator=torch.Generator().manual_seed(0))
    >>> int(mask.sum()), mask.int().tolist()
    (3, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    """
    check_positive_int("length", length)
    if not 0.0 < check_float("noise_density", noise_density) < 1.0:
        raise ValueError(f"noise_density must be in (0, 1), got {noise_density}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be a torch.Generator or None, "
            f"got {type(generator).__name__} ({generator!r})"
        )
    if not check_float("mean_noise_span_length", mean_noise_span_length) >= 1.0:
        raise ValueError(
            f"mean_noise_span_length must be >= 1, got {mean_noise_span_length}"
        )
    original_length, length = length, max(length, 2)
    num_noise = int(torch.round(_float32(length) * _float32(noise_density)))
    num_noise = min(max(num_noise, 1), length - 1)
    num_spans = max(
        int(torch.round(_float32(num_noise) / _float32(mean_noise_span_length))), 1
    )
    noise_lengths = _random_segmentation(num_noise, num_spans, generator)
    keep_lengths = _random_segmentation(length - num_noise, num_spans, generator)
    interleaved = torch.stack((keep_lengths, noise_lengths), dim=1).reshape(
        -1
    )  # keep, noise, keep, ...
    span_starts = interleaved.cumsum(0)[:-1]
    span_start_indicator = torch.zeros(length, dtype=torch.long)
    span_start_indicator[span_starts] = 1
    is_noise = span_start_indicator.cumsum(0) % 2 == 1
    return is_noise[:original_length]
# --8<-- [end:noise_mask]


def _replace_spans(tokens: Tensor, mask: Tensor, vocab_size: int) -> Tensor:
    """Each run of ``mask`` becomes one sentinel (counting down from the top of the vocabulary)."""
    previous = torch.cat((mask.new_zeros(1), mask[:-1]))
    first = mask & ~previous
    sentinels = vocab_size - first.long().cumsum(0)  # first span -> vocab_size - 1
    out = torch.where(first, sentinels, tokens)
    return out[~(mask & previous)]  # drop the rest of each span


# --8<-- [start:span_corruption]
def span_corruption(tokens: Tensor, vocab_size: int, *, noise_density: float = 0.15,
                    mean_noise_span_length: float = 3.0, eos_token_id: int | None = None,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Corrupt spans of ``tokens`` (1-D): ``(inputs, targets)`` for an encoder-decoder.

    Args:
        tokens: ``(seq,)`` token ids, without EOS.
        vocab_size: the vocabulary size; its top ids serve as sentinels (they must not occur
            in ``tokens``).
        noise_density: fraction of tokens to corrupt (T5: 0.15).
        mean_noise_span_length: average span length (T5: 3).
        eos_token_id: appended to both inputs and targets when given (T5 does).
        generator: makes the corruption reproducible.

    Returns:
        ``inputs (n_in,)`` -- the tokens with each noise span replaced by one sentinel;
        ``targets (n_out,)`` -- each sentinel followed by the tokens it replaced.

    Raises:
        ValueError: if ``tokens`` is not 1-D, empty, holds a negative id or already contains
            sentinel ids, or a setting is out of range.
        TypeError: for non-integer tokens or settings of the wrong type.

    >>> tokens = torch.arange(10, 30)
    >>> inputs, targets = span_corruption(tokens, 100, generator=torch.Generator().manual_seed(0))
    >>> inputs.tolist()
    [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 99]
    >>> targets.tolist()
    [99, 27, 28, 29]
    """
    check_integer_tensor("tokens", tokens, shape_doc="(seq,)", ndims=1)
    check_positive_int("vocab_size", vocab_size)
    if tokens.shape[0] == 0:
        raise ValueError("tokens must hold at least one token, got shape (0,)")
    if tokens.device.type == "meta":
        raise ValueError("tokens must be on a device that holds values (cpu, cuda ...), got meta")
    if eos_token_id is not None:
        check_token_id("eos_token_id", eos_token_id, vocab_size)
    mask = random_spans_noise_mask(tokens.shape[0], noise_density, mean_noise_span_length,
                                   generator=generator).to(tokens.device)
    num_sentinels = int(mask.sum()) + 1
    if int(tokens.min()) < 0:
        raise ValueError(f"tokens must be non-negative ids, got a smallest id of {int(tokens.min())}")
    if int(tokens.max()) >= vocab_size - num_sentinels:
        raise ValueError(f"tokens must stay below the sentinel ids (>= {vocab_size - num_sentinels} for "
                         f"vocab_size={vocab_size}), got a largest id of {int(tokens.max())}")
    inputs = _replace_spans(tokens, mask, vocab_size)
    targets = _replace_spans(tokens, ~mask, vocab_size)
    if eos_token_id is not None:
        eos = tokens.new_tensor([eos_token_id])
        inputs, targets = torch.cat((inputs, eos)), torch.cat((targets, eos))
    return inputs, targets
# --8<-- [end:span_corruption]
