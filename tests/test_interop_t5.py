"""T5 checkpoints: Hugging Face models with random weights, saved and loaded (no download).

Covers T5 v1.0 (ReLU, tied head scaled by d_model ** -0.5) and v1.1 (gated-GELU, untied head as
stored on the Hub), padded batches, and sources longer than ``relative_attention_max_distance``.
"""

from __future__ import annotations

import json

import pytest
import torch

import llmarch
from llmarch.interop.checkpoint import read_weights, write_weights
from llmarch.interop.t5 import state_dict_from_hf
from llmarch.models.presets import get_config

transformers = pytest.importorskip("transformers")
from transformers import T5Config, T5ForConditionalGeneration  # noqa: E402

ATOL = 1e-4
VOCAB = 64
SMALL = dict(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
             decoder_start_token_id=0, eos_token_id=1)
VARIANTS = {
    "v1.0-tied": dict(feed_forward_proj="relu"),
    "v1.1-untied": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False),
    # max_distance 8 with 8 buckets: a 20-token source reaches the "far" buckets
    "v1.0-short-max-distance": dict(feed_forward_proj="relu", relative_attention_max_distance=8,
                                    relative_attention_num_buckets=8),
}


def save_t5(hf: T5ForConditionalGeneration, path, *, untied: bool):
    """Save like the Hub does: an untied v1.1 checkpoint carries its own ``lm_head.weight`` and
    ``tie_word_embeddings: false`` (transformers 5.x would otherwise tie the head on save)."""
    if not untied:
        hf.save_pretrained(path)
        return path
    write_weights({k: v for k, v in hf.state_dict().items() if "embed_tokens" not in k}, path)
    config = hf.config.to_dict()
    config.pop("scale_decoder_outputs", None)
    config["tie_word_embeddings"] = False
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module", params=list(VARIANTS))
def t5_pair(request, tmp_path_factory):
    torch.manual_seed(0)
    untied = VARIANTS[request.param].get("tie_word_embeddings") is False
    hf = T5ForConditionalGeneration(T5Config(**SMALL, **VARIANTS[request.param])).eval()
    if untied:  # a head of its own, unlike the embedding
        hf.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB, 32))
    path = save_t5(hf, tmp_path_factory.mktemp(request.param), untied=untied)
    return hf, llmarch.from_pretrained(path), path


def padded_batch(src_len: int = 20):
    g = torch.Generator().manual_seed(1)
    src = torch.randint(2, VOCAB, (3, src_len), generator=g)
    mask = torch.ones_like(src)
    mask[1, 13:] = 0
    mask[2, 4:] = 0
    tgt = torch.randint(2, VOCAB, (3, 11), generator=g)
    tgt[:, 0] = 0
    tgt_mask = torch.ones_like(tgt)
    tgt_mask[2, 7:] = 0
    return src, mask, tgt, tgt_mask


def test_logits_match_hugging_face_on_padded_batches(t5_pair):
    hf, ours, _ = t5_pair
    src, mask, tgt, tgt_mask = padded_batch()
    assert src.shape[1] > hf.config.relative_attention_max_distance or hf.config.relative_attention_max_distance == 128
    with torch.no_grad():
        expected = hf(input_ids=src, attention_mask=mask, decoder_input_ids=tgt,
                      decoder_attention_mask=tgt_mask).logits
        got = ours(src, tgt, attention_mask=mask, decoder_attention_mask=tgt_mask)
    real = tgt_mask.bool()  # padded target positions are never scored
    torch.testing.assert_close(got[real], expected[real], atol=ATOL, rtol=0)


def test_deeper_decoder_than_encoder(tmp_path):
    """``num_decoder_layers`` != ``num_layers`` (forward only: transformers 5.24's generate sizes
    its cache by the encoder depth and fails on such a model)."""
    torch.manual_seed(0)
    hf = T5ForConditionalGeneration(T5Config(**{**SMALL, "num_decoder_layers": 3})).eval()
    ours = llmarch.from_pretrained(save_t5(hf, tmp_path, untied=False))
    assert len(ours.decoder.layers) == 3 and len(ours.encoder.layers) == 2
    src, mask, tgt, _ = padded_batch()
    with torch.no_grad():
        torch.testing.assert_close(ours(src, tgt, mask), hf(input_ids=src, attention_mask=mask,
                                                             decoder_input_ids=tgt).logits, atol=ATOL, rtol=0)


def test_encoder_states_match_hugging_face(t5_pair):
    hf, ours, _ = t5_pair
    src, mask, _, _ = padded_batch()
    with torch.no_grad():
        expected = hf.encoder(input_ids=src, attention_mask=mask).last_hidden_state
        got = ours.encode(src, mask)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_greedy_generate_matches_hugging_face(t5_pair):
    hf, ours, _ = t5_pair
    src, mask, _, _ = padded_batch()
    expected = hf.generate(input_ids=src, attention_mask=mask, max_new_tokens=12, do_sample=False)
    got = ours.generate(src, 12, mask, eos_token_id=hf.config.eos_token_id, pad_token_id=hf.config.pad_token_id)
    assert got.tolist() == expected.tolist()


def test_relative_bias_is_stored_once_per_stack(t5_pair):
    _, ours, path = t5_pair
    hf_keys = read_weights(path)
    assert "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight" in hf_keys
    assert "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight" not in hf_keys
    assert ours.encoder.position_bias.bidirectional and not ours.decoder.position_bias.bidirectional


