"""What sections 5.2 and 5.3 share when they show a ``why_causal_vs_mlm`` result: statistics over
seeds, the run's header lines and the command line.

Kept apart from ``llmarch.lab.why_causal_vs_mlm`` so that how a result is shown is not part of the
hash that decides whether the experiment trains again. Every line of text fits 88 columns.
"""

from __future__ import annotations

from .seed_stats import mean_std
from .why_causal_vs_mlm import KINDS, QUICK_SETTINGS, SETTINGS, causal_vs_mlm

__all__ = ["NAMES", "mean_std", "runs_of", "stat", "header_lines", "command_line", "is_published", "texts_in"]

NAMES = {"causal": "causal LM", "bidirectional": "masked LM"}


def runs_of(result: dict, kind: str) -> list[dict]:
    """The runs of ``kind``, by seed.

    >>> [r["seed"] for r in runs_of({"runs": [{"kind": "causal", "seed": 1},
    ...                                       {"kind": "causal", "seed": 0}]}, "causal")]
    [0, 1]
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return sorted((r for r in result["runs"] if r["kind"] == kind), key=lambda r: r["seed"])


def stat(result: dict, kind: str, read) -> tuple[float, float]:
    """``mean_std`` over the seeds of ``read(run)`` for the runs of ``kind``."""
    return mean_std([read(run) for run in runs_of(result, kind)])


def texts_in(table: dict, lang: str) -> dict:
    """``table[lang]``: the texts of a table in ``lang``.

    >>> texts_in({"en": {"a": "b"}}, "en")
    {'a': 'b'}
    """
    if lang not in table:
        raise ValueError(f"lang must be one of {', '.join(table)}, got {lang!r}")
    return table[lang]


def is_published(result: dict) -> bool:
    """Whether ``result`` ran the full settings (the pages' statements are about that run)."""
    return result["settings"]["seeds"] == SETTINGS["seeds"] and result["settings"]["train"] == SETTINGS["train"]


def header_lines(result: dict) -> list[str]:
    """The settings, the machine and the time of the run."""
    s = result["settings"]
    m, t = s["model"], s["train"]
    return [f"corpus {s['corpus']}, {s['position']} positions; both kinds: d_model {m['d_model']}, "
            f"{m['num_layers']} layers, {m['num_heads']} heads, d_ff {m['d_ff']}",
            f"training: {t['steps']} steps x {t['batch_size']} windows of {t['seq_len']} characters, "
            f"AdamW lr {t['lr']}, warm-up {t['warmup_steps']} + cosine",
            f"seeds {s['seeds']}; held-out: {s['heldout']['windows']} windows spread over the "
            "validation text",
            f"machine: {result['machine']}",
            f"{len(result['runs'])} runs, {result['workers']} process(es) of 1 thread: "
            f"{result['wall_seconds']:.0f} s wall, {result['cpu_seconds']:.0f} CPU s (training and measuring)"]


def command_line(argv, prog: str, doc: str):
    """Parse the options ``python -m llmarch lab rank`` and ``lab harder-task`` share and run (or
    read from the cache) the experiment; returns ``(args, result)``."""
    from .lab_command import lab_parser

    parser = lab_parser(prog, doc, quick="one seed, fewer steps", plot="the figure")
    parser.add_argument("--position", default=None,
                        help="the positions of both models (default: rotary), e.g. learned")
    args = parser.parse_args(argv)
    settings = QUICK_SETTINGS if args.quick else SETTINGS
    if args.position:
        settings = {**settings, "position": args.position}
    return args, causal_vs_mlm(settings, workers=args.workers, refresh=args.refresh, verbose=True)
