"""Smoke test of the attention benchmark (``python -m llmarch bench attention --quick``)."""

from __future__ import annotations

import argparse
import sys

import pytest

from llmarch.lab import bench_attention


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory is read from /proc (Linux)")
def test_quick_run_prints_both_tables(capsys):
    parser = argparse.ArgumentParser()
    bench_attention.add_arguments(parser)
    assert bench_attention.run(parser.parse_args(["--quick"])) == 0
    out = capsys.readouterr().out
    assert "ratio ours / torch" in out
    assert "eager MiB" in out and "sdpa MiB" in out
    for seq in bench_attention.QUICK["memory_seqs"]:
        assert f"\n{seq} " in out or f" {seq} " in out
