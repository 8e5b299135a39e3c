"""Chapter 5.1: does a decoder-only model generalise best to task types it never saw?

``python -m llmarch lab zero-shot`` trains a causal decoder, a prefix LM (non-causal decoder)
and an encoder-decoder of matched parameter count (``llmarch.lab.matched_models``) on the same
mixture of instructed digit tasks (``llmarch.lab.task_mixture``: 6 of 9 (permutation, map) task
types), the same examples in the same order, the same steps, optimizer, schedule and loss
(cross-entropy of ``answer EOS``), once per seed. Then it scores each model on unseen strings
of the six **trained** task types and on the three **held-out** task types, which no training
batch held:

* exact match of the greedy answer (``generate``) and the share of answer digits right;
* on the held-out types, the share of answers that are the answer of a *trained* task type
  instead (the model ran a task it knew);
* during training, every ``eval_every`` steps, exact match on both sets by one teacher-forced
  pass (a row is right exactly when greedy decoding would write it).

The FLOPs of a training step are counted by ``torch.utils.flop_counter``: with equal
parameters the encoder-decoder does less arithmetic (each token passes through half of the
layers). Each (architecture, seed) trains in its own process on one thread. The result is cached
by ``llmarch.lab.run_cache`` under a hash of the settings, the torch version and the code;
tables, text and figures come from ``llmarch.lab.why_zero_shot_report`` (not hashed).

This is a toy from scratch: 100 thousand parameters, one synthetic mixture, no pretraining on
text. Wang et al. (2022) trained 4.8B/11B-parameter models on 168B tokens and evaluated natural
language prompts; chapter 5.1 says what each can and cannot show.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .matched_models import ARCHITECTURES, eager_twin, matched_model
from .seq2seq_task import EOS, PAD, SEP, target_loss
from .task_mixture import (
    HELD_OUT,
    TASKS,
    TRAINED,
    VOCAB_SIZE,
    apply_task,
    greedy_answers,
    model_inputs,
    sample_tasks,
    teacher_forced_correct,
)

__all__ = ["ARCHITECTURES", "NAMES", "SETTINGS", "QUICK_SETTINGS", "cache_key", "build_model", "evaluation_sets",
           "evaluate", "train_model", "train_one", "why_zero_shot", "main"]

NAMES = {"causal": "causal decoder", "prefix": "prefix LM", "encdec": "encoder-decoder"}

#: The task, the evaluation sets, the model shape, the training run, the seeds.
SETTINGS: dict = {
    "task": {"length": 4, "heldout_modulus": 10},
    "eval": {"per_task": 128, "seed": 1234},
    "model": {"d_model": 64, "num_heads": 4, "num_layers": 2, "d_ff": 256},
    "train": {"steps": 1000, "batch_size": 32, "lr": 3e-3, "warmup_steps": 100, "min_lr_ratio": 0.1,
              "weight_decay": 0.1, "clip": 1.0, "eval_every": 100},
    "seeds": [0, 1, 2],
}

#: A short version for the page's doctests: the first 300 steps of the full run's schedule (so
#: the numbers are those of its curves at step 300), one seed, smaller test sets.
QUICK_SETTINGS: dict = {
    **SETTINGS,
    "eval": {**SETTINGS["eval"], "per_task": 64},
    "train": {**SETTINGS["train"], "stop_after": 300, "eval_every": 300},
    "seeds": [0],
}


def cache_key(settings: dict = SETTINGS) -> str:
    """The cache key of a run: SHA-256 of ``settings``, the torch version and the code it runs
    (``llmarch/nn``, ``models``, ``training``, this file and its helpers in ``llmarch/lab``).

    >>> key = cache_key()
    >>> len(key), key != cache_key(QUICK_SETTINGS), key == cache_key(dict(SETTINGS))
    (64, True, True)
    """
    from .run_cache import package_sources, source_key

    here = Path(__file__).resolve()
    helpers = [here.with_name(f"{name}.py") for name in
               ("task_mixture", "matched_models", "seq2seq_task", "run_cache", "parallel_runs")]
    return source_key(settings, package_sources(here, *helpers))


def build_model(arch: str, settings: dict = SETTINGS, *, seed: int = 0):
    """A fresh model of ``arch`` ("causal", "prefix" or "encdec") shaped by ``settings["model"]``:
    pre-LN, learned positions, GELU, no dropout, the task's vocabulary (``matched_model``).

    >>> [(a, sum(p.numel() for p in build_model(a).parameters())) for a in ARCHITECTURES]
    [('causal', 102080), ('prefix', 102080), ('encdec', 102464)]
    >>> build_model("encdec").config.d_ff                  # d_ff - d_model pays for cross-attention
    192
    """
    m = settings["model"]
    return matched_model(arch, num_layers=m["num_layers"], d_ff=m["d_ff"], seed=seed, decoder_start_token_id=SEP,
                         vocab_size=VOCAB_SIZE, d_model=m["d_model"], num_heads=m["num_heads"], position="learned",
                         max_positions=2 * settings["task"]["length"] + 4, norm_position="pre", activation="gelu",
                         dropout=0.0, attention_dropout=0.0, pad_token_id=PAD, eos_token_id=EOS, bos_token_id=SEP)


def evaluation_sets(settings: dict = SETTINGS) -> dict:
    """``{"trained": ..., "heldout": ...}``: ``eval.per_task`` unseen strings (the held-out string
    split) for every trained and every held-out task type, the same for every run."""
    import torch

    out = {}
    for name, tasks in (("trained", TRAINED), ("heldout", HELD_OUT)):
        out[name] = sample_tasks(settings["eval"]["per_task"] * len(tasks), tasks=tasks, split="heldout",
                                 generator=torch.Generator().manual_seed(settings["eval"]["seed"]), balanced=True,
                                 length=settings["task"]["length"],
                                 heldout_modulus=settings["task"]["heldout_modulus"])
    return out


def evaluate(model, arch: str, examples) -> dict:
    """Greedy answers of ``model`` on ``examples``, scored.

    Returns:
        ``{"exact_match", "digit_accuracy", "fallback", "per_task"}``: the share of rows whose
        answer (``EOS`` included) is right; of answer digits right; of rows whose digits are the
        answer of a trained task type other than the row's own; exact match per task type
        (``"permutation+map"``).
    """
    import torch

    length = examples.target.shape[1]
    answers = greedy_answers(model, arch, examples)
    right = (answers[:, :length] == examples.target).all(1) & (answers[:, length] == EOS)
    digits = examples.source[:, 2:]
    known = torch.stack([apply_task(task, digits) for task in TRAINED], dim=1)     # (n, trained, length)
    is_known = (answers[:, None, :length] == known).all(-1)
    own = torch.tensor([TRAINED.index(TASKS[i]) if TASKS[i] in TRAINED else -1 for i in examples.task.tolist()])
    is_known[own >= 0, own[own >= 0]] = False
    per_task = {"+".join(TASKS[i]): float(right[examples.task == i].float().mean())
                for i in sorted(set(examples.task.tolist()))}
    return {"exact_match": float(right.float().mean()),
            "digit_accuracy": float((answers[:, :length] == examples.target).float().mean()),
            "fallback": float((is_known.any(1) & ~right).float().mean()), "per_task": per_task}


def _flops_per_step(model, arch: str, inputs: dict) -> int:
    """FLOPs of one training step (forward + backward) on the eager twin of ``model``."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        target_loss(eager_twin(model), arch, inputs).backward()
    return counter.get_total_flops()


