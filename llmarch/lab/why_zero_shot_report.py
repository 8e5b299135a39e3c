"""Tables, text and figures of chapter 5.1's experiment, made from a ``why_zero_shot`` result.

Kept apart from ``llmarch.lab.why_zero_shot`` so that how a result is shown is not part of the
hash that decides whether the experiment trains again. Every line of text fits 88 columns.
"""

from __future__ import annotations

import statistics

from .claims import Claims, claim_lines
from .seed_stats import mean_std
from .task_mixture import HELD_OUT, TRAINED
from .why_zero_shot import ARCHITECTURES, NAMES

__all__ = ["aggregate", "claims", "summary", "markdown_table", "plot_results", "TABLE_TEXT"]

SHORT = {"causal": "causal", "prefix": "prefix", "encdec": "encdec"}
COLORS = {"causal": "#4c72b0", "prefix": "#dd8452", "encdec": "#55a868"}
#: "Has learned the trained task types": teacher-forced exact match on them at least this.
FIT = 0.9


def first_fit(records: list[dict], threshold: float = FIT) -> tuple[int, float] | None:
    """``(step, held-out exact match)`` at the first record whose exact match on the trained task
    types reaches ``threshold``; ``None`` when none does.

    >>> first_fit([{"step": 100, "trained": 0.5, "heldout": 0.1},
    ...            {"step": 200, "trained": 0.95, "heldout": 0.4}])
    (200, 0.4)
    """
    return next(((r["step"], r["heldout"]) for r in records if r["trained"] >= threshold), None)


def aggregate(result: dict) -> dict:
    """``{arch: {...}}``: ``"parameters"``, ``"flops_per_step"``, ``"cpu_seconds"`` (mean), and as
    ``(mean, std)`` over the seeds (std: sample standard deviation, 0 for one seed)
    ``"trained"`` / ``"heldout"`` (exact match), ``"trained_digits"`` / ``"heldout_digits"``
    (digits right), ``"fallback"`` (held-out rows answered as a trained task), ``"per_task"``
    (``{"permutation+map": (mean, std)}``, held-out types); ``"per_seed"``: ``[(seed, trained,
    heldout)]``; ``"at_fit"``: per seed ``first_fit`` of its training records.

    >>> run = lambda a, s, x: {"arch": a, "seed": s, "parameters": 1, "flops_per_step": 1,
    ...     "cpu_seconds": 1.0, "records": [], "trained": {"exact_match": 1.0, "digit_accuracy": 1.0},
    ...     "heldout": {"exact_match": x, "digit_accuracy": x, "fallback": 0.0,
    ...                 "per_task": {"keep+flip": x}}}
    >>> agg = aggregate({"runs": [run(a, s, x) for a in ARCHITECTURES
    ...                           for s, x in enumerate([0.2, 0.4, 0.6])]})
    >>> [round(v, 6) for v in agg["causal"]["heldout"]]              # mean, sample std
    [0.4, 0.2]
    """
    out = {}
    for arch in ARCHITECTURES:
        runs = [r for r in result["runs"] if r["arch"] == arch]
        tasks = runs[0]["heldout"]["per_task"]

        def over(get):
            return mean_std([get(r) for r in runs])

        out[arch] = {
            "parameters": runs[0]["parameters"], "flops_per_step": runs[0]["flops_per_step"],
            "cpu_seconds": statistics.fmean(r["cpu_seconds"] for r in runs),
            "trained": over(lambda r: r["trained"]["exact_match"]),
            "heldout": over(lambda r: r["heldout"]["exact_match"]),
            "trained_digits": over(lambda r: r["trained"]["digit_accuracy"]),
            "heldout_digits": over(lambda r: r["heldout"]["digit_accuracy"]),
            "fallback": over(lambda r: r["heldout"]["fallback"]),
            "per_task": {task: over(lambda r, t=task: r["heldout"]["per_task"][t]) for task in tasks},
            "per_seed": [(r["seed"], r["trained"]["exact_match"], r["heldout"]["exact_match"]) for r in runs],
            "at_fit": [first_fit(r["records"]) for r in runs]}
    return out


def _fit_values(agg: dict, arch: str) -> list[float]:
    """Held-out exact match of ``arch``'s runs at their first fit (runs that never fit left out)."""
    return [fit[1] for fit in agg[arch]["at_fit"] if fit is not None]


