"""The command line every experiment shares: ``python -m llmarch lab NAME [--quick] [--workers N]
[--refresh] [--plot FILE]`` -- parse those options, then print the run's record and draw its
figure into a file on request."""

from __future__ import annotations

import argparse
from typing import Callable

__all__ = ["lab_parser", "report_run"]


def lab_parser(prog: str, doc: str, *, quick: str, plot: str, workers: bool = True) -> argparse.ArgumentParser:
    """A parser with the shared options; ``doc`` is the module docstring (its first paragraph is the
    description), ``quick`` / ``plot`` say what ``--quick`` runs and what ``--plot`` draws.

    >>> args = lab_parser("lab demo", "Demo.", quick="a smoke run", plot="the curves").parse_args(["--quick"])
    >>> args.quick, args.workers, args.refresh, args.plot
    (True, None, False, None)
    """
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{quick} (a smoke run)")
    if workers:
        parser.add_argument("--workers", type=int, default=None,
                            help="training processes at a time (default: one per core)")
    parser.add_argument("--refresh", action="store_true", help="run again even when the cache holds the result")
    parser.add_argument("--plot", metavar="FILE", help=f"also draw {plot} into FILE (.png, .svg ...)")
    return parser


def report_run(args: argparse.Namespace, result: dict, summary: Callable[[dict], str], plot: Callable, *,
               columns: int, size: tuple[float, float]) -> int:
    """Print ``summary(result)``; with ``--plot FILE`` also draw ``plot(result, axes)`` on
    ``columns`` axes side by side into FILE. Returns the exit status, 0."""
    print(summary(result))
    if args.plot:
        from .figure_file import save_figure

        save_figure(args.plot, lambda axes: plot(result, axes), columns=columns, size=size)
    return 0
