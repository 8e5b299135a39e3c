"""Token streams for language-model training: random windows to train on, sequential windows to evaluate.

A corpus becomes one long 1-D tensor of token ids (:func:`encode_corpus`). Training draws
``batch_size`` random windows of ``seq_len + 1`` tokens (inputs ``w[:, :-1]``, targets
``w[:, 1:]``); the windows of step ``s`` depend only on ``(seed, s)``, so a resumed run sees the
same batches and data-parallel ranks split one global batch without talking to each other.
Evaluation walks the stream in order (:func:`sequential_windows`), predicting every token once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["encode_corpus", "RandomWindows", "sequential_windows"]


def _check_ids(ids: Tensor, seq_len: int, batch_size: int) -> None:
    if not isinstance(ids, Tensor) or ids.ndim != 1 or ids.dtype != torch.long:
        got = f"{ids.dtype} tensor of shape {tuple(ids.shape)}" if isinstance(ids, Tensor) else type(ids).__name__
        raise ValueError(f"ids must be a 1-D torch.long tensor (see encode_corpus), got {got}")
    if ids.numel() == 0:
        raise ValueError("ids must not be empty (the corpus has no tokens)")
    for name, value in (("seq_len", seq_len), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if seq_len + 1 > ids.numel():
        raise ValueError(f"seq_len must be at most len(ids) - 1 = {ids.numel() - 1} (a window holds seq_len + 1 "
                         f"tokens), got {seq_len}")


def encode_corpus(tokenizer: Any, text: str) -> Tensor:
    """The token ids of ``text`` as one 1-D ``torch.long`` tensor.

    Args:
        tokenizer: anything with ``encode(text) -> list[int]`` (see :mod:`llmarch.training.tokenizers`).
        text: the corpus (or one split of it).

    Returns:
        ``(n_tokens,)`` long tensor.

    Raises:
        ValueError: if ``text`` is empty or encodes to no tokens.

    >>> from llmarch.training.tokenizers import CharTokenizer
    >>> encode_corpus(CharTokenizer.train("abc"), "cab")
    tensor([3, 1, 2])
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"text must be a non-empty str, got {text!r:.40}")
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    if ids.numel() == 0:
        raise ValueError("text encodes to no tokens")
    return ids


# --8<-- [start:random_windows]
class RandomWindows:
    """Batches of random windows of a token stream, reproducible from ``(seed, step)``.

    Args:
        ids: ``(n_tokens,)`` long tensor (see :func:`encode_corpus`).
        seq_len: tokens the model sees; each window holds ``seq_len + 1`` (inputs and
            shifted targets).
        batch_size: windows per (global) batch.
        seed: the data seed; step ``s`` always yields the same batch for the same seed.

    Raises:
        ValueError: if ``ids`` is empty, ``seq_len + 1 > len(ids)``,
            ``batch_size < 1`` or ``seed < 0``.

    >>> windows = RandomWindows(torch.arange(100), seq_len=8, batch_size=4, seed=0)
    >>> batch = windows.batch_at(0)
    >>> contiguous = bool((batch[:, 1:] - batch[:, :-1] == 1).all())
    >>> batch.shape, contiguous
    (torch.Size([4, 9]), True)
    >>> half = windows.batch_at(0, rank=1, world_size=2)   # rank 1 of 2
    >>> torch.equal(half, batch[1::2])
    True
    """

    def __init__(self, ids: Tensor, seq_len: int, batch_size: int, seed: int):
        _check_ids(ids, seq_len, batch_size)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.ids, self.seq_len, self.batch_size, self.seed = (
            ids,
            seq_len,
            batch_size,
            seed,
        )
        self._offsets = torch.arange(seq_len + 1, device=ids.device)

    def starts_at(self, step: int) -> Tensor:
        """``(batch_size,)`` start positions of step ``step``'s windows (the global
        batch)."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        rng = np.random.default_rng(
            [self.seed, step]
        )  # an independent stream per (seed, step)
        high = self.ids.numel() - self.seq_len  # last start whose window fits, plus one
        return torch.from_numpy(rng.integers(0, high, size=self.batch_size))

    def batch_at(self, step: int, rank: int = 0, world_size: int = 1) -> Tensor:
        """Rows ``rank::world_size`` of step ``step``'s global batch:
        ``(batch_size // world_size, seq_len + 1)``.

        Raises:
            ValueError: if ``world_size`` does not divide ``batch_size`` or ``rank``
                is not in ``[0, world_size)``.
        """
        if (
            isinstance(world_size, bool)
            or not isinstance(world_size, int)
            or world_size < 1
            or self.batch_size % world_size
        ):
            raise ValueError(
                "world_size must be a positive divisor of "
                f"batch_size={self.batch_size}, got {world_size!r}"
            )
        if (
            isinstance(rank, bool)
            or not isinstance(rank, int)
            or not 0 <= rank < world_size
        ):
            raise ValueError(f"rank must be an int in [0, {world_size}), got {rank!r}")
        starts = self.starts_at(step)[rank::world_size].to(self.ids.device)
        return self.ids[starts[:, None] + self._offsets]  # (rows, seq_len + 1)

    def iterate(
        self, start_step: int = 0, rank: int = 0, world_size: int = 1
    ) -> Iterator[Tensor]:
        """Batches of steps ``start_step, start_step + 1, ...`` without end (resume
        from any step)."""
        step = start_step
        while True:
            yield self.batch_at(step, rank=rank, world_size=world_size)
            step += 1

    def __iter__(self) -> Iterator[Tensor]:
        return self.iterate()
# --8<-- [end:random_windows]


def sequential_windows(ids: Tensor, seq_len: int, batch_size: int) -> Iterator[Tensor]:
    """Evaluation windows in order: window ``i`` is ``ids[i * seq_len : i * seq_len + seq_len + 1]``.

    Consecutive windows share one token (the last target of one is the first input of the next),
    so every token after the first is predicted exactly once; the tail that does not fill a
    window is dropped. Batches hold ``batch_size`` windows (the last may hold fewer).

    Args:
        ids: ``(n_tokens,)`` long tensor.
        seq_len: tokens the model sees per window.
        batch_size: windows per batch.

    Yields:
        ``(rows, seq_len + 1)`` long tensors, ``rows <= batch_size``.

    Raises:
        ValueError: if ``ids`` is empty, ``seq_len + 1 > len(ids)`` or ``batch_size < 1``.

    Examples:
        >>> [b.tolist() for b in sequential_windows(torch.arange(8), seq_len=3, batch_size=2)]
        [[[0, 1, 2, 3], [3, 4, 5, 6]]]
    """
    _check_ids(ids, seq_len, batch_size)
    n_windows = (ids.numel() - 1) // seq_len
    windows = ids[: n_windows * seq_len + 1].unfold(0, seq_len + 1, seq_len)  # (n_windows, seq_len + 1) view
    for i in range(0, n_windows, batch_size):
        yield windows[i: i + batch_size].clone()  # a batch of its own, not a view of ids
