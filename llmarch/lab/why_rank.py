"""Section 5.2: is causal attention "full rank" and bidirectional attention "low rank"? Measured in a
trained causal LM and masked LM of one size, on the same text (``llmarch.lab.why_causal_vs_mlm``).

``python -m llmarch lab rank`` prints the numbers (from the cache, or trained now): per layer the
numerical rank, the effective rank and the smallest normalised singular value of the attention
matrices, trained and at initialisation, and how far the token representations are from "all
tokens equal"; then the statements section 5.2 makes about them, each checked.
"""

from __future__ import annotations

import sys

from .claims import Claims, claim_lines
from .why_causal_vs_mlm import KINDS
from .why_causal_vs_mlm_report import (
    NAMES,
    command_line,
    header_lines,
    is_published,
    mean_std,
    runs_of,
    texts_in,
)

__all__ = ["aggregate", "claims", "summary", "markdown_table", "plot_rank", "main", "TABLE_TEXT"]

WEIGHTS = ("initial", "trained")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _mean_all(rows: list[list[float]]) -> float:
    """The mean over every layer and head."""
    return _mean([v for row in rows for v in row])


def _median(values: list[float]) -> float:
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def aggregate(result: dict) -> dict:
    """``{kind: {weights: {...}}}`` (weights "initial" or "trained") with, per layer, ``"rank"`` and
    ``"erank"`` (the mean over heads; mean and sample std over seeds), ``"smallest"`` (the median
    over seeds and heads of each head's median sigma_min / sigma_max), ``"heads"`` (every head's
    numerical rank, all seeds), ``"rank_all"`` and ``"erank_all"`` (the mean over layers and heads;
    mean and std over seeds), and per state (embeddings, then each layer) ``"uniform"`` and
    ``"rank1"`` (mean and std over seeds)."""
    out = {}
    for kind in KINDS:
        runs, out[kind] = runs_of(result, kind), {}
        for weights in WEIGHTS:
            parts = [run[weights] for run in runs]
            layers = range(len(parts[0]["rank"]))
            out[kind][weights] = {
                "rank": [mean_std([_mean(p["rank"][layer]) for p in parts]) for layer in layers],
                "erank": [mean_std([_mean(p["erank"][layer]) for p in parts]) for layer in layers],
                "smallest": [_median([v for p in parts for v in p["smallest"][layer]]) for layer in layers],
                "heads": [v for p in parts for row in p["rank"] for v in row],
                "rank_all": mean_std([_mean_all(p["rank"]) for p in parts]),
                "erank_all": mean_std([_mean_all(p["erank"]) for p in parts]),
                "uniform": [mean_std(values) for values in zip(*(p["uniform"] for p in parts))],
                "rank1": [mean_std(values) for values in zip(*(p["rank1"] for p in parts))]}
    return out


def claims(result: dict) -> Claims:
    """The statements section 5.2 makes about the full run, each checked against ``result``."""
    agg, s = aggregate(result), result["settings"]
    n, head = s["train"]["seq_len"], s["model"]["d_model"] // s["model"]["num_heads"]
    causal, masked = agg["causal"], agg["bidirectional"]

    def apart(a, b):                               # a above b by more than both spreads
        return a[0] - b[0] > a[1] + b[1]

    return [
        (f"init: every causal head keeps all {n} singular values above tol",
         all(v == n for v in causal["initial"]["heads"])),
        (f"init: every bidirectional head's numerical rank = head size {head} +- 2",
         all(abs(v - head) <= 2 for v in masked["initial"]["heads"])),
        ("init: bidirectional mean effective rank below 2",
         all(v[0] < 2 for v in masked["initial"]["erank"])),
        ("trained: every bidirectional head's numerical rank > 2 x head size",
         all(v > 2 * head for v in masked["trained"]["heads"])),
        (f"trained: no causal head keeps all {n} singular values above tol",
         all(v < n for v in causal["trained"]["heads"])),
        (f"trained: mean numerical ranks of the kinds differ by < 5 (of {n})",
         abs(causal["trained"]["rank_all"][0] - masked["trained"]["rank_all"][0]) < 5),
        ("trained: causal effective rank above bidirectional, beyond spreads",
         apart(causal["trained"]["erank_all"], masked["trained"]["erank_all"])),
        ("trained: causal maps numerically singular, median sigma_min/max < 1e-15",
         all(v < 1e-15 for v in causal["trained"]["smallest"])),
        ("trained: causal maps worse conditioned than bidirectional, every layer",
         all(c < b for c, b in zip(causal["trained"]["smallest"], masked["trained"]["smallest"]))),
        ("tokens far from collapse: distance from 'all equal' > 0.5 everywhere",
         all(v[0] > 0.5 for kind in KINDS for w in WEIGHTS for v in agg[kind][w]["uniform"])),
        ("trained: bidirectional layers nearer 'all equal', beyond spreads",
         all(apart(c, b) for c, b in zip(causal["trained"]["uniform"][1:], masked["trained"]["uniform"][1:]))),
    ]


