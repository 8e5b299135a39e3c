"""Section 5.4: in-context learning in a causal decoder and in a prefix LM, trained alike.

``python -m llmarch lab in-context`` trains small Transformers on in-context linear regression
(``llmarch.lab.in_context_tasks``: each prompt its own ``w``, ``k`` demonstrations packed one per
token, then a query) and measures the error on held-out prompts for every ``k`` from 0 to
``max_examples``, against the zero predictor, one gradient-descent step (= one linear attention
head) and least squares, computed on the same prompts. Two variants, everything else equal:

* ``causal``: the decoder-only mask -- a demonstration sees only the demonstrations before it;
* ``prefix``: a prefix LM whose prefix is the whole prompt (``prefix_lm_mask`` with the prompt's
  length) -- every token sees every other.

Both are the same ``TransformerStack`` (pre-LN, GELU, no positional encoding: the query is
flagged in its token, and the causal mask carries order by itself) with a linear read-in and a
read-out at the query token; same initialisation per seed, same prompts in the same order, same
steps, and the same loss: the squared error of the query's answer only. ``k`` is drawn per step
from 0 to ``max_examples``. In both the query sees every demonstration; the variants differ only
in what the *demonstrations* see, so with one layer they compute exactly the same function.

Each (variant, seed) trains in its own process with one thread. The result is cached by
``llmarch.lab.run_cache`` under a hash of the settings and the code; text, tables and figures
come from ``llmarch.lab.why_in_context_report``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from .in_context_tasks import (
    Prompts,
    gd_step_prediction,
    least_squares_prediction,
    normalized_error,
    prompt_tokens,
    sample_prompts,
)

__all__ = ["VARIANTS", "NAMES", "SETTINGS", "QUICK_SETTINGS", "InContextRegressor", "build_model", "heldout_prompts",
           "evaluate", "baselines", "train_one", "why_in_context", "cache_key", "main"]

VARIANTS = ("causal", "prefix")
NAMES = {"causal": "causal decoder", "prefix": "prefix LM"}

#: The full run (feeds the page): the task, the held-out prompts, the model, the training, the seeds.
SETTINGS: dict = {
    "task": {"dim": 4, "max_examples": 10},
    "heldout": {"prompts": 2000, "seed": 1234},
    "model": {"d_model": 64, "num_heads": 4, "num_layers": 2, "d_ff": 256},
    "train": {"steps": 900, "batch_size": 64, "lr": 3e-3, "warmup_steps": 50, "min_lr_ratio": 0.1,
              "weight_decay": 0.0, "clip": 1.0, "eval_every": 100},
    "seeds": [0, 1, 2],
}

#: A short version for the page's doctests and the tests: one layer, fewer steps and prompts.
QUICK_SETTINGS: dict = {
    **SETTINGS,
    "heldout": {"prompts": 500, "seed": 1234},
    "model": {**SETTINGS["model"], "num_layers": 1},
    "train": {**SETTINGS["train"], "steps": 300, "warmup_steps": 30, "eval_every": 150},
    "seeds": [0],
}


class InContextRegressor(nn.Module):
    """A linear read-in, a ``TransformerStack`` and a linear read-out of the query's answer.

    Args:
        dim: ``d``, the size of ``x`` (tokens have ``d + 2`` numbers).
        d_model, num_heads, num_layers, d_ff: the stack's shape.

    Shapes: tokens ``(batch, k + 1, d + 2)`` -> answers ``(batch,)``.

    >>> model = InContextRegressor(4, d_model=32, num_heads=2, num_layers=1, d_ff=64)
    >>> model(torch.zeros(3, 6, 6), "prefix").shape
    torch.Size([3])
    """

    def __init__(self, dim: int, *, d_model: int, num_heads: int, num_layers: int, d_ff: int) -> None:
        super().__init__()
        from ..models.config import ModelConfig
        from ..models.init import init_weights
        from ..models.stack import TransformerStack

        config = ModelConfig("decoder_only", vocab_size=1, d_model=d_model, num_layers=num_layers,
                             num_heads=num_heads, d_ff=d_ff, position="none", norm_position="pre",
                             activation="gelu", dropout=0.0, attention_dropout=0.0)
        self.read_in = nn.Linear(dim + 2, d_model)
        self.stack = TransformerStack(config, num_layers, causal=True)
        self.read_out = nn.Linear(d_model, 1)
        init_weights(self, residual_layers=num_layers)  # GPT-2's scheme

    # --8<-- [start:forward]
    def forward(self, tokens: Tensor, variant: str) -> Tensor:
        """Answers ``(batch,)`` for ``tokens`` ``(batch, k + 1, d + 2)``, read with the
        mask of ``variant`` ("causal" or "prefix")."""
        from ..nn.masks import prefix_lm_mask

        h = self.read_in(tokens)
        if variant == "causal":          # a demonstration sees those before it
            h = self.stack(h)
        elif variant == "prefix":        # the whole prompt is the prefix
            n = tokens.shape[1]
            mask = prefix_lm_mask(n, n, device=h.device)
            h = self.stack(h, mask=mask, is_causal=False)
        else:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, "
                             f"got {variant!r}")
        return self.read_out(h[:, -1])[:, 0]   # the answer, at the query token
    # --8<-- [end:forward]


def build_model(settings: dict = SETTINGS, *, seed: int = 0) -> InContextRegressor:
    """A fresh model shaped by ``settings["model"]``, initialised from ``seed`` (the same for
    both variants: the mask is not a parameter). The global random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return InContextRegressor(settings["task"]["dim"], **settings["model"])


