"""Tables, text, claims and figures of section 5.4, made from a ``why_in_context`` result.

Kept apart from ``llmarch.lab.why_in_context`` so that how a result is shown is not part of the
hash that decides whether the experiment trains again. Every line of text fits 88 columns.
"""

from __future__ import annotations

from .claims import Claims, claim_lines
from .seed_stats import mean_std
from .why_in_context import NAMES, VARIANTS

__all__ = ["aggregate", "claims", "summary", "markdown_table", "plot_results", "TABLE_TEXT", "TABLE_KS"]

#: The numbers of demonstrations the table shows (the figure shows every k).
TABLE_KS = (0, 1, 2, 4, 6, 8, 10)


def aggregate(result: dict) -> dict:
    """``{variant: {"error": [(mean, std) per k], "to_gd": [...], "per_seed": {seed: [error per k]},
    "cpu_seconds": mean}}``; std is the sample standard deviation over the seeds (0 for one).

    >>> runs = [{"variant": v, "seed": s, "error": [1.0, e], "to_gd": [0.0, 0.1], "cpu_seconds": 2.0}
    ...         for v in VARIANTS for s, e in enumerate([0.2, 0.4, 0.6])]
    >>> aggregate({"runs": runs})["prefix"]["error"][1]
    (0.4, 0.2)
    """
    out = {}
    for variant in VARIANTS:
        runs = [r for r in result["runs"] if r["variant"] == variant]
        out[variant] = {key: [mean_std(list(values)) for values in zip(*(r[key] for r in runs))]
                        for key in ("error", "to_gd")}
        out[variant]["per_seed"] = {r["seed"]: r["error"] for r in runs}
        out[variant]["cpu_seconds"] = sum(r["cpu_seconds"] for r in runs) / len(runs)
    return out


def claims(result: dict) -> Claims:
    """The statements section 5.4 makes about the full run, each checked against ``result``
    (errors normalised by ``d``: the zero predictor scores about 1)."""
    agg, base = aggregate(result), result["baselines"]
    dim, last = result["settings"]["task"]["dim"], result["settings"]["task"]["max_examples"]
    mean = {v: [m for m, _ in agg[v]["error"]] for v in VARIANTS}
    spread = {v: [s for _, s in agg[v]["error"]] for v in VARIANTS}
    gaps = [abs(mean["causal"][k] - mean["prefix"][k]) <= spread["causal"][k] + spread["prefix"][k]
            for k in range(last + 1)]
    return [
        (f"both learn in context: mean error at k = {last} < 0.4 (zero ~1)",
         all(m[last] < 0.4 for m in mean.values())),
        ("k = 0: both within 0.05 of the zero predictor (they answer about 0)",
         all(abs(m[0] - base["zero"][0]) <= 0.05 for m in mean.values())),
        (f"error falls with k: mean at k = 0 > k = {dim} > k = {last}, both variants",
         all(m[0] > m[dim] > m[last] for m in mean.values())),
        (f"k = {last}: both within 0.1 of one GD step, > 0.1 (least squares: 0)",
         all(abs(m[last] - base["gd"][last]) <= 0.1 and m[last] > 0.1 for m in mean.values())
         and base["least_squares"][last] < 1e-6),
        (f"k = {last}: answers closer to one GD step's than to the true ones",
         all(agg[v]["to_gd"][last][0] < mean[v][last] for v in VARIANTS)),
        ("causal vs prefix LM: mean gap within the sum of spreads at every k", all(gaps)),
    ]


def summary(result: dict) -> str:
    """The run as plain text of at most 88 columns: settings, the error per k (mean ± sample std
    over the seeds) beside the yardsticks, every seed's numbers, and the checked claims."""
    s, agg, base = result["settings"], aggregate(result), result["baselines"]
    t, m, task = s["train"], s["model"], s["task"]
    cpu = sum(r["cpu_seconds"] for r in result["runs"])
    params = result["runs"][0]["parameters"]
    lines = [(f"task: in-context linear regression, x in R^{task['dim']}, k = 0..{task['max_examples']} "
              "demonstrations, one token each"),
             (f"model: {m['num_layers']} layers, d_model {m['d_model']}, {m['num_heads']} heads, "
              f"d_ff {m['d_ff']}, no positions, {params:,} parameters"),
             (f"training: {t['steps']} steps x {t['batch_size']} prompts (k drawn per step), AdamW lr {t['lr']}, "
              f"warm-up {t['warmup_steps']} + cosine"),
             "loss: squared error of the query's answer only, the same for both variants",
             f"held-out: {s['heldout']['prompts']} prompts per k; error = mean squared error / d",
             f"seeds {s['seeds']}; the same prompts and initialisation for both variants",
             f"machine: {result['machine']}",
             (f"{len(result['runs'])} runs, {result['workers']} process(es) of 1 thread: "
              f"{result['wall_seconds']:.0f} s wall, {cpu:.0f} CPU s"), "",
             f"{'k':>3}{'zero':>7}{'1 GD step':>11}{'least sq.':>11}{'causal':>17}{'prefix LM':>17}"]
    for k in range(task["max_examples"] + 1):
        cells = "".join(f"{agg[v]['error'][k][0]:>10.3f} ± {agg[v]['error'][k][1]:.3f}" for v in VARIANTS)
        lines.append(f"{k:>3}{base['zero'][k]:>7.3f}{base['gd'][k]:>11.3f}{base['least_squares'][k]:>11.3f}{cells}")
    lines.append("per seed, error at k = " + ", ".join(str(k) for k in TABLE_KS if k <= task["max_examples"]) + ":")
    for variant in VARIANTS:
        for seed, errors in agg[variant]["per_seed"].items():
            values = " ".join(f"{errors[k]:.3f}" for k in TABLE_KS if k <= task["max_examples"])
            lines.append(f"  {variant:<7}seed {seed}: {values}")
    lines.append(f"answers' distance to one GD step's (MSE / d) at k = {task['max_examples']}: " + ", ".join(
                     f"{v} {agg[v]['to_gd'][-1][0]:.3f}" for v in VARIANTS))
    if len(s["seeds"]) > 1:
        lines += ["", "what section 5.4 says about this run, checked:", *claim_lines(claims(result))]
    return "\n".join(lines)


