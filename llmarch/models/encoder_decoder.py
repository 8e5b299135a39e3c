"""The encoder-decoder Transformer: the original model of Vaswani et al. (2017) and T5.

An encoder reads the whole source with bidirectional self-attention; a decoder writes the
target left to right (causal self-attention) and, in every layer, reads the encoder's output
through *cross-attention*. Both stacks share one token embedding (and, when tied, the output
projection), as in both papers.

* Original Transformer: sinusoidal absolute positions added to ``sqrt(d_model)``-scaled token
  embeddings, post-LN blocks, ReLU feed-forward (presets ``transformer-base``/``-big``).
* T5 (Raffel et al., 2020): no absolute positions but a learned relative position bias
  computed in the first layer of each stack and shared by the others, pre-LN blocks with
  RMSNorm (no bias), unscaled attention scores, ReLU (v1.0) or gated-GELU (v1.1) feed-forward,
  and a tied head scaled by ``d_model ** -0.5`` (v1.0) or an untied head (v1.1).

Generation runs the encoder once; each decoder layer computes the keys and values of the
encoder output once (a cross-attention cache) and then reuses them for every new token.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn.cache import KVCache, check_cache
from ..nn.checks import check_features, check_ndim
from .config import ModelConfig
from .embeddings import Embeddings
from .generation import GenerationMixin, decoding_step
from .inputs import key_padding_mask
from .stack import TransformerStack

__all__ = ["EncoderDecoderLM", "Seq2SeqGenerationState"]


class Seq2SeqGenerationState:
    """What an encoder-decoder carries between decoding steps: the decoder's KV cache (self-
    and cross-attention), the encoder's padding mask and the function that runs one step
    (eager, or compiled for a static cache). ``reorder`` selects batch rows (beam search)."""

    def __init__(self, cache: KVCache, context_mask: Tensor | None, step) -> None:
        self.cache, self.context_mask, self.step = cache, context_mask, step

    def reorder(self, indices: Tensor) -> None:
        self.cache.reorder(indices)
        if self.context_mask is not None:
            self.context_mask = self.context_mask.index_select(0, indices)


# --8<-- [start:model]
class EncoderDecoderLM(GenerationMixin, nn.Module):
    """Encoder-decoder language model (original Transformer, T5).

    Args:
        config: a ``ModelConfig`` with
            ``architecture="encoder_decoder"``; ``num_layers`` is the encoder depth and
            ``config.decoder_layers`` the decoder depth.

    Shapes: ``input_ids (batch, src)``, ``decoder_input_ids (batch, tgt)`` ->
    logits ``(batch, tgt, vocab_size)``.

    >>> from llmarch.models.presets import get_config
    >>> config = get_config("t5-small", num_layers=1, d_model=32, num_heads=2,
    ...                     head_dim=16, d_ff=64, vocab_size=100)
    >>> model = EncoderDecoderLM(config).eval()
    >>> src, tgt = torch.tensor([[5, 6, 7, 1]]), torch.tensor([[0, 8, 9]])
    >>> model(src, tgt).shape
    torch.Size([1, 3, 100])
    >>> model.generate(src, max_new_tokens=4).shape  # decoder start + 4 new tokens
    torch.Size([1, 5])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.expect_architecture("encoder_decoder")
        # one token embedding for source and target
        self.embeddings = Embeddings(config)
        self.encoder = TransformerStack(config, config.num_layers, causal=False)
        self.decoder = TransformerStack(
            config, config.decoder_layers, causal=True, cross_attention=True
        )
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.embedding_scale is not None:
            # Embeddings multiplied by sqrt(d_model) start at std d_model ** -0.5 (as in
            # fairseq and tensor2tensor), so that the scaled inputs and a tied output
            # projection start at unit scale.
            nn.init.normal_(self.embeddings.tokens.weight, std=config.d_model**-0.5)
        # one matrix reads tokens in (source and target) and writes them out
        if config.tie_embeddings:
            self.lm_head.weight = self.embeddings.tokens.weight

    def _embed(
        self, ids: Tensor, offset: int | Tensor = 0, name: str = "input_ids"
    ) -> Tensor:
        position_ids = None
        if self.embeddings.positions is not None:
            position_ids = (offset + torch.arange(ids.shape[1], device=ids.device))[
                None
            ]
        return self.embeddings(ids, position_ids, name=name)

    def _check_length(self, name: str, length: int) -> None:
        limit = self.config.max_positions
        if (
            limit is not None
            and self.config.position in ("learned", "sinusoidal")
            and length > limit
        ):
            raise ValueError(
                f"{name} must be at most max_positions = {limit} tokens long, "
                f"got {length}"
            )

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Run the encoder: ``(batch, src)`` ids -> ``(batch, src, d_model)`` states.

        Args:
            input_ids: source token ids.
            attention_mask: ``(batch, src)`` 0/1, 1 = real token (padding is hidden as
                a key).
        """
        # values: checked by the embeddings
        check_ndim("input_ids", input_ids, 2, "(batch, seq)")
        self._check_length("input_ids", input_ids.shape[1])
        mask = key_padding_mask(
            attention_mask, tuple(input_ids.shape), device=input_ids.device
        )
        return self.encoder(self._embed(input_ids), mask=mask)

    def decode(
        self,
        decoder_input_ids: Tensor,
        encoder_hidden_states: Tensor | None,
        attention_mask: Tensor | None = None,
        decoder_attention_mask: Tensor | None = None,
        cache: KVCache | None = None,
    ) -> Tensor:
        """Run decoder and head: ``(batch, tgt)`` ids -> logits ``(batch, tgt, vocab)``.

        Args:
            decoder_input_ids: target ids, starting with the decoder start token.
            encoder_hidden_states: ``(batch, src, d_model)`` from ``encode`` (may be
                ``None`` once ``cache`` holds the cross-attention keys/values).
            attention_mask: the *source* ``(batch, src)`` 0/1 mask (hides padded encoder
                states).
            decoder_attention_mask: ``(batch, past + tgt)`` 0/1 mask of the target.
            cache: a ``KVCache.dynamic(decoder_layers, cross_attention=True)``, updated
                in place.
        """
        check_ndim("decoder_input_ids", decoder_input_ids, 2, "(batch, seq)")
        check_cache(cache, self.config.decoder_layers)
        if cache is not None and cache.cross_layers is not None:
            check_cache(cache, self.config.decoder_layers, cross_attention=True)
        if encoder_hidden_states is None:
            if (
                cache is None
                or cache.cross_layers is None
                or not cache.cross_layers[0].is_static_context
            ):
                raise ValueError(
                    "encoder_hidden_states must be the encoder output "
                    "(batch, src, d_model) unless the cache already holds the "
                    "cross-attention keys and values, got None"
                )
        else:
            check_features(
                "encoder_hidden_states",
                encoder_hidden_states,
                self.embeddings.tokens.weight,
                self.config.d_model,
                "(batch, src, d_model)",
                ndims=3,
            )
        offset = 0 if cache is None else cache.offset
        if not isinstance(offset, Tensor):
            self._check_length(
                "decoder_input_ids (with the cached tokens)",
                offset + decoder_input_ids.shape[1],
            )
        if (
            encoder_hidden_states is not None
            and encoder_hidden_states.shape[0] != decoder_input_ids.shape[0]
        ):
            raise ValueError(
                f"decoder_input_ids must have the batch size of the source "
                f"({encoder_hidden_states.shape[0]}), got {decoder_input_ids.shape[0]}"
            )
        context_mask = None
        if attention_mask is not None:
            source = (
                attention_mask
                if encoder_hidden_states is None
                else encoder_hidden_states
            )
            context_mask = key_padding_mask(
                attention_mask,
                tuple(source.shape[:2]),
                what="the source",
                device=decoder_input_ids.device,
            )
        target_shape = (decoder_input_ids.shape[0], offset + decoder_input_ids.shape[1])
        self_mask = key_padding_mask(
            decoder_attention_mask,
            target_shape,
            what="the cached and new decoder tokens",
            device=decoder_input_ids.device,
        )
        hidden = self.decoder(
            self._embed(decoder_input_ids, offset, "decoder_input_ids"),
            mask=self_mask,
            cache=cache,
            context=encoder_hidden_states,
            context_mask=context_mask,
        )
        return self.logits(hidden)

    def logits(self, hidden: Tensor) -> Tensor:
        """The LM head: ``(..., d_model) -> (..., vocab)``.

        Tied: the hidden states are scaled by ``output_scale`` first.
        """
        if self.config.output_scale is not None:
            hidden = hidden * self.config.output_scale
        return self.lm_head(hidden)

    def forward(
        self,
        input_ids: Tensor,
        decoder_input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        decoder_attention_mask: Tensor | None = None,
        cache: KVCache | None = None,
    ) -> Tensor:
        """Teacher-forced logits ``(batch, tgt, vocab)``: encode source, decode target.

        Raises:
            ValueError: if ``decoder_input_ids`` is missing, the batch sizes of source
                and target differ, a mask does not match its ids, or a sequence is
                longer than ``config.max_positions`` (absolute positions).
        """
        if decoder_input_ids is None:
            raise ValueError(
                "decoder_input_ids is required: the target shifted right, starting "
                f"with decoder_start_token_id={self.config.decoder_start_token_id} "
                "(see llmarch.training.seq2seq_loss.shift_right), got None"
            )
        check_ndim("decoder_input_ids", decoder_input_ids, 2, "(batch, seq)")
        check_ndim("input_ids", input_ids, 2, "(batch, seq)")
        if decoder_input_ids.shape[0] != input_ids.shape[0]:
            raise ValueError(
                "decoder_input_ids must have the batch size of input_ids "
                f"({input_ids.shape[0]}), got {decoder_input_ids.shape[0]}"
            )
        encoded = self.encode(input_ids, attention_mask)
        return self.decode(
            decoder_input_ids, encoded, attention_mask, decoder_attention_mask, cache
        )
# --8<-- [end:model]

    # --8<-- [start:generation_hooks]
    def _start_generation(self, input_ids: Tensor, attention_mask: Tensor | None, max_new_tokens: int,
                          compile: bool = False):
        """Encode once, feed the decoder start token: ``(sequences, logits, state)``."""
        if self.config.decoder_start_token_id is None:
            raise ValueError("config.decoder_start_token_id must be set to generate, got None")
        self._check_length("max_new_tokens (decoder positions)", max_new_tokens)
        encoded = self.encode(input_ids, attention_mask)
        cache = self._generation_cache(self.config.decoder_layers, input_ids.shape[0], 1 + max_new_tokens, compile,
                                       cross_attention=True)
        sequences = torch.full((input_ids.shape[0], 1), self.config.decoder_start_token_id,
                               dtype=torch.long, device=input_ids.device)
        logits = self.decode(sequences, encoded, attention_mask, cache=cache)[:, -1].float()
        # None when the source has no padding: decode steps then need no cross-attention mask
        state = Seq2SeqGenerationState(cache, key_padding_mask(attention_mask, tuple(input_ids.shape)),
                                       decoding_step(type(self)._next_token_logits, compile))
        return sequences, logits, state

    def _continue_generation(self, state: Seq2SeqGenerationState, next_tokens: Tensor) -> Tensor:
        """Feed one token per row ``(batch,)`` through the cached decoder: next logits ``(batch, vocab)``."""
        return state.step(self, next_tokens[:, None], state.cache, state.context_mask)

    def _next_token_logits(self, ids: Tensor, cache: KVCache, context_mask: Tensor | None) -> Tensor:
        """fp32 logits ``(batch, vocab)`` after ``ids (batch, 1)``, the encoder output read from
        the cross-attention caches."""
        hidden = self.decoder(self._embed(ids, cache.offset), cache=cache, context_mask=context_mask)
        return self.logits(hidden[:, -1]).float()
    # --8<-- [end:generation_hooks]
