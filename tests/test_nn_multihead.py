"""MultiHeadAttention: parity with torch.nn.MultiheadAttention, GQA/MQA, symmetry, padding, dropout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmarch.nn import (
    MultiHeadAttention,
    RotaryEmbedding,
    TransformerBlock,
    padding_mask,
)

D, HEADS = 24, 4


def _copy_from_torch(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        if theirs.in_proj_weight is not None:
            wq, wk, wv = theirs.in_proj_weight.chunk(3)
        else:
            wq, wk, wv = theirs.q_proj_weight, theirs.k_proj_weight, theirs.v_proj_weight
        bq, bk, bv = theirs.in_proj_bias.chunk(3)
        for proj, w, b in ((ours.q_proj, wq, bq), (ours.k_proj, wk, bk), (ours.v_proj, wv, bv)):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        ours.out_proj.weight.copy_(theirs.out_proj.weight)
        ours.out_proj.bias.copy_(theirs.out_proj.bias)


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
@pytest.mark.parametrize("case", ["self", "cross", "cross_kdim", "key_padding", "causal", "causal_padding"])
def test_equals_torch_multihead_attention(device, backend, case):
    context_dim = 10 if case == "cross_kdim" else D
    theirs = nn.MultiheadAttention(D, HEADS, batch_first=True, kdim=context_dim, vdim=context_dim).to(device).eval()
    ours = MultiHeadAttention(D, HEADS, context_dim=context_dim, backend=backend).to(device).eval()
    _copy_from_torch(ours, theirs)
    x = torch.randn(3, 7, D, device=device)
    context = torch.randn(3, 9, context_dim, device=device) if case.startswith("cross") else None
    key = x if context is None else context
    lengths = [7, 4, 1]
    key_padding = ~padding_mask(lengths=lengths, max_len=7).to(device)[:, 0, 0]  # torch: True = ignore
    kwargs_theirs, kwargs_ours = {}, {}
    if "padding" in case:
        kwargs_theirs["key_padding_mask"] = key_padding
        kwargs_ours["mask"] = ~key_padding[:, None, None, :]
    if case.startswith("causal"):
        kwargs_theirs["attn_mask"] = torch.ones(7, 7, dtype=torch.bool, device=device).triu(1)  # True = hidden
        kwargs_theirs["is_causal"] = True
        kwargs_ours["is_causal"] = True
    expected, _ = theirs(x, key, key, need_weights=False, **kwargs_theirs)
    actual = ours(x, context, **kwargs_ours)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    # gradients of the input agree as well
    grad = torch.randn_like(expected)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    (g_theirs,) = torch.autograd.grad(theirs(x1, x1 if context is None else context, x1 if context is None else context,
                                             need_weights=False, **kwargs_theirs)[0], x1, grad)
    (g_ours,) = torch.autograd.grad(ours(x2, context, **kwargs_ours), x2, grad)
    torch.testing.assert_close(g_ours, g_theirs, atol=1e-5, rtol=0)


def test_weights_equal_torch(device):
    theirs = nn.MultiheadAttention(D, HEADS, batch_first=True).to(device).eval()
    ours = MultiHeadAttention(D, HEADS).to(device).eval()
    _copy_from_torch(ours, theirs)
    x = torch.randn(2, 5, D, device=device)
    out, weights = ours(x, return_weights=True)
    expected, expected_weights = theirs(x, x, x, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights, expected_weights, atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
def test_gqa_with_all_heads_equals_mha(device, backend):
    mha = MultiHeadAttention(D, HEADS, backend=backend).to(device)
    gqa = MultiHeadAttention(D, HEADS, num_kv_heads=HEADS, backend=backend).to(device)
    gqa.load_state_dict(mha.state_dict())
    x = torch.randn(2, 6, D, device=device)
    torch.testing.assert_close(gqa(x, is_causal=True), mha(x, is_causal=True), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kv_heads", [1, 2])
@pytest.mark.parametrize("backend", ["eager", "sdpa"])
def test_gqa_mqa_equal_mha_with_repeated_kv_heads(device, kv_heads, backend):
    heads, head_dim = HEADS, D // HEADS
    gqa = MultiHeadAttention(D, heads, num_kv_heads=kv_heads, backend=backend).to(device)
    mha = MultiHeadAttention(D, heads, backend=backend).to(device)
    groups = heads // kv_heads
    with torch.no_grad():
        for name in ("q_proj", "out_proj"):
            getattr(mha, name).load_state_dict(getattr(gqa, name).state_dict())
        for name in ("k_proj", "v_proj"):
            src, dst = getattr(gqa, name), getattr(mha, name)
            dst.weight.copy_(src.weight.view(kv_heads, head_dim, D).repeat_interleave(groups, 0).reshape(D, D))
            dst.bias.copy_(src.bias.view(kv_heads, head_dim).repeat_interleave(groups, 0).reshape(D))
    x = torch.randn(2, 6, D, device=device)
    mask = padding_mask(lengths=[6, 3]).to(device)
    torch.testing.assert_close(gqa(x, mask=mask, is_causal=True), mha(x, mask=mask, is_causal=True), atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
def test_permutation_equivariance(device, backend):
    mha = MultiHeadAttention(D, HEADS, backend=backend).to(device)
    x = torch.randn(2, 8, D, device=device)
    perm = torch.randperm(8, device=device)
    torch.testing.assert_close(mha(x[:, perm]), mha(x)[:, perm], atol=1e-5, rtol=0)
    # the causal mask breaks the symmetry: order now matters
    assert not torch.allclose(mha(x[:, perm], is_causal=True), mha(x, is_causal=True)[:, perm], atol=1e-3)


def _left_pad_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("backend", ["eager", "sdpa"])
@pytest.mark.parametrize("rotary", [False, True])
def test_padded_batch_equals_examples_alone(device, side, backend, rotary):
    lengths, max_len = [5, 2, 7], 7
    mha = MultiHeadAttention(D, HEADS, backend=backend, rotary=RotaryEmbedding(D // HEADS) if rotary else None).to(device)
    examples = [torch.randn(1, n, D, device=device) for n in lengths]
    x = torch.full((3, max_len, D), float("nan"), device=device)  # NaN padding must not leak
    for i, (n, example) in enumerate(zip(lengths, examples)):
        if side == "right":
            x[i, :n] = example[0]
        else:
            x[i, max_len - n:] = example[0]
    mask = padding_mask(lengths=lengths, max_len=max_len, padding_side=side).to(device)
    positions = _left_pad_positions(mask[:, 0, 0]) if rotary else None
    out = mha(x, mask=mask, is_causal=True, position_ids=positions)
    for i, (n, example) in enumerate(zip(lengths, examples)):
        alone = mha(example, is_causal=True)
        real = out[i:i + 1, :n] if side == "right" else out[i:i + 1, max_len - n:]
        assert torch.isfinite(real).all()
        torch.testing.assert_close(real, alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_padded_batch_through_blocks(device, norm_position):
    lengths, max_len = [4, 6], 6
    blocks = nn.ModuleList(TransformerBlock(D, HEADS, 48, norm_position=norm_position) for _ in range(2)).to(device)

    def run(x, mask=None):
        for block in blocks:
            x = block(x, mask=mask, is_causal=True)
        return x

    examples = [torch.randn(1, n, D, device=device) for n in lengths]
    x = torch.full((2, max_len, D), float("nan"), device=device)
    for i, (n, example) in enumerate(zip(lengths, examples)):
        x[i, :n] = example[0]
    out = run(x, padding_mask(lengths=lengths, max_len=max_len).to(device))
    for i, (n, example) in enumerate(zip(lengths, examples)):
        torch.testing.assert_close(out[i:i + 1, :n], run(example), atol=1e-5, rtol=0)


def test_dropout_off_in_eval_and_seeded_in_training(device):
    mha = MultiHeadAttention(D, HEADS, dropout=0.5).to(device)
    plain = MultiHeadAttention(D, HEADS).to(device)
    plain.load_state_dict(mha.state_dict())
    x = torch.randn(2, 9, D, device=device)
    mha.eval()
    rng = torch.get_rng_state()
    torch.testing.assert_close(mha(x), plain(x), atol=1e-6, rtol=0)  # two modules: tolerance
    assert torch.equal(torch.get_rng_state(), rng)  # eval draws no random numbers at all
    mha.train()
    torch.manual_seed(3)
    first = mha(x, is_causal=True)
    torch.manual_seed(3)
    second = mha(x, is_causal=True)
    assert torch.equal(first, second)  # the same call repeated with the same seed: bit for bit
    assert not torch.allclose(first, mha(x, is_causal=True))
    assert not torch.allclose(first, plain(x, is_causal=True))


def test_bf16_module(device):
    mha = MultiHeadAttention(D, HEADS).to(device)
    x = torch.randn(2, 5, D, device=device)
    ref = mha(x, is_causal=True)
    out = mha.to(torch.bfloat16)(x.bfloat16(), is_causal=True)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=5e-2, rtol=5e-2)