def heldout_prompts(settings: dict = SETTINGS) -> list[Prompts]:
    """The held-out prompts, one batch per ``k = 0 .. max_examples``, the same for every run.

    >>> [p.x.shape[1] - 1 for p in heldout_prompts(QUICK_SETTINGS)][:4]
    [0, 1, 2, 3]
    """
    task, held = settings["task"], settings["heldout"]
    generator = torch.Generator().manual_seed(held["seed"])
    return [sample_prompts(held["prompts"], k, task["dim"], generator=generator)
            for k in range(task["max_examples"] + 1)]


def evaluate(model: InContextRegressor, variant: str, prompts: list[Prompts]) -> dict:
    """The model's normalised error on each batch of ``prompts`` and how far its answers are from
    one GD step's and from least squares' (mean squared difference / d), in eval mode.

    Returns:
        ``{"error": [...], "to_gd": [...], "to_least_squares": [...]}``, one value per batch.
    """
    was_training = model.training
    model.eval()
    out = {"error": [], "to_gd": [], "to_least_squares": []}
    with torch.no_grad():
        for batch in prompts:
            answer, dim = model(prompt_tokens(batch), variant), batch.x.shape[-1]
            out["error"].append(normalized_error(answer, batch))
            out["to_gd"].append(float(((answer - gd_step_prediction(batch)) ** 2).mean() / dim))
            out["to_least_squares"].append(float(((answer - least_squares_prediction(batch)) ** 2).mean() / dim))
    model.train(was_training)
    return out


def baselines(prompts: list[Prompts]) -> dict:
    """The yardsticks' normalised errors on ``prompts``: ``zero``, ``gd`` (one step, the best
    step size) and ``least_squares``, one value per batch."""
    return {"zero": [normalized_error(torch.zeros_like(p.y[:, -1]), p) for p in prompts],
            "gd": [normalized_error(gd_step_prediction(p), p) for p in prompts],
            "least_squares": [normalized_error(least_squares_prediction(p), p) for p in prompts]}


