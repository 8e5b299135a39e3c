"""Scaled dot-product attention with two interchangeable paths.

* ``"eager"`` -- the formula written out, ``softmax(q k^T * scale + bias) v``: readable, can
  return the attention weights, and computes in fp32 for bf16/fp16 inputs (rounding once, at
  the end, like PyTorch's own math path).
* ``"sdpa"`` -- ``torch.nn.functional.scaled_dot_product_attention``, which dispatches to
  fused flash / memory-efficient kernels that never materialise the ``q_len x k_len`` matrix.

Both paths share one meaning, held equal by the tests: boolean masks (``True`` = may attend),
grouped-query attention, a row that may attend to nothing gives zeros (and finite gradients),
and NaN hidden in fully masked keys or values never reaches the output. (That last guard
branches on values, which a ``torch.compile`` graph cannot do: inside one it is skipped. The
compiled decoding step of ``generate(compile=True)`` never holds such values: its static cache
starts as zeros and stores only the keys and values the model computed.)

Values are not checked otherwise (that would cost a device-to-host sync per call): NaN or inf in
a query, or in a key or value that some query may see, propagates to that query's output (NaN
in, NaN out), as in ``torch.nn.functional``. Finite inputs always give finite outputs.
Shapes, dtypes, devices, masks and settings are checked (``ValueError`` / ``TypeError``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import (
    check_bool,
    check_bool_mask,
    check_choice,
    check_float,
    check_ndim,
    check_probability,
    check_same_device_dtype,
    check_tensor,
)
from .masks import causal_mask, combine_masks

__all__ = ["scaled_dot_product_attention", "BACKENDS"]

BACKENDS = ("auto", "eager", "sdpa")
# torch >= 2.5 shares key/value heads inside the kernel (its docstring lists the flag)
_SDPA_HAS_GQA = "enable_gqa" in (F.scaled_dot_product_attention.__doc__ or "")
_SHAPE = "(batch, heads, seq, head_dim)"


def _check_inputs(q: Tensor, k: Tensor, v: Tensor, mask, bias, dropout_p, backend) -> None:
    for name, tensor in (("q", q), ("k", k), ("v", v)):
        check_ndim(name, tensor, 4, _SHAPE)
    if not q.dtype.is_floating_point:
        raise TypeError(f"q must be a floating-point tensor, got {q.dtype}")
    check_same_device_dtype(("q", "k", "v"), (q, k, v))
    batch, heads, q_len, head_dim = q.shape
    if heads == 0 or head_dim == 0:
        raise ValueError(f"q must have at least one head and head_dim >= 1, got shape {tuple(q.shape)}")
    if k.shape[1] == 0:
        raise ValueError(f"k must have at least one key/value head, got shape {tuple(k.shape)}")
    if k.shape[:3] != v.shape[:3]:
        raise ValueError(
            f"k and v must agree in (batch, kv_heads, k_len), got k {tuple(k.shape)} and v {tuple(v.shape)}"
        )
    if k.shape[0] != batch:
        raise ValueError(f"k must have batch size {batch} (that of q), got {k.shape[0]}")
    if k.shape[-1] != head_dim:
        raise ValueError(f"k must have head_dim {head_dim} (that of q), got {k.shape[-1]}")
    kv_heads = k.shape[1]
    if heads % kv_heads:
        raise ValueError(
            f"k must have a number of heads that divides q's {heads} heads (grouped-query attention), got {kv_heads}"
        )
    target = (batch, heads, q_len, k.shape[2])
    if mask is not None:
        check_bool_mask("mask", mask, target, "(batch, heads, q_len, k_len)")
        if mask.device != q.device:
            raise ValueError(f"mask must be on the device of q ({q.device}), got {mask.device}")
    if bias is not None:
        check_tensor("bias", bias)
        if not bias.dtype.is_floating_point:
            raise TypeError(f"bias must be a floating-point tensor (additive), got {bias.dtype}")
        # Same broadcast rule as masks; reuse the checker on a bool view of the shape.
        check_bool_mask("bias", torch.empty(bias.shape, dtype=torch.bool, device="meta"), target,
                        "(batch, heads, q_len, k_len)")
        if bias.device != q.device:
            raise ValueError(f"bias must be on the device of q ({q.device}), got {bias.device}")
    check_probability("dropout_p", dropout_p)
    check_choice("backend", backend, BACKENDS)


# --8<-- [start:safe_mask]
def _guard_masked(k: Tensor, v: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Make masking safe for any softmax implementation.

    Returns ``(k, v, mask, empty_rows)``. Rows that may see nothing are allowed to see
    everything (a finite, uniform softmax); their output is zeroed afterwards through
    ``empty_rows``, which also makes their gradients exactly zero. A masked key gets weight
    exactly 0, but ``0 * NaN = NaN``: so if ``k`` or ``v`` hold a non-finite value (NaN
    padding), keys/values that *no* query may see are zeroed. Finite inputs -- the usual
    case, e.g. the unused slots of a static cache -- are not copied.
    """
    empty_rows = ~mask.any(dim=-1, keepdim=True)  # (batch, heads, q_len, 1)
    if not torch.compiler.is_compiling():  # a graph cannot branch on values (module docstring)
        # (batch, 1, k_len, 1): keys hidden from every query of every head of an example. Folding
        # the heads lets the zeroing broadcast over k's (possibly fewer) key/value heads.
        unseen = ~mask.any(dim=-2).any(dim=1, keepdim=True).unsqueeze(-1)
        # One cheap reduction detects NaN/inf anywhere (an overflowing sum only costs a needless copy).
        if unseen.any() and not torch.isfinite(k.detach().sum() + v.detach().sum()):
            k = k.masked_fill(unseen, 0.0)
            v = v.masked_fill(unseen, 0.0)
    return k, v, mask | empty_rows, empty_rows
