"""Decoder-only language models: GPT-1, GPT-2 and a LLaMA-style variant from one class.

``DecoderOnlyLM`` = ``Embeddings`` + a causal
``TransformerStack`` + a linear LM head (tied to the token
embeddings when ``config.tie_embeddings``). GPT-1 is the post-LN configuration, GPT-2 the pre-LN
one with a final LayerNorm; RoPE, RMSNorm, SwiGLU and GQA are configuration choices too.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..nn.cache import KVCache, StaticLayerCache, check_cache
from ..nn.checks import check_integer_tensor, check_ndim
from ..nn.inplace import output_is_private
from ..nn.linear_cross_entropy import linear_cross_entropy, mean_cross_entropy
from ..nn.positions import position_ids_from_offset
from .config import ModelConfig
from .embeddings import Embeddings
from .generation import GenerationMixin, decoding_step
from .init import init_weights
from .inputs import check_position_ids, key_padding_mask
from .prefix_lm import non_causal_mask
from .stack import TransformerStack

__all__ = ["DecoderOnlyLM", "DecoderState", "position_ids_from_mask"]

# --8<-- [start:position_ids]
def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """Positions that skip padding: ``cumsum(mask) - 1``, and 0 on padding (as Hugging Face).

    With left padding the first real token of every row gets position 0, exactly as if the
    row had not been padded.

    >>> position_ids_from_mask(torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]]))
    tensor([[0, 0, 0, 1],
            [0, 1, 2, 3]])
    """
    mask = attention_mask.long()
    return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
# --8<-- [end:position_ids]


class DecoderState:
    """What generation carries from step to step: the KV cache, the padding mask of every
    position generated so far (a preallocated buffer; ``None`` without padding), how many
    tokens the cache holds, the position id of the next token of each row, and the function
    that runs one step (eager, or compiled for a static cache)."""

    def __init__(self, cache: KVCache, mask: Tensor | None, length: int, next_positions: Tensor | None,
                 step) -> None:
        self.cache, self.mask, self.length, self.next_positions, self.step = cache, mask, length, next_positions, step

    def visible_mask(self) -> Tensor | None:
        """Bool ``(batch, 1, 1, k_len)`` key mask of the next step: the tokens so far (dynamic
        cache), or every slot of a static cache (whose causal mask hides the empty ones)."""
        if self.mask is None:
            return None
        width = self.mask.shape[1] if isinstance(self.cache.layers[0], StaticLayerCache) else self.length
        return self.mask[:, None, None, :width]

    def reorder(self, indices: Tensor) -> None:
        """Keep/reorder batch rows ``indices`` (beam search)."""
        self.cache.reorder(indices)
        self.next_positions = self.next_positions.index_select(0, indices)
        if self.mask is not None:
            self.mask = self.mask.index_select(0, indices)


# --8<-- [start:model]
class DecoderOnlyLM(GenerationMixin, nn.Module):
    """A GPT-style language model: embeddings, causal Transformer stack, LM head.

    Args:
        config: a ``ModelConfig`` with ``architecture="decoder_only"``
            (presets ``gpt1``, ``gpt2``, ``llama-tiny``).

    Shapes: ``input_ids (batch, seq)`` -> logits ``(batch, seq, vocab_size)``.

    The same weights serve the non-causal decoders of chapter 4 through other masks:
    ``prefix_lengths`` (prefix LM, GLM), ``self_attention_mask`` (UniLM), and with
    ``config.prefix_lm`` ``generate`` reads the prompt bidirectionally
    (``llmarch.models.prefix_lm``).

    >>> from llmarch import create_model
    >>> model = create_model(
    ...     "gpt2", num_layers=2, d_model=64, num_heads=4, d_ff=256, vocab_size=100
    ... ).eval()
    >>> model(torch.tensor([[1, 2, 3]])).shape
    torch.Size([1, 3, 100])
    >>> model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=4).shape
    torch.Size([1, 7])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.expect_architecture("decoder_only")
        self.embeddings = Embeddings(config)
        self.decoder = TransformerStack(config, config.num_layers, causal=True)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        init_weights(self, residual_layers=config.num_layers)
        if config.tie_embeddings:  # one matrix reads tokens in and writes them out
            self.lm_head.weight = self.embeddings.tokens.weight

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        cache: KVCache | None = None,
        *,
        position_ids: Tensor | None = None,
        prefix_lengths: int | Sequence[int] | Tensor | None = None,
        self_attention_mask: Tensor | None = None,
        block_position_ids: Tensor | None = None,
        targets: Tensor | None = None,
    ) -> Tensor:
        """Next-token logits at every position (or, given ``targets``, the mean loss
        against them).

        Args:
            input_ids: token ids ``(batch, seq)``.
            attention_mask: ``(batch, past + seq)`` 0/1, 0 at padding; with a
                ``cache`` it covers the cached tokens too. Positions then skip
                padding (``position_ids_from_mask``), so a left-padded row gets the
                logits of the unpadded one.
            cache: a ``KVCache``, extended in place.
            position_ids: ``(batch or 1, seq)``; default from ``attention_mask`` or
                the cache.
            prefix_lengths: prefix LM: an int or ``(batch,)`` -- the first
                ``prefix_lengths[b]`` real tokens of row ``b`` attend to each other
                bidirectionally, the rest causally (``llmarch.models.prefix_lm``;
                with a cache the prefix must already be cached). ``None``: causal.
            self_attention_mask: bool ``(batch or 1, 1, seq, past + seq)``,
                ``True`` = may attend: replaces the causal mask (UniLM's four
                masks); padding is still applied.
            block_position_ids: ``(batch or 1, seq)`` GLM's positions within a span
                (``config.position == "learned_2d"``; default 0).
            targets: ``(batch, seq)`` the id each position should predict
                (``-100``: none), e.g. ``input_ids`` shifted left by one. Then the
                head and the cross-entropy run as one step that never stores the
                ``(batch, seq, vocab)`` log-probabilities (``lm_loss``).

        Returns:
            Logits ``(batch, seq, vocab_size)`` in the model's dtype; with
            ``targets`` the mean cross-entropy over the counted targets, an fp32
            scalar.

        Raises:
            ValueError / TypeError: ids outside the vocabulary, a mask of the wrong
                shape or dtype, positions beyond ``max_positions``, a negative
                prefix length or one longer than its row, ``prefix_lengths`` of the
                wrong shape.
        """
        check_ndim(
            "input_ids", input_ids, 2, "(batch, seq)"
        )  # values: checked by the embeddings
        check_cache(cache, self.config.num_layers)
        if targets is not None:  # values: checked by linear_cross_entropy
            check_integer_tensor("targets", targets, shape_doc="(batch, seq)", ndims=2)
            if targets.shape != input_ids.shape:
                raise ValueError(
                    "targets must have the shape of input_ids "
                    f"{tuple(input_ids.shape)}, got {tuple(targets.shape)}"
                )
        offset = 0 if cache is None else cache.offset
        mask = key_padding_mask(
            attention_mask,
            (input_ids.shape[0], int(offset) + input_ids.shape[1]),
            what="input_ids plus cached tokens" if cache is not None else "input_ids",
            device=input_ids.device,
        )
        if position_ids is not None:
            check_position_ids(
                position_ids, input_ids.shape[0], input_ids.shape[1], input_ids.device
            )
        if (
            mask is not None and position_ids is None
        ):  # with padding, positions skip the pads
            position_ids = position_ids_from_mask(attention_mask)[
                :, -input_ids.shape[1] :
            ]
        if position_ids is None:
            position_ids = position_ids_from_offset(
                offset, input_ids.shape[1], device=input_ids.device
            )
        is_causal = True
        if (
            prefix_lengths is not None or self_attention_mask is not None
        ):  # prefix LM, UniLM, GLM
            full = non_causal_mask(
                tuple(input_ids.shape),
                attention_mask if mask is not None else None,
                cache,
                prefix_lengths=prefix_lengths,
                self_attention_mask=self_attention_mask,
                device=input_ids.device,
            )
            if full is not None:
                mask, is_causal = full, False
        hidden = self.hidden_states(
            input_ids,
            mask,
            cache,
            position_ids,
            is_causal=is_causal,
            block_position_ids=block_position_ids,
        )
        return (
            self.lm_logits(hidden) if targets is None else self.lm_loss(hidden, targets)
        )

    def hidden_states(
        self,
        input_ids: Tensor,
        mask: Tensor | None,
        cache: KVCache | None,
        position_ids: Tensor,
        *,
        is_causal: bool = True,
        block_position_ids: Tensor | None = None,
    ) -> Tensor:
        """The final hidden states ``(batch, seq, d_model)`` (no argument checks
        beyond the embeddings'; ``mask`` is a bool key mask ``(batch, 1, 1, k_len)``,
        or the full mask ``(batch, 1, seq, k_len)`` with ``is_causal=False``)."""
        x = self.embeddings(
            input_ids, position_ids, block_position_ids=block_position_ids
        )
        return self.decoder(
            x, mask=mask, cache=cache, position_ids=position_ids, is_causal=is_causal
        )

    def lm_logits(self, hidden: Tensor) -> Tensor:
        """Project hidden states ``(..., d_model)`` to vocabulary logits
        ``(..., vocab_size)``."""
        if self.config.output_scale is not None:
            hidden = hidden * self.config.output_scale
        return self.lm_head(hidden)

    def lm_loss(self, hidden: Tensor, targets: Tensor) -> Tensor:
        """Mean cross-entropy of the logits of ``hidden (..., d_model)`` against
        ``targets (...)`` (``-100``: not counted), computed without the logits
        (``linear_cross_entropy``) -- unless a hook on ``lm_head`` wants to see them."""
        if self.config.output_scale is not None:
            hidden = hidden * self.config.output_scale
        if output_is_private(self.lm_head):
            return linear_cross_entropy(
                hidden.flatten(0, -2), self.lm_head.weight, targets.flatten()
            )
        return mean_cross_entropy(
            self.lm_head(hidden).flatten(0, -2), targets.flatten()
        )
