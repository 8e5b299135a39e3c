"""Inputs shared by the fuzz tests (``tests/test_fuzz_*.py``): tiny models, good inputs, and
tables of *variants* -- ways to make one argument bad (or unusual but valid).

Each variant is ``(kind, change, expected)``: ``change`` turns a good value into the variant,
``expected`` is ``"error"`` (a clean ``ValueError`` / ``TypeError`` naming the argument) or
``"ok"`` (a correct result).
"""

from __future__ import annotations

import functools

import torch
from hypothesis import strategies as st

from llmarch import EncoderOnlyForMaskedLM, EncoderOnlyForSequenceClassification, create_model, get_config

NAN, INF = float("nan"), float("inf")
VOCAB, MAX_POS = 50, 16  # the tiny models' vocabulary and context
B, L = 2, 3  # batch and length of good ids
TINY = dict(num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=VOCAB, dropout=0.0, attention_dropout=0.0)
DECODERS = ("gpt2", "llama", "alibi")
ENCODERS = ("bert", "bert-mlm", "bert-cls")
SEQ2SEQ = ("t5", "transformer")


def changes_layout(kind: str) -> bool:
    """Whether a variant only changes the memory layout (its result must equal the contiguous one's)."""
    return kind in ("non-contiguous", "expanded (stride 0)")


def set_first(value):
    """A change that writes ``value`` into the first entry (of a copy)."""

    def change(t):
        t = t.clone()
        t.view(-1)[0] = value
        return t

    return change


# ---- floating tensors and scalar settings (llmarch.nn) ----
# (kind, change of a good floating tensor, expected outcome)
FLOAT_TENSOR_VARIANTS = [
    ("a nested list", lambda t: t.tolist(), "error"),
    ("None", lambda t: None, "error"),
    ("a NumPy array", lambda t: t.numpy(), "error"),
    ("a Python float", lambda t: 1.0, "error"),
    ("one dimension fewer", lambda t: t[0], "error"),
    ("one dimension more", lambda t: t[None], "error"),
    ("a 0-dim tensor", lambda t: t.sum(), "error"),
    ("int64 values", lambda t: t.long(), "error"),
    ("bool values", lambda t: t > 0, "error"),
    ("complex64 values", lambda t: t.to(torch.complex64), "error"),
    ("float64 alone", lambda t: t.double(), "error"),
    ("bfloat16 alone", lambda t: t.bfloat16(), "error"),
    ("on the meta device", lambda t: t.to("meta"), "error"),
    ("a NaN entry", set_first(NAN), "ok"),
    ("a +inf entry", set_first(INF), "ok"),
    ("a -inf entry", set_first(-INF), "ok"),
    ("non-contiguous", lambda t: t.transpose(-1, -2).contiguous().transpose(-1, -2), "ok"),
    ("expanded (stride 0)", lambda t: t[:1].expand_as(t), "ok"),
    ("requiring grad", lambda t: t.clone().requires_grad_(), "ok"),
]