def train_one(variant: str, seed: int, settings: dict = SETTINGS) -> dict:
    """Train ``variant`` with ``seed`` (initialisation and prompts), one thread.

    Returns:
        ``{"variant", "seed", "parameters", "records", "error", "to_gd", "to_least_squares",
        "seconds", "cpu_seconds"}``: ``error`` etc. per ``k`` on the held-out prompts (see
        :func:`evaluate`); ``records``: ``{"step", "train_loss", "heldout_error"}`` every
        ``eval_every`` steps, the held-out error at ``k = max_examples``.
    """
    from ..training.optim import build_optimizer
    from ..training.schedule import warmup_cosine_scheduler

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        task, train = settings["task"], settings["train"]
        held = heldout_prompts(settings)
        model = build_model(settings, seed=seed).train()
        optimizer = build_optimizer(model, lr=train["lr"], weight_decay=train["weight_decay"])
        scheduler = warmup_cosine_scheduler(optimizer, total_steps=train["steps"], warmup_steps=train["warmup_steps"],
                                            min_lr_ratio=train["min_lr_ratio"])
        data = torch.Generator().manual_seed(seed)  # the same prompts in the same order for both variants
        records, running = [], []
        start, cpu_start = time.perf_counter(), time.process_time()
        for step in range(1, train["steps"] + 1):
            k = int(torch.randint(0, task["max_examples"] + 1, (1,), generator=data))
            batch = sample_prompts(train["batch_size"], k, task["dim"], generator=data)
            loss = ((model(prompt_tokens(batch), variant) - batch.y[:, -1]) ** 2).mean() / task["dim"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), train["clip"])
            optimizer.step()
            scheduler.step()
            running.append(float(loss.detach()))
            if step % train["eval_every"] == 0 or step == train["steps"]:
                error = evaluate(model, variant, held[-1:])["error"][0]
                records.append({"step": step, "train_loss": sum(running) / len(running), "heldout_error": error})
                running = []
        final = evaluate(model, variant, held)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        torch.set_num_threads(threads)
    return {"variant": variant, "seed": seed, "parameters": sum(p.numel() for p in model.parameters()),
            "records": records, **final, "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1)}


def _train_job(job: tuple) -> dict:
    return train_one(*job)


def _source_files() -> list[Path]:
    from .run_cache import package_sources

    here = Path(__file__).resolve()
    return package_sources(here, here.with_name("in_context_tasks.py"), here.with_name("run_cache.py"),
                           here.with_name("parallel_runs.py"))


def cache_key(settings: dict = SETTINGS) -> str:
    """SHA-256 of ``settings``, the torch version and the code the run depends on.

    >>> len(cache_key()), cache_key() == cache_key(QUICK_SETTINGS)
    (64, False)
    """
    from .run_cache import source_key

    return source_key(settings, _source_files())


def _run_all(settings: dict, workers: int | None, progress: bool) -> dict:
    from .machine import cpu_info
    from .parallel_runs import run_jobs, usable_cores

    jobs = [(variant, seed, settings) for seed in settings["seeds"] for variant in VARIANTS]
    workers = workers or max(1, min(len(jobs), usable_cores()))
    start = time.perf_counter()
    runs = run_jobs(_train_job, jobs, workers, progress="in-context" if progress else None)
    return {"settings": settings, "machine": cpu_info()["model"], "runs": runs,
            "baselines": baselines(heldout_prompts(settings)),
            "wall_seconds": round(time.perf_counter() - start, 1), "workers": workers}


def why_in_context(settings: dict = SETTINGS, *, workers: int | None = None, refresh: bool = False,
                   verbose: bool = False, cache: bool = True) -> dict:
    """Every (variant, seed) of ``settings``: from the cache, or trained now and cached.

    Args:
        settings: ``SETTINGS`` or a variant (``QUICK_SETTINGS``).
        workers: processes at a time (default: one per core, at most one per run; 1 = here).
        refresh: train even when the cache holds the result.
        verbose: progress on stderr.
        cache: read and write the cache (``llmarch.lab.run_cache``).

    Returns:
        ``{"key", "settings", "machine", "runs", "baselines", "wall_seconds", "workers"}``.
    """
    from .run_cache import cached_run

    key = cache_key(settings)
    return cached_run("why_in_context", key, lambda: {"key": key, **_run_all(settings, workers, verbose)},
                      refresh=refresh, cache=cache, verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    from .lab_command import lab_parser, report_run
    from .why_in_context_report import plot_results, summary

    args = lab_parser("python -m llmarch lab in-context", __doc__, quick="one seed, one layer, fewer steps",
                      plot="the error against k").parse_args(argv)
    result = why_in_context(QUICK_SETTINGS if args.quick else SETTINGS, workers=args.workers, refresh=args.refresh,
                            verbose=True)
    return report_run(args, result, summary, plot_results, columns=2, size=(10, 3.8))


if __name__ == "__main__":
    sys.exit(main())