# --8<-- [end:safe_mask]


# --8<-- [start:eager]
def _eager_attention(q, k, v, mask, bias, dropout_p, scale):
    groups = q.shape[1] // k.shape[1]
    if (
        groups > 1
    ):  # grouped-query attention: query head h reads key/value head h // groups
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
    dtype = q.dtype
    if dtype in (
        torch.float16,
        torch.bfloat16,
    ):  # compute in fp32, round once at the end
        q, k, v = q.float(), k.float(), v.float()
    scores = (q @ k.transpose(-2, -1)) * scale  # (batch, heads, q_len, k_len)
    if bias is not None:
        scores = scores + bias.to(scores.dtype)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return (weights @ v).to(dtype), weights.to(dtype)
# --8<-- [end:eager]


def _sdpa_attention(q, k, v, mask, bias, dropout_p, scale, is_causal):
    attn_mask = mask
    if bias is not None:  # one additive float mask carries both the bias and the mask
        attn_mask = bias.to(q.dtype)
        if mask is not None:
            attn_mask = attn_mask.masked_fill(~mask, float("-inf"))
    kwargs = {}
    if k.shape[1] != q.shape[1]:
        if _SDPA_HAS_GQA:
            kwargs["enable_gqa"] = True
        else:  # torch < 2.5
            groups = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale, **kwargs
    )


# --8<-- [start:sdpa_function]
def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    *,
    bias: Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    scale: float | None = None,
    backend: str = "auto",
    return_weights: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Attention $\mathrm{softmax}(QK^\top \cdot \text{scale} + B)\,V$ over heads.

    Args:
        q: queries ``(batch, heads, q_len, head_dim)``.
        k: keys ``(batch, kv_heads, k_len, head_dim)``; ``heads`` must be a multiple of
            ``kv_heads`` (grouped-query attention: query head ``h`` uses key/value head
            ``h // (heads // kv_heads)``; ``kv_heads == 1`` is multi-query attention).
        v: values ``(batch, kv_heads, k_len, v_dim)``.
        mask: bool, broadcastable to ``(batch, heads, q_len, k_len)``; ``True`` = may attend.
        bias: additive float bias broadcastable like ``mask`` (ALiBi, T5 relative positions).
        is_causal: add a bottom-right aligned causal mask (query ``i`` sees keys
            ``<= k_len - q_len + i``).
        dropout_p: dropout on the attention weights (pass 0 in evaluation).
        scale: multiplier of the scores; default ``1 / sqrt(head_dim)``.
        backend: ``"eager"``, ``"sdpa"``, or ``"auto"`` (sdpa unless weights are requested).
        return_weights: also return the weights ``(batch, heads, q_len, k_len)`` (eager only).

    Returns:
        ``(batch, heads, q_len, v_dim)``, or ``(output, weights)`` with ``return_weights``.

    Raises:
        ValueError / TypeError: on wrong ranks, dtypes, devices, mismatched shapes, no heads or
            ``head_dim`` 0, a mask that is not boolean or not broadcastable, a bad ``dropout_p``,
            ``scale`` (not a finite number) or ``backend``, non-bool flags.

    >>> q = k = v = torch.randn(2, 4, 5, 8)
    >>> out = scaled_dot_product_attention(q, k, v, is_causal=True)
    >>> ref = scaled_dot_product_attention(q, k, v, is_causal=True, backend="eager")
    >>> out.shape, torch.allclose(out, ref, atol=1e-5)
    (torch.Size([2, 4, 5, 8]), True)
    """
    _check_inputs(q, k, v, mask, bias, dropout_p, backend)
    check_bool("is_causal", is_causal)
    check_bool("return_weights", return_weights)
    if return_weights and backend == "sdpa":
        raise ValueError("return_weights=True needs backend 'eager' or 'auto', got backend='sdpa'")
    if backend == "auto":
        backend = "eager" if return_weights else "sdpa"
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else check_float("scale", scale)
    q_len, k_len = q.shape[2], k.shape[2]
    if q_len == 0:
        is_causal = False  # no query: nothing to hide

    # The fused kernels' own causal flag is top-left aligned, so it is used only when the two
    # alignments agree (q_len == k_len) and nothing else needs combining; otherwise the causal
    # mask is built explicitly, bottom-right aligned.
    if is_causal and q_len == 1 and k_len >= 1:
        is_causal = False  # one query at the last position sees every key: nothing to hide
    fused_causal = is_causal and backend == "sdpa" and mask is None and bias is None and q_len == k_len
    if is_causal and not fused_causal:
        if k_len < q_len:
            raise ValueError(f"is_causal needs k_len >= q_len, got k_len={k_len} < q_len={q_len}")
        mask = combine_masks(mask, causal_mask(q_len, k_len, device=q.device))

    empty_rows = None
    if mask is not None:
        mask = mask.reshape((1,) * (4 - mask.ndim) + tuple(mask.shape))  # (batch, heads, q, k)
        k, v, mask, empty_rows = _guard_masked(k, v, mask)

    if backend == "eager":
        out, weights = _eager_attention(q, k, v, mask, bias, dropout_p, scale)
    else:
        out, weights = _sdpa_attention(q, k, v, mask, bias, dropout_p, scale, fused_causal), None
    if empty_rows is not None:
        out = out.masked_fill(empty_rows, 0.0)
        if weights is not None:
            weights = weights.masked_fill(empty_rows, 0.0)
    return (out, weights) if return_weights else out
# --8<-- [end:sdpa_function]
