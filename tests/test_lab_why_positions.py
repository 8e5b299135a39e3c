"""Chapter 5.5 (llmarch.lab.why_positions and its report): the permutation symmetry of the package's
models, the position probe, a tiny end-to-end run and its cache, the page's statements about the
full run, and bad input.

Reference values are written out here (a permuted output computed by indexing, the mean absolute
deviation of 0..n-1 from its mean, a result table shaped like the published run), never taken from
the functions under test. No timing is asserted.
"""

from __future__ import annotations

import json

import pytest
import torch

from llmarch import DecoderOnlyLM, EncoderOnlyForMaskedLM
from llmarch.lab import why_positions as wp
from llmarch.lab import why_positions_report as report
from llmarch.lab.text_models import text_model_config

SHAPE = dict(vocab_size=12, d_model=16, num_layers=2, num_heads=2, d_ff=32, max_positions=8)

TINY = {
    **wp.SETTINGS,
    "model": {"d_model": 16, "num_layers": 1, "num_heads": 2, "d_ff": 32},
    "train": {"seq_len": 8, "batch_size": 4, "steps": 3, "lr": 1e-3, "warmup_steps": 1, "eval_every": 0,
              "eval_batches": 2},
    "positions": ["none", "learned"],
    "probe": {"positions": ["none", "learned"], "windows": 6, "l2": 1e-3},
    "seeds": [0, 1],
}


def build(kind: str, position: str, seed: int = 0):
    torch.manual_seed(seed)
    model = DecoderOnlyLM if kind == "causal" else EncoderOnlyForMaskedLM
    return model(text_model_config(kind, position=position, **SHAPE)).eval()


@pytest.mark.parametrize("position", wp.POSITIONS)
@pytest.mark.parametrize("kind", wp.KINDS)
def test_only_the_bidirectional_model_without_positions_is_permutation_equivariant(kind, position):
    model = build(kind, position).double()   # float64: rounding (~1e-16) far below any real gap
    ids = torch.randint(12, (3, 8), generator=torch.Generator().manual_seed(1))
    perm = torch.tensor([7, 2, 5, 0, 6, 1, 4, 3])
    with torch.no_grad():
        permuted, reference = model(ids[:, perm]), model(ids)[:, perm]
    equivariant = kind == "bidirectional" and position == "none"
    assert torch.allclose(permuted, reference, rtol=0, atol=1e-10) == equivariant
    gap = wp.permutation_gap(model, ids, perm)
    assert gap < 1e-10 if equivariant else gap > 1e-7


def test_equal_tokens_get_equal_states_and_every_mask_the_same_prediction():
    row = torch.tensor([[5, 1, 5, 2, 3, 5, 4, 5]])
    same = row[0] == 5
    bidirectional = build("bidirectional", "none", seed=2)
    with torch.no_grad():
        logits = bidirectional(row)[0, same]
    assert torch.allclose(logits, logits[:1].expand_as(logits), atol=1e-6)
    causal = build("causal", "none", seed=2)
    with torch.no_grad():
        logits = causal(row)[0, same]
    assert not torch.allclose(logits, logits[:1].expand_as(logits), atol=1e-6)


def test_probe_windows_and_the_position_probe():
    fit, test = wp.probe_windows(torch.arange(100), 5, 4)
    assert fit.tolist()[1] == [10, 11, 12, 13, 14] and test.tolist()[0] == [5, 6, 7, 8, 9]
    text = torch.randint(12, (400,), generator=torch.Generator().manual_seed(0))
    fit, test = wp.probe_windows(text, 8, 24)
    learned = wp.position_probe(build("bidirectional", "learned"), fit, test)
    nopos = wp.position_probe(build("bidirectional", "none"), fit, test)
    assert len(learned["r2"]) == len(learned["mae"]) == SHAPE["num_layers"] + 1
    assert len(learned["predicted_by_position"]) == len(learned["mae_by_position"]) == 8
    assert learned["r2"][0] > 0.9 and max(nopos["r2"]) < 0.1
    # predicting the mean position 3.5 of 0..7 is off by |i - 3.5|: 2.0 on average
    assert learned["baseline_mae"] == pytest.approx(2.0)