def train_model(arch: str, seed: int, settings: dict = SETTINGS) -> tuple:
    """Train ``arch`` with ``seed`` (initialisation and training data) on the trained task types,
    on one thread (the caller's thread count is restored).

    ``settings["train"]["stop_after"]``, when present, stops after that many steps of the
    schedule of ``steps`` steps.

    Returns:
        ``(model, info)``: the trained model (in training mode) and ``{"flops_per_step",
        "records", "seconds", "cpu_seconds"}``; ``records`` holds ``{"step", "train_loss",
        "trained", "heldout"}`` (teacher-forced exact match on ``evaluation_sets``) every
        ``eval_every`` steps and at the end.
    """
    import torch

    from ..training.optim import build_optimizer
    from ..training.schedule import warmup_cosine_scheduler

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t, task = settings["train"], settings["task"]
        sets = evaluation_sets(settings)
        model = build_model(arch, settings, seed=seed).train()
        optimizer = build_optimizer(model, lr=t["lr"], weight_decay=t["weight_decay"])
        scheduler = warmup_cosine_scheduler(optimizer, total_steps=t["steps"], warmup_steps=t["warmup_steps"],
                                            min_lr_ratio=t["min_lr_ratio"])
        data = torch.Generator().manual_seed(seed)  # the same examples in the same order for every arch
        records, running, flops = [], [], 0
        start, cpu_start = time.perf_counter(), time.process_time()
        last = t.get("stop_after", t["steps"])      # stop early on the full schedule (QUICK_SETTINGS)
        for step in range(1, last + 1):
            batch = sample_tasks(t["batch_size"], tasks=TRAINED, split="train", generator=data, **task)
            inputs = model_inputs(arch, batch)
            if step == 1:
                flops = _flops_per_step(model, arch, inputs)
            loss = target_loss(model, arch, inputs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), t["clip"])
            optimizer.step()
            scheduler.step()
            running.append(float(loss.detach()))
            if step % t["eval_every"] == 0 or step == last:
                records.append({"step": step, "train_loss": sum(running) / len(running), **{
                    name: float(teacher_forced_correct(model, arch, ex).all(1).float().mean())
                    for name, ex in sets.items()}})
                running = []
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        torch.set_num_threads(threads)
    return model, {"flops_per_step": flops, "records": records, "seconds": round(seconds, 1),
                   "cpu_seconds": round(cpu_seconds, 1)}


