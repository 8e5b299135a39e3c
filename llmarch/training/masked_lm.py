"""BERT's masked-language-model objective (Devlin et al., 2019, §3.1 and Appendix A.1, C.2).

Pick 15% of the real (non-special, non-padding) tokens of each sequence as prediction targets.
Of those, 80% become ``[MASK]``, 10% a random token and 10% stay unchanged; the loss is computed
on the selected positions only (labels ``-100`` elsewhere). The random and unchanged cases exist
because ``[MASK]`` never appears at fine-tuning time: the model cannot rely on "only ``[MASK]``
positions matter", and must keep a good representation of *every* input token.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor

from ..models.inputs import check_attention_mask, check_labels, check_token_id, check_token_ids
from ..nn.checks import check_float, check_positive_int
from .causal_lm import check_logits, mean_cross_entropy

__all__ = ["mask_tokens", "masked_lm_loss", "IGNORE_INDEX"]

IGNORE_INDEX = -100  # label of positions without a target (PyTorch's cross_entropy default)


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 <= check_float(name, value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


# --8<-- [start:mask_tokens]
def mask_tokens(
    input_ids: Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    special_token_ids: Iterable[int] = (),
    attention_mask: Tensor | None = None,
    mlm_probability: float = 0.15,
    mask_fraction: float = 0.8,
    random_fraction: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Corrupt ``input_ids`` for masked-LM training, BERT's way.

    In each sequence exactly ``round(mlm_probability * n)`` of its ``n`` eligible tokens
    (at least one, when ``n > 0``) are selected, uniformly at random. Eligible means:
    not padding (``attention_mask == 0``) and not one of ``special_token_ids``
    (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[MASK]`` ...). Each selected token independently
    becomes ``[MASK]`` with probability ``mask_fraction``, a uniformly random vocabulary
    token with probability ``random_fraction`` (as in BERT's reference code, any id in
    ``[0, vocab_size)``), and stays unchanged otherwise.

    Args:
        input_ids: ``(batch, seq)`` token ids (not modified).
        mask_token_id: id of ``[MASK]``.
        vocab_size: random replacements are drawn from ``[0, vocab_size)``.
        special_token_ids: ids that are never selected.
        attention_mask: ``(batch, seq)``, 0 at padding (never selected).
        mlm_probability: fraction of eligible tokens to predict (BERT: 0.15).
        mask_fraction: share of selected tokens replaced by ``[MASK]`` (80%).
        random_fraction: share replaced by a random token (10%); the rest stays
            unchanged.
        generator: a ``torch.Generator`` for reproducible corruption.

    Returns:
        ``(inputs, labels)``, both ``(batch, seq)`` long: the corrupted inputs, and the
        original ids at selected positions with ``IGNORE_INDEX`` (-100) everywhere else.

    Raises:
        ValueError: for fractions outside ``[0, 1]`` (or mask + random > 1), ids out of
            range, or an ``attention_mask`` of another shape.

    >>> ids = torch.tensor([[101, 7, 8, 9, 10, 11, 12, 13, 14, 102, 0, 0]])
    >>> inputs, labels = mask_tokens(ids, mask_token_id=103, vocab_size=200,
    ...                              special_token_ids=[0, 101, 102],
    ...                              generator=torch.Generator().manual_seed(0))
    >>> int((labels != -100).sum())  # round(0.15 * 8 eligible tokens) = 1
    1
    >>> bool((labels[:, [0, 9, 10, 11]] == -100).all())  # never [CLS], [SEP] or [PAD]
    True
    """
    check_positive_int("vocab_size", vocab_size)
    check_token_ids("input_ids", input_ids, vocab_size)
    check_token_id("mask_token_id", mask_token_id, vocab_size)
    if isinstance(special_token_ids, (str, bytes)) or not hasattr(
        special_token_ids, "__iter__"
    ):
        raise TypeError(
            "special_token_ids must be an iterable of ints, "
            f"got {type(special_token_ids).__name__} ({special_token_ids!r})"
        )
    special_token_ids = list(special_token_ids)
    for value in special_token_ids:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                "special_token_ids must hold ints, "
                f"got {type(value).__name__} ({value!r})"
            )
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be a torch.Generator or None, "
            f"got {type(generator).__name__} ({generator!r})"
        )
    for name, value in (
        ("mlm_probability", mlm_probability),
        ("mask_fraction", mask_fraction),
        ("random_fraction", random_fraction),
    ):
        _check_fraction(name, value)
    if mask_fraction + random_fraction > 1.0:
        raise ValueError(
            "mask_fraction + random_fraction must be <= 1, "
            f"got {mask_fraction} + {random_fraction}"
        )
    device = input_ids.device
    eligible = torch.ones_like(input_ids, dtype=torch.bool)
    if attention_mask is not None:
        eligible &= check_attention_mask(
            attention_mask, tuple(input_ids.shape), device=input_ids.device
        )
    special = torch.as_tensor(
        list(special_token_ids), dtype=input_ids.dtype, device=device
    )
    if special.numel():
        eligible &= ~torch.isin(input_ids, special)

    # draws follow the generator
    draw_device = generator.device if generator is not None else device

    def uniform(shape):
        return torch.rand(shape, generator=generator, device=draw_device).to(device)

    # Exactly k = round(p * n) targets per row (at least one): the k eligible tokens
    # with the smallest random scores. Ineligible tokens get +inf and are ranked last.
    n = eligible.sum(dim=1, keepdim=True)
    k = torch.where(n > 0, (n * mlm_probability).round().clamp(min=1), n)
    scores = uniform(input_ids.shape).masked_fill(~eligible, float("inf"))
    rank = scores.argsort(dim=1).argsort(dim=1)
    selected = (rank < k) & eligible

    labels = input_ids.masked_fill(~selected, IGNORE_INDEX)
    action = uniform(input_ids.shape)  # one draw decides [MASK] / random / unchanged
    to_mask = selected & (action < mask_fraction)
    to_random = (
        selected
        & (action >= mask_fraction)
        & (action < mask_fraction + random_fraction)
    )
    random_ids = torch.randint(
        vocab_size, input_ids.shape, generator=generator, device=draw_device
    ).to(device)
    inputs = input_ids.masked_fill(to_mask, mask_token_id)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels
# --8<-- [end:mask_tokens]


def masked_lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over the selected positions (labels ``!= -100``).

    Args:
        logits: ``(batch, seq, vocab_size)``.
        labels: ``(batch, seq)`` from ``mask_tokens``.

    Returns:
        A scalar (fp32); 0 when no position is selected.

    Raises:
        ValueError: if the shapes do not agree or a label is neither a class nor -100.
        TypeError: for integer logits or non-integer labels.

    >>> logits = torch.zeros(1, 3, 4)
    >>> round(float(masked_lm_loss(logits, torch.tensor([[-100, 2, -100]]))), 4)   # log(4)
    1.3863
    """
    check_logits(logits)
    labels = check_labels(labels, logits, ignore_index=IGNORE_INDEX)
    return mean_cross_entropy(logits.flatten(0, 1), labels.flatten())
