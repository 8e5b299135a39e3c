"""``python -m llmarch train / generate / eval``: help, a whole run, bad input, Ctrl-C and kill -9.

The interrupt tests start a real ``python -m llmarch train`` process, wait for its first checkpoint
and signal it: SIGINT must save and exit with 130; SIGKILL loses the steps since the last
checkpoint and nothing else. Each is resumed with ``--resume`` and must continue from there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmarch.cli import build_parser, main
from llmarch.training.checkpointing import latest_checkpoint
from llmarch.training.run_log import read_log
from llmarch.training.train_config import TrainConfig

TEXT = "床前明月光，\n疑是地上霜。\n\n举头望明月，\n低头思故乡。\n\n" * 30
MODEL = ["--preset", "gpt2", "--set", "num_layers=1", "--set", "d_model=32", "--set", "num_heads=2",
         "--set", "d_ff=64"]
FAST = ["--seq-len", "16", "--batch-size", "4", "--warmup-steps", "1", "--lr", "0.01", "--eval-batches", "2",
        "--device", "cpu", "--progress", "lines", "--no-plot"]


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "poems.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _subcommand(name):
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    return commands.choices[name]


@pytest.mark.parametrize("name", ["train", "generate", "eval"])
def test_every_option_has_help(name):
    parser = _subcommand(name)
    for action in parser._actions:
        assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    text = parser.format_help()
    if name == "train":
        for field in TrainConfig.__dataclass_fields__:
            flag = "--no-plot" if field == "plot" else "--" + field.replace("_", "-")
            assert flag in text, flag


def test_train_generate_eval(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert main(["train", *MODEL, "--data", str(corpus), "--out", str(out), *FAST, "--steps", "4",
                 "--eval-every", "2", "--save-every", "2"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["step"] == 4 and summary["eval_ppl"] > 1
    assert "step 4/4 | loss" in captured.err and "tok/s | eta" in captured.err
    assert main(["generate", str(out), "--prompt", "床前", "--max-new-tokens", "8", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("床前") and len(text.strip()) >= 3
    assert main(["generate", str(out), "--prompt", "床前", "--max-new-tokens", "8", "--temperature", "0"]) == 0
    greedy = capsys.readouterr().out
    assert main(["generate", str(out), "--prompt", "床前", "--max-new-tokens", "8", "--temperature", "0"]) == 0
    assert capsys.readouterr().out == greedy  # greedy decoding is deterministic
    assert main(["eval", str(out), "--data", str(corpus), "--split", "val"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["objective"] == "causal_lm" and result["eval_ppl"] > 1 and result["seq_len"] == 16


@pytest.mark.parametrize("args, message", [
    (["--data", "EMPTY"], "empty.txt' is empty"),
    (["--data", "CORPUS", "--seq-len", "2000"], "seq_len must be <= the model's context max_positions = 1024"),
    (["--data", "CORPUS", "--batch-size", "0"], "batch_size must be a positive int, got 0"),
    (["--data", "CORPUS", "--set", "layers=2"], "unknown ModelConfig field(s) ['layers']"),
    (["--data", "missing-corpus-name"], "missing-corpus-name"),
])
def test_bad_input_gives_a_clear_error(tmp_path, corpus, capsys, args, message):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    args = [{"EMPTY": str(tmp_path / "empty.txt"), "CORPUS": str(corpus)}.get(a, a) for a in args]
    assert main(["train", *MODEL, "--out", str(tmp_path / "run"), *FAST, "--steps", "2", *args]) == 2
    err = capsys.readouterr().err
    assert "python -m llmarch train: error:" in err and message in err and "Traceback" not in err


def test_resume_refuses_another_model_and_an_existing_run(tmp_path, corpus, capsys):
    out = str(tmp_path / "run")
    assert main(["train", *MODEL, "--data", str(corpus), "--out", out, *FAST, "--steps", "2"]) == 0
    assert main(["train", *MODEL, "--data", str(corpus), "--out", out, *FAST, "--steps", "2"]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    other = [*MODEL[:-2], "--set", "d_ff=128"]
    assert main(["train", *other, "--resume", "--out", out, *FAST]) == 2
    assert "holds a run of another model: overrides is" in capsys.readouterr().err
    assert main(["generate", out, "--prompt", "床", "--max-new-tokens", "0"]) == 2
    assert "max-new-tokens must be a positive int, got 0" in capsys.readouterr().err


def _start(out: Path, corpus: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "llmarch", "train", *MODEL, "--data", str(corpus), "--out",
                             str(out), *FAST, "--steps", "100000", "--save-every", "2", "--eval-every", "0"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(process: subprocess.Popen, out: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while latest_checkpoint(out) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no checkpoint in {out}: {process.communicate()[1][-2000:]}")
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, corpus, capsys, signum):
    out = tmp_path / "run"
    process = _start(out, corpus)
    _wait_for_checkpoint(process, out)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    saved = int(latest_checkpoint(out).name.split("-")[1])
    logged = [r for r in read_log(out / "log.jsonl") if "loss" in r]
    if signum == signal.SIGINT:  # saved at the step it stopped at, exit code 128 + 2
        assert process.returncode == 130, err[-2000:]
        assert f"stopped by SIGINT at step {saved}; checkpoint saved" in err
        assert logged[-1]["step"] == saved
    else:  # killed: at most the steps since the last checkpoint are lost
        assert process.returncode == -signal.SIGKILL
        assert saved >= 2 and logged[-1]["step"] >= saved
    assert main(["train", "--resume", "--out", str(out), "--until", str(saved + 3), "--progress", "lines"]) == 0
    assert f"resumed from step {saved}" in capsys.readouterr().err
    resumed = [r for r in read_log(out / "log.jsonl") if "loss" in r]
    assert [r["step"] for r in resumed] == list(range(1, saved + 4))  # each step once, none lost
    assert resumed[:saved] == logged[:saved]
    after = {r["step"]: r["loss"] for r in logged[saved:]}  # steps the killed run did past its checkpoint
    for r in resumed[saved:]:  # recomputed after the resume: the same values (same computation)
        if r["step"] in after:
            assert r["loss"] == pytest.approx(after[r["step"]], rel=1e-6, abs=0)
