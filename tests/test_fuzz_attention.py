"""Bad input, fuzzed: ``scaled_dot_product_attention`` and ``MultiHeadAttention``.

A table of *kinds* of bad input (one row each: the entry point, what is wrong, the call) and
Hypothesis properties over random shapes, dtypes, values, masks and biases.
The property and the contract for values are in ``tests/fuzz_harness.py``: a correct result, or
exactly ``ValueError`` / ``TypeError`` naming the argument and the received value -- never an
error from inside torch, a hang, a changed input, or a NaN out of finite inputs.
For attention in particular: a query that may attend to nothing gets zeros (on both
backends), and NaN / inf in keys or values that no query may see never reach the output.
"""

from __future__ import annotations

import pytest
import torch
from fuzz_harness import Case, also_contiguous, judge, table_tests
from fuzz_inputs import (
    BAD_FLOATS,
    BAD_SIZES,
    FLOAT_TENSOR_VARIANTS,
    INF,
    NAN,
    broadcastable_shape,
    changes_layout,
    random_tensor,
    set_first,
)
from hypothesis import given
from hypothesis import strategies as st

from llmarch.nn import (
    DynamicLayerCache,
    KVCache,
    MultiHeadAttention,
    RotaryEmbedding,
    StaticLayerCache,
    scaled_dot_product_attention,
)

B, H, L, D = 2, 2, 3, 4  # batch, heads, length, head_dim of the attention inputs
WIDTH = 8  # d_model of the modules


def rows_are_zero(rows):
    """A check: the output rows (query positions) ``rows`` are exactly zero."""

    def check(out):
        out = out[0] if isinstance(out, tuple) else out
        assert torch.equal(out[..., rows, :], torch.zeros_like(out[..., rows, :])), "a fully masked row is not zero"

    return check


CASES: list[Case] = []


def add(entry, kind, make, names, expect="error", check=None, errors=None):
    kwargs = {} if errors is None else {"errors": errors}
    CASES.append(Case(entry, kind, make, tuple(names), expect, check=check, **kwargs))


# ----------------------------------------------------------------------------------------------
# scaled_dot_product_attention
# ----------------------------------------------------------------------------------------------
SDPA = "scaled_dot_product_attention"
SDPA_NAMES = ("q", "k", "v", "mask", "bias", "dropout_p", "scale", "backend", "is_causal", "return_weights")


def sdpa_make(
    q=None, k=None, v=None, shape=(B, H, L, D), k_shape=None, v_shape=None, dtype=torch.float32, wrap=None, **kwargs
):
    def make():
        good = {
            "q": torch.randn(shape, dtype=dtype),
            "k": torch.randn(k_shape or shape, dtype=dtype),
            "v": torch.randn(v_shape or k_shape or shape, dtype=dtype),
        }
        args = [
            change(good[name]) if change is not None else good[name] for name, change in (("q", q), ("k", k), ("v", v))
        ]
        built = {key: value() if callable(value) else value for key, value in kwargs.items()}
        function = scaled_dot_product_attention if wrap is None else wrap(scaled_dot_product_attention)
        return function, tuple(args), built

    return make


for _name in ("q", "k", "v"):
    for _kind, _change, _expect in FLOAT_TENSOR_VARIANTS:
        add(
            SDPA,
            f"{_name} {_kind}",
            sdpa_make(**{_name: _change}, wrap=also_contiguous if changes_layout(_kind) else None),
            (_name,),
            _expect,
        )
