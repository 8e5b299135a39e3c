"""The training loop: one trainer for every family's objective, on one process or many.

Each optimizer step: ``grad_accum`` micro-batches (forward under autocast, loss / grad_accum,
backward -- gradients are only synchronised across processes on the last one), then the gradient
norm is clipped, AdamW steps, the warm-up + cosine schedule advances. Every ``eval_every`` steps
the validation loss and perplexity are measured, every ``save_every`` steps a checkpoint is
written (``llmarch.training.checkpointing``).

Everything random is a function of the seed and the step: the batch of step ``s``
(``RandomWindows.batch_at``), the objective's masks (a generator seeded from the step), and
dropout (the global RNG, whose state the checkpoint stores). A resumed run therefore computes
exactly what the uninterrupted one would have.

Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a checkpoint and raises
``TrainingInterrupted`` (the command line exits with 130 or 143); a second Ctrl-C stops at once.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from .checkpointing import RUN_FILE, check_same_model, latest_checkpoint, load_checkpoint, save_checkpoint
from .distributed import DistributedContext, all_reduce_mean, any_rank, init_distributed, wrap_model
from .evaluation import autocast_context, evaluate
from .interrupts import StopSignals, TrainingInterrupted
from .objectives import Objective
from .optim import build_optimizer
from .progress import Progress
from .run_log import RunLog, plot_loss_curve
from .schedule import warmup_cosine_scheduler
from .train_config import TrainConfig

__all__ = ["Trainer", "TrainingInterrupted", "resolve_dtype"]


def resolve_dtype(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a ``TrainConfig.dtype`` on ``device`` (``None``: fp32, no autocast).

    >>> resolve_dtype("auto", torch.device("cpu")) is None, resolve_dtype("bf16", torch.device("cpu"))
    (True, torch.bfloat16)
    """
    cuda = device.type == "cuda"
    if name == "auto":
        return (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else None
    if name == "fp16" and not cuda:
        raise ValueError(f"dtype 'fp16' needs a CUDA device (loss scaling), got device {device.type!r}; "
                         "use 'bf16' or 'fp32' on the CPU")
    if name == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise ValueError("dtype 'bf16' is not supported by this GPU, got 'bf16'; use 'fp16' or 'fp32'")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def _objective_generator(seed: int, index: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + index * 7_919 + rank * 104_729) % (2**63))


