"""Tables, text and figures of chapter 5.5, made from a ``why_positions`` result.

Kept apart from ``llmarch.lab.why_positions`` so that how a result is shown is not part of the
hash that decides whether the experiment trains again. Every line of text fits 88 columns.
"""

from __future__ import annotations

from .claims import Claims, claim_lines
from .seed_stats import mean_std
from .why_positions import KINDS, POSITIONS

__all__ = ["aggregate", "claims", "summary", "markdown_table", "probe_table", "plot_results", "TABLE_TEXT"]


def aggregate(result: dict) -> dict:
    """``{"loss": {kind: {position: (mean, std)}}, "probe": {kind: {position: {...}}}}`` over the
    seeds (std: the sample standard deviation, 0 for one seed). A probe entry holds ``"r2"`` and
    ``"mae"`` as one ``(mean, std)`` per layer, ``"r2_runs"`` (every seed's list),
    ``"predicted"`` (the mean over seeds of the last layer's mean prediction at each position)
    and ``"baseline_mae"``.

    >>> runs = [{"kind": k, "position": "none", "seed": s, "heldout_loss": 2.0 + s, "probe": None}
    ...         for k in KINDS for s in range(3)]
    >>> aggregate({"settings": {"positions": ["none"]}, "runs": runs})["loss"]["causal"]["none"]
    (3.0, 1.0)
    """
    out: dict = {"loss": {}, "probe": {}}
    for kind in KINDS:
        out["loss"][kind], out["probe"][kind] = {}, {}
        for position in result["settings"]["positions"]:
            runs = [r for r in result["runs"] if r["kind"] == kind and r["position"] == position]
            out["loss"][kind][position] = mean_std([r["heldout_loss"] for r in runs])
            probes = [r["probe"] for r in runs if r.get("probe")]
            if probes:
                layers = range(len(probes[0]["r2"]))
                out["probe"][kind][position] = {
                    "r2": [mean_std([p["r2"][n] for p in probes]) for n in layers],
                    "mae": [mean_std([p["mae"][n] for p in probes]) for n in layers],
                    "r2_runs": [p["r2"] for p in probes],
                    "predicted": [sum(values) / len(values)
                                  for values in zip(*(p["predicted_by_position"] for p in probes))],
                    "baseline_mae": probes[0]["baseline_mae"]}
    return out


def claims(result: dict) -> Claims:
    """The statements section 5.5 makes about the full run, each checked against ``result``
    (losses in nats per predicted token; R^2 of the position probe on held-out windows)."""
    agg, h = aggregate(result), result["unigram_entropy"]
    loss, probe = agg["loss"], agg["probe"]
    causal, masked = loss["causal"], loss["bidirectional"]

    def apart(a, b):                           # a below b by more than both spreads together
        return b[0] - a[0] > a[1] + b[1]

    relative = ("rotary", "alibi")
    runs = {(r["kind"], r["position"]): [] for r in result["runs"]}
    for r in result["runs"]:
        runs[r["kind"], r["position"]].append(r["heldout_loss"])
    best_relative = min(loss for p in relative for loss in runs["bidirectional", p])
    nopos_causal, nopos_masked = probe["causal"]["none"], probe["bidirectional"]["none"]
    mean_r2 = [mean for mean, _ in nopos_causal["r2"]]

    def falls(values):
        return all(b < a for a, b in zip(values, values[1:]))

    read = nopos_causal["predicted"]
    return [
        ("every causal model ends >= 0.5 nats below the unigram entropy",
         all(h - mean >= 0.5 for mean, _ in causal.values())),
        ("causal: NoPos within 0.1 nats of learned positions",
         abs(causal["none"][0] - causal["learned"][0]) <= 0.1),
        ("causal: rotary and ALiBi beat NoPos and learned by more than the spreads",
         all(apart(causal[p], causal[q]) for p in relative for q in ("none", "learned"))),
        ("causal: sinusoidal ends behind NoPos by more than the spreads",
         apart(causal["none"], causal["sinusoidal"])),
        ("masked: learned, sinusoidal, NoPos within 0.25 nats of unigram entropy",
         all(h - masked[p][0] <= 0.25 for p in ("learned", "sinusoidal", "none"))),
        ("masked: best rotary/ALiBi run >= 0.2 nats below the best NoPos run",
         min(runs["bidirectional", "none"]) - best_relative >= 0.2),
        ("probe, masked NoPos: R^2 <= 0.02 at every layer of every seed",
         all(r2 <= 0.02 for run in nopos_masked["r2_runs"] for r2 in run)),
        ("probe, causal NoPos, every seed: R^2 <= 0.02 at layer 0, >= 0.2 at last",
         all(run[0] <= 0.02 and run[-1] >= 0.2 for run in nopos_causal["r2_runs"])),
        ("probe, causal NoPos: the mean R^2 rises with every layer",
         falls(mean_r2[::-1])),
        ("causal NoPos reading: rises >= 4 over positions 0-7, < 2 over the last 8",
         read[7] - read[0] >= 4 and abs(read[-1] - read[-8]) < 2),
        ("masked NoPos reading: varies < 1 position across all positions",
         max(nopos_masked["predicted"]) - min(nopos_masked["predicted"]) < 1),
        ("probe, learned positions: R^2 >= 0.9 at layer 0 in both kinds",
         all(run[0] >= 0.9 for k in KINDS for run in probe[k]["learned"]["r2_runs"])),
        ("probe, learned positions: mean R^2 falls with every layer, both kinds",
         all(falls([mean for mean, _ in probe[k]["learned"]["r2"]]) for k in KINDS)),
    ]


