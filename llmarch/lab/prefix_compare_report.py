"""Tables, text and figures of chapter 4's comparison, made from a ``prefix_compare`` result.

Kept apart from ``llmarch.lab.prefix_compare`` so that how a result is shown is not part of the
hash that decides whether the experiment trains again. Every line of text fits 88 columns, the
width of a code block on the site.
"""

from __future__ import annotations

from .claims import Claims, claim_lines
from .prefix_compare import ARCHITECTURES, NAMES
from .seed_stats import mean_std

__all__ = ["aggregate", "claims", "summary", "markdown_table", "plot_results", "TABLE_TEXT"]

SHORT = {"causal": "causal", "prefix": "prefix", "encdec": "encdec"}


def aggregate(result: dict) -> dict:
    """``{condition: {arch: {...}}}`` with ``"parameters"``, ``"flops_per_step"``, ``"tokens_read"``,
    ``"target_tokens"``, ``"loss"`` and ``"exact_match"`` as ``(mean, std)`` over the seeds (std: the
    sample standard deviation, 0 for one seed), ``"per_seed"``: ``[(seed, loss, exact_match)]``,
    and ``"cpu_seconds"`` (mean).

    >>> runs = [{"task": "t", "arch": a, "seed": s, "parameters": 1, "flops_per_step": 1,
    ...          "tokens_read": 1, "target_tokens": 1, "heldout_loss": loss, "exact_match": 0.5,
    ...          "cpu_seconds": 1.0} for a in ARCHITECTURES for s, loss in enumerate([1.0, 2.0, 3.0])]
    >>> per_arch = aggregate({"settings": {"tasks": {"t": {}}}, "runs": runs})["t"]
    >>> per_arch["causal"].get("loss")                     # mean, sample std
    (2.0, 1.0)
    """
    out = {}
    for task in result["settings"]["tasks"]:
        out[task] = {}
        for arch in ARCHITECTURES:
            runs = [r for r in result["runs"] if r["arch"] == arch and r["task"] == task]
            out[task][arch] = {
                "parameters": runs[0]["parameters"], "flops_per_step": runs[0]["flops_per_step"],
                "tokens_read": runs[0]["tokens_read"], "target_tokens": runs[0]["target_tokens"],
                "loss": mean_std([r["heldout_loss"] for r in runs]),
                "exact_match": mean_std([r["exact_match"] for r in runs]),
                "per_seed": [(r["seed"], r["heldout_loss"], r["exact_match"]) for r in runs],
                "cpu_seconds": sum(r["cpu_seconds"] for r in runs) / len(runs)}
    return out


def claims(result: dict) -> Claims:
    """The statements section 4.4 makes about the full run (conditions ``varied`` and
    ``padded``), each checked against ``result``; exact match in percentage points."""
    agg = aggregate(result)
    varied, padded = agg["varied"], agg["padded"]

    def match(per_arch, arch):
        return 100 * per_arch[arch]["exact_match"][0]

    def loss(per_arch, arch):
        return per_arch[arch]["loss"]

    def lead(per_arch):                      # the encoder-decoder's lead over the causal decoder
        return match(per_arch, "encdec") - match(per_arch, "causal")

    causal, prefix = varied["causal"]["exact_match"], varied["prefix"]["exact_match"]
    flops = [agg[task]["encdec"]["flops_per_step"] / agg[task]["causal"]["flops_per_step"] for task in agg]
    best = all(match(per_arch, "encdec") >= max(match(per_arch, a) for a in ARCHITECTURES)
               and loss(per_arch, "encdec")[0] <= min(loss(per_arch, a)[0] for a in ARCHITECTURES)
               for per_arch in agg.values())
    return [
        ("varied: encoder-decoder >= 10 points ahead of both decoder-only models",
         match(varied, "encdec") - max(match(varied, "causal"), match(varied, "prefix")) >= 10),
        ("varied: causal vs prefix LM gap within their spreads over seeds",
         abs(causal[0] - prefix[0]) <= causal[1] + prefix[1]),
        ("padded: every architecture >= 90% exact match",
         all(match(padded, a) >= 90 for a in ARCHITECTURES)),
        ("padding cuts the encoder-decoder's lead over causal by more than half",
         lead(padded) < lead(varied) / 2),
        ("padded: prefix LM's held-out loss and its spread below the causal's",
         all(a < b for a, b in zip(loss(padded, "prefix"), loss(padded, "causal")))),
        ("encoder-decoder: 0.4-0.6x the GFLOP per step of the decoder-only ones",
         all(0.4 <= ratio <= 0.6 for ratio in flops)),
        ("encoder-decoder: best exact match and lowest loss in both conditions", best),
    ]


def _span(task: dict) -> str:
    low, high = task["min_len"], task["max_len"]
    return f"{low}" if low == high else f"{low}-{high}"


def _describe(task: dict) -> str:
    padded = f", source left-padded to {task['pad_to']}" if task.get("pad_to") else ""
    return f"{_span(task)} digits{padded}"


