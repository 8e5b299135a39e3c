"""Draw an experiment's figure into a file from the command line (``--plot FILE``)."""

from __future__ import annotations

import sys
from typing import Callable

__all__ = ["save_figure"]


def save_figure(path: str, plot: Callable, *, columns: int = 1, size: tuple[float, float] = (7.0, 4.0)) -> None:
    """Call ``plot(axes)`` with a list of ``columns`` matplotlib axes side by side on a new figure
    and save it to ``path``; the format follows the suffix (.png, .svg, .pdf ...). Uses the Agg
    backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, columns, figsize=size, squeeze=False)
    plot(list(axes[0]))
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    print(f"figure: {path}", file=sys.stderr)
