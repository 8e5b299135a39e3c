"""Independent training runs of an experiment, in worker processes or in this one.

The chapters' experiments (``tang_run``, ``prefix_compare``, chapter 5's labs) train several
small models that do not depend on each other. Each run sets one thread for itself, so on a
machine with ``n`` cores ``n`` processes finish sooner than ``n`` threads on one run (small
matrices do not scale across threads), and a run's numbers do not depend on how many run beside
it. With ``progress=`` a bar (on a terminal) or one plain line per finished run (logs, CI) shows
how many runs are done, their rate and the time left.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Sequence, TextIO, TypeVar

__all__ = ["usable_cores", "run_jobs", "JobProgress"]

Job = TypeVar("Job")


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one).

    >>> usable_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class JobProgress:
    """Count finished runs: a tqdm bar when ``stream`` is a terminal, else a plain line per run
    with the elapsed time and an estimate of the time left.

    >>> import io
    >>> out = io.StringIO()
    >>> progress = JobProgress("demo", 2, stream=out)
    >>> progress.done(); progress.done(); progress.close()
    >>> print(out.getvalue())  # doctest: +ELLIPSIS
    demo: run 1/2 done | ... elapsed | eta ...
    demo: run 2/2 done | ... elapsed | eta 0:00:00
    """

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None) -> None:
        from ..training.progress import format_duration

        self.label, self.total, self.finished = label, total, 0
        self.stream = stream if stream is not None else sys.stderr
        self.start, self._format = time.perf_counter(), format_duration
        self._bar = None
        if getattr(self.stream, "isatty", lambda: False)():
            try:
                from tqdm.auto import tqdm
            except ImportError:  # plain lines without tqdm
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=label, unit="run", file=self.stream, dynamic_ncols=True)

    def done(self) -> None:
        """One more run finished."""
        self.finished += 1
        if self._bar is not None:
            self._bar.update(1)
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.finished * (self.total - self.finished)
        print(f"{self.label}: run {self.finished}/{self.total} done | {self._format(elapsed)} elapsed | "
              f"eta {self._format(eta)}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def run_jobs(function: Callable[[Job], Any], jobs: Sequence[Job], workers: int, *,
             progress: str | None = None) -> list:
    """``[function(job) for job in jobs]``, computed by ``workers`` processes (``spawn``: a fresh
    interpreter each, no state inherited) or, when ``workers`` is 1, in this process. ``function``
    must be importable (defined at module level), as ``multiprocessing`` requires. ``progress``:
    a label; then :class:`JobProgress` reports each finished run on stderr.

    >>> run_jobs(abs, [-1, 2], workers=1)
    [1, 2]
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    bar = JobProgress(progress, len(jobs)) if progress else None
    try:
        if workers == 1:
            results = []
            for job in jobs:
                results.append(function(job))
                if bar is not None:
                    bar.done()
            return results
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(function, job) for job in jobs]
            for future in as_completed(futures):
                future.result()  # an error stops the run here, not after the others
                if bar is not None:
                    bar.done()
            return [future.result() for future in futures]
    finally:
        if bar is not None:
            bar.close()
