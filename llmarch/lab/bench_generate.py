"""``python -m llmarch bench generate``: greedy decoding speed against Hugging Face GPT-2.

One run measures, batch 1, prompt 16 tokens, greedy, inference mode:

1. tokens/s of ``DecoderOnlyLM`` and of Hugging Face
   ``GPT2LMHeadModel`` with the same weights, fp32, for a tiny config (4 layers, d_model 256,
   4 heads, vocab 512; 128 new tokens) and for ``gpt2`` (124M; 64 new tokens);
2. our time per token against the *bare-matmul floor*: the time of one ``F.linear`` per weight
   matrix of the model for a single token -- what any implementation must at least spend
   streaming the weights (a decoding step is memory-bound at batch 1);
3. bf16 weights against fp32 (``gpt2``);
4. the KV cache against recomputing the whole sequence every step (tiny config) at 64, 256 and
   512 new tokens.

The headline figure is the **median time of one decoding step** (after the prompt), collected
over interleaved runs (ours, Hugging Face, ours, ...) and compared with the median of the floor
passes: on a shared machine a time slice lost to another process spoils a few steps, not the
measurement. The best whole-run time (prompt included) is printed beside it. ``--quick``
shrinks everything to a smoke run of a few seconds. This is a benchmark, never a timed test.
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["run", "best_times", "step_times", "matmul_floor", "generate_without_cache", "cache_speedups"]

PROMPT = 16


def best_times(fns: dict, rounds: int) -> dict[str, float]:
    """Run every callable once per round, interleaved; return each one's fastest time (s).

    >>> best_times({"noop": lambda: None}, rounds=2)["noop"] >= 0
    True
    """
    for fn in fns.values():  # warm-up
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def matmul_floor(model: nn.Module, repeats: int = 21) -> float:
    """Seconds for one ``F.linear`` per weight matrix of ``model`` on one token (the floor).

    Each ``nn.Linear`` of ``model`` (attention q/k/v/out, feed-forward, LM head) is applied to a
    ``(1, 1, in_features)`` input in the model's dtype, with its bias, like a decoding step. The
    median of ``repeats`` passes is returned, to compare with median decoding steps.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    dtype = linears[0].weight.dtype
    inputs = [torch.randn(1, 1, m.in_features, dtype=dtype) for m in linears]
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            start = time.perf_counter()
            for m, x in zip(linears, inputs):
                F.linear(x, m.weight, m.bias)
            times.append(time.perf_counter() - start)
    return sorted(times[1:])[repeats // 2]  # the first pass is a warm-up


# --8<-- [start:no_cache]
def generate_without_cache(model, input_ids, max_new_tokens: int):
    """Greedy decoding that recomputes the whole sequence at every step (no KV cache)."""
    sequence = input_ids
    for _ in range(max_new_tokens):
        next_token = model(sequence)[:, -1].argmax(dim=-1, keepdim=True)
        sequence = torch.cat([sequence, next_token], dim=1)
    return sequence
# --8<-- [end:no_cache]


def cache_speedups(model, lengths, *, rounds: int = 1, prompt: int = PROMPT) -> list[tuple[int, float, float]]:
    """``(new_tokens, seconds with cache, seconds without)`` for each length, greedy, batch 1."""
    ids = torch.randint(0, model.config.vocab_size, (1, prompt), generator=torch.Generator().manual_seed(0))
    rows = []
    with torch.inference_mode():
        for n in lengths:
            times = best_times({"cache": lambda n=n: model.generate(ids, n),
                                "no cache": lambda n=n: generate_without_cache(model, ids, n)}, rounds)
            rows.append((n, times["cache"], times["no cache"]))
    return rows


class _Clock:
    """A Hugging Face ``streamer`` that records when each token arrives (``put`` is called once
    with the prompt, then once per generated token)."""

    def __init__(self) -> None:
        self.times = [time.perf_counter()]

    def put(self, value) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def _gaps(times: list[float]) -> list[float]:
    """Time between consecutive new tokens (the prompt step, before the first token, excluded)."""
    return [b - a for a, b in zip(times[2:], times[3:])]


def step_times(streams: dict, rounds: int) -> dict[str, float]:
    """Median seconds per decoding step (after the prompt) of each ``streams[name]()``, a callable
    that returns token arrival times; runs are interleaved over ``rounds``.

    A median over all steps is robust to a busy machine: a time slice lost to another process
    spoils a few steps, not the measurement.
    """
    gaps = {name: [] for name in streams}
    for _ in range(rounds):
        for name, fn in streams.items():
            gaps[name] += _gaps(fn())
    return {name: sorted(g)[len(g) // 2] for name, g in gaps.items()}


def _ours_stream(model, ids, new_tokens, compile=False):
    def fn():
        times = [time.perf_counter()] * 2  # start, and "prompt" like the streamer's first put()
        for _ in model.stream(ids, new_tokens, compile=compile):
            times.append(time.perf_counter())
        return times
    return fn


def _hf_stream(hf, ids, new_tokens):
    def fn():
        clock = _Clock()
        hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False,
                    streamer=clock)
        return clock.times
    return fn


def _pair(hf_config):
    """A random-weight HF ``GPT2LMHeadModel`` and our model loaded from its weights."""
    from transformers import GPT2LMHeadModel

    from ..interop.checkpoint import load_state_dict_strict
    from ..interop.gpt2 import config_from_hf, state_dict_from_hf

    hf = GPT2LMHeadModel(hf_config).eval()
    hf.generation_config.eos_token_id = None  # always generate the full length
    hf.generation_config.pad_token_id = 0
    config, cls = config_from_hf(hf_config.to_dict())
    ours = cls(config)
    load_state_dict_strict(ours, state_dict_from_hf(hf.state_dict(), config))
    return hf, ours.eval()


def _prompt(model):
    return torch.randint(0, model.config.vocab_size, (1, PROMPT), generator=torch.Generator().manual_seed(0))


def _compare(title, hf, ours, new_tokens, rounds, *, compiled: bool = True) -> None:
    ids = _prompt(ours)
    with torch.inference_mode():
        reference = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False)
        same = torch.equal(ours.generate(ids, new_tokens), reference)
        runs = {"llmarch": lambda: ours.generate(ids, new_tokens), "hf": _hf_stream(hf, ids, new_tokens)}
        streams = {"llmarch": _ours_stream(ours, ids, new_tokens), "hf": _hf_stream(hf, ids, new_tokens)}
        if compiled:
            started = time.perf_counter()
            same_compiled = torch.equal(ours.generate(ids, new_tokens, compile=True), reference)
            compile_seconds = time.perf_counter() - started
            runs["compiled"] = lambda: ours.generate(ids, new_tokens, compile=True)
            streams["compiled"] = _ours_stream(ours, ids, new_tokens, compile=True)
        whole = best_times(runs, rounds)
        step = step_times(streams, rounds)
    floor = matmul_floor(ours)
    print(f"\n{title}: {new_tokens} new tokens; same greedy tokens as HF: {same}")
    if compiled:
        print(f"compile=True (a static cache, one compiled graph per step): same tokens: {same_compiled}; "
              f"first call {compile_seconds:.1f} s (compiling)")
    print(f"{'model':<30}{'ms/step':>9}{'tokens/s':>10}{'vs hf':>7}{'x floor':>9}   whole run: tokens/s, vs hf")
    rows = (("llmarch", "llmarch DecoderOnlyLM"), ("compiled", "llmarch, compile=True"), ("hf", "hf GPT2LMHeadModel"))
    for name, label in rows:
        if name in step:
            print(f"{label:<30}{1e3 * step[name]:>9.2f}{1 / step[name]:>10.1f}{step['hf'] / step[name]:>6.2f}x"
                  f"{step[name] / floor:>8.2f}x   {new_tokens / whole[name]:>8.1f}, {whole['hf'] / whole[name]:.2f}x")
    print(f"bare-matmul floor (one F.linear per weight matrix, one token): {1e3 * floor:.2f} ms")


def run(args) -> int:
    from transformers import GPT2Config

    quick = getattr(args, "quick", False)
    torch.manual_seed(0)
    if quick:
        tiny = GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=128, n_positions=128)
        new_tiny, rounds, lengths = 16, 1, (8, 16, 32)
    else:
        tiny = GPT2Config(n_layer=4, n_embd=256, n_head=4, vocab_size=512, n_positions=1024)
        new_tiny, rounds, lengths = 128, 5, (64, 256, 512)
    tiny.bos_token_id = tiny.eos_token_id = None
    print(f"Greedy decoding, batch 1, prompt {PROMPT} tokens, fp32 unless stated, inference mode, "
          f"{torch.get_num_threads()} threads, {rounds} interleaved rounds. ms/step: median time of one "
          f"decoding step after the prompt; whole run: best total time, prompt included.")

    hf, ours = _pair(tiny)
    _compare(f"tiny ({tiny.n_layer} layers, d_model {tiny.n_embd}, {tiny.n_head} heads, vocab {tiny.vocab_size})",
             hf, ours, new_tiny, rounds)
    if quick:
        big, new_big = ours, new_tiny
    else:
        hf, big = _pair(GPT2Config())
        new_big = 64
        _compare("gpt2 (124M)", hf, big, new_big, rounds)
    del hf

    ids = _prompt(big)
    low = copy.deepcopy(big).to(torch.bfloat16)
    with torch.inference_mode():
        step = step_times({"fp32": _ours_stream(big, ids, new_big), "bf16": _ours_stream(low, ids, new_big)}, rounds)
    print(f"\nbf16 weights vs fp32 ({'tiny' if quick else 'gpt2'}, {new_big} new tokens): fp32 "
          f"{1 / step['fp32']:.1f} tokens/s, bf16 {1 / step['bf16']:.1f} tokens/s: bf16 = "
          f"{step['fp32'] / step['bf16']:.2f}x fp32 (bf16 matmul floor {1e3 * matmul_floor(low):.2f} ms)")

    print("\nKV cache vs recomputing the whole sequence (tiny, greedy, best whole run):")
    print(f"{'new tokens':>10}{'cache s':>10}{'no cache s':>12}{'speed-up':>10}")
    for n, with_cache, without in cache_speedups(ours, lengths, rounds=1 if quick else 2):
        print(f"{n:>10}{with_cache:>10.3f}{without:>12.3f}{without / with_cache:>9.1f}x")
    return 0
