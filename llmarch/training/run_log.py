"""The run's log: one JSON object per line (``log.jsonl``), and the loss curve drawn from it.

Training records look like ``{"step": 10, "loss": 3.21, "lr": 0.0003, "grad_norm": 0.8,
"tokens": 20480, "tokens_per_s": 9100.0, "elapsed_s": 2.3}``; evaluations like
``{"step": 100, "eval_loss": 3.05, "eval_ppl": 21.1}``. JSON lines can be appended by a process
that may die at any moment (a torn last line is skipped when reading) and read by anything
(``pandas.read_json(path, lines=True)``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["RunLog", "read_log", "plot_loss_curve"]


class RunLog:
    """Append-only JSONL log (``None`` path: records are only kept in memory).

    >>> log = RunLog(None)
    >>> log.append({"step": 1, "loss": 2.5})
    >>> log.records
    [{'step': 1, 'loss': 2.5}]
    """

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = None if path is None else Path(path)
        self.records: list[dict] = []

    def append(self, record: dict) -> None:
        self.records.append(record)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records of steps ``> step`` (a resumed run redoes them) and keep the rest in memory."""
        source = read_log(self.path) if self.path is not None else self.records
        self.records = [r for r in source if r.get("step", 0) <= step]
        if self.path is not None:
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records),
                                 encoding="utf-8")
            os.replace(temporary, self.path)


def read_log(path: str | os.PathLike) -> list[dict]:
    """The records of a ``log.jsonl`` (an unfinished last line is ignored; no file: ``[]``)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a kill
    return records


# --8<-- [start:plot_loss_curve]
def plot_loss_curve(records: list[dict], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Draw training loss (and evaluation loss, when present) against the step; save as ``path``.

    Args:
        records: log records (``read_log``).
        path: the image file (``.png``, ``.svg`` ...).
        title: the figure's title.

    Returns:
        ``path``.

    Raises:
        ValueError: if no record has a ``loss``.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    if not train:
        raise ValueError("records must hold at least one training record with a 'loss', got none")
    figure, axis = plt.subplots(figsize=(6, 3.5), dpi=120)
    axis.plot(*zip(*train), label="train loss", linewidth=1)
    if evals:
        axis.plot(*zip(*evals), "o-", label="validation loss", markersize=3)
    axis.set_xlabel("step")
    axis.set_ylabel("loss (nats / token)")
    axis.grid(alpha=0.3)
    axis.legend()
    if title:
        axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return Path(path)
# --8<-- [end:plot_loss_curve]