for _backend in ("eager", "sdpa"):
    for _kind, _shape, _k_shape, _v_shape, _expect in [
        ("batch 0", (0, H, L, D), None, None, "ok"),
        ("q_len 0", (B, H, 0, D), (B, H, L, D), None, "ok"),
        ("k_len 0 (no keys: zeros)", (B, H, L, D), (B, H, 0, D), None, "ok"),
        ("heads 0", (B, 0, L, D), None, None, "error"),
        ("head_dim 0", (B, H, L, 0), None, None, "error"),
        ("v_dim 0", (B, H, L, D), None, (B, H, L, 0), "ok"),
        ("v_dim differs from head_dim", (B, H, L, D), None, (B, H, L, 6), "ok"),
        ("1 kv head (MQA)", (B, H, L, D), (B, 1, L, D), None, "ok"),
        ("3 query heads, 2 kv heads", (B, 3, L, D), (B, 2, L, D), None, "error"),
        ("kv heads 0", (B, H, L, D), (B, 0, L, D), None, "error"),
        ("k batch 1 for q batch 2", (B, H, L, D), (1, H, L, D), None, "error"),
    ]:
        add(
            SDPA,
            f"{_kind} [{_backend}]",
            sdpa_make(shape=_shape, k_shape=_k_shape, v_shape=_v_shape, backend=_backend),
            ("q", "k", "v", "head_dim"),
            _expect,
        )
    for _dtype in (torch.float16, torch.bfloat16, torch.float64):
        add(SDPA, f"all {_dtype} [{_backend}]", sdpa_make(dtype=_dtype, backend=_backend), ("q",), "ok")
    add(
        SDPA,
        f"fully masked query row gives zeros [{_backend}]",
        sdpa_make(mask=lambda: torch.tensor([[False] * L, [True] * L, [True] * L]), backend=_backend),
        ("mask",),
        "ok",
        check=rows_are_zero([0]),
    )
    add(
        SDPA,
        f"all-False mask gives zeros [{_backend}]",
        sdpa_make(mask=lambda: torch.zeros(L, L, dtype=torch.bool), backend=_backend),
        ("mask",),
        "ok",
        check=rows_are_zero(list(range(L))),
    )
    add(
        SDPA,
        f"NaN in keys nobody sees [{_backend}]",
        sdpa_make(k=set_first(NAN), mask=lambda: torch.tensor([False, True, True]), backend=_backend),
        ("k",),
        "ok",
        check=lambda out: torch.isfinite(out).all() or pytest.fail("hidden NaN reached the output"),
    )
    add(
        SDPA,
        f"causal with a fully masked first key [{_backend}]",
        sdpa_make(mask=lambda: torch.tensor([False, True, True]), is_causal=True, backend=_backend),
        ("mask",),
        "ok",
        check=rows_are_zero([0]),
    )

_MASK_VARIANTS = [
    ("a nested list", lambda: [[True] * L] * L, "error"),
    ("float values", lambda: torch.ones(L, L), "error"),
    ("int64 values", lambda: torch.ones(L, L, dtype=torch.long), "error"),
    ("uint8 values", lambda: torch.ones(L, L, dtype=torch.uint8), "error"),
    ("rank 5", lambda: torch.ones(1, 1, 1, L, L, dtype=torch.bool), "error"),
    ("k_len 2 for 3 keys", lambda: torch.ones(L, 2, dtype=torch.bool), "error"),
    ("3 heads for 2", lambda: torch.ones(1, 3, L, L, dtype=torch.bool), "error"),
    ("batch 3 for 2", lambda: torch.ones(3, 1, L, L, dtype=torch.bool), "error"),
    ("on the meta device", lambda: torch.ones(L, L, dtype=torch.bool, device="meta"), "error"),
    ("a 0-dim True", lambda: torch.tensor(True), "ok"),
    ("1-D over keys", lambda: torch.tensor([True, False, True]), "ok"),
    ("expanded (stride 0)", lambda: torch.tensor([True, False, True]).expand(B, H, L, L), "ok"),
    ("non-contiguous", lambda: torch.ones(L, L, dtype=torch.bool).tril().T.contiguous().T, "ok"),
]
for _kind, _mask, _expect in _MASK_VARIANTS:
    add(SDPA, f"mask {_kind}", sdpa_make(mask=_mask), ("mask",), _expect)

