"""What every ``python -m llmarch bench`` shares: interleaved timing, and the refusal to lie.

The rules the benchmarks follow (each one exists because breaking it once produced a wrong figure):

* **Same work on both sides.** Both implementations get the same inputs, the same attention
  mask, no end-of-sequence token and the same stopping rule (exactly ``n`` new tokens), and
  nothing on one side only: no streamer, no callback, no extra output.
* **A speed is printed only for a row whose output equals the reference's** (token ids exactly;
  floats within a stated tolerance). Otherwise the row says where its output differs, the
  benchmark prints why it refuses and exits non-zero (``decoding_table``, ``mismatch``).
* **Inference leaves the model as it was.** A row that must not change its model is checked:
  every parameter's dtype, shape, strides and storage before and after (``layout_fingerprint``).
  An optimisation that changes a model (weight layout, dtype, compiled forward) runs on a copy.
* **Interleaved rounds** (``interleaved_times``): round ``r`` runs every row once, starting at
  a different row each round, so all rows see the same machine state; the fastest round of a
  row is its time (other processes only ever add time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["interleaved_times", "best_times", "step_linears", "floor_pass", "matmul_floor", "first_difference",
           "mismatch", "layout_fingerprint", "format_table", "Row", "decoding_table", "REFUSED"]

#: Printed before the reason whenever a benchmark refuses to report a speed.
REFUSED = "REFUSED"


def interleaved_times(fns: dict[str, Callable[[], object]], rounds: int, *, warmup: bool = True) -> dict[str, list]:
    """Seconds of every call of every ``fns[name]()``: one call each per round, interleaved.

    Round ``r`` starts with the ``r``-th callable (a rotation), so no callable always runs
    first or right after the same neighbour (caches and allocators favour some positions).

    Args:
        fns: name -> callable to time.
        rounds: how many calls of each.
        warmup: call each once, untimed, first.

    Returns:
        name -> list of ``rounds`` durations in seconds.

    >>> times = interleaved_times({"a": lambda: None, "b": lambda: None}, rounds=3)
    >>> sorted(times), len(times["a"])
    (['a', 'b'], 3)
    """
    if warmup:
        for fn in fns.values():
            fn()
    names = list(fns)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def best_times(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """The fastest of ``rounds`` interleaved calls of each callable (s), after one warm-up call.

    >>> best_times({"noop": lambda: None}, rounds=2)["noop"] >= 0
    True
    """
    return {name: min(t) for name, t in interleaved_times(fns, rounds).items()}


def step_linears(model: nn.Module, *, skip: Callable[[str], bool] | None = None) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of ``model`` that a decoding step runs (all, minus ``skip(name)``).

    >>> len(step_linears(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))))
    2
    """
    linears = [m for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and not (skip is not None and skip(name))]
    if not linears:
        raise ValueError(f"model must contain an nn.Linear (after skip), got none in {type(model).__name__}")
    return linears


def floor_pass(linears: list[nn.Linear]) -> Callable[[], None]:
    """A callable that applies every layer once to a ``(1, 1, in_features)`` input (in the layer's
    dtype and weight layout, with its bias): the matrix products of one decoding step and
    nothing else -- what any implementation must at least spend streaming the weights (a step
    at batch 1 is memory-bound).

    >>> floor_pass([nn.Linear(4, 2)])() is None
    True
    """
    inputs = [torch.randn(1, 1, m.in_features, dtype=m.weight.dtype, device=m.weight.device) for m in linears]

    def one_pass() -> None:
        with torch.inference_mode():
            for m, x in zip(linears, inputs):
                F.linear(x, m.weight, m.bias)

    return one_pass


def matmul_floor(model: nn.Module, repeats: int = 21, *, skip: Callable[[str], bool] | None = None) -> float:
    """Seconds of one ``floor_pass`` over the ``step_linears`` of ``model``: the bare-matmul floor.

    The fastest of ``repeats`` passes (after one warm-up pass). Benchmarks that compare the
    floor with decoding times time it in the same interleaved rounds instead (``Row.floor``).

    Args:
        model: the module whose ``nn.Linear`` layers a step runs.
        repeats: timed passes.
        skip: ``skip(name)`` true for layers a step does not run (e.g. cross-attention keys
            and values, computed once per source).

    Returns:
        Seconds of one pass.

    >>> matmul_floor(nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2)), repeats=3) > 0
    True
    """
    one_pass = floor_pass(step_linears(model, skip=skip))
    return min(interleaved_times({"floor": one_pass}, repeats)["floor"])


