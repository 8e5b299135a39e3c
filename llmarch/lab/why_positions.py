"""Chapter 5.5: causal attention carries position information by itself (Haviv et al., 2022).

``python -m llmarch lab positions`` trains the matched pair of ``llmarch.lab.text_models`` -- a
causal language model and a bidirectional masked language model of one shape -- on the same text
with each of five kinds of positions (learned, sinusoidal, rotary, ALiBi, none), one run per
(kind, position, seed), and reports:

* the held-out loss of every run (``Trainer``'s validation loss at the end; nats per predicted
  token: every next token for the causal model, the 15% masked tokens for the masked one);
* for the runs whose positions are in ``settings["probe"]["positions"]`` (``none`` and
  ``learned``): how well a linear probe (closed-form ridge, ``llmarch.lab.linear_probe``) reads the
  absolute position ``0 .. seq_len - 1`` of a token from each layer's hidden states
  (``llmarch.lab.inspect_layers.layer_states``), fitted on held-out windows and scored on other
  held-out windows. The probe is computed inside the run's job: the cache stores numbers, not
  models.

Sinusoidal runs scale the token embeddings by ``sqrt(d_model)`` as the original Transformer
does (``settings["model_options"]``); without it, sinusoids of amplitude 1 drown token
embeddings initialised with a standard deviation of 0.02 and the toy did not learn at all.

Each run trains in its own process with one thread. The result is cached by
``llmarch.lab.run_cache`` under a SHA-256 of the settings, the torch version and the code
(``llmarch/nn``, ``models``, ``training``, the chapter-5 helpers, ``tang_run``'s unigram entropy,
this file, the corpus).
Tables, text and figures are made by ``llmarch.lab.why_positions_report`` (not hashed).
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path

from .text_models import KINDS

__all__ = ["KINDS", "POSITIONS", "SETTINGS", "QUICK_SETTINGS", "check_settings", "cache_key", "permutation_gap",
           "probe_windows", "position_probe", "train_one", "why_positions"]

#: The positions compared, in the order of the chapter's table (``ModelConfig.position``).
POSITIONS = ("learned", "sinusoidal", "rotary", "alibi", "none")

#: The full run: the corpus, the model shape, the training run, what is probed, the seeds.
SETTINGS: dict = {
    "corpus": "psalms",
    "model": {"d_model": 64, "num_layers": 2, "num_heads": 4, "d_ff": 256},
    "model_options": {"sinusoidal": {"embedding_scale": 8.0}},   # sqrt(d_model), as the Transformer
    "train": {"seq_len": 32, "batch_size": 16, "steps": 240, "lr": 3e-3, "warmup_steps": 24, "eval_every": 0,
              "eval_batches": 20},
    "positions": list(POSITIONS),
    "probe": {"positions": ["none", "learned"], "windows": 64, "l2": 1e-3},
    "seeds": [0, 1, 2],
}

#: A short version for tests and the page's doctests (the direction of an effect, not the numbers).
QUICK_SETTINGS: dict = {
    **SETTINGS,
    "train": {**SETTINGS["train"], "steps": 120, "warmup_steps": 12, "eval_batches": 5},
    "positions": ["none"],
    "probe": {**SETTINGS["probe"], "positions": ["none"], "windows": 48},
    "seeds": [0],
}


def check_settings(settings: dict) -> dict:
    """Raise ``ValueError`` naming the field of ``settings`` that cannot be run; return ``settings``.

    >>> check_settings({**SETTINGS, "positions": ["learned", "absolute"]})
    Traceback (most recent call last):
    ...
    ValueError: settings['positions'] must be a non-empty list of learned, ..., none, got ['learned', 'absolute']
    """
    positions, probe, seeds = settings.get("positions"), settings.get("probe", {}), settings.get("seeds")
    if not positions or any(p not in POSITIONS for p in positions):
        raise ValueError(f"settings['positions'] must be a non-empty list of {', '.join(POSITIONS)}, got {positions!r}")
    if any(p not in positions for p in probe.get("positions", [])):
        raise ValueError(f"settings['probe']['positions'] must be among settings['positions'] {positions}, "
                         f"got {probe.get('positions')!r}")
    if not isinstance(probe.get("windows"), int) or probe["windows"] < 2:
        raise ValueError(f"settings['probe']['windows'] must be an int >= 2, got {probe.get('windows')!r}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"settings['seeds'] must be a non-empty list of distinct seeds, got {seeds!r}")
    return settings


def _source_files() -> list[Path]:
    from .run_cache import PACKAGE, package_sources

    here = Path(__file__).resolve()
    helpers = ("text_models.py", "inspect_layers.py", "linear_probe.py", "tang_run.py", "run_cache.py",
               "parallel_runs.py")
    return package_sources(here, PACKAGE / "data" / "psalms.txt", *(here.with_name(name) for name in helpers))


def cache_key(settings: dict = SETTINGS) -> str:
    """SHA-256 of ``settings``, the torch version and the source files the run depends on.

    >>> len(cache_key()), cache_key() == cache_key(QUICK_SETTINGS)
    (64, False)
    """
    from .run_cache import source_key

    return source_key(settings, _source_files())


def permutation_gap(model, ids, perm) -> float:
    """How far ``model`` is from permutation equivariance on ``ids``: the largest absolute
    difference, over every layer's hidden states (``layer_states``), between the states of the
    permuted input and the permuted states of the input. Near 0 (float rounding) for an
    equivariant model.

    Args:
        model: any model of the package (its ``TransformerStack`` is read).
        ids: ``(batch, seq)`` token ids.
        perm: a permutation of ``0 .. seq - 1`` (a list or a 1-D tensor).

    >>> import torch
    >>> from llmarch.models.encoder_only import EncoderOnly
    >>> from llmarch.lab.text_models import text_model_config
    >>> shape = dict(vocab_size=9, d_model=16, num_layers=2, num_heads=2, d_ff=32, max_positions=6)
    >>> _ = torch.manual_seed(0)
    >>> model = EncoderOnly(text_model_config("bidirectional", position="none", **shape)).eval()
    >>> ids = torch.randint(9, (2, 6))
    >>> permutation_gap(model, ids, [5, 0, 4, 1, 3, 2]) < 1e-5
    True
    >>> permutation_gap(model, ids, [0, 0, 1, 2, 3, 4])
    Traceback (most recent call last):
    ...
    ValueError: perm must be a permutation of 0..5, got [0, 0, 1, 2, 3, 4]
    """
    import torch

    from .inspect_layers import layer_states

    perm = torch.as_tensor(perm, dtype=torch.long)
    if sorted(perm.tolist()) != list(range(ids.shape[1])):
        raise ValueError(f"perm must be a permutation of 0..{ids.shape[1] - 1}, got {perm.tolist()}")
    return float((layer_states(model, ids[:, perm]) - layer_states(model, ids)[:, :, perm]).abs().max())


def probe_windows(ids, seq_len: int, windows: int):
    """``2 * windows`` consecutive, non-overlapping windows of ``ids`` (1-D); the even ones to fit
    a probe on, the odd ones to score it on: ``(fit, test)``, each ``(windows, seq_len)``.

    >>> import torch
    >>> fit, test = probe_windows(torch.arange(20), 3, 2)
    >>> fit.tolist(), test.tolist()
    ([[0, 1, 2], [6, 7, 8]], [[3, 4, 5], [9, 10, 11]])
    >>> probe_windows(torch.arange(20), 3, 4)
    Traceback (most recent call last):
    ...
    ValueError: ids must hold 2 * windows * seq_len = 24 tokens, got 20
    """
    need = 2 * windows * seq_len
    if ids.ndim != 1 or ids.numel() < need:
        raise ValueError(f"ids must hold 2 * windows * seq_len = {need} tokens, got {ids.numel()}")
    rows = ids[:need].reshape(2 * windows, seq_len)
    return rows[0::2], rows[1::2]


def position_probe(model, fit_ids, test_ids, l2: float = 1e-3) -> dict:
    """A linear probe of the absolute position from every layer's hidden states.

    Args:
        model: a model of the package, in eval mode.
        fit_ids, test_ids: ``(windows, seq)`` token ids (``probe_windows``).
        l2: the ridge penalty (``llmarch.lab.linear_probe``).

    Returns:
        ``{"r2", "mae", "predicted_by_position", "mae_by_position", "baseline_mae"}``: per layer
        (0 = the embeddings entering the first layer) the share of the variance of the position
        explained on ``test_ids`` and the mean absolute error in positions; for the last layer
        the mean predicted position and the mean absolute error at each position
        ``0 .. seq - 1``; and the error of always answering the mean position of the fitted
        windows.
    """
    import torch

    from .inspect_layers import layer_states
    from .linear_probe import fit_ridge

    seq = fit_ids.shape[1]
    fit_states, test_states = layer_states(model, fit_ids), layer_states(model, test_ids)
    fit_y = torch.arange(seq).repeat(fit_ids.shape[0]).double()
    test_y = torch.arange(seq).repeat(test_ids.shape[0]).double()
    total = float(((test_y - test_y.mean()) ** 2).sum())
    r2, mae, predicted = [], [], None
    for fit, test in zip(fit_states, test_states):
        predicted = fit_ridge(fit.reshape(-1, fit.shape[-1]), fit_y, l2)(test.reshape(-1, test.shape[-1]))
        r2.append(1.0 - float(((predicted - test_y) ** 2).sum()) / total)
        mae.append(float((predicted - test_y).abs().mean()))
    return {"r2": r2, "mae": mae, "predicted_by_position": predicted.reshape(-1, seq).mean(0).tolist(),
            "mae_by_position": (predicted - test_y).abs().reshape(-1, seq).mean(0).tolist(),
            "baseline_mae": float((test_y - fit_y.mean()).abs().mean())}


def train_one(kind: str, position: str, seed: int, settings: dict = SETTINGS) -> dict:
    """Train one ``kind`` model with ``position`` and ``seed`` on one thread; probe it when
    ``position`` is in ``settings["probe"]["positions"]``.

    Returns:
        ``{"kind", "position", "seed", "parameters", "heldout_loss", "train_loss", "probe",
        "cpu_seconds"}``: ``train_loss`` is the mean of the last 20 steps' losses; ``probe`` is
        ``position_probe``'s result or ``None``; ``cpu_seconds`` counts the whole job (data,
        training, evaluation, probe) by ``time.process_time``.
    """
    from .text_models import train_text_model

    cpu_start = time.process_time()
    model = {**settings["model"], **settings.get("model_options", {}).get(position, {})}
    with contextlib.redirect_stderr(io.StringIO()):   # the trainer's progress lines
        run = train_text_model(kind, corpus=settings["corpus"], position=position, model=model,
                               train=settings["train"], seed=seed)
    losses = [r["loss"] for r in run.records if "loss" in r]
    probe = None
    if position in settings["probe"]["positions"]:
        fit, test = probe_windows(run.val_ids, settings["train"]["seq_len"], settings["probe"]["windows"])
        probe = position_probe(run.model, fit, test, settings["probe"]["l2"])
    return {"kind": kind, "position": position, "seed": seed,
            "parameters": sum(p.numel() for p in run.model.parameters()),
            "heldout_loss": [r["eval_loss"] for r in run.records if "eval_loss" in r][-1],
            "train_loss": sum(losses[-20:]) / len(losses[-20:]), "probe": probe,
            "cpu_seconds": round(time.process_time() - cpu_start, 2)}


def _train_job(job: tuple) -> dict:
    return train_one(*job)


def _run_all(settings: dict, workers: int | None) -> dict:
    from ..training.corpus import read_text, split_text
    from .machine import cpu_info
    from .parallel_runs import run_jobs, usable_cores
    from .tang_run import unigram_entropy

    jobs = [(kind, position, seed, settings) for position in settings["positions"] for kind in KINDS
            for seed in settings["seeds"]]
    workers = workers or max(1, min(len(jobs), usable_cores()))
    start = time.perf_counter()
    runs = run_jobs(_train_job, jobs, workers, progress="why_positions")
    train_text, _ = split_text(read_text(settings["corpus"]))
    return {"settings": settings, "machine": cpu_info()["model"], "runs": runs,
            "unigram_entropy": unigram_entropy(train_text), "workers": workers,
            "wall_seconds": round(time.perf_counter() - start, 1)}


def why_positions(settings: dict = SETTINGS, *, workers: int | None = None, refresh: bool = False,
                  verbose: bool = False, cache: bool = True) -> dict:
    """Every (position, kind, seed) of ``settings``: from the cache, or trained now and cached.

    Args:
        settings: ``SETTINGS`` or a variant (``QUICK_SETTINGS``).
        workers: processes at a time (default: one per core; 1 = in this process).
        refresh: train even when the cache holds the result.
        verbose: print where the cache is.
        cache: read and write the cache (``llmarch.lab.run_cache``).

    Returns:
        ``{"key", "settings", "machine", "runs", "unigram_entropy", "workers", "wall_seconds"}``;
        ``runs`` holds one ``train_one`` result per run; ``unigram_entropy`` (nats per
        character) is that of the corpus' training split.
    """
    from .run_cache import cached_run

    key = cache_key(check_settings(settings))
    return cached_run("why_positions", key, lambda: {"key": key, **_run_all(settings, workers)},
                      refresh=refresh, cache=cache, verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    from .lab_command import lab_parser, report_run
    from .why_positions_report import plot_results, summary

    args = lab_parser("python -m llmarch lab positions", __doc__, quick="one seed, NoPos only, fewer steps",
                      plot="the probe and the losses").parse_args(argv)
    result = why_positions(QUICK_SETTINGS if args.quick else SETTINGS, workers=args.workers, refresh=args.refresh,
                           verbose=True)
    return report_run(args, result, summary, plot_results, columns=3, size=(15, 4))


if __name__ == "__main__":
    sys.exit(main())