#: Column titles of ``markdown_table`` per language.
TABLE_TEXT = {
    "en": {"k": "demonstrations k", "zero": "zero predictor", "gd": "one GD step",
           "ls": "least squares", "names": NAMES},
    "zh": {"k": "示例数 k", "zero": "恒为零", "gd": "一步梯度下降", "ls": "最小二乘",
           "names": {"causal": "因果 decoder", "prefix": "Prefix-LM"}},
}


def markdown_table(result: dict, lang: str = "en") -> str:
    """Held-out error per k (mean ± sample std over the seeds) beside the yardsticks, as Markdown.

    >>> fake = {"settings": {"task": {"max_examples": 1}},
    ...         "baselines": {"zero": [1.0, 1.0], "gd": [1.0, 0.8], "least_squares": [1.0, 0.75]},
    ...         "runs": [{"variant": v, "seed": 0, "error": [1.0, 0.9], "to_gd": [0.0, 0.1],
    ...                   "cpu_seconds": 1.0} for v in VARIANTS]}
    >>> print(markdown_table(fake).splitlines()[3])
    | 1 | 1.000 | 0.800 | 0.750 | 0.900 ± 0.000 | 0.900 ± 0.000 |
    """
    text, agg, base = TABLE_TEXT[lang], aggregate(result), result["baselines"]
    rows = [f"| {text['k']} | {text['zero']} | {text['gd']} | {text['ls']} | "
            + " | ".join(text["names"][v] for v in VARIANTS) + " |", "|---:|---:|---:|---:|---:|---:|"]
    for k in (k for k in TABLE_KS if k <= result["settings"]["task"]["max_examples"]):
        cells = " | ".join(f"{agg[v]['error'][k][0]:.3f} ± {agg[v]['error'][k][1]:.3f}" for v in VARIANTS)
        rows.append(f"| {k} | {base['zero'][k]:.3f} | {base['gd'][k]:.3f} | {base['least_squares'][k]:.3f} | {cells} |")
    return "\n".join(rows)


def plot_results(result: dict, axes, *, labels: dict | None = None) -> None:
    """Left: held-out error against k (every seed, and the mean) with the yardsticks. Right: the
    held-out error at the largest k during training. ``labels`` overrides the English texts
    (keys: the variants, ``zero``, ``gd``, ``least_squares``, ``k``, ``error``, ``step``,
    ``title_k``, ``title_steps``)."""
    last = result["settings"]["task"]["max_examples"]
    text = {**NAMES, "zero": "zero predictor", "gd": "one GD step (best step size)",
            "least_squares": "least squares", "k": "demonstrations in the prompt (k)",
            "error": "held-out error (MSE / d)", "step": "optimizer step",
            "title_k": "error against the number of demonstrations",
            "title_steps": f"during training, k = {last}", **(labels or {})}
    colors = {"causal": "#4c72b0", "prefix": "#dd8452"}
    left, right = axes
    ks = list(range(last + 1))
    for key, style in (("zero", ":"), ("gd", "--"), ("least_squares", "-.")):
        left.plot(ks, result["baselines"][key], color="gray", linestyle=style, linewidth=1.2, label=text[key])
    agg = aggregate(result)
    for variant in VARIANTS:
        for errors in agg[variant]["per_seed"].values():
            left.plot(ks, errors, color=colors[variant], linewidth=0.8, alpha=0.35)
        left.plot(ks, [m for m, _ in agg[variant]["error"]], color=colors[variant], linewidth=2.0, marker="o",
                  markersize=3, label=text[variant])
        for n, run in enumerate(r for r in result["runs"] if r["variant"] == variant):
            right.plot([r["step"] for r in run["records"]], [r["heldout_error"] for r in run["records"]],
                       color=colors[variant], linewidth=1.2, alpha=0.9 if n == 0 else 0.5,
                       label=text[variant] if n == 0 else None)
    right.axhline(result["baselines"]["gd"][last], color="gray", linestyle="--", linewidth=1.2, label=text["gd"])
    left.set_xlabel(text["k"])
    left.set_ylabel(text["error"])
    left.set_title(text["title_k"], fontsize=10)
    right.set_xlabel(text["step"])
    right.set_title(text["title_steps"], fontsize=10)
    for ax in axes:
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
