"""The statements the chapters make about their cached experiments (``llmarch.lab.claims`` and
each experiment's ``claims``): they hold for results shaped like the published ones and fail as
soon as the numbers contradict them; and the small helpers the experiments share."""

from __future__ import annotations

import math

import pytest
import torch

from llmarch.lab import multiturn as mt
from llmarch.lab import prefix_compare_report as report
from llmarch.lab import tang_run
from llmarch.lab.claims import claim_lines, require
from llmarch.lab.figure_file import save_figure
from llmarch.lab.matched_models import ARCHITECTURES, matched_model
from llmarch.lab.parallel_runs import run_jobs


def failing(claims) -> list[str]:
    return [statement for statement, holds in claims if not holds]


def test_claim_lines_and_require():
    assert claim_lines([("a", True), ("b", False)]) == ["holds          a", "DOES NOT HOLD  b"]
    require([("a", True)], "x")
    with pytest.raises(AssertionError, match="x: the page says what this result does not show: b; c"):
        require([("a", True), ("b", False), ("c", False)], "x")


# ---------------------------------------------------------------------------------------------
# chapter 4.4: the comparison
# ---------------------------------------------------------------------------------------------
#: per (condition, architecture): GFLOP/step, held-out loss and exact match of seeds 0, 1, 2 --
#: the shape of the published run (encoder-decoder far ahead until the sources are padded).
COMPARISON = {
    ("varied", "causal"): (0.71, [0.135, 0.138, 0.161], [0.705, 0.703, 0.641]),
    ("varied", "prefix"): (0.71, [0.143, 0.146, 0.125], [0.686, 0.641, 0.709]),
    ("varied", "encdec"): (0.33, [0.0038, 0.0034, 0.0034], [0.996, 0.996, 0.996]),
    ("padded", "causal"): (0.71, [0.0123, 0.0287, 0.0123], [0.994, 0.943, 0.982]),
    ("padded", "prefix"): (0.71, [0.0069, 0.0067, 0.0063], [0.994, 0.994, 0.994]),
    ("padded", "encdec"): (0.33, [0.0018, 0.0016, 0.0019], [1.0, 1.0, 1.0]),
}


def comparison(table=COMPARISON) -> dict:
    runs = [{"task": task, "arch": arch, "seed": seed, "parameters": 1, "flops_per_step": gflop * 1e9,
             "tokens_read": 1, "target_tokens": 1, "heldout_loss": losses[seed], "exact_match": matches[seed],
             "cpu_seconds": 1.0}
            for (task, arch), (gflop, losses, matches) in table.items() for seed in range(3)]
    return {"settings": {"tasks": {"varied": {}, "padded": {}}}, "runs": runs}


def test_comparison_claims_hold_for_the_published_shape():
    assert failing(report.claims(comparison())) == []


@pytest.mark.parametrize("change, broken", [
    ({("varied", "causal"): (0.71, [0.01] * 3, [0.99] * 3)}, "varied: encoder-decoder >= 10 points ahead"),
    ({("varied", "prefix"): (0.71, [0.14] * 3, [0.40, 0.41, 0.42])}, "varied: causal vs prefix LM gap within"),
    ({("padded", "causal"): (0.71, [0.03] * 3, [0.80, 0.85, 0.82])}, "padded: every architecture >= 90%"),
    ({("padded", "prefix"): (0.71, [0.02, 0.03, 0.01], [0.99] * 3)}, "padded: prefix LM's held-out loss"),
    ({("padded", "encdec"): (0.71, [0.0018] * 3, [1.0] * 3)}, "encoder-decoder: 0.4-0.6x the GFLOP"),
    ({("padded", "encdec"): (0.33, [0.009] * 3, [1.0] * 3)}, "encoder-decoder: best exact match and lowest"),
])
def test_comparison_claims_fail_when_the_numbers_say_otherwise(change, broken):
    failed = failing(report.claims(comparison({**COMPARISON, **change})))
    assert any(statement.startswith(broken) for statement in failed), failed


def test_padding_must_close_most_of_the_gap():
    table = {**COMPARISON, ("padded", "causal"): (0.71, [0.02] * 3, [0.91, 0.91, 0.91])}
    table[("padded", "encdec")] = (0.33, [0.0018] * 3, [1.0, 1.0, 1.0])
    table[("varied", "causal")] = (0.71, [0.135] * 3, [0.85, 0.85, 0.85])
    table[("varied", "prefix")] = (0.71, [0.135] * 3, [0.85, 0.85, 0.85])
    assert "padding cuts the encoder-decoder's lead over causal by more than half" in failing(
        report.claims(comparison(table)))


# ---------------------------------------------------------------------------------------------
# chapter 4.4: the multi-turn chat
# ---------------------------------------------------------------------------------------------
def chat(causal=None, prefix=None, encdec=None, reused_last=720) -> dict:
    turns = range(10)
    flops = {"causal": causal or [0.55 + 0.025 * t for t in turns],
             "prefix": prefix or [0.54 + 0.8 * t for t in turns],
             "encdec": encdec or [0.27 + 0.39 * t for t in turns]}
    context = [80 * (t + 1) for t in turns]
    return {"archs": {arch: {"flops": [f * 1e9 for f in values], "context": context,
                             "reused": [0] * 9 + [reused_last if arch == "causal" else 0]}
                      for arch, values in flops.items()}}


