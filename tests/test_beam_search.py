"""Beam search equals Hugging Face's beam search, token for token, for T5 and for GPT-2.

Random-weight Hugging Face models are saved and loaded into llmarch (no download). Several EOS
ids are tried so that hypotheses finish at different lengths, which exercises the length
penalty and the three ``early_stopping`` rules.
"""

from __future__ import annotations

import json

import pytest
import torch

import llmarch
from llmarch.interop.checkpoint import write_weights
from llmarch.models.beam_search import beam_search

transformers = pytest.importorskip("transformers")
from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration  # noqa: E402
from model_state import MIN_MARGIN, greedy_margin

VOCAB = 40
# (num_beams, length_penalty, early_stopping): every stopping rule with positive, zero and negative
# length penalties (the "never" rule depends on the sign), two beam widths.
SETTINGS = [(2, 1.0, False), (3, 2.0, False), (3, -1.5, False), (2, 1.0, True), (3, 0.0, True),
            (3, 2.0, "never"), (2, -1.5, "never"), (4, 1.0, "never")]


def untied_t5_checkpoint(path, **overrides):
    """A T5 v1.1-style checkpoint (gated-GELU, untied ``lm_head``) written as the Hub stores it."""
    config = T5Config(**{**dict(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                decoder_start_token_id=0, eos_token_id=1, feed_forward_proj="gated-gelu",
                                tie_word_embeddings=False),
                         **overrides})
    hf = T5ForConditionalGeneration(config).eval()
    # A head of its own, with larger weights: peaked, varied next-token distributions.
    hf.lm_head.weight = torch.nn.Parameter(torch.randn(config.vocab_size, config.d_model))
    write_weights({k: v for k, v in hf.state_dict().items() if "embed_tokens" not in k}, path)
    hf_config = config.to_dict()
    hf_config.pop("scale_decoder_outputs", None)
    hf_config["tie_word_embeddings"] = False
    (path / "config.json").write_text(json.dumps(hf_config))
    return hf


@pytest.fixture(scope="module")
def t5_pair(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("t5")
    hf = untied_t5_checkpoint(path)
    return hf, llmarch.from_pretrained(path)


@pytest.fixture(scope="module")
def gpt2_pair(tmp_path_factory):
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=VOCAB, n_positions=64,
                                    initializer_range=0.3, bos_token_id=0, eos_token_id=0)).eval()
    path = tmp_path_factory.mktemp("gpt2")
    hf.save_pretrained(path)
    return hf, llmarch.from_pretrained(path)


def _source():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(2, VOCAB, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return ids, mask


def _eos_candidates(model, ids, mask):
    """Two tokens that greedy decoding produces early: as EOS ids they end hypotheses early."""
    tokens = model.generate(ids, 4, mask)[:, -3:].flatten().tolist()
    return sorted(set(tokens))[:2]


def test_t5_beam_search_matches_hugging_face(t5_pair):
    hf, ours = t5_pair
    src, mask = _source()
    finished_early = 0
    for eos in _eos_candidates(ours, src, mask):
        for num_beams, length_penalty, early_stopping in SETTINGS:
            kwargs = dict(num_beams=num_beams, length_penalty=length_penalty, early_stopping=early_stopping,
                          max_new_tokens=10, eos_token_id=eos)
            expected = hf.generate(input_ids=src, attention_mask=mask, do_sample=False, **kwargs)
            got = ours.generate(src, attention_mask=mask, **kwargs)
            assert got.tolist() == expected.tolist(), kwargs
            finished_early += int((got[:, 1:-1] == eos).sum())
    assert finished_early, "no hypothesis ended before max_new_tokens: EOS handling was not exercised"


def _left_padded_prompts():
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(1, VOCAB, (2, 6), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # left padding, as decoder-only generation expects
    return ids, mask


def test_gpt2_beam_search_matches_hugging_face(gpt2_pair):
    hf, ours = gpt2_pair
    ids, mask = _left_padded_prompts()
    finished_early = 0
    for eos in _eos_candidates(ours, ids, mask)[:1]:
        for num_beams, length_penalty, early_stopping in SETTINGS:
            kwargs = dict(num_beams=num_beams, length_penalty=length_penalty, early_stopping=early_stopping,
                          max_new_tokens=8, eos_token_id=eos, pad_token_id=eos)
            expected = hf.generate(input_ids=ids, attention_mask=mask, do_sample=False, **kwargs)
            got = ours.generate(ids, attention_mask=mask, **kwargs)
            assert got.tolist() == expected.tolist(), kwargs
            finished_early += int((got[:, ids.shape[1]:-1] == eos).sum())
    assert finished_early, "no hypothesis ended before max_new_tokens: EOS handling was not exercised"


def test_one_beam_is_greedy(t5_pair):
    _, ours = t5_pair
    src, mask = _source()
    greedy = ours.generate(src, 8, mask)  # both stop at config.eos_token_id, as Hugging Face
    assert greedy_margin(ours, greedy, 1, input_ids=src, attention_mask=mask) > MIN_MARGIN
    beams = beam_search(ours, src, mask, num_beams=1, max_new_tokens=8)
    assert torch.equal(beams, greedy)


def test_beam_search_reorders_the_cache_not_recomputes(t5_pair):
    """Each step calls the model once for all beams: the encoder runs once."""
    _, ours = t5_pair
    calls = {"encoder": 0}
    handle = ours.encoder.register_forward_hook(lambda *args: calls.__setitem__("encoder", calls["encoder"] + 1))
    try:
        ours.generate(_source()[0], 6, num_beams=3)
    finally:
        handle.remove()
    assert calls["encoder"] == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_beams=0), "num_beams must be a positive int, got 0"),
    (dict(num_beams=2, early_stopping="sometimes"), "early_stopping must be True, False or 'never'"),
    (dict(num_beams=2, max_new_tokens=0), "max_new_tokens must be a positive int, got 0"),
])
def test_bad_arguments_are_named(t5_pair, kwargs, message):
    _, ours = t5_pair
    kwargs = {"max_new_tokens": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        beam_search(ours, _source()[0], **kwargs)
