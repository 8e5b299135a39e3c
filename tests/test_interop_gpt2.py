"""GPT-2 / GPT-1 checkpoints: Hugging Face models with random weights, saved and loaded (no download)."""

from __future__ import annotations

import json

import pytest
import torch

import llmarch
from llmarch.interop.checkpoint import read_weights
from llmarch.models.decoder_only import position_ids_from_mask

transformers = pytest.importorskip("transformers")
from transformers import GPT2Config, GPT2LMHeadModel, OpenAIGPTConfig, OpenAIGPTLMHeadModel  # noqa: E402

VOCAB = 128
# initializer_range 0.2 (not 0.02) makes the random model's next-token distributions peaked, so
# greedy decoding compares real decisions rather than near-ties decided by rounding.
SMALL = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=VOCAB, n_positions=64, initializer_range=0.2,
             bos_token_id=0, eos_token_id=0)


def _save(hf_model, path):
    hf_model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def gpt2_pair(tmp_path_factory):
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(**SMALL)).eval()
    path = _save(hf, tmp_path_factory.mktemp("gpt2"))
    return hf, llmarch.from_pretrained(path), path


@pytest.fixture()
def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, VOCAB, (3, 12), generator=g)
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, :4] = 0  # left padding
    mask[2, :7] = 0
    return ids, mask


def test_logits_match_on_a_padded_batch(gpt2_pair, batch):
    hf, ours, _ = gpt2_pair
    ids, mask = batch
    with torch.no_grad():
        # HF's forward takes positions as given; its generate() derives them from the mask the
        # same way our forward does -- pass them explicitly for a like-for-like comparison.
        expected = hf(ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).logits
        got = ours(ids, attention_mask=mask)
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-4, rtol=0)


def test_logits_match_right_padding_with_hf_default_positions(gpt2_pair):
    hf, ours, _ = gpt2_pair
    ids = torch.randint(1, VOCAB, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[0, 6:] = 0  # right padding: HF's default positions agree with ours on real tokens
    with torch.no_grad():
        expected, got = hf(ids, attention_mask=mask).logits, ours(ids, attention_mask=mask)
    torch.testing.assert_close(got[mask.bool()], expected[mask.bool()], atol=1e-4, rtol=0)


def _hf_greedy(hf, ids, mask, new_tokens, **kwargs):
    out = hf.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False, pad_token_id=0,
                      output_scores=True, return_dict_in_generate=True, **kwargs)
    scores = torch.stack(out.scores, dim=1)  # (batch, steps, vocab)
    top2 = scores.topk(2, dim=-1).values
    return out.sequences, (top2[..., 0] - top2[..., 1]).min().item()


def test_greedy_32_tokens_identical_to_hf(gpt2_pair, batch):
    hf, ours, _ = gpt2_pair
    ids, mask = batch
    expected, margin = _hf_greedy(hf, ids, mask, 32)
    assert margin > 1e-3, f"near-tie in HF's greedy choices (top-2 gap {margin}): the comparison would be luck"
    got = ours.generate(ids, 32, mask, eos_token_id=0)  # HF reads EOS = 0 from the config
    assert got.shape == (3, 12 + 32)
    assert torch.equal(got, expected)
    assert (got[1, 12:] == 0).sum() > 1  # row 1 met EOS and was padded afterwards, as in HF


def test_generation_stops_when_every_row_has_finished(gpt2_pair, batch):
    hf, ours, _ = gpt2_pair
    ids, mask = batch
    eos = int(ours.generate(ids[1:2], 3, mask[1:2])[0, -1])  # row 1's 3rd new token: use it as EOS
    expected = hf.generate(ids[1:2], attention_mask=mask[1:2], max_new_tokens=20, do_sample=False,
                           eos_token_id=eos, pad_token_id=5)
    got = ours.generate(ids[1:2], 20, mask[1:2], eos_token_id=eos, pad_token_id=5)
    assert got.shape[1] < 12 + 20 and torch.equal(got, expected)


def test_greedy_unpadded_single_prompt_identical_to_hf(gpt2_pair):
    hf, ours, _ = gpt2_pair
    ids = torch.randint(1, VOCAB, (1, 16), generator=torch.Generator().manual_seed(3))
    expected, margin = _hf_greedy(hf, ids, torch.ones_like(ids), 32)
    assert margin > 1e-3
    assert torch.equal(ours.generate(ids, 32, eos_token_id=0), expected)


def test_gpt1_logits_match(tmp_path):
    hf = OpenAIGPTLMHeadModel(OpenAIGPTConfig(n_layer=2, n_embd=64, n_head=4, vocab_size=VOCAB,
                                              n_positions=32)).eval()
    ours = llmarch.from_pretrained(_save(hf, tmp_path))
    assert ours.config.norm_position == "post" and ours.decoder.final_norm is None
    ids = torch.randint(0, VOCAB, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits, atol=1e-4, rtol=0)


