"""``python -m llmarch bench generate``: symmetric rows, refusals, the fair recompute baseline.

Smoke and logic only: no time is asserted or compared.
"""

from __future__ import annotations

import pytest
import torch

from llmarch import create_model
from llmarch.cli import main
from llmarch.lab import bench_generate
from llmarch.lab.benchkit import REFUSED, Row, layout_fingerprint

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_pair():
    from transformers import GPT2Config

    torch.manual_seed(0)
    return bench_generate._pair(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64, n_positions=64,
                                           bos_token_id=None, eos_token_id=None))


def test_quick_run_prints_every_row_and_exits_zero(capsys):
    assert main(["bench", "generate", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ") and "avx512_bf16" in out and "amx_bf16" in out and "threads" in out
    for label in ("hf GPT2LMHeadModel", "hf + use_decoding_layout", "llmarch DecoderOnlyLM",
                  "llmarch + prepare_for_decoding()", "llmarch, compile=True", "hf, static cache + compile",
                  "llmarch bf16", "hf bf16"):
        assert f"\n{label} " in out
    assert "all 4 timed rows produced the same" in out and REFUSED not in out
    assert "no cache s" in out and "vs fp32 (same impl.)" in out


def test_both_sides_decode_without_eos(tiny_pair):
    hf, ours = tiny_pair
    assert hf.generation_config.eos_token_id is None and ours.config.eos_token_id is None


def test_rows_leave_the_models_as_they_were(tiny_pair):
    hf, ours = tiny_pair
    before = layout_fingerprint(hf), layout_fingerprint(ours)
    rows = bench_generate.decoding_rows(hf, ours, 4, compiled=False)
    assert [row.unchanged for row in rows[:4]] == [hf, None, ours, None]  # layout rows run on copies
    with torch.inference_mode():
        text, code = bench_generate.decoding_table(rows, 4, rounds=1)
    assert code == 0, text
    assert (layout_fingerprint(hf), layout_fingerprint(ours)) == before


def test_a_row_with_other_tokens_makes_the_comparison_refuse(tiny_pair, monkeypatch, capsys):
    hf, ours = tiny_pair
    make_rows = bench_generate.decoding_rows

    def with_a_wrong_row(*args, **kwargs):
        rows = make_rows(*args, **kwargs)
        right = rows[0].run
        return rows + [Row("off by one", lambda: right() + 1)]

    monkeypatch.setattr(bench_generate, "decoding_rows", with_a_wrong_row)
    assert bench_generate._comparison("tiny", hf, ours, 4, 1, compiled=False) == 1
    out = capsys.readouterr().out
    wrong = next(line for line in out.splitlines() if line.startswith("off by one"))
    assert "tokens differ" in wrong and "tokens/s" not in wrong and " - " in wrong
    assert REFUSED in out


def test_recompute_baseline_projects_only_the_last_position():
    torch.manual_seed(0)
    model = create_model("gpt2", num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=50).eval()
    head_inputs = []
    model.lm_head.register_forward_hook(lambda module, args, out: head_inputs.append(tuple(args[0].shape)))
    prompt = torch.randint(0, 50, (1, 5))
    with torch.inference_mode():
        tokens = bench_generate.generate_without_cache(model, prompt, 4)
    assert head_inputs == [(1, 32)] * 4  # one row per step, never the whole sequence
    # the same tokens as full logits at every position would give (an independent argmax)
    sequence = prompt
    with torch.inference_mode():
        for _ in range(4):
            sequence = torch.cat([sequence, model(sequence)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(tokens, sequence)


def test_cache_speedups_disable_eos_and_refuse_differing_tokens(monkeypatch):
    torch.manual_seed(0)
    model = create_model("gpt2", num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=50).eval()
    no_eos = bench_generate.without_eos(model)
    assert no_eos.config.eos_token_id is None and model.config.eos_token_id == 50256
    assert no_eos.lm_head.weight is model.lm_head.weight  # shares the parameters, copies nothing
    rows = bench_generate.cache_speedups(model, [3], rounds=1, prompt=4)
    assert [n for n, _, _ in rows] == [3]
    monkeypatch.setattr(bench_generate, "generate_without_cache", lambda m, ids, n: m.generate(ids, n) + 1)
    with pytest.raises(bench_generate.TokensDiffer, match="with and without the KV cache, 3 new tokens"):
        bench_generate.cache_speedups(model, [3], rounds=1, prompt=4)
