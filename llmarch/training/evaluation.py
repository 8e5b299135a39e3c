"""Validation loss and perplexity.

Perplexity is ``exp(loss)`` with the loss in nats per predicted token: the number of equally
likely tokens the model is, on average, hesitating between (a uniform guess over V tokens has
perplexity V). It depends on the tokenizer -- a character-level and a BPE model are compared by
bits per character, not by perplexity.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import Tensor, nn

from ..models.config import ModelConfig
from .objectives import Objective

__all__ = ["evaluate", "autocast_context"]


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``'s type, or nothing for ``None`` (fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# --8<-- [start:evaluate]
@torch.no_grad()
def evaluate(
    model: nn.Module,
    objective: Objective,
    ids: Tensor,
    *,
    config: ModelConfig,
    seq_len: int,
    batch_size: int,
    base_vocab: int,
    max_batches: int | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> dict:
    """The mean loss over (up to ``max_batches``) consecutive windows of ``ids``, and
    its perplexity.

    Args:
        model: the model (evaluation mode is set inside and the previous mode restored).
        objective: how windows become a loss (``llmarch.training.objectives``).
        ids: ``(n,)`` token ids of the validation text.
        config: the model's config (``model`` may be wrapped).
        seq_len: window length.
        batch_size: windows per batch.
        base_vocab: the tokenizer's vocabulary size.
        max_batches: stop after this many batches (``None``: the whole text).
        device: where to run.
        dtype: the autocast dtype (``None``: fp32).
        seed: seeds the objective's random choices (masks, spans), so that repeated
            evaluations of one model agree exactly.

    Returns:
        ``{"eval_loss": mean loss per predicted token, "eval_ppl": exp(eval_loss),
        "eval_tokens": predicted tokens}``.

    Raises:
        ValueError: if ``ids`` is shorter than one window (``seq_len + 1`` tokens).

    >>> from llmarch import create_model
    >>> from llmarch.training.objectives import CausalLM
    >>> model = create_model(
    ...     "gpt2", num_layers=1, d_model=16, num_heads=2, d_ff=32, vocab_size=5
    ... )
    >>> result = evaluate(model, CausalLM(), torch.randint(5, (50,)),
    ...                   config=model.config, seq_len=8, batch_size=2, base_vocab=5)
    >>> result["eval_tokens"], 3 < result["eval_ppl"] < 8  # ~uniform over 5 at init
    (48, True)
    """
    from .data import sequential_windows

    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for index, window in enumerate(sequential_windows(ids, seq_len, batch_size)):
            if max_batches is not None and index >= max_batches:
                break
            with autocast_context(device, dtype):
                loss, n = objective.loss(
                    model,
                    window.to(device),
                    config=config,
                    base_vocab=base_vocab,
                    generator=generator,
                )
            total += float(loss) * n
            count += n
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError(
            f"ids must hold at least one window of seq_len + 1 = {seq_len + 1} tokens, "
            f"got {ids.numel()}"
        )
    mean = total / count
    return {
        "eval_loss": mean,
        "eval_ppl": math.exp(min(mean, 700.0)),
        "eval_tokens": count,
    }
# --8<-- [end:evaluate]
