"""Chapter 4's comparison: causal decoder, prefix LM and encoder-decoder on one seq2seq task.

``python -m llmarch.lab.prefix_compare`` (or ``python -m llmarch lab prefix-compare``) trains the
three architectures on the digit-sorting task of ``llmarch.lab.seq2seq_task`` -- the same
examples in the same order, the same number of steps, the same optimizer and schedule, the same
loss (cross-entropy of the target tokens, ``EOS`` included) -- once per seed, and reports the
held-out loss and exact match (greedy decoding with ``generate``):

* ``causal``: ``DecoderOnlyLM`` on ``source SEP target EOS``, causal mask;
* ``prefix``: the same model and rows with ``prefix_lengths = len(source SEP)`` (the source is
  read bidirectionally) and ``config.prefix_lm=True`` for ``generate``;
* ``encdec``: ``EncoderDecoderLM`` with half of the layers in the encoder and half in the decoder,
  and about the same number of parameters (``llmarch.lab.matched_models``). It does *less*
  arithmetic per example -- each token passes through half of the layers; the FLOPs of a
  training step, counted by ``torch.utils.flop_counter``, are reported with the results.

Every model is pre-LN with learned absolute positions and GELU, initialised as GPT-2, no dropout.
Two conditions are run, both with sources of 3 to 8 digits: ``varied`` -- each source as it is,
so in a decoder-only row the answer starts at a position that depends on the source's length --
and ``padded`` -- every source left-padded with ``PAD`` tokens to 8, which the models read, so
the answer always starts at the same position (``seq2seq_task.source_field``). The decoder-only
rows read ``EOS`` as their last input too (its output is not used), one token more per example
than the encoder-decoder, which reads ``source`` and ``SEP target``.

Each (condition, architecture, seed) trains in its own process with one thread, so its numbers
do not depend on what runs beside it. The result is cached by ``llmarch.lab.run_cache`` under a
SHA-256 of the settings, the torch version and the code (``llmarch/nn``, ``models``,
``training``, this file, the task and the models' construction), so the site build trains only when one of them changed.
Tables, text and figures are made from the result by ``llmarch.lab.prefix_compare_report``
(not part of the hash: changing how a result is shown does not train again).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .matched_models import ARCHITECTURES, eager_twin, matched_model
from .seq2seq_task import EOS, PAD, SEP, VOCAB_SIZE, exact_match, model_inputs, target_loss

__all__ = ["ARCHITECTURES", "NAMES", "SETTINGS", "QUICK_SETTINGS", "cache_key", "build_model", "train_one",
           "prefix_compare"]

NAMES = {"causal": "causal decoder", "prefix": "prefix LM", "encdec": "encoder-decoder"}

#: What is trained: two task conditions, the held-out split, the model shape, the training run, the seeds.
SETTINGS: dict = {
    "tasks": {"varied": {"min_len": 3, "max_len": 8, "pad_to": None},
              "padded": {"min_len": 3, "max_len": 8, "pad_to": 8}},
    "heldout": {"modulus": 10, "size": 512, "seed": 1234},
    "model": {"d_model": 64, "num_heads": 4, "num_layers": 4, "d_ff": 256},
    "train": {"steps": 400, "batch_size": 32, "lr": 3e-3, "warmup_steps": 40, "min_lr_ratio": 0.1,
              "weight_decay": 0.1, "clip": 1.0, "eval_every": 50},
    "seeds": [0, 1, 2],
}

#: A short version for tests and the page's doctests (the direction of an effect, not the numbers).
QUICK_SETTINGS: dict = {
    **SETTINGS,
    "heldout": {**SETTINGS["heldout"], "size": 256},
    "train": {**SETTINGS["train"], "steps": 200, "warmup_steps": 20, "eval_every": 100},
    "seeds": [0],
}


def _source_files() -> list[Path]:
    from .run_cache import package_sources

    here = Path(__file__).resolve()
    helpers = ("matched_models.py", "seq2seq_task.py", "run_cache.py", "parallel_runs.py")
    return package_sources(here, *(here.with_name(name) for name in helpers))


def cache_key(settings: dict = SETTINGS) -> str:
    """SHA-256 of ``settings``, the torch version and the source files the run depends on.

    >>> len(cache_key()), cache_key() == cache_key(QUICK_SETTINGS)
    (64, False)
    """
    from .run_cache import source_key

    return source_key(settings, _source_files())


def build_model(arch: str, settings: dict = SETTINGS, *, seed: int = 0):
    """A fresh model of ``arch`` ("causal", "prefix" or "encdec") shaped by ``settings["model"]``:
    pre-LN, learned positions, GELU, no dropout, the task's vocabulary (``matched_model``).

    >>> sizes = {a: sum(p.numel() for p in build_model(a).parameters()) for a in ARCHITECTURES}
    >>> sizes["causal"] == sizes["prefix"], abs(sizes["encdec"] / sizes["causal"] - 1) < 0.01
    (True, True)
    """
    m = settings["model"]
    longest = max(task["max_len"] for task in settings["tasks"].values())
    return matched_model(arch, num_layers=m["num_layers"], d_ff=m["d_ff"], seed=seed, decoder_start_token_id=SEP,
                         vocab_size=VOCAB_SIZE, d_model=m["d_model"], num_heads=m["num_heads"], position="learned",
                         max_positions=2 * longest + 2, norm_position="pre", activation="gelu", dropout=0.0,
                         attention_dropout=0.0, pad_token_id=PAD, eos_token_id=EOS, bos_token_id=SEP)


def _heldout_loss(model, arch: str, inputs: dict) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        loss = float(target_loss(model, arch, inputs))
    model.train()
    return loss


def _flops_per_step(model, arch: str, inputs: dict) -> int:
    """Floating-point operations of one training step (forward + backward), counted by torch on
    the eager twin of ``model`` (so that attention is counted too)."""
    from torch.utils.flop_counter import FlopCounterMode

    twin = eager_twin(model)
    counter = FlopCounterMode(display=False)
    with counter:
        target_loss(twin, arch, inputs).backward()
    return counter.get_total_flops()


def train_one(task: str, arch: str, seed: int, settings: dict = SETTINGS, *, verbose: bool = False) -> dict:
    """Train ``arch`` with ``seed`` (initialisation and training data) on condition ``task``, one thread.

    Returns:
        ``{"task", "arch", "seed", "parameters", "flops_per_step", "tokens_read", "target_tokens",
        "records", "heldout_loss", "exact_match", "seconds", "cpu_seconds"}`` -- ``records`` holds
        ``{"step", "train_loss", "heldout_loss"}`` every ``eval_every`` steps; ``flops_per_step``
        is counted on the first batch; ``tokens_read`` counts the input tokens of all steps
        (padding excluded), ``target_tokens`` the scored ones.
    """
    import torch

    from ..training.optim import build_optimizer
    from ..training.schedule import warmup_cosine_scheduler
    from .seq2seq_task import IGNORE_INDEX, sample_examples

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train, held = settings["train"], settings["heldout"]
        condition = settings["tasks"][task]
        draw = {"min_len": condition["min_len"], "max_len": condition["max_len"], "heldout_modulus": held["modulus"]}
        pad_to = condition.get("pad_to")
        heldout = sample_examples(held["size"], split="heldout", generator=torch.Generator().manual_seed(held["seed"]),
                                  **draw)
        heldout_inputs = model_inputs(arch, heldout, pad_to)
        model = build_model(arch, settings, seed=seed).train()
        optimizer = build_optimizer(model, lr=train["lr"], weight_decay=train["weight_decay"])
        scheduler = warmup_cosine_scheduler(optimizer, total_steps=train["steps"], warmup_steps=train["warmup_steps"],
                                            min_lr_ratio=train["min_lr_ratio"])
        data = torch.Generator().manual_seed(seed)  # the same examples in the same order for every arch
        records, running, tokens_read, target_tokens, flops = [], [], 0, 0, 0
        start, cpu_start = time.perf_counter(), time.process_time()
        for step in range(1, train["steps"] + 1):
            batch = sample_examples(train["batch_size"], split="train", generator=data, **draw)
            inputs = model_inputs(arch, batch, pad_to)
            if step == 1:
                flops = _flops_per_step(model, arch, inputs)
            loss = target_loss(model, arch, inputs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), train["clip"])
            optimizer.step()
            scheduler.step()
            running.append(float(loss.detach()))
            tokens_read += int(inputs["attention_mask"].sum())
            if arch == "encdec":
                tokens_read += int(inputs["decoder_attention_mask"].sum())
            target_tokens += int((inputs["labels"] != IGNORE_INDEX).sum())
            if step % train["eval_every"] == 0 or step == train["steps"]:
                records.append({"step": step, "train_loss": sum(running) / len(running),
                                "heldout_loss": _heldout_loss(model, arch, heldout_inputs)})
                running = []
                if verbose:
                    print(f"  {task:<6} {NAMES[arch]:<15} seed {seed}: step {step:>4}/{train['steps']}  train loss "
                          f"{records[-1]['train_loss']:.3f}  held-out loss {records[-1]['heldout_loss']:.3f}",
                          file=sys.stderr, flush=True)
        match = exact_match(model, arch, heldout, pad_to)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        torch.set_num_threads(threads)
    if verbose:
        print(f"  {task:<6} {NAMES[arch]:<15} seed {seed}: exact match {100 * match:.1f}% ({cpu_seconds:.0f} CPU s)",
              file=sys.stderr, flush=True)
    return {"task": task, "arch": arch, "seed": seed, "parameters": sum(p.numel() for p in model.parameters()),
            "flops_per_step": flops, "tokens_read": tokens_read, "target_tokens": target_tokens, "records": records,
            "heldout_loss": records[-1]["heldout_loss"], "exact_match": match, "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu_seconds, 1)}


def _train_job(job: tuple) -> dict:
    task, arch, seed, settings, verbose = job
    return train_one(task, arch, seed, settings, verbose=verbose)


def _run_all(settings: dict, workers: int | None, verbose: bool) -> dict:
    from .machine import cpu_info
    from .parallel_runs import run_jobs, usable_cores

    jobs = [(task, arch, seed, settings, verbose) for task in settings["tasks"] for seed in settings["seeds"]
            for arch in ARCHITECTURES]
    workers = workers or max(1, min(len(jobs), usable_cores()))
    if verbose:
        print(f"prefix_compare: {len(jobs)} runs ({len(settings['tasks'])} conditions x {len(ARCHITECTURES)} "
              f"architectures x {len(settings['seeds'])} seeds), {workers} at a time", file=sys.stderr, flush=True)
    start = time.perf_counter()
    runs = run_jobs(_train_job, jobs, workers, progress="prefix_compare" if verbose else None)
    return {"settings": settings, "machine": cpu_info()["model"], "runs": runs,
            "wall_seconds": round(time.perf_counter() - start, 1), "workers": workers}


def prefix_compare(settings: dict = SETTINGS, *, workers: int | None = None, refresh: bool = False,
                   verbose: bool = False, cache: bool = True) -> dict:
    """Every (condition, architecture, seed) of ``settings``: from the cache, or trained now and cached.

    Args:
        settings: ``SETTINGS`` or a variant (``QUICK_SETTINGS``).
        workers: processes at a time (default: one per core, at most one per run; 1 = in this
            process).
        refresh: train even when the cache holds the result.
        verbose: progress lines on stderr.
        cache: read and write the cache (``llmarch.lab.run_cache``).

    Returns:
        ``{"key", "settings", "machine", "runs", "wall_seconds", "workers"}``; ``runs`` holds one
        ``train_one`` result per run.
    """
    from .run_cache import cached_run

    key = cache_key(settings)
    return cached_run("prefix_compare", key, lambda: {"key": key, **_run_all(settings, workers, verbose)},
                      refresh=refresh, cache=cache, verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    from .lab_command import lab_parser, report_run
    from .prefix_compare_report import plot_results, summary

    args = lab_parser("python -m llmarch lab prefix-compare", __doc__, quick="one seed, fewer steps",
                      plot="the held-out loss curves").parse_args(argv)
    result = prefix_compare(QUICK_SETTINGS if args.quick else SETTINGS, workers=args.workers, refresh=args.refresh,
                            verbose=True)
    columns = len(result["settings"]["tasks"])
    return report_run(args, result, summary, plot_results, columns=columns, size=(5 * columns, 3.8))


if __name__ == "__main__":
    sys.exit(main())
