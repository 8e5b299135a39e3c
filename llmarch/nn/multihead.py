"""Multi-head attention: self- and cross-attention, MHA / GQA / MQA, with a KV cache."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention import BACKENDS, scaled_dot_product_attention
from .cache import DynamicLayerCache, StaticLayerCache
from .checks import check_bool, check_choice, check_features, check_float, check_positive_int, check_probability
from .masks import causal_mask, combine_masks
from .positions import position_ids_from_offset
from .rotary import RotaryEmbedding

__all__ = ["MultiHeadAttention"]


# --8<-- [start:mha_init]
class MultiHeadAttention(nn.Module):
    r"""Multi-head attention (Vaswani et al., 2017) with grouped-query variants.

    ``num_kv_heads`` selects the variant in one parameter: ``None`` or ``num_heads`` is
    multi-head attention (MHA); ``1`` is multi-query attention (MQA, Shazeer 2019); anything
    in between that divides ``num_heads`` is grouped-query attention (GQA, Ainslie et al. 2023),
    where ``num_heads // num_kv_heads`` query heads share one key/value head.

    Args:
        d_model: model width (input and output size).
        num_heads: query heads.
        num_kv_heads: key/value heads (see above).
        head_dim: size per head; default ``d_model // num_heads`` (T5 sets it separately).
        bias: biases in the q/k/v projections.
        out_bias: bias in the output projection (default: ``bias``).
        dropout: dropout on the attention weights, training only.
        scale: score multiplier; default ``1/sqrt(head_dim)`` (T5 uses 1.0).
        rotary: a ``RotaryEmbedding`` applied to queries and keys.
        context_dim: width of the cross-attention context (default ``d_model``).
        backend: ``"auto"``, ``"sdpa"`` or ``"eager"`` (see ``scaled_dot_product_attention``).

    Raises:
        ValueError: if ``d_model`` is not divisible by ``num_heads`` (without ``head_dim``) or
            ``num_heads`` is not divisible by ``num_kv_heads``.

    >>> mha = MultiHeadAttention(d_model=64, num_heads=8, num_kv_heads=2)   # GQA
    >>> x = torch.randn(2, 10, 64)
    >>> mha(x, is_causal=True).shape
    torch.Size([2, 10, 64])
    >>> tuple(mha.k_proj.weight.shape)          # 2 kv heads x 8 dims: 4x fewer than MHA
    (16, 64)
    """

    def __init__(self, d_model: int, num_heads: int, num_kv_heads: int | None = None, *,
                 head_dim: int | None = None, bias: bool = True, out_bias: bool | None = None,
                 dropout: float = 0.0, scale: float | None = None,
                 rotary: RotaryEmbedding | None = None, context_dim: int | None = None,
                 backend: str = "auto") -> None:
        super().__init__()
        check_positive_int("d_model", d_model)
        check_positive_int("num_heads", num_heads)
        num_kv_heads = num_heads if num_kv_heads is None else check_positive_int("num_kv_heads", num_kv_heads)
        if head_dim is None:
            if d_model % num_heads:
                raise ValueError(
                    f"d_model must be divisible by num_heads, got d_model={d_model} and num_heads={num_heads}"
                )
            head_dim = d_model // num_heads
        check_positive_int("head_dim", head_dim)
        if num_heads % num_kv_heads:
            raise ValueError(
                f"num_heads must be divisible by num_kv_heads, got num_heads={num_heads} and num_kv_heads={num_kv_heads}"
            )
        self.d_model, self.num_heads, self.num_kv_heads, self.head_dim = d_model, num_heads, num_kv_heads, head_dim
        self.context_dim = d_model if context_dim is None else check_positive_int("context_dim", context_dim)
        self.dropout = check_probability("dropout", dropout)
        self.scale = None if scale is None else check_float("scale", scale)
        self.backend = check_choice("backend", backend, BACKENDS)
        if rotary is not None and not isinstance(rotary, RotaryEmbedding):
            raise TypeError(f"rotary must be a RotaryEmbedding or None, got {type(rotary).__name__}")
        if rotary is not None and rotary.head_dim != head_dim:
            raise ValueError(f"rotary must be built for head_dim={head_dim}, got a RotaryEmbedding of head_dim={rotary.head_dim}")
        self.rotary = rotary
        self.q_proj = nn.Linear(d_model, num_heads * head_dim, bias=bias)
        self.k_proj = nn.Linear(self.context_dim, num_kv_heads * head_dim, bias=bias)
        self.v_proj = nn.Linear(self.context_dim, num_kv_heads * head_dim, bias=bias)
        self.out_proj = nn.Linear(num_heads * head_dim, d_model, bias=bias if out_bias is None else out_bias)
# --8<-- [end:mha_init]

    def _split_heads(self, x: Tensor, heads: int) -> Tensor:
        """``(batch, seq, heads * head_dim) -> (batch, heads, seq, head_dim)`` (a view)."""
        batch, seq, _ = x.shape
        return x.view(batch, seq, heads, self.head_dim).transpose(1, 2)

    def _check_input(self, name: str, x: Tensor, width: int) -> None:
        check_features(name, x, self.q_proj.weight, width, "(batch, seq, d_model)", ndims=3)

# --8<-- [start:mha_forward]
    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        is_causal: bool = False,
        cache=None,
        bias: Tensor | None = None,
        position_ids: Tensor | None = None,
        return_weights: bool = False,
    ):
        """Attend from ``x`` to itself (``context=None``) or to ``context`` (cross).

        Args:
            x: ``(batch, q_len, d_model)``.
            context: ``(batch, k_len, context_dim)`` for cross-attention.
            mask: bool, broadcastable to ``(batch, heads, q_len, k_len)``, ``True`` =
                may attend (``k_len`` counts cached keys too; with a static cache it is
                the cache's ``max_len``).
            is_causal: add the causal mask (bottom-right aligned with the cache).
            cache: a layer cache (``DynamicLayerCache`` or ``StaticLayerCache``). For
                self-attention new keys and values are appended; for cross-attention
                they are computed from ``context`` once and reused afterwards.
            bias: additive position bias ``(1 or batch, heads, q_len, k_len)`` (ALiBi,
                T5).
            position_ids: ``(batch or 1, q_len)`` positions for ``rotary``; default:
                after the cached tokens.
            return_weights: also return attention weights (computed on the eager path).

        Returns:
            ``(batch, q_len, d_model)``, or ``(output, weights)``.
        """
        self._check_input("x", x, self.d_model)
        check_bool("is_causal", is_causal)
        check_bool("return_weights", return_weights)
        if cache is not None and not isinstance(
            cache, (DynamicLayerCache, StaticLayerCache)
        ):
            raise TypeError(
                "cache must be one layer's DynamicLayerCache or StaticLayerCache "
                f"(a model takes the whole KVCache), got {type(cache).__name__}"
            )
        cached_context = cache is not None and cache.is_static_context
        is_cross = context is not None or cached_context
        if context is not None:
            self._check_input("context", context, self.context_dim)
            if context.shape[0] != x.shape[0]:
                raise ValueError(
                    f"context must have batch size {x.shape[0]} (that of x), "
                    f"got {context.shape[0]}"
                )
        if is_cross and is_causal:
            raise ValueError("is_causal must be False for cross-attention, got True")
        q = self._split_heads(self.q_proj(x), self.num_heads)
        offset = 0 if cache is None or is_cross else cache.offset
        if cached_context:
            k, v = cache.get()  # encoder keys/values, computed on the first step
        else:
            source = context if is_cross else x
            k = self._split_heads(self.k_proj(source), self.num_kv_heads)
            v = self._split_heads(self.v_proj(source), self.num_kv_heads)
            if self.rotary is not None and not is_cross:
                if position_ids is None:
                    position_ids = position_ids_from_offset(
                        offset, x.shape[1], device=x.device
                    )
                q, k = self.rotary(q, k, position_ids)
            if cache is not None:
                if is_cross:
                    cache.set_static(k, v)
                else:
                    k, v = cache.update(k, v)
        # A dynamic cache returns exactly the keys so far, so the attention function's
        # own bottom-right aligned causal mask is right. A static cache returns its
        # whole buffer: the diagonal sits at its fill level and the slots after it must
        # stay hidden.
        if cache is not None and not is_cross and hasattr(cache, "filled_mask"):
            if is_causal:
                mask = combine_masks(
                    mask,
                    causal_mask(x.shape[1], k.shape[2], offset=offset, device=x.device),
                )
                is_causal = False
            else:
                mask = combine_masks(mask, cache.filled_mask())
        result = scaled_dot_product_attention(
            q,
            k,
            v,
            mask,
            bias=bias,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
            scale=self.scale,
            backend=self.backend,
            return_weights=return_weights,
        )
        out, weights = result if return_weights else (result, None)
        out = self.out_proj(
            out.transpose(1, 2).reshape(
                x.shape[0], x.shape[1], self.num_heads * self.head_dim
            )
        )
        return (out, weights) if return_weights else out
# --8<-- [end:mha_forward]
