"""Building blocks: masks, attention, positions, feed-forward, norms, blocks and caches."""

from .attention import scaled_dot_product_attention
from .block import TransformerBlock
from .cache import DynamicLayerCache, KVCache, StaticLayerCache
from .feedforward import FeedForward
from .layout import use_decoding_layout
from .linear_cross_entropy import linear_cross_entropy
from .masks import (
    causal_mask,
    combine_masks,
    cross_attention_mask,
    padding_mask,
    prefix_lm_mask,
    to_additive_mask,
    unilm_mask,
)
from .multihead import MultiHeadAttention
from .norms import RMSNorm, make_norm
from .plotting import plot_attention, plot_mask
from .positions import LearnedPositionalEmbedding, SinusoidalPositionalEmbedding, position_ids_from_offset
from .relative import ALiBi, T5RelativePositionBias, alibi_slopes, relative_position_bucket
from .rotary import RotaryEmbedding

__all__ = [
    "scaled_dot_product_attention", "TransformerBlock", "DynamicLayerCache", "KVCache", "StaticLayerCache",
    "FeedForward", "causal_mask", "combine_masks", "cross_attention_mask", "padding_mask", "prefix_lm_mask",
    "to_additive_mask", "unilm_mask", "MultiHeadAttention", "RMSNorm", "make_norm", "plot_attention",
    "plot_mask", "LearnedPositionalEmbedding", "SinusoidalPositionalEmbedding", "position_ids_from_offset",
    "ALiBi", "T5RelativePositionBias", "alibi_slopes", "relative_position_bucket", "RotaryEmbedding",
    "use_decoding_layout", "linear_cross_entropy",
]
