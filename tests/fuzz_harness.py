"""The judge of the fuzz tests (``tests/test_fuzz_*.py``): run one call on bad input, check the outcome.

A call passes when it either

* returns a result -- with finite floating-point outputs whenever every floating-point input
  (tensors, scalars and the parameters of the modules involved) was finite -- or
* raises exactly ``ValueError`` or ``TypeError`` (not a subclass such as ``IndexError`` or a
  ``RuntimeError`` from inside torch) whose message names the argument and shows the received
  value (``got ...``),

and, either way, within ``TIME_LIMIT_S`` seconds and without changing any input tensor or any
parameter / buffer of a module it was given (values, shape, dtype).

The contract for values, which the fuzz tests hold the package to:

* **Integer inputs** (lengths, offsets, positions, indices, sizes) are value-checked: a
  negative, too large or non-integer value is a ``ValueError`` / ``TypeError``.
* **Scalar settings** (``scale``, ``dropout_p``, ``eps`` ...) must be finite real numbers.
* **Floating-point tensors** (queries, keys, values, hidden states, biases) are *not*
  value-checked: that would cost a device-to-host sync on every call. NaN / inf that take part
  in the computation propagate (NaN in, NaN out), as in ``torch.nn.functional``; NaN / inf in
  keys or values that no query may see never reach the output (the guard of
  ``llmarch.nn.attention``); finite inputs always give finite outputs, and a query that may
  attend to nothing gets zeros.
* Non-contiguous and expanded (stride-0) tensors are accepted and give the result of their
  contiguous copies; empty tensors give empty results where the shape allows it.
* Sizes so large that the result cannot be allocated raise torch's own out-of-memory error:
  they are not fuzzed.

A ``Case`` is one *kind* of bad input for one public entry point: a row of a table. Its inputs
are built lazily (``make`` returns ``(function, args, kwargs)``) so that each case starts from
fresh tensors and the seed fixed by ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable

import pytest
import torch
from torch import nn

CLEAN_ERRORS = (ValueError, TypeError)
# How a message shows the received value: "..., got 3" (the convention), "input_ids has 600 tokens, ...",
# or "unknown preset 'gpt3'".
RECEIVED = re.compile(r"\bgot\b|\bhas \d+|\bunknown\b")
TIME_LIMIT_S = 20.0


class Hang(BaseException):
    """Raised by the timer; a ``BaseException`` so that no ``except Exception`` under test swallows it."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise ``Hang`` in the main thread after ``seconds`` (SIGALRM; checked between bytecodes)."""

    def on_alarm(signum, frame):
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _walk(obj, path: str):
    """Yield ``(path, value)`` for every tensor, float and module inside ``obj``."""
    if isinstance(obj, (torch.Tensor, nn.Module, float)):
        yield path, obj
    elif isinstance(obj, (list, tuple)):
        for index, item in enumerate(obj):
            yield from _walk(item, f"{path}[{index}]")
    elif isinstance(obj, dict):
        for key, item in obj.items():
            yield from _walk(item, f"{path}[{key!r}]")


def _same(before: torch.Tensor, after: torch.Tensor) -> bool:
    if before.shape != after.shape or before.dtype != after.dtype or before.device != after.device:
        return False
    if after.device.type == "meta":
        return True
    if before.is_floating_point() or before.is_complex():
        return torch.equal(before.isnan(), after.isnan()) and torch.equal(before.nan_to_num(), after.nan_to_num())
    return torch.equal(before, after)


def _finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta" or not (value.is_floating_point() or value.is_complex()):
            return True
        return bool(torch.isfinite(value).all())
    return True


class Snapshot:
    """Copies of every input tensor and of every module's state, to detect changes."""

    def __init__(self, *objects) -> None:
        self.tensors: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        self.modules: list[tuple[str, nn.Module, dict]] = []
        self.finite = True
        for index, obj in enumerate(objects):
            for path, value in _walk(obj, f"input{index}"):
                if isinstance(value, nn.Module):
                    state = {k: v.detach().clone() for k, v in value.state_dict(keep_vars=True).items()}
                    self.modules.append((path, value, state))
                    self.finite &= all(_finite(v) for v in state.values())
                elif isinstance(value, torch.Tensor):
                    self.tensors.append((path, value, value.detach().clone()))
                    self.finite &= _finite(value)
                else:
                    self.finite &= _finite(value)

    def changes(self) -> list[str]:
        """Paths of the inputs whose value, shape, dtype or device differs from the copy."""
        changed = [path for path, tensor, copy in self.tensors if not _same(copy, tensor.detach())]
        for path, module, state in self.modules:
            now = module.state_dict(keep_vars=True)
            changed += [
                f"{path}.{name}"
                for name, copy in state.items()
                if name not in now or not _same(copy, now[name].detach())
            ]
        return changed


def outputs_finite(result) -> bool:
    """Whether every floating-point tensor inside ``result`` is finite."""
    return all(_finite(value) for _, value in _walk(result, "result") if isinstance(value, torch.Tensor))


def names_argument(message: str, names: tuple[str, ...]) -> bool:
    """Whether ``message`` mentions one of ``names`` as a whole word."""
    return any(re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message) for name in names)


