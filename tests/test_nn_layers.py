"""Positions, feed-forward, norms and the Transformer block, against formulas and reference code."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmarch.nn import (
    ALiBi,
    FeedForward,
    LearnedPositionalEmbedding,
    RMSNorm,
    RotaryEmbedding,
    SinusoidalPositionalEmbedding,
    T5RelativePositionBias,
    TransformerBlock,
    alibi_slopes,
    relative_position_bucket,
)


def test_sinusoidal_matches_the_paper(device):
    d, positions = 8, torch.arange(6, device=device)
    pe = SinusoidalPositionalEmbedding(d).to(device)(positions)
    expected = torch.empty(6, d)
    for p in range(6):
        for i in range(d // 2):
            expected[p, 2 * i] = math.sin(p / 10000 ** (2 * i / d))
            expected[p, 2 * i + 1] = math.cos(p / 10000 ** (2 * i / d))
    torch.testing.assert_close(pe.cpu(), expected, atol=1e-5, rtol=0)


def test_learned_positions(device):
    pe = LearnedPositionalEmbedding(8, 4).to(device)
    torch.testing.assert_close(pe(torch.tensor([[2, 7]], device=device))[0], pe.weight[[2, 7]])


def test_rotary_relative_property_and_norm(device):
    rope = RotaryEmbedding(16).to(device)
    q, k = torch.randn(1, 2, 1, 16, device=device), torch.randn(1, 2, 1, 16, device=device)

    def score(m, n):
        qm, _ = rope(q, q, torch.tensor([[m]], device=device))
        _, kn = rope(k, k, torch.tensor([[n]], device=device))
        return (qm * kn).sum(-1)

    torch.testing.assert_close(score(3, 1), score(40, 38), atol=1e-4, rtol=0)
    rotated, _ = rope(q, k, torch.tensor([[9]], device=device))
    torch.testing.assert_close(rotated.norm(dim=-1), q.norm(dim=-1))  # a rotation keeps lengths
    unrotated, _ = rope(q, k, torch.tensor([[0]], device=device))
    torch.testing.assert_close(unrotated, q)


def test_alibi_values(device):
    alibi = ALiBi(4).to(device)
    bias = alibi(2, 5, offset=3)  # queries at positions 3, 4
    slopes = alibi_slopes(4).to(device)
    expected = -slopes[:, None, None] * (torch.arange(5, device=device)[None, None] - torch.tensor([[3], [4]], device=device)).abs()
    torch.testing.assert_close(bias[0], expected)


def test_t5_bias_shape_and_offset(device):
    bias = T5RelativePositionBias(3, bidirectional=False).to(device)
    torch.nn.init.normal_(bias.embedding.weight)
    full = bias(6, 6)
    torch.testing.assert_close(bias(2, 6, offset=4), full[:, :, 4:])
    assert full.shape == (1, 3, 6, 6)


@pytest.fixture(scope="module")
def hf():
    return pytest.importorskip("transformers")


def test_alibi_slopes_equal_bloom(hf):
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    for heads in (1, 4, 6, 12, 16):
        alibi = build_alibi_tensor(torch.ones(1, 2), heads, torch.float32)  # (heads, 1, 2): slope * [0, 1]
        torch.testing.assert_close(alibi_slopes(heads), alibi[:, 0, 1])


@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_buckets_equal_t5(hf, bidirectional):
    from transformers.models.t5.modeling_t5 import T5Attention

    relative = torch.arange(-300, 300)[None, :]
    ours = relative_position_bucket(relative, bidirectional=bidirectional, num_buckets=32, max_distance=128)
    theirs = T5Attention._relative_position_bucket(relative, bidirectional=bidirectional, num_buckets=32, max_distance=128)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("base", [10000.0, 500000.0])
def test_rotary_equals_llama(hf, base):
    """cos/sin from Hugging Face's own LlamaRotaryEmbedding (its inv_freq, not ours)."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    config = LlamaConfig(hidden_size=64, num_attention_heads=4, rope_theta=base, max_position_embeddings=64)
    hf_rope = LlamaRotaryEmbedding(config)
    rope = RotaryEmbedding(16, base=base)
    q, k = torch.randn(2, 4, 5, 16), torch.randn(2, 2, 5, 16)
    positions = torch.tensor([[0, 1, 2, 3, 4], [7, 8, 9, 10, 11]])
    cos, sin = hf_rope(q, positions)
    expected = apply_rotary_pos_emb(q, k, cos, sin)
    for ours, theirs in zip(rope(q, k, positions), expected):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_rmsnorm_equals_formula_and_torch(device):
    norm = RMSNorm(8, eps=1e-6).to(device)
    torch.nn.init.normal_(norm.weight)
    x = torch.randn(3, 8, device=device)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), expected)
    reference = torch.nn.RMSNorm(8, eps=1e-6).to(device)
    reference.weight.data.copy_(norm.weight)
    torch.testing.assert_close(norm(x), reference(x))


@pytest.mark.parametrize("activation,gated", [("relu", False), ("gelu", False), ("silu", True), ("gelu", True)])
def test_feedforward_formulas(device, activation, gated):
    ffn = FeedForward(8, 16, activation=activation, gated=gated).to(device)
    x = torch.randn(2, 3, 8, device=device)
    act = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu}[activation]
    hidden = act(ffn.gate_proj(x)) * ffn.up_proj(x) if gated else act(ffn.up_proj(x))
    torch.testing.assert_close(ffn(x), ffn.down_proj(hidden))


@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh", "silu"])
@pytest.mark.parametrize("gated", [False, True])
def test_feedforward_in_place_activation_only_without_autograd(device, activation, gated):
    """Inference overwrites the pre-activation in place: same values, and training still gets
    the gradients of the out-of-place formula."""
    ffn = FeedForward(8, 16, activation=activation, gated=gated).to(device)
    x = torch.randn(2, 3, 8, device=device, requires_grad=True)
    trained = ffn(x)
    trained.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with torch.no_grad():
        no_grad = ffn(x)
    with torch.inference_mode():
        inference = ffn(x)
    assert torch.equal(trained.detach(), no_grad) and torch.equal(no_grad, inference)


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_block_norm_position(device, norm_position):
    block = TransformerBlock(16, 2, 32, norm_position=norm_position).to(device).eval()
    x = torch.randn(2, 5, 16, device=device) * 3 + 1
    out = block(x, is_causal=True)
    attn = lambda h: block.self_attn(h, is_causal=True)  # noqa: E731
    if norm_position == "pre":  # x + f(norm(x)): the residual stream is not normalised
        h = x + attn(block.self_attn_norm(x))
        expected = h + block.ffn(block.ffn_norm(h))
    else:  # norm(x + f(x)): every sub-layer output is normalised
        h = block.self_attn_norm(x + attn(x))
        expected = block.ffn_norm(h + block.ffn(h))
        torch.testing.assert_close(out.mean(-1), torch.zeros(2, 5, device=device), atol=1e-5, rtol=0)
    torch.testing.assert_close(out, expected)


def test_block_cross_attention(device):
    block = TransformerBlock(16, 2, 32, cross_attention=True).to(device).eval()
    x, context = torch.randn(2, 5, 16, device=device), torch.randn(2, 3, 16, device=device)
    context_mask = torch.tensor([[True, True, False], [True, True, True]], device=device)[:, None, None, :]
    out = block(x, is_causal=True, context=context, context_mask=context_mask)
    changed = context.clone()
    changed[0, 2] += 100.0  # a masked-out encoder position
    torch.testing.assert_close(block(x, is_causal=True, context=changed, context_mask=context_mask), out)
