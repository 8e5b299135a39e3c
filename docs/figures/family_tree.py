"""Family tree of Transformer language models: four branches from "Attention Is All You Need"."""

from __future__ import annotations

from _common import labels, save, setup

# (branch index, year, name); years are those of the first paper / preprint.
MODELS = [
    (0, 2018, "BERT"), (0, 2019.35, "RoBERTa"), (0, 2019.75, "ALBERT"), (0, 2020.25, "ELECTRA"),
    (0, 2020.6, "DeBERTa"),
    (1, 2019.55, "BART"), (1, 2019.85, "T5"), (1, 2020.8, "mT5"), (1, 2022.8, "Flan-T5"),
    (2, 2018.4, "GPT-1"), (2, 2019.1, "GPT-2"), (2, 2020.4, "GPT-3"), (2, 2022.3, "PaLM"),
    (2, 2023.15, "LLaMA"), (2, 2023.55, "Llama 2"),
    (3, 2019.4, "UniLM"), (3, 2021.2, "GLM"), (3, 2022.8, "GLM-130B"),
]

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
        ax.set_ylabel(labels("年份（首篇论文）", "year (first paper)", lang, cjk))
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
            branch = [(year, model) for bb, year, model in MODELS if bb == b]
            years = [year for year, _ in branch]
            ax.plot([b, b], [2017.55, max(years)], color=color, lw=2, alpha=0.35, zorder=0)
            for year, model in branch:
                ax.text(b, year, model, ha="center", va="center", fontsize=10,
                        bbox=dict(boxstyle="round,pad=0.3", fc="white", ec=color, lw=1.4))
        ax.set_title(labels("Transformer 语言模型家族树", "The Transformer language-model family tree",
                            lang, cjk), fontsize=13)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "family_tree", lang))
    return paths
