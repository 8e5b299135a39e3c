"""``python -m llmarch bench attention --quick``: a smoke run, and the refusal when the two modules disagree."""

from __future__ import annotations

import argparse
import sys

import pytest
import torch

from llmarch.lab import bench_attention
from llmarch.lab.benchkit import REFUSED


def _args(*argv):
    parser = argparse.ArgumentParser()
    bench_attention.add_arguments(parser)
    return parser.parse_args(["--quick", *argv])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory is read from /proc (Linux)")
def test_quick_run_prints_both_tables(capsys):
    assert bench_attention.run(_args()) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ") and "threads" in out
    assert "ratio ours / torch" in out and REFUSED not in out
    assert "eager MiB" in out and "sdpa MiB" in out
    for seq in bench_attention.QUICK["memory_seqs"]:
        assert f"\n{seq} " in out or f" {seq} " in out


def test_modules_that_disagree_are_not_timed(monkeypatch, capsys):
    paired = bench_attention._paired_modules

    def off_by_a_bias(d_model, heads):
        ours, theirs = paired(d_model, heads)
        with torch.no_grad():
            ours.out_proj.bias += 1e-2
        return ours, theirs

    monkeypatch.setattr(bench_attention, "_paired_modules", off_by_a_bias)
    assert bench_attention.run(_args("--skip-memory")) == 1
    out = capsys.readouterr().out
    assert REFUSED in out and "output: max |difference|" in out and "ratio ours / torch" not in out
