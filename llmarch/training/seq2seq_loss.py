"""The sequence-to-sequence training loss: teacher forcing with label smoothing.

The decoder reads the target shifted one step to the right (starting with the decoder start
token) and predicts the target itself. Vaswani et al. (2017, Section 5.4) train with label
smoothing of value 0.1 (Szegedy et al., 2016): the one-hot target is mixed with the uniform
distribution, $q = (1 - \\epsilon)\\,\\text{onehot}(y) + \\epsilon / V$, which "hurts
perplexity, as the model learns to be more unsure, but improves accuracy and BLEU score".
Padding positions of the target carry no loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.inputs import check_labels
from ..nn.checks import check_float, check_integer_tensor, check_positive_int
from .causal_lm import check_logits

__all__ = ["shift_right", "label_smoothed_cross_entropy", "IGNORE_INDEX"]

IGNORE_INDEX = -100  # the label of positions without loss (PyTorch's and Hugging Face's default)


def shift_right(labels: Tensor, decoder_start_token_id: int, pad_token_id: int) -> Tensor:
    """Decoder inputs for teacher forcing: ``[start, y_1, ..., y_{n-1}]`` (as Hugging Face's T5).

    ``IGNORE_INDEX`` labels become ``pad_token_id``.

    >>> shift_right(torch.tensor([[5, 6, 1, -100]]), decoder_start_token_id=0, pad_token_id=0)
    tensor([[0, 5, 6, 1]])
    """
    check_integer_tensor("labels", labels, shape_doc="(batch, tgt)", ndims=2)
    if labels.shape[1] == 0:
        raise ValueError(f"labels must hold at least one token, got shape {tuple(labels.shape)}")
    check_positive_int("decoder_start_token_id", decoder_start_token_id, allow_zero=True)
    check_positive_int("pad_token_id", pad_token_id, allow_zero=True)
    shifted = labels.new_full(labels.shape, decoder_start_token_id)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad_token_id)


# --8<-- [start:label_smoothing]
def label_smoothed_cross_entropy(
    logits: Tensor,
    labels: Tensor,
    epsilon: float = 0.1,
    *,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Mean cross-entropy against the smoothed target.

    The target is ``(1 - epsilon) * onehot + epsilon / vocab``.

    Args:
        logits: ``(batch, tgt, vocab)`` decoder outputs.
        labels: ``(batch, tgt)`` target ids; ``ignore_index`` marks padding (no loss).
        epsilon: label smoothing (the original Transformer: 0.1; 0 = plain
            cross-entropy).
        ignore_index: label value without loss.

    Returns:
        Scalar: the loss averaged over the non-ignored positions.

    Raises:
        ValueError: on mismatched shapes, a label that is neither a class nor
            ``ignore_index``, or ``epsilon`` outside ``[0, 1)``.
        TypeError: for integer logits, non-integer labels or a non-number ``epsilon``.

    >>> logits, labels = torch.randn(2, 3, 7), torch.tensor([[1, 2, -100], [3, 4, 5]])
    >>> ours = label_smoothed_cross_entropy(logits, labels, 0.1)
    >>> reference = torch.nn.functional.cross_entropy(
    ...     logits.view(-1, 7), labels.view(-1), label_smoothing=0.1)
    >>> torch.allclose(ours, reference)
    True
    """
    check_logits(logits, "(batch, tgt, vocab)")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(
            "ignore_index must be an int, "
            f"got {type(ignore_index).__name__} ({ignore_index!r})"
        )
    labels = check_labels(
        labels, logits, ignore_index=ignore_index, shape_doc="(batch, tgt)"
    )
    if not 0.0 <= check_float("epsilon", epsilon) < 1.0:
        raise ValueError(f"epsilon must be in [0, 1), got {epsilon}")
    log_probs = F.log_softmax(logits.float(), dim=-1)
    keep = labels != ignore_index
    nll = -log_probs.gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)  # -log q(y)
    uniform = -log_probs.mean(dim=-1)  # cross-entropy with the uniform distribution
    loss = (1.0 - epsilon) * nll + epsilon * uniform
    return loss[keep].sum() / keep.sum().clamp(min=1)
# --8<-- [end:label_smoothing]
