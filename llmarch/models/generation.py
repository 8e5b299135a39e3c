"""One decoding loop for every language model (decoder-only and encoder-decoder).

A model mixes in ``GenerationMixin`` and implements two hooks:

* ``_start_generation(input_ids, attention_mask, max_new_tokens, compile) -> (sequences, logits, state)``
  validates the inputs, runs the prompt (or the encoder plus the decoder start token) once with a
  fresh KV cache (a static one when ``compile``), and returns the sequences generation starts
  from ``(batch, L0)``, the next-token logits ``(batch, vocab)`` and an opaque ``state``;
* ``_continue_generation(state, next_tokens) -> logits`` feeds one token per row ``(batch,)``
  through the cached model.

``state.reorder(indices)`` selects batch rows of everything cached (beam search). The loop below
adds the token-choice rule (``llmarch.models.sampling``), end-of-sequence handling and
streaming; its output matches Hugging Face ``generate``: finished rows are filled with
``pad_token_id`` (default: the EOS id) and the loop stops once every row has finished.

``compile=True`` runs each one-token step through ``torch.compile`` (``decoding_step``): one
graph of fused kernels instead of some hundred eager operator calls, each with its Python and
dispatcher overhead. A graph needs fixed shapes, so the KV cache is then a ``StaticLayerCache``
per layer whose length is rounded up by ``static_cache_length`` (nearby lengths share a graph).
The first call compiles (seconds); the tokens are those of eager decoding.

Generation never changes the model: parameters keep their values, dtype and strides. The CPU
weight layout that speeds up one-row products (``llmarch.nn.layout``) is an explicit, opt-in
call, ``model.prepare_for_decoding()``, like ``torch.compile`` or ``.to(torch.bfloat16)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ..nn.cache import KVCache
from ..nn.checks import check_bool, check_positive_int
from ..nn.layout import use_decoding_layout
from .inputs import check_token_id
from .sampling import check_sampling_args, select_next_token

__all__ = ["GenerationMixin", "decoding_step", "static_cache_length"]

_COMPILED_STEPS: dict = {}
# Static shapes. A C++ wrapper launches the kernels: calling them one by one from Python costs
# about 0.08 ms per step for the tiny model of ``python -m llmarch bench generate`` (~0.5 ms).
# Not fullgraph: past Dynamo's recompile limit (many shapes or configurations of one class in a
# process) a step then runs eagerly instead of failing; the tests compile every family's step
# with fullgraph=True, so no graph break hides in it.
COMPILE_OPTIONS = {"dynamic": False, "options": {"cpp_wrapper": True}}


# --8<-- [start:decoding_step]
def decoding_step(step, compile: bool):
    """``step`` or ``torch.compile(step, **COMPILE_OPTIONS)``: one graph, static shapes.

    ``step`` is a plain function (an unbound method taking the model first), compiled
    once per function: the model's parameters are inputs of the graph, so every model
    of a class shares it (Dynamo recompiles only for new shapes, dtypes or
    configurations).
    """
    if not compile:
        return step
    if step not in _COMPILED_STEPS:
        _COMPILED_STEPS[step] = torch.compile(step, **COMPILE_OPTIONS)
    return _COMPILED_STEPS[step]
# --8<-- [end:decoding_step]


def static_cache_length(tokens: int, multiple: int = 64) -> int:
    """Slots of a static KV cache for ``tokens`` tokens: rounded up to ``multiple``.

    >>> static_cache_length(144), static_cache_length(64)
    (192, 64)
    """
    return -(-tokens // multiple) * multiple


class GenerationMixin:
    """``generate`` and ``stream`` on top of ``_start_generation`` / ``_continue_generation``."""

    def generate(self, input_ids: Tensor, max_new_tokens: int, attention_mask: Tensor | None = None, *,
                 do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, eos_token_id: int | None = None, pad_token_id: int | None = None,
                 generator: torch.Generator | None = None, num_beams: int = 1, length_penalty: float = 1.0,
                 early_stopping: bool = False, compile: bool = False) -> Tensor:
        """Generate up to ``max_new_tokens`` tokens after ``input_ids`` with a KV cache.

        Args:
            input_ids: prompts ``(batch, prompt_len)``, left-padded when their lengths differ.
            max_new_tokens: how many tokens to add at most.
            attention_mask: ``(batch, prompt_len)`` 0/1 or bool, 0 at padding.
            do_sample: sample instead of taking the most probable token (greedy).
            temperature: divide the logits by this before sampling (> 0).
            top_k: sample among the ``top_k`` most probable tokens only.
            top_p: sample from the smallest set of tokens whose probability reaches ``top_p``.
            eos_token_id: a row stops after producing it; later positions get ``pad_token_id``.
                Default: ``model.config.eos_token_id``, as Hugging Face.
            pad_token_id: filler after EOS (default: ``eos_token_id``).
            generator: a ``torch.Generator`` for reproducible sampling.
            num_beams: beam search when ``> 1`` (``llmarch.models.beam_search``).
            length_penalty: beam search: exponent of the length normalisation.
            early_stopping: beam search: when to stop (see ``beam_search``).
            compile: run each decoding step as one ``torch.compile`` graph over a static KV
                cache (see the module docstring): the first call compiles, later calls reuse it.

        Returns:
            ``(batch, L0 + n)`` long tensor: the starting sequences (decoder-only: the prompt;
            encoder-decoder: the decoder start token) followed by ``n <= max_new_tokens`` new
            tokens (fewer when every row has finished).

        Raises:
            ValueError / TypeError: for bad ids, masks or sampling settings, or a prompt plus
                ``max_new_tokens`` longer than the model's context.
        """
        # Inference mode inside; the result is cloned outside it, so that it is an ordinary tensor
        # (usable in autograd later, e.g. as training data), not an inference tensor.
        with torch.inference_mode():
            result = self._generate(input_ids, max_new_tokens, attention_mask, do_sample=do_sample,
                                    temperature=temperature, top_k=top_k, top_p=top_p, eos_token_id=eos_token_id,
                                    pad_token_id=pad_token_id, generator=generator, num_beams=num_beams,
                                    length_penalty=length_penalty, early_stopping=early_stopping, compile=compile)
        return result.clone()

    def _generate(self, input_ids, max_new_tokens, attention_mask, *, do_sample, temperature, top_k, top_p,
                  eos_token_id, pad_token_id, generator, num_beams, length_penalty, early_stopping,
                  compile) -> Tensor:
        check_positive_int("num_beams", num_beams)
        if num_beams > 1:
            if do_sample:
                raise ValueError("do_sample=True is not supported with num_beams > 1 (beam sampling), got both")
            from .beam_search import beam_search

            return beam_search(self, input_ids, attention_mask, num_beams=num_beams, max_new_tokens=max_new_tokens,
                               length_penalty=length_penalty, early_stopping=early_stopping,
                               eos_token_id=eos_token_id, pad_token_id=pad_token_id, compile=compile)
        steps = self._decode(input_ids, max_new_tokens, attention_mask, do_sample=do_sample,
                             temperature=temperature, top_k=top_k, top_p=top_p, eos_token_id=eos_token_id,
                             pad_token_id=pad_token_id, generator=generator, compile=compile)
        sequences = next(steps)
        new_tokens = list(steps)
        if not new_tokens:
            return sequences
        return torch.cat([sequences, torch.stack(new_tokens, dim=1)], dim=1)

    def _generation_cache(self, num_layers: int, batch_size: int, tokens: int, compile: bool, *,
                          cross_attention: bool = False) -> KVCache:
        """A fresh KV cache for ``tokens`` positions: dynamic, or static (fixed shapes, in the
        model's dtype and device, ``static_cache_length(tokens)`` slots) for a compiled step."""
        if not compile:
            return KVCache.dynamic(num_layers, cross_attention=cross_attention)
        weight = self.embeddings.tokens.weight
        return KVCache.static(num_layers, batch_size=batch_size, num_kv_heads=self.config.kv_heads,
                              max_len=static_cache_length(tokens), head_dim=self.config.head_size,
                              dtype=weight.dtype, device=weight.device, cross_attention=cross_attention)

# --8<-- [start:prepare_for_decoding]
    def prepare_for_decoding(self):
        """Opt in to the CPU weight layout that makes one-token decoding faster; returns ``self``.

        Stores every fp32 ``nn.Linear`` weight on the CPU column-major (``use_decoding_layout``):
        the values, names, tying and state dict stay the same, only the strides change, so
        results agree with the plain layout to rounding (different kernels sum in a different
        order) and the model can still be trained. Whether it helps depends on the CPU and the
        BLAS: measure with ``python -m llmarch bench generate``. ``generate`` never calls it.

        >>> from llmarch import create_model
        >>> model = create_model("gpt2", num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=50)
        >>> model.lm_head.weight.stride(), model.prepare_for_decoding().lm_head.weight.stride()
        ((32, 1), (1, 50))
        """
        return use_decoding_layout(self)
# --8<-- [end:prepare_for_decoding]

    def stream(self, input_ids: Tensor, max_new_tokens: int, attention_mask: Tensor | None = None, *,
               do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, eos_token_id: int | None = None, pad_token_id: int | None = None,
               generator: torch.Generator | None = None, compile: bool = False) -> Iterator[Tensor]:
        """Like ``generate`` (without beams), but yield each new token ``(batch,)`` as soon as
        it is chosen. Inputs are validated before the first token is produced."""
        steps = self._decode(input_ids, max_new_tokens, attention_mask, do_sample=do_sample,
                             temperature=temperature, top_k=top_k, top_p=top_p, eos_token_id=eos_token_id,
                             pad_token_id=pad_token_id, generator=generator, compile=compile)
        with torch.inference_mode():
            next(steps)  # validate and run the prompt now, not at the first next() of the caller
        return _stream(steps)

# --8<-- [start:decode_loop]
    def _decode(
        self,
        input_ids,
        max_new_tokens,
        attention_mask,
        *,
        do_sample,
        temperature,
        top_k,
        top_p,
        eos_token_id,
        pad_token_id,
        generator,
        compile,
    ) -> Iterator[Tensor]:
        """Yield the starting sequences, then a ``(batch,)`` tensor of new tokens per
        step."""
        check_positive_int("max_new_tokens", max_new_tokens)
        check_bool("compile", compile)
        check_sampling_args(do_sample, temperature, top_k, top_p, generator)
        for name, value in (
            ("eos_token_id", eos_token_id),
            ("pad_token_id", pad_token_id),
        ):
            # the config's own ids are not checked: a preset's may lie beyond a tiny
            # vocabulary
            if value is not None:
                check_token_id(name, value, self.config.vocab_size)
        if eos_token_id is None:
            eos_token_id = self.config.eos_token_id
        if pad_token_id is None:
            pad_token_id = eos_token_id
        sequences, logits, state = self._start_generation(
            input_ids, attention_mask, max_new_tokens, compile
        )
        yield sequences
        unfinished = (
            None
            if eos_token_id is None
            else torch.ones(
                sequences.shape[0], dtype=torch.bool, device=sequences.device
            )
        )
        for step in range(max_new_tokens):
            tokens = select_next_token(
                logits,
                do_sample=do_sample,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                generator=generator,
            )
            if unfinished is not None:  # finished rows keep emitting padding
                tokens = torch.where(unfinished, tokens, pad_token_id)
                unfinished &= tokens != eos_token_id
            yield tokens
            if (
                unfinished is not None and not unfinished.any()
            ):  # the only host sync, and only with EOS
                return
            if step + 1 < max_new_tokens:
                logits = self._continue_generation(state, tokens)
# --8<-- [end:decode_loop]


def _stream(steps: Iterator[Tensor]) -> Iterator[Tensor]:
    while True:
        with torch.inference_mode():
            tokens = next(steps, None)
        if tokens is None:
            return
        yield tokens
