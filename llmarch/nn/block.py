"""A Transformer layer: self-attention, optional cross-attention, feed-forward, with residuals.

``norm_position`` names the one real difference between the 2017 Transformer / BERT / GPT-1
(``"post"``: normalise *after* adding the residual) and GPT-2 / T5 / LLaMA (``"pre"``:
normalise the sub-layer's *input* and keep the residual stream un-normalised, Xiong et al. 2020).
"""

from __future__ import annotations

from torch import Tensor, nn

from .checks import check_bool, check_choice, check_features, check_probability
from .feedforward import FeedForward
from .inplace import output_is_private
from .multihead import MultiHeadAttention
from .norms import make_norm
from .rotary import RotaryEmbedding

__all__ = ["TransformerBlock"]


# --8<-- [start:block]
class TransformerBlock(nn.Module):
    """One layer of any Transformer family.

    Args:
        d_model: model width.
        num_heads: attention heads.
        d_ff: feed-forward hidden size.
        num_kv_heads: key/value heads of the self-attention (GQA/MQA).
        head_dim: per-head size (default ``d_model // num_heads``).
        norm_position: ``"pre"``: ``x + f(norm(x))``; ``"post"``: ``norm(x + f(x))``.
        norm: ``"layernorm"`` or ``"rmsnorm"``; ``norm_eps`` its epsilon.
        activation: the feed-forward's activation (see ``FeedForward``).
        gated: a gated feed-forward (SwiGLU / GEGLU).
        bias: biases in attention, feed-forward and LayerNorm.
        dropout: residual dropout after each sub-layer; ``attention_dropout`` on the
            weights; ``activation_dropout`` on the feed-forward's hidden activations
            (T5).
        cross_attention: add an encoder-decoder attention sub-layer.
        attention_scale: score multiplier (T5: 1.0).
        rotary: RoPE module for the self-attention.
        backend: attention backend.

    Shapes: ``(batch, seq, d_model) -> (batch, seq, d_model)``.

    >>> import torch
    >>> block = TransformerBlock(32, 4, 64, norm_position="pre")
    >>> block(torch.randn(2, 5, 32), is_causal=True).shape
    torch.Size([2, 5, 32])
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        *,
        num_kv_heads: int | None = None,
        head_dim: int | None = None,
        norm_position: str = "pre",
        norm: str = "layernorm",
        norm_eps: float = 1e-5,
        activation: str = "gelu",
        gated: bool = False,
        bias: bool = True,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
        cross_attention: bool = False,
        attention_scale: float | None = None,
        rotary: RotaryEmbedding | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.norm_position = check_choice(
            "norm_position", norm_position, ("pre", "post")
        )

        def attention(**extra) -> MultiHeadAttention:
            return MultiHeadAttention(
                d_model,
                num_heads,
                head_dim=head_dim,
                bias=bias,
                dropout=attention_dropout,
                scale=attention_scale,
                backend=backend,
                **extra,
            )

        check_bool("cross_attention", cross_attention)
        self.self_attn = attention(num_kv_heads=num_kv_heads, rotary=rotary)
        self.self_attn_norm = make_norm(norm, d_model, norm_eps, bias=bias)
        self.cross_attn = attention() if cross_attention else None
        self.cross_attn_norm = (
            make_norm(norm, d_model, norm_eps, bias=bias) if cross_attention else None
        )
        self.ffn = FeedForward(
            d_model,
            d_ff,
            activation=activation,
            gated=gated,
            bias=bias,
            dropout=activation_dropout,
        )
        self.ffn_norm = make_norm(norm, d_model, norm_eps, bias=bias)
        self.dropout = nn.Dropout(check_probability("dropout", dropout))

    def _sublayer(
        self, x: Tensor, norm: nn.Module, sublayer: nn.Module, **kwargs
    ) -> Tensor:
        if self.norm_position == "pre":
            return self._add_residual(
                self.dropout(sublayer(norm(x), **kwargs)), x, sublayer
            )
        return norm(
            self._add_residual(self.dropout(sublayer(x, **kwargs)), x, sublayer)
        )

    def _add_residual(
        self, out: Tensor, residual: Tensor, sublayer: nn.Module
    ) -> Tensor:
        # Added into the sub-layer's fresh output (add_) instead of a new tensor: one
        # allocation fewer per sub-layer, and autograd-safe (nothing saves that output)
        # -- unless a hook holds that output (llmarch.nn.inplace).
        if output_is_private(sublayer, self.dropout):
            return out.add_(residual)
        return out + residual

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        is_causal: bool = False,
        cache=None,
        bias: Tensor | None = None,
        position_ids: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        cross_cache=None,
        cross_bias: Tensor | None = None,
    ) -> Tensor:
        """Self-attention (``mask``/``is_causal``/``cache``/``bias``), then
        cross-attention to ``context`` (``context_mask``, ``cross_cache``,
        ``cross_bias``), then the feed-forward."""
        check_features(
            "x",
            x,
            self.self_attn.q_proj.weight,
            self.self_attn.d_model,
            "(batch, seq, d_model)",
            ndims=3,
        )
        x = self._sublayer(
            x,
            self.self_attn_norm,
            self.self_attn,
            mask=mask,
            is_causal=is_causal,
            cache=cache,
            bias=bias,
            position_ids=position_ids,
        )
        if self.cross_attn is not None:
            if context is None and not getattr(cross_cache, "is_static_context", False):
                raise ValueError(
                    "context (the encoder output) must be a tensor for a block with "
                    "cross_attention=True, got None"
                )
            x = self._sublayer(
                x,
                self.cross_attn_norm,
                self.cross_attn,
                context=context,
                mask=context_mask,
                cache=cross_cache,
                bias=cross_bias,
            )
        elif context is not None:
            raise ValueError(
                "context must be None for a block built with cross_attention=False, "
                f"got a tensor of shape {tuple(context.shape)}"
            )
        return self._sublayer(x, self.ffn_norm, self.ffn)
# --8<-- [end:block]
