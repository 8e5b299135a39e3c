"""Facts about the machine a benchmark runs on, printed at the top of every ``python -m llmarch bench``.

A CPU figure means little without its CPU and its load: batch-1 bf16 decoding of GPT-2 was
measured at about 2x fp32's speed on one 2-core AMD EPYC (AVX-512 BF16), and at 0.79x on a 2-core
Intel Xeon with AMX-BF16 (bf16 matmul floor 35.9 ms against fp32's 22.7 ms). So every benchmark
prints the CPU model, the instruction-set flags that decide which kernels oneDNN/MKL can use
(read from ``/proc/cpuinfo`` on Linux), the torch version, the CPU kernel level torch dispatches
to, the number of threads, and a warning when other processes load the machine.
"""

from __future__ import annotations

import os
import platform

import torch

__all__ = ["ISA_FLAGS", "parse_cpuinfo", "cpu_info", "machine_summary"]

#: The flags that matter for fp32 / bf16 matmuls: AVX2, AVX-512, AVX-512 BF16 dot products,
#: and the AMX tile unit with its bf16 instructions (Intel Sapphire Rapids and later).
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def parse_cpuinfo(text: str) -> dict:
    """The CPU model and the set of flags of the first processor in ``/proc/cpuinfo`` text.

    Args:
        text: the contents of ``/proc/cpuinfo`` (Linux; x86 ``model name``/``flags`` lines,
            or ARM ``Features``/``CPU part`` lines).

    Returns:
        ``{"model": str or None, "flags": set[str]}``.

    >>> info = parse_cpuinfo("processor : 0\\nmodel name : Some CPU\\nflags : fpu avx2 amx_bf16\\n")
    >>> info["model"], sorted(info["flags"])
    ('Some CPU', ['amx_bf16', 'avx2', 'fpu'])
    """
    model, flags = None, set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "model name" and model is None:
            model = value
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return {"model": model, "flags": flags}


def cpu_info() -> dict:
    """This machine's CPU: ``{"model": str, "flags": set[str] or None}`` (``None`` when unknown,
    e.g. off Linux).

    >>> isinstance(cpu_info()["model"], str)
    True
    """
    try:
        with open("/proc/cpuinfo") as f:
            info = parse_cpuinfo(f.read())
    except OSError:
        return {"model": platform.processor() or platform.machine() or "unknown CPU", "flags": None}
    return {"model": info["model"] or platform.processor() or platform.machine() or "unknown CPU",
            "flags": info["flags"] or None}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_summary() -> str:
    """CPU model, usable cores, ISA flags; torch version, CPU kernel level, threads, load average
    (and a warning line when the machine is busy).

    >>> print(machine_summary())  # doctest: +ELLIPSIS
    machine: ... cores usable; ISA: ...
    torch ..., CPU kernels ..., ... threads; load average ...
    """
    info = cpu_info()
    if info["flags"] is None:
        isa = "flags unknown (no /proc/cpuinfo)"
    else:
        isa = ", ".join(f"{flag} {'yes' if flag in info['flags'] else 'no'}" for flag in ISA_FLAGS)
    capability = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "unknown"
    cores = _cores()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    text = (f"machine: {info['model']}, {platform.machine()}, {cores} cores usable; ISA: {isa}\n"
            f"torch {torch.__version__}, CPU kernels {capability}, {torch.get_num_threads()} threads; "
            f"load average {'unknown' if load is None else f'{load:.1f}'}")
    if load is not None and load >= cores:
        text += (f"\nWARNING: the load average ({load:.1f}) is at least the number of cores ({cores}): other "
                 "processes compete for the CPU, so times are inflated and noisy (threads that wait for a "
                 "descheduled peer stall); compare rows of one run, not figures across runs")
    return text
