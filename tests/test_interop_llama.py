"""LLaMA checkpoints: Hugging Face ``LlamaForCausalLM`` with random weights (GQA), saved and loaded (no download)."""

from __future__ import annotations

import json

import pytest
import torch

import llmarch
from llmarch.interop import llama
from llmarch.interop.checkpoint import read_weights, write_weights
from llmarch.models.decoder_only import position_ids_from_mask

transformers = pytest.importorskip("transformers")
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

VOCAB = 97
# 4 query heads share 2 key/value heads (GQA); initializer_range 0.2 (not 0.02) makes the random
# model's next-token distributions peaked, so greedy decoding compares real decisions, not near-ties.
SMALL = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
             initializer_range=0.2, bos_token_id=None, eos_token_id=None, pad_token_id=None)
ATOL = 1e-5  # fp32


def hf_llama(**overrides) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**{**SMALL, **overrides})).eval()


@pytest.fixture(scope="module")
def llama_pair(tmp_path_factory):
    hf = hf_llama()
    path = tmp_path_factory.mktemp("llama")
    hf.save_pretrained(path)
    return hf, llmarch.from_pretrained(path), path


def padded_batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding
    mask[2, :8] = 0
    return ids, mask


def test_config_maps_gqa_rope_rmsnorm_swiglu(llama_pair):
    _, ours, _ = llama_pair
    c = ours.config
    assert (c.position, c.norm, c.gated, c.activation, c.bias) == ("rotary", "rmsnorm", True, "silu", False)
    assert (c.num_heads, c.kv_heads, c.head_size, c.tie_embeddings) == (4, 2, 16, False)
    assert ours.lm_head.weight is not ours.embeddings.tokens.weight


def test_logits_match_on_a_left_padded_batch(llama_pair):
    hf, ours, _ = llama_pair
    ids, mask = padded_batch()
    with torch.no_grad():
        # HF's forward takes positions as given (its generate derives them from the mask, as our forward does)
        expected = hf(ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).logits
        got = ours(ids, attention_mask=mask)
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], atol=ATOL, rtol=0)


def test_greedy_tokens_equal_hf_generate_on_a_padded_batch(llama_pair):
    hf, ours, _ = llama_pair
    ids, mask = padded_batch()
    out = hf.generate(ids, attention_mask=mask, max_new_tokens=16, do_sample=False, eos_token_id=None,
                      pad_token_id=0, output_scores=True, return_dict_in_generate=True)
    top2 = torch.stack(out.scores, 1).topk(2, dim=-1).values
    assert (top2[..., 0] - top2[..., 1]).min() > 1e-3  # real decisions, not rounding
    got = ours.generate(ids, 16, mask, eos_token_id=None)
    assert got.shape == (3, 11 + 16)
    assert torch.equal(got, out.sequences)


def test_round_trip_and_hf_reads_our_export(llama_pair, tmp_path):
    hf, ours, path = llama_pair
    llmarch.save_pretrained(ours, tmp_path, model_type="llama")
    assert set(read_weights(tmp_path)) == set(read_weights(path))  # the key set HF writes
    again = llmarch.from_pretrained(tmp_path)
    for (name, a), (_, b) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    hf_again = LlamaForCausalLM.from_pretrained(tmp_path).eval()
    assert hf_again.config.num_key_value_heads == 2 and not hf_again.config.tie_word_embeddings
    ids, mask = padded_batch()
    positions = position_ids_from_mask(mask)
    with torch.no_grad():
        torch.testing.assert_close(hf_again(ids, attention_mask=mask, position_ids=positions).logits,
                                   hf(ids, attention_mask=mask, position_ids=positions).logits, atol=ATOL, rtol=0)


def test_tied_head_rope_base_and_biases(tmp_path):
    """A tied head, another RoPE base and attention/MLP biases: logits still equal HF's."""
    hf = hf_llama(tie_word_embeddings=True, rope_theta=500000.0, attention_bias=True, mlp_bias=True, head_dim=32)
    hf.save_pretrained(tmp_path)
    ours = llmarch.from_pretrained(tmp_path)
    assert ours.config.tie_embeddings and ours.lm_head.weight is ours.embeddings.tokens.weight
    assert ours.config.rope_base == 500000.0 and ours.config.bias and ours.config.head_size == 32
    ids, mask = padded_batch()
    with torch.no_grad():
        expected = hf(ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).logits
        torch.testing.assert_close(ours(ids, attention_mask=mask)[mask.bool()], expected[mask.bool()],
                                   atol=ATOL, rtol=0)


