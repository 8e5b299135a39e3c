"""The trainer's options, in one checked dataclass (the command line has one flag per field)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..nn.checks import check_choice, check_positive_int

__all__ = ["TrainConfig", "DTYPES"]

DTYPES = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    """How to train (the model and data are given separately).

    Attributes:
        seq_len: tokens per training sequence (inputs; the window holds one more, the last target).
        batch_size: sequences per micro-step, summed over all processes (each of N processes
            takes ``batch_size / N`` of them; must divide evenly).
        grad_accum: micro-steps per optimizer step: the effective batch is
            ``batch_size * grad_accum`` sequences.
        steps: optimizer steps of the whole run (the cosine schedule ends here).
        lr: peak learning rate; ``min_lr_ratio``: the cosine's floor as a fraction of it.
        warmup_steps: linear warm-up length.
        weight_decay: AdamW's decoupled decay of the weight matrices (not norms, biases, embeddings).
        beta1, beta2, eps: AdamW's moments and epsilon.
        grad_clip: clip the global gradient norm to this (0: no clipping).
        dtype: autocast precision: ``"auto"`` (bf16 on a CUDA GPU that supports it, fp16 on an older
            GPU, fp32 on CPU), ``"fp32"``, ``"bf16"`` (CPU or GPU), ``"fp16"`` (GPU, with loss scaling).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        seed: seeds initialisation, data order, dropout and masking.
        eval_every: evaluate every this many steps (0: only at the end); ``eval_batches``: at most
            this many validation batches.
        save_every: checkpoint every this many steps (0: only at the end); ``keep_checkpoints``: how
            many checkpoint folders to keep.
        log_every: print a progress line every this many steps (when not on a terminal).
        strategy: ``"ddp"`` or ``"fsdp"`` (FSDP2, ``fully_shard``) under torchrun.
        plot: draw ``loss.png`` at the end (needs matplotlib).

    >>> TrainConfig(batch_size=0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be a positive int, got 0
    """

    seq_len: int = 128
    batch_size: int = 16
    grad_accum: int = 1
    steps: int = 1000
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    dtype: str = "auto"
    device: str = "auto"
    seed: int = 0
    eval_every: int = 100
    eval_batches: int = 20
    save_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 10
    strategy: str = "ddp"
    plot: bool = True

    def __post_init__(self) -> None:
        for name in ("seq_len", "batch_size", "grad_accum", "steps", "eval_batches", "log_every"):
            check_positive_int(name, getattr(self, name))
        for name in ("warmup_steps", "eval_every", "save_every", "keep_checkpoints", "seed"):
            check_positive_int(name, getattr(self, name), allow_zero=True)
        if self.warmup_steps > self.steps:
            raise ValueError(f"warmup_steps must be <= steps = {self.steps}, got {self.warmup_steps}")
        for name in ("lr", "eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("weight_decay", "grad_clip"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        check_choice("dtype", self.dtype, DTYPES)
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        check_choice("strategy", self.strategy, ("ddp", "fsdp"))

    @property
    def tokens_per_step(self) -> int:
        """Input tokens per optimizer step (all processes)."""
        return self.seq_len * self.batch_size * self.grad_accum

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Inverse of ``to_dict``; unknown keys raise ``TypeError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise TypeError(f"unknown TrainConfig field(s) {unknown}; valid fields: {', '.join(sorted(names))}")
        return cls(**data)
