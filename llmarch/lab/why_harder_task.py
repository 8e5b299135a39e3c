"""Section 5.3: is next-token prediction the harder task, and does it teach better representations?
Measured on a causal LM and a masked LM trained with the same compute on the same text
(``llmarch.lab.why_causal_vs_mlm``).

``python -m llmarch lab harder-task`` prints the numbers (from the cache, or trained now): how
predictable a character is from counts of its neighbours on one side or on both, each kind's cost
and predicted tokens per step, its held-out loss per predicted token, its loss on the same hidden
characters, and linear probes of every layer (trained and at initialisation); then the statements
section 5.3 makes about them, each checked.
"""

from __future__ import annotations

import sys

from .claims import Claims, claim_lines
from .why_causal_vs_mlm import KINDS
from .why_causal_vs_mlm_measures import PROPERTIES
from .why_causal_vs_mlm_report import (
    NAMES,
    command_line,
    header_lines,
    is_published,
    mean_std,
    runs_of,
    stat,
    texts_in,
)

__all__ = ["aggregate", "claims", "summary", "markdown_table", "probe_table", "ngram_markdown", "plot_harder",
           "main", "TABLE_TEXT"]

WEIGHTS = ("trained", "initial")
LEFT = ("word_position", "two_back")              # the properties that need the left context only


def aggregate(result: dict) -> dict:
    """``{kind: {...}}``: ``"parameters"``, ``"flops_per_step"``, ``"tokens_per_step"``,
    ``"predicted_per_step"`` (of the first seed: the same for every seed), and as ``(mean, std)``
    over seeds ``"loss"`` (held-out, per predicted token, the kind's own objective),
    ``"same_chars"``, ``"last_drop"`` (how much the held-out loss fell over the last evaluation
    interval), ``"probes"`` (``{weights: {property: [per state]}}``) and ``"best"`` (``{weights:
    {property: best state's accuracy}}``); plus ``"majority"`` (``{property: accuracy}``)."""
    out = {}
    for kind in KINDS:
        first = runs_of(result, kind)[0]
        out[kind] = {name: first[name] for name in ("parameters", "flops_per_step", "tokens_per_step",
                                                    "predicted_per_step")}
        out[kind]["loss"] = stat(result, kind, lambda r: r["loss"]["predicted"])
        out[kind]["same_chars"] = stat(result, kind, lambda r: r["loss"]["same_chars"])
        out[kind]["last_drop"] = stat(result, kind, lambda r: r["curve"][-2]["eval_loss"] - r["curve"][-1]["eval_loss"])
        out[kind]["probes"] = {w: {p: [mean_std(v) for v in zip(*(r[w]["probes"][p] for r in runs_of(result, kind)))]
                                   for p in PROPERTIES} for w in WEIGHTS}
        out[kind]["best"] = {w: {p: mean_std([max(r[w]["probes"][p]) for r in runs_of(result, kind)])
                                 for p in PROPERTIES} for w in WEIGHTS}
    out["majority"] = result["runs"][0]["majority"]
    return out


def _nats(result: dict, left: int, right: int) -> float:
    return next(row["nats"] for row in result["ngram"] if (row["left"], row["right"]) == (left, right))


def claims(result: dict) -> Claims:
    """The statements section 5.3 makes about the full run, each checked against ``result``."""
    agg = aggregate(result)
    causal, masked = agg["causal"], agg["bidirectional"]

    def apart(a, b):                               # a above b by more than both spreads
        return a[0] - b[0] > a[1] + b[1]

    share = masked["predicted_per_step"] / causal["predicted_per_step"]
    every = result["settings"]["train"]["eval_every"]
    gain = {kind: {p: agg[kind]["best"]["trained"][p][0] - agg[kind]["best"]["initial"][p][0] for p in LEFT}
            for kind in KINDS}
    return [
        ("same tokens read per step; the masked LM predicts 14-17% of them",
         causal["tokens_per_step"] == masked["tokens_per_step"] and 0.14 <= share <= 0.17),
        ("FLOPs per step of the two kinds differ by less than 5%",
         abs(masked["flops_per_step"] / causal["flops_per_step"] - 1) < 0.05),
        ("counts: as many characters seen, both sides beat the left side alone",
         _nats(result, 1, 1) < _nats(result, 2, 0) and _nats(result, 2, 2) < _nats(result, 4, 0)),
        ("same compute: causal LM's held-out loss per prediction below masked LM's",
         apart(masked["loss"], causal["loss"])),
        ("masked LM's loss per prediction above the count-based 1+1 estimate",
         masked["loss"][0] > _nats(result, 1, 1)),
        ("same hidden characters: causal LM (left only) below masked LM (both)",
         apart(masked["same_chars"], causal["same_chars"])),
        (f"masked LM's held-out loss fell more than causal LM's in the last {every} steps",
         masked["last_drop"][0] > causal["last_drop"][0]),
        ("left-context probes: causal LM's best layer ahead, beyond spreads",
         all(apart(causal["best"]["trained"][p], masked["best"]["trained"][p]) for p in LEFT)),
        ("initialisation: best left-context probes above the most common answer",
         all(agg[kind]["best"]["initial"][p][0] > agg["majority"][p] for kind in KINDS for p in LEFT)),
        ("training added >= 0.1 to causal LM's best left-context probe accuracy",
         all(gain["causal"][p] >= 0.1 for p in LEFT)),
        ("training added less to masked LM's left-context probes than to causal",
         all(gain["bidirectional"][p] < gain["causal"][p] for p in LEFT)),
        ("next character (right context): masked LM probes no better than causal",
         masked["best"]["trained"]["next_char"][0] <= causal["best"]["trained"]["next_char"][0]),
    ]


