"""``python -m llmarch bench generate``: greedy decoding speed against Hugging Face GPT-2.

One run, batch 1, prompt 16 tokens, greedy, inference mode, no EOS on either side (both always
generate exactly ``n`` tokens), the same all-ones attention mask on both sides, no streamer:

1. fp32, a tiny config (4 layers, d_model 256, 4 heads, vocab 512; 128 new tokens) and ``gpt2``
   (124M; 64 new tokens), random weights shared by both implementations. Rows: ``DecoderOnlyLM``
   as created (row-major weights); the same after ``prepare_for_decoding()`` (the opt-in CPU
   weight layout, on a copy); ``generate(compile=True)``; Hugging Face ``GPT2LMHeadModel``; the same
   with our layout (``use_decoding_layout``, on a copy: it reaches ``lm_head``, the only
   ``nn.Linear`` -- GPT-2's ``Conv1D`` weights are stored ``(in, out)`` already); Hugging Face's own
   compiled generation (``cache_implementation="static"`` + ``CompileConfig``, the compile options
   of ours, on a copy). Each row's tokens must equal Hugging Face's before a speed is printed;
   time per token is the whole run's (prompt included) divided by ``n``, and ``x floor`` compares it
   with the *bare-matmul floor* in the row's own layout (``llmarch.lab.benchkit.floor_pass``: one
   ``F.linear`` per weight matrix, once per token, timed in the same rounds);
2. bf16 weights against fp32 (``gpt2``), ours and Hugging Face's, each bf16 run checked against
   the other implementation in bf16 (bf16 rounds differently from fp32, so its tokens may differ
   from fp32's; both always run exactly ``n`` steps);
3. the KV cache against recomputing the whole sequence every step (tiny config), at 64, 256 and
   512 new tokens; the recompute baseline projects only the last position through the LM head.

The machine (CPU model, ISA flags, threads) is printed first: which dtype and layout are faster
differs between CPUs. ``--quick`` shrinks everything to a smoke run of a few seconds (no
compiled rows). A benchmark, never a timed test; exits non-zero when a row is refused.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..nn.layout import use_decoding_layout
from ..nn.positions import position_ids_from_offset
from .benchkit import (REFUSED, Row, decoding_table, first_difference, floor_pass, format_table,
                       interleaved_times, step_linears)
from .machine import machine_summary

__all__ = ["run", "generate_without_cache", "cache_speedups", "without_eos", "hf_compiled_generate", "TokensDiffer"]

PROMPT = 16


class TokensDiffer(RuntimeError):
    """Two decoding methods that must produce the same tokens did not."""


def without_eos(model: nn.Module) -> nn.Module:
    """A shallow copy of ``model`` whose config has no EOS token: it shares every parameter
    (nothing is copied or changed) and always generates the full ``max_new_tokens``.

    >>> from llmarch import create_model
    >>> model = create_model("gpt2", num_layers=1, d_model=16, num_heads=2, d_ff=32, vocab_size=40)
    >>> clone = without_eos(model)
    >>> model.config.eos_token_id, clone.config.eos_token_id, clone.lm_head is model.lm_head
    (50256, None, True)
    """
    if getattr(model.config, "eos_token_id", None) is None:
        return model
    clone = copy.copy(model)  # a new __dict__; the submodules and parameters are the same objects
    clone.config = model.config.replace(eos_token_id=None)
    return clone


# --8<-- [start:no_cache]
def generate_without_cache(model, input_ids, max_new_tokens: int):
    """Greedy decoding that recomputes the whole sequence at every step (no KV cache).

    Like a fair "recompute" implementation, only the last position goes through the LM head:
    the logits of the other positions would be thrown away. No EOS: always ``max_new_tokens``.

    Args:
        model: a ``DecoderOnlyLM``.
        input_ids: prompts ``(batch, prompt_len)`` without padding.
        max_new_tokens: tokens to add.

    Returns:
        ``(batch, prompt_len + max_new_tokens)`` ids.
    """
    sequence = input_ids
    for _ in range(max_new_tokens):
        positions = position_ids_from_offset(0, sequence.shape[1], device=sequence.device)
        hidden = model.hidden_states(sequence, None, None, positions)  # (batch, seq, d_model)
        next_token = model.lm_logits(hidden[:, -1]).argmax(dim=-1, keepdim=True)
        sequence = torch.cat([sequence, next_token], dim=1)
    return sequence
# --8<-- [end:no_cache]


def cache_speedups(model, lengths, *, rounds: int = 1, prompt: int = PROMPT) -> list[tuple[int, float, float]]:
    """``(new_tokens, seconds with cache, seconds without)`` for each length, greedy, batch 1.

    Both methods decode exactly ``new_tokens`` tokens (no EOS) and must produce the same ones.

    Raises:
        TokensDiffer: when they do not (the times would not measure the same work).
    """
    model = without_eos(model)
    ids = torch.randint(0, model.config.vocab_size, (1, prompt), generator=torch.Generator().manual_seed(0))
    rows = []
    with torch.inference_mode():
        for n in lengths:
            difference = first_difference(model.generate(ids, n), generate_without_cache(model, ids, n))
            if difference is not None:
                raise TokensDiffer(f"with and without the KV cache, {n} new tokens: {difference}")
            times = interleaved_times({"cache": lambda n=n: model.generate(ids, n),  # warmed up just above
                                       "no cache": lambda n=n: generate_without_cache(model, ids, n)}, rounds,
                                      warmup=False)
            rows.append((n, min(times["cache"]), min(times["no cache"])))
    return rows


def hf_compiled_generate(hf, **generate_kwargs):
    """Hugging Face's documented compiled decoding: a static cache and ``compile_config``.

    Transformers compiles the decoding forward by itself when ``cache_implementation="static"``
    and the device is CUDA-like; on a CPU it needs ``CompileConfig._compile_all_devices``. The
    compile options are ours (``llmarch.models.generation.COMPILE_OPTIONS``), so both compiled
    rows are compiled the same way. Compiling stores a compiled call on ``hf``: pass a copy.
    """
    from transformers import CompileConfig

    from ..models.generation import COMPILE_OPTIONS

    config = CompileConfig(fullgraph=False, dynamic=COMPILE_OPTIONS["dynamic"], mode=None,
                           options=dict(COMPILE_OPTIONS["options"]))
    config._compile_all_devices = True
    return hf.generate(cache_implementation="static", compile_config=config, **generate_kwargs)


def _pair(hf_config):
    """A random-weight HF ``GPT2LMHeadModel`` and our model with its weights, neither with EOS."""
    from transformers import GPT2LMHeadModel

    from ..interop.checkpoint import load_state_dict_strict
    from ..interop.gpt2 import config_from_hf, state_dict_from_hf

    hf = GPT2LMHeadModel(hf_config).eval()
    hf.generation_config.eos_token_id = None  # always generate the full length
    hf.generation_config.pad_token_id = 0
    config, cls = config_from_hf(hf_config.to_dict())
    ours = cls(config.replace(eos_token_id=None))
    load_state_dict_strict(ours, state_dict_from_hf(hf.state_dict(), config))
    return hf, ours.eval()


def _prompt(vocab_size: int):
    return torch.randint(0, vocab_size, (1, PROMPT), generator=torch.Generator().manual_seed(0))


def decoding_rows(hf, ours, new_tokens: int, *, compiled: bool) -> list[Row]:
    """The rows of one comparison: ours and Hugging Face's, plain, with our layout, compiled.

    The plain rows run the models as given and must leave them unchanged; the layout and
    compiled-HF rows run on copies. The same ids, mask and ``max_new_tokens`` on every row.
    """
    ids = _prompt(ours.config.vocab_size)
    mask = torch.ones_like(ids)
    ours_layout = copy.deepcopy(ours).prepare_for_decoding()
    hf_layout = use_decoding_layout(copy.deepcopy(hf))

    def hf_run(model):
        return lambda: model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False,
                                      num_beams=1)

    rows = [
        Row("hf GPT2LMHeadModel", hf_run(hf), unchanged=hf),
        Row("hf + use_decoding_layout", hf_run(hf_layout), note="lm_head only (Conv1D is (in, out))"),
        Row("llmarch DecoderOnlyLM", lambda: ours.generate(ids, new_tokens, mask), unchanged=ours,
            floor=step_linears(ours), floor_name="row-major"),
        Row("llmarch + prepare_for_decoding()", lambda: ours_layout.generate(ids, new_tokens, mask),
            floor=step_linears(ours_layout), floor_name="decoding layout"),
    ]
    if compiled:
        hf_compiled = copy.deepcopy(hf)
        rows += [
            Row("llmarch, compile=True", lambda: ours.generate(ids, new_tokens, mask, compile=True),
                unchanged=ours, floor=rows[2].floor, floor_name="row-major"),
            Row("hf, static cache + compile",
                lambda: hf_compiled_generate(hf_compiled, inputs=ids, attention_mask=mask, max_new_tokens=new_tokens,
                                             do_sample=False, num_beams=1), may_fail=True),
        ]
    else:
        rows += [Row("llmarch, compile=True", None, note="skipped with --quick (compiling takes tens of s)"),
                 Row("hf, static cache + compile", None, note="skipped with --quick")]
    return rows


def _comparison(title: str, hf, ours, new_tokens: int, rounds: int, *, compiled: bool) -> int:
    print(f"\n{title}: {new_tokens} new tokens")
    rows = decoding_rows(hf, ours, new_tokens, compiled=compiled)  # copies made outside inference mode
    with torch.inference_mode():
        text, code = decoding_table(rows, new_tokens, rounds)
    print(text)
    return code


def _bf16(hf, ours, new_tokens: int, rounds: int) -> int:
    """fp32 and bf16 (copies) of both models: each dtype's tokens checked against the other
    implementation in the same dtype, then all four timed in the same interleaved rounds."""
    ids = _prompt(ours.config.vocab_size)
    mask = torch.ones_like(ids)

    def hf_run(model):
        return lambda: model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False,
                                      num_beams=1)

    low_ours, low_hf = copy.deepcopy(ours).to(torch.bfloat16), copy.deepcopy(hf).to(torch.bfloat16)
    runs = {("hf", "fp32"): hf_run(hf), ("hf", "bf16"): hf_run(low_hf),
            ("llmarch", "fp32"): lambda: ours.generate(ids, new_tokens, mask),
            ("llmarch", "bf16"): lambda: low_ours.generate(ids, new_tokens, mask)}
    with torch.inference_mode():
        tokens = {key: fn() for key, fn in runs.items()}  # also the warm-up
        refused = {dtype: first_difference(tokens["hf", dtype], tokens["llmarch", dtype]) for dtype in ("fp32", "bf16")}
        refused = {dtype: where for dtype, where in refused.items() if where is not None}
        if refused:
            for dtype, where in refused.items():
                print(f"{REFUSED}: llmarch {dtype} tokens differ from hf {dtype} at {where}; no speed is printed.")
            return 1
        for dtype, model in (("fp32", ours), ("bf16", low_ours)):  # the floors, in the same rounds
            one_pass = floor_pass(step_linears(model))
            one_pass()
            runs["floor", dtype] = lambda one_pass=one_pass: [one_pass() for _ in range(new_tokens)]
        times = {key: min(t) for key, t in interleaved_times(runs, rounds, warmup=False).items()}
    floors = {dtype: times["floor", dtype] / new_tokens for dtype in ("fp32", "bf16")}
    rows = []
    for name in ("hf", "llmarch"):
        for dtype in ("fp32", "bf16"):
            t = times[name, dtype]
            rows.append([f"{name} {dtype}", f"{1e3 * t / new_tokens:.2f}", f"{new_tokens / t:.1f}",
                         f"{times[name, 'fp32'] / t:.2f}x", f"{times['hf', dtype] / t:.2f}x"])
    print(format_table(["row", "ms/token", "tokens/s", "vs fp32 (same impl.)", "vs hf (same dtype)"], rows))
    same = first_difference(tokens["hf", "fp32"], tokens["hf", "bf16"])
    print(f"llmarch = hf in each dtype (same tokens). bf16 tokens vs fp32 tokens: "
          f"{'identical' if same is None else 'differ at ' + same + ' (bf16 rounds differently; same work)'}.")
    print(f"bare-matmul floor per token (timed in the same rounds): fp32 {1e3 * floors['fp32']:.2f} ms, bf16 "
          f"{1e3 * floors['bf16']:.2f} ms (bf16 matmul speed = {floors['fp32'] / floors['bf16']:.2f}x fp32's here)")
    return 0


def run(args) -> int:
    from transformers import GPT2Config

    quick = getattr(args, "quick", False)
    torch.manual_seed(0)
    small = dict(n_layer=2, n_embd=64, n_head=2, vocab_size=128, n_positions=128) if quick else \
        dict(n_layer=4, n_embd=256, n_head=4, vocab_size=512, n_positions=1024)
    tiny = GPT2Config(**small, bos_token_id=None, eos_token_id=None)
    new_tiny, rounds, lengths = (16, 1, (8, 16, 32)) if quick else (128, 5, (64, 256, 512))
    print(machine_summary())
    print(f"Greedy decoding, batch 1, prompt {PROMPT} tokens, no EOS (exactly n new tokens on both sides), "
          f"the same all-ones attention mask, no streamer; fp32 unless stated; inference mode; "
          f"{rounds} interleaved rounds, fastest kept. ms/token: whole run (prompt included) / n.")

    codes = []
    hf, ours = _pair(tiny)
    codes.append(_comparison(f"tiny ({tiny.n_layer} layers, d_model {tiny.n_embd}, {tiny.n_head} heads, "
                             f"vocab {tiny.vocab_size})", hf, ours, new_tiny, rounds, compiled=not quick))
    if quick:
        big_hf, big, new_big = hf, ours, new_tiny
    else:
        big_hf, big = _pair(GPT2Config(bos_token_id=None, eos_token_id=None))
        new_big = 64
        codes.append(_comparison("gpt2 (124M)", big_hf, big, new_big, 3, compiled=True))

    print(f"\nbf16 weights vs fp32 ({'tiny' if quick else 'gpt2'}, {new_big} new tokens, as created (row-major "
          f"nn.Linear); each dtype's tokens checked against the other implementation in that dtype):")
    codes.append(_bf16(big_hf, big, new_big, rounds if quick else 3))

    print("\nKV cache vs recomputing the whole sequence (tiny, llmarch as created, greedy, whole runs; "
          "the recompute projects only the last position through the LM head):")
    try:
        rows = cache_speedups(ours, lengths, rounds=1 if quick else 2)
    except TokensDiffer as error:
        print(f"{REFUSED}: {error}")
        return 1
    print(f"{'new tokens':>10}{'cache s':>10}{'no cache s':>12}{'speed-up':>10}")
    for n, with_cache, without in rows:
        print(f"{n:>10}{with_cache:>10.3f}{without:>12.3f}{without / with_cache:>9.1f}x")
    return max(codes)
