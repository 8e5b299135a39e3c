"""Test helpers: a model's complete state (to prove inference leaves it alone) and the
top-2 margin of greedy choices (to prove two code paths may be compared by their tokens).

Greedy tokens are integers, so two code paths (eager and compiled, cache and no cache, ours
and Hugging Face) may be compared exactly -- *if* no step was a near-tie. Logits of two paths
differ by rounding (about 1e-6 in fp32 here); where the best two logits of a step are closer
than that, another CPU may pick the other token. ``greedy_margin`` measures the smallest gap
along the reference path, and the tests assert it is far above rounding before comparing.
"""

from __future__ import annotations

import torch
from torch import nn

MIN_MARGIN = 1e-4  # fp32 logits of two code paths differ by ~1e-6 here: 100x that cannot flip


def model_state(model: nn.Module) -> dict[str, tuple]:
    """Every parameter and buffer: a copy of its values, its dtype, device, shape and strides."""
    tensors = dict(model.named_parameters(remove_duplicate=False))
    tensors.update(model.named_buffers(remove_duplicate=False))
    return {name: (t.detach().clone(), t.dtype, t.device, tuple(t.shape), t.stride(), t.requires_grad)
            for name, t in tensors.items()}


def assert_unchanged(model: nn.Module, before: dict[str, tuple], what: str) -> None:
    """The same call repeated on the same memory: exact equality is the right test here."""
    after = model_state(model)
    assert after.keys() == before.keys(), f"{what} added or removed tensors"
    for name, (values, *meta) in before.items():
        now_values, *now_meta = after[name]
        assert now_meta == meta, f"{what} changed {name}: {meta} -> {now_meta}"
        assert torch.equal(now_values, values), f"{what} changed the values of {name}"


def greedy_margin(model: nn.Module, sequences: torch.Tensor, start: int, **forward_kwargs) -> float:
    """Smallest gap between the best two logits over the greedy choices of ``sequences[:, start:]``.

    Decoder-only: ``sequences`` is prompt + new tokens and ``start`` the prompt length.
    Encoder-decoder: pass ``input_ids=...`` in ``forward_kwargs``; ``sequences`` are the decoder
    tokens (start token first) and ``start`` is 1. The logits come from one full forward pass
    without a cache (a third code path), which is what the margin must be robust against anyway.
    """
    with torch.no_grad():
        if "input_ids" in forward_kwargs:
            logits = model(decoder_input_ids=sequences[:, :-1], **forward_kwargs)
        else:
            logits = model(sequences[:, :-1], **forward_kwargs)
    top2 = logits[:, start - 1:].float().topk(2, dim=-1).values
    return (top2[..., 0] - top2[..., 1]).min().item()
