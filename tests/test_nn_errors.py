"""Bad inputs to llmarch.nn raise ValueError / TypeError naming the argument, the expected and the received value.

Each case below is one line: the call, and the message it must raise.

 1. sdpa, q of rank 3                    -> ValueError  q must have shape (batch, heads, seq, head_dim) (4 dims), got shape (2, 5, 8)
 2. sdpa, q a list                       -> TypeError   q must be a torch.Tensor, got list
 3. sdpa, integer q                      -> TypeError   q must be a floating-point tensor, got torch.int64
 4. sdpa, k float64 with q float32       -> ValueError  k must have the dtype of q (torch.float32), got torch.float64
 5. sdpa, k on meta with q on cpu        -> ValueError  k must be on the device of q (cpu), got meta
 6. sdpa, k_len 5 but v_len 4            -> ValueError  k and v must agree in (batch, kv_heads, k_len), got k (...) and v (...)
 7. sdpa, k batch 3 with q batch 2       -> ValueError  k must have batch size 2 (that of q), got 3
 8. sdpa, q head_dim 8 but k head_dim 6  -> ValueError  k must have head_dim 8 (that of q), got 6
 9. sdpa, 6 query heads and 4 kv heads   -> ValueError  k must have a number of heads that divides q's 6 heads ..., got 4
10. sdpa, float mask                     -> TypeError   mask must be a bool tensor (True = may attend), got torch.float32
11. sdpa, mask (5, 4) for k_len 5        -> ValueError  mask must be broadcastable to (batch, heads, q_len, k_len) = (2, 3, 5, 5), got shape (5, 4)
12. sdpa, mask of rank 5                 -> ValueError  mask must be broadcastable to ... got shape (1, 2, 3, 5, 5)
13. sdpa, mask on meta                   -> ValueError  mask must be on the device of q (cpu), got meta
14. sdpa, integer bias                   -> TypeError   bias must be a floating-point tensor (additive), got torch.int64
15. sdpa, bias (1, 4, 5, 5) for 3 heads  -> ValueError  bias must be broadcastable to ... = (2, 3, 5, 5), got shape (1, 4, 5, 5)
16. sdpa, backend="flash"                -> ValueError  backend must be one of 'auto', 'eager', 'sdpa', got 'flash'
17. sdpa, return_weights with sdpa       -> ValueError  return_weights=True needs backend 'eager' or 'auto', got backend='sdpa'
18. sdpa, dropout_p=1.0                  -> ValueError  dropout_p must be in [0, 1), got 1.0
19. sdpa, dropout_p="0.1"                -> TypeError   dropout_p must be a float in [0, 1), got str ('0.1')
20. sdpa, is_causal with k_len < q_len   -> ValueError  is_causal needs k_len >= q_len, got k_len=3 < q_len=5
21. MHA, d_model 25 with 4 heads         -> ValueError  d_model must be divisible by num_heads, got d_model=25 and num_heads=4
22. MHA, 4 heads with 3 kv heads         -> ValueError  num_heads must be divisible by num_kv_heads, got num_heads=4 and num_kv_heads=3
23. MHA, num_heads=0                     -> ValueError  num_heads must be a positive int, got 0
24. MHA, num_heads=2.0                   -> TypeError   num_heads must be an int, got float (2.0)
25. MHA, dropout=1.5                     -> ValueError  dropout must be in [0, 1), got 1.5
26. MHA, backend="flash"                 -> ValueError  backend must be one of 'auto', 'eager', 'sdpa', got 'flash'
27. MHA, rotary for head_dim 8, heads 6  -> ValueError  rotary must be built for head_dim=6, got a RotaryEmbedding of head_dim=8
28. MHA, x of rank 2                     -> ValueError  x must have shape (batch, seq, d_model) (3 dims), got shape (5, 24)
29. MHA, x width 23 for d_model 24       -> ValueError  x must have last dimension 24, got shape (2, 5, 23)
30. MHA, float64 x into float32 module   -> TypeError   x must have the dtype of the module's weights (torch.float32), got torch.float64
31. MHA, x on meta                       -> ValueError  x must be on the device of the module's weights (cpu), got meta
32. MHA, context width 10 for 24         -> ValueError  context must have last dimension 24, got shape (2, 4, 10)
33. MHA, context batch 3 for x batch 2   -> ValueError  context must have batch size 2 (that of x), got 3
34. MHA, is_causal with cross-attention  -> ValueError  is_causal must be False for cross-attention, got True
35. MHA, rotary position_ids (1, 4) for 5 tokens -> ValueError  position_ids must have shape (1 or 2, 5) to match q, got (1, 4)
36. static cache, 6 tokens into 3 free   -> ValueError  static cache overflow: max_len is 8, 5 tokens are stored, got 6 more
37. static cache, wrong kv_heads         -> ValueError  key must have (batch, kv_heads, head_dim) = (1, 2, 4) like the cache, got shape (1, 3, 1, 4)
38. static cache, bf16 keys into fp32    -> TypeError   key must have the cache's dtype torch.float32, got torch.bfloat16
39. dynamic cache, head_dim 5 after 4    -> ValueError  key must have (batch, kv_heads, head_dim) = (1, 2, 4) like the cache, got shape (1, 2, 1, 5)
40. padding_mask, lengths [-1, 2]        -> ValueError  lengths must lie in [0, 4], got [-1, 2]
41. padding_mask, lengths [5] > max_len  -> ValueError  lengths must lie in [0, 4], got [5]
42. padding_mask, float attention_mask   -> TypeError   attention_mask must be an integer or bool tensor of 0/1, got torch.float32
43. padding_mask, attention_mask with 2  -> ValueError  attention_mask must hold only 0 and 1, got values in [0, 2]
44. padding_mask, float lengths tensor   -> TypeError   lengths must hold integers, got dtype torch.float32
45. padding_mask, padding_side="middle"  -> ValueError  padding_side must be one of 'right', 'left', got 'middle'
46. prefix_lm_mask, prefix 5 for seq 4   -> ValueError  prefix_lengths must lie in [0, 4], got [5]
47. prefix_lm_mask, prefix -1            -> ValueError  prefix_lengths must lie in [0, 4], got [-1]
48. causal_mask, k_len 2 < q_len 3       -> ValueError  k_len must be >= q_len for a bottom-right aligned causal mask, got k_len=2 < q_len=3
49. unilm_mask, kind="causal"            -> ValueError  kind must be one of 'bidirectional', ..., got 'causal'
50. unilm_mask seq2seq without source    -> ValueError  source_len is required for kind='seq2seq', got None
51. combine_masks, an int mask           -> TypeError   masks[1] must be a bool tensor (True = may attend), got torch.int64
52. to_additive_mask, integer dtype      -> TypeError   dtype must be a floating dtype, got torch.int32
53. learned positions, position 8 >= 8   -> ValueError  position_ids must be < max_positions = 8, got a largest position of 8
54. learned positions, position -1       -> ValueError  position_ids must be >= 0, got a smallest position of -1
55. learned positions, float ids         -> TypeError   position_ids must be an integer tensor, got torch.float32
56. sinusoidal, odd d_model 5            -> ValueError  d_model must be even for sinusoidal positions, got 5
57. rotary, odd head_dim 7               -> ValueError  head_dim must be even for rotary embeddings, got 7
58. ALiBi bias, q_len 0                  -> ValueError  q_len must be a positive int, got 0
59. block, norm_position="middle"        -> ValueError  norm_position must be one of 'pre', 'post', got 'middle'
60. block, norm="batchnorm"              -> ValueError  norm must be one of 'layernorm', 'rmsnorm', got 'batchnorm'
61. feed-forward, activation="tanh"      -> ValueError  activation must be one of 'relu', 'gelu', 'gelu_tanh', 'silu', got 'tanh'
62. block, context without cross-attn    -> ValueError  context must be None for a block built with cross_attention=False, got a tensor of shape (2, 4, 24)
63. block, cross-attn without context    -> ValueError  context (the encoder output) must be a tensor for a block with cross_attention=True, got None
"""

