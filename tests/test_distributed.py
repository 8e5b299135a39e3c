"""``torchrun --nproc_per_node=2 ... -m llmarch train`` on the CPU (gloo, loopback only).

Two processes with a global batch of 4 (2 rows each) must follow the run of one process with
the same global batch: every rank averages its rows' loss, DDP / FSDP average the gradients, so
the step is the same up to the order of floating-point sums (all-reduce adds the two halves;
one process adds all rows at once). Tolerance: rtol 1e-5 on losses and gradient norms, 1e-4 on
weights after 3 AdamW steps (Adam divides by sqrt(v), which amplifies rounding in tiny
gradients) -- except the key biases: softmax ignores a constant added to every score of a
query, so their gradient is zero in exact arithmetic and what they hold (about 1e-5) is rounding
noise, checked to stay that small. The checkpoint of the 2-process run loads, and resumes, in one process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import llmarch
from llmarch.cli import main
from llmarch.training.run_log import read_log

TEXT = "床前明月光，\n疑是地上霜。\n\n举头望明月，\n低头思故乡。\n\n" * 30
ARGS = ["train", "--preset", "gpt2", "--set", "num_layers=2", "--set", "d_model=32", "--set", "num_heads=2",
        "--set", "d_ff=64", "--set", "dropout=0.0", "--set", "attention_dropout=0.0", "--seq-len", "16",
        "--batch-size", "4", "--steps", "3", "--warmup-steps", "1", "--lr", "0.01", "--eval-every", "3",
        "--eval-batches", "2", "--device", "cpu", "--progress", "lines", "--no-plot"]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The one-process reference run (in this process)."""
    root = tmp_path_factory.mktemp("single")
    (root / "poems.txt").write_text(TEXT, encoding="utf-8")
    assert main([*ARGS, "--data", str(root / "poems.txt"), "--out", str(root / "run")]) == 0
    return root


def _torchrun(root: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", "-m", "llmarch",
               *ARGS, "--data", str(root / "poems.txt"), "--out", str(out), *extra]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_match_one(single, tmp_path, strategy):
    out = tmp_path / "run"
    result = _torchrun(single, out, "--strategy", strategy)
    assert f"2 process(es) ({strategy}) on cpu" in result.stderr
    one = read_log(single / "run" / "log.jsonl")
    two = read_log(out / "log.jsonl")
    assert [r["step"] for r in two] == [r["step"] for r in one] == [1, 2, 3, 3]
    for a, b in zip(one, two):
        for key in ("loss", "grad_norm", "eval_loss"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-5), (key, a["step"])
        assert b.get("lr") == a.get("lr")
    # the checkpoint of two processes is an ordinary folder: one process loads it ...
    reference, model = llmarch.from_pretrained(single / "run"), llmarch.from_pretrained(out)
    for (name, a), b in zip(reference.state_dict().items(), model.state_dict().values()):
        if "k_proj.bias" in name:  # zero gradient in exact arithmetic: its values are rounding noise
            assert a.abs().max() < 1e-4 and b.abs().max() < 1e-4, name
        else:
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6, msg=name)
    # ... and resumes the run in one process (optimizer state is stored unsharded, by parameter name)
    assert main(["train", "--resume", "--out", str(out), "--steps", "4", "--progress", "lines"]) == 0
    assert [r["step"] for r in read_log(out / "log.jsonl") if "loss" in r] == [1, 2, 3, 4]
