"""Chapter 4.4 figure: a 10-turn chat with a causal decoder (KV cache kept), a prefix LM (prefix run
again every turn) and an encoder-decoder (encoder run again every turn): the time of each turn and
the floating-point operations it took; plus the measurement as text, included in the page. The
build stops when a statement the page makes about the arithmetic does not hold
(``multiturn.claims``).

The measurement is llmarch.lab.multiturn, cached by a hash of the code, the settings and the CPU
model. Redraw alone: ``python docs/figures/prefix_multiturn.py``; the same numbers on the command
line: ``python -m llmarch lab multiturn``.
"""

from __future__ import annotations

from _common import run_alone, save, save_text, setup, texts_for


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch.lab.claims import require
    from llmarch.lab.multiturn import claims, multiturn, plot_multiturn, summary

    cjk = setup()
    result = multiturn()
    require(claims(result), "section 4.4, the multi-turn chat")  # the page's reading of the numbers
    paths = []
    for lang in ("zh", "en"):
        texts = texts_for(
            lang, cjk,
            causal=("因果 decoder（缓存一直保留）", "causal decoder (cache kept)"),
            prefix=("Prefix-LM（每轮重跑前缀）", "prefix LM (prefix run again)"),
            encdec=("Encoder-Decoder（每轮重跑编码器）", "encoder-decoder (encoder run again)"),
            turn=("第几轮", "turn"),
            ms=("每轮耗时（毫秒，中位数）", "time per turn (ms, median)"),
            flops=("每轮的计算量（GFLOP，计数）", "GFLOP per turn (counted)"),
        )
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        plot_multiturn(result, axes, labels=texts)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "prefix_multiturn", lang))
    return paths + [save_text(out_dir, "prefix_multiturn.txt", summary(result))]


if __name__ == "__main__":
    run_alone(draw)
