"""Masks: their values, and the causality property of attention under each (hypothesis)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmarch.nn import (
    MultiHeadAttention,
    causal_mask,
    combine_masks,
    cross_attention_mask,
    padding_mask,
    prefix_lm_mask,
    to_additive_mask,
    unilm_mask,
)

D, HEADS = 16, 2


def test_causal_mask_values():
    assert torch.equal(causal_mask(4), torch.ones(4, 4, dtype=torch.bool).tril())
    assert torch.equal(causal_mask(2, 5), torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool))
    # static cache: 2 tokens stored, 1 new, 6 slots -> sees slots 0..2 only
    assert causal_mask(1, 6, offset=torch.tensor(2)).int().tolist() == [[1, 1, 1, 0, 0, 0]]


def test_padding_mask_sources_agree():
    attention_mask = torch.tensor([[1, 1, 1, 0], [0, 0, 1, 1]])
    from_lengths_right = padding_mask(lengths=[3, 4], max_len=4)
    from_lengths_left = padding_mask(lengths=torch.tensor([3, 2]), padding_side="left")
    assert padding_mask(attention_mask).shape == (2, 1, 1, 4)
    assert torch.equal(padding_mask(attention_mask)[0], from_lengths_right[0])
    assert torch.equal(padding_mask(attention_mask)[1], padding_mask(lengths=[2], max_len=4, padding_side="left")[0])
    assert from_lengths_left[:, 0, 0].int().tolist() == [[1, 1, 1], [0, 1, 1]]
    assert torch.equal(padding_mask(attention_mask.bool()), padding_mask(attention_mask))


def test_prefix_unilm_and_combination():
    mask = prefix_lm_mask([0, 2, 4], 4)
    assert mask.shape == (3, 1, 4, 4)
    assert torch.equal(mask[0, 0], causal_mask(4))
    assert mask[2].all()
    assert torch.equal(unilm_mask("seq2seq", 4, source_len=2), prefix_lm_mask(2, 4))
    assert unilm_mask("bidirectional", 3).all()
    assert torch.equal(unilm_mask("left_to_right", 3), causal_mask(3))
    assert torch.equal(unilm_mask("right_to_left", 3), causal_mask(3).T)
    combined = combine_masks(causal_mask(3), padding_mask(lengths=[2, 3], max_len=3))
    assert combined.shape == (2, 1, 3, 3) and not combined[0, 0, :, 2].any()
    cross = cross_attention_mask(torch.tensor([[1, 0]]), 3)
    assert cross.shape == (1, 1, 3, 2) and cross[..., 0].all() and not cross[..., 1].any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_additive_mask(dtype):
    additive = to_additive_mask(causal_mask(3), dtype)
    assert additive.dtype == dtype
    assert (additive[causal_mask(3)] == 0).all() and (additive[~causal_mask(3)] == torch.finfo(dtype).min).all()
    scores = torch.zeros(3, 3, dtype=dtype) + additive
    assert torch.isfinite(torch.softmax(scores.float(), -1)).all()


def _mask_for(kind: str, seq_len: int, prefix: int) -> torch.Tensor:
    if kind == "causal":
        return causal_mask(seq_len)
    if kind == "prefix_lm":
        return prefix_lm_mask(prefix, seq_len)
    return unilm_mask(kind, seq_len, source_len=prefix if kind == "seq2seq" else None)


_MODULES: dict = {}


def _module(backend: str) -> MultiHeadAttention:
    if backend not in _MODULES:  # one module per backend, built under a fixed seed
        with torch.random.fork_rng():
            torch.manual_seed(0)
            _MODULES[backend] = MultiHeadAttention(D, HEADS, backend=backend).eval()
    return _MODULES[backend]


@given(
    kind=st.sampled_from(["causal", "prefix_lm", "bidirectional", "left_to_right", "right_to_left", "seq2seq"]),
    data=st.data(),
    backend=st.sampled_from(["eager", "sdpa"]),
)
def test_changing_a_token_only_changes_outputs_that_may_see_it(kind, data, backend):
    """Causality: perturbing token j changes output i iff the mask lets i attend j."""
    seq_len = data.draw(st.integers(1, 12), label="seq_len")
    prefix = data.draw(st.integers(0, seq_len), label="prefix")
    j = data.draw(st.integers(0, seq_len - 1), label="j")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    generator = torch.Generator().manual_seed(seed)
    mha = _module(backend)
    mask = _mask_for(kind, seq_len, prefix).reshape(seq_len, seq_len)
    x = torch.randn(1, seq_len, D, generator=generator)
    changed = x.clone()
    changed[0, j] += torch.randn(D, generator=generator) * 3
    with torch.no_grad():
        delta = (mha(x, mask=mask) - mha(changed, mask=mask)).abs().amax(-1)[0]
    hidden = ~mask[:, j]
    hidden[j] = False  # token j's own output changes through its query
    assert (delta[hidden] == 0).all(), f"{kind}: output leaked from token {j} into rows {hidden.nonzero().flatten().tolist()}"
    visible = mask[:, j].clone()
    visible[j] = True
    assert (delta[visible] > 0).all()


@given(lengths=st.lists(st.integers(0, 9), min_size=1, max_size=4), side=st.sampled_from(["right", "left"]))
def test_padding_mask_counts(lengths, side):
    max_len = max(max(lengths), 1)
    mask = padding_mask(lengths=lengths, max_len=max_len, padding_side=side)[:, 0, 0]
    assert mask.sum(-1).tolist() == lengths
    attention_mask = mask.long()
    assert torch.equal(padding_mask(attention_mask), mask[:, None, None])