# --8<-- [end:model]

    # --8<-- [start:generation_hooks]
    def _start_generation(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None,
        max_new_tokens: int,
        compile: bool = False,
    ):
        """Run the prompt once with a fresh cache; see ``llmarch.models.generation``."""
        check_ndim(
            "input_ids", input_ids, 2, "(batch, seq)"
        )  # values: checked by the embeddings
        batch, prompt_len = input_ids.shape
        limit = self.config.max_positions
        if limit is not None and prompt_len + max_new_tokens > limit:
            raise ValueError(
                f"the prompt ({prompt_len} tokens) plus max_new_tokens "
                f"({max_new_tokens}) must fit the context length "
                f"max_positions={limit}, got {prompt_len + max_new_tokens} tokens"
            )
        if (
            key_padding_mask(
                attention_mask, tuple(input_ids.shape), device=input_ids.device
            )
            is None
        ):  # no padding
            attention_mask = None
        cache = self._generation_cache(
            self.config.num_layers, batch, prompt_len + max_new_tokens, compile
        )
        width = cache.layers[0].max_len if compile else prompt_len + max_new_tokens
        if attention_mask is None:
            buffer, position_ids = (
                None,
                position_ids_from_offset(0, prompt_len, device=input_ids.device),
            )
        else:  # one buffer for the whole run; each step uses a growing view of it,
            # no concatenation
            buffer = torch.ones(batch, width, dtype=torch.bool, device=input_ids.device)
            buffer[:, :prompt_len] = attention_mask.bool()
            position_ids = position_ids_from_mask(attention_mask)
        state = DecoderState(
            cache,
            buffer,
            prompt_len,
            None,
            decoding_step(type(self)._next_token_logits, compile),
        )
        # a prefix LM reads the whole prompt bidirectionally, once; every later step
        # is causal
        logits = self._next_token_logits(
            input_ids,
            state.visible_mask(),
            cache,
            position_ids,
            is_causal=not self.config.prefix_lm,
        )
        state.next_positions = (position_ids[:, -1:] + 1).expand(batch, 1).clone()
        return input_ids, logits, state

    def _continue_generation(self, state: DecoderState, next_tokens: Tensor) -> Tensor:
        """Feed one token per row ``(batch,)`` through the cached model; next logits
        ``(batch, vocab)``."""
        state.length += 1
        logits = state.step(
            self,
            next_tokens[:, None],
            state.visible_mask(),
            state.cache,
            state.next_positions,
        )
        state.next_positions = state.next_positions + 1
        return logits

    def _next_token_logits(
        self,
        input_ids: Tensor,
        mask: Tensor | None,
        cache: KVCache,
        position_ids: Tensor,
        is_causal: bool = True,
    ) -> Tensor:
        """fp32 logits ``(batch, vocab)`` after the last of ``input_ids``: the head
        runs only where a token is chosen."""
        hidden = self.hidden_states(
            input_ids, mask, cache, position_ids, is_causal=is_causal
        )
        return self.lm_logits(hidden[:, -1]).float()
    # --8<-- [end:generation_hooks]
