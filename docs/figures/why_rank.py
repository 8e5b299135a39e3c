"""Chapter 5.2 figure: the normalised singular values of the attention matrices of a trained causal
LM and masked LM (and of the same models at initialisation), per layer, and how far their token
representations are from "all tokens equal"; the table (both languages) and the run's summary,
included in the page. The build stops when a statement the page makes about the run does not hold
for it (``why_rank.claims``).

The run is llmarch.lab.why_causal_vs_mlm (shared with section 5.3): it trains only when its cache
(keyed by a hash of the code and settings) has no result. Redraw alone:
``python docs/figures/why_rank.py``; the same numbers on the command line:
``python -m llmarch lab rank``.
"""

from __future__ import annotations

from _common import run_alone, save, save_tables, save_text, setup, texts_for


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.lab.claims import require
    from llmarch.lab.why_causal_vs_mlm import causal_vs_mlm
    from llmarch.lab.why_rank import claims, markdown_table, plot_rank, summary

    cjk = setup()
    result = causal_vs_mlm(verbose=True)
    require(claims(result), "section 5.2, full-rank attention")  # the page's reading of the numbers
    layers = result["settings"]["model"]["num_layers"]
    paths = []
    for lang in ("zh", "en"):
        texts = texts_for(
            lang, cjk,
            causal=("因果语言模型", "causal LM"), bidirectional=("掩码语言模型", "masked LM"),
            trained=("训练后", "trained"), initial=("初始化", "initialisation"),
            layer=("注意力，第 {} 层", "attention, layer {}"),
            index=("i（奇异值从大到小）", "i (singular values, largest first)"), sigma=("σ_i / σ_max", "σ_i / σ_max"),
            tol=("容差", "tolerance"), tokens=("词元表示", "token representations"), state=("之后", "after"),
            distance=("离“所有词元相同”的距离", "distance from 'all tokens equal'"), embeddings=("嵌入", "embeddings"),
        )
        fig, axes = plt.subplots(1, layers + 1, figsize=(5 * (layers + 1), 3.9))
        plot_rank(result, list(axes), labels=texts)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "why_rank", lang))
    paths += save_tables(out_dir, "why_rank_table", markdown_table, result)
    return paths + [save_text(out_dir, "why_rank_run.txt", summary(result))]


if __name__ == "__main__":
    run_alone(draw)