def _tiny(value: float) -> str:
    """``value`` to one digit, or ``<1e-15`` below what a double-precision SVD resolves."""
    return "<1e-15" if value < 1e-15 else f"{value:.0e}"


def _pm(pair: tuple[float, float], digits: int = 1) -> str:
    return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


def summary(result: dict) -> str:
    """The measurements as plain text of at most 88 columns, per-seed numbers and the checked
    statements (for the full run)."""
    agg, s = aggregate(result), result["settings"]
    n, layers = s["train"]["seq_len"], s["model"]["num_layers"]
    head = s["model"]["d_model"] // s["model"]["num_heads"]
    lines = ["section 5.2: the rank of attention in a trained causal LM and masked LM", *header_lines(result),
             (f"attention: {s['heldout']['rank_windows']} windows of {n}; numerical rank = count of sigma_i > "
              f"{s['rank_tol']:g} sigma_max;"),
             f"erank = exp(entropy of sigma / sum sigma); head size {head}; mean ± std over seeds", "",
             f"{'model':<11}{'weights':<9}{'layer':>6}{'numerical rank':>17}{'effective rank':>17}"
             f"{'sigma_min/max':>15}"]
    for kind in KINDS:
        for weights in WEIGHTS:
            a = agg[kind][weights]
            for layer in range(layers):
                lines.append(f"{NAMES[kind]:<11}{weights:<9}{layer + 1:>6}{_pm(a['rank'][layer]):>17}"
                             f"{_pm(a['erank'][layer]):>17}{_tiny(a['smallest'][layer]):>15}")
    lines += ["", "token representations: ||X - mean||_F / ||X||_F (0 = all tokens equal),",
              "then ||X - X_rank1||_F / ||X||_F, after the embeddings and each layer"]
    for kind in KINDS:
        for weights in WEIGHTS:
            a = agg[kind][weights]
            cells = "  ".join(f"{u[0]:.2f}/{r[0]:.2f}" for u, r in zip(a["uniform"], a["rank1"]))
            lines.append(f"{NAMES[kind]:<11}{weights:<9}{cells}")
    lines += ["", "per seed, trained (mean numerical rank / effective rank over all heads):"]
    for index, seed in enumerate(s["seeds"]):
        cells = []
        for kind in KINDS:
            run = runs_of(result, kind)[index]["trained"]
            cells.append(f"{NAMES[kind]} {_mean_all(run['rank']):.1f} / {_mean_all(run['erank']):.1f}")
        lines.append(f"  seed {seed}: " + "   ".join(cells))
    if is_published(result):
        lines += ["", "what section 5.2 says about this run, checked:", *claim_lines(claims(result))]
    return "\n".join(lines)


#: Column titles of ``markdown_table`` per language.
TABLE_TEXT = {
    "en": {"model": "model", "weights": "weights", "layer": "layer", "rank": "numerical rank (of {})",
           "erank": "effective rank", "smallest": "σ_min/σ_max (median)", "uniform": "tokens: distance from equal",
           "names": NAMES, "initial": "initial", "trained": "trained"},
    "zh": {"model": "模型", "weights": "权重", "layer": "层", "rank": "数值秩（满秩 {}）", "erank": "有效秩",
           "smallest": "σ_min/σ_max（中位数）", "uniform": "词元表示：离“全部相同”的距离",
           "names": {"causal": "因果语言模型", "bidirectional": "掩码语言模型"}, "initial": "初始化", "trained": "训练后"},
}


