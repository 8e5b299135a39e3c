"""The benchmarks' shared rules (``llmarch.lab.benchkit``) and machine facts (``llmarch.lab.machine``).

Nothing here is timed or compares times: the tests check which rows get a speed, which are
refused, and the exit code.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmarch.lab import benchkit, machine
from llmarch.lab.benchkit import REFUSED, Row, decoding_table

IDS = torch.tensor([[3, 1, 4, 1, 5]])


def _line(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(label + " "))


def test_equal_tokens_get_a_speed_and_exit_zero():
    text, code = decoding_table([Row("ref", lambda: IDS.clone()), Row("other", lambda: IDS.clone())], 5, rounds=3)
    assert code == 0 and REFUSED not in text
    assert "tokens/s" in text and "slowest/fastest" in text
    for label in ("ref", "other"):
        cells = _line(text, label).split()
        assert cells[1] != "-"  # ms/token printed
        assert float(cells[4]) >= 1.0  # the slowest of the 3 rounds over the fastest (no floor column here)


def test_differing_tokens_are_refused_with_a_non_zero_exit():
    wrong = IDS.clone()
    wrong[0, 3] = 9
    text, code = decoding_table([Row("ref", lambda: IDS), Row("good", lambda: IDS.clone()), Row("bad", lambda: wrong)],
                                5, rounds=1)
    assert code == 1
    bad = _line(text, "bad")
    assert bad.split()[1:4] == ["-", "-", "-"]  # no ms/token, tokens/s or ratio
    assert "position 3: 9 instead of 1" in bad
    assert REFUSED in text and "'bad'" in text.split(REFUSED)[1] and "'good'" not in text.split(REFUSED)[1]
    assert _line(text, "good").split()[1] != "-"


def test_a_different_length_is_refused():
    text, code = decoding_table([Row("ref", lambda: IDS), Row("short", lambda: IDS[:, :4])], 5, rounds=1)
    assert code == 1 and "shape (1, 4) instead of (1, 5)" in _line(text, "short")


def test_the_reference_can_be_any_row():
    wrong = IDS + 1
    text, code = decoding_table([Row("a", lambda: wrong), Row("b", lambda: IDS)], 5, rounds=1, reference="b")
    assert code == 1 and "tokens differ from 'b'" in _line(text, "a")
    with pytest.raises(ValueError, match="reference must be the label of a row"):
        decoding_table([Row("a", lambda: IDS)], 5, rounds=1, reference="nope")


def test_a_row_that_changes_its_model_is_refused():
    layer = nn.Linear(4, 3)

    def changes_layout():
        layer.weight.data = layer.weight.data.t().contiguous().t()
        return IDS

    text, code = decoding_table([Row("ref", lambda: IDS), Row("sneaky", changes_layout, unchanged=layer)], 5, 1)
    assert code == 1 and "changed its model" in _line(text, "sneaky")
    untouched = nn.Linear(4, 3)
    text, code = decoding_table([Row("ref", lambda: IDS), Row("fine", lambda: IDS, unchanged=untouched)], 5, 1)
    assert code == 0


def test_only_rows_marked_may_fail_turn_an_error_into_a_note():
    def broken():
        raise RuntimeError("no compiler here")

    text, code = decoding_table([Row("ref", lambda: IDS), Row("optional", broken, may_fail=True),
                                 Row("skipped", None, note="not on this machine")], 5, 1)
    assert code == 0
    assert "cannot run here: RuntimeError: no compiler here" in _line(text, "optional")
    assert "not on this machine" in _line(text, "skipped")
    with pytest.raises(RuntimeError, match="no compiler here"):
        decoding_table([Row("ref", lambda: IDS), Row("ours", broken)], 5, 1)


def test_interleaved_rounds_rotate_the_order():
    calls = []
    benchkit.interleaved_times({name: (lambda name=name: calls.append(name)) for name in "abc"}, rounds=3,
                               warmup=False)
    assert calls == list("abc" "bca" "cab")


def test_first_difference_and_mismatch():
    assert benchkit.first_difference(torch.tensor([[1, 2], [3, 4]]), torch.tensor([[1, 2], [3, 5]])) == \
        "row 1, position 1: 5 instead of 4"
    assert benchkit.mismatch(torch.zeros(2), torch.zeros(3), atol=1, rtol=0) == "shape (3,) instead of (2,)"
    assert benchkit.mismatch(torch.zeros(2), torch.full((2,), 1e-3), atol=1e-5, rtol=0).startswith("max |difference|")


def test_step_linears_skip_named_layers_and_the_floor_runs():
    model = nn.ModuleDict({"keep": nn.Linear(4, 4), "drop": nn.Linear(4, 4)})
    assert benchkit.step_linears(model, skip=lambda name: name == "drop") == [model["keep"]]
    assert benchkit.matmul_floor(model, repeats=2, skip=lambda name: name == "drop") > 0
    with pytest.raises(ValueError, match="must contain an nn.Linear"):
        benchkit.step_linears(model, skip=lambda name: True)


def test_rows_with_a_floor_report_it_and_floors_are_shared():
    layers = [nn.Linear(4, 4)]
    text, code = decoding_table([Row("a", lambda: IDS, floor=layers, floor_name="mine"),
                                 Row("b", lambda: IDS.clone(), floor=layers, floor_name="mine")], 5, rounds=1)
    assert code == 0 and text.count(" mine ") == 1 and "bare-matmul floor per token" in text
    assert _line(text, "a").split()[4].endswith("x")  # the x floor column


INTEL_AMX = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu
"""


def test_parse_cpuinfo_reads_the_first_processor():
    info = machine.parse_cpuinfo(INTEL_AMX)
    assert info["model"] == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert {"avx512_bf16", "amx_bf16", "amx_tile"} <= info["flags"]
    assert machine.parse_cpuinfo("") == {"model": None, "flags": set()}


def test_machine_summary_names_cpu_flags_torch_and_threads(monkeypatch):
    monkeypatch.setattr(machine, "cpu_info", lambda: {"model": "Test CPU", "flags": {"avx2", "amx_bf16"}})
    text = machine.machine_summary()
    assert "Test CPU" in text and f"torch {torch.__version__}" in text
    assert f"{torch.get_num_threads()} threads" in text
    assert "avx2 yes" in text and "amx_bf16 yes" in text and "avx512_bf16 no" in text and "avx512f no" in text