from __future__ import annotations

import re

import pytest
import torch

from llmarch.nn import (
    ALiBi,
    DynamicLayerCache,
    FeedForward,
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    RotaryEmbedding,
    SinusoidalPositionalEmbedding,
    StaticLayerCache,
    TransformerBlock,
    causal_mask,
    combine_masks,
    padding_mask,
    prefix_lm_mask,
    scaled_dot_product_attention,
    to_additive_mask,
    unilm_mask,
)

D = 24


def _qkv(q_shape=(2, 3, 5, 8), k_shape=None, v_shape=None, **kinds):
    q = torch.randn(q_shape, dtype=kinds.get("q_dtype", torch.float32))
    k = torch.randn(k_shape or q_shape, dtype=kinds.get("k_dtype", torch.float32), device=kinds.get("k_device"))
    v = torch.randn(v_shape or k_shape or q_shape)
    return q, k, v


def sdpa(mask=None, q_shape=(2, 3, 5, 8), k_shape=None, v_shape=None, **kwargs):
    kinds = {key: kwargs.pop(key) for key in ("q_dtype", "k_dtype", "k_device") if key in kwargs}
    q, k, v = _qkv(q_shape, k_shape, v_shape, **kinds)
    return lambda: scaled_dot_product_attention(q, k, v, mask, **kwargs)


