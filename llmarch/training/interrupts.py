"""Stopping a training run cleanly: Ctrl-C and SIGTERM become a flag checked between steps.

A signal that arrived in the middle of a step would leave the model half-updated if it stopped
the process there. Instead, ``StopSignals`` records it; the trainer finishes the step, writes a
checkpoint and raises ``TrainingInterrupted``. A second Ctrl-C stops at once (Python's usual
``KeyboardInterrupt``), for when saving hangs. SIGKILL cannot be caught: the run then loses the
steps since its last checkpoint.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

__all__ = ["StopSignals", "TrainingInterrupted"]


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after a signal stopped training and the checkpoint of ``step`` was written.

    >>> TrainingInterrupted(signal.SIGINT, 7, None).exit_code
    130
    """

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        super().__init__(f"training stopped by {signal.Signals(signum).name} after step {step}"
                         + (f"; checkpoint {checkpoint}" if checkpoint else ""))
        self.signum, self.step, self.checkpoint = signum, step, checkpoint

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + self.signum


class StopSignals:
    """Within ``with StopSignals() as stop:``, SIGINT / SIGTERM set ``stop.signum`` instead of
    stopping the process; the previous handlers come back on exit. Outside the main thread
    (where Python cannot install handlers) it does nothing.

    >>> import os
    >>> with StopSignals() as stop:
    ...     os.kill(os.getpid(), signal.SIGTERM)
    ...     stop.signum == signal.SIGTERM
    True
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        if signum == signal.SIGINT:  # a second Ctrl-C stops at once
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