def train_one(arch: str, seed: int, settings: dict = SETTINGS) -> dict:
    """``train_model``, then ``evaluate`` on both evaluation sets, as plain data (for the cache).

    Returns:
        ``{"arch", "seed", "parameters", "flops_per_step", "records", "trained", "heldout",
        "seconds", "cpu_seconds"}``; ``trained`` and ``heldout`` are ``evaluate`` of the final
        model on the unseen strings of the trained and of the held-out task types;
        ``seconds`` is the training's wall time, ``cpu_seconds`` the whole job's CPU time.
    """
    import torch

    cpu_start = time.process_time()
    model, info = train_model(arch, seed, settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        final = {name: evaluate(model, arch, ex) for name, ex in evaluation_sets(settings).items()}
    finally:
        torch.set_num_threads(threads)
    info["cpu_seconds"] = round(time.process_time() - cpu_start, 1)  # the whole job: training and evaluation
    return {"arch": arch, "seed": seed, "parameters": sum(p.numel() for p in model.parameters()), **info, **final}


def _train_job(job: tuple) -> dict:
    arch, seed, settings = job
    return train_one(arch, seed, settings)


def _run_all(settings: dict, workers: int | None) -> dict:
    from .machine import cpu_info
    from .parallel_runs import run_jobs, usable_cores

    jobs = [(arch, seed, settings) for seed in settings["seeds"] for arch in ARCHITECTURES]
    workers = workers or max(1, min(len(jobs), usable_cores()))
    start = time.perf_counter()
    runs = run_jobs(_train_job, jobs, workers, progress="why_zero_shot")
    return {"settings": settings, "machine": cpu_info()["model"], "runs": runs,
            "wall_seconds": round(time.perf_counter() - start, 1), "workers": workers}


def why_zero_shot(settings: dict = SETTINGS, *, workers: int | None = None, refresh: bool = False,
                  cache: bool = True) -> dict:
    """Every (architecture, seed) of ``settings``: from the cache, or trained now and cached.

    Args:
        settings: ``SETTINGS`` or a variant (``QUICK_SETTINGS``).
        workers: processes at a time (default: one per core, at most one per run; 1 = in this
            process).
        refresh: train even when the cache holds the result.
        cache: read and write the cache (``llmarch.lab.run_cache``).

    Returns:
        ``{"key", "settings", "machine", "runs", "wall_seconds", "workers"}``; ``runs`` holds one
        ``train_one`` result per run.
    """
    from .run_cache import cached_run

    key = cache_key(settings)
    return cached_run("why_zero_shot", key, lambda: {"key": key, **_run_all(settings, workers)},
                      refresh=refresh, cache=cache)


def main(argv: list[str] | None = None) -> int:
    from .lab_command import lab_parser, report_run
    from .why_zero_shot_report import plot_results, summary

    args = lab_parser("python -m llmarch lab zero-shot", __doc__, quick="one seed, the first 300 steps",
                      plot="exact match during training").parse_args(argv)
    result = why_zero_shot(QUICK_SETTINGS if args.quick else SETTINGS, workers=args.workers, refresh=args.refresh)
    return report_run(args, result, summary, plot_results, columns=2, size=(10, 3.8))


if __name__ == "__main__":
    sys.exit(main())
