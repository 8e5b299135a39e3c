"""``python -m llmarch bench seq2seq``: a smoke run and the per-step floor (nothing is timed)."""

from __future__ import annotations

import pytest
from llmarch.cli import main
from llmarch.lab import bench_seq2seq
from llmarch.lab.benchkit import REFUSED

pytest.importorskip("transformers")


def test_quick_run_prints_every_row_and_exits_zero(capsys):
    assert main(["bench", "seq2seq", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ") and "threads" in out and "no EOS" in out
    for label in ("hf T5ForConditionalGeneration", "hf + use_decoding_layout", "llmarch EncoderDecoderLM",
                  "llmarch + prepare_for_decoding()", "llmarch, compile=True", "hf, static cache + compile"):
        assert f"\n{label} " in out
    assert "all 4 timed rows produced the same 8 new tokens" in out and REFUSED not in out


def test_pair_has_no_eos_on_either_side():
    hf, ours = bench_seq2seq.t5_pair(num_layers=1, d_model=32, d_kv=8, num_heads=4, d_ff=64, vocab_size=40)
    assert hf.generation_config.eos_token_id is None and ours.config.eos_token_id is None


def test_step_floor_leaves_out_cross_attention_keys_and_values():
    _, ours = bench_seq2seq.t5_pair(num_layers=2, d_model=32, d_kv=8, num_heads=4, d_ff=64, vocab_size=40)
    names = {id(m): name for name, m in ours.named_modules()}
    layers = [names[id(m)] for m in bench_seq2seq.decoder_step_linears(ours)]
    assert not any(n.startswith("encoder") for n in layers)
    assert not any("cross_attn.k_proj" in n or "cross_attn.v_proj" in n for n in layers)
    assert sum("cross_attn.q_proj" in n for n in layers) == 2 and layers[-1] == "lm_head"
    assert len(layers) == 2 * (4 + 2 + 2) + 1  # per layer: self q k v o, cross q o, ffn up down; the head
