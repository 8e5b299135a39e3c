"""Chapter 5.2 and 5.3: one matched pair -- a causal LM and a bidirectional masked LM -- measured.

``train_pair_member(kind, seed)`` trains one member with ``llmarch.lab.text_models`` (the same
corpus, shape, positions, steps, batch and windows for both kinds: the same tokens read) and then,
on one fixed set of held-out windows, measures what the two pages need, for the trained model and
for the same model at initialisation:

* section 5.2 (full-rank attention): every head's attention matrix on each window, its singular
  values divided by the largest, the numerical rank (``sigma_i > tol * sigma_max``), the effective
  rank of Roy & Vetterli (2007) and the smallest normalised singular value; and how far each
  layer's token representations are from "all tokens equal" and from rank one (Dong et al. 2021);
* section 5.3 (a harder task): the predicted tokens and the FLOPs (``torch.utils.flop_counter`` on
  an eager copy) of a step, the loss curves, the held-out loss per predicted token, both kinds'
  losses on the *same* hidden characters, and linear probes of every layer.

Both models use rotary positions: with learned absolute positions the masked LM stays near the
loss of guessing by character frequency for the whole budget (it must first learn from the
position table which neighbour is which; ``--position learned`` shows it), and there would be
little to compare. The result holds numbers only (no models), cached by ``llmarch.lab.run_cache``
under a hash of the settings and the code; the pages' reports are ``why_rank`` and
``why_harder_task``.
"""

from __future__ import annotations

import time
from pathlib import Path

from .text_models import KINDS

__all__ = ["KINDS", "SETTINGS", "QUICK_SETTINGS", "cache_key", "train_pair_member", "causal_vs_mlm"]

#: The full run (the pages' figures): 2 kinds x 3 seeds.
SETTINGS: dict = {
    "corpus": "psalms", "position": "rotary",
    "model": {"d_model": 64, "num_layers": 2, "num_heads": 4, "d_ff": 256},
    "train": {"seq_len": 64, "batch_size": 16, "steps": 400, "lr": 3e-3, "warmup_steps": 40, "eval_every": 50,
              "eval_batches": 10},
    "heldout": {"windows": 64, "probe_train": 48, "rank_windows": 16, "mask_seed": 1234},
    "rank_tol": 1e-3, "word_cap": 6, "probe_l2": 1e-3,
    "ngram": {"contexts": [[0, 0], [1, 0], [2, 0], [1, 1], [4, 0], [2, 2]], "alpha": 0.01},
    "seeds": [0, 1, 2],
}

#: A short version for tests and the pages' doctests (the direction of an effect, not the numbers).
QUICK_SETTINGS: dict = {
    **SETTINGS,
    "train": {**SETTINGS["train"], "batch_size": 8, "steps": 80, "warmup_steps": 8, "eval_every": 40,
              "eval_batches": 4},
    "heldout": {**SETTINGS["heldout"], "windows": 32, "probe_train": 24, "rank_windows": 4},
    "seeds": [0],
}


def _source_files() -> list[Path]:
    from .run_cache import package_sources

    here = Path(__file__).resolve()
    helpers = ("why_causal_vs_mlm_measures.py", "text_models.py", "inspect_layers.py", "linear_probe.py",
               "run_cache.py", "parallel_runs.py")
    return package_sources(here, *(here.with_name(name) for name in helpers))


def cache_key(settings: dict = SETTINGS) -> str:
    """SHA-256 of ``settings``, the torch version and the source files the run depends on.

    >>> len(cache_key()), cache_key() == cache_key(QUICK_SETTINGS)
    (64, False)
    """
    from .run_cache import source_key

    return source_key(settings, _source_files())


def train_pair_member(kind: str, seed: int, settings: dict = SETTINGS) -> dict:
    """Train ``kind`` ("causal" or "bidirectional") with ``seed`` on one thread, then measure it
    and its initialisation (``why_causal_vs_mlm_measures.measure_member``).

    Returns:
        ``measure_member``'s numbers plus ``"kind"``, ``"seed"``, ``"curve"`` (mean training loss
        and held-out loss per predicted token every ``eval_every`` steps), ``"seconds"`` (training,
        wall) and ``"cpu_seconds"`` (training and measuring).
    """
    import torch

    from .text_models import train_text_model
    from .why_causal_vs_mlm_measures import measure_member

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    cpu = time.process_time()
    run = train_text_model(kind, corpus=settings["corpus"], position=settings["position"], model=settings["model"],
                           train=settings["train"], seed=seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = measure_member(kind, seed, run, settings)
    finally:
        torch.set_num_threads(threads)
    every, losses, curve = settings["train"]["eval_every"], [], []
    for record in run.records:
        losses += [record["loss"]] if "loss" in record else []
        if "eval_loss" in record:
            curve.append({"step": record["step"], "train_loss": sum(losses[-every:]) / len(losses[-every:]),
                          "eval_loss": record["eval_loss"]})
    return {"kind": kind, "seed": seed, **out, "curve": curve, "seconds": run.seconds,
            "cpu_seconds": round(time.process_time() - cpu, 1)}


def _job(job: tuple) -> dict:
    return train_pair_member(*job)


def _run_all(settings: dict, workers: int | None) -> dict:
    from .machine import cpu_info
    from .parallel_runs import run_jobs, usable_cores
    from .why_causal_vs_mlm_measures import ngram_table

    jobs = [(kind, seed, settings) for seed in settings["seeds"] for kind in KINDS]
    workers = workers or max(1, min(len(jobs), usable_cores()))
    start, cpu = time.perf_counter(), time.process_time()
    runs = run_jobs(_job, jobs, workers, progress="causal vs masked LM")
    ngram = ngram_table(settings)
    here = time.process_time() - cpu if workers > 1 else 0.0     # with one worker the jobs ran here
    return {"settings": settings, "machine": cpu_info()["model"], "runs": runs, "ngram": ngram,
            "wall_seconds": round(time.perf_counter() - start, 1), "workers": workers,
            "cpu_seconds": round(sum(r["cpu_seconds"] for r in runs) + here, 1)}


def causal_vs_mlm(settings: dict = SETTINGS, *, workers: int | None = None, refresh: bool = False,
                  verbose: bool = False, cache: bool = True) -> dict:
    """Every (kind, seed) of ``settings``: from the cache, or trained and measured now and cached.

    Args:
        settings: ``SETTINGS`` or a variant (``QUICK_SETTINGS``).
        workers: processes at a time (default: one per core, at most one per run; 1 = here).
        refresh: train even when the cache holds the result.
        verbose: name the cache file on stderr.
        cache: read and write the cache.

    Returns:
        ``{"key", "settings", "machine", "runs", "ngram", "wall_seconds", "workers",
        "cpu_seconds"}``: one ``train_pair_member`` result per (kind, seed) in ``runs``; the
        count-based cross-entropies of ``settings["ngram"]`` in ``ngram``; ``cpu_seconds``: all.
    """
    from .run_cache import cached_run

    key = cache_key(settings)
    return cached_run("why_causal_vs_mlm", key, lambda: {"key": key, **_run_all(settings, workers)},
                      refresh=refresh, cache=cache, verbose=verbose)
