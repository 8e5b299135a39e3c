"""Prefix LM: the mask, the model with ``prefix_lengths``, KV-cache decoding, the loss, bad input.

The mask is checked against its definition written out here (query ``i`` sees key ``j`` iff ``j``
is a real token and ``j`` lies in the row's prefix or ``j <= i``); the model against that mask by
perturbing tokens (a hidden token must not move a logit, a visible one must); cached decoding
against one full forward pass.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from llmarch import create_model
from llmarch.models.prefix_lm import check_prefix_lengths, prefix_lm_attention_mask
from llmarch.nn.cache import KVCache
from llmarch.training.objectives import PrefixLM, make_objective
from llmarch.training.prefix_lm import prefix_lm_labels, prefix_lm_loss, sample_prefix_lengths
from model_state import MIN_MARGIN, greedy_margin

VOCAB = 40


def tiny(backend: str = "auto", **overrides):
    torch.manual_seed(0)
    return create_model("gpt2", num_layers=2, d_model=32, num_heads=4, d_ff=64, vocab_size=VOCAB, dropout=0.0,
                        attention_dropout=0.0, max_positions=64, backend=backend, **overrides).eval()


def reference_mask(prefix: list[int], real: list[list[bool]]) -> torch.Tensor:
    """The definition, one entry at a time: j real and (rank(j) < prefix or j <= i)."""
    batch, seq = len(real), len(real[0])
    out = torch.zeros(batch, seq, seq, dtype=torch.bool)
    for b in range(batch):
        rank = [sum(real[b][:j + 1]) - 1 for j in range(seq)]
        for i in range(seq):
            for j in range(seq):
                out[b, i, j] = real[b][j] and (rank[j] < prefix[b] or j <= i)
    return out


@st.composite
def padded_batches(draw):
    seq = draw(st.integers(1, 7))
    batch = draw(st.integers(1, 3))
    lengths = [draw(st.integers(1, seq)) for _ in range(batch)]
    left = draw(st.booleans())
    real = [[(j >= seq - n) if left else (j < n) for j in range(seq)] for n in lengths]
    prefix = [draw(st.integers(0, n)) for n in lengths]
    return prefix, real


@given(padded_batches())
def test_mask_matches_its_definition(case):
    prefix, real = case
    mask = prefix_lm_attention_mask(torch.tensor(prefix), len(real[0]), torch.tensor(real))
    assert mask.shape == (len(real), 1, len(real[0]), len(real[0]))
    assert torch.equal(mask[:, 0], reference_mask(prefix, real))


def test_mask_edges_and_static_cache_padding():
    causal = torch.ones(4, 4, dtype=torch.bool).tril()
    assert torch.equal(prefix_lm_attention_mask(torch.tensor([0]), 4)[0, 0], causal)
    assert prefix_lm_attention_mask(torch.tensor([4]), 4).all()
    wide = prefix_lm_attention_mask(torch.tensor([2]), 4, key_len=6)
    assert wide.shape == (1, 1, 4, 6) and not wide[..., 4:].any()


def _visibility(model, ids, attention_mask=None, **kwargs):
    """changed[i, j]: did perturbing token j move the logits at i (row 0)?"""
    base = model(ids, attention_mask, **kwargs)
    seq = ids.shape[1]
    changed = torch.zeros(seq, seq, dtype=torch.bool, device=ids.device)
    for j in range(seq):
        other = ids.clone()
        other[0, j] = (other[0, j] + 7) % VOCAB
        diff = (model(other, attention_mask, **kwargs) - base)[0].abs().amax(-1)
        assert bool(((diff < 1e-6) | (diff > 1e-4)).all()), "a logit moved by a rounding-sized amount"
        changed[:, j] = diff > 1e-4
    return changed.cpu()


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
@pytest.mark.parametrize("prefix", [0, 1, 3, 6])
def test_model_sees_exactly_what_the_mask_allows(backend, prefix, device):
    model = tiny(backend).to(device)
    ids = torch.randint(VOCAB, (1, 6), generator=torch.Generator().manual_seed(prefix)).to(device)
    changed = _visibility(model, ids, prefix_lengths=prefix)
    assert torch.equal(changed, reference_mask([prefix], [[True] * 6])[0])


def test_padded_rows_match_their_unpadded_selves():
    model = tiny()
    rows = [torch.randint(VOCAB, (n,), generator=torch.Generator().manual_seed(n)) for n in (5, 3)]
    prefix = [2, 1]
    for side in ("left", "right"):
        ids = torch.zeros(2, 5, dtype=torch.long)
        real = torch.zeros(2, 5, dtype=torch.long)
        for b, row in enumerate(rows):
            where = slice(5 - len(row), 5) if side == "left" else slice(0, len(row))
            ids[b, where], real[b, where] = row, 1
        logits = model(ids, real, prefix_lengths=torch.tensor(prefix))
        for b, row in enumerate(rows):
            alone = model(row[None], prefix_lengths=prefix[b])[0]
            torch.testing.assert_close(logits[b][real[b].bool()], alone, atol=1e-5, rtol=1e-5)


def test_prefix_zero_is_the_causal_model():
    model = tiny()
    ids = torch.randint(VOCAB, (2, 6))
    torch.testing.assert_close(model(ids, prefix_lengths=0), model(ids), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("static", [False, True])
def test_cached_decoding_after_the_prefix_equals_one_full_pass(static, device):
    model = tiny().to(device)
    ids = torch.randint(VOCAB, (2, 9)).to(device)
    prefix = 4
    full = model(ids, prefix_lengths=prefix)
    cache = (KVCache.static(2, batch_size=2, num_kv_heads=4, max_len=16, head_dim=8, device=device) if static
             else KVCache.dynamic(2))
    steps = [model(ids[:, :prefix], cache=cache, prefix_lengths=prefix)]  # the prefix, once, bidirectional
    for t in range(prefix, 9):  # then one token at a time, causal; prefix_lengths may be repeated
        steps.append(model(ids[:, t:t + 1], cache=cache, prefix_lengths=prefix if t % 2 else None))
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_cache_goes_stale_when_the_prefix_grows():
    """Keys of prefix tokens depend on later prefix tokens: extending the prefix invalidates them."""
    model = tiny()
    ids = torch.randint(VOCAB, (1, 8))
    cache = KVCache.dynamic(2)
    model(ids[:, :3], cache=cache, prefix_lengths=3)
    stale = model(ids[:, 3:4], cache=cache)[0, -1]                  # token 3 appended after a 3-token prefix
    grown = model(ids[:, :4], prefix_lengths=4)[0, -1]              # token 3 as part of a 4-token prefix
    assert (stale - grown).abs().max() > 1e-3                       # not the same model output
    keys_before = cache.layers[1].get()[0][:, :, :3]                # layer 2 keys of the prefix tokens
    fresh = KVCache.dynamic(2)
    model(ids[:, :4], cache=fresh, prefix_lengths=4)
    assert (fresh.layers[1].get()[0][:, :, :3] - keys_before).abs().max() > 1e-3
    with pytest.raises(ValueError, match=r"prefix_lengths must lie within the \[4\] tokens already in the cache, "
                                         r"got \[5\]"):
        model(ids[:, 4:6], cache=cache, prefix_lengths=5)


def _greedy_by_full_passes(model, ids, attention_mask, steps):
    """Greedy decoding with one full forward per token, the prompt as the prefix."""
    real = attention_mask
    for _ in range(steps):
        prefix = attention_mask.sum(-1)  # every real prompt token
        logits = model(ids, real, prefix_lengths=prefix)[:, -1]
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
        real = torch.cat([real, torch.ones_like(real[:, :1])], dim=1)
    return ids


def test_generate_reads_the_prompt_as_the_prefix():
    model = tiny(prefix_lm=True)
    prompt = torch.randint(1, VOCAB, (2, 5))
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])  # left padding
    out = model.generate(prompt, 6, mask)
    full_mask = torch.cat([mask, torch.ones(2, 5, dtype=mask.dtype)], 1)
    assert greedy_margin(model, out, 5, attention_mask=full_mask, prefix_lengths=mask.sum(-1)) > MIN_MARGIN
    assert torch.equal(out, _greedy_by_full_passes(model, prompt, mask, 6))
    assert model.generate(prompt, 6, mask, num_beams=2).shape == (2, 11)  # beams share the cached prefix


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_compiled_generation_of_a_prefix_lm(cpp_compiler, monkeypatch):
    """The prompt runs eagerly (bidirectional, into a static cache); the compiled steps are causal."""
    from llmarch.models import generation

    monkeypatch.setattr(generation, "COMPILE_OPTIONS", {**generation.COMPILE_OPTIONS, "fullgraph": True})
    monkeypatch.setattr(generation, "_COMPILED_STEPS", {})
    model = tiny(prefix_lm=True)
    prompt = torch.randint(1, VOCAB, (2, 5))
    mask = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    eager = model.generate(prompt, 8, mask, eos_token_id=None)
    full_mask = torch.cat([mask, torch.ones(2, 7, dtype=mask.dtype)], 1)
    assert greedy_margin(model, eager, 5, attention_mask=full_mask, prefix_lengths=mask.sum(-1)) > MIN_MARGIN
    assert torch.equal(model.generate(prompt, 8, mask, eos_token_id=None, compile=True), eager)


# -- the loss -------------------------------------------------------------------------------------

@given(padded_batches())
def test_labels_carry_loss_exactly_after_the_prefix(case):
    prefix, real = case
    ids = torch.arange(len(real) * len(real[0])).reshape(len(real), -1) % VOCAB
    labels = prefix_lm_labels(ids, prefix, torch.tensor(real).long())
    for b, row in enumerate(real):
        rank = 0
        for j, is_real in enumerate(row):
            expect = is_real and rank >= prefix[b]
            assert (labels[b, j] != -100) == expect
            if expect:
                assert labels[b, j] == ids[b, j]
            rank += is_real


def test_loss_is_the_mean_over_target_tokens():
    logits = torch.randn(2, 5, VOCAB)
    ids = torch.randint(VOCAB, (2, 5))
    prefix = [2, 4]
    terms = [-F.log_softmax(logits[b, t], -1)[ids[b, t + 1]] for b in range(2) for t in range(4) if t + 1 >= prefix[b]]
    torch.testing.assert_close(prefix_lm_loss(logits, ids, prefix), torch.stack(terms).mean())


def test_no_scored_position_sees_its_target():
    """Every position that carries loss: its logits ignore the target token and everything after it."""
    model = tiny()
    ids = torch.randint(VOCAB, (1, 8))
    for prefix in (1, 3, 7):
        labels = prefix_lm_labels(ids, prefix)
        base = model(ids, prefix_lengths=prefix)
        for t in range(7):
            if labels[0, t + 1] == -100:
                continue
            later = ids.clone()
            later[0, t + 1:] = (later[0, t + 1:] + 5) % VOCAB
            moved = (model(later, prefix_lengths=prefix) - base)[0, t].abs().max()
            assert moved < 1e-6, (prefix, t)


def test_objective_counts_and_configures():
    model = tiny(prefix_lm=True)
    window = torch.randint(VOCAB, (3, 9))
    loss, n = PrefixLM().loss(model, window, config=model.config, base_vocab=VOCAB,
                              generator=torch.Generator().manual_seed(0))
    prefix = sample_prefix_lengths(3, 8, max_length=8, generator=torch.Generator().manual_seed(0))
    assert n == int((9 - 1 - prefix + 1).sum()) and loss.ndim == 0 and torch.isfinite(loss)
    config = PrefixLM().configure(model.config.replace(prefix_lm=False), VOCAB, 8, None)
    assert config.prefix_lm and make_objective("prefix_lm", "decoder_only").name == "prefix_lm"
    assert make_objective(None, "decoder_only").name == "causal_lm"  # the family's default is unchanged


def test_sample_prefix_lengths_range():
    lengths = sample_prefix_lengths(2000, 10, generator=torch.Generator().manual_seed(1))
    assert int(lengths.min()) == 1 and int(lengths.max()) == 9


# -- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix, error, message", [
    (7, ValueError, r"prefix_lengths must be <= the length of each row \(\[6, 6\] tokens\), got \[7, 7\]"),
    ([-1, 2], ValueError, r"prefix_lengths must be >= 0, got \[-1, 2\]"),
    ([1, 2, 3], ValueError, r"prefix_lengths must have shape \(batch,\) = \(2,\) \(one length per row\), got \(3,\)"),
    (torch.ones(2, 1, dtype=torch.long), ValueError, r"prefix_lengths must have shape \(batch,\) = \(2,\)"),
    (torch.tensor([1.0, 2.0]), TypeError, r"prefix_lengths must be an integer tensor"),
    ([1.5, 2], TypeError, r"prefix_lengths must hold ints, got float \(1.5\)"),
    ("2", TypeError, r"prefix_lengths must be an int, a sequence of ints or an integer tensor"),
])
def test_bad_prefix_lengths(prefix, error, message):
    model = tiny()
    with pytest.raises(error, match=message):
        model(torch.randint(VOCAB, (2, 6)), prefix_lengths=prefix)


def test_prefix_longer_than_a_padded_row():
    model = tiny()
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    with pytest.raises(ValueError, match=r"prefix_lengths must be <= the length of each row \(\[3, 4\] tokens\), "
                                         r"got \[4, 4\]"):
        model(torch.randint(VOCAB, (2, 4)), mask, prefix_lengths=4)
    with pytest.raises(ValueError,
                       match=r"attention_mask must have shape \(2, 4\) \(that of input_ids\), got \(2, 3\)"):
        model(torch.randint(VOCAB, (2, 4)), mask[:, :3], prefix_lengths=1)
    with pytest.raises(ValueError, match="prefix_lengths must be <= the length of each row"):
        prefix_lm_labels(torch.randint(VOCAB, (2, 4)), [4, 1], mask)


def test_bad_self_attention_mask_and_both():
    model = tiny()
    ids = torch.randint(VOCAB, (2, 4))
    ok = torch.ones(2, 1, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="pass prefix_lengths or self_attention_mask, not both"):
        model(ids, prefix_lengths=1, self_attention_mask=ok)
    with pytest.raises(ValueError,
                       match=r"self_attention_mask must have shape \(1 or 2, 1, 4, 4\) .* got \(2, 1, 4, 3\)"):
        model(ids, self_attention_mask=ok[..., :3])
    with pytest.raises(TypeError, match="self_attention_mask must be a bool tensor .*, got torch.int64"):
        model(ids, self_attention_mask=ok.long())


def test_check_prefix_lengths_accepts_ints_sequences_and_tensors():
    lengths = torch.tensor([3, 5])
    for value in (2, [2, 2], torch.tensor([2, 2]), torch.tensor(2)):
        assert check_prefix_lengths(value, lengths).tolist() == [2, 2]


def test_config_flags_are_checked():
    from llmarch.models.presets import get_config

    with pytest.raises(ValueError, match="prefix_lm=True needs architecture='decoder_only', got 'encoder_only'"):
        get_config("bert-base", prefix_lm=True)
    with pytest.raises(TypeError, match=r"prefix_lm must be a bool, got str \('yes'\)"):
        get_config("gpt2", prefix_lm="yes")


@pytest.mark.parametrize("objective", ["prefix_lm", "unilm", "glm"])
def test_train_command_with_the_new_objectives(objective, tmp_path, capsys):
    """``python -m llmarch train --objective {prefix_lm,unilm,glm}`` trains, checkpoints, evaluates."""
    import json

    from llmarch.cli import main

    corpus = tmp_path / "poems.txt"
    corpus.write_text("床前明月光，\n疑是地上霜。\n\n举头望明月，\n低头思故乡。\n\n" * 20, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "--preset", "gpt2", "--set", "num_layers=1", "--set", "d_model=32", "--set", "num_heads=2",
                 "--set", "d_ff=64", "--objective", objective, "--data", str(corpus), "--out", str(out),
                 "--seq-len", "16", "--batch-size", "4", "--warmup-steps", "1", "--steps", "2", "--eval-every", "2",
                 "--eval-batches", "1", "--device", "cpu", "--progress", "lines", "--no-plot"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2 and summary["eval_tokens"] > 0
    assert main(["eval", str(out), "--data", str(corpus), "--split", "val", "--batch-size", "4",
                 "--max-batches", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["objective"] == objective and result["eval_loss"] == pytest.approx(summary["eval_loss"], rel=1e-5)
    # next-token generation only from a model that learned it (prefix_lm did; unilm and glm did not)
    code = main(["generate", str(out), "--prompt", "床前", "--max-new-tokens", "4", "--temperature", "0"])
    captured = capsys.readouterr()
    if objective == "prefix_lm":
        assert code == 0 and captured.out.startswith("床前")
    else:
        assert code == 2 and f"trained with objective {objective!r}" in captured.err and "Traceback" not in captured.err
