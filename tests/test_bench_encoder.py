"""``python -m llmarch bench encoder``: a smoke run, and the refusal when outputs differ (nothing is timed)."""

from __future__ import annotations

import pytest

from llmarch.cli import main
from llmarch.lab.benchkit import REFUSED
from llmarch.models.encoder_only import EncoderOnly

pytest.importorskip("transformers")


def test_quick_run_prints_both_rows_and_exits_zero(capsys):
    assert main(["bench", "encoder", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ") and "threads" in out
    assert "\nllmarch EncoderOnly " in out and "\nhf BertModel (sdpa) " in out and "matmul peak" in out
    assert REFUSED not in out


def test_differing_outputs_are_refused_with_a_non_zero_exit(monkeypatch, capsys):
    pool = EncoderOnly.pool
    monkeypatch.setattr(EncoderOnly, "pool", lambda self, hidden: pool(self, hidden) + 1e-2)
    assert main(["bench", "encoder", "--quick"]) == 1
    out = capsys.readouterr().out
    assert REFUSED in out and "pooled: max |difference| 1.00e-02" in out
    assert "ms/forward" not in out and "tokens/s" not in out