def summary(result: dict) -> str:
    """The comparison as plain text of at most 88 columns: settings, then per condition one line
    per architecture (mean ± sample std over the seeds) and every seed's numbers."""
    s, agg = result["settings"], aggregate(result)
    t, held = s["train"], s["heldout"]
    cpu = sum(r["cpu_seconds"] for r in result["runs"])
    lines = ["task: sort a string of digits",
             f"held-out: {held['size']} strings per condition (hash % {held['modulus']} == 0, "
             "never trained on)",
             f"training: {t['steps']} steps x {t['batch_size']} examples, AdamW lr {t['lr']}, "
             f"warm-up {t['warmup_steps']} + cosine",
             f"seeds {s['seeds']}; the same examples for every architecture",
             f"machine: {result['machine']}",
             f"{len(result['runs'])} runs, {result['workers']} process(es) of 1 thread: "
             f"{result['wall_seconds']:.0f} s wall, {cpu:.0f} CPU s"]
    for task, per_arch in agg.items():
        lines += ["", f"--- {task}: {_describe(s['tasks'][task])}",
                  f"{'architecture':<16}{'params':>8}{'GFLOP/step':>11}{'tokens read':>12}"
                  f"{'held-out loss':>18}{'exact match':>15}"]
        for arch in ARCHITECTURES:
            a = per_arch[arch]
            lines.append(f"{NAMES[arch]:<16}{a['parameters']:>8,}{a['flops_per_step'] / 1e9:>11.2f}"
                         f"{a['tokens_read']:>12,}{a['loss'][0]:>9.4f} ± {a['loss'][1]:.4f}"
                         f"{100 * a['exact_match'][0]:>7.1f}% ± {100 * a['exact_match'][1]:.1f}")
        lines.append("per seed (held-out loss / exact match %):")
        seeds = [seed for seed, _, _ in per_arch[ARCHITECTURES[0]]["per_seed"]]
        for n, seed in enumerate(seeds):
            cells = [f"{SHORT[arch]} {per_arch[arch]['per_seed'][n][1]:.4f} / "
                     f"{100 * per_arch[arch]['per_seed'][n][2]:5.1f}" for arch in ARCHITECTURES]
            lines.append(f"  seed {seed}: " + "   ".join(cells))
    if set(result["settings"]["tasks"]) == {"varied", "padded"}:
        lines += ["", "what section 4.4 says about this run, checked:", *claim_lines(claims(result))]
    return "\n".join(lines)


#: Column titles of ``markdown_table`` per language.
TABLE_TEXT = {
    "en": {"condition": "source", "arch": "architecture", "params": "parameters",
           "flops": "GFLOP/step", "loss": "held-out loss", "match": "exact match %",
           "names": NAMES, "digits": "{} digits", "padded": "{}, padded to {}"},
    "zh": {"condition": "源序列", "arch": "架构", "params": "参数量", "flops": "每步 GFLOP",
           "loss": "留出集损失", "match": "完全匹配（%）",
           "names": {"causal": "因果 decoder", "prefix": "Prefix-LM", "encdec": "Encoder-Decoder"},
           "digits": "{} 位", "padded": "{} 位，补齐到 {}"},
}


def markdown_table(result: dict, lang: str = "en") -> str:
    """The comparison as a Markdown table (mean ± sample std over the seeds) in ``lang`` ("en"/"zh").

    >>> fake = {"settings": {"tasks": {"fixed": {"min_len": 2, "max_len": 2}}, "seeds": [0]},
    ...         "runs": [{"task": "fixed", "arch": a, "seed": 0, "parameters": 10, "flops_per_step": 2e9,
    ...                   "tokens_read": 5, "target_tokens": 3, "heldout_loss": 0.5, "exact_match": 0.25,
    ...                   "cpu_seconds": 1.0} for a in ARCHITECTURES]}
    >>> print(markdown_table(fake).splitlines()[2])
    | 2 digits | causal decoder | 10 | 2.00 | 0.5000 ± 0.0000 | 25.0 ± 0.0 |
    """
    text, agg = TABLE_TEXT[lang], aggregate(result)
    rows = [f"| {text['condition']} | {text['arch']} | {text['params']} | {text['flops']} | "
            f"{text['loss']} | {text['match']} |", "|---|---|---:|---:|---:|---:|"]
    for task, per_arch in agg.items():
        bounds = result["settings"]["tasks"][task]
        span = _span(bounds).replace("-", "–")
        where = (text["padded"].format(span, bounds["pad_to"]) if bounds.get("pad_to")
                 else text["digits"].format(span))
        for arch in ARCHITECTURES:
            a = per_arch[arch]
            rows.append(f"| {where} | {text['names'][arch]} | {a['parameters']:,} | "
                        f"{a['flops_per_step'] / 1e9:.2f} | {a['loss'][0]:.4f} ± {a['loss'][1]:.4f} | "
                        f"{100 * a['exact_match'][0]:.1f} ± {100 * a['exact_match'][1]:.1f} |")
    return "\n".join(rows)


def plot_results(result: dict, axes, *, labels: dict | None = None) -> None:
    """Held-out loss during training (every seed) per condition, one matplotlib axis each in
    ``axes`` (in the order of ``settings["tasks"]``); ``labels`` overrides the English texts
    (keys: the architectures, ``step``, ``loss``, and ``title_<condition>``)."""
    text = {**NAMES, "step": "optimizer step", "loss": "held-out loss (nats / target token)",
            **{f"title_{task}": f"sort {_describe(bounds)}" for task, bounds in result["settings"]["tasks"].items()},
            **(labels or {})}
    colors = {"causal": "#4c72b0", "prefix": "#dd8452", "encdec": "#55a868"}
    for ax, task in zip(axes, result["settings"]["tasks"]):
        for arch in ARCHITECTURES:
            runs = [r for r in result["runs"] if r["arch"] == arch and r["task"] == task]
            for n, run in enumerate(runs):
                steps = [r["step"] for r in run["records"]]
                ax.plot(steps, [r["heldout_loss"] for r in run["records"]], color=colors[arch], linewidth=1.2,
                        alpha=0.9 if n == 0 else 0.5, label=text[arch] if n == 0 else None)
        ax.set_yscale("log")
        ax.set_title(text[f"title_{task}"], fontsize=10)
        ax.set_xlabel(text["step"])
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(text["loss"])
    axes[0].legend(fontsize=8)