class Trainer:
    """Train ``model`` on token ids with ``objective``.

    Args:
        model: a freshly built (or pretrained) model, on the CPU; moved to the device and wrapped.
        objective: ``CausalLM()``, ``MaskedLM()``, ``SpanCorruption()`` (matching the model).
        train_ids: 1-D token ids to train on.
        val_ids: 1-D token ids to evaluate on (``None``: no evaluation).
        config: the ``TrainConfig``.
        base_vocab: the tokenizer's vocabulary size (the objective's extra ids lie above it).
        out_dir: the run folder for checkpoints and logs (``None``: nothing is written).
        tokenizer: saved with every checkpoint, when given.
        context: a ``DistributedContext`` (default: from torchrun's environment, or one process).
        run_info: more entries for ``run.json`` (data, tokenizer, preset ...).
        bar: progress bar (``True``), plain lines (``False``), by terminal (``None``).

    Raises:
        ValueError: for a ``seq_len`` beyond the model's context, a batch size that the
            processes cannot share, or too little data (from ``RandomWindows``).
    """

    def __init__(self, model: nn.Module, objective: Objective, train_ids: Tensor, val_ids: Tensor | None = None, *,
                 config: TrainConfig, base_vocab: int, out_dir=None, tokenizer=None,
                 context: DistributedContext | None = None, run_info: dict | None = None,
                 bar: bool | None = None) -> None:
        from .data import RandomWindows

        self.config, self.objective, self.base_vocab, self.tokenizer = config, objective, base_vocab, tokenizer
        self.model_config = model.config
        limit = model.config.max_positions
        if limit is not None and config.seq_len > limit:
            raise ValueError(f"seq_len must be <= the model's context max_positions = {limit}, got {config.seq_len}")
        self.context = context or init_distributed(config.device)
        if config.batch_size % self.context.world_size:
            raise ValueError(f"batch_size must be divisible by the number of processes ({self.context.world_size}), "
                             f"got {config.batch_size}")
        self.windows = RandomWindows(train_ids, config.seq_len, config.batch_size, config.seed)
        self.val_ids = val_ids
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.device = self.context.device
        self.dtype = resolve_dtype(config.dtype, self.device)
        self.module = model.to(self.device)
        self.model = wrap_model(self.module, self.context, config.strategy)
        self.optimizer = build_optimizer(self.model, lr=config.lr, weight_decay=config.weight_decay,
                                         betas=(config.beta1, config.beta2), eps=config.eps)
        self.scheduler = warmup_cosine_scheduler(self.optimizer, total_steps=config.steps,
                                                 warmup_steps=config.warmup_steps, min_lr_ratio=config.min_lr_ratio)
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None
        self.run_info = {**(run_info or {}), "model_config": model.config.to_dict(),
                         "objective": objective.to_dict(), "train": config.to_dict(), "base_vocab": base_vocab,
                         "world_size": self.context.world_size}
        if self.out_dir is not None and self.context.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.log = RunLog(self.out_dir / "log.jsonl" if self.out_dir is not None and self.context.is_main else None)
        self.step, self.tokens, self.elapsed, self._saved_step, self._saved_path = 0, 0, 0.0, None, None
        self._bar = bar
        torch.manual_seed(config.seed + 1_000 * self.context.rank)  # dropout; a resume restores the saved state

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write a checkpoint of the current step (every rank must call it)."""
        if self.out_dir is None:
            return None
        export = None
        if self.config.strategy == "fsdp" and self.context.distributed and self.context.is_main:
            with torch.random.fork_rng(devices=[]):  # building the copy must not move the training RNG
                export = self.objective.build_model(self.model_config)
        path = save_checkpoint(self.out_dir, self.step, model=self.model, export_model=export,
                               optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
                               context=self.context, run_info=self.run_info, tokenizer=self.tokenizer,
                               extra={"tokens": self.tokens, "elapsed_s": self.elapsed},
                               keep=self.config.keep_checkpoints)
        self._saved_step, self._saved_path = self.step, path
        return path

    def resume(self, checkpoint=None) -> int:
        """Continue from ``checkpoint`` (default: the newest in ``out_dir``); returns its step.

        Raises:
            FileNotFoundError: if there is no checkpoint.
            ValueError: if the checkpoint holds another model (the differing fields are listed).
        """
        import json

        checkpoint = Path(checkpoint) if checkpoint is not None else (
            latest_checkpoint(self.out_dir) if self.out_dir is not None else None)
        if checkpoint is None:
            raise FileNotFoundError(f"no checkpoint to resume from in {self.out_dir}")
        saved = json.loads((checkpoint / RUN_FILE).read_text(encoding="utf-8"))
        check_same_model(saved.get("model_config", {}), self.model_config.to_dict(), str(checkpoint.parent.parent))
        if saved.get("objective", {}).get("name") != self.objective.name:
            raise ValueError(f"{checkpoint} was trained with objective {saved.get('objective', {}).get('name')!r}, "
                             f"got {self.objective.name!r}")
        state = load_checkpoint(checkpoint, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                                scaler=self.scaler, context=self.context)
        self.step, self.tokens, self.elapsed = int(state["step"]), int(state["tokens"]), float(state["elapsed_s"])
        self._saved_step, self._saved_path = self.step, checkpoint
        self.log.truncate_after(self.step)
        return self.step

    # -- the loop ------------------------------------------------------------------------------
    def evaluate(self) -> dict:
        """Validation loss and perplexity now (``{}`` without validation data). Every rank evaluates
        the same batches (no gradients: little memory), so the result does not depend on the
        number of processes."""
        if self.val_ids is None:
            return {}
        return evaluate(self.model, self.objective, self.val_ids, config=self.model_config,
                        seq_len=self.config.seq_len, batch_size=self.config.batch_size,
                        base_vocab=self.base_vocab, max_batches=self.config.eval_batches, device=self.device,
                        dtype=self.dtype, seed=self.config.seed)

    def _sync_context(self, last: bool):
        """Skip the gradient all-reduce on all but the last micro-batch."""
        if not self.context.distributed or last:
            if self.config.strategy == "fsdp" and self.context.distributed:
                self.model.set_requires_gradient_sync(True)
            return contextlib.nullcontext()
        if self.config.strategy == "fsdp":
            self.model.set_requires_gradient_sync(False)
            return contextlib.nullcontext()
        return self.model.no_sync()

    # --8<-- [start:train_step]
    def train_step(self) -> dict:
        """One optimizer step (``grad_accum`` micro-batches); returns its log record."""
        config, context = self.config, self.context
        start = time.perf_counter()
        self.model.train()
        lr = self.optimizer.param_groups[0]["lr"]
        total = torch.zeros((), device=self.device)
        for micro in range(config.grad_accum):
            index = self.step * config.grad_accum + micro
            window = self.windows.batch_at(
                index, rank=context.rank, world_size=context.world_size
            ).to(self.device)
            with (
                self._sync_context(micro == config.grad_accum - 1),
                autocast_context(self.device, self.dtype),
            ):
                loss, _ = self.objective.loss(
                    self.model,
                    window,
                    config=self.model_config,
                    base_vocab=self.base_vocab,
                    generator=_objective_generator(config.seed, index, context.rank),
                )
                scaled = loss / config.grad_accum
                (
                    self.scaler.scale(scaled) if self.scaler is not None else scaled
                ).backward()
            total += loss.detach().float()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), config.grad_clip or math.inf
        )
        norm = (
            norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        )  # FSDP2: a DTensor
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        loss_value = all_reduce_mean(float(total) / config.grad_accum, context)
        seconds = time.perf_counter() - start
        self.tokens += config.tokens_per_step
        self.elapsed += seconds
        return {
            "step": self.step,
            "loss": loss_value,
            "lr": lr,
            "grad_norm": float(norm),
            "tokens": self.tokens,
            "tokens_per_s": config.tokens_per_step / seconds,
            "elapsed_s": round(self.elapsed, 3),
        }
    # --8<-- [end:train_step]

    def fit(self, until: int | None = None) -> list[dict]:
        """Train from the current step up to ``until`` (default ``config.steps``); returns the log records.

        Raises:
            TrainingInterrupted: after SIGINT / SIGTERM, once the checkpoint is written.
        """
        config, context = self.config, self.context
        until = config.steps if until is None else min(until, config.steps)
        if self.step == 0 and self._saved_step is None:
            self.log.truncate_after(0)  # a new run in a folder an unfinished run left a log in
        progress = Progress(until, initial=self.step, enabled=context.is_main, bar=self._bar, every=config.log_every)
        try:
            with StopSignals() as stop:
                while self.step < until:
                    record = self.train_step()
                    self.log.append(record)
                    progress.update(self.step, loss=record["loss"], lr=record["lr"],
                                    tokens_per_s=record["tokens_per_s"])
                    if config.eval_every and self.step % config.eval_every == 0 and self.val_ids is not None:
                        self._log_eval(progress)
                    if config.save_every and self.step % config.save_every == 0:
                        self.save()
                    if any_rank(stop.signum is not None, context):
                        signum = stop.signum or signal.SIGTERM
                        path = self.save() if self._saved_step != self.step else self._saved_path
                        progress.write(f"stopped by {signal.Signals(signum).name} at step {self.step}"
                                       + (f"; checkpoint saved in {path}" if path else ""))
                        raise TrainingInterrupted(signum, self.step, path)
            if self.step == config.steps and self.val_ids is not None and not (
                    config.eval_every and self.step % config.eval_every == 0):
                self._log_eval(progress)
            if self._saved_step != self.step:
                self.save()
        finally:
            progress.close()
            self._plot(progress)
        return self.log.records

    def _log_eval(self, progress: Progress) -> None:
        result = self.evaluate()
        self.log.append({"step": self.step, **result})
        progress.write(f"step {self.step}: validation loss {result['eval_loss']:.4f}, "
                       f"perplexity {result['eval_ppl']:.2f}")

    def _plot(self, progress: Progress) -> None:
        if not (self.config.plot and self.out_dir is not None and self.context.is_main and self.log.records):
            return
        try:
            plot_loss_curve(self.log.records, self.out_dir / "loss.png", title=self.out_dir.name)
        except ImportError:
            progress.write("matplotlib is not installed: no loss.png (pip install matplotlib)")
