"""``python -m llmarch bench encoder``: BERT forward throughput against Hugging Face.

One run measures, with the same weights and the same inputs:

* the forward pass (fp32, inference mode, batch 8 x 128 tokens) of llmarch's
  ``EncoderOnly`` with the ``bert-base`` preset and of
  Hugging Face ``BertModel`` (its ``sdpa`` attention), run alternately so that both see the
  same machine state; the median of several repeats is reported;
* the machine's fp32 matmul peak (a large square ``torch.mm``), in the same process, and the
  fraction of it that the llmarch forward achieves (FLOPs counted from the shapes).

``--quick`` shrinks the model and the repeats to a smoke test of a few seconds.
"""

from __future__ import annotations

import statistics
import time

import torch

__all__ = ["run", "forward_flops", "matmul_peak"]


def forward_flops(config, batch: int, seq: int) -> int:
    """Multiply-add FLOPs (2 per MAC) of an encoder forward: projections, FFN, attention."""
    tokens = batch * seq
    d, ff = config.d_model, config.d_ff
    per_layer = 2 * tokens * (4 * d * d + 2 * d * ff) + 2 * 2 * batch * seq * seq * d
    pooler = 2 * batch * d * d if config.pooler else 0
    return config.num_layers * per_layer + pooler


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak(size: int = 4096, repeats: int = 5) -> float:
    """fp32 FLOP/s of a ``size x size`` matmul (median of ``repeats`` after one warm-up).

    >>> matmul_peak(64, 2) > 0
    True
    """
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    return 2 * size**3 / _median_time(lambda: torch.mm(a, b), repeats)


def run(args) -> int:
    from transformers import BertConfig, BertModel

    from ..interop.bert import config_to_hf, state_dict_from_hf
    from ..models.encoder_only import EncoderOnly
    from ..models.presets import get_config

    quick = getattr(args, "quick", False)
    overrides = dict(num_layers=2, d_model=256, num_heads=4, d_ff=1024) if quick else {}
    config = get_config("bert-base", dropout=0.0, attention_dropout=0.0, **overrides)
    batch, seq, rounds = (8, 32, 4) if quick else (8, 128, 10)
    torch.manual_seed(0)

    ours = EncoderOnly(config).eval()
    hf_config = BertConfig(**{k: v for k, v in config_to_hf(ours).items() if k not in ("architectures", "model_type")})
    hf = BertModel._from_config(hf_config, attn_implementation="sdpa").eval()
    ours.load_state_dict(state_dict_from_hf(hf.state_dict(), config), strict=True)
    input_ids = torch.randint(config.vocab_size, (batch, seq))
    token_type_ids = torch.zeros_like(input_ids)

    with torch.inference_mode():
        ref = hf(input_ids=input_ids, token_type_ids=token_type_ids).last_hidden_state
        out = ours(input_ids, token_type_ids=token_type_ids)
        max_err = (out - ref).abs().max().item()
        size = 1024 if quick else 4096
        times = {"llmarch": [], "hf": [], "peak": []}
        runs = {"llmarch": lambda: ours(input_ids, token_type_ids=token_type_ids),
                "hf": lambda: hf(input_ids=input_ids, token_type_ids=token_type_ids)}
        for round_index in range(rounds):  # interleaved, so that all three see the same machine state
            # alternate which model goes first: the second of two back-to-back runs is measurably
            # faster or slower (caches, allocator), a bias of a few percent otherwise
            order = ("llmarch", "hf") if round_index % 2 == 0 else ("hf", "llmarch")
            for label in order:
                times[label].append(_median_time(runs[label], 1))
            times["peak"].append(matmul_peak(size, 1))

    t_ours, t_hf = statistics.median(times["llmarch"]), statistics.median(times["hf"])
    peak = statistics.median(times["peak"])
    flops = forward_flops(config, batch, seq)
    name = "bert-base (quick: 2 layers, d=256)" if quick else "bert-base"
    print(f"BERT encoder forward, {name}, batch {batch} x seq {seq}, fp32, inference mode, "
          f"{torch.get_num_threads()} threads, median of {rounds}")
    print(f"max |llmarch - hf| = {max_err:.2e}")
    print(f"{'model':<22}{'ms/forward':>12}{'tokens/s':>12}{'GFLOP/s':>10}{'% peak':>8}{'vs hf':>8}")
    for label, t in (("llmarch EncoderOnly", t_ours), ("hf BertModel (sdpa)", t_hf)):
        print(f"{label:<22}{t * 1e3:>12.1f}{batch * seq / t:>12.0f}{flops / t / 1e9:>10.1f}"
              f"{100 * flops / t / peak:>7.1f}%{t_hf / t:>7.2f}x")
    print(f"fp32 matmul peak ({size}^3 torch.mm): {peak / 1e9:.1f} GFLOP/s; "
          f"forward = {flops / 1e9:.1f} GFLOP")
    return 0
