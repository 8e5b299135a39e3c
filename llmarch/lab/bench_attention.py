"""Benchmark: ``python -m llmarch bench attention [--quick]``.

Two questions, answered from one run:

1. **Speed.** Forward + backward time of ``llmarch.nn.MultiHeadAttention`` (sdpa backend,
   ``is_causal=True``) against ``torch.nn.MultiheadAttention`` (``batch_first=True``, a
   causal ``attn_mask`` with ``is_causal=True``, ``need_weights=False``) with the same weights,
   at batch 8, seq 512, d_model 768, 12 heads. First both outputs and input gradients must
   agree (fp32, atol = rtol = 1e-4), or the benchmark refuses to time them and exits 1. Repeats
   are interleaved (rotating which runs first) and the medians compared; the ratio is
   ours / theirs (below 1 = we are faster).
2. **Memory.** Peak memory of one forward + backward of the eager and the sdpa path at
   seq 1k / 2k / 4k (batch 1, d_model 768, 12 heads, causal). The eager path materialises the
   ``(heads, seq, seq)`` score matrix, so it grows quadratically; the fused kernel keeps only
   ``O(seq)`` state, so it grows linearly.

How memory is measured (Linux): every measurement runs in a *fresh process* (so memory that
an allocator kept from an earlier run cannot hide or inflate anything). The child builds the
module and inputs, warms the kernels up on a tiny input, resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``), reads its resident set size (``VmRSS``), runs forward + backward
once, and reads the peak (``VmHWM`` in ``/proc/self/status``). Peak growth = peak - RSS before.
CPU tensors are ordinary process memory, so this counts every page torch touched, including
temporaries freed before the end -- which ``tracemalloc`` (Python objects only) would miss.
(``getrusage().ru_maxrss`` is not used: Linux carries it over from the parent across exec.)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics

import torch
from torch import nn

from llmarch.lab.benchkit import REFUSED, format_table, interleaved_times, mismatch
from llmarch.lab.machine import machine_summary
from llmarch.nn import MultiHeadAttention

FULL = {"batch": 8, "seq": 512, "d_model": 768, "heads": 12, "repeats": 9, "memory_seqs": (1024, 2048, 4096)}
ATOL = RTOL = 1e-4  # fp32; the two modules differ by ~1e-6 (another summation order)
QUICK = {"batch": 2, "seq": 32, "d_model": 64, "heads": 4, "repeats": 2, "memory_seqs": (64, 128, 256)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of this benchmark (the CLI already adds ``--quick``)."""
    if not any("--quick" in action.option_strings for action in parser._actions):
        parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--skip-memory", action="store_true", help="only the timing comparison")


# --------------------------------------------------------------------------- timing
def _paired_modules(d_model: int, heads: int):
    theirs = nn.MultiheadAttention(d_model, heads, batch_first=True)
    ours = MultiHeadAttention(d_model, heads, backend="sdpa")
    with torch.no_grad():
        wq, wk, wv = theirs.in_proj_weight.chunk(3)
        bq, bk, bv = theirs.in_proj_bias.chunk(3)
        for proj, w, b in ((ours.q_proj, wq, bq), (ours.k_proj, wk, bk), (ours.v_proj, wv, bv)):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        ours.out_proj.load_state_dict(theirs.out_proj.state_dict())
    return ours, theirs


def time_forward_backward(batch: int, seq: int, d_model: int, heads: int, repeats: int) -> dict:
    """Median seconds of forward + backward for ours and torch's, interleaved, and how far apart
    their outputs and input gradients are (``max_diff``; ``mismatch``: ``None`` or why they differ)."""
    ours, theirs = _paired_modules(d_model, heads)
    x = torch.randn(batch, seq, d_model, requires_grad=True)
    grad = torch.randn(batch, seq, d_model)
    attn_mask = torch.ones(seq, seq, dtype=torch.bool).triu(1)  # torch: True = may NOT attend

    def run_ours():
        return ours(x, is_causal=True)

    def run_theirs():
        return theirs(x, x, x, attn_mask=attn_mask, is_causal=True, need_weights=False)[0]

    def step(fn, module):
        module.zero_grad(set_to_none=True)
        x.grad = None
        out = fn()
        out.backward(grad)
        return out.detach(), x.grad

    (out_ours, grad_ours), (out_theirs, grad_theirs) = step(run_ours, ours), step(run_theirs, theirs)
    problems = [f"{what}: {problem}" for what, problem in (
        ("output", mismatch(out_theirs, out_ours, atol=ATOL, rtol=RTOL)),
        ("input gradient", mismatch(grad_theirs, grad_ours, atol=ATOL, rtol=RTOL))) if problem]
    max_diff = max((out_ours - out_theirs).abs().max().item(), (grad_ours - grad_theirs).abs().max().item())
    if problems:
        return {"max_diff": max_diff, "mismatch": "; ".join(problems)}
    # warm-up (kernel selection, thread pools, allocator), then rounds in rotating order
    times = interleaved_times({"ours": lambda: step(run_ours, ours), "theirs": lambda: step(run_theirs, theirs)},
                              repeats)
    return {name: statistics.median(values) for name, values in times.items()} | {"max_diff": max_diff,
                                                                                    "mismatch": None}


