"""Chapter 5.1's experiment (llmarch.lab.task_mixture, why_zero_shot, why_zero_shot_report): the
task mixture and its held-out split, the input layouts, the scoring, a tiny end-to-end run and
its cache, and the statements the page makes about the full run.

Reference values are written out here (answers from plain Python lists, rows of ids, a
cross-entropy from the logits), never taken from the functions under test. No timing is asserted.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from llmarch.lab import task_mixture as tm
from llmarch.lab import why_zero_shot as zs
from llmarch.lab import why_zero_shot_report as report
from llmarch.lab.seq2seq_task import EOS, SEP, string_hash, target_loss

TINY = {
    "task": {"length": 4, "heldout_modulus": 10},
    "eval": {"per_task": 4, "seed": 7},
    "model": {"d_model": 16, "num_heads": 2, "num_layers": 2, "d_ff": 32},
    "train": {"steps": 4, "batch_size": 8, "lr": 1e-3, "warmup_steps": 1, "min_lr_ratio": 0.1,
              "weight_decay": 0.1, "clip": 1.0, "eval_every": 2},
    "seeds": [0, 1],
}


def reference(task, digits: list[int]) -> list[int]:
    """The answer of ``task`` written with Python lists."""
    permutation, value = task
    moved = {"keep": digits, "reverse": digits[::-1], "rotate": digits[1:] + digits[:1]}[permutation]
    return [{"same": d, "add1": (d + 1) % 10, "flip": 9 - d}[value] for d in moved]


def test_every_task_type_matches_the_list_reference():
    digits = torch.randint(0, 10, (50, 5), generator=torch.Generator().manual_seed(0))
    for task in tm.TASKS:
        assert tm.apply_task(task, digits).tolist() == [reference(task, row) for row in digits.tolist()]


def test_held_out_types_form_a_latin_diagonal():
    assert len(tm.TASKS) == 9 and len(tm.HELD_OUT) == 3 and set(tm.TRAINED) | set(tm.HELD_OUT) == set(tm.TASKS)
    for k in (0, 1):  # every permutation and every map: once held out, twice trained
        assert sorted(t[k] for t in tm.HELD_OUT) == sorted({t[k] for t in tm.TASKS})
        assert all(sum(t[k] == op for t in tm.TRAINED) == 2 for op in {t[k] for t in tm.TASKS})


def test_samples_answers_splits_and_task_types():
    draw = dict(length=4, heldout_modulus=5)
    train = tm.sample_tasks(400, tasks=tm.TRAINED, split="train", generator=torch.Generator().manual_seed(0), **draw)
    held = tm.sample_tasks(60, tasks=tm.HELD_OUT, split="heldout", generator=torch.Generator().manual_seed(1),
                           balanced=True, **draw)
    for ex in (train, held):
        for source, target, index in zip(ex.source.tolist(), ex.target.tolist(), ex.task.tolist()):
            task = tm.TASKS[index]
            assert source[:2] == [tm.op_token(task[0]), tm.op_token(task[1])]
            assert target == reference(task, source[2:])
    assert {tm.TASKS[i] for i in train.task.tolist()} == set(tm.TRAINED)       # never a held-out type
    assert [tm.TASKS[i] for i in held.task.tolist()[:6]] == list(tm.HELD_OUT) * 2
    strings = lambda ex: {tuple(s[2:]) for s in ex.source.tolist()}  # noqa: E731
    assert not strings(train) & strings(held)
    assert bool((string_hash(held.source[:, 2:], torch.full((60,), 4)) % 5 == 0).all())


def test_decoder_only_and_encoder_decoder_layouts():
    ex = tm.TaskExamples(torch.tensor([[14, 17, 3, 1, 4, 1]]), torch.tensor([[2, 5, 2, 4]]), torch.tensor([4]))
    x = -100
    dec = tm.model_inputs("causal", ex)
    assert dec["input_ids"].tolist() == [[14, 17, 3, 1, 4, 1, SEP, 2, 5, 2, 4, EOS]]
    assert dec["labels"].tolist() == [[x] * 7 + [2, 5, 2, 4, EOS]]
    assert dec["prefix_lengths"].tolist() == [7] and dec["attention_mask"].sum() == 12
    enc = tm.model_inputs("encdec", ex)
    assert enc["input_ids"].tolist() == [[14, 17, 3, 1, 4, 1]]
    assert enc["decoder_input_ids"].tolist() == [[SEP, 2, 5, 2, 4]]
    assert enc["labels"].tolist() == [[2, 5, 2, 4, EOS]]


@pytest.mark.parametrize("arch", zs.ARCHITECTURES)
def test_answer_logits_are_the_ones_the_loss_scores(arch):
    model = zs.build_model(arch, TINY, seed=0).eval()
    ex = tm.sample_tasks(5, tasks=tm.TASKS, length=4, heldout_modulus=10, split="train",
                         generator=torch.Generator().manual_seed(3))
    inputs = tm.model_inputs(arch, ex)
    with torch.no_grad():
        logits = tm.answer_logits(model, arch, inputs)
        loss = target_loss(model, arch, inputs)
    answer = torch.cat([ex.target, torch.full((5, 1), EOS)], dim=1)
    assert logits.shape == (5, 5, tm.VOCAB_SIZE)
    torch.testing.assert_close(F.cross_entropy(logits.flatten(0, 1), answer.flatten()), loss, rtol=1e-5, atol=1e-6)
    assert torch.equal(tm.teacher_forced_correct(model, arch, ex), logits.argmax(-1) == answer)


class Oracle(torch.nn.Module):
    """A stand-in whose ``generate`` answers ``answer(source)`` then EOS, in the layout of ``arch``."""

    def __init__(self, arch: str, answer):
        super().__init__()
        self.arch, self.answer = arch, answer

    def generate(self, ids, max_new_tokens, eos_token_id=None, pad_token_id=None):
        source = ids if self.arch == "encdec" else ids[:, :-1]
        out = torch.cat([self.answer(source), torch.full((len(ids), 1), eos_token_id)], dim=1)
        start = torch.full((len(ids), 1), SEP) if self.arch == "encdec" else ids
        return torch.cat([start, out], dim=1)


@pytest.mark.parametrize("arch", ["causal", "encdec"])
def test_evaluate_counts_right_answers_and_answers_of_trained_types(arch):
    ex = tm.sample_tasks(30, tasks=tm.HELD_OUT, length=4, heldout_modulus=10, split="heldout",
                         generator=torch.Generator().manual_seed(2), balanced=True)
    right = Oracle(arch, lambda source: torch.tensor([reference(tm.TASKS[int(i)], s[2:])
                                                      for i, s in zip(ex.task, source.tolist())]))
    scores = zs.evaluate(right, arch, ex)
    assert scores["exact_match"] == 1.0 and scores["digit_accuracy"] == 1.0 and scores["fallback"] == 0.0
    assert scores["per_task"] == {"+".join(task): 1.0 for task in tm.HELD_OUT}
    # answering (keep, same) -- a trained type -- instead: a fallback unless it happens to be right
    copy = zs.evaluate(Oracle(arch, lambda source: source[:, 2:]), arch, ex)
    assert copy["exact_match"] < 0.2 and copy["fallback"] == pytest.approx(1 - copy["exact_match"])
    training = Oracle(arch, lambda source: source[:, 2:]).train()
    zs.evaluate(training, arch, ex)
    assert training.training                                           # the mode is left as it was


def test_bad_input_names_the_argument():
    draw = dict(length=4, heldout_modulus=10, split="train", generator=torch.Generator())
    with pytest.raises(ValueError, match="tasks must be"):
        tm.sample_tasks(2, tasks=[("keep", "double")], **draw)
    with pytest.raises(ValueError, match="tasks must be"):
        tm.sample_tasks(2, tasks=[], **draw)
    with pytest.raises(ValueError, match="length must be >= 2, got 1"):
        tm.sample_tasks(2, tasks=tm.TRAINED, **{**draw, "length": 1})
    with pytest.raises(ValueError, match="split must be"):
        tm.sample_tasks(2, tasks=tm.TRAINED, **{**draw, "split": "test"})
    with pytest.raises(ValueError, match="name must be one of"):
        tm.op_token("sort")
    with pytest.raises(ValueError, match="task must be one of"):
        tm.apply_task(("sort", "same"), torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="lang must be one of"):
        report.markdown_table(published(), "fr")


def test_tiny_run_matched_models_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMARCH_CACHE", str(tmp_path))
    result = zs.why_zero_shot(TINY, workers=1)
    runs = result["runs"]
    assert [(r["arch"], r["seed"]) for r in runs] == [(a, s) for s in TINY["seeds"] for a in zs.ARCHITECTURES]
    sizes = {r["arch"]: r["parameters"] for r in runs}
    assert sizes["causal"] == sizes["prefix"] and abs(sizes["encdec"] / sizes["causal"] - 1) < 0.02
    for r in runs:
        assert [rec["step"] for rec in r["records"]] == [2, 4]
        assert 0.0 <= r["heldout"]["exact_match"] <= 1.0 and set(r["heldout"]["per_task"]) == {
            "+".join(task) for task in tm.HELD_OUT}
        if r["arch"] == "encdec":      # equal parameters, less arithmetic per step
            assert r["flops_per_step"] < next(c["flops_per_step"] for c in runs if c["arch"] == "causal")
    stored = list((tmp_path / "why_zero_shot").glob("*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())["key"] == zs.cache_key(TINY)
    monkeypatch.setattr(zs, "_run_all", lambda *a, **k: pytest.fail("the cached result was not used"))
    assert zs.why_zero_shot(TINY) == result
    table = report.markdown_table(result, "zh").splitlines()
    assert len(table) == 2 + len(zs.ARCHITECTURES) and "±" in table[2]
    text = report.summary(result)
    assert "held-out" in text and max(len(line) for line in text.splitlines()) <= 88


def test_main_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        zs.main(["--help"])
    assert exit_info.value.code == 0 and "--workers" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# the statements of section 5.1
# ---------------------------------------------------------------------------------------------
#: per architecture: GFLOP/step, then per seed (final trained, final held-out exact match, the
#: (step, trained, held-out) records) -- the shape of the published run.
PUBLISHED = {
    "causal": (0.24, [(1.00, 0.82, [(400, 0.50, 0.42), (600, 0.98, 0.68), (1000, 1.0, 0.82)]),
                      (0.80, 0.01, [(400, 0.29, 0.00), (600, 0.46, 0.01), (1000, 0.80, 0.01)]),
                      (1.00, 0.30, [(400, 0.15, 0.04), (700, 0.94, 0.13), (1000, 1.0, 0.30)])]),
    "prefix": (0.24, [(1.00, 0.49, [(400, 0.65, 0.07), (700, 1.00, 0.44), (1000, 1.0, 0.49)]),
                      (0.96, 0.66, [(400, 0.16, 0.02), (900, 0.92, 0.58), (1000, 0.96, 0.66)]),
                      (1.00, 0.00, [(400, 0.35, 0.01), (600, 1.00, 0.01), (1000, 1.0, 0.00)])]),
    "encdec": (0.11, [(1.00, 1.00, [(300, 0.84, 0.75), (400, 0.99, 0.96), (1000, 1.0, 1.00)]),
                      (1.00, 0.62, [(300, 0.96, 0.67), (500, 0.99, 0.94), (1000, 1.0, 0.62)]),
                      (1.00, 0.83, [(300, 0.87, 0.48), (400, 0.99, 0.82), (1000, 1.0, 0.83)])]),
}


def published(table=PUBLISHED) -> dict:
    runs = [{"arch": arch, "seed": seed, "parameters": 1, "flops_per_step": gflop * 1e9, "cpu_seconds": 1.0,
             "records": [{"step": s, "trained": t, "heldout": h} for s, t, h in records],
             "trained": {"exact_match": trained, "digit_accuracy": trained},
             "heldout": {"exact_match": held, "digit_accuracy": held, "fallback": 0.0,
                         "per_task": {"+".join(task): held for task in tm.HELD_OUT}}}
            for arch, (gflop, seeds) in table.items() for seed, (trained, held, records) in enumerate(seeds)]
    return {"runs": runs}


def failing(claims) -> list[str]:
    return [statement for statement, holds in claims if not holds]


def test_claims_hold_for_the_published_shape():
    assert failing(report.claims(published())) == []


def _with(arch, seed, trained=None, held=None, records=None, gflop=None) -> dict:
    old_gflop, seeds = PUBLISHED[arch]
    seeds = list(seeds)
    t, h, r = seeds[seed]
    seeds[seed] = (trained if trained is not None else t, held if held is not None else h, records or r)
    return {**PUBLISHED, arch: (gflop or old_gflop, seeds)}


def _encdec(held_at_fit: float, finals=(1.0, 0.62, 0.83)) -> dict:
    """PUBLISHED with the encoder-decoder's records replaced: fit at step 300 with ``held_at_fit``."""
    return {**PUBLISHED, "encdec": (0.11, [(1.0, h, [(300, 0.95, held_at_fit), (1000, 1.0, h)]) for h in finals])}