def test_tiny_run_shape_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMARCH_CACHE", str(tmp_path))
    result = wp.why_positions(TINY, workers=1)
    runs = result["runs"]
    assert len(runs) == len(TINY["positions"]) * len(wp.KINDS) * len(TINY["seeds"])
    for run in runs:
        assert run["heldout_loss"] > 0 and run["cpu_seconds"] > 0
        assert len(run["probe"]["r2"]) == TINY["model"]["num_layers"] + 1
    sizes = {(r["kind"], r["position"]): r["parameters"] for r in runs}
    assert sizes["causal", "learned"] - sizes["causal", "none"] == 8 * 16   # one position table
    stored = list((tmp_path / "why_positions").glob("*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())["key"] == wp.cache_key(TINY)
    monkeypatch.setattr(wp, "_run_all", lambda *a, **k: pytest.fail("the cached result was not used"))
    assert wp.why_positions(TINY) == result
    table = report.markdown_table(result, "zh").splitlines()
    assert len(table) == 2 + len(TINY["positions"]) and "±" in table[2]
    assert len(report.probe_table(result, "en").splitlines()) == 2 + TINY["model"]["num_layers"] + 1
    text = report.summary(result)
    assert "held-out loss" in text and max(len(line) for line in text.splitlines()) <= 88


# ---------------------------------------------------------------------------------------------
# the page's statements about the full run
# ---------------------------------------------------------------------------------------------
#: held-out loss of seeds 0, 1, 2 per (kind, positions): the shape of the published run.
LOSSES = {
    ("causal", "learned"): [2.18, 2.17, 2.21], ("bidirectional", "learned"): [3.04, 3.05, 3.07],
    ("causal", "sinusoidal"): [2.44, 2.45, 2.43], ("bidirectional", "sinusoidal"): [2.98, 3.00, 3.03],
    ("causal", "rotary"): [2.00, 1.99, 1.99], ("bidirectional", "rotary"): [2.69, 2.95, 2.60],
    ("causal", "alibi"): [2.10, 2.09, 2.07], ("bidirectional", "alibi"): [2.75, 2.98, 2.68],
    ("causal", "none"): [2.21, 2.21, 2.21], ("bidirectional", "none"): [2.92, 3.02, 2.92],
}
#: the probe's R^2 per layer and its mean reading (32 positions) per probed (kind, positions).
CAUSAL_READING = [7 + 1.2 * i for i in range(8)] + [15 + 0.1 * i for i in range(24)]
PROBES = {
    ("causal", "none"): ([-0.01, 0.26, 0.31], CAUSAL_READING),
    ("bidirectional", "none"): ([-0.01, -0.0, -0.0], [15.5] * 32),
    ("causal", "learned"): ([0.98, 0.87, 0.85], [i * 0.9 for i in range(32)]),
    ("bidirectional", "learned"): ([0.96, 0.52, 0.45], [i * 0.5 + 8 for i in range(32)]),
}


def published(losses=LOSSES, probes=PROBES, entropy=3.069) -> dict:
    runs = []
    for (kind, position), values in losses.items():
        for seed, loss in enumerate(values):
            probe = None
            if (kind, position) in probes:
                r2, reading = probes[kind, position]
                probe = {"r2": [v + 0.005 * seed for v in r2], "mae": [8.0] * len(r2),
                         "predicted_by_position": reading, "mae_by_position": [8.0] * 32, "baseline_mae": 8.0}
            runs.append({"kind": kind, "position": position, "seed": seed, "heldout_loss": loss, "probe": probe})
    return {"settings": {**wp.SETTINGS}, "runs": runs, "unigram_entropy": entropy}


def failing(result) -> list[str]:
    return [statement for statement, holds in report.claims(result) if not holds]


def test_claims_hold_for_the_published_shape():
    assert failing(published()) == []


@pytest.mark.parametrize("change, broken", [
    ({("causal", "sinusoidal"): [2.7, 2.7, 2.7]}, "every causal model ends >= 0.5 nats below"),
    ({("causal", "none"): [2.35, 2.36, 2.34]}, "causal: NoPos within 0.1 nats of learned"),
    ({("causal", "alibi"): [2.15, 2.22, 2.19]}, "causal: rotary and ALiBi beat NoPos and learned"),
    ({("causal", "sinusoidal"): [2.20, 2.21, 2.22]}, "causal: sinusoidal ends behind NoPos"),
    ({("bidirectional", "learned"): [2.70, 2.75, 2.72]}, "masked: learned, sinusoidal, NoPos within 0.25"),
    ({("bidirectional", "rotary"): [2.80, 2.95, 2.90], ("bidirectional", "alibi"): [2.85, 2.98, 2.90]},
     "masked: best rotary/ALiBi run >= 0.2 nats below"),
])
def test_loss_claims_fail_when_the_numbers_say_otherwise(change, broken):
    failed = failing(published({**LOSSES, **change}))
    assert any(statement.startswith(broken) for statement in failed), failed


@pytest.mark.parametrize("change, broken", [
    ({("bidirectional", "none"): ([-0.01, 0.05, 0.08], [15.5] * 32)}, "probe, masked NoPos: R^2 <= 0.02"),
    ({("causal", "none"): ([0.1, 0.26, 0.31], CAUSAL_READING)}, "probe, causal NoPos, every seed"),
    ({("causal", "none"): ([-0.01, 0.33, 0.25], CAUSAL_READING)}, "probe, causal NoPos: the mean R^2 rises"),
    ({("causal", "none"): ([-0.01, 0.26, 0.31], [i * 0.5 for i in range(32)])}, "causal NoPos reading"),
    ({("bidirectional", "none"): ([-0.01, 0.0, 0.0], [15.0 + i / 16 for i in range(32)])},
     "masked NoPos reading"),
    ({("causal", "learned"): ([0.7, 0.6, 0.5], [i * 0.9 for i in range(32)])}, "probe, learned positions: R^2 >= 0.9"),
    ({("bidirectional", "learned"): ([0.96, 0.52, 0.6], [8.0] * 32)}, "probe, learned positions: mean R^2 falls"),
])
def test_probe_claims_fail_when_the_numbers_say_otherwise(change, broken):
    failed = failing(published(probes={**PROBES, **change}))
    assert any(statement.startswith(broken) for statement in failed), failed


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"positions": []}, r"settings\['positions'\] must be a non-empty list"),
    ({"positions": ["none", "t5_relative"]}, r"settings\['positions'\] must be a non-empty list"),
    ({"probe": {"positions": ["rotary"], "windows": 4}, "positions": ["none"]},
     r"settings\['probe'\]\['positions'\] must be among"),
    ({"probe": {"positions": [], "windows": 1}}, r"settings\['probe'\]\['windows'\] must be an int >= 2"),
    ({"seeds": [0, 0]}, r"settings\['seeds'\] must be a non-empty list of distinct seeds"),
])
def test_bad_settings_are_refused_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        wp.why_positions({**TINY, **change}, cache=False)


def test_bad_arguments_are_refused_naming_them():
    with pytest.raises(ValueError, match="kind must be one of causal, bidirectional, got 'gpt'"):
        wp.train_one("gpt", "none", 0, TINY)
    with pytest.raises(ValueError, match="position"):
        wp.train_one("causal", "absolute", 0, TINY)
    with pytest.raises(ValueError, match=r"perm must be a permutation of 0..7, got \[0, 1\]"):
        wp.permutation_gap(build("causal", "none"), torch.zeros(1, 8, dtype=torch.long), [0, 1])
    with pytest.raises(ValueError, match="ids must hold 2 \\* windows \\* seq_len = 40 tokens, got 30"):
        wp.probe_windows(torch.arange(30), 10, 2)


def test_command_line_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        wp.main(["--help"])
    assert exit_info.value.code == 0
    assert "--quick" in capsys.readouterr().out
