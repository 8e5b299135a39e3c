"""Independent training runs of an experiment, in worker processes or in this one.

The chapters' experiments (``tang_run``, ``prefix_compare``) train several small models that do
not depend on each other. Each run sets one thread for itself, so on a machine with ``n`` cores
``n`` processes finish sooner than ``n`` threads on one run (small matrices do not scale across
threads), and a run's numbers do not depend on how many run beside it.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence, TypeVar

__all__ = ["usable_cores", "run_jobs"]

Job = TypeVar("Job")


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one).

    >>> usable_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_jobs(function: Callable[[Job], Any], jobs: Sequence[Job], workers: int) -> list:
    """``[function(job) for job in jobs]``, computed by ``workers`` processes (``spawn``: a fresh
    interpreter each, no state inherited) or, when ``workers`` is 1, in this process. ``function``
    must be importable (defined at module level), as ``multiprocessing`` requires.

    >>> run_jobs(abs, [-1, 2], workers=1)
    [1, 2]
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if workers == 1:
        return [function(job) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(function, jobs))
