"""``python -m llmarch bench seq2seq``: greedy T5 decoding speed against Hugging Face.

One run, batch 1, fp32, inference mode: a random-weight Hugging Face
``T5ForConditionalGeneration`` with the ``t5-small`` configuration and
``EncoderDecoderLM`` loaded from the same weights encode a
32-token source and generate 48 new tokens greedily (EOS disabled, so both always produce all
48). Reported: tokens/s of both (ours eager and with ``compile=True``), the ratios, whether
the tokens agree, and our time per token against the bare-matmul floor (one ``F.linear`` per
decoder weight matrix for one token).

Timings are interleaved and the fastest of the rounds is kept (see
``llmarch.lab.bench_generate.best_times``). ``--quick`` uses a 2-layer model and fewer
rounds: a smoke run of a few seconds. A benchmark, never a timed test.
"""

from __future__ import annotations

import time

import torch

from .bench_generate import best_times, matmul_floor

__all__ = ["run", "t5_pair"]

SOURCE, NEW_TOKENS = 32, 48


def t5_pair(**overrides):
    """A random-weight HF ``T5ForConditionalGeneration`` (t5-small configuration unless
    overridden) and our ``EncoderDecoderLM`` with the same weights."""
    from transformers import T5Config, T5ForConditionalGeneration

    from ..interop.checkpoint import load_state_dict_strict
    from ..interop.t5 import config_from_hf, state_dict_from_hf

    torch.manual_seed(0)
    hf_config = T5Config(**{"decoder_start_token_id": 0, **overrides})  # defaults = t5-small
    hf = T5ForConditionalGeneration(hf_config).eval()
    hf.generation_config.eos_token_id = None  # always generate the full length
    config, cls = config_from_hf(hf_config.to_dict())
    ours = cls(config)
    load_state_dict_strict(ours, state_dict_from_hf(hf.state_dict(), config))
    return hf, ours.eval()


def run(args) -> int:
    quick = getattr(args, "quick", False)
    torch.set_num_threads(torch.get_num_threads())
    hf, ours = t5_pair(**(dict(num_layers=2, d_model=128, d_kv=32, num_heads=4, d_ff=256) if quick else {}))
    new_tokens, rounds = (8, 2) if quick else (NEW_TOKENS, 5)
    source = torch.randint(2, ours.config.vocab_size, (1, SOURCE), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(source)

    def run_ours():
        return ours.generate(source, new_tokens, mask)

    def run_hf():
        return hf.generate(input_ids=source, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False)

    def run_compiled():
        return ours.generate(source, new_tokens, mask, compile=True)

    with torch.inference_mode():
        reference = run_hf()
        same = torch.equal(run_ours(), reference)
        started = time.perf_counter()
        same_compiled = torch.equal(run_compiled(), reference)
        compile_seconds = time.perf_counter() - started
        times = best_times({"llmarch": run_ours, "compiled": run_compiled, "hf": run_hf}, rounds)
    floor = matmul_floor(ours.decoder) + matmul_floor(ours.lm_head)  # in the layout generation uses
    name = "t5-small" if not quick else "2-layer T5 (--quick)"
    print(f"T5 greedy decoding, {name}: source {SOURCE} tokens, {new_tokens} new tokens, batch 1, fp32, "
          f"{torch.get_num_threads()} threads")
    print(f"same tokens as Hugging Face: {same}; with compile=True: {same_compiled} "
          f"(first call {compile_seconds:.1f} s, compiling)")
    print(f"{'model':<34}{'tokens/s':>10}{'ms/token':>10}{'vs hf':>8}")
    for key, label in (("llmarch", "llmarch EncoderDecoderLM"), ("compiled", "llmarch, compile=True"),
                       ("hf", "hf T5ForConditionalGeneration")):
        print(f"{label:<34}{new_tokens / times[key]:>10.1f}{1e3 * times[key] / new_tokens:>10.2f}"
              f"{times['hf'] / times[key]:>7.2f}x")
    print(f"bare-matmul floor per token (decoder + head): {1e3 * floor:.2f} ms; "
          f"llmarch is {times['llmarch'] / new_tokens / floor:.1f}x the floor (the encoder pass included)")
    return 0