def claims(result: dict) -> Claims:
    """The statements section 5.1 makes about the full run, each checked against ``result``
    (exact match in percentage points)."""
    agg = aggregate(result)
    decoders = ("causal", "prefix")

    def pct(arch, key):
        return 100 * agg[arch][key][0]

    def fit_steps(arch):                    # a run that never fits counts as infinitely late
        return [fit[0] if fit is not None else float("inf") for fit in agg[arch]["at_fit"]]

    def held(arch):
        return [r["heldout"]["exact_match"] for r in result["runs"] if r["arch"] == arch]

    decoder_fits = [v for a in decoders for v in _fit_values(agg, a)]
    encdec_fits = _fit_values(agg, "encdec")
    causal, prefix = agg["causal"]["heldout"], agg["prefix"]["heldout"]
    flops = agg["encdec"]["flops_per_step"] / agg["causal"]["flops_per_step"]
    # Training here is chaotic: a seed on the edge can land elsewhere on another CPU (other kernels
    # round differently). So the statements are about means with margins and about the spread,
    # never about which seed does what.
    return [
        (f"trained types: every encoder-decoder run hits {FIT:.0%} before any decoder-only",
         max(fit_steps("encdec")) < min(s for a in decoders for s in fit_steps(a))),
        ("trained types: every architecture >= 80% at the end (mean over seeds)",
         all(pct(a, "trained") >= 80 for a in ARCHITECTURES)),
        ("held-out types: encoder-decoder >= 10 points ahead of both decoder-only",
         all(pct("encdec", "heldout") - pct(a, "heldout") >= 10 for a in decoders)),
        ("held-out types: causal vs prefix LM gap within their spreads over seeds",
         abs(causal[0] - prefix[0]) <= causal[1] + prefix[1]),
        (f"held-out at first {FIT:.0%} on trained: encoder-decoder >= 10 points ahead",
         bool(encdec_fits) and bool(decoder_fits)
         and 100 * (statistics.fmean(encdec_fits) - statistics.fmean(decoder_fits)) >= 10),
        ("held-out types: some architecture's seeds differ by >= 30 points",
         any(max(held(a)) - min(held(a)) >= 0.3 for a in ARCHITECTURES)),
        ("encoder-decoder: 0.4-0.6x the GFLOP per step of the decoder-only ones", 0.4 <= flops <= 0.6),
    ]


def _fit_cell(fits: list) -> str:
    """``"300: 79 | never | ..."``: per seed the first step with the trained types fit and the
    held-out exact match (%) there."""
    return " | ".join("never" if fit is None else f"{fit[0]}: {100 * fit[1]:.0f}" for fit in fits)


def summary(result: dict) -> str:
    """The experiment as plain text of at most 88 columns: settings, one line per architecture
    (mean ± sample std over the seeds), held-out types one by one, every seed, then the claims."""
    s, agg = result["settings"], aggregate(result)
    t = s["train"]
    cpu = sum(r["cpu_seconds"] for r in result["runs"])
    names = ["+".join(task) for task in TRAINED]
    lines = [f"task: [permutation] [map] + {s['task']['length']} digits -> the digits permuted and mapped",
             f"trained types: {', '.join(names[:3])},", f"               {', '.join(names[3:])}",
             f"held-out types (never trained): {', '.join('+'.join(task) for task in HELD_OUT)}",
             f"evaluation: {s['eval']['per_task']} unseen strings per type, greedy decoding",
             f"training: {t['steps']} steps x {t['batch_size']} examples, AdamW lr {t['lr']}, "
             f"warm-up {t['warmup_steps']} + cosine" + (f", stopped after {t['stop_after']}" if "stop_after" in t
                                                         else ""),
             f"seeds {s['seeds']}; the same examples for every architecture",
             f"machine: {result['machine']}",
             f"{len(result['runs'])} runs, {result['workers']} process(es) of 1 thread: "
             f"{result['wall_seconds']:.0f} s wall, {cpu:.0f} CPU s", "",
             "exact match % (mean ± std over seeds); digits: share of answer digits right",
             f"{'architecture':<16}{'params':>8}{'GFLOP/step':>11}{'trained':>13}{'held-out':>13}"
             f"{'digits':>8}{'fallback':>10}"]
    for arch in ARCHITECTURES:
        a = agg[arch]
        lines.append(f"{NAMES[arch]:<16}{a['parameters']:>8,}{a['flops_per_step'] / 1e9:>11.2f}"
                     f"{100 * a['trained'][0]:>7.1f} ± {100 * a['trained'][1]:<4.1f}"
                     f"{100 * a['heldout'][0]:>6.1f} ± {100 * a['heldout'][1]:<4.1f}"
                     f"{100 * a['heldout_digits'][0]:>6.1f}{100 * a['fallback'][0]:>10.1f}")
    lines += ["fallback: held-out rows answered with the answer of a trained task type", "",
              "held-out types one by one, exact match %:"]
    for task in agg[ARCHITECTURES[0]]["per_task"]:
        cells = "   ".join(f"{SHORT[a]} {100 * agg[a]['per_task'][task][0]:5.1f}" for a in ARCHITECTURES)
        lines.append(f"  {task:<14}{cells}")
    lines.append(f"first checkpoint >= {FIT:.0%} on trained types -> step: held-out %, per seed:")
    lines += [f"  {NAMES[a]:<16}{_fit_cell(agg[a]['at_fit'])}" for a in ARCHITECTURES]
    lines.append("per seed (trained / held-out exact match %):")
    for n, (seed, _, _) in enumerate(agg[ARCHITECTURES[0]]["per_seed"]):
        cells = "   ".join(f"{SHORT[a]} {100 * agg[a]['per_seed'][n][1]:5.1f} / {100 * agg[a]['per_seed'][n][2]:5.1f}"
                           for a in ARCHITECTURES)
        lines.append(f"  seed {seed}: {cells}")
    if len(s["seeds"]) > 1:
        lines += ["", "what section 5.1 says about this run, checked:", *claim_lines(claims(result))]
    return "\n".join(lines)