@dataclass(frozen=True)
class Case:
    """One kind of bad input for one public entry point.

    Attributes:
        entry: the entry point (``"scaled_dot_product_attention"``, ``"DecoderOnlyLM.generate"``...).
        kind: what is wrong with the input, in a few words (unique per entry point).
        make: returns ``(function, args, kwargs)``, building fresh inputs.
        names: if the call raises, its message must name one of these.
        expect: ``"error"`` (must raise), ``"ok"`` (must return) or ``"either"``.
        errors: the exception types accepted (exact types; ``SystemExit`` for the command line).
        check: called with the result of a call that returned, for further assertions.
    """

    entry: str
    kind: str
    make: Callable[[], tuple]
    names: tuple[str, ...]
    expect: str = "error"
    errors: tuple[type, ...] = CLEAN_ERRORS
    check: Callable | None = None

    @property
    def id(self) -> str:
        return f"{self.entry}: {self.kind}"


def judge(
    function,
    args=(),
    kwargs=None,
    *,
    names: tuple[str, ...],
    expect: str = "either",
    errors: tuple[type, ...] = CLEAN_ERRORS,
    check: Callable | None = None,
    what: str = "",
) -> object:
    """Run ``function(*args, **kwargs)`` and assert the fuzz property (module docstring).

    Returns the result, or the exception raised (a clean one).
    """
    kwargs = dict(kwargs or {})
    owner = (
        function
        if isinstance(function, nn.Module)
        else getattr(function, "fuzz_owner", getattr(function, "__self__", None))
    )
    snapshot = Snapshot(args, kwargs, owner if isinstance(owner, nn.Module) else None)
    stderr = io.StringIO()
    outcome: object
    with time_limit(TIME_LIMIT_S), contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            outcome = function(*args, **kwargs)
            if isinstance(outcome, Iterator):  # a stream: run it to the end
                outcome = list(outcome)
        except Hang:
            raise AssertionError(f"{what}: no result within {TIME_LIMIT_S} s (a hang)") from None
        except BaseException as error:  # judged below
            outcome = error
    changed = snapshot.changes()
    assert not changed, f"{what}: the call changed its input(s) {changed}"
    if isinstance(outcome, BaseException):
        error = outcome
        if isinstance(error, SystemExit) and SystemExit in errors:
            assert error.code == 2 and "error:" in stderr.getvalue(), (
                f"{what}: the command line exited with {error.code!r} and no usage error: {stderr.getvalue()!r}"
            )
            return error
        if type(error) not in errors:
            raise AssertionError(f"{what}: raised {type(error).__name__}: {error}") from error
        message = str(error)
        assert expect != "ok", f"{what}: expected a result, got {type(error).__name__}: {message}"
        assert names_argument(message, names), f"{what}: the message names none of {names}: {message!r}"
        if type(error) in CLEAN_ERRORS:
            assert RECEIVED.search(message), f"{what}: the message does not show the received value: {message!r}"
        return error
    assert expect != "error", f"{what}: expected a ValueError/TypeError naming one of {names}, got a result"
    if snapshot.finite:
        assert outputs_finite(outcome), f"{what}: finite inputs gave a non-finite output"
    if check is not None:
        check(outcome)
    return outcome


def run_case(case: Case) -> object:
    """Judge one table row."""
    function, args, kwargs = case.make()
    return judge(
        function, args, kwargs, names=case.names, expect=case.expect, errors=case.errors, check=case.check, what=case.id
    )


def check_unique(cases: list[Case]) -> None:
    """Every row is a distinct kind: no two rows share ``entry: kind``."""
    ids = [case.id for case in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"duplicate fuzz cases: {duplicates}"


def table_tests(cases: list[Case], minimum: int):
    """The two tests every fuzz module runs on its table: the rows are distinct kinds and at least
    ``minimum`` of them, and every row passes :func:`judge`. Assign them to module-level names
    starting with ``test_`` so that pytest collects them."""

    def test_the_table_holds_many_distinct_kinds():
        check_unique(cases)
        assert len(cases) >= minimum

    @pytest.mark.parametrize("case", cases, ids=[case.id for case in cases])
    def test_bad_input(case):
        run_case(case)

    return test_the_table_holds_many_distinct_kinds, test_bad_input


def contiguous_copies(obj):
    if isinstance(obj, torch.Tensor):
        return (
            obj.detach().contiguous().requires_grad_(obj.requires_grad) if obj.is_floating_point() else obj.contiguous()
        )
    if isinstance(obj, (list, tuple)):
        return type(obj)(contiguous_copies(item) for item in obj)
    if isinstance(obj, dict):
        return {key: contiguous_copies(value) for key, value in obj.items()}
    return obj


def also_contiguous(function):
    """``function``, asserting that contiguous copies of its inputs give the same result."""

    def call(*args, **kwargs):
        result = function(*args, **kwargs)
        reference = function(*contiguous_copies(args), **contiguous_copies(kwargs))
        for got, want in zip(
            result if isinstance(result, tuple) else (result,),
            reference if isinstance(reference, tuple) else (reference,),
        ):
            torch.testing.assert_close(got, want, equal_nan=True)
        return result

    call.fuzz_owner = function  # the harness checks that a module's parameters stay unchanged
    return call
