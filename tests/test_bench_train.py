"""``python -m llmarch bench train``: a smoke run, the FLOP count, and the refusal when the two
implementations do not train alike (nothing is timed)."""

from __future__ import annotations

import pytest

from llmarch.cli import main
from llmarch.lab import bench_train
from llmarch.lab.benchkit import REFUSED
from llmarch.models.presets import get_config
from llmarch.training.objectives import CausalLM

pytest.importorskip("transformers")


def test_quick_run_prints_the_machine_both_rows_and_the_flops(capsys):
    assert main(["bench", "train", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ") and "threads" in out
    assert out.count("\nllmarch ") == 2 and out.count("\nhf ") == 2  # one pair of rows per configuration
    assert out.count("max |difference| from hf: llmarch ") == 2
    assert "ms/step" in out and "tokens/s" in out and "% peak" in out and "matmul peak" in out
    assert "'fused': True" in out  # the trainer's AdamW, on both sides
    assert REFUSED not in out


def test_a_loss_that_differs_is_refused_with_a_non_zero_exit(monkeypatch, capsys):
    loss = CausalLM.loss

    def shifted(self, model, window, **kwargs):  # ours only: Hugging Face's side does not use the objective
        value, count = loss(self, model, window, **kwargs)
        return value + 1e-2, count

    monkeypatch.setattr(CausalLM, "loss", shifted)
    assert main(["bench", "train", "--quick"]) == 1
    out = capsys.readouterr().out
    assert REFUSED in out and "llmarch step 1: loss" in out and "> 0.0001" in out
    assert "ms/step" not in out and "tokens/s" not in out


def test_model_flops_follow_the_palm_formula():
    # GPT-2 small: 12 layers of 4 d^2 + 8 d^2 matrices, plus the 50257 x 768 head (Radford et al. 2019)
    config = get_config("gpt2")
    d, layers, vocab = 768, 12, 50257
    assert bench_train.matmul_params(config) == layers * 12 * d * d + vocab * d
    batch, seq = 2, 16
    assert bench_train.train_flops(config, batch, seq) == batch * seq * (
        6 * (layers * 12 * d * d + vocab * d) + 12 * layers * 12 * 64 * seq)
