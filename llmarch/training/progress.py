"""Progress of a training run: a tqdm bar on a terminal, plain lines elsewhere (logs, CI, pipes).

Both show the step, the loss, the learning rate, tokens per second and the estimated time left.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    """``h:mm:ss``.

    >>> format_duration(3725.4)
    '1:02:05'
    """
    seconds = int(round(max(0.0, seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Report steps ``initial + 1 .. total``.

    Args:
        total: the last step.
        initial: steps already done (a resumed run).
        enabled: ``False`` on ranks other than 0 (prints nothing).
        bar: ``True`` tqdm, ``False`` plain lines, ``None`` a bar when ``stream`` is a terminal and
            tqdm is installed.
        every: plain mode prints one line every this many steps (and the last one).
        stream: where to write (default ``sys.stderr``).

    >>> import io
    >>> out = io.StringIO()
    >>> progress = Progress(4, bar=False, every=2, stream=out)
    >>> for step in range(1, 5):
    ...     progress.update(step, loss=2.0 / step, lr=1e-3, tokens_per_s=1000.0)
    >>> progress.close()
    >>> print(out.getvalue())  # doctest: +ELLIPSIS
    step 2/4 | loss 1.0000 | lr 1.00e-03 | 1,000 tok/s | eta ...
    step 4/4 | loss 0.5000 | lr 1.00e-03 | 1,000 tok/s | eta 0:00:00
    """

    def __init__(self, total: int, *, initial: int = 0, enabled: bool = True, bar: bool | None = None,
                 every: int = 10, stream: TextIO | None = None) -> None:
        self.total, self.initial, self.enabled, self.every = total, initial, enabled, max(1, every)
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self._bar = None
        if enabled and bar is not False:
            is_tty = getattr(self.stream, "isatty", lambda: False)()
            try:
                from tqdm.auto import tqdm
            except ImportError:  # tqdm is a dependency; plain lines if it is missing anyway
                tqdm = None
            if tqdm is not None and (bar or is_tty):
                self._bar = tqdm(total=total, initial=initial, file=self.stream, unit="step", dynamic_ncols=True)

    def update(self, step: int, *, loss: float, lr: float, tokens_per_s: float) -> None:
        """Step ``step`` is done."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            self._bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
            return
        if step % self.every and step != self.total:
            return
        done = step - self.initial
        eta = (time.perf_counter() - self.start) / done * (self.total - step) if done > 0 else 0.0
        self.write(f"step {step}/{self.total} | loss {loss:.4f} | lr {lr:.2e} | {tokens_per_s:,.0f} tok/s | "
                   f"eta {format_duration(eta)}")

    def write(self, message: str) -> None:
        """A line that does not break the bar (evaluations, checkpoints)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
