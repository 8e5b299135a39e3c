"""``python -m llmarch bench encoder``: BERT forward throughput against Hugging Face.

One run measures, with the same weights and the same inputs:

* the forward pass (fp32, inference mode, batch 8 x 128 tokens, no padding) of llmarch's
  ``EncoderOnly`` with the ``bert-base`` preset and of Hugging Face ``BertModel`` (its ``sdpa``
  attention). Both compute the same things: the last hidden states and the pooled ``[CLS]``
  vector (``BertModel`` always pools, so ours pools too). Their outputs must agree (fp32,
  atol = rtol = 1e-4) before any time is printed; otherwise the benchmark refuses and exits 1;
* the machine's fp32 matmul peak (a large square ``torch.mm``), in the same interleaved
  rounds, and the fraction of it that each forward achieves (FLOPs counted from the shapes).

Times are medians of interleaved rounds (``llmarch.lab.benchkit.interleaved_times``). The
machine (CPU model, ISA flags, threads) is printed first. ``--quick`` shrinks the model and the
rounds to a smoke test of a few seconds.
"""

from __future__ import annotations

import statistics

import torch

from .benchkit import REFUSED, format_table, interleaved_times, mismatch
from .machine import machine_summary

__all__ = ["run", "forward_flops", "matmul_peak"]

ATOL = RTOL = 1e-4  # fp32, 12 post-LN layers: the two implementations differ by ~1e-6


def forward_flops(config, batch: int, seq: int) -> int:
    """Multiply-add FLOPs (2 per MAC) of an encoder forward: projections, FFN, attention."""
    tokens = batch * seq
    d, ff = config.d_model, config.d_ff
    per_layer = 2 * tokens * (4 * d * d + 2 * d * ff) + 2 * 2 * batch * seq * seq * d
    pooler = 2 * batch * d * d if config.pooler else 0
    return config.num_layers * per_layer + pooler


def matmul_peak(size: int = 4096, repeats: int = 5) -> float:
    """fp32 FLOP/s of a ``size x size`` matmul (median of ``repeats`` after one warm-up).

    >>> matmul_peak(64, 2) > 0
    True
    """
    a, b = torch.randn(size, size), torch.randn(size, size)
    times = interleaved_times({"mm": lambda: torch.mm(a, b)}, repeats)["mm"]
    return 2 * size**3 / statistics.median(times)


def run(args) -> int:
    from transformers import BertConfig, BertModel

    from ..interop.bert import config_to_hf, state_dict_from_hf
    from ..models.encoder_only import EncoderOnly
    from ..models.presets import get_config

    quick = getattr(args, "quick", False)
    overrides = dict(num_layers=2, d_model=256, num_heads=4, d_ff=1024) if quick else {}
    config = get_config("bert-base", dropout=0.0, attention_dropout=0.0, **overrides)
    batch, seq, rounds = (8, 32, 3) if quick else (8, 128, 10)
    size = 1024 if quick else 4096
    torch.manual_seed(0)

    ours = EncoderOnly(config).eval()
    hf_config = BertConfig(**{k: v for k, v in config_to_hf(ours).items() if k not in ("architectures", "model_type")})
    hf = BertModel._from_config(hf_config, attn_implementation="sdpa").eval()
    ours.load_state_dict(state_dict_from_hf(hf.state_dict(), config), strict=True)
    input_ids = torch.randint(config.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(0))
    token_type_ids = torch.zeros_like(input_ids)
    a, b = torch.randn(size, size), torch.randn(size, size)

    # The same work on both sides: the same arguments (no attention mask: no padding), and both
    # return the last hidden states and the pooled [CLS] vector (HF's BertModel always pools).
    def run_ours():
        hidden = ours(input_ids, token_type_ids=token_type_ids)
        return hidden, ours.pool(hidden)

    def run_hf():
        out = hf(input_ids=input_ids, token_type_ids=token_type_ids)
        return out.last_hidden_state, out.pooler_output

    print(machine_summary())
    name = "bert-base (quick: 2 layers, d=256)" if quick else "bert-base"
    print(f"BERT encoder forward, {name}, batch {batch} x seq {seq}, fp32, inference mode, no padding mask on "
          f"either side, both pool [CLS]; median of {rounds} interleaved rounds (the matmul peak in the same rounds)")
    with torch.inference_mode():
        (ref_hidden, ref_pooled), (hidden, pooled) = run_hf(), run_ours()
        problems = [f"{what}: {problem}" for what, problem in (
            ("hidden states", mismatch(ref_hidden, hidden, atol=ATOL, rtol=RTOL)),
            ("pooled", mismatch(ref_pooled, pooled, atol=ATOL, rtol=RTOL))) if problem]
        print(f"max |llmarch - hf|: hidden states {(hidden - ref_hidden).abs().max().item():.2e}, "
              f"pooled {(pooled - ref_pooled).abs().max().item():.2e}")
        if problems:
            print(f"{REFUSED}: llmarch's output is not Hugging Face's ({'; '.join(problems)}); no speed is printed.")
            return 1
        times = interleaved_times({"llmarch": run_ours, "hf": run_hf, "peak": lambda: torch.mm(a, b)}, rounds)

    t_ours, t_hf = statistics.median(times["llmarch"]), statistics.median(times["hf"])
    peak = 2 * size**3 / statistics.median(times["peak"])
    flops = forward_flops(config, batch, seq)
    rows = [[label, f"{t * 1e3:.1f}", f"{batch * seq / t:.0f}", f"{flops / t / 1e9:.1f}",
             f"{100 * flops / t / peak:.1f}%", f"{t_hf / t:.2f}x"]
            for label, t in (("hf BertModel (sdpa)", t_hf), ("llmarch EncoderOnly", t_ours))]
    print(format_table(["model", "ms/forward", "tokens/s", "GFLOP/s", "% peak", "vs hf"], rows))
    print(f"fp32 matmul peak ({size}^3 torch.mm): {peak / 1e9:.1f} GFLOP/s; forward = {flops / 1e9:.1f} GFLOP")
    return 0
