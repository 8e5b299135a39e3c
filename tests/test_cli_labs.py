"""``python -m llmarch lab NAME``: every registered experiment exists, has its own options
(``--help`` lists them, including the progress-reporting full run's ``--quick`` / ``--refresh``),
and an unknown name is refused."""

from __future__ import annotations

import importlib

import pytest

from llmarch import cli


@pytest.mark.parametrize("name", sorted(cli.LABS))
def test_every_lab_has_main_and_its_options(name, capsys):
    module_name, help_text = cli.LABS[name]
    assert callable(importlib.import_module(module_name).main), module_name
    assert help_text
    with pytest.raises(SystemExit) as stop:
        cli.main(["lab", name, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--refresh" in out, out


def test_chapter_five_has_one_lab_per_reason():
    chapter5 = [name for name, (_, text) in cli.LABS.items() if text.startswith("chapter 5")]
    assert chapter5 == ["zero-shot", "rank", "harder-task", "in-context", "positions", "kv-cache"]


def test_unknown_lab_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["lab", "no-such-lab"])
    assert stop.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
