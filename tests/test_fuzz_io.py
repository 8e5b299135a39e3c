"""Bad input, fuzzed: checkpoints (``from_pretrained``, ``save_pretrained``) and the command line.

The property and the contract for values are those of ``tests/fuzz_harness.py`` and
``tests/test_fuzz_nn.py`` (read their docstrings).
A missing folder is a ``FileNotFoundError`` (an ``OSError`` naming the path); the command line,
run in process through ``llmarch.cli.main``, rejects bad arguments with a usage error: exit
status 2 and a message on stderr (``SystemExit(2)``, or a returned 2 with an ``error:`` line).
"""

from __future__ import annotations

import functools
import tempfile

import torch
from fuzz_harness import CLEAN_ERRORS, Case, judge, table_tests
from fuzz_inputs import model
from hypothesis import given
from hypothesis import strategies as st

from llmarch import from_pretrained, save_pretrained
from llmarch.cli import main as cli_main

CASES: list[Case] = []


def add(entry, kind, make, names, expect="error", errors=CLEAN_ERRORS, check=None):
    CASES.append(Case(entry, kind, make, tuple(names), expect, errors, check))


# ----------------------------------------------------------------------------------------------
# Checkpoints: from_pretrained / save_pretrained
# ----------------------------------------------------------------------------------------------
_TMP = tempfile.TemporaryDirectory(prefix="llmarch-fuzz-")  # removed when the test process ends


@functools.cache
def checkpoint_folder():
    folder = tempfile.mkdtemp(dir=_TMP.name)
    save_pretrained(model("gpt2"), folder, model_type="gpt2")
    return folder


FILE_ERRORS = CLEAN_ERRORS + (FileNotFoundError,)
for _kind, _path in [
    ("an int", 3),
    ("None", None),
    ("a list", ["x"]),
    ("a folder that does not exist", "/nonexistent/llmarch"),
    ("an empty string", ""),
    ("a file, not a folder", __file__),
]:
    add(
        "from_pretrained",
        f"path {_kind}",
        lambda p=_path: (from_pretrained, (p,), {}),
        ("path", "folder", "config.json", str(_path)),
        errors=FILE_ERRORS,
    )
for _kind, _value in [("a string", "float16"), ("an integer dtype", torch.long), ("a Python type", float)]:
    add(
        "from_pretrained",
        f"dtype {_kind}",
        lambda v=_value: (from_pretrained, (checkpoint_folder(),), {"dtype": v}),
        ("dtype",),
    )
for _kind, _value in [("an unknown device string", "gpu"), ("an unavailable device", "cuda:7"), ("a float", 1.5)]:
    add(
        "from_pretrained",
        f"device {_kind}",
        lambda v=_value: (from_pretrained, (checkpoint_folder(),), {"device": v}),
        ("device",),
    )
add(
    "from_pretrained",
    "dtype bfloat16",
    lambda: (from_pretrained, (checkpoint_folder(),), {"dtype": torch.bfloat16}),
    ("dtype",),
    "ok",
)
for _kind, _model, _path, _type in [
    ("model_type unknown", "gpt2", "tmp", "gpt3"),
    ("model_type None", "gpt2", "tmp", None),
    ("model_type an int", "gpt2", "tmp", 2),
    ("model an int", 3, "tmp", "gpt2"),
    ("model a plain nn.Linear", torch.nn.Linear(2, 2), "tmp", "gpt2"),
    ("path an int", "gpt2", 3, "gpt2"),
    ("path an existing file", "gpt2", __file__, "gpt2"),
    ("an encoder model as gpt2", "bert", "tmp", "gpt2"),
    ("a decoder model as t5", "gpt2", "tmp", "t5"),
]:

    def _make(m=_model, p=_path, t=_type):
        path = tempfile.mkdtemp(dir=_TMP.name) if p == "tmp" else p
        return save_pretrained, (model(m) if isinstance(m, str) else m, path), {"model_type": t}

    add("save_pretrained", _kind, _make, ("model_type", "model", "path", "config", "architecture"), errors=FILE_ERRORS)


# ----------------------------------------------------------------------------------------------
# Command line (in process): a usage error is SystemExit(2) with a message on stderr
# ----------------------------------------------------------------------------------------------
def cli(argv):
    """``python -m llmarch ARGV`` in process; a returned status 2 (a reported error) is treated as SystemExit(2)."""
    status = cli_main(list(argv))
    if status == 2:
        raise SystemExit(2)
    return status


for _kind, _argv in [
    ("an unknown command", ["nope"]),
    ("an unknown flag", ["--nope"]),
    ("bench without a name", ["bench"]),
    ("bench an unknown name", ["bench", "nope"]),
    ("bench an unknown flag", ["bench", "attention", "--nope"]),
    ("masks --seq-len negative", ["masks", "--seq-len", "-1"]),
    ("masks --seq-len zero", ["masks", "--seq-len", "0"]),
    ("masks --seq-len huge", ["masks", "--seq-len", "100000000"]),
    ("masks --seq-len not a number", ["masks", "--seq-len", "abc"]),
    ("masks --seq-len a float", ["masks", "--seq-len", "1.5"]),
    ("masks --prefix-len negative", ["masks", "--prefix-len", "-1"]),
    ("masks --prefix-len beyond --seq-len", ["masks", "--seq-len", "4", "--prefix-len", "9"]),
    ("masks an extra argument", ["masks", "extra"]),
    ("generate without arguments", ["generate"]),
    ("generate from a missing folder", ["generate", "/nonexistent/run", "--prompt", "hi"]),
    (
        "generate --max-new-tokens not a number",
        ["generate", "/nonexistent/run", "--prompt", "hi", "--max-new-tokens", "x"],
    ),
    ("train without --out", ["train"]),
    ("train an unknown objective", ["train", "--out", "/tmp/x", "--objective", "nope"]),
    ("eval without --data", ["eval", "/nonexistent/run"]),
]:
    add("python -m llmarch", _kind, lambda a=_argv: (cli, (a,), {}), ("--seq-len",), errors=(SystemExit,))
add(
    "python -m llmarch",
    "masks at the largest --seq-len",
    lambda: (cli, (["masks", "--seq-len", "64", "--prefix-len", "64"],), {}),
    ("--seq-len",),
    "ok",
    errors=(SystemExit,),
)


# ----------------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------------
test_the_table_holds_many_distinct_kinds, test_bad_input = table_tests(CASES, minimum=30)


# ----------------------------------------------------------------------------------------------
# Hypothesis
# ----------------------------------------------------------------------------------------------
@given(
    argv=st.lists(
        st.sampled_from(
            [
                "masks",
                "bench",
                "--seq-len",
                "--prefix-len",
                "-1",
                "0",
                "3",
                "64",
                "65",
                "x",
                "attention",
                "--nope",
                "2.5",
            ]
        ),
        min_size=1,
        max_size=5,
    )
)
def test_command_line_on_random_arguments(argv):
    if argv[:2] == ["bench", "attention"] and "--nope" not in argv and "x" not in argv:
        return  # a valid benchmark would run (seconds): not a bad input
    judge(cli, (argv,), names=("--seq-len", "--prefix-len"), errors=(SystemExit,), what=f"python -m llmarch {argv}")