def first_difference(reference: Tensor, output: Tensor) -> str | None:
    """``None`` when two id tensors are equal, else where they first differ (in words).

    >>> first_difference(torch.tensor([[5, 1, 2]]), torch.tensor([[5, 1, 7]]))
    'position 2: 7 instead of 2'
    >>> first_difference(torch.tensor([[5, 1]]), torch.tensor([[5, 1, 7]]))
    'shape (1, 3) instead of (1, 2)'
    >>> first_difference(torch.tensor([[5]]), torch.tensor([[5]])) is None
    True
    """
    if output.shape != reference.shape:
        return f"shape {tuple(output.shape)} instead of {tuple(reference.shape)}"
    if torch.equal(output, reference):
        return None
    row, position = (output != reference).reshape(-1, reference.shape[-1]).nonzero()[0].tolist()
    flat_out, flat_ref = output.reshape(-1, reference.shape[-1]), reference.reshape(-1, reference.shape[-1])
    where = f"row {row}, position {position}" if flat_out.shape[0] > 1 else f"position {position}"
    return f"{where}: {flat_out[row, position].item()} instead of {flat_ref[row, position].item()}"


def mismatch(reference: Tensor, output: Tensor, *, atol: float, rtol: float) -> str | None:
    """``None`` when float outputs agree within ``atol + rtol * |reference|``, else the worst error.

    >>> mismatch(torch.ones(3), torch.ones(3) + 1e-7, atol=1e-5, rtol=1e-5) is None
    True
    >>> mismatch(torch.ones(3), torch.tensor([1.0, 1.5, 1.0]), atol=1e-5, rtol=1e-5)
    'max |difference| 5.00e-01 > atol 1e-05 + rtol 1e-05 x |reference|'
    """
    if output.shape != reference.shape:
        return f"shape {tuple(output.shape)} instead of {tuple(reference.shape)}"
    if torch.allclose(output.float(), reference.float(), atol=atol, rtol=rtol):
        return None
    error = (output.float() - reference.float()).abs().max().item()
    return f"max |difference| {error:.2e} > atol {atol:g} + rtol {rtol:g} x |reference|"


