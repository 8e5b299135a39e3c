"""Chapter 4.3 figure: GLM's attention mask and 2D positions for the example of Du et al. (2022),
Figure 2 -- text x1 .. x6, spans {x3} and {x5 x6}, Part B in the order [x5 x6], [x3] -- drawn from
``llmarch.training.glm.glm_blank_infilling``. Redraw alone: ``python docs/figures/prefix_glm.py``.
"""

from __future__ import annotations

from _common import labels, run_alone, save, setup

NAMES = {0: "[M]", 7: "[S]", 8: "[E]"}


def example():
    """The GLMExample of Figure 2 (x_i has id i; [M] = 0, [S] = 7, [E] = 8)."""
    import torch

    from llmarch.training.glm import glm_blank_infilling

    return glm_blank_infilling(torch.tensor([1, 2, 3, 4, 5, 6]), [(2, 3), (4, 6)], mask_token_id=0,
                               start_token_id=7, end_token_id=8, order=[1, 0])


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.nn.plotting import plot_mask

    cjk = setup()
    ex = example()
    tokens = [NAMES.get(i, f"x{i}") for i in ex.input_ids.tolist()]
    n, a = len(tokens), ex.part_a_length
    paths = []
    for lang in ("zh", "en"):
        fig, (ax, table) = plt.subplots(2, 1, figsize=(5.6, 7.0), gridspec_kw={"height_ratios": [5, 1.3]})
        plot_mask(ex.attention_mask(), ax, tokens=tokens,
                  title=labels("GLM 的注意力掩码（深色 = 可以注意）", "GLM's attention mask (dark = may attend)",
                               lang, cjk))
        ax.set_title(ax.get_title(), pad=16)
        ax.set_xticklabels(tokens, rotation=0, fontsize=8)
        ax.set_xlabel(labels("被看的词元（key）", "attended token (key)", lang, cjk))
        ax.set_ylabel(labels("当前词元（query）", "current token (query)", lang, cjk))
        ax.axvline(a - 0.5, color="#c44e52", linewidth=1.5)
        ax.axhline(a - 0.5, color="#c44e52", linewidth=1.5)
        ax.text(a / 2 - 0.5, -0.6, "Part A", ha="center", va="bottom", color="#c44e52", fontsize=9)
        ax.text(a + (n - a) / 2 - 0.5, -0.6, "Part B", ha="center", va="bottom", color="#c44e52", fontsize=9)
        rows = [("tokens", labels("词元", "token", lang, cjk), tokens),
                ("pos1", labels("位置 1", "position 1", lang, cjk), ex.position_ids.tolist()),
                ("pos2", labels("位置 2", "position 2", lang, cjk), ex.block_position_ids.tolist()),
                ("label", labels("目标", "target", lang, cjk),
                 ["" if v < 0 else NAMES.get(v, f"x{v}") for v in ex.labels.tolist()])]
        table.axis("off")
        cells = [[str(v) for v in values] for _, _, values in rows]
        t = table.table(cellText=cells, rowLabels=[name for _, name, _ in rows], loc="center", cellLoc="center")
        t.auto_set_font_size(False)
        t.set_fontsize(8)
        for (row, col), cell in t.get_celld().items():
            if col >= a:
                cell.set_facecolor("#f3f3f3")
        fig.tight_layout()
        paths.append(save(fig, out_dir, "prefix_glm", lang))
    return paths


if __name__ == "__main__":
    run_alone(draw)