#: Column titles of ``markdown_table`` per language.
TABLE_TEXT = {
    "en": {"arch": "architecture", "params": "parameters", "flops": "GFLOP/step",
           "trained": "trained types: exact match %", "heldout": "held-out types: exact match %",
           "digits": "held-out: digits right %", "fallback": "held-out: answered as a trained type %",
           "fit": f"first ≥ {FIT:.0%} on trained types (step: held-out %)", "never": "never",
           "names": NAMES},
    "zh": {"arch": "架构", "params": "参数量", "flops": "每步 GFLOP",
           "trained": "训练过的任务类型：完全匹配（%）", "heldout": "留出的任务类型：完全匹配（%）",
           "digits": "留出类型：数字正确率（%）", "fallback": "留出类型：答成训练过的任务（%）",
           "fit": f"训练类型首次 ≥ {FIT:.0%}（步数: 留出类型 %）", "never": "未达到",
           "names": {"causal": "因果 decoder", "prefix": "Prefix-LM", "encdec": "Encoder-Decoder"}},
}


def markdown_table(result: dict, lang: str = "en") -> str:
    """The results as a Markdown table (mean ± sample std over the seeds) in ``lang`` ("en"/"zh").

    >>> run = lambda a: {"arch": a, "seed": 0, "parameters": 10, "flops_per_step": 2e9, "cpu_seconds": 1.0,
    ...     "records": [{"step": 5, "trained": 1.0, "heldout": 0.25}],
    ...     "trained": {"exact_match": 1.0, "digit_accuracy": 1.0},
    ...     "heldout": {"exact_match": 0.25, "digit_accuracy": 0.5, "fallback": 0.5,
    ...                 "per_task": {"keep+flip": 0.25}}}
    >>> print(markdown_table({"runs": [run(a) for a in ARCHITECTURES]}).splitlines()[2])
    | causal decoder | 10 | 2.00 | 100.0 ± 0.0 | 25.0 ± 0.0 | 50.0 ± 0.0 | 50.0 ± 0.0 | 5: 25 |
    """
    if lang not in TABLE_TEXT:
        raise ValueError(f"lang must be one of {', '.join(TABLE_TEXT)}, got {lang!r}")
    text, agg = TABLE_TEXT[lang], aggregate(result)
    keys = ("trained", "heldout", "heldout_digits", "fallback")
    rows = [f"| {text['arch']} | {text['params']} | {text['flops']} | {text['trained']} | {text['heldout']} | "
            f"{text['digits']} | {text['fallback']} | {text['fit']} |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for arch in ARCHITECTURES:
        a = agg[arch]
        cells = " | ".join(f"{100 * a[k][0]:.1f} ± {100 * a[k][1]:.1f}" for k in keys)
        fits = _fit_cell(a["at_fit"]).replace("never", text["never"]).replace(" | ", "; ")
        rows.append(f"| {text['names'][arch]} | {a['parameters']:,} | {a['flops_per_step'] / 1e9:.2f} | {cells} | "
                    f"{fits} |")
    return "\n".join(rows)


def plot_results(result: dict, axes, *, labels: dict | None = None) -> None:
    """Exact match during training (teacher-forced, every seed): on unseen strings of the trained
    task types (``axes[0]``) and on the held-out task types (``axes[1]``). ``labels`` overrides
    the English texts (keys: the architectures, ``step``, ``match``, ``trained``, ``heldout``)."""
    text = {**NAMES, "step": "optimizer step", "match": "exact match",
            "trained": "trained task types (unseen strings)", "heldout": "held-out task types (never trained)",
            **(labels or {})}
    for ax, key in zip(axes, ("trained", "heldout")):
        for arch in ARCHITECTURES:
            runs = [r for r in result["runs"] if r["arch"] == arch]
            for n, run in enumerate(runs):
                ax.plot([r["step"] for r in run["records"]], [r[key] for r in run["records"]], color=COLORS[arch],
                        linewidth=1.4, alpha=0.9 if n == 0 else 0.55, label=text[arch] if n == 0 else None)
        ax.set_title(text[key], fontsize=10)
        ax.set_xlabel(text["step"])
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(text["match"])
    axes[0].legend(fontsize=8, loc="lower right")
