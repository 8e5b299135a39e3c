"""Section 5.4 (llmarch.lab.in_context_tasks, why_in_context, why_in_context_report): the dual
form of attention and gradient descent, the regression task and its yardsticks, the two model
variants, a tiny end-to-end run and its cache, and the page's claims.

Reference values are written out here (loops over outer products, a gradient step by autograd,
``torch.linalg.lstsq``, closed-form expected errors), never taken from the functions under test.
"""

from __future__ import annotations

import json

import pytest
import torch

from llmarch.lab import in_context_tasks as tasks
from llmarch.lab import why_in_context as wic
from llmarch.lab import why_in_context_report as report

TINY = {
    "task": {"dim": 3, "max_examples": 4},
    "heldout": {"prompts": 16, "seed": 7},
    "model": {"d_model": 16, "num_heads": 2, "num_layers": 2, "d_ff": 32},
    "train": {"steps": 6, "batch_size": 8, "lr": 1e-3, "warmup_steps": 2, "min_lr_ratio": 0.1,
              "weight_decay": 0.0, "clip": 1.0, "eval_every": 3},
    "seeds": [0, 1],
}


def f64(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_linear_attention_is_a_sum_of_outer_products():
    values, keys, queries = f64(5, 3, seed=1), f64(5, 4, seed=2), f64(2, 4, seed=3)
    weight = torch.zeros(3, 4, dtype=torch.float64)
    for v, k in zip(values, keys):
        weight += torch.outer(v, k)
    torch.testing.assert_close(tasks.linear_attention(values, keys, queries), queries @ weight.T, rtol=0, atol=1e-12)
    batched = tasks.linear_attention(values.expand(2, 5, 3), keys.expand(2, 5, 4), queries[:, None])
    torch.testing.assert_close(batched[:, 0], queries @ weight.T, rtol=0, atol=1e-12)


def test_demonstrations_add_a_weight_update_to_linear_attention():
    w_k, w_v = f64(4, 6, seed=1), f64(5, 6, seed=2)
    demos, context, q = f64(3, 6, seed=3), f64(2, 6, seed=4), f64(4, seed=5)
    tokens = torch.cat([demos, context])
    attend = sum((w_v @ t) * float((w_k @ t) @ q) for t in tokens)            # sum_i v_i (k_i . q)
    zero_shot = sum((w_v @ t) * float((w_k @ t) @ q) for t in context)
    update = tasks.demonstration_update(w_k, w_v, demos)
    assert update.shape == (5, 4)
    torch.testing.assert_close(attend, zero_shot + update @ q, rtol=0, atol=1e-10)


def test_one_gd_step_is_linear_attention_over_the_demonstrations():
    prompts = tasks.sample_prompts(5, 7, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lr = 0.05
    for b in range(5):
        w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        loss = 0.5 * ((prompts.x[b, :-1] @ w - prompts.y[b, :-1]) ** 2).sum()
        loss.backward()
        expected = prompts.x[b, -1] @ (w - lr * w.grad)
        torch.testing.assert_close(tasks.gd_step_prediction(prompts, lr)[b], expected.detach(), rtol=0, atol=1e-10)


def test_yardsticks_match_their_closed_forms():
    dim, gen = 4, torch.Generator().manual_seed(0)
    exact = tasks.sample_prompts(50, 6, dim, generator=gen, dtype=torch.float64)
    assert tasks.normalized_error(tasks.least_squares_prediction(exact), exact) < 1e-20   # k >= d: exact
    for k in (2, 8):  # expected error: (d - k)/d for minimum-norm least squares, (d+1)/(k+d+1) for one GD step
        p = tasks.sample_prompts(40000, k, dim, generator=gen, dtype=torch.float64)
        assert tasks.normalized_error(tasks.least_squares_prediction(p), p) == pytest.approx(max(0, dim - k) / dim,
                                                                                            abs=0.03)
        assert tasks.normalized_error(tasks.gd_step_prediction(p), p) == pytest.approx((dim + 1) / (k + dim + 1),
                                                                                      rel=0.05)
    none = tasks.sample_prompts(3, 0, dim, generator=gen)
    assert tasks.least_squares_prediction(none).tolist() == [0.0] * 3


def test_prompt_tokens_pack_one_pair_per_token_and_flag_the_query():
    p = tasks.sample_prompts(2, 3, 2, generator=torch.Generator().manual_seed(0))
    t = tasks.prompt_tokens(p)
    assert t.shape == (2, 4, 4)
    assert torch.equal(t[:, :, :2], p.x)
    assert torch.equal(t[:, :3, 2], p.y[:, :3]) and t[:, 3, 2].tolist() == [0.0, 0.0]   # the answer is hidden
    assert t[:, :, 3].tolist() == [[0.0, 0.0, 0.0, 1.0]] * 2


def test_the_mask_matters_only_from_the_second_layer_on():
    tokens = tasks.prompt_tokens(tasks.sample_prompts(4, 5, 3, generator=torch.Generator().manual_seed(0)))
    for layers, same in ((1, True), (2, False)):
        model = wic.build_model({**TINY, "model": {**TINY["model"], "num_layers": layers}}, seed=0).eval()
        with torch.no_grad():
            causal, prefix = model(tokens, "causal"), model(tokens, "prefix")
        assert torch.allclose(causal, prefix, atol=1e-6) is same
    a, b = wic.build_model(TINY, seed=3), wic.build_model(TINY, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("call, match", [
    (lambda: tasks.sample_prompts(2, -1, 3, generator=torch.Generator()), "k must be an int >= 0"),
    (lambda: tasks.sample_prompts(0, 1, 3, generator=torch.Generator()), "batch must be an int >= 1"),
    (lambda: tasks.linear_attention(torch.zeros(2, 3), torch.zeros(3, 4), torch.zeros(1, 4)), "values .* keys"),
    (lambda: tasks.linear_attention(torch.zeros(3), torch.zeros(3, 4), torch.zeros(1, 4)), "at least 2-d"),
    (lambda: tasks.normalized_error(torch.zeros(3), tasks.sample_prompts(2, 1, 3, generator=torch.Generator())),
     "prediction must have shape"),
    (lambda: wic.build_model(TINY)(torch.zeros(1, 2, 5), "encdec"), "variant must be one of causal, prefix"),
    (lambda: wic.train_one("bidirectional", 0, TINY), "variant must be one of"),
])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_tiny_run_same_prompts_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMARCH_CACHE", str(tmp_path))
    result = wic.why_in_context(TINY, workers=1)
    runs = result["runs"]
    assert [(r["variant"], r["seed"]) for r in runs] == [(v, s) for s in TINY["seeds"] for v in wic.VARIANTS]
    ks = TINY["task"]["max_examples"] + 1
    for r in runs:
        assert len(r["error"]) == len(r["to_gd"]) == len(r["to_least_squares"]) == ks
        assert [rec["step"] for rec in r["records"]] == [3, 6]
        assert r["parameters"] == runs[0]["parameters"]
    assert sorted(result["baselines"]) == ["gd", "least_squares", "zero"]
    assert result["baselines"]["least_squares"][-1] < 1e-6          # k = 4 > d = 3: exact
    stored = list((tmp_path / "why_in_context").glob("*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())["key"] == wic.cache_key(TINY)
    monkeypatch.setattr(wic, "_run_all", lambda *a, **k: pytest.fail("the cached result was not used"))
    assert wic.why_in_context(TINY) == result
    text = report.summary(result)
    assert "1 GD step" in text and max(len(line) for line in text.splitlines()) <= 88
    table = report.markdown_table(result, "zh").splitlines()
    assert len(table) == 2 + len([k for k in report.TABLE_KS if k < ks]) and "±" in table[2]


# --- the page's claims: hold for the published shape, fail when the numbers contradict them ----
GD = [5 / (k + 5) for k in range(11)]
LEAST_SQUARES = [max(0.0, (4 - k) / 4) for k in range(11)]


def published(causal_last=(0.27, 0.25, 0.23), prefix_last=(0.24, 0.25, 0.36), to_gd=0.15, flat=False, first=1.0):
    """Errors shaped like the full run: ``first`` at k = 0 falling to ``*_last`` at k = 10."""
    def curve(last):
        return [first] * 11 if flat else [first - (first - last) * k / 10 for k in range(11)]
    runs = [{"variant": v, "seed": s, "error": curve(last), "to_gd": [0.0] + [to_gd] * 10, "cpu_seconds": 12.0}
            for v, lasts in (("causal", causal_last), ("prefix", prefix_last)) for s, last in enumerate(lasts)]
    return {"settings": {"task": {"dim": 4, "max_examples": 10}},
            "baselines": {"zero": [1.0] * 11, "gd": GD, "least_squares": LEAST_SQUARES}, "runs": runs}


def failing(result) -> list[str]:
    return [statement for statement, holds in report.claims(result) if not holds]


def test_claims_hold_for_the_published_shape():
    assert failing(published()) == []


@pytest.mark.parametrize("result, broken", [
    (published(prefix_last=(0.4, 0.45, 0.5)), "both learn in context: mean error at k = 10 < 0.4"),
    (published(flat=True), "error falls with k"),
    (published(flat=True, first=1.2), "within 0.05 of the zero predictor"),
    (published(causal_last=(0.05, 0.05, 0.05)), "within 0.1 of one GD step"),
    (published(to_gd=0.3), "closer to one GD step's"),
    (published(causal_last=(0.20, 0.20, 0.20), prefix_last=(0.33, 0.33, 0.33)), "mean gap within"),
])
def test_claims_fail_when_the_numbers_contradict_them(result, broken):
    assert any(broken in statement for statement in failing(result))


def test_command_line_help():
    with pytest.raises(SystemExit) as exit_info:
        wic.main(["--help"])
    assert exit_info.value.code == 0
