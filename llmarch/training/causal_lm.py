"""The causal language-modelling objective: predict every next token (teacher forcing).

One forward pass over ``x_1 ... x_T`` yields the distribution of ``x_{t+1}`` at every position
``t`` -- the causal mask guarantees that position ``t`` never saw ``x_{t+1}``. The model is fed the
*true* prefix at every position (teacher forcing), not its own predictions, so all ``T - 1``
predictions of a sequence are trained in parallel. The loss is the mean cross-entropy of the
logits at ``t`` against the token at ``t + 1``; padding is ignored.
"""

from __future__ import annotations

from torch import Tensor

from ..models.inputs import ID_DTYPES, check_attention_mask, check_labels
from ..nn.checks import check_integer_tensor, check_tensor
from ..nn.linear_cross_entropy import mean_cross_entropy  # the objectives import it from here too

__all__ = ["causal_lm_labels", "causal_lm_loss", "IGNORE_INDEX"]

IGNORE_INDEX = -100  # PyTorch's cross_entropy default ignore_index


def check_logits(logits: Tensor, shape_doc: str = "(batch, seq, vocab)") -> Tensor:
    """Raise unless ``logits`` is a floating ``(batch, seq, vocab)`` tensor."""
    check_tensor("logits", logits)
    if logits.ndim != 3:
        raise ValueError(f"logits must be {shape_doc} (3 dims), got shape {tuple(logits.shape)}")
    if not logits.dtype.is_floating_point:
        raise TypeError(f"logits must be a floating-point tensor, got {logits.dtype}")
    return logits


def causal_lm_labels(input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Labels for ``causal_lm_loss``: the input ids with padding set to ``-100`` (ignored).

    >>> import torch
    >>> causal_lm_labels(torch.tensor([[5, 6, 7, 0]]), torch.tensor([[1, 1, 1, 0]]))
    tensor([[   5,    6,    7, -100]])
    """
    check_integer_tensor("input_ids", input_ids, shape_doc="(batch, seq)", ndims=2)
    if input_ids.dtype not in ID_DTYPES:
        raise TypeError(f"input_ids must be an integer tensor (torch.long or torch.int32), got {input_ids.dtype}")
    if attention_mask is None:
        return input_ids.clone()
    real = check_attention_mask(attention_mask, tuple(input_ids.shape), device=input_ids.device)
    return input_ids.masked_fill(~real, IGNORE_INDEX)


# --8<-- [start:causal_lm_loss]
def causal_lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean next-token cross-entropy: logits at position ``t`` predict
    ``labels[:, t + 1]``.

    Args:
        logits: ``(batch, seq, vocab)`` from one forward pass over the inputs.
        labels: ``(batch, seq)`` -- usually the inputs themselves, ``-100`` where no
            loss is wanted (padding; see ``causal_lm_labels``).

    Returns:
        A scalar (fp32): the mean over all predicted (non-ignored) positions; 0 if
        there is none.

    Raises:
        ValueError: if the shapes disagree, the sequence is shorter than 2, or a label
            is neither a class in ``[0, vocab)`` nor ``-100``.
        TypeError: for integer logits or non-integer labels.

    >>> import torch
    >>> logits = torch.zeros(1, 3, 10)             # uniform predictions over 10 tokens
    >>> round(causal_lm_loss(logits, torch.tensor([[1, 2, 3]])).item(), 4)   # = log(10)
    2.3026
    """
    check_logits(logits)
    labels = check_labels(labels, logits, ignore_index=IGNORE_INDEX)
    if labels.shape[1] < 2:
        raise ValueError(
            "labels must hold at least 2 tokens per row (causal_lm_loss needs "
            "sequences of at least 2 tokens: one to read, one to predict), "
            f"got {labels.shape[1]}"
        )
    shifted_logits = logits[:, :-1]  # positions 0 .. T-2 predict
    targets = labels[:, 1:]  # tokens    1 .. T-1
    return mean_cross_entropy(
        shifted_logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    )
# --8<-- [end:causal_lm_loss]