_BIAS_VARIANTS = [
    ("a nested list", lambda: [[0.0] * L] * L, "error"),
    ("int64 values", lambda: torch.zeros(L, L, dtype=torch.long), "error"),
    ("bool values", lambda: torch.zeros(L, L, dtype=torch.bool), "error"),
    ("complex values", lambda: torch.zeros(L, L, dtype=torch.complex64), "error"),
    ("k_len 2 for 3 keys", lambda: torch.zeros(L, 2), "error"),
    ("rank 5", lambda: torch.zeros(1, 1, 1, L, L), "error"),
    ("on the meta device", lambda: torch.zeros(L, L, device="meta"), "error"),
    ("float64 for float32 q", lambda: torch.randn(L, L, dtype=torch.float64), "ok"),
    ("a NaN entry", lambda: set_first(NAN)(torch.zeros(L, L)), "ok"),
    ("a row of -inf", lambda: torch.zeros(L, L).index_fill(0, torch.tensor([0]), -INF), "ok"),
    ("expanded (stride 0)", lambda: torch.randn(1, 1, 1, L).expand(B, H, L, L), "ok"),
]
for _backend in ("eager", "sdpa"):
    for _kind, _bias, _expect in _BIAS_VARIANTS:
        add(SDPA, f"bias {_kind} [{_backend}]", sdpa_make(bias=_bias, backend=_backend), ("bias",), _expect)

for _kind, _value in (
    [("negative", -0.1), ("1.0", 1.0)] + BAD_FLOATS + [("None", None), ("a tensor", torch.tensor(0.1))]
):
    add(SDPA, f"dropout_p {_kind}", sdpa_make(dropout_p=_value), ("dropout_p",))
for _kind, _value in BAD_FLOATS + [("a tensor", torch.tensor(2.0))]:
    add(SDPA, f"scale {_kind}", sdpa_make(scale=_value), ("scale",))
add(SDPA, "scale 0 (uniform weights)", sdpa_make(scale=0.0), ("scale",), "ok")
add(SDPA, "scale negative", sdpa_make(scale=-1.0), ("scale",), "ok")
for _kind, _value in [("unknown name", "flash"), ("upper case", "SDPA"), ("None", None), ("an int", 1)]:
    add(SDPA, f"backend {_kind}", sdpa_make(backend=_value), ("backend",))
for _kind, _value in [("a string", "yes"), ("None", None), ("an int", 1), ("a tensor", torch.tensor(True))]:
    add(SDPA, f"is_causal {_kind}", sdpa_make(is_causal=_value), ("is_causal",))
    add(SDPA, f"return_weights {_kind}", sdpa_make(return_weights=_value), ("return_weights",))
add(SDPA, "is_causal with k_len < q_len", sdpa_make(k_shape=(B, H, 2, D), is_causal=True), ("is_causal", "k_len"))
add(SDPA, "is_causal with q_len 0", sdpa_make(shape=(B, H, 0, D), k_shape=(B, H, L, D), is_causal=True), ("q",), "ok")
add(SDPA, "a misspelt keyword (attn_mask)", sdpa_make(attn_mask=None), ("attn_mask",))


# ----------------------------------------------------------------------------------------------
# MultiHeadAttention
# ----------------------------------------------------------------------------------------------
MHA = "MultiHeadAttention"


def mha_new(*args, **kwargs):
    return lambda: (MultiHeadAttention, (WIDTH, 2, *args), kwargs)


for _name in ("d_model", "num_heads", "num_kv_heads", "head_dim", "context_dim"):
    for _kind, _value in BAD_SIZES:
        if _value is None and _name != "d_model":
            continue  # None means "the default" for the optional sizes and num_heads is required
        if _name in ("d_model", "num_heads"):
            make = (lambda v, n: lambda: (MultiHeadAttention, (), {"d_model": WIDTH, "num_heads": 2, n: v}))(
                _value, _name
            )
        else:
            make = mha_new(**{_name: _value})
        add(MHA, f"{_name} {_kind}", make, (_name,))
for _kind, _value in [("negative", -0.1), ("1.0", 1.0)] + BAD_FLOATS:
    add(MHA, f"dropout {_kind}", mha_new(dropout=_value), ("dropout",))
for _kind, _value in BAD_FLOATS:
    add(MHA, f"scale {_kind}", mha_new(scale=_value), ("scale",))
