"""Chapter 5.2 and 5.3's experiment (llmarch.lab.why_causal_vs_mlm and its measures, why_rank,
why_harder_task): the metrics against independent references (numpy's SVD, formulas, counting
with a dict), a tiny end-to-end run and its cache, and the pages' statements -- they hold for a
result shaped like the published one and fail as soon as the numbers contradict them.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter

import numpy as np
import pytest
import torch

from llmarch.lab import why_causal_vs_mlm as exp
from llmarch.lab import why_harder_task as harder
from llmarch.lab import why_rank as rank
from llmarch.lab.why_causal_vs_mlm_measures import (
    PROPERTIES,
    attention_spectrum,
    context_cross_entropy,
    heldout_windows,
    probe_labels,
    token_uniformity,
)
from llmarch.lab.why_causal_vs_mlm_report import mean_std, runs_of

# ---------------------------------------------------------------------------------------------
# the metrics
# ---------------------------------------------------------------------------------------------


def test_attention_spectrum_matches_numpy_and_the_formulas():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 6, 6, generator=g, dtype=torch.float64).mul(2).softmax(-1)
    out = attention_spectrum(maps, tol=1e-3)
    for m, spectrum, erank in zip(maps.numpy(), out["spectrum"], out["erank"]):
        sigma = np.linalg.svd(m, compute_uv=False)
        np.testing.assert_allclose(spectrum.numpy(), sigma / sigma[0], rtol=1e-9, atol=1e-12)
        p = sigma / sigma.sum()
        assert float(erank) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-9)
    eye = attention_spectrum(torch.eye(5)[[2, 0, 4, 1, 3]])          # a permutation: all sigma = 1
    assert int(eye["rank"]) == 5 and float(eye["erank"]) == pytest.approx(5) and float(eye["smallest"]) == 1
    same = attention_spectrum(torch.full((4, 4), 0.25))               # all rows equal: rank one
    assert int(same["rank"]) == 1 and float(same["erank"]) == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize("maps, tol, message", [(torch.ones(3, 4), 1e-3, "maps must be"),
                                                (torch.ones(4), 1e-3, "maps must be"),
                                                (torch.eye(3), 0.0, "tol must be")])
def test_attention_spectrum_rejects_bad_input(maps, tol, message):
    with pytest.raises(ValueError, match=message):
        attention_spectrum(maps, tol)


def test_token_uniformity_of_orthogonal_and_equal_tokens():
    n = 5
    out = token_uniformity(torch.eye(n).unsqueeze(0))
    assert float(out["uniform"][0]) == pytest.approx(math.sqrt(1 - 1 / n))     # ||I - 11^T/n|| / ||I||
    assert float(out["rank1"][0]) == pytest.approx(math.sqrt((n - 1) / n))     # n - 1 of n unit sigmas left
    out = token_uniformity(torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]))
    assert float(out["uniform"]) == pytest.approx(0, abs=1e-12) and float(out["rank1"]) == pytest.approx(0, abs=1e-7)


def _reference_cross_entropy(train, test, left, right, vocab, alpha):
    def items(ids):
        return [(tuple(ids[i - left:i]) + tuple(ids[i + 1:i + 1 + right]), ids[i])
                for i in range(left, len(ids) - right)]
    joint = Counter(items(train))
    context = Counter(c for c, _ in items(train))
    return -sum(math.log((joint[(c, x)] + alpha) / (context[c] + alpha * vocab)) for c, x in items(test)) / len(
        items(test))


@pytest.mark.parametrize("left, right", [(0, 0), (1, 0), (2, 0), (1, 1), (0, 2)])
def test_context_cross_entropy_matches_counting_with_a_dict(left, right):
    g = torch.Generator().manual_seed(1)
    train, test = torch.randint(4, (300,), generator=g), torch.randint(4, (80,), generator=g)
    expected = _reference_cross_entropy(train.tolist(), test.tolist(), left, right, 4, 0.5)
    got = context_cross_entropy(train, test, left=left, right=right, vocab_size=4, alpha=0.5)
    assert got == pytest.approx(expected, rel=1e-9)


def test_context_cross_entropy_rejects_bad_input():
    with pytest.raises(ValueError, match="left and right must be >= 0"):
        context_cross_entropy(torch.arange(9), torch.arange(9), left=-1, right=0, vocab_size=9)
    with pytest.raises(ValueError, match="ids must hold more than"):
        context_cross_entropy(torch.arange(9), torch.arange(2), left=1, right=1, vocab_size=9)


def test_probe_labels_by_hand():
    chars = ["<unk>", "a", "b", " ", ","]
    text = "ab aba, b"                                   # 9 characters; the last one is only a target
    ids = torch.tensor([[chars.index(c) for c in text]])
    labels = probe_labels(ids, chars, word_cap=2)
    assert labels["word_position"][0][0].tolist() == [1, 2, 0, 1, 2, 2, 0, 0]   # capped at 2
    assert labels["two_back"][0][0, 2:].tolist() == [chars.index(c) for c in "ab aba"]
    assert labels["two_back"][1][0].tolist() == [False, False] + [True] * 6
    assert labels["next_char"][0][0].tolist() == [chars.index(c) for c in text[1:]]


def test_heldout_windows_are_spread_and_checked():
    windows = heldout_windows(torch.arange(100), count=4, seq_len=9)
    assert windows.shape == (4, 10) and windows[0, 0] == 0 and windows[-1, -1] == 99
    assert bool((windows[:, 1:] - windows[:, :-1] == 1).all())
    with pytest.raises(ValueError, match="count must fit"):
        heldout_windows(torch.arange(100), count=11, seq_len=9)


# ---------------------------------------------------------------------------------------------
# a tiny run, end to end
# ---------------------------------------------------------------------------------------------
TINY = {**exp.SETTINGS,
        "model": {"d_model": 16, "num_layers": 1, "num_heads": 2, "d_ff": 32},
        "train": {"seq_len": 16, "batch_size": 4, "steps": 4, "lr": 3e-3, "warmup_steps": 1, "eval_every": 2,
                  "eval_batches": 2},
        "heldout": {"windows": 8, "probe_train": 6, "rank_windows": 2, "mask_seed": 1},
        "ngram": {"contexts": [[1, 0], [1, 1]], "alpha": 0.01}, "seeds": [0]}


def test_tiny_run_shapes_matched_tokens_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMARCH_CACHE", str(tmp_path))
    result = exp.causal_vs_mlm(TINY, workers=1)
    assert [(r["kind"], r["seed"]) for r in result["runs"]] == [("causal", 0), ("bidirectional", 0)]
    causal, masked = runs_of(result, "causal")[0], runs_of(result, "bidirectional")[0]
    assert causal["tokens_per_step"] == masked["tokens_per_step"] == 4 * 16
    assert causal["predicted_per_step"] == 4 * 16 and masked["predicted_per_step"] == 4 * round(0.15 * 16)
    # BERT's head (dense d x d + bias, LayerNorm), [MASK]'s embedding row, the output bias (74 + [MASK])
    assert masked["parameters"] - causal["parameters"] == 16 * 16 + 16 + 2 * 16 + 16 + 75
    for run in (causal, masked):
        assert [r["step"] for r in run["curve"]] == [2, 4] and run["flops_per_step"] > 0
        for weights in ("trained", "initial"):
            inside = run[weights]
            assert len(inside["rank"]) == 1 and len(inside["rank"][0]) == 2 and len(inside["spectrum"][0][0]) == 16
            assert len(inside["uniform"]) == 2 and set(inside["probes"]) == set(PROPERTIES)
            assert all(0 <= a <= 1 for values in inside["probes"].values() for a in values)
    assert causal["initial"]["rank"] == [[16.0, 16.0]]                  # lower-triangular, positive diagonal
    one_side, both_sides = (row["nats"] for row in result["ngram"])       # contexts 1+0 and 1+1
    assert both_sides < one_side
    stored = list((tmp_path / "why_causal_vs_mlm").glob("*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())["key"] == exp.cache_key(TINY)
    monkeypatch.setattr(exp, "_run_all", lambda *a, **k: pytest.fail("the cached result was not used"))
    assert exp.causal_vs_mlm(TINY) == result
    for page in (rank, harder):
        text = page.summary(result)
        assert max(len(line) for line in text.splitlines()) <= 88 and "DOES NOT HOLD" not in text
    assert len(rank.markdown_table(result, "zh").splitlines()) == 2 + 2 * 2 * 1
    assert len(harder.probe_table(result, "en").splitlines()) == 2 + 3 * 2
    from llmarch.lab.figure_file import save_figure

    save_figure(str(tmp_path / "rank.png"), lambda axes: rank.plot_rank(result, axes), columns=2)
    save_figure(str(tmp_path / "harder.png"), lambda axes: harder.plot_harder(result, axes), columns=4)
    assert (tmp_path / "rank.png").stat().st_size > 0 and (tmp_path / "harder.png").stat().st_size > 0


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="kind must be one of causal, bidirectional, got 'prefix'"):
        exp.train_pair_member("prefix", 0, TINY)
    with pytest.raises(ValueError, match="kind must be one of"):
        runs_of({"runs": []}, "encdec")
    with pytest.raises(ValueError, match="lang must be one of"):
        rank.markdown_table(published(), "fr")
    with pytest.raises(ValueError, match="lang must be one of"):
        harder.probe_table(published(), "fr")
    with pytest.raises(ValueError, match="values must not be empty"):
        mean_std([])


@pytest.mark.parametrize("main", [rank.main, harder.main])
def test_command_line_help(main, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "--workers" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# the pages' statements
# ---------------------------------------------------------------------------------------------
#: The shape of the published run, per kind (seeds vary these numbers by a fraction of a percent).
SHAPE = {
    "causal": {
        "initial": {"rank": [64.0, 64.0], "erank": [21.1, 21.1], "smallest": 5e-3, "uniform": [0.96, 0.94, 0.92],
                    "probes": {"word_position": [0.533, 0.533, 0.535], "two_back": [0.242, 0.285, 0.286],
                               "next_char": [0.347, 0.348, 0.341]}},
        "trained": {"rank": [58.1, 59.3], "erank": [40.4, 33.3], "smallest": 1e-18, "uniform": [0.91, 0.92, 0.93],
                    "probes": {"word_position": [0.533, 0.735, 0.744], "two_back": [0.246, 0.493, 0.493],
                               "next_char": [0.346, 0.458, 0.481]}},
        "loss": 1.715, "same": 1.723, "drop": 0.02, "flops": 0.734e9, "predicted": 1024},
    "bidirectional": {
        "initial": {"rank": [16.3, 15.7], "erank": [1.6, 1.6], "smallest": 7e-8, "uniform": [0.96, 0.90, 0.86],
                    "probes": {"word_position": [0.534, 0.526, 0.531], "two_back": [0.245, 0.256, 0.264],
                               "next_char": [0.346, 0.350, 0.351]}},
        "trained": {"rank": [55.6, 58.0], "erank": [20.5, 28.1], "smallest": 5e-5, "uniform": [0.88, 0.74, 0.79],
                    "probes": {"word_position": [0.534, 0.510, 0.600], "two_back": [0.245, 0.252, 0.298],
                               "next_char": [0.346, 0.334, 0.427]}},
        "loss": 2.127, "same": 2.157, "drop": 0.04, "flops": 0.759e9, "predicted": 160},
}
NGRAM = {(0, 0): 3.08, (1, 0): 2.272, (2, 0): 1.735, (1, 1): 1.332, (4, 0): 1.4, (2, 2): 0.75}


def published(shape=SHAPE, ngram=NGRAM) -> dict:
    """A result shaped like the full run: 3 seeds, 2 layers of 4 heads, 64 positions."""
    runs = []
    for kind, spec in shape.items():
        for seed in range(3):
            wobble = 1 + 0.002 * (seed - 1)
            run = {"kind": kind, "seed": seed, "parameters": 1, "flops_per_step": spec["flops"],
                   "tokens_per_step": 1024, "predicted_per_step": spec["predicted"],
                   "loss": {"predicted": spec["loss"] * wobble, "same_chars": spec["same"] * wobble},
                   "curve": [{"step": 350, "eval_loss": spec["loss"] + spec["drop"]},
                             {"step": 400, "eval_loss": spec["loss"]}],
                   "majority": {"word_position": 0.22, "two_back": 0.18, "next_char": 0.18}}
            for weights in ("initial", "trained"):
                w = spec[weights]
                run[weights] = {
                    "rank": [[r if r == 64 else r * wobble] * 4 for r in w["rank"]],
                    "erank": [[e * wobble] * 4 for e in w["erank"]],
                    "smallest": [[w["smallest"] * wobble] * 4] * 2,
                    "uniform": [u * wobble for u in w["uniform"]], "rank1": [u * 0.9 for u in w["uniform"]],
                    "probes": {p: [a * wobble for a in v] for p, v in w["probes"].items()}}
            runs.append(run)
    return {"settings": exp.SETTINGS, "runs": runs, "machine": "a CPU", "workers": 2, "wall_seconds": 60.0,
            "cpu_seconds": 70.0,
            "ngram": [{"left": left, "right": right, "nats": nats} for (left, right), nats in ngram.items()]}


def failing(claims) -> list[str]:
    return [statement for statement, holds in claims if not holds]


def test_the_claims_hold_for_the_published_shape_and_print_in_88_columns():
    assert failing(rank.claims(published())) == []
    assert failing(harder.claims(published())) == []
    for page in (rank, harder):
        text = page.summary(published())
        assert "checked:" in text and max(len(line) for line in text.splitlines()) <= 88


def changed(path: tuple, value) -> dict:
    shape = copy.deepcopy(SHAPE)
    *keys, last = path
    target = shape
    for key in keys:
        target = target[key]
    target[last] = value
    return shape


@pytest.mark.parametrize("path, value, broken", [
    (("causal", "initial", "rank"), [60.0, 64.0], "init: every causal head keeps all"),
    (("bidirectional", "initial", "rank"), [40.0, 16.0], "init: every bidirectional head's numerical rank"),
    (("bidirectional", "trained", "rank"), [20.0, 58.0], "trained: every bidirectional head's numerical rank > 2"),
    (("causal", "trained", "rank"), [64.0, 64.0], "trained: no causal head keeps all"),
    (("bidirectional", "trained", "rank"), [45.0, 45.0], "trained: mean numerical ranks of the kinds differ"),
    (("bidirectional", "trained", "erank"), [40.0, 40.0], "trained: causal effective rank above"),
    (("bidirectional", "initial", "erank"), [3.0, 1.6], "init: bidirectional mean effective rank"),
    (("causal", "trained", "smallest"), 1e-9, "trained: causal maps numerically singular"),
    (("bidirectional", "trained", "smallest"), 1e-20, "trained: causal maps worse conditioned"),
    (("bidirectional", "trained", "uniform"), [0.3, 0.3, 0.3], "tokens far from collapse"),
    (("bidirectional", "trained", "uniform"), [0.88, 0.93, 0.79], "trained: bidirectional layers nearer"),
])
def test_rank_claims_fail_when_the_numbers_say_otherwise(path, value, broken):
    failed = failing(rank.claims(published(changed(path, value))))
    assert any(statement.startswith(broken) for statement in failed), failed


@pytest.mark.parametrize("path, value, broken", [
    (("bidirectional", "predicted"), 1024, "same tokens read per step"),
    (("bidirectional", "flops"), 0.9e9, "FLOPs per step"),
    (("bidirectional", "loss"), 1.6, "same compute:"),
    (("bidirectional", "same"), 1.6, "same hidden characters"),
    (("bidirectional", "loss"), 1.3, "masked LM's loss per prediction above the count-based"),
    (("bidirectional", "initial", "probes", "two_back"), [0.15, 0.16, 0.17], "initialisation: best left-context"),
    (("bidirectional", "drop"), 0.001, "masked LM's held-out loss fell more"),
    (("bidirectional", "trained", "probes", "word_position"), [0.533, 0.74, 0.80], "left-context probes"),
    (("causal", "trained", "probes", "two_back"), [0.246, 0.3, 0.3], "training added >= 0.1"),
    (("bidirectional", "trained", "probes", "word_position"), [0.53, 0.5, 0.76], "training added less"),
    (("bidirectional", "trained", "probes", "next_char"), [0.35, 0.5, 0.6], "next character"),
])
def test_harder_task_claims_fail_when_the_numbers_say_otherwise(path, value, broken):
    failed = failing(harder.claims(published(changed(path, value))))
    assert any(statement.startswith(broken) for statement in failed), failed


def test_harder_task_counts_claim_needs_both_sides_to_help():
    failed = failing(harder.claims(published(ngram={**NGRAM, (1, 1): 2.0})))
    assert any(statement.startswith("counts:") for statement in failed), failed