def _pm(pair: tuple[float, float], digits: int = 3) -> str:
    return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


PROPERTY_NAMES = {"word_position": "letters into the word", "two_back": "character two back",
                  "next_char": "next character"}


def summary(result: dict) -> str:
    """The measurements as plain text of at most 88 columns, per-seed numbers and the checked
    statements (for the full run)."""
    agg, s = aggregate(result), result["settings"]
    lines = ["section 5.3: next-token prediction vs masked LM at the same compute", *header_lines(result), "",
             "count-based cross-entropy of a held-out character (nats), given characters on",
             "the left / right (add-0.01 counts from the training text):"]
    lines.append("  " + "   ".join(f"{r['left']}+{r['right']}: {r['nats']:.3f}" for r in result["ngram"]))
    lines += ["", f"{'model':<11}{'params':>8}{'GFLOP/step':>11}{'read/step':>10}{'predicted':>10}"
                  f"{'loss/predicted':>17}{'same chars':>17}"]
    for kind in KINDS:
        a = agg[kind]
        lines.append(f"{NAMES[kind]:<11}{a['parameters']:>8,}{a['flops_per_step'] / 1e9:>11.3f}"
                     f"{a['tokens_per_step']:>10,}{a['predicted_per_step']:>10,}{_pm(a['loss']):>17}"
                     f"{_pm(a['same_chars']):>17}")
    lines += ["", "linear probes, test accuracy per state (embeddings, layer 1, ...), mean over seeds:"]
    for prop in PROPERTIES:
        lines.append(f"{PROPERTY_NAMES[prop]} (always the most common answer: {agg['majority'][prop]:.3f})")
        for kind in KINDS:
            for weights in WEIGHTS:
                cells = "  ".join(f"{v[0]:.3f}" for v in agg[kind]["probes"][weights][prop])
                best = agg[kind]["best"][weights][prop]
                lines.append(f"  {NAMES[kind]:<10}{weights:<9}{cells}   best {_pm(best)}")
    lines += ["", "per seed: held-out loss per predicted token / best probe of 'letters into the word':"]
    for index, seed in enumerate(s["seeds"]):
        cells = [f"{NAMES[kind]} {run['loss']['predicted']:.3f} / {max(run['trained']['probes']['word_position']):.3f}"
                 for kind in KINDS for run in [runs_of(result, kind)[index]]]
        lines.append(f"  seed {seed}: " + "   ".join(cells))
    if is_published(result):
        lines += ["", "what section 5.3 says about this run, checked:", *claim_lines(claims(result))]
    return "\n".join(lines)


#: Texts of the tables per language.
TABLE_TEXT = {
    "en": {"model": "model", "params": "parameters", "flops": "GFLOP/step", "read": "tokens read/step",
           "predicted": "tokens predicted/step", "loss": "held-out loss per predicted token",
           "same": "loss on the same hidden characters", "names": NAMES, "property": "property", "state": "layer",
           "embeddings": "embeddings", "trained": "{}, trained", "initial": "{}, initialisation",
           "majority": "{} (most common answer: {:.0%})", "properties": PROPERTY_NAMES,
           "context": "characters seen (left + right)", "nats": "cross-entropy (nats/character)"},
    "zh": {"model": "模型", "params": "参数量", "flops": "每步 GFLOP", "read": "每步读入词元", "predicted": "每步预测词元",
           "loss": "留出集损失（每个被预测词元）", "same": "同一批被遮字符上的损失",
           "names": {"causal": "因果语言模型", "bidirectional": "掩码语言模型"}, "property": "性质", "state": "层",
           "embeddings": "嵌入", "trained": "{}，训练后", "initial": "{}，初始化",
           "majority": "{}（多数类基线 {:.0%}）",
           "properties": {"word_position": "在词中的第几个字母", "two_back": "往前第二个字符", "next_char": "下一个字符"},
           "context": "可见字符（左 + 右）", "nats": "交叉熵（nats/字符）"},
}