def test_old_checkpoints_unprefixed_keys_and_inv_freq_buffers(llama_pair, tmp_path):
    """A bare-model checkpoint (no ``model.`` prefix) that stores the RoPE ``inv_freq`` buffers
    (as older transformers did): the buffers are checked against the config's RoPE, then dropped."""
    hf, ours, path = llama_pair
    state = {k.removeprefix("model."): v for k, v in hf.state_dict().items()}
    head_dim = 16
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2).float() / head_dim))  # HF's formula
    for i in range(2):
        state[f"layers.{i}.self_attn.rotary_emb.inv_freq"] = inv_freq
    write_weights(state, tmp_path)
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    loaded = llmarch.from_pretrained(tmp_path)
    for (name, a), (_, b) in zip(loaded.state_dict().items(), ours.state_dict().items()):
        assert torch.equal(a, b), name
    state["layers.1.self_attn.rotary_emb.inv_freq"] = 1.0 / (500000.0 ** (torch.arange(0, 16, 2).float() / 16))
    write_weights(state, tmp_path)
    with pytest.raises(ValueError, match=r"'layers.1.self_attn.rotary_emb.inv_freq' must hold RoPE frequencies "
                                         r"base \*\* \(-2i / head_dim\) with base 10000.0"):
        llmarch.from_pretrained(tmp_path)


def test_strict_keys_and_tied_copies(llama_pair, tmp_path):
    hf, _, path = llama_pair
    state = dict(read_weights(path))
    del state["model.layers.1.mlp.up_proj.weight"]
    state["model.layers.0.self_attn.extra.weight"] = torch.zeros(2)
    write_weights(state, tmp_path)
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    with pytest.raises(ValueError, match=r"missing keys \['decoder.layers.1.ffn.up_proj.weight'\]; "
                                         r"unexpected keys \['layers.0.self_attn.extra.weight'\]"):
        llmarch.from_pretrained(tmp_path)
    config, _ = llama.config_from_hf({**SMALL, "model_type": "llama", "tie_word_embeddings": True})
    embed = torch.zeros(VOCAB, 64)
    with pytest.raises(ValueError, match="'lm_head.weight' must equal 'embeddings.tokens.weight' .they are tied."):
        llama.state_dict_from_hf({"model.embed_tokens.weight": embed, "lm_head.weight": embed + 1}, config)


@pytest.mark.parametrize("field, value, error, message", [
    ("rope_parameters", {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0}, ValueError,
     "config.json rope_parameters rope_type must be 'default' .plain RoPE; scaled RoPE is not implemented., "
     "got 'llama3'"),
    ("attention_bias", True, ValueError, "attention_bias and mlp_bias must be equal"),
    ("architectures", ["LlamaForSequenceClassification"], ValueError,
     r"architectures must be \['LlamaForCausalLM'\], got \['LlamaForSequenceClassification'\]"),
    ("eos_token_id", [1, 2], ValueError, r"eos_token_id must be one id .* got the list \[1, 2\]"),
    ("num_key_value_heads", 3, ValueError, "num_heads must be divisible by num_kv_heads, got num_heads=4 and "
                                           "num_kv_heads=3"),
    ("hidden_size", "64", TypeError, r"config.json hidden_size must be an int, got str \('64'\)"),
    ("rms_norm_eps", None, TypeError, r"config.json rms_norm_eps must be a number, got NoneType \(None\)"),
])
def test_unsupported_or_mistyped_configs_are_named(llama_pair, tmp_path, field, value, error, message):
    config = json.loads((llama_pair[2] / "config.json").read_text())
    config.pop("rope_scaling", None)
    (tmp_path / "config.json").write_text(json.dumps({**config, field: value}))
    write_weights({}, tmp_path)
    with pytest.raises(error, match=message):
        llmarch.from_pretrained(tmp_path)


def test_export_refuses_what_llama_cannot_express(tmp_path):
    gpt2 = llmarch.create_model("gpt2", num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=50)
    with pytest.raises(ValueError, match="LLaMA checkpoints need config.position='rotary', got 'learned'"):
        llmarch.save_pretrained(gpt2, tmp_path, model_type="llama")
    model = llmarch.create_model("llama-tiny", num_layers=1, d_model=32, num_heads=2, num_kv_heads=1, d_ff=48,
                                 vocab_size=50)
    state = dict(model.state_dict(), **{"decoder.layers.0.adapter.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"no Hugging Face LLaMA name for llmarch key\(s\) "
                                         r"\['decoder.layers.0.adapter.weight'\]"):
        llama.state_dict_to_hf(state, model.config)


def test_llama_tiny_preset_has_hugging_face_parameter_count():
    with torch.device("meta"):
        ours = llmarch.create_model("llama-tiny")
        c = ours.config
        hf = LlamaForCausalLM(LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.d_model, intermediate_size=c.d_ff,
                                          num_hidden_layers=c.num_layers, num_attention_heads=c.num_heads,
                                          num_key_value_heads=c.kv_heads, tie_word_embeddings=False))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) == count(hf)
