"""A stack of Transformer blocks with the position machinery shared by its layers."""

from __future__ import annotations

from torch import Tensor, nn

from ..nn.block import TransformerBlock
from ..nn.cache import KVCache, StaticLayerCache
from ..nn.norms import make_norm
from ..nn.relative import ALiBi, T5RelativePositionBias
from ..nn.rotary import RotaryEmbedding
from .config import ModelConfig

__all__ = ["TransformerStack"]


# --8<-- [start:stack]
class TransformerStack(nn.Module):
    """``num_layers`` ``TransformerBlock`` s built from a config.

    Position information that lives *inside* attention is owned here: one RoPE module shared by
    all layers, or an additive bias (ALiBi, T5 relative buckets) computed once per forward and
    shared by every layer -- T5 computes its bias in the first layer and reuses it. A pre-LN
    stack ends with a final norm (GPT-2's ``ln_f``, T5's ``final_layer_norm``); post-LN does not
    need one.

    Args:
        config: the model configuration.
        num_layers: depth.
        causal: decoder (causal) or encoder (bidirectional) stack; decides T5's bucket type.
        cross_attention: blocks attend to an encoder output.

    Shapes: ``(batch, seq, d_model) -> (batch, seq, d_model)``.
    """

    def __init__(self, config: ModelConfig, num_layers: int, *, causal: bool, cross_attention: bool = False) -> None:
        super().__init__()
        self.config, self.causal = config, causal
        rotary = RotaryEmbedding(config.head_size, config.rope_base) if config.position == "rotary" else None
        if config.position == "alibi":
            self.position_bias = ALiBi(config.num_heads)
        elif config.position == "t5_relative":
            self.position_bias = T5RelativePositionBias(
                config.num_heads, config.relative_buckets, config.relative_max_distance, bidirectional=not causal)
        else:
            self.position_bias = None
        self.layers = nn.ModuleList(
            TransformerBlock(
                config.d_model, config.num_heads, config.d_ff, num_kv_heads=config.num_kv_heads,
                head_dim=config.head_dim, norm_position=config.norm_position, norm=config.norm,
                norm_eps=config.norm_eps, activation=config.activation, gated=config.gated, bias=config.bias,
                dropout=config.dropout, attention_dropout=config.attention_dropout,
                activation_dropout=config.activation_dropout,
                cross_attention=cross_attention, attention_scale=config.attention_scale, rotary=rotary,
                backend=config.backend)
            for _ in range(num_layers))
        self.final_norm = (make_norm(config.norm, config.d_model, config.norm_eps, bias=config.bias)
                           if config.norm_position == "pre" else None)
        self.final_dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, *, mask: Tensor | None = None, cache: KVCache | None = None,
                position_ids: Tensor | None = None, context: Tensor | None = None,
                context_mask: Tensor | None = None, is_causal: bool | None = None) -> Tensor:
        """Run every layer.

        Args:
            x: embedded inputs ``(batch, seq, d_model)``.
            mask: bool self-attention mask broadcastable to ``(batch, heads, seq, k_len)``
                (padding; the causal part is added here for a causal stack).
            cache: a ``KVCache`` (decoders), updated in place.
            position_ids: ``(batch or 1, seq)`` for RoPE (default: after the cached tokens).
            context: encoder output ``(batch, src_len, d_model)``, for cross-attention.
            context_mask: bool mask of ``context``, broadcastable to ``(batch, heads, seq, src_len)``.
            is_causal: add the causal mask (default: ``causal`` of the constructor). ``False`` in a
                causal stack lets ``mask`` alone decide (prefix LM, UniLM, GLM).
        """
        q_len = x.shape[1]
        is_causal = self.causal if is_causal is None else is_causal
        offset = 0 if cache is None else cache.offset
        bias = None
        if self.position_bias is not None:
            first = None if cache is None else cache.layers[0]
            k_len = first.max_len if isinstance(first, StaticLayerCache) else offset + q_len
            bias = self.position_bias(q_len, k_len, offset).to(x.dtype)
        for index, layer in enumerate(self.layers):
            x = layer(x, mask=mask, is_causal=is_causal, bias=bias, position_ids=position_ids,
                      cache=None if cache is None else cache.layers[index],
                      context=context, context_mask=context_mask,
                      cross_cache=None if cache is None or cache.cross_layers is None else cache.cross_layers[index])
        if self.final_norm is not None:
            x = self.final_dropout(self.final_norm(x))
        return x
# --8<-- [end:stack]