# (kind, value) of an int argument that must be positive
BAD_SIZES = [
    ("zero", 0),
    ("negative", -3),
    ("a float", 2.0),
    ("a bool", True),
    ("a string", "4"),
    ("None", None),
    ("a 0-dim tensor", torch.tensor(4)),
    ("huge negative", -(2**63)),
]
# (kind, value) of a float setting
BAD_FLOATS = [
    ("NaN", NAN),
    ("inf", INF),
    ("-inf", -INF),
    ("a string", "0.5"),
    ("a bool", True),
    ("a complex", 1j),
    ("a list", [0.5]),
]
BAD_DEVICES = [
    ("an unknown device string", "gpu"),
    ("an unavailable device", "cuda:7" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"),
    ("a float", 1.5),
    ("a list", ["cpu"]),
]
BAD_DTYPES = [
    ("a string", "float16"),
    ("a Python type", float),
    ("an integer dtype", torch.long),
    ("a bool dtype", torch.bool),
    ("None", None),
]


# ---- models: tiny models, token ids and attention masks ----
@functools.cache
def model(name: str):
    """Tiny models, built once per test session (the harness checks that no case changes them)."""
    torch.manual_seed(0)
    if name == "gpt2":
        return create_model("gpt2", **TINY, max_positions=MAX_POS).eval()
    if name == "llama":
        return create_model("llama-tiny", **TINY, num_kv_heads=1, max_positions=MAX_POS).eval()
    if name == "alibi":
        return create_model("gpt2", **TINY, position="alibi", max_positions=MAX_POS).eval()
    if name == "bert":
        return create_model("bert-base", **TINY, max_positions=MAX_POS).eval()
    if name == "bert-mlm":
        return EncoderOnlyForMaskedLM(get_config("bert-base", **TINY, max_positions=MAX_POS, pooler=False)).eval()
    if name == "bert-cls":
        return EncoderOnlyForSequenceClassification(get_config("bert-base", **TINY, max_positions=MAX_POS), 3).eval()
    if name == "t5":
        return create_model("t5-small", **TINY, head_dim=16, activation_dropout=0.0).eval()
    if name == "transformer":
        return create_model("transformer-base", **TINY, max_positions=MAX_POS).eval()
    raise KeyError(name)


def ids(batch=B, length=L, low=3):
    return torch.randint(low, VOCAB - 3, (batch, length))


# (kind, change of good (batch, seq) long ids, expected outcome)
ID_VARIANTS = [
    ("a nested list", lambda t: t.tolist(), "error"),
    ("None", lambda t: None, "error"),
    ("a NumPy array", lambda t: t.numpy(), "error"),
    ("one dimension fewer", lambda t: t[0], "error"),
    ("one dimension more", lambda t: t[None], "error"),
    ("float values", lambda t: t.float(), "error"),
    ("bool values", lambda t: t > 0, "error"),
    ("uint8 values", lambda t: t.to(torch.uint8), "error"),
    ("complex values", lambda t: t.to(torch.complex64), "error"),
    ("a negative id", set_first(-1), "error"),
    ("an id == vocab_size", set_first(VOCAB), "error"),
    ("a huge id", set_first(2**62), "error"),
    ("the smallest int64", set_first(-(2**63)), "error"),
    ("on the meta device", lambda t: t.to("meta"), "error"),
    ("batch 0", lambda t: t[:0], "error"),
    ("length 0", lambda t: t[:, :0], "error"),
    ("int32 values", lambda t: t.int(), "ok"),
    ("non-contiguous", lambda t: t.T.contiguous().T, "ok"),
    ("expanded (stride 0)", lambda t: t[:1].expand_as(t), "ok"),
]
# (kind, change of a good (batch, seq) all-ones long mask, expected outcome)
MASK_VARIANTS = [
    ("a nested list", lambda m: m.tolist(), "error"),
    ("1-D", lambda m: m[0], "error"),
    ("3-D", lambda m: m[None], "error"),
    ("float values", lambda m: m.float(), "error"),
    ("complex values", lambda m: m.to(torch.complex64), "error"),
    ("a value 2", set_first(2), "error"),
    ("a value -1", set_first(-1), "error"),
    ("one position short", lambda m: m[:, 1:], "error"),
    ("one position long", lambda m: torch.cat([m, m[:, :1]], 1), "error"),
    ("batch 1 for 2", lambda m: m[:1], "error"),
    ("on the meta device", lambda m: m.to("meta"), "error"),
    ("a row of padding only", lambda m: m.index_fill(0, torch.tensor([1]), 0), "ok"),
    ("left padding", lambda m: m.index_fill(1, torch.tensor([0]), 0), "ok"),
    ("right padding", lambda m: m.index_fill(1, torch.tensor([m.shape[1] - 1]), 0), "ok"),
    ("bool values", lambda m: m.bool(), "ok"),
    ("uint8 values", lambda m: m.to(torch.uint8), "ok"),
    ("expanded (stride 0)", lambda m: m[:1].expand_as(m), "ok"),
]


# ---- Hypothesis strategies ----
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.bool]
sizes = st.integers(min_value=0, max_value=4)


@st.composite
def random_tensor(draw, shape, dtypes=DTYPES):
    dtype = draw(st.sampled_from(dtypes))
    if dtype == torch.bool:
        tensor = torch.rand(shape) > 0.5
    elif dtype.is_floating_point:
        tensor = torch.randn(shape).to(dtype)
        special = draw(st.sampled_from([None, None, NAN, INF, -INF, 1e30]))
        if special is not None and tensor.numel():
            tensor.view(-1)[draw(st.integers(0, tensor.numel() - 1))] = special
    else:
        tensor = torch.randint(-1, 3, shape).to(dtype)
    layout = draw(st.sampled_from(["plain", "transposed", "expanded"]))
    if layout == "transposed" and tensor.ndim >= 2:
        tensor = tensor.transpose(-1, -2).contiguous().transpose(-1, -2)
    elif layout == "expanded" and tensor.ndim >= 1 and tensor.shape[0] > 1:
        tensor = tensor[:1].expand_as(tensor)
    return tensor


@st.composite
def broadcastable_shape(draw, target):
    """A shape that broadcasts to ``target`` most of the time, and sometimes does not."""
    rank = draw(st.integers(0, len(target) + 1))
    shape = []
    for dim in list(target)[-rank:] if rank <= len(target) else [1] + list(target):
        shape.append(draw(st.sampled_from([dim, 1, dim, dim + 1])))
    return tuple(shape)
