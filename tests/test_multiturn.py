"""The multi-turn cost measurement (llmarch.lab.multiturn): what each architecture runs per turn,
what it reuses and holds, that a kept cache changes nothing, and the cache of the result.

Expected counts are written out from the dialogue's shape; no timing is asserted.
"""

from __future__ import annotations

import pytest
import torch

from llmarch.lab import multiturn as mt

U, R, TURNS = 5, 3, 4   # QUICK_SETTINGS: 5 user tokens, 3 reply tokens, 4 turns


@pytest.fixture(scope="module")
def dialogue():
    settings = mt.QUICK_SETTINGS
    assert (settings["user_tokens"], settings["reply_tokens"], settings["turns"]) == (U, R, TURNS)
    models = {arch: model.double() for arch, model in mt.build_models(settings).items()}
    g = torch.Generator().manual_seed(0)
    users = [torch.randint(1, settings["model"]["vocab_size"], (1, U), generator=g) for _ in range(TURNS)]
    turns = {arch: mt.play(arch, models[arch], users, R, count_flops=True) for arch in mt.ARCHITECTURES}
    return models, users, turns


def test_tokens_run_and_reused_per_turn(dialogue):
    _, _, turns = dialogue
    history = [k * (U + R) for k in range(TURNS)]           # dialogue length before turn k
    assert [t["tokens"] for t in turns["causal"]] == [U + R] * TURNS
    assert [t["reused"] for t in turns["causal"]] == history
    # the prefix LM runs history + user text, then R - 1 decoding steps (the last token is never fed)
    assert [t["tokens"] for t in turns["prefix"]] == [h + U + R - 1 for h in history]
    # the encoder reads history + user text; the decoder its start token and R - 1 steps
    assert [t["tokens"] for t in turns["encdec"]] == [h + U + R for h in history]
    assert all(t["reused"] == 0 for arch in ("prefix", "encdec") for t in turns[arch])
    assert [t["context"] for t in turns["causal"]] == [h + U + R for h in history]


def test_cache_memory(dialogue):
    models, _, turns = dialogue
    config = models["causal"].config
    per_token = 2 * config.num_layers * config.d_model * 8          # K and V, float64
    assert [t["cache_bytes"] for t in turns["causal"]] == [(k + 1) * (U + R) * per_token for k in range(TURNS)]
    assert [t["cache_bytes"] for t in turns["prefix"]] == [((k + 1) * (U + R) - 1) * per_token for k in range(TURNS)]
    enc = models["encdec"].config
    half = 2 * enc.decoder_layers * enc.d_model * 8
    # cross-attention K/V of the source, self-attention K/V of the decoder's start token and R - 1 tokens
    assert [t["cache_bytes"] for t in turns["encdec"]] == [(k * (U + R) + U + R) * half for k in range(TURNS)]


def test_compute_per_turn_grows_only_without_a_kept_cache(dialogue):
    _, _, turns = dialogue
    flops = {arch: [t["flops"] for t in turns[arch]] for arch in mt.ARCHITECTURES}
    for arch in ("prefix", "encdec"):   # the whole history again: roughly linear in the turn number
        assert flops[arch][-1] > 2.5 * flops[arch][0]
        assert all(b > a for a, b in zip(flops[arch], flops[arch][1:]))
    assert flops["causal"][-1] < 1.5 * flops["causal"][0]          # only the new tokens (attention grows a bit)
    assert sum(flops["causal"]) < sum(flops["encdec"]) < sum(flops["prefix"])


def test_a_kept_cache_gives_the_replies_of_a_full_recomputation(dialogue):
    models, users, turns = dialogue
    for arch in ("causal", "prefix"):            # generate re-reads the whole dialogue every turn
        history = torch.zeros(1, 0, dtype=torch.long)
        for user, turn in zip(users, turns[arch]):
            prompt = torch.cat([history, user], dim=1)
            again = models[arch].generate(prompt, R, eos_token_id=None)[0, prompt.shape[1]:]
            assert again.tolist() == turn["reply"]
            history = torch.cat([prompt, again[None]], dim=1)


def test_result_is_cached_by_code_and_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMARCH_CACHE", str(tmp_path))
    first = mt.multiturn(mt.QUICK_SETTINGS)
    assert set(first["archs"]) == set(mt.ARCHITECTURES)
    for data in first["archs"].values():
        assert len(data["ms"]) == len(data["flops"]) == len(data["tokens"]) == TURNS
    monkeypatch.setattr(mt, "_measure", lambda settings: pytest.fail("the cached result was not used"))
    assert mt.multiturn(mt.QUICK_SETTINGS) == first
    text = mt.summary(first)
    assert "GFLOP" in text and max(len(line) for line in text.splitlines()) <= 88
    assert "checked" not in text   # the page's statements are about the full chat, not the quick one
