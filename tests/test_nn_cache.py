"""KV caches: incremental decoding equals the full forward (MHA and block stacks, every position kind)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmarch.nn import (
    ALiBi,
    DynamicLayerCache,
    KVCache,
    MultiHeadAttention,
    RotaryEmbedding,
    StaticLayerCache,
    T5RelativePositionBias,
    TransformerBlock,
)

D, HEADS, KV_HEADS = 32, 4, 2
HEAD_DIM = D // HEADS
CHUNKS = [4, 1, 2, 1, 1]  # a prompt of 4, then single tokens and a chunk of 2
MAX_LEN = 12


def _position_bias(kind: str, device):
    if kind == "alibi":
        return ALiBi(HEADS).to(device)
    if kind == "t5":
        bias = T5RelativePositionBias(HEADS, num_buckets=8, max_distance=16, bidirectional=False).to(device)
        nn.init.normal_(bias.embedding.weight)
        return bias
    return None


def _new_cache(kind: str, batch: int, device):
    if kind == "dynamic":
        return DynamicLayerCache()
    return StaticLayerCache(batch, KV_HEADS, MAX_LEN, HEAD_DIM, device=device)


@pytest.mark.parametrize("cache_kind", ["dynamic", "static"])
@pytest.mark.parametrize("positions", ["none", "rope", "alibi", "t5"])
@pytest.mark.parametrize("backend", ["eager", "sdpa"])
def test_mha_incremental_equals_full(device, cache_kind, positions, backend):
    rotary = RotaryEmbedding(HEAD_DIM) if positions == "rope" else None
    mha = MultiHeadAttention(D, HEADS, KV_HEADS, rotary=rotary, backend=backend).to(device).eval()
    position_bias = _position_bias(positions, device)
    x = torch.randn(2, sum(CHUNKS), D, device=device)
    seq = x.shape[1]
    full = mha(x, is_causal=True, bias=None if position_bias is None else position_bias(seq, seq))
    cache, start, outs = _new_cache(cache_kind, 2, device), 0, []
    for size in CHUNKS:
        offset = cache.offset
        k_len = MAX_LEN if cache_kind == "static" else start + size
        bias = None if position_bias is None else position_bias(size, k_len, offset)
        outs.append(mha(x[:, start:start + size], is_causal=True, cache=cache, bias=bias))
        start += size
    assert int(cache.offset) == seq
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cache_kind", ["dynamic", "static"])
@pytest.mark.parametrize("positions", ["rope", "alibi", "t5"])
def test_block_stack_incremental_equals_full(device, cache_kind, positions):
    rotary = RotaryEmbedding(HEAD_DIM) if positions == "rope" else None
    blocks = nn.ModuleList(
        TransformerBlock(D, HEADS, 64, num_kv_heads=KV_HEADS, rotary=rotary, norm="rmsnorm", gated=True,
                         activation="silu") for _ in range(3)
    ).to(device).eval()
    position_bias = _position_bias(positions, device)

    def run(x, cache=None, k_len=None):
        offset = 0 if cache is None else cache.offset
        bias = None if position_bias is None else position_bias(x.shape[1], k_len or x.shape[1], offset)
        for i, block in enumerate(blocks):
            x = block(x, is_causal=True, bias=bias, cache=None if cache is None else cache[i])
        return x

    x = torch.randn(2, sum(CHUNKS), D, device=device)
    full = run(x)
    if cache_kind == "dynamic":
        cache = KVCache.dynamic(num_layers=3)
    else:
        cache = KVCache.static(3, batch_size=2, num_kv_heads=KV_HEADS, max_len=MAX_LEN, head_dim=HEAD_DIM, device=device)
    start, outs = 0, []
    for size in CHUNKS:
        k_len = MAX_LEN if cache_kind == "static" else start + size
        outs.append(run(x[:, start:start + size], cache, k_len))
        start += size
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=0)


def test_cross_attention_cache_computes_context_once(device):
    blocks = nn.ModuleList(TransformerBlock(D, HEADS, 64, cross_attention=True) for _ in range(2)).to(device).eval()
    context = torch.randn(2, 5, D, device=device)
    x = torch.randn(2, 4, D, device=device)

    def run(x, cache=None):
        for i, block in enumerate(blocks):
            x = block(x, is_causal=True, context=context, cache=None if cache is None else cache.layers[i],
                      cross_cache=None if cache is None else cache.cross_layers[i])
        return x

    full = run(x)
    cache = KVCache.dynamic(2, cross_attention=True)
    calls = []
    handle = blocks[0].cross_attn.k_proj.register_forward_hook(lambda *args: calls.append(1))
    outs = [run(x[:, i:i + 1], cache) for i in range(4)]
    handle.remove()
    assert len(calls) == 1  # the encoder's keys are projected once
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=0)


def test_static_cache_hides_unused_slots_without_is_causal(device):
    """A bidirectional step over a static cache must not see the zero-filled slots after the fill level."""
    mha = MultiHeadAttention(D, HEADS, KV_HEADS).to(device).eval()
    x = torch.randn(1, 3, D, device=device)
    cache = StaticLayerCache(1, KV_HEADS, MAX_LEN, HEAD_DIM, device=device)
    torch.testing.assert_close(mha(x, cache=cache), mha(x), atol=1e-5, rtol=0)


def test_reorder_and_reset(device):
    dynamic, static = DynamicLayerCache(), StaticLayerCache(3, 1, 4, 2, device=device)
    keys = torch.arange(3.0, device=device).view(3, 1, 1, 1).expand(3, 1, 2, 2)
    for cache in (dynamic, static):
        cache.update(keys, keys)
        cache.reorder(torch.tensor([2, 2, 0], device=device))
    assert dynamic.get()[0][:, 0, 0, 0].tolist() == [2.0, 2.0, 0.0]
    assert static.keys[:, 0, 0, 0].tolist() == [2.0, 2.0, 0.0]
    static.reset()
    assert int(static.offset) == 0
    dynamic_long = DynamicLayerCache()
    for step in range(40):  # grows past its initial capacity
        k, _ = dynamic_long.update(torch.full((1, 1, 1, 2), float(step), device=device), torch.zeros(1, 1, 1, 2, device=device))
    assert k.shape[2] == 40 and k[0, 0, :, 0].tolist() == [float(i) for i in range(40)]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside torch's inductor
def test_static_cache_decode_step_under_torch_compile(cpp_compiler):
    """One decoding step with a static cache, compiled as one graph; equals eager."""
    mha = MultiHeadAttention(D, HEADS, KV_HEADS, rotary=RotaryEmbedding(HEAD_DIM)).eval()
    prompt, token = torch.randn(1, 4, D), torch.randn(1, 1, D)

    def step(x, cache):
        return mha(x, is_causal=True, cache=cache)

    eager_cache = StaticLayerCache(1, KV_HEADS, MAX_LEN, HEAD_DIM)
    compiled_cache = StaticLayerCache(1, KV_HEADS, MAX_LEN, HEAD_DIM)
    with torch.no_grad():
        step(prompt, eager_cache)
        step(prompt, compiled_cache)
        expected = step(token, eager_cache)
        compiled = torch.compile(step, backend="inductor", dynamic=False, fullgraph=True)
        actual = compiled(token, compiled_cache)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    assert int(compiled_cache.offset) == 5
