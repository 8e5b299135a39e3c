"""Chapter 4.1 figure: which cached keys go stale when a turn is appended. A small random model
reads 6 tokens (turn 1), then the same 6 plus 4 more (turn 2); for every layer and every turn-1
position the figure shows how far the cached keys moved, |K(turn 2) - K(turn 1)| / |K(turn 1)|, for the
causal mask and for a prefix that grows with the dialogue (float64, so rounding is ~1e-16).
Redraw alone: ``python docs/figures/prefix_lm_stale.py``.
"""

from __future__ import annotations

from _common import labels, run_alone, save, setup


def key_changes():
    """``{"causal": (layers, 6), "prefix": (layers, 6)}``: for every layer and turn-1 position, the
    change of the cached key vectors relative to their length, in percent (largest over the heads)."""
    import torch

    from llmarch import KVCache, create_model

    torch.manual_seed(0)
    model = create_model("gpt2", num_layers=4, d_model=32, num_heads=4, d_ff=64, vocab_size=50,
                         dropout=0.0, attention_dropout=0.0).double().eval()
    dialogue = torch.randint(0, 50, (1, 10))
    out = {}
    with torch.no_grad():
        for name in ("causal", "prefix"):
            caches = []
            for length in (6, 10):
                cache = KVCache.dynamic(4)
                model(dialogue[:, :length], cache=cache, prefix_lengths=length if name == "prefix" else None)
                caches.append(cache)
            out[name] = torch.stack([  # relative change of each position's keys, in percent
                100 * (new.get()[0][..., :6, :] - old.get()[0]).norm(dim=-1).amax(dim=(0, 1))
                / old.get()[0].norm(dim=-1).amax(dim=(0, 1))
                for old, new in zip(caches[0].layers, caches[1].layers)])
    return out


def draw(out_dir):
    import matplotlib.pyplot as plt

    cjk = setup()
    changes = key_changes()
    top = max(float(c.max()) for c in changes.values())
    paths = []
    for lang in ("zh", "en"):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        titles = {"causal": labels("因果掩码：缓存一直有效", "causal mask: the cache stays valid", lang, cjk),
                  "prefix": labels("前缀从 6 个词元长到 10 个：缓存过期", "prefix grows from 6 to 10 tokens: stale",
                                   lang, cjk)}
        for ax, (name, values) in zip(axes, changes.items()):
            image = ax.imshow(values.numpy(), cmap="Reds", vmin=0, vmax=top)
            for (layer, pos), value in zip([(i, j) for i in range(values.shape[0]) for j in range(values.shape[1])],
                                           values.flatten().tolist()):
                ax.text(pos, layer, f"{value:.0f}%" if value > 0.5 else "0", ha="center", va="center", fontsize=7,
                        color="white" if value > top / 2 else "black")
            ax.set_title(titles[name], fontsize=10)
            ax.set_xticks(range(values.shape[1]))
            ax.set_yticks(range(values.shape[0]), [str(i + 1) for i in range(values.shape[0])])
            ax.set_xlabel(labels("第 1 轮的位置", "position in turn 1", lang, cjk))
            ax.set_ylabel(labels("层", "layer", lang, cjk))
        fig.colorbar(image, ax=axes, shrink=0.85, label=labels("缓存的键向量变化（%）",
                                                              "change of the cached keys (%)", lang, cjk))
        paths.append(save(fig, out_dir, "prefix_lm_stale", lang))
    return paths


if __name__ == "__main__":
    run_alone(draw)