# --------------------------------------------------------------------------- memory
def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _rss_bytes() -> int:
    """Current resident set size."""
    return _status_bytes("VmRSS")


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0; harmless if refused)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def _peak_rss_bytes() -> int:
    """Peak resident set size of this process image (``VmHWM``).

    Not ``getrusage().ru_maxrss``: Linux carries that over from the parent across fork + exec,
    so a child started by a big parent would report the parent's size.
    """
    return _status_bytes("VmHWM")


def memory_child(backend: str, seq: int, d_model: int, heads: int) -> dict:
    """Runs inside the subprocess: peak RSS growth of one forward + backward."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(d_model, heads, backend=backend)
    warm = torch.randn(1, 16, d_model, requires_grad=True)
    mha(warm, is_causal=True).sum().backward()  # load kernels, start threads
    mha.zero_grad(set_to_none=True)
    x = torch.randn(1, seq, d_model, requires_grad=True)
    _reset_peak()
    before = _rss_bytes()
    mha(x, is_causal=True).sum().backward()
    return {"peak_growth": _peak_rss_bytes() - before}


def _memory_cell(cell: tuple[str, int, int, int]) -> int:
    return memory_child(*cell)["peak_growth"]


def measure_memory(cells: list[tuple[str, int]], d_model: int, heads: int) -> dict[tuple[str, int], int]:
    """Peak RSS growth in bytes of each ``(backend, seq)`` cell, each in its own fresh process.

    The processes fork from a ``forkserver`` that has imported torch but never run an operator
    (so no thread pool or allocator state is inherited, and torch is imported once, not per
    cell); ``maxtasksperchild=1`` gives every cell a new process. They run side by side: each
    measures only its own memory (``VmHWM`` is per process), so this changes wall time, not figures.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "llmarch.lab.bench_attention"])
    jobs = [(backend, seq, d_model, heads) for backend, seq in cells]
    from llmarch.lab import bench_attention  # pickle the worker by its import name

    with context.Pool(processes=min(len(jobs), os.cpu_count() or 1), maxtasksperchild=1) as pool:
        return dict(zip(cells, pool.map(bench_attention._memory_cell, jobs, chunksize=1)))


# --------------------------------------------------------------------------- report
def run(args) -> int:
    """Run both parts and print the tables. Returns 0, or 1 when the two modules disagree."""
    sizes = QUICK if getattr(args, "quick", False) else FULL
    torch.manual_seed(0)
    print(machine_summary())
    b, s, d, h = sizes["batch"], sizes["seq"], sizes["d_model"], sizes["heads"]
    print(f"\n1) forward + backward, causal, batch {b}, seq {s}, d_model {d}, {h} heads "
          f"(median of {sizes['repeats']} interleaved repeats)\n")
    timing = time_forward_backward(b, s, d, h, sizes["repeats"])
    if timing["mismatch"]:
        print(f"{REFUSED}: llmarch's MultiHeadAttention does not compute torch's ({timing['mismatch']}); "
              "no time is printed.")
        return 1
    ratio = timing["ours"] / timing["theirs"]
    print(format_table(["implementation", "ms"], [
        ["llmarch MultiHeadAttention (sdpa)", f"{timing['ours'] * 1e3:.1f}"],
        ["torch.nn.MultiheadAttention", f"{timing['theirs'] * 1e3:.1f}"],
    ]))
    print(f"\nratio ours / torch = {ratio:.2f}  (target <= 1.0; outputs and input gradients agree to "
          f"{timing['max_diff']:.1e})")

    if getattr(args, "skip_memory", False):
        return 0
    seqs = sizes["memory_seqs"]
    print(f"\n2) peak memory of forward + backward, causal, batch 1, d_model {d}, {h} heads\n"
          "   (peak RSS growth, VmHWM - VmRSS, of a fresh process per cell; see the module docstring)\n")
    growth = measure_memory([(backend, seq) for seq in seqs for backend in ("eager", "sdpa")], d, h)
    rows = []
    for i, seq in enumerate(seqs):
        row = [str(seq)]
        for backend in ("eager", "sdpa"):
            now, before = growth[backend, seq], growth[backend, seqs[i - 1]] if i else 0
            row += [f"{now / 2**20:.1f}", f"x{now / before:.1f}" if before > 0 else ""]
        row.append(f"{h * seq * seq * 4 / 2**20:.0f}")
        rows.append(row)
    print(format_table(["seq", "eager MiB", "growth", "sdpa MiB", "growth", "one fp32 score matrix MiB"], rows))
    print("\nDoubling seq: quadratic memory grows x4 per row, linear x2.")
    return 0

