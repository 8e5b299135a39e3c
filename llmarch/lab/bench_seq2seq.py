"""``python -m llmarch bench seq2seq``: greedy T5 decoding speed against Hugging Face.

One run, batch 1, fp32, inference mode: a random-weight Hugging Face
``T5ForConditionalGeneration`` with the ``t5-small`` configuration and ``EncoderDecoderLM``
loaded from the same weights encode a 32-token source and generate 48 new tokens greedily --
no EOS on either side (both always produce all 48), the same all-ones source mask, no streamer.

Rows (``llmarch.lab.benchkit.decoding_table``): Hugging Face as created; Hugging Face with our
decoding weight layout (``use_decoding_layout``, on a copy; T5's projections are all
``nn.Linear``); ours as created; ours after ``prepare_for_decoding()`` (on a copy); ours with
``compile=True``; Hugging Face's compiled generation (static cache + ``CompileConfig`` with our
compile options, on a copy). A row's speed is printed only when its tokens equal Hugging Face's;
time per token is the whole run's (encoder included) divided by the new tokens, and ``x floor``
compares it with one ``F.linear`` per decoder weight matrix a step runs (cross-attention keys
and values are computed once per source, so they are left out) plus the LM head.

``--quick`` uses a 2-layer model, fewer rounds and no compiled rows: a smoke run of a few
seconds. A benchmark, never a timed test; exits non-zero when a row is refused.
"""

from __future__ import annotations

import copy

import torch

from ..nn.layout import use_decoding_layout
from .bench_generate import hf_compiled_generate
from .benchkit import Row, decoding_table, step_linears
from .machine import machine_summary

__all__ = ["run", "t5_pair", "decoder_step_linears"]

SOURCE, NEW_TOKENS = 32, 48


def t5_pair(**overrides):
    """A random-weight HF ``T5ForConditionalGeneration`` (t5-small configuration unless
    overridden) and our ``EncoderDecoderLM`` with the same weights; neither has an EOS token."""
    from transformers import T5Config, T5ForConditionalGeneration

    from ..interop.checkpoint import load_state_dict_strict
    from ..interop.t5 import config_from_hf, state_dict_from_hf

    torch.manual_seed(0)
    hf_config = T5Config(**{"decoder_start_token_id": 0, **overrides})  # defaults = t5-small
    hf = T5ForConditionalGeneration(hf_config).eval()
    hf.generation_config.eos_token_id = None  # always generate the full length
    config, cls = config_from_hf(hf_config.to_dict())
    ours = cls(config.replace(eos_token_id=None))
    load_state_dict_strict(ours, state_dict_from_hf(hf.state_dict(), config))
    return hf, ours.eval()


def decoder_step_linears(model) -> list:
    """The ``nn.Linear`` layers one decoding step of an ``EncoderDecoderLM`` runs: every decoder
    layer except the cross-attention keys and values (computed once per source), and the LM head."""
    cross_kv = (".cross_attn.k_proj", ".cross_attn.v_proj")
    return step_linears(model.decoder, skip=lambda name: name.endswith(cross_kv)) + [model.lm_head]


def run(args) -> int:
    quick = getattr(args, "quick", False)
    hf, ours = t5_pair(**(dict(num_layers=2, d_model=128, d_kv=32, num_heads=4, d_ff=256, vocab_size=1024)
                          if quick else {}))
    new_tokens, rounds = (8, 1) if quick else (NEW_TOKENS, 5)
    source = torch.randint(2, ours.config.vocab_size, (1, SOURCE), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(source)
    print(machine_summary())
    name = "2-layer T5, vocab 1024 (--quick)" if quick else "t5-small"
    print(f"T5 greedy decoding, {name}: source {SOURCE} tokens, {new_tokens} new tokens, batch 1, fp32, no EOS "
          f"(exactly {new_tokens} new tokens on both sides), the same all-ones source mask, no streamer; inference "
          f"mode; {rounds} interleaved rounds, fastest kept. ms/token: whole run (encoder included) / new tokens. "
          f"Floor: the decoder's weight matrices without cross-attention keys/values (computed once), "
          f"plus the LM head.")

    hf_layout = use_decoding_layout(copy.deepcopy(hf))
    ours_layout = copy.deepcopy(ours).prepare_for_decoding()

    def hf_run(model):
        return lambda: model.generate(input_ids=source, attention_mask=mask, max_new_tokens=new_tokens,
                                      do_sample=False, num_beams=1)

    rows = [
        Row("hf T5ForConditionalGeneration", hf_run(hf), unchanged=hf),
        Row("hf + use_decoding_layout", hf_run(hf_layout)),
        Row("llmarch EncoderDecoderLM", lambda: ours.generate(source, new_tokens, mask), unchanged=ours,
            floor=decoder_step_linears(ours), floor_name="row-major"),
        Row("llmarch + prepare_for_decoding()", lambda: ours_layout.generate(source, new_tokens, mask),
            floor=decoder_step_linears(ours_layout), floor_name="decoding layout"),
    ]
    if quick:
        rows += [Row("llmarch, compile=True", None, note="skipped with --quick (compiling takes tens of s)"),
                 Row("hf, static cache + compile", None, note="skipped with --quick")]
    else:
        hf_compiled = copy.deepcopy(hf)
        rows += [Row("llmarch, compile=True", lambda: ours.generate(source, new_tokens, mask, compile=True),
                     unchanged=ours, floor=rows[2].floor, floor_name="row-major"),
                 Row("hf, static cache + compile",
                     lambda: hf_compiled_generate(hf_compiled, input_ids=source, attention_mask=mask,
                                                  max_new_tokens=new_tokens, do_sample=False, num_beams=1),
                     may_fail=True)]
    with torch.inference_mode():
        text, code = decoding_table(rows, new_tokens, rounds)
    print(text)
    return code