def test_round_trip_through_save_pretrained(t5_pair, tmp_path):
    hf, ours, _ = t5_pair
    llmarch.save_pretrained(ours, tmp_path, model_type="t5")
    again = llmarch.from_pretrained(tmp_path)
    for (name, a), (_, b) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    # and Hugging Face reads what we wrote
    reloaded = T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    src, mask, tgt, _ = padded_batch()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=src, attention_mask=mask, decoder_input_ids=tgt).logits,
                                   ours(src, tgt, mask), atol=ATOL, rtol=0)


def test_mismatched_checkpoint_lists_the_keys(t5_pair, tmp_path):
    _, _, path = t5_pair
    state = read_weights(path)
    state.pop("decoder.final_layer_norm.weight")
    state["decoder.block.0.layer.9.extra.weight"] = torch.zeros(1)
    write_weights(state, tmp_path)
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    with pytest.raises(ValueError, match=r"missing keys \['decoder.final_norm.weight'\]; "
                                         r"unexpected keys \['decoder.block.0.layer.9.extra.weight'\]"):
        llmarch.from_pretrained(tmp_path)


def test_tied_head_is_the_shared_embedding():
    config, _ = llmarch.interop.t5.config_from_hf({**SMALL, "feed_forward_proj": "relu"})
    shared = torch.randn(3, 2)
    state = state_dict_from_hf({"shared.weight": shared, "lm_head.weight": shared.clone(),
                                "encoder.embed_tokens.weight": shared.clone(),
                                "decoder.embed_tokens.weight": shared.clone()}, config)
    assert sorted(state) == ["embeddings.tokens.weight", "lm_head.weight"]
    assert state["lm_head.weight"] is shared  # tied: the equal copies are dropped, the head is `shared`
    assert list(llmarch.interop.t5.state_dict_to_hf(state, config)) == ["shared.weight"]


@pytest.mark.parametrize("copy", ["lm_head.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"])
def test_a_tied_copy_that_differs_is_refused(copy):
    config, _ = llmarch.interop.t5.config_from_hf({**SMALL, "feed_forward_proj": "relu"})
    shared = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=rf"checkpoint key '{copy}' must equal 'shared.weight' \(they are tied\), "
                                         r"but it differs: largest difference 0.5"):
        state_dict_from_hf({"shared.weight": shared, copy: shared + 0.5}, config)


def test_an_untied_head_is_kept_but_embedding_copies_are_still_checked():
    config, _ = llmarch.interop.t5.config_from_hf({**SMALL, "feed_forward_proj": "gated-gelu",
                                                   "tie_word_embeddings": False})
    shared, head = torch.zeros(3, 2), torch.ones(3, 2)
    state = state_dict_from_hf({"shared.weight": shared, "lm_head.weight": head}, config)
    assert state["lm_head.weight"] is head and state["embeddings.tokens.weight"] is shared
    with pytest.raises(ValueError, match="'decoder.embed_tokens.weight' must equal 'shared.weight'"):
        state_dict_from_hf({"shared.weight": shared, "decoder.embed_tokens.weight": head}, config)


def test_export_refuses_keys_without_a_t5_name(tmp_path):
    model = llmarch.create_model("t5-small", num_layers=1, d_model=32, head_dim=8, num_heads=4, d_ff=64,
                                 vocab_size=VOCAB)
    state = dict(model.state_dict(), **{"decoder.extra.weight": torch.zeros(1), "adapter.bias": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"no Hugging Face T5 name for llmarch key\(s\) "
                                         r"\['adapter.bias', 'decoder.extra.weight'\]"):
        llmarch.interop.t5.state_dict_to_hf(state, model.config)
    model.register_buffer("stray", torch.zeros(1))  # a persistent buffer is a key of the state dict too
    with pytest.raises(ValueError, match=r"\['stray'\]"):
        llmarch.save_pretrained(model, tmp_path, model_type="t5")
    assert not (tmp_path / "config.json").exists()  # nothing half-written


def test_t5_small_preset_has_hugging_face_parameter_count():
    hf_count = sum(p.numel() for p in T5ForConditionalGeneration(T5Config()).parameters())
    ours = llmarch.create_model("t5-small")
    assert sum(p.numel() for p in ours.parameters()) == hf_count == 60_506_624


@pytest.mark.parametrize("variant", ["v1.0-tied", "v1.1-untied"])
def test_feed_forward_dropout_in_training_equals_hugging_face(variant):
    """T5 drops the feed-forward's hidden activations (``dropout_rate``) between its two matrices:
    with the same seed, our FFN in training mode equals Hugging Face's."""
    from transformers.models.t5.modeling_t5 import T5LayerFF

    hf_config = T5Config(**SMALL, **VARIANTS[variant], dropout_rate=0.3)
    config, cls = llmarch.interop.t5.config_from_hf(hf_config.to_dict())
    assert config.activation_dropout == 0.3
    ours = cls(config).decoder.layers[0]
    hf_ff = T5LayerFF(hf_config).train()
    names = {"wi": "up_proj", "wi_0": "gate_proj", "wi_1": "up_proj", "wo": "down_proj"}
    with torch.no_grad():
        for hf_name, ours_name in names.items():
            if hasattr(hf_ff.DenseReluDense, hf_name):
                getattr(hf_ff.DenseReluDense, hf_name).weight.copy_(getattr(ours.ffn, ours_name).weight)
    ours.train()
    x = torch.randn(2, 5, 32)
    torch.manual_seed(0)
    expected = hf_ff.DenseReluDense(x)  # wi -> act -> dropout -> wo (the residual dropout is the layer's own)
    torch.manual_seed(0)
    torch.testing.assert_close(ours.ffn(x), expected)
    assert get_config("t5-small").activation_dropout == 0.1
    assert get_config("t5-v1_1-small").activation_dropout == 0.0