def summary(result: dict) -> str:
    """The run as plain text of at most 88 columns: settings, the losses and the probe (mean ±
    sample std over the seeds), every seed's numbers, then the page's statements, checked."""
    s, agg = result["settings"], aggregate(result)
    t, m = s["train"], s["model"]
    cpu = sum(r["cpu_seconds"] for r in result["runs"])
    lines = [f"corpus: {s['corpus']} (characters); unigram entropy {result['unigram_entropy']:.3f} nats",
             f"model: d_model {m['d_model']}, {m['num_layers']} layers, {m['num_heads']} heads, d_ff {m['d_ff']}, "
             "pre-LN, GELU",
             f"training: {t['steps']} steps x {t['batch_size']} windows of {t['seq_len']}, AdamW lr {t['lr']}, "
             f"warm-up {t['warmup_steps']} + cosine",
             f"seeds {s['seeds']}; probe: {s['probe']['windows']} held-out windows to fit, "
             f"{s['probe']['windows']} others to score",
             f"machine: {result['machine']}",
             f"{len(result['runs'])} runs, {result['workers']} process(es) of 1 thread: "
             f"{result['wall_seconds']:.0f} s wall, {cpu:.0f} CPU s",
             "", "held-out loss (nats / predicted token; compare within a column only)",
             f"{'position':<12}" + "".join(f"{kind:>22}" for kind in KINDS)]
    for position in s["positions"]:
        cells = "".join(f"{agg['loss'][k][position][0]:>13.3f} ± {agg['loss'][k][position][1]:.3f}" for k in KINDS)
        lines.append(f"{position:<12}{cells}")
    for kind in KINDS:
        for position, p in agg["probe"][kind].items():
            lines.append(f"probe R^2 by layer, {kind} {position}: "
                         + "  ".join(f"{mean:.2f} ± {std:.2f}" for mean, std in p["r2"]))
    lines.append("per seed (held-out loss; last-layer probe R^2):")
    for run in result["runs"]:
        probe = f"; R^2 {run['probe']['r2'][-1]:.2f}" if run.get("probe") else ""
        lines.append(f"  {run['kind']:<14}{run['position']:<11}seed {run['seed']}: {run['heldout_loss']:.3f}{probe}")
    if set(s["positions"]) == set(POSITIONS) and set(s["probe"]["positions"]) >= {"none", "learned"}:
        lines += ["", "what section 5.5 says about this run, checked:", *claim_lines(claims(result))]
    return "\n".join(lines)


#: Words of the tables per language.
TABLE_TEXT = {
    "en": {"position": "positions", "loss": "held-out loss, {}", "layer": "layer", "sep": ", ",
           "kinds": {"causal": "causal LM", "bidirectional": "masked LM"},
           "names": {"learned": "learned", "sinusoidal": "sinusoidal", "rotary": "rotary (RoPE)",
                     "alibi": "ALiBi", "none": "none (NoPos)"}},
    "zh": {"position": "位置编码", "loss": "留出集损失（{}）", "layer": "层", "sep": "，",
           "kinds": {"causal": "因果语言模型", "bidirectional": "掩码语言模型"},
           "names": {"learned": "可学习", "sinusoidal": "正弦", "rotary": "旋转（RoPE）", "alibi": "ALiBi",
                     "none": "无（NoPos）"}},
}


def markdown_table(result: dict, lang: str = "en") -> str:
    """The held-out losses as a Markdown table (mean ± sample std over the seeds) in ``lang``.

    >>> runs = [{"kind": k, "position": "none", "seed": 0, "heldout_loss": 2.5} for k in KINDS]
    >>> print(markdown_table({"settings": {"positions": ["none"]}, "runs": runs}).splitlines()[2])
    | none (NoPos) | 2.500 ± 0.000 | 2.500 ± 0.000 |
    """
    text, agg = TABLE_TEXT[lang], aggregate(result)
    rows = [f"| {text['position']} | " + " | ".join(text["loss"].format(text["kinds"][k]) for k in KINDS) + " |",
            "|---|" + "---:|" * len(KINDS)]
    for position in result["settings"]["positions"]:
        rows.append(f"| {text['names'][position]} | "
                    + " | ".join(f"{agg['loss'][k][position][0]:.3f} ± {agg['loss'][k][position][1]:.3f}"
                                 for k in KINDS) + " |")
    return "\n".join(rows)


