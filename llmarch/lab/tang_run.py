"""The Tang-poem GPT of the chapter "Training a small GPT": fixed seeds, cached by a hash of its inputs.

``python -m llmarch.lab.tang_run`` trains a small character-level GPT on 唐诗三百首 once per seed
with the package's :class:`~llmarch.training.trainer.Trainer`, samples from the seed-0 model at
several temperatures and prints a summary; ``--plot FILE`` also draws the loss curves (the
chapter's figure is drawn from the same result by ``docs/figures/training_tang_loss.py``).

Every seed runs in its own process with one thread, so a seed's numbers do not depend on how many
run side by side (on one machine: another CPU rounds differently). The result is cached as JSON
in ``.cache/llmarch/tang_run/`` (or ``$LLMARCH_CACHE/tang_run/``) under a SHA-256 of the settings,
the torch version and every source file the run depends on (``llmarch/nn``, ``llmarch/models``,
``llmarch/training``, this file, the corpus): the site build trains only when one of them changed.

It is the same run as the command line (``COMMAND`` below) for one seed: the vocabulary is every
character of the corpus (``--tokenizer-text all``; see :func:`llmarch.training.run_setup.prepare_data`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

from .claims import Claims, claim_lines

__all__ = ["SETTINGS", "COMMAND", "unigram_entropy", "cache_key", "train_seed", "tang_run", "claims", "summary",
           "plot_losses"]

#: What is trained: the model (a GPT-2-style preset made small), the data and the trainer options.
SETTINGS: dict = {
    "preset": "gpt2",
    "overrides": {"num_layers": 4, "d_model": 128, "num_heads": 4, "d_ff": 512, "max_positions": 64},
    "data": "tang300",
    "tokenizer_text": "all",
    "train": {"seq_len": 64, "batch_size": 16, "steps": 400, "lr": 1e-3, "warmup_steps": 40,
              "min_lr_ratio": 0.1, "weight_decay": 0.1, "eval_every": 25, "eval_batches": 50,
              "dtype": "fp32", "device": "cpu"},
    "seeds": [0, 1, 2],
    "samples": {"prompt": "《", "temperatures": [0.0, 0.7, 1.0, 1.3], "seed": 0},
}

#: The command line that trains the seed-0 model of ``SETTINGS`` (and keeps it in ``runs/tang``).
COMMAND = ("python -m llmarch train --preset gpt2 --set num_layers=4 --set d_model=128 \\\n"
           "    --set num_heads=4 --set d_ff=512 --set max_positions=64 \\\n"
           "    --data tang300 --tokenizer-text all --seq-len 64 --batch-size 16 \\\n"
           "    --steps 400 --lr 1e-3 --warmup-steps 40 --eval-every 25 --eval-batches 50 \\\n"
           "    --dtype fp32 --device cpu --out runs/tang")



def unigram_entropy(text: str) -> float:
    """The entropy, in nats per character, of the characters of ``text`` drawn independently with
    their frequencies: ``-sum(p log p)``. A model that ignores context cannot do better on this text.

    >>> round(unigram_entropy("abab"), 4), round(math.log(2), 4)
    (0.6931, 0.6931)
    """
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log(c / n) for c in counts.values())


def cache_key(settings: dict = SETTINGS) -> str:
    """SHA-256 of ``settings``, the torch version and the source files the run depends on
    (``llmarch/nn``, ``models``, ``training``, this file and the corpus).

    >>> len(cache_key()), cache_key() == cache_key({**SETTINGS, "seeds": [0]})
    (64, False)
    """
    from .run_cache import PACKAGE, package_sources, source_key

    return source_key(settings, package_sources(Path(__file__), PACKAGE / "data" / "tang300.txt"))


def train_seed(seed: int, settings: dict = SETTINGS) -> dict:
    """Train one model of ``settings`` with ``seed`` on one thread; samples too when ``seed`` is the
    samples' seed. The caller's thread count and global random state are left as they were.

    Returns:
        ``{"seed", "records", "seconds", "parameters", "vocab_size", "train_chars", "samples"}``.
    """
    import torch

    from ..training.run_setup import build_model, prepare_data
    from ..training.train_config import TrainConfig
    from ..training.trainer import Trainer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):  # the trainer seeds the global RNG (dropout)
            tokenizer, train_ids, val_ids = prepare_data(settings["data"], tokenizer_text=settings["tokenizer_text"])
            config = TrainConfig(**settings["train"], seed=seed, save_every=0, log_every=100, plot=False)
            model, objective = build_model(settings["preset"], base_vocab=tokenizer.vocab_size,
                                           seq_len=config.seq_len, eos_token_id=tokenizer.eos_token_id,
                                           overrides=settings["overrides"], seed=seed)
            trainer = Trainer(model, objective, train_ids, val_ids, config=config, base_vocab=tokenizer.vocab_size,
                              bar=False)
            start = time.perf_counter()
            records = trainer.fit()
            seconds = time.perf_counter() - start
            samples = {}
            if seed == settings["samples"]["seed"]:
                samples = _samples(model.eval(), tokenizer, settings["samples"])
    finally:
        torch.set_num_threads(threads)
    return {"seed": seed, "records": records, "seconds": round(seconds, 1),
            "parameters": sum(p.numel() for p in model.parameters()), "vocab_size": tokenizer.vocab_size,
            "train_chars": len(train_ids), "samples": samples}


def _samples(model, tokenizer, options: dict) -> dict[str, str]:
    """Temperature -> text (prompt included); temperature 0 is greedy decoding."""
    import torch

    prompt = torch.tensor([tokenizer.encode(options["prompt"])])
    budget = model.config.max_positions - prompt.shape[1]
    out = {}
    for temperature in options["temperatures"]:
        generator = torch.Generator().manual_seed(options["seed"])
        ids = model.generate(prompt, budget, do_sample=temperature > 0, temperature=temperature or 1.0,
                             generator=generator)
        out[str(temperature)] = tokenizer.decode(ids[0])
    return out


def tang_run(settings: dict = SETTINGS, *, workers: int | None = None, refresh: bool = False,
             verbose: bool = False) -> dict:
    """Every seed of ``settings``: from the cache, or trained now (``workers`` processes at a time,
    default one per seed: on 2 cores, 3 single-thread processes finish sooner than 2 rounds) and cached.

    Returns:
        ``{"key", "settings", "machine", "torch", "workers", "wall_seconds", "unigram_entropy",
        "vocab_size", "train_chars", "runs"}`` -- ``runs`` holds one :func:`train_seed` result per
        seed; ``unigram_entropy`` is that of the training split's characters, in nats.
    """
    import torch

    from ..training.corpus import load_corpus, split_text
    from .machine import cpu_info
    from .parallel_runs import run_jobs
    from .run_cache import cache_path, cached_run

    key = cache_key(settings)
    seeds = list(settings["seeds"])
    workers = workers or len(seeds)

    def run() -> dict:
        if verbose:
            print(f"training {len(seeds)} seed(s), {workers} at a time (cache: {cache_path('tang_run', key)})",
                  file=sys.stderr, flush=True)
        start = time.perf_counter()
        runs = run_jobs(_train_job, [(seed, settings) for seed in seeds], workers,
                        progress="tang_run" if verbose else None)
        wall_seconds = round(time.perf_counter() - start, 1)
        train_text, _ = split_text(load_corpus(settings["data"]))
        return {"key": key, "settings": settings, "machine": cpu_info()["model"], "torch": torch.__version__,
                "workers": workers, "wall_seconds": wall_seconds, "unigram_entropy": unigram_entropy(train_text),
                "vocab_size": runs[0]["vocab_size"], "train_chars": runs[0]["train_chars"], "runs": runs}

    return cached_run("tang_run", key, run, refresh=refresh)


def _train_job(job: tuple) -> dict:
    seed, settings = job
    return train_seed(seed, settings)


def _evals(run: dict) -> list[tuple[int, float]]:
    return [(r["step"], r["eval_loss"]) for r in run["records"] if "eval_loss" in r]


def claims(result: dict) -> Claims:
    """The statements of the chapter's page "Tang poems" about the full run, each checked
    against ``result`` (losses in nats per character)."""
    settings, runs, h = result["settings"], result["runs"], result["unigram_entropy"]
    train = settings["train"]
    log_v = math.log(result["vocab_size"])
    finals = [_evals(run)[-1][1] for run in runs]
    mean = sum(finals) / len(finals)

    def train_mean(run, last_step, n=25):   # the training loss over the n steps up to last_step
        losses = [r["loss"] for r in run["records"] if "loss" in r and last_step - n < r["step"] <= last_step]
        return sum(losses) / len(losses)

    def gap(run, step):                     # validation minus training loss at an evaluation step
        return dict(_evals(run))[step] - train_mean(run, step)

    middle = min((step for step, _ in _evals(runs[0])), key=lambda step: abs(step - train["steps"] / 2))
    passes = train["steps"] * train["batch_size"] * train["seq_len"] / result["train_chars"]
    first = [next(r["loss"] for r in run["records"] if "loss" in r) for run in runs]
    return [
        ("the first training loss is within 0.1 nats of log V (a uniform guess)",
         all(abs(loss - log_v) < 0.1 for loss in first)),
        ("every seed's validation loss is below the unigram entropy by step 75",
         all(any(step <= 75 and loss < h for step, loss in _evals(run)) for run in runs)),
        ("the train-validation gap is wider at the end than in the middle",
         all(gap(run, train["steps"]) > gap(run, middle) > 0 for run in runs)),
        ("the training text is read more than ten times", passes > 10),
        ("the seeds' final validation losses lie within 0.1 nats",
         max(finals) - min(finals) < 0.1),
        ("the final validation loss is >= 0.3 nats below the unigram entropy", h - mean >= 0.3),
        ("val perplexity 100-400; unigram 485, vocabulary 2,577 (as the page says)",
         100 <= math.exp(mean) <= 400 and round(math.exp(h)) == 485 and result["vocab_size"] == 2577),
    ]


def summary(result: dict) -> str:
    """The run in lines of at most 88 characters: data, model, each seed's losses, the spread over
    seeds, and the samples."""
    settings, runs = result["settings"], result["runs"]
    train = settings["train"]
    h = result["unigram_entropy"]
    passes = train["steps"] * train["batch_size"] * train["seq_len"] / result["train_chars"]
    lines = [(f"corpus {settings['data']}: {result['train_chars']:,} training characters, "
              f"vocabulary {result['vocab_size']:,} (<unk> + every character)"),
             (f"model: {settings['overrides']['num_layers']} layers, d_model {settings['overrides']['d_model']}, "
              f"{runs[0]['parameters']:,} parameters"),
             (f"training: {train['steps']} steps x {train['batch_size']} windows x {train['seq_len']} characters "
              f"({passes:.1f} passes over the training text)"),
             f"machine: {result['machine']}",
             (f"torch {result['torch']}; {result['workers']} process(es) of 1 thread, "
              f"{result['wall_seconds']:.0f} s in all"),
             f"unigram entropy of the training characters: {h:.3f} nats (perplexity {math.exp(h):.0f})",
             "",
             "seed  train loss  best val loss (step)  final val loss  val perplexity  seconds"]
    finals = []
    for run in runs:
        evals = _evals(run)
        best = min(evals, key=lambda e: e[1])
        train_losses = [r["loss"] for r in run["records"] if "loss" in r][-25:]
        finals.append(evals[-1][1])
        lines.append(f"{run['seed']:>4}  {sum(train_losses) / len(train_losses):>10.3f}  "
                     f"{best[1]:>13.3f} ({best[0]:>4})  {evals[-1][1]:>14.3f}  {math.exp(evals[-1][1]):>14.1f}"
                     f"  {run['seconds']:>7.0f}")
    mean = sum(finals) / len(finals)
    spread = math.sqrt(sum((f - mean) ** 2 for f in finals) / max(1, len(finals) - 1))
    lines += ["(train loss: mean over the last 25 steps' batches; val loss: the whole validation text)",
              f"final val loss over {len(finals)} seeds: {mean:.3f} +- {spread:.3f} (mean +- sample std)",
              f"  = {mean / math.log(2):.2f} bits per character, {h - mean:.3f} nats below the unigram entropy"]
    if settings == SETTINGS:
        lines += ["", "what the page says about this run, checked:", *claim_lines(claims(result))]
    samples = next((run["samples"] for run in runs if run["samples"]), {})
    for temperature, text in samples.items():
        name = "greedy" if float(temperature) == 0 else f"temperature {float(temperature):g}"
        lines += ["", f"--- sample, {name} (seed {settings['samples']['seed']} model):"]
        lines.extend(text.rstrip("\n").split("\n"))
    return "\n".join(lines)


def plot_losses(result: dict, ax, *, labels: dict | None = None) -> None:
    """Draw the training loss (seed 0, smoothed), every seed's validation loss and the unigram
    entropy (and ``log V``, a uniform guess) on the matplotlib axes ``ax``; ``labels`` overrides the
    English texts (keys ``train``, ``val``, ``unigram``, ``uniform``, ``step``, ``loss``)."""
    text = {"train": "training loss (seed {seed}, mean of 10 steps)", "val": "validation loss, seed {seed}",
            "unigram": "unigram entropy of the characters ({h:.2f} nats)",
            "uniform": "uniform over the vocabulary, log V ({v:.2f} nats)", "step": "step",
            "loss": "loss (nats / character)", **(labels or {})}
    first = result["runs"][0]
    steps = [r["step"] for r in first["records"] if "loss" in r]
    losses = [r["loss"] for r in first["records"] if "loss" in r]
    smooth = [sum(losses[max(0, i - 9): i + 1]) / len(losses[max(0, i - 9): i + 1]) for i in range(len(losses))]
    ax.plot(steps, smooth, color="#4c72b0", linewidth=1.2, label=text["train"].format(seed=first["seed"]))
    for n, run in enumerate(result["runs"]):
        evals = _evals(run)
        ax.plot(*zip(*evals), "o-", markersize=2.5, linewidth=1.2 if n == 0 else 0.8, color="#c44e52",
                alpha=1.0 if n == 0 else 0.45, label=text["val"].format(seed=run["seed"]))
    h = result["unigram_entropy"]
    ax.axhline(h, color="#555555", linestyle="--", linewidth=1, label=text["unigram"].format(h=h))
    ax.set_xlabel(text["step"])
    ax.set_ylabel(text["loss"])
    uniform = math.log(result["vocab_size"])
    ax.axhline(uniform, color="#999999", linestyle=":", linewidth=1, label=text["uniform"].format(v=uniform))
    ax.set_ylim(max(0.0, min(smooth) - 0.5), uniform + 0.3)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmarch.lab.tang_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=None, help="training processes at a time (default: one "
                        "per seed)")
    parser.add_argument("--refresh", action="store_true", help="train again even when the cache holds the result")
    parser.add_argument("--plot", metavar="FILE", help="also draw the loss curves into FILE (.png, .svg ...)")
    args = parser.parse_args(argv)
    result = tang_run(workers=args.workers, refresh=args.refresh, verbose=True)
    print(summary(result))
    if args.plot:
        from .figure_file import save_figure

        save_figure(args.plot, lambda axes: plot_losses(result, axes[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