add(MHA, "backend unknown", mha_new(backend="flash"), ("backend",))
add(MHA, "rotary not a RotaryEmbedding", mha_new(rotary=5), ("rotary",))
add(MHA, "rotary of another head_dim", mha_new(rotary=RotaryEmbedding(6)), ("rotary",))
add(MHA, "num_heads not a multiple of num_kv_heads", lambda: (MultiHeadAttention, (12, 3, 2), {}), ("num_heads",))


def mha_call(module_kwargs=None, x=None, context=None, wrap=None, **kwargs):
    def make():
        module = MultiHeadAttention(WIDTH, 2, **(module_kwargs or {}))
        good_x = torch.randn(B, L, WIDTH)
        built_x = x(good_x) if x is not None else good_x
        built = {key: value() if callable(value) else value for key, value in kwargs.items()}
        if context is not None:
            built["context"] = context(torch.randn(B, L + 1, WIDTH))
        return (module if wrap is None else wrap(module)), (built_x,), built

    return make


for _kind, _change, _expect in FLOAT_TENSOR_VARIANTS:
    _wrap = also_contiguous if changes_layout(_kind) else None
    add(MHA + ".forward", f"x {_kind}", mha_call(x=_change, wrap=_wrap), ("x",), _expect)
    add(
        MHA + ".forward",
        f"context {_kind}",
        mha_call(context=_change, wrap=_wrap),
        ("context",),
        "ok" if _kind == "None" else _expect,
    )
for _kind, _shape, _expect in [
    ("batch 0", (0, L, WIDTH), "ok"),
    ("seq 0", (B, 0, WIDTH), "ok"),
    ("width 7 for 8", (B, L, 7), "error"),
    ("width 0", (B, L, 0), "error"),
]:
    add(MHA + ".forward", f"x {_kind}", mha_call(x=lambda t, s=_shape: torch.randn(s)), ("x",), _expect)
add(MHA + ".forward", "context batch 1 for 2", mha_call(context=lambda t: t[:1]), ("context",))
add(
    MHA + ".forward",
    "context seq 0",
    mha_call(context=lambda t: t[:, :0]),
    ("context",),
    "ok",
    check=lambda out: torch.equal(out, out) or None,
)
add(MHA + ".forward", "causal cross-attention", mha_call(context=lambda t: t, is_causal=True), ("is_causal",))
for _kind, _mask, _expect in _MASK_VARIANTS:
    add(MHA + ".forward", f"mask {_kind}", mha_call(mask=_mask), ("mask",), _expect)
for _kind, _value in [
    ("an int", 3),
    ("a dict", {}),
    ("a KVCache of the whole model", lambda: KVCache.dynamic(2)),
    ("a list of layer caches", lambda: [DynamicLayerCache()]),
]:
    add(MHA + ".forward", f"cache {_kind}", mha_call(cache=_value), ("cache",))
add(
    MHA + ".forward",
    "static cache of another batch size",
    mha_call(cache=lambda: StaticLayerCache(3, 2, 8, 4)),
    ("cache", "key"),
)
add(MHA + ".forward", "static cache too short", mha_call(cache=lambda: StaticLayerCache(B, 2, 2, 4)), ("cache",))
for _kind, _value in [("a string", "yes"), ("None", None)]:
    add(MHA + ".forward", f"is_causal {_kind}", mha_call(is_causal=_value), ("is_causal",))
    add(MHA + ".forward", f"return_weights {_kind}", mha_call(return_weights=_value), ("return_weights",))
add(
    MHA + ".forward",
    "return_weights with backend sdpa",
    mha_call({"backend": "sdpa"}, return_weights=True),
    ("return_weights",),
)
_ROTARY = {"rotary": RotaryEmbedding(4)}
for _kind, _value, _expect in [
    ("float position_ids", lambda: torch.zeros(1, L), "error"),
    ("1-D position_ids", lambda: torch.arange(L), "error"),
    ("position_ids one too short", lambda: torch.arange(L - 1)[None], "error"),
    ("position_ids of batch 3 for 2", lambda: torch.arange(L).expand(3, L), "error"),
    ("position_ids a list", lambda: [[0, 1, 2]], "error"),
    ("negative position_ids", lambda: -torch.arange(L)[None], "ok"),
    ("huge position_ids", lambda: torch.full((1, L), 2**40), "ok"),
]:
    add(MHA + ".forward", f"rotary, {_kind}", mha_call(_ROTARY, position_ids=_value), ("position_ids",), _expect)
