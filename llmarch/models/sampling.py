"""Choosing the next token: greedy, temperature, top-k and top-p (nucleus) sampling.

The semantics follow Hugging Face's logits warpers (``TemperatureLogitsWarper``,
``TopKLogitsWarper``, ``TopPLogitsWarper``), applied in that order, so that the same seed and
the same logits pick the same tokens:

* temperature ``T`` divides the logits: ``T < 1`` sharpens the distribution, ``T > 1`` flattens it;
* top-k keeps the ``k`` largest logits (ties with the ``k``-th are kept too);
* top-p keeps the smallest set of most probable tokens whose probability reaches ``p``
  (Holtzman et al., 2020); the most probable token always survives.

Removed tokens get a logit of ``-inf``, i.e. probability zero.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..nn.checks import check_bool, check_float

__all__ = ["check_sampling_args", "process_logits", "select_next_token"]


def check_sampling_args(do_sample: bool, temperature: float, top_k: int | None, top_p: float | None,
                        generator: torch.Generator | None = None) -> None:
    """Raise ``ValueError`` / ``TypeError`` for impossible sampling settings (each message names the argument).

    ``temperature`` must be a finite number whatever the mode, and > 0 when sampling (greedy
    decoding ignores it, as Hugging Face does).

    >>> check_sampling_args(True, 0.0, None, None)
    Traceback (most recent call last):
    ...
    ValueError: temperature must be > 0 when sampling (do_sample=True), got 0.0
    >>> check_sampling_args(True, 1.0, None, 1.5)
    Traceback (most recent call last):
    ...
    ValueError: top_p must be in (0, 1], got 1.5
    """
    check_bool("do_sample", do_sample)
    temperature = check_float("temperature", temperature)  # finite, even when greedy ignores it
    if do_sample and not temperature > 0.0:
        raise ValueError(f"temperature must be > 0 when sampling (do_sample=True), got {temperature}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
    if top_p is not None and not 0.0 < check_float("top_p", top_p) <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__} ({generator!r})")


# --8<-- [start:process_logits]
def process_logits(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> Tensor:
    """Apply temperature, then top-k, then top-p to next-token ``logits``.

    Args:
        logits: unnormalised scores ``(batch, vocab)``.
        temperature: divide the logits by this (> 0).
        top_k: keep only the ``top_k`` largest logits.
        top_p: keep the smallest set of most probable tokens with total probability
            ``>= top_p``.

    Returns:
        New logits ``(batch, vocab)``; removed tokens are ``-inf``.

    >>> logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    >>> process_logits(logits, top_k=2)
    tensor([[3., 2., -inf, -inf]])
    >>> kept = process_logits(logits, top_p=0.9).isfinite()
    >>> kept.sum().item()  # 0.64 + 0.24 + 0.09 >= 0.9
    3
    """
    if temperature != 1.0:
        logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth_largest = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1)  # ascending
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= 1.0 - top_p  # the low tail whose mass is at most 1 - p
        remove[..., -1] = False  # always keep the most probable token
        logits = logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))
    return logits
# --8<-- [end:process_logits]


# --8<-- [start:select_next_token]
def select_next_token(logits: Tensor, *, do_sample: bool = False, temperature: float = 1.0,
                      top_k: int | None = None, top_p: float | None = None,
                      generator: torch.Generator | None = None) -> Tensor:
    """Pick one token per row: the arg-max (greedy) or a sample from the processed distribution.

    Args:
        logits: ``(batch, vocab)`` next-token scores.
        do_sample: sample instead of taking the arg-max.
        temperature: see ``process_logits`` (sampling only, as in Hugging Face).
        top_k: see ``process_logits``.
        top_p: see ``process_logits``.
        generator: a ``torch.Generator`` for reproducible sampling.

    Returns:
        Token ids ``(batch,)`` (``torch.long``).

    >>> logits = torch.tensor([[0.0, 5.0, 1.0], [2.0, 0.0, 0.0]])
    >>> select_next_token(logits).tolist()
    [1, 0]
    >>> g = torch.Generator().manual_seed(0)
    >>> select_next_token(logits, do_sample=True, top_k=1, generator=g).tolist()   # top-1 = greedy
    [1, 0]
    """
    if not do_sample:
        return logits.argmax(dim=-1)
    probs = process_logits(logits.float(), temperature=temperature, top_k=top_k, top_p=top_p).softmax(dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)
# --8<-- [end:select_next_token]