def test_pytorch_model_bin_and_unprefixed_keys(gpt2_pair, tmp_path):
    """A base-model checkpoint (keys without ``transformer.``) stored as pytorch_model.bin."""
    hf, ours, path = gpt2_pair
    state = {k.removeprefix("transformer."): v for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    torch.save(state, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    loaded = llmarch.from_pretrained(tmp_path)
    for (name, a), (_, b) in zip(loaded.state_dict().items(), ours.state_dict().items()):
        assert torch.equal(a, b) and a.stride() == b.stride(), name  # the same weights, stored alike
    ids = torch.randint(0, VOCAB, (1, 8))
    with torch.no_grad():  # two models: buffers at other addresses may take other kernel paths
        torch.testing.assert_close(loaded(ids), ours(ids), atol=1e-6, rtol=0)


def test_round_trip_and_hf_reads_our_export(gpt2_pair, tmp_path):
    hf, ours, _ = gpt2_pair
    llmarch.save_pretrained(ours, tmp_path, model_type="gpt2")
    again = llmarch.from_pretrained(tmp_path)
    for (name, a), (_, b) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    assert again.lm_head.weight is again.embeddings.tokens.weight  # still tied
    hf_again = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, VOCAB, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(hf_again(ids).logits, hf(ids).logits, atol=1e-6, rtol=0)
    saved = read_weights(tmp_path)
    assert set(saved) == set(read_weights(_save(hf, tmp_path / "hf")))  # the same key set as HF writes


def test_untied_head_round_trip(tmp_path):
    hf = GPT2LMHeadModel(GPT2Config(**SMALL, tie_word_embeddings=False)).eval()
    ours = llmarch.from_pretrained(_save(hf, tmp_path / "a"))
    assert not ours.config.tie_embeddings and ours.lm_head.weight is not ours.embeddings.tokens.weight
    ids = torch.randint(0, VOCAB, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits, atol=1e-4, rtol=0)
    llmarch.save_pretrained(ours, tmp_path / "b", model_type="gpt2")
    with torch.no_grad():
        torch.testing.assert_close(GPT2LMHeadModel.from_pretrained(tmp_path / "b")(ids).logits, hf(ids).logits,
                                   atol=1e-6, rtol=0)


def test_gpt1_round_trip(tmp_path):
    model = llmarch.create_model("gpt1", num_layers=1, d_model=32, num_heads=2, d_ff=128, vocab_size=50,
                                 max_positions=16).eval()
    llmarch.save_pretrained(model, tmp_path, model_type="openai-gpt")
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "openai-gpt"
    hf = OpenAIGPTLMHeadModel.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, 50, (1, 7))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), hf(ids).logits, atol=1e-5, rtol=0)


def test_strict_keys_list_missing_unexpected_and_misshaped(gpt2_pair, tmp_path):
    path = gpt2_pair[2]
    state = dict(read_weights(path))
    del state["transformer.h.1.ln_2.bias"]
    state["transformer.h.0.attn.extra"] = torch.zeros(3)
    state["transformer.wpe.weight"] = torch.zeros(32, 64)
    from llmarch.interop.checkpoint import write_weights

    write_weights(state, tmp_path)
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    with pytest.raises(ValueError) as info:
        llmarch.from_pretrained(tmp_path)
    message = str(info.value)
    assert "missing keys ['decoder.layers.1.ffn_norm.bias']" in message
    assert "unexpected keys ['h.0.attn.extra']" in message
    assert "mis-shaped keys ['embeddings.positions.weight: expected (64, 64), got (32, 64)']" in message


def test_unsupported_configs_are_refused(tmp_path):
    config, _ = llmarch.interop.gpt2.config_from_hf({"model_type": "gpt2", "n_embd": 32, "n_layer": 1, "n_head": 2})
    assert config.d_ff == 128
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx"):
        llmarch.interop.gpt2.config_from_hf({"model_type": "gpt2", "scale_attn_by_inverse_layer_idx": True})
    llama = llmarch.create_model("llama-tiny", num_layers=1, d_model=64, num_heads=4, num_kv_heads=2, d_ff=96,
                                 vocab_size=50)
    with pytest.raises(ValueError, match="position"):
        llmarch.save_pretrained(llama, tmp_path, model_type="gpt2")


@pytest.mark.parametrize("name, hf_cls, hf_config", [
    ("gpt2", GPT2LMHeadModel, GPT2Config),
    ("gpt1", OpenAIGPTLMHeadModel, OpenAIGPTConfig),
])
def test_preset_parameter_counts_equal_hf(name, hf_cls, hf_config):
    with torch.device("meta"):
        hf = hf_cls(hf_config())
        ours = llmarch.create_model(name)
    count = lambda m: sum(p.numel() for p in m.parameters())  # tied weights count once
    assert count(ours) == count(hf)
    if name == "gpt2":
        assert count(ours) == 124_439_808