@pytest.mark.parametrize("table, broken", [
    (_with("causal", 2, records=[(300, 0.95, 0.9)]), "trained types: every encoder-decoder run hits"),
    (_with("prefix", 1, trained=0.1), "trained types: every architecture >= 80%"),
    ({**PUBLISHED, "encdec": (0.11, [(1.0, 0.4, r) for _, _, r in PUBLISHED["encdec"][1]])},
     "held-out types: encoder-decoder >= 10 points ahead"),
    ({**_with("causal", 1, held=0.8), "prefix": (0.24, [(1.0, 0.02, [(600, 1.0, 0.0)])] * 3)},
     "held-out types: causal vs prefix LM gap within"),
    (_encdec(0.3), "held-out at first 90% on trained"),
    ({arch: (gflop, [(t, 0.5, r) for t, _, r in seeds]) for arch, (gflop, seeds) in PUBLISHED.items()},
     "held-out types: some architecture's seeds differ"),
    (_with("encdec", 0, gflop=0.24), "encoder-decoder: 0.4-0.6x the GFLOP"),
])
def test_claims_fail_when_the_numbers_say_otherwise(table, broken):
    failed = failing(report.claims(published(table)))
    assert any(statement.startswith(broken) for statement in failed), failed


def test_first_fit_and_aggregate():
    agg = report.aggregate(published())
    assert agg["causal"]["at_fit"] == [(600, 0.68), None, (700, 0.13)]
    mean, std = agg["encdec"]["heldout"]
    assert mean == pytest.approx((1.0 + 0.62 + 0.83) / 3) and std > 0