def markdown_table(result: dict, lang: str = "en") -> str:
    """Cost and held-out losses of the two kinds (mean ± std over seeds), Markdown, in ``lang``."""
    text, agg = texts_in(TABLE_TEXT, lang), aggregate(result)
    rows = [f"| {text['model']} | {text['params']} | {text['flops']} | {text['read']} | {text['predicted']} | "
            f"{text['loss']} | {text['same']} |", "|---|---:|---:|---:|---:|---:|---:|"]
    for kind in KINDS:
        a = agg[kind]
        rows.append(f"| {text['names'][kind]} | {a['parameters']:,} | {a['flops_per_step'] / 1e9:.3f} | "
                    f"{a['tokens_per_step']:,} | {a['predicted_per_step']:,} | {_pm(a['loss'])} | "
                    f"{_pm(a['same_chars'])} |")
    return "\n".join(rows)


def probe_table(result: dict, lang: str = "en") -> str:
    """Probe accuracy per property and state, trained and at initialisation, Markdown, in ``lang``."""
    text, agg = texts_in(TABLE_TEXT, lang), aggregate(result)
    columns = [(kind, w) for w in WEIGHTS for kind in KINDS]
    titles = [text["property"], text["state"]] + [text[w].format(text["names"][k]) for k, w in columns]
    rows = ["| " + " | ".join(titles) + " |", "|---|---|" + "---:|" * len(columns)]
    for prop in PROPERTIES:
        name = text["majority"].format(text["properties"][prop], agg["majority"][prop])
        for state in range(len(agg["causal"]["probes"]["trained"][prop])):
            label = text["embeddings"] if state == 0 else str(state)
            cells = [_pm(agg[k]["probes"][w][prop][state]) for k, w in columns]
            rows.append(f"| {name if state == 0 else ''} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def ngram_markdown(result: dict, lang: str = "en") -> str:
    """The count-based cross-entropies, one column per context, Markdown, in ``lang``."""
    text = texts_in(TABLE_TEXT, lang)
    return "\n".join([f"| {text['context']} | " + " | ".join(f"{r['left']} + {r['right']}" for r in result["ngram"])
                      + " |", "|---|" + "---:|" * len(result["ngram"]),
                      f"| {text['nats']} | " + " | ".join(f"{r['nats']:.3f}" for r in result["ngram"]) + " |"])


COLORS = {"causal": "#4c72b0", "bidirectional": "#dd8452"}


def plot_harder(result: dict, axes, *, labels: dict | None = None) -> None:
    """Draw on ``axes[0]`` the held-out loss per predicted token during training (every seed), and
    on ``axes[1:]`` the probe accuracy per state for each property (trained solid, initialisation
    dashed, error bars: std over seeds; dotted: the most common answer). ``labels`` overrides the
    English texts (keys: the kinds, the properties, ``step``, ``loss``, ``curves``, ``accuracy``,
    ``state``, ``embeddings``, ``trained``, ``initial``, ``majority``)."""
    text = {**NAMES, **PROPERTY_NAMES, "step": "optimizer step", "loss": "held-out loss per predicted token",
            "curves": "training (same tokens read)", "accuracy": "probe accuracy (held-out)", "state": "after",
            "embeddings": "embeddings", "trained": "trained", "initial": "initialisation",
            "majority": "most common answer", **(labels or {})}
    for kind in KINDS:
        for n, run in enumerate(runs_of(result, kind)):
            axes[0].plot([r["step"] for r in run["curve"]], [r["eval_loss"] for r in run["curve"]], color=COLORS[kind],
                         alpha=0.9 if n == 0 else 0.5, linewidth=1.2, label=text[kind] if n == 0 else None)
    axes[0].set_title(text["curves"], fontsize=10)
    axes[0].set_xlabel(text["step"])
    axes[0].set_ylabel(text["loss"])
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    agg = aggregate(result)
    for ax, prop in zip(axes[1:], PROPERTIES):
        for kind in KINDS:
            for weights in WEIGHTS:
                values = agg[kind]["probes"][weights][prop]
                ax.errorbar(range(len(values)), [v[0] for v in values], yerr=[v[1] for v in values], marker="o",
                            color=COLORS[kind], linestyle="-" if weights == "trained" else "--", markersize=3,
                            capsize=3, label=f"{text[kind]}, {text[weights]}")
        ax.axhline(agg["majority"][prop], color="gray", linestyle=":", linewidth=0.8, label=text["majority"])
        states = len(agg["causal"]["probes"]["trained"][prop])
        ax.set_xticks(range(states), [text["embeddings"]] + [str(i) for i in range(1, states)])
        ax.set_title(text[prop], fontsize=10)
        ax.set_xlabel(text["state"])
        ax.grid(alpha=0.3)
    axes[1].set_ylabel(text["accuracy"])
    axes[1].legend(fontsize=7)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmarch lab harder-task [--quick] [--workers N] [--refresh] [--plot FILE]``."""
    from .lab_command import report_run

    args, result = command_line(argv, "python -m llmarch lab harder-task", __doc__)
    return report_run(args, result, summary, plot_harder, columns=1 + len(PROPERTIES), size=(18, 3.8))


if __name__ == "__main__":
    sys.exit(main())