def probe_table(result: dict, lang: str = "en") -> str:
    """The probe's R^2 per layer (rows) for every probed (kind, positions) (columns), as a
    Markdown table (mean ± sample std over the seeds)."""
    text, agg = TABLE_TEXT[lang], aggregate(result)
    columns = [(k, p) for p in result["settings"]["probe"]["positions"] for k in KINDS]
    rows = [f"| {text['layer']} | " + " | ".join(text["kinds"][k] + text["sep"] + text["names"][p] for k, p in columns)
            + " |", "|---|" + "---:|" * len(columns)]
    for layer in range(len(agg["probe"][KINDS[0]][columns[0][1]]["r2"])):
        rows.append(f"| {layer} | " + " | ".join("{:.2f} ± {:.2f}".format(*agg["probe"][k][p]["r2"][layer])
                                                 for k, p in columns) + " |")
    return "\n".join(rows)


def plot_results(result: dict, axes, *, labels: dict | None = None) -> None:
    """Three matplotlib axes: the probe's R^2 by layer (mean, bars: ± std over the seeds), the
    last layer's mean predicted position against the true one, and the held-out loss of every
    positions per kind; ``labels`` overrides the English texts (keys: see ``text`` below)."""
    agg, s = aggregate(result), result["settings"]
    text = {"causal": "causal LM", "bidirectional": "masked LM", "none": "NoPos", "learned": "learned",
            "layer": "layer (0 = embeddings)", "r2": "R² of the position probe", "mean": "predict the mean",
            "true": "true position", "predicted": "predicted position (last layer)", "perfect": "perfect",
            "loss": "held-out loss (nats)", "unigram": "unigram entropy", "title_probe": "position from hidden states",
            "title_pred": "what the probe reads (NoPos)", "title_loss": "loss by positions",
            **{f"pos_{p}": p for p in POSITIONS}, **(labels or {})}
    colors = {"causal": "#4c72b0", "bidirectional": "#dd8452"}
    styles = {"none": "-", "learned": "--"}
    ax = axes[0]
    for kind in KINDS:
        for position, p in agg["probe"][kind].items():
            means, stds = zip(*p["r2"])
            ax.errorbar(range(len(means)), means, yerr=stds, color=colors[kind], linestyle=styles.get(position, ":"),
                        marker="o", capsize=3, label=f"{text[kind]}, {text[position]}")
    ax.axhline(0.0, color="gray", linewidth=1, linestyle=":", label=text["mean"])
    ax.set(xlabel=text["layer"], ylabel=text["r2"], title=text["title_probe"], ylim=(-0.1, 1.05))
    ax.set_xticks(range(s["model"]["num_layers"] + 1))
    ax.legend(fontsize=7)
    ax = axes[1]
    seq = s["train"]["seq_len"]
    ax.plot([0, seq - 1], [0, seq - 1], color="gray", linewidth=1, label=text["perfect"])
    ax.axhline((seq - 1) / 2, color="gray", linewidth=1, linestyle=":", label=text["mean"])
    for kind in KINDS:
        if "none" in agg["probe"][kind]:
            ax.plot(range(seq), agg["probe"][kind]["none"]["predicted"], color=colors[kind], marker=".",
                    label=f"{text[kind]}, {text['none']}")
    ax.set(xlabel=text["true"], ylabel=text["predicted"], title=text["title_pred"])
    ax.legend(fontsize=7)
    ax = axes[2]
    width = 0.8 / len(KINDS)
    for n, kind in enumerate(KINDS):
        means, stds = zip(*(agg["loss"][kind][p] for p in s["positions"]))
        ax.bar([i + (n - 0.5) * width for i in range(len(means))], means, width, yerr=stds, capsize=3,
               color=colors[kind], label=text[kind])
    ax.axhline(result["unigram_entropy"], color="gray", linewidth=1, linestyle="--", label=text["unigram"])
    ax.set_xticks(range(len(s["positions"])), [text[f"pos_{p}"] for p in s["positions"]], fontsize=8)
    low = min(mean for per_kind in agg["loss"].values() for mean, _ in per_kind.values())
    ax.set(ylabel=text["loss"], title=text["title_loss"], ylim=(max(0.0, low - 0.3), result["unigram_entropy"] + 0.2))
    ax.legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