def markdown_table(result: dict, lang: str = "en") -> str:
    """Per kind, weights and layer: numerical rank, effective rank (mean ± std over seeds), the
    median smallest normalised singular value and the token representations' distance from "all
    equal" after the layer, as a Markdown table in ``lang`` ("en" or "zh")."""
    text, agg = texts_in(TABLE_TEXT, lang), aggregate(result)
    rows = [f"| {text['model']} | {text['weights']} | {text['layer']} | "
            f"{text['rank'].format(result['settings']['train']['seq_len'])} | {text['erank']} | "
            f"{text['smallest']} | {text['uniform']} |", "|---|---|---:|---:|---:|---:|---:|"]
    for kind in KINDS:
        for weights in WEIGHTS:
            a = agg[kind][weights]
            for layer in range(len(a["rank"])):
                rows.append(f"| {text['names'][kind]} | {text[weights]} | {layer + 1} | {_pm(a['rank'][layer])} | "
                            f"{_pm(a['erank'][layer])} | {_tiny(a['smallest'][layer])} | "
                            f"{_pm(a['uniform'][layer + 1], 2)} |")
    return "\n".join(rows)


COLORS = {"causal": "#4c72b0", "bidirectional": "#dd8452"}


def plot_rank(result: dict, axes, *, labels: dict | None = None) -> None:
    """Draw the normalised singular values of the attention matrices, one axis per layer (median
    over seeds and heads, the band from the lowest to the highest head), and on the last axis the
    token representations' distance from "all equal" per layer (error bars: std over seeds).
    ``labels`` overrides the English texts (keys: the kinds, ``trained``, ``initial``, ``layer``,
    ``index``, ``sigma``, ``tol``, ``tokens``, ``state``, ``distance``, ``embeddings``)."""
    text = {**NAMES, "trained": "trained", "initial": "initialisation", "layer": "attention, layer {}",
            "index": "i (singular values, largest first)", "sigma": "σ_i / σ_max", "tol": "tolerance",
            "tokens": "token representations", "state": "after", "distance": "distance from 'all tokens equal'",
            "embeddings": "embeddings", **(labels or {})}
    s = result["settings"]
    layers = s["model"]["num_layers"]
    for layer, ax in zip(range(layers), axes):
        for kind in KINDS:
            for weights in WEIGHTS:
                rows = [row for run in runs_of(result, kind) for row in run[weights]["spectrum"][layer]]
                curves = list(zip(*rows))                   # per index i: sigma_i / sigma_max of every head
                index = range(1, len(curves) + 1)
                middle = [_median(list(c)) for c in curves]
                style = {"color": COLORS[kind], "linestyle": "-" if weights == "trained" else "--"}
                ax.plot(index, middle, linewidth=1.5, label=f"{text[kind]}, {text[weights]}", **style)
                if weights == "trained":
                    ax.fill_between(index, [min(c) for c in curves], [max(c) for c in curves], color=COLORS[kind],
                                    alpha=0.2, linewidth=0)
        ax.axhline(s["rank_tol"], color="gray", linewidth=0.8, linestyle=":", label=text["tol"])
        ax.set_yscale("log")
        ax.set_ylim(1e-17, 2)
        ax.set_title(text["layer"].format(layer + 1), fontsize=10)
        ax.set_xlabel(text["index"])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(text["sigma"])
    axes[0].legend(fontsize=7, loc="lower left")
    ax, agg = axes[layers], aggregate(result)
    ticks = [text["embeddings"]] + [str(layer + 1) for layer in range(layers)]
    for kind in KINDS:
        for weights in WEIGHTS:
            values = agg[kind][weights]["uniform"]
            ax.errorbar(range(len(values)), [v[0] for v in values], yerr=[v[1] for v in values], color=COLORS[kind],
                        linestyle="-" if weights == "trained" else "--", marker="o", markersize=3, capsize=3,
                        label=f"{text[kind]}, {text[weights]}")
    ax.set_xticks(range(len(ticks)), ticks)
    ax.set_xlabel(text["state"])
    ax.set_ylim(0, 1.05)
    ax.set_title(text["tokens"], fontsize=10)
    ax.set_ylabel(text["distance"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")


def main(argv: list[str] | None = None) -> int:
    """``python -m llmarch lab rank [--quick] [--workers N] [--refresh] [--plot FILE]``."""
    from .lab_command import report_run

    args, result = command_line(argv, "python -m llmarch lab rank", __doc__)
    columns = result["settings"]["model"]["num_layers"] + 1
    return report_run(args, result, summary, plot_rank, columns=columns, size=(5 * columns, 3.8))


if __name__ == "__main__":
    sys.exit(main())
