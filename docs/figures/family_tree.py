"""Family tree of Transformer language models: four branches from "Attention Is All You Need"."""

from __future__ import annotations

from _common import labels, save, setup

# (branch index, year, month, name, source): the month the first paper or preprint appeared.
# An optional x offset (last field) keeps models of one branch a few months apart readable.
MODELS = [
    (0, 2018, 10, "BERT", "arXiv:1810.04805"),
    (0, 2019, 7, "RoBERTa", "arXiv:1907.11692", -0.16),
    (0, 2019, 9, "ALBERT", "arXiv:1909.11942", 0.16),
    (0, 2020, 3, "ELECTRA", "arXiv:2003.10555", -0.16),
    (0, 2020, 6, "DeBERTa", "arXiv:2006.03654", 0.16),
    (1, 2019, 10, "T5", "arXiv:1910.10683", -0.13),
    (1, 2019, 10, "BART", "arXiv:1910.13461", 0.13),
    (1, 2020, 10, "mT5", "arXiv:2010.11934"),
    (1, 2022, 10, "Flan-T5", "arXiv:2210.11416"),
    (2, 2018, 6, "GPT-1", "OpenAI technical report, June 2018"),
    (2, 2019, 2, "GPT-2", "OpenAI technical report, February 2019"),
    (2, 2020, 5, "GPT-3", "arXiv:2005.14165"),
    (2, 2022, 4, "PaLM", "arXiv:2204.02311"),
    (2, 2023, 2, "LLaMA", "arXiv:2302.13971"),
    (2, 2023, 7, "Llama 2", "arXiv:2307.09288"),
    (3, 2019, 5, "UniLM", "arXiv:1905.03197"),
    (3, 2021, 3, "GLM", "arXiv:2103.10360"),
    (3, 2022, 10, "GLM-130B", "arXiv:2210.02414"),
]


def when(year: int, month: int) -> float:
    """The middle of a month on the year axis."""
    return year + (month - 0.5) / 12

BRANCHES = [
    ("Encoder-only", "双向注意力 · 掩码语言模型", "bidirectional · masked LM", "#4c72b0"),
    ("Encoder-Decoder", "编码器 + 交叉注意力 + 因果解码器", "encoder + cross-attn + causal decoder", "#55a868"),
    ("Decoder-only", "因果注意力 · 下一个词预测", "causal · next-token prediction", "#c44e52"),
    ("Prefix-LM", "前缀双向、其余因果", "bidirectional prefix, causal rest", "#8172b2"),
]


def draw(out_dir):
    import matplotlib.pyplot as plt

    cjk = setup()
    paths = []
    for lang in ("zh", "en"):
        fig, ax = plt.subplots(figsize=(11, 6.2))
        ax.set_xlim(-0.7, 3.7)
        ax.set_ylim(2024.0, 2015.85)
        ax.set_xticks([])
        ax.set_yticks(range(2018, 2024))
        ax.set_ylabel(labels("首篇论文或预印本的年份", "year of the first paper or preprint", lang, cjk))
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
        ax.grid(axis="y", color="#dddddd", linewidth=0.8)
        ax.set_axisbelow(True)

        root = (1.5, 2016.3)
        ax.text(*root, "Transformer\n“Attention Is All You Need”", ha="center", va="center",
                fontsize=11, zorder=3,
                bbox=dict(boxstyle="round,pad=0.4", fc="#f2f2f2", ec="#333333"))
        for b, (name, zh, en, color) in enumerate(BRANCHES):
            ax.annotate("", xy=(b, 2017.05), xytext=root, zorder=1,
                        arrowprops=dict(arrowstyle="-|>", color=color, lw=1.6,
                                        shrinkA=4, shrinkB=2))
            ax.text(b, 2017.3, f"{name}\n{labels(zh, en, lang, cjk)}", ha="center", va="center",
                    fontsize=9.5, color="white", zorder=3,
                    bbox=dict(boxstyle="round,pad=0.35", fc=color, ec=color))
            branch = [(when(year, month), name, (dx or (0.0,))[0])
                      for bb, year, month, name, _, *dx in MODELS if bb == b]
            ax.plot([b, b], [2017.55, max(y for y, _, _ in branch)], color=color, lw=2, alpha=0.35,
                    zorder=0)
            for y, model, dx in branch:
                ax.text(b + dx, y, model, ha="center", va="center", fontsize=10,
                        bbox=dict(boxstyle="round,pad=0.3", fc="white", ec=color, lw=1.4))

        ax.set_title(labels("Transformer 语言模型家族树", "The Transformer language-model family tree",
                            lang, cjk), fontsize=13)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "family_tree", lang))
    return paths