def mha_call(x=None, context=None, module=None, **kwargs):
    module = module or MultiHeadAttention(D, 4)
    x = torch.randn(2, 5, D) if x is None else x
    return lambda: module(x, context, **kwargs)


def static_overflow():
    cache = StaticLayerCache(1, 2, 8, 4)
    cache.update(torch.ones(1, 2, 5, 4), torch.ones(1, 2, 5, 4))
    cache.update(torch.ones(1, 2, 6, 4), torch.ones(1, 2, 6, 4))


def dynamic_head_dim():
    cache = DynamicLayerCache()
    cache.update(torch.ones(1, 2, 3, 4), torch.ones(1, 2, 3, 4))
    cache.update(torch.ones(1, 2, 1, 5), torch.ones(1, 2, 1, 5))


def rotary_positions():
    mha = MultiHeadAttention(D, 4, rotary=RotaryEmbedding(6))
    mha(torch.randn(2, 5, D), position_ids=torch.arange(4)[None])


INT = torch.int64
CASES = [
    # (id, call, exception, regex that must match the message)
    ("sdpa_q_rank", lambda: scaled_dot_product_attention(torch.zeros(2, 5, 8), torch.zeros(2, 1, 5, 8), torch.zeros(2, 1, 5, 8)),
     ValueError, r"q must have shape \(batch, heads, seq, head_dim\) \(4 dims\), got shape \(2, 5, 8\)"),
    ("sdpa_q_list", lambda: scaled_dot_product_attention([1.0], torch.zeros(1), torch.zeros(1)),
     TypeError, r"q must be a torch.Tensor, got list"),
    ("sdpa_q_int", lambda: scaled_dot_product_attention(*(torch.zeros(1, 1, 2, 2, dtype=INT),) * 3),
     TypeError, r"q must be a floating-point tensor, got torch.int64"),
    ("sdpa_dtype_mismatch", sdpa(k_dtype=torch.float64),
     ValueError, r"k must have the dtype of q \(torch.float32\), got torch.float64"),
    ("sdpa_device_mismatch", sdpa(k_device="meta"),
     ValueError, r"k must be on the device of q \(cpu\), got meta"),
    ("sdpa_kv_length", sdpa(k_shape=(2, 3, 5, 8), v_shape=(2, 3, 4, 8)),
     ValueError, r"k and v must agree in \(batch, kv_heads, k_len\), got k \(2, 3, 5, 8\) and v \(2, 3, 4, 8\)"),
    ("sdpa_kv_batch", sdpa(k_shape=(3, 3, 5, 8)),
     ValueError, r"k must have batch size 2 \(that of q\), got 3"),
    ("sdpa_head_dim", sdpa(k_shape=(2, 3, 5, 6), v_shape=(2, 3, 5, 8)),
     ValueError, r"k must have head_dim 8 \(that of q\), got 6"),
    ("sdpa_gqa_heads", sdpa(q_shape=(2, 6, 5, 8), k_shape=(2, 4, 5, 8)),
     ValueError, r"k must have a number of heads that divides q's 6 heads .*got 4"),
    ("sdpa_mask_dtype", sdpa(mask=torch.ones(5, 5)),
     TypeError, r"mask must be a bool tensor \(True = may attend\), got torch.float32"),
    ("sdpa_mask_shape", sdpa(mask=torch.ones(5, 4, dtype=torch.bool)),
     ValueError, r"mask must be broadcastable to \(batch, heads, q_len, k_len\) = \(2, 3, 5, 5\), got shape \(5, 4\)"),
    ("sdpa_mask_rank", sdpa(mask=torch.ones(1, 2, 3, 5, 5, dtype=torch.bool)),
     ValueError, r"mask must be broadcastable to .* = \(2, 3, 5, 5\), got shape \(1, 2, 3, 5, 5\)"),
    ("sdpa_mask_device", sdpa(mask=torch.ones(5, 5, dtype=torch.bool, device="meta")),
     ValueError, r"mask must be on the device of q \(cpu\), got meta"),
    ("sdpa_bias_dtype", sdpa(bias=torch.zeros(5, 5, dtype=INT)),
     TypeError, r"bias must be a floating-point tensor \(additive\), got torch.int64"),
    ("sdpa_bias_shape", sdpa(bias=torch.zeros(1, 4, 5, 5)),
     ValueError, r"bias must be broadcastable to .* = \(2, 3, 5, 5\), got shape \(1, 4, 5, 5\)"),
    ("sdpa_backend", sdpa(backend="flash"),
     ValueError, r"backend must be one of 'auto', 'eager', 'sdpa', got 'flash'"),
    ("sdpa_return_weights", sdpa(backend="sdpa", return_weights=True),
     ValueError, r"return_weights=True needs backend 'eager' or 'auto', got backend='sdpa'"),
    ("sdpa_dropout_range", sdpa(dropout_p=1.0),
     ValueError, r"dropout_p must be in \[0, 1\), got 1.0"),
    ("sdpa_dropout_type", sdpa(dropout_p="0.1"),
     TypeError, r"dropout_p must be a float in \[0, 1\), got str \('0.1'\)"),
    ("sdpa_causal_short_keys", sdpa(k_shape=(2, 3, 3, 8), is_causal=True),
     ValueError, r"is_causal needs k_len >= q_len, got k_len=3 < q_len=5"),
    ("mha_divisible_heads", lambda: MultiHeadAttention(25, 4),
     ValueError, r"d_model must be divisible by num_heads, got d_model=25 and num_heads=4"),
    ("mha_divisible_kv_heads", lambda: MultiHeadAttention(D, 4, 3),
     ValueError, r"num_heads must be divisible by num_kv_heads, got num_heads=4 and num_kv_heads=3"),
    ("mha_zero_heads", lambda: MultiHeadAttention(D, 0),
     ValueError, r"num_heads must be a positive int, got 0"),
    ("mha_float_heads", lambda: MultiHeadAttention(D, 2.0),
     TypeError, r"num_heads must be an int, got float \(2.0\)"),
    ("mha_dropout", lambda: MultiHeadAttention(D, 4, dropout=1.5),
     ValueError, r"dropout must be in \[0, 1\), got 1.5"),
    ("mha_backend", lambda: MultiHeadAttention(D, 4, backend="flash"),
     ValueError, r"backend must be one of 'auto', 'eager', 'sdpa', got 'flash'"),
    ("mha_rotary_head_dim", lambda: MultiHeadAttention(D, 4, rotary=RotaryEmbedding(8)),
     ValueError, r"rotary must be built for head_dim=6, got a RotaryEmbedding of head_dim=8"),
    ("mha_x_rank", mha_call(x=torch.randn(5, D)),
     ValueError, r"x must have shape \(batch, seq, d_model\) \(3 dims\), got shape \(5, 24\)"),
    ("mha_x_width", mha_call(x=torch.randn(2, 5, 23)),
     ValueError, r"x must have last dimension 24, got shape \(2, 5, 23\)"),
    ("mha_x_dtype", mha_call(x=torch.randn(2, 5, D, dtype=torch.float64)),
     TypeError, r"x must have the dtype of the module's weights \(torch.float32\), got torch.float64"),
    ("mha_x_device", mha_call(x=torch.randn(2, 5, D, device="meta")),
     ValueError, r"x must be on the device of the module's weights \(cpu\), got meta"),
    ("mha_context_width", mha_call(context=torch.randn(2, 4, 10)),
     ValueError, r"context must have last dimension 24, got shape \(2, 4, 10\)"),
    ("mha_context_batch", mha_call(context=torch.randn(3, 4, D)),
     ValueError, r"context must have batch size 2 \(that of x\), got 3"),
    ("mha_cross_causal", mha_call(context=torch.randn(2, 4, D), is_causal=True),
     ValueError, r"is_causal must be False for cross-attention, got True"),
    ("mha_rotary_positions", rotary_positions,
     ValueError, r"position_ids must have shape \(1 or 2, 5\) to match q, got \(1, 4\)"),
    ("static_cache_overflow", static_overflow,
     ValueError, r"static cache overflow: max_len is 8, 5 tokens are stored, got 6 more"),
    ("static_cache_heads", lambda: StaticLayerCache(1, 2, 8, 4).update(torch.ones(1, 3, 1, 4), torch.ones(1, 3, 1, 4)),
     ValueError, r"key must have \(batch, kv_heads, head_dim\) = \(1, 2, 4\) like the cache, got shape \(1, 3, 1, 4\)"),
    ("static_cache_dtype", lambda: StaticLayerCache(1, 2, 8, 4).update(*(torch.ones(1, 2, 1, 4, dtype=torch.bfloat16),) * 2),
     TypeError, r"key must have the cache's dtype torch.float32, got torch.bfloat16"),
    ("dynamic_cache_head_dim", dynamic_head_dim,
     ValueError, r"key must have \(batch, kv_heads, head_dim\) = \(1, 2, 4\) like the cache, got shape \(1, 2, 1, 5\)"),
    ("padding_negative_length", lambda: padding_mask(lengths=[-1, 2], max_len=4),
     ValueError, r"lengths must lie in \[0, 4\], got \[-1, 2\]"),
    ("padding_too_long", lambda: padding_mask(lengths=[5], max_len=4),
     ValueError, r"lengths must lie in \[0, 4\], got \[5\]"),
    ("padding_float_mask", lambda: padding_mask(torch.ones(2, 3)),
     TypeError, r"attention_mask must be an integer or bool tensor of 0/1, got torch.float32"),
    ("padding_mask_values", lambda: padding_mask(torch.tensor([[1, 2, 0]])),
     ValueError, r"attention_mask must hold only 0 and 1, got values in \[0, 2\]"),
    ("padding_float_lengths", lambda: padding_mask(lengths=torch.tensor([1.0, 2.0])),
     TypeError, r"lengths must hold integers, got dtype torch.float32"),
    ("padding_side", lambda: padding_mask(lengths=[1], padding_side="middle"),
     ValueError, r"padding_side must be one of 'right', 'left', got 'middle'"),
    ("prefix_too_long", lambda: prefix_lm_mask(5, 4),
     ValueError, r"prefix_lengths must lie in \[0, 4\], got \[5\]"),
    ("prefix_negative", lambda: prefix_lm_mask([-1], 4),
     ValueError, r"prefix_lengths must lie in \[0, 4\], got \[-1\]"),
    ("causal_short_keys", lambda: causal_mask(3, 2),
     ValueError, r"k_len must be >= q_len for a bottom-right aligned causal mask, got k_len=2 < q_len=3"),
    ("unilm_kind", lambda: unilm_mask("causal", 3),
     ValueError, r"kind must be one of 'bidirectional', .*, got 'causal'"),
    ("unilm_source", lambda: unilm_mask("seq2seq", 3),
     ValueError, r"source_len is required for kind='seq2seq', got None"),
    ("combine_int_mask", lambda: combine_masks(causal_mask(2), torch.ones(2, 2, dtype=INT)),
     TypeError, r"masks\[1\] must be a bool tensor \(True = may attend\), got torch.int64"),
    ("additive_dtype", lambda: to_additive_mask(causal_mask(2), torch.int32),
     TypeError, r"dtype must be a floating dtype, got torch.int32"),
    ("learned_position_too_large", lambda: LearnedPositionalEmbedding(8, 4)(torch.tensor([[0, 8]])),
     ValueError, r"position_ids must be < max_positions = 8, got a largest position of 8"),
    ("learned_position_negative", lambda: LearnedPositionalEmbedding(8, 4)(torch.tensor([[-1, 2]])),
     ValueError, r"position_ids must be >= 0, got a smallest position of -1"),
    ("learned_position_float", lambda: LearnedPositionalEmbedding(8, 4)(torch.tensor([[0.0]])),
     TypeError, r"position_ids must be an integer tensor, got torch.float32"),
    ("sinusoidal_odd", lambda: SinusoidalPositionalEmbedding(5),
     ValueError, r"d_model must be even for sinusoidal positions, got 5"),
    ("rotary_odd", lambda: RotaryEmbedding(7),
     ValueError, r"head_dim must be even for rotary embeddings, got 7"),
    ("alibi_zero_len", lambda: ALiBi(4)(0, 3),
     ValueError, r"q_len must be a positive int, got 0"),
    ("block_norm_position", lambda: TransformerBlock(D, 4, 48, norm_position="middle"),
     ValueError, r"norm_position must be one of 'pre', 'post', got 'middle'"),
    ("block_norm", lambda: TransformerBlock(D, 4, 48, norm="batchnorm"),
     ValueError, r"norm must be one of 'layernorm', 'rmsnorm', got 'batchnorm'"),
    ("ffn_activation", lambda: FeedForward(D, 48, activation="tanh"),
     ValueError, r"activation must be one of 'relu', 'gelu', 'gelu_tanh', 'silu', got 'tanh'"),
    ("block_unexpected_context", lambda: TransformerBlock(D, 4, 48)(torch.randn(2, 5, D), context=torch.randn(2, 4, D)),
     ValueError, r"context must be None for a block built with cross_attention=False, got a tensor of shape \(2, 4, 24\)"),
    ("block_missing_context", lambda: TransformerBlock(D, 4, 48, cross_attention=True)(torch.randn(2, 5, D)),
     ValueError, r"context \(the encoder output\) must be a tensor for a block with cross_attention=True, got None"),
]


def test_there_are_many_distinct_cases():
    assert len(CASES) >= 20 and len({case[0] for case in CASES}) == len(CASES)
    assert len(CASES) == len(re.findall(r"^\s*\d+\. ", __doc__, flags=re.M))


@pytest.mark.parametrize("call,error,pattern", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_raises_a_helpful_error(call, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        call()
    assert type(info.value) is error  # not a subclass such as IndexError or a RuntimeError
    assert " got " in str(info.value)  # shows the received value