def test_chat_claims():
    assert failing(mt.claims(chat())) == []
    assert failing(mt.claims(chat(causal=[0.5 + 0.1 * t for t in range(10)]))) == [
        "causal decoder: last turn's GFLOP < 1.5x the first turn's"]
    assert failing(mt.claims(chat(prefix=[1.0 + 0.2 * t for t in range(10)], encdec=[0.5 + 0.1 * t for t in range(10)]))) \
        == ["prefix LM: total GFLOP >= 3x the causal decoder's"]
    assert failing(mt.claims(chat(encdec=[0.27 + 0.8 * t for t in range(10)]))) == [
        "encoder-decoder: GFLOP grows per turn 0.4-0.6x as fast as the prefix LM's"]
    assert failing(mt.claims(chat(reused_last=640))) == [
        "causal decoder: the last turn reuses every earlier token's K/V"]


# ---------------------------------------------------------------------------------------------
# the training chapter: the Tang poems
# ---------------------------------------------------------------------------------------------
def tang(final=(5.60, 5.63, 5.60), first=7.86, passes=15.4, vocab=2577, entropy=6.185,
         train_end=4.88) -> dict:
    settings = tang_run.SETTINGS
    steps = settings["train"]["steps"]
    chars = round(steps * settings["train"]["batch_size"] * settings["train"]["seq_len"] / passes)
    runs = []
    for seed, last in enumerate(final):
        records = [{"step": s, "loss": first if s == 1 else (5.24 if s <= steps // 2 else train_end)}
                   for s in range(1, steps + 1)]
        for s in range(25, steps + 1, 25):      # validation: 6.1 at 50, 5.73 in the middle, `last` at the end
            records.append({"step": s, "eval_loss": {25: 6.9, 50: 6.1}.get(s, 5.73 if s < steps else last)})
        runs.append({"seed": seed, "records": records})
    return {"settings": settings, "runs": runs, "unigram_entropy": entropy, "vocab_size": vocab,
            "train_chars": chars}


def test_tang_claims():
    assert failing(tang_run.claims(tang())) == []
    assert failing(tang_run.claims(tang(first=7.0))) == [
        "the first training loss is within 0.1 nats of log V (a uniform guess)"]
    assert failing(tang_run.claims(tang(final=(5.6, 5.75, 5.6)))) == [
        "the seeds' final validation losses lie within 0.1 nats"]
    assert failing(tang_run.claims(tang(passes=8))) == ["the training text is read more than ten times"]
    assert failing(tang_run.claims(tang(train_end=5.5))) == [
        "the train-validation gap is wider at the end than in the middle"]
    assert "the final validation loss is >= 0.3 nats below the unigram entropy" in failing(
        tang_run.claims(tang(entropy=5.8)))
    assert "val perplexity 100-400; unigram 485, vocabulary 2,577 (as the page says)" in failing(
        tang_run.claims(tang(vocab=3000)))
    late = tang()
    for run in late["runs"]:
        for record in run["records"]:
            if record.get("step") == 50 and "eval_loss" in record:
                record["eval_loss"] = 6.5   # above the unigram entropy at steps 50 and 75
            if record.get("step") == 75 and "eval_loss" in record:
                record["eval_loss"] = 6.3
    assert failing(tang_run.claims(late)) == ["every seed's validation loss is below the unigram entropy by step 75"]


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------
def test_run_jobs_in_processes_equals_in_this_process():
    assert run_jobs(math.factorial, [3, 4, 5], workers=2) == run_jobs(math.factorial, [3, 4, 5], workers=1) \
        == [6, 24, 120]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f"workers must be a positive int, got {bad!r}"):
            run_jobs(math.factorial, [3], workers=bad)


def test_save_figure_writes_the_file(tmp_path, capsys):
    seen = []
    save_figure(str(tmp_path / "f.png"), lambda axes: seen.append(len(axes)), columns=2, size=(4, 2))
    assert seen == [2] and (tmp_path / "f.png").stat().st_size > 0
    assert "figure:" in capsys.readouterr().err


def test_matched_models_keep_the_global_random_state():
    shape = dict(vocab_size=16, d_model=32, num_heads=2, max_positions=16, num_layers=2, d_ff=64)
    state = torch.random.get_rng_state()
    first = [matched_model(arch, seed=3, decoder_start_token_id=0, **shape) for arch in ARCHITECTURES]
    assert torch.equal(torch.random.get_rng_state(), state)
    again = matched_model("causal", seed=3, **shape)
    assert all(torch.equal(a, b) for a, b in zip(first[0].state_dict().values(), again.state_dict().values()))
    with pytest.raises(ValueError, match="arch must be one of causal, prefix, encdec, got 'gpt'"):
        matched_model("gpt", seed=0, **shape)
