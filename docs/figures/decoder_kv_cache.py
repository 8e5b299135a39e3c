"""Chapter 1 figure: greedy decoding time with and without the KV cache, measured at build time
(llmarch.lab.bench_generate.cache_speedups on a small random GPT)."""

from __future__ import annotations

import torch

from _common import labels, save, setup

LENGTHS = (16, 32, 64, 128, 256)


def measure():
    from llmarch import create_model
    from llmarch.lab.bench_generate import cache_speedups

    torch.manual_seed(0)
    model = create_model("gpt2", num_layers=4, d_model=128, num_heads=4, d_ff=512, vocab_size=512,
                         max_positions=512).eval()
    return cache_speedups(model, LENGTHS, rounds=2)  # best of 2: robust to a busy machine


def draw(out_dir):
    import matplotlib.pyplot as plt

    cjk = setup()
    rows = measure()
    lengths = [n for n, _, _ in rows]
    paths = []
    for lang in ("zh", "en"):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        cached, recomputed = [c for _, c, _ in rows], [n for _, _, n in rows]
        axes[0].plot(lengths, cached, "o-", label=labels("有 KV 缓存", "with KV cache", lang, cjk))
        axes[0].plot(lengths, recomputed, "s-", label=labels("无缓存（每步重算）", "no cache (recompute)", lang, cjk))
        axes[0].set_xlabel(labels("新生成的词元数", "new tokens", lang, cjk))
        axes[0].set_ylabel(labels("耗时（秒）", "time (s)", lang, cjk))
        axes[0].legend()
        axes[1].plot(lengths, [n / c for c, n in zip(cached, recomputed)], "o-", color="#c44e52")
        axes[1].set_xlabel(labels("新生成的词元数", "new tokens", lang, cjk))
        axes[1].set_ylabel(labels("加速比（无缓存 / 有缓存）", "speed-up (no cache / cache)", lang, cjk))
        for ax in axes:
            ax.set_xscale("log", base=2)
            ax.grid(alpha=0.3)
        fig.suptitle(labels("贪心解码，batch 1，提示 16 个词元，4 层 d_model=128（构建网站时实测）",
                            "greedy, batch 1, 16-token prompt, 4 layers d_model=128 (measured at build time)",
                            lang, cjk), y=1.03)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "decoder_kv_cache", lang))
    return paths