add(MHA + ".forward", "bias of 3 heads for 2", mha_call(bias=lambda: torch.zeros(1, 3, L, L)), ("bias",))


# ----------------------------------------------------------------------------------------------
# The tables
# ----------------------------------------------------------------------------------------------
test_the_table_holds_many_distinct_kinds, test_bad_input = table_tests(CASES, minimum=250)


# ----------------------------------------------------------------------------------------------
# Hypothesis: random shapes, dtypes, values and masks
# ----------------------------------------------------------------------------------------------
sizes = st.integers(min_value=0, max_value=4)


@given(
    data=st.data(),
    batch=sizes,
    heads=st.integers(0, 3),
    groups=st.integers(1, 2),
    q_len=sizes,
    k_len=sizes,
    head_dim=sizes,
    v_dim=sizes,
    is_causal=st.booleans(),
    backend=st.sampled_from(["auto", "eager", "sdpa"]),
)
def test_attention_on_random_inputs(data, batch, heads, groups, q_len, k_len, head_dim, v_dim, is_causal, backend):
    kv_heads = heads
    heads = heads * groups
    q = data.draw(random_tensor((batch, heads, q_len, head_dim)))
    k = data.draw(random_tensor((batch, kv_heads, k_len, head_dim), dtypes=[q.dtype] * 4 + [torch.float32]))
    v = data.draw(random_tensor((batch, kv_heads, k_len, v_dim), dtypes=[q.dtype] * 4 + [torch.float32]))
    target = (batch, heads, q_len, k_len)
    mask = data.draw(
        st.one_of(
            st.none(),
            broadcastable_shape(target).flatmap(
                lambda shape: random_tensor(shape, dtypes=[torch.bool] * 5 + [torch.float32])
            ),
        )
    )
    bias = data.draw(
        st.one_of(
            st.none(),
            broadcastable_shape(target).flatmap(
                lambda shape: random_tensor(shape, dtypes=[torch.float32, torch.float16, torch.int64])
            ),
        )
    )
    kwargs = {"mask": mask, "bias": bias, "is_causal": is_causal, "backend": backend}
    out = judge(scaled_dot_product_attention, (q, k, v), kwargs, names=SDPA_NAMES, what="random sdpa")
    if isinstance(out, torch.Tensor) and mask is not None and mask.dtype == torch.bool and out.numel():
        empty = ~mask.reshape((1,) * (4 - mask.ndim) + tuple(mask.shape)).expand(target).any(-1)
        assert (out[empty] == 0).all(), "a query that may see no key did not get zeros"


@given(
    data=st.data(),
    d_model=st.integers(1, 9),
    heads=st.integers(1, 3),
    batch=sizes,
    seq=sizes,
    cross=st.booleans(),
    is_causal=st.booleans(),
)
def test_multihead_attention_on_random_inputs(data, d_model, heads, batch, seq, cross, is_causal):
    try:
        module = MultiHeadAttention(d_model, heads)
    except ValueError as error:  # d_model not divisible by heads: a clean rejection (also tested above)
        assert "d_model" in str(error)
        return
    width = data.draw(st.sampled_from([d_model, d_model, d_model + 1]))
    x = data.draw(random_tensor((batch, seq, width), dtypes=[torch.float32] * 3 + [torch.float64]))
    context = data.draw(random_tensor((batch, seq + 1, width), dtypes=[torch.float32])) if cross else None
    judge(
        module,
        (x, context),
        {"is_causal": is_causal},
        names=("x", "context", "is_causal"),
        what="random MultiHeadAttention",
    )
