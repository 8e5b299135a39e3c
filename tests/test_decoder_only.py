"""DecoderOnlyLM: structure of the presets, invariants (causality, padding, cache), losses, errors."""

from __future__ import annotations

import pytest
import torch

from llmarch import KVCache, create_model
from llmarch.models.decoder_only import DecoderOnlyLM, position_ids_from_mask
from llmarch.training.causal_lm import causal_lm_labels, causal_lm_loss

SMALL = dict(num_layers=2, d_model=64, num_heads=4, d_ff=128, vocab_size=97, max_positions=64)
VARIANTS = {
    "gpt1": dict(SMALL),
    "gpt2": dict(SMALL),
    "llama-tiny": dict(SMALL, num_kv_heads=2),  # RoPE, RMSNorm, SwiGLU, GQA, untied head
}


@pytest.fixture(params=sorted(VARIANTS))
def model(request, device):
    torch.manual_seed(0)
    return create_model(request.param, **VARIANTS[request.param], dropout=0.0,
                        attention_dropout=0.0).to(device).eval()


def test_structure_of_the_presets():
    gpt1, gpt2, llama = (create_model(name, **VARIANTS[name]) for name in ("gpt1", "gpt2", "llama-tiny"))
    assert gpt1.decoder.final_norm is None and gpt1.decoder.layers[0].norm_position == "post"
    assert gpt2.decoder.final_norm is not None and gpt2.decoder.layers[0].norm_position == "pre"
    assert gpt2.lm_head.weight is gpt2.embeddings.tokens.weight          # tied head
    assert llama.lm_head.weight is not llama.embeddings.tokens.weight    # untied
    assert llama.embeddings.positions is None                            # RoPE acts inside attention
    assert llama.decoder.layers[0].self_attn.num_kv_heads == 2
    with pytest.raises(ValueError, match="architecture"):
        DecoderOnlyLM(create_model("gpt2", **SMALL).config.replace(architecture="encoder_only"))


def test_gpt2_init_scales_residual_projections():
    model = create_model("gpt2", num_layers=12, d_model=256, num_heads=4, d_ff=1024, vocab_size=1000)
    std = lambda t: t.detach().std().item()
    assert std(model.decoder.layers[0].self_attn.q_proj.weight) == pytest.approx(0.02, rel=0.05)
    assert std(model.decoder.layers[0].ffn.down_proj.weight) == pytest.approx(0.02 / 24 ** 0.5, rel=0.05)


def test_causality_future_tokens_do_not_change_past_logits(model, device):
    ids = torch.randint(0, 97, (2, 10), device=device)
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 97
    with torch.no_grad():
        a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6], atol=1e-5, rtol=0)
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_left_padding_gives_the_unpadded_logits(model, device):
    ids = torch.randint(0, 97, (1, 7), device=device)
    padded = torch.cat([torch.full((1, 3), 5, device=device), ids], dim=1)
    mask = torch.tensor([[0, 0, 0] + [1] * 7], device=device)
    with torch.no_grad():
        torch.testing.assert_close(model(padded, attention_mask=mask)[:, 3:], model(ids), atol=1e-5, rtol=0)


def test_incremental_decoding_with_cache_equals_full_forward(model, device):
    ids = torch.randint(0, 97, (2, 9), device=device)
    mask = torch.ones(2, 9, dtype=torch.long, device=device)
    mask[1, :2] = 0
    with torch.no_grad():
        full = model(ids, attention_mask=mask)
        cache = KVCache.dynamic(model.config.num_layers)
        steps = [model(ids[:, :5], attention_mask=mask[:, :5], cache=cache)]
        for t in range(5, 9):
            steps.append(model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], cache=cache))
    torch.testing.assert_close(torch.cat(steps, 1)[mask.bool()], full[mask.bool()], atol=1e-5, rtol=0)


def test_position_ids_from_mask():
    mask = torch.tensor([[0, 1, 1], [1, 1, 0], [1, 1, 1]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 1], [0, 1, 0], [0, 1, 2]]


def test_bf16_forward_close_to_fp32(model, device):
    ids = torch.randint(0, 97, (2, 8), device=device)
    with torch.no_grad():
        ref = model(ids)
        low = model.to(torch.bfloat16)(ids)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.05 * ref.abs().max()


def test_causal_lm_loss_equals_hugging_face():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50,
                                                              n_positions=16)).eval()
    ids = torch.randint(0, 50, (2, 8))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    labels = causal_lm_labels(ids, mask)
    with torch.no_grad():
        out = hf(ids, attention_mask=mask, labels=labels)
    torch.testing.assert_close(causal_lm_loss(out.logits, labels), out.loss)


def test_causal_lm_loss_ignores_padding_and_trains():
    torch.manual_seed(0)
    model = create_model("gpt2", **SMALL, dropout=0.0, attention_dropout=0.0)
    ids = torch.randint(0, 97, (4, 12))
    labels = causal_lm_labels(ids, torch.ones_like(ids))
    labels[:, 8:] = -100
    loss = causal_lm_loss(model(ids), labels)
    assert loss.item() == pytest.approx(causal_lm_loss(model(ids)[:, :8], labels[:, :8]).item(), abs=1e-6)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    start = loss.item()
    for _ in range(20):
        optimizer.zero_grad()
        loss = causal_lm_loss(model(ids), ids)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * start


def test_bad_inputs_name_the_argument():
    model = create_model("gpt2", **SMALL).eval()
    ids = torch.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 97\)"):
        model(torch.tensor([[1, 97]]))
    with pytest.raises(TypeError, match="input_ids must be an integer"):
        model(ids.float())
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(1, 3\)"):
        model(ids, attention_mask=torch.ones(1, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="attention_mask must be an integer or bool"):
        model(ids, attention_mask=torch.ones(1, 3))
    with pytest.raises(ValueError, match="attention_mask must hold only 0 and 1"):
        model(ids, attention_mask=torch.tensor([[1, 2, 1]]))
    with pytest.raises(ValueError, match="max_positions"):
        model(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="causal_lm_loss needs sequences of at least 2"):
        causal_lm_loss(torch.zeros(1, 1, 5), torch.zeros(1, 1, dtype=torch.long))