def layout_fingerprint(module: nn.Module) -> list[tuple]:
    """Name, dtype, shape, strides and storage address of every parameter and buffer.

    Equal before and after a call = the call left the module's tensors where and as they were
    (a new layout, dtype or storage shows up; values written in place do not: benches compare
    outputs for those).

    >>> layer = nn.Linear(2, 3)
    >>> before = layout_fingerprint(layer)
    >>> layer.weight.data = layer.weight.data.t().contiguous().t()
    >>> before == layout_fingerprint(layer)
    False
    """
    tensors = list(module.named_parameters(remove_duplicate=False)) + list(module.named_buffers())
    return [(name, t.dtype, tuple(t.shape), t.stride(), t.data_ptr()) for name, t in tensors]


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned.

    >>> print(format_table(["model", "ms"], [["a", "1.0"], ["bb", "22.5"]]))
    model    ms
    -----  ----
    a       1.0
    bb     22.5
    """
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


@dataclass
class Row:
    """One line of a decoding comparison.

    Args:
        label: what the row runs, as printed.
        run: returns the generated ids (the whole sequence); ``None`` for a row that cannot
            run here, with the reason in ``note``.
        note: printed at the end of the line.
        unchanged: a model that ``run`` must leave as it was (``layout_fingerprint``).
        floor: the ``nn.Linear`` layers one decoding step of the row's model runs
            (``step_linears``), in that model's dtype and layout: their ``floor_pass``, once per
            new token, is timed in the same rounds as the rows, and ``x floor`` = row / floor.
        floor_name: how the floor is named in the closing line (e.g. its weight layout).
        may_fail: an exception raised by ``run`` becomes the row's note (a reference
            implementation's optional path, e.g. Hugging Face's compiled generation), instead of
            stopping the benchmark. Never set for our own code: its errors must surface.
    """

    label: str
    run: Callable[[], Tensor] | None
    note: str = ""
    unchanged: nn.Module | None = None
    floor: list[nn.Linear] | None = None
    floor_name: str = ""
    may_fail: bool = False
    first_call: float | None = field(default=None, init=False)


def decoding_table(rows: list[Row], new_tokens: int, rounds: int, *, reference: str | None = None) -> tuple[str, int]:
    """Run, check and time decoding rows; return the printed table and an exit code.

    1. Each row runs once (its first call, compilation included, is timed and shown) and its
       tokens are compared with the reference row's (the first row unless ``reference`` names
       another). A row whose tokens differ gets no speed: its note says where they differ.
    2. The matching rows are timed in ``rounds`` interleaved rounds; the fastest is kept, and
       ``slowest/fastest`` (the slowest round over the fastest) shows how steady the machine was. The
       whole run is timed, prompt (or encoder) included, as the user sees it. Each distinct
       ``floor`` (``new_tokens`` passes of ``floor_pass``) is timed in the same rounds, so that
       the floor and the rows see the same machine.
    3. A row that changed its ``unchanged`` model gets no speed either.

    Args:
        rows: the rows; ``reference`` must be one that runs.
        new_tokens: tokens each run generates (for tokens/s).
        rounds: timed rounds.
        reference: label of the reference row.

    Returns:
        ``(text, code)``: the table with a closing verdict, and 0, or 1 when any row was
        refused (then the text starts the verdict with ``REFUSED``).

    >>> ids = torch.tensor([[1, 2, 3]])
    >>> text, code = decoding_table([Row("a", lambda: ids), Row("b", lambda: ids + 1)], 3, 1)
    >>> code, "b" in text.split(REFUSED)[1]
    (1, True)
    """
    reference = rows[0].label if reference is None else reference
    by_label = {row.label: row for row in rows}
    if reference not in by_label or by_label[reference].run is None or by_label[reference].may_fail:
        raise ValueError(f"reference must be the label of a row that runs and may not fail, got {reference!r}")
    outputs, notes, refused, fingerprints = {}, {}, [], {}
    for row in rows:
        notes[row.label] = row.note
        if row.run is None:
            continue
        if row.unchanged is not None:
            fingerprints[row.label] = layout_fingerprint(row.unchanged)
        start = time.perf_counter()
        try:
            outputs[row.label] = row.run()
        except Exception as error:  # only for rows marked may_fail; others re-raise
            if not row.may_fail:
                raise
            notes[row.label] = f"cannot run here: {type(error).__name__}: {str(error).splitlines()[0][:160]}"
            continue
        row.first_call = time.perf_counter() - start
    expected = outputs[reference]
    for label, output in outputs.items():
        difference = first_difference(expected, output)
        if difference is not None:
            notes[label] = f"tokens differ from {reference!r} at {difference}"
            refused.append(label)
    timed = {label: by_label[label].run for label in outputs if label not in refused}
    floors = {}  # one entry per distinct set of layers: new_tokens floor passes, timed like a row
    for label in timed:
        layers = by_label[label].floor
        if layers is not None and tuple(map(id, layers)) not in floors:
            floors[tuple(map(id, layers))] = (f"floor {len(floors)}", floor_pass(layers), by_label[label].floor_name)
    entries = dict(timed)
    for name, one_pass, _ in floors.values():
        one_pass()  # warm-up
        entries[name] = lambda one_pass=one_pass: [one_pass() for _ in range(new_tokens)]
    # the first calls above were the warm-up of the rows
    rounds_times = interleaved_times(entries, rounds, warmup=False) if rounds else {}
    times = {name: min(t) for name, t in rounds_times.items()}
    for label in timed:
        row = by_label[label]
        if row.unchanged is not None and layout_fingerprint(row.unchanged) != fingerprints[label]:
            notes[label] = "changed its model's weights (layout, dtype or storage): inference must not"
            refused.append(label)
    lines = []
    base = times.get(reference)
    for row in rows:
        label = row.label
        first = f"{row.first_call:.2f}" if row.first_call is not None else ""
        if label in times and label not in refused:
            t = times[label]
            floor = f"{t / times[floors[tuple(map(id, row.floor))][0]]:.1f}x" if row.floor is not None else ""
            spread = f"{max(rounds_times[label]) / t:.2f}"
            lines.append([label, f"{1e3 * t / new_tokens:.2f}", f"{new_tokens / t:.1f}", f"{base / t:.2f}x", floor,
                          spread, first, notes[label]])
        else:
            lines.append([label, "-", "-", "-", "", "", first, notes[label]])
    text = format_table(["row", "ms/token", "tokens/s", f"vs {reference}", "x floor", "slowest/fastest", "first call s",
                         "note"], lines)
    if floors and times:
        text += ("\nbare-matmul floor per token (one F.linear per weight matrix a step runs, timed in the same "
                 "rounds): " + ", ".join(f"{what or name} {1e3 * times[name] / new_tokens:.2f} ms"
                                         for name, _, what in floors.values()))
    if refused:
        text += (f"\n{REFUSED}: no speed for {', '.join(repr(r) for r in refused)}: their output is not the "
                 f"reference's (or they changed their model), so their times would not measure the same work.")
        return text, 1
    return text + f"\nall {len(timed)} timed rows produced the same {new_tokens} new tokens as {reference!r}.", 0
