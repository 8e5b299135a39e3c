"""Bad input, fuzzed: the models' forward passes, their heads, pooling and configurations.

The property and the contract for values are those of ``tests/fuzz_harness.py`` and
``tests/test_fuzz_nn.py`` (read their docstrings).
For the models in particular: token ids, token types and positions are value-checked at the
public entry point (a negative id, an id ``>= vocab_size`` ...); an empty batch or an empty
sequence is a ``ValueError``; ids are ``torch.long`` or ``torch.int32`` (what ``nn.Embedding``
indexes with); a row whose attention mask is all zeros (only padding) gives finite outputs.
"""

from __future__ import annotations

import torch
from fuzz_harness import CLEAN_ERRORS, Case, also_contiguous, judge, table_tests
from fuzz_inputs import (
    DECODERS,
    ENCODERS,
    ID_VARIANTS,
    INF,
    MASK_VARIANTS,
    MAX_POS,
    NAN,
    SEQ2SEQ,
    TINY,
    VOCAB,
    B,
    L,
    changes_layout,
    ids,
    model,
)
from hypothesis import given
from hypothesis import strategies as st

from llmarch import (
    DynamicLayerCache,
    KVCache,
    ModelConfig,
    Pooler,
    create_model,
    mean_pooling,
    sentence_embeddings,
)

CASES: list[Case] = []


def add(entry, kind, make, names, expect="error", errors=CLEAN_ERRORS, check=None):
    CASES.append(Case(entry, kind, make, tuple(names), expect, errors, check))


# ----------------------------------------------------------------------------------------------
# Model forwards
# ----------------------------------------------------------------------------------------------
def forward(name, method=None, wrap=None, **kwargs):
    """``model(name)(input_ids=ids(), **kwargs)``; a kwarg that is a function of the good value changes it."""

    def make():
        m = model(name)
        good = {"input_ids": ids()}
        if name in ("t5", "transformer") and method is None:
            good["decoder_input_ids"] = ids(length=2)
        call = {**good}
        for key, value in kwargs.items():
            if callable(value) and key in good:
                call[key] = value(good[key])
            elif callable(value) and key.endswith("attention_mask"):
                ref = good["decoder_input_ids" if key.startswith("decoder") else "input_ids"]
                call[key] = value(torch.ones_like(ref))
            else:
                call[key] = value() if callable(value) and not isinstance(value, type) else value
        function = m if method is None else getattr(m, method)
        return (function if wrap is None else wrap(function)), (), call

    return make


# The heads run the same EncoderOnly.forward as "bert": a few kinds each suffice there.
HEAD_SUBSET = {
    "a nested list",
    "float values",
    "a negative id",
    "batch 0",
    "non-contiguous",
    "a value 2",
    "a row of padding only",
    "one position long",
    "position max_positions",
    "a float tensor",
    "a value 2 (type_vocab_size 2)",
}


def _for(name, variants):
    return [v for v in variants if name not in ("bert-mlm", "bert-cls") or v[0] in HEAD_SUBSET]


for _name in DECODERS + ENCODERS + SEQ2SEQ:
    _entry = f"{type(model(_name)).__name__}({_name}).forward"
    for _kind, _change, _expect in _for(_name, ID_VARIANTS):
        add(
            _entry,
            f"input_ids {_kind}",
            forward(_name, input_ids=_change, wrap=also_contiguous if changes_layout(_kind) else None),
            ("input_ids",),
            _expect,
        )
    for _kind, _change, _expect in _for(_name, MASK_VARIANTS):
        add(_entry, f"attention_mask {_kind}", forward(_name, attention_mask=_change), ("attention_mask",), _expect)
    if _name not in SEQ2SEQ:
        add(
            _entry,
            f"input_ids longer than max_positions ({MAX_POS})",
            forward(_name, input_ids=lambda t: ids(length=MAX_POS + 1)),
            ("input_ids", "position_ids"),
            "ok" if _name in ("llama", "alibi") else "error",
        )
        for _kind, _value, _expect in _for(
            _name,
            [
                ("a float tensor", lambda: torch.zeros(1, L), "error"),
                ("a list", [[0, 1, 2]], "error"),
                ("one position short", lambda: torch.arange(L - 1)[None], "error"),
                ("one position long", lambda: torch.arange(L + 1)[None], "error"),
                ("batch 3 for 2", lambda: torch.arange(L).expand(3, L), "error"),
                ("3-D", lambda: torch.arange(L)[None, None], "error"),
                ("on the meta device", lambda: torch.arange(L, device="meta")[None], "error"),
                (
                    "a negative position",
                    lambda: torch.tensor([[-1, 0, 1]]),
                    "error" if _name in ("gpt2", "bert", "bert-mlm", "bert-cls") else "ok",
                ),
                (
                    "position max_positions",
                    lambda: torch.tensor([[0, 1, MAX_POS]]),
                    "error" if _name in ("gpt2", "bert", "bert-mlm", "bert-cls") else "ok",
                ),
                ("batch 1 for 2", lambda: torch.arange(L)[None], "ok"),
            ],
        ):
            add(_entry, f"position_ids {_kind}", forward(_name, position_ids=_value), ("position_ids",), _expect)
for _name in DECODERS:
    _entry = f"DecoderOnlyLM({_name}).forward"
    for _kind, _value in [
        ("an int", 3),
        ("a dict", {}),
        ("one layer's cache", lambda: DynamicLayerCache()),
        ("a KVCache of 2 layers for 1", lambda: KVCache.dynamic(2)),
        (
            "a static KVCache of another batch size",
            lambda n=_name: KVCache.static(
                1, batch_size=3, num_kv_heads=model(n).config.kv_heads, max_len=8, head_dim=16
            ),
        ),
    ]:
        add(_entry, f"cache {_kind}", forward(_name, cache=_value), ("cache",))
    add(
        _entry,
        "cache with an attention_mask that skips the cached tokens",
        lambda n=_name: (
            _prefilled(n),
            (),
            {
                "input_ids": ids(length=1),
                "attention_mask": torch.ones(B, 1, dtype=torch.long),
                "cache": _prefilled.cache,
            },
        ),
        ("attention_mask",),
    )


def _prefilled(name):
    m = model(name)
    cache = KVCache.dynamic(1)
    with torch.no_grad():
        m(ids(), cache=cache)
    _prefilled.cache = cache
    return m


for _name in ENCODERS:
    _entry = f"{type(model(_name)).__name__}({_name}).forward"
    for _kind, _value, _expect in _for(
        _name,
        [
            ("a float tensor", lambda t: t.float(), "error"),
            ("a list", lambda t: t.tolist(), "error"),
            ("of another shape", lambda t: t[:, :2], "error"),
            ("a value 2 (type_vocab_size 2)", lambda t: t + 2, "error"),
            ("a negative value", lambda t: t - 1, "error"),
            ("bool values", lambda t: t.bool(), "error"),
            ("on the meta device", lambda t: t.to("meta"), "error"),
            ("ones", lambda t: t + 1, "ok"),
        ],
    ):
        add(
            _entry,
            f"token_type_ids {_kind}",
            forward(_name, token_type_ids=lambda f=_value: f(torch.zeros(B, L, dtype=torch.long))),
            ("token_type_ids",),
            _expect,
        )
add(
    "EncoderOnly(bert, type_vocab_size=0).forward",
    "token_type_ids given",
    lambda: (
        create_model("bert-base", **TINY, max_positions=MAX_POS, type_vocab_size=0).eval(),
        (ids(),),
        {"token_type_ids": torch.zeros(B, L, dtype=torch.long)},
    ),
    ("token_type_ids",),
)

for _name in SEQ2SEQ:
    _entry = f"EncoderDecoderLM({_name}).forward"
    for _kind, _change, _expect in ID_VARIANTS:
        add(
            _entry,
            f"decoder_input_ids {_kind}",
            forward(_name, decoder_input_ids=_change),
            ("decoder_input_ids",),
            _expect,
        )
    for _kind, _change, _expect in MASK_VARIANTS:
        if _kind in ("one position long",):
            continue
        add(
            _entry,
            f"decoder_attention_mask {_kind}",
            forward(_name, decoder_attention_mask=_change),
            ("decoder_attention_mask", "attention_mask"),
            _expect,
        )
    add(_entry, "decoder_input_ids missing", forward(_name, decoder_input_ids=None), ("decoder_input_ids",))
    add(
        _entry,
        "decoder_input_ids of batch 1 for 2",
        forward(_name, decoder_input_ids=lambda t: t[:1]),
        ("decoder_input_ids",),
    )
    for _kind, _value, _expect in [
        ("an int", 3, "error"),
        ("one layer's cache", lambda: DynamicLayerCache(), "error"),
        ("a KVCache of 2 layers for 1", lambda: KVCache.dynamic(2, cross_attention=True), "error"),
        ("without cross-attention caches (recomputed)", lambda: KVCache.dynamic(1), "ok"),
    ]:
        add(_entry, f"cache {_kind}", forward(_name, cache=_value), ("cache",), _expect)
    for _kind, _value in [
        ("None without a cache", None),
        ("of width 31 for 32", lambda: torch.randn(B, 4, 31)),
        ("float64", lambda: torch.randn(B, 4, 32, dtype=torch.float64)),
        ("batch 1 for 2", lambda: torch.randn(1, 4, 32)),
        ("a list", [[[0.0] * 32]]),
        ("a NaN entry (NaN in, NaN out)", lambda: torch.randn(B, 4, 32).index_fill(1, torch.tensor([0]), NAN)),
    ]:
        add(
            f"EncoderDecoderLM({_name}).decode",
            f"encoder_hidden_states {_kind}",
            lambda v=_value, n=_name: (model(n).decode, (ids(length=2), v() if callable(v) else v), {}),
            ("encoder_hidden_states", "context", "decoder_input_ids"),
            "ok" if "NaN" in _kind else "error",
        )
add(
    "EncoderDecoderLM(transformer).forward",
    "input_ids longer than max_positions",
    forward("transformer", input_ids=lambda t: ids(length=MAX_POS + 1)),
    ("input_ids",),
)

# ----------------------------------------------------------------------------------------------
# Heads and pooling
# ----------------------------------------------------------------------------------------------
for _kind, _kwargs in [
    ("mask_token_id absent", {"mask_token_id": 1}),
    ("mask_token_id a string", {"mask_token_id": "x"}),
    ("mask_token_id None", {"mask_token_id": None}),
    ("top_k 0", {"mask_token_id": 4, "top_k": 0}),
    ("top_k beyond the vocabulary", {"mask_token_id": 4, "top_k": VOCAB + 1}),
    ("top_k a float", {"mask_token_id": 4, "top_k": 2.0}),
]:
    add(
        "EncoderOnlyForMaskedLM.fill_mask",
        _kind,
        lambda k=_kwargs: (model("bert-mlm").fill_mask, (torch.tensor([[5, 4, 6], [7, 8, 4]]),), k),
        ("mask_token_id", "top_k", "input_ids"),
    )
add(
    "EncoderOnlyForMaskedLM.fill_mask",
    "input_ids a list",
    lambda: (model("bert-mlm").fill_mask, ([[5, 4]],), {"mask_token_id": 4}),
    ("input_ids",),
)
for _kind, _value in [
    ("2-D", lambda: torch.randn(B, 32)),
    ("a list", lambda: [[[0.0] * 32]]),
    ("width 31", lambda: torch.randn(B, L, 31)),
    ("seq 0", lambda: torch.randn(B, 0, 32)),
]:
    add("Pooler", f"hidden {_kind}", lambda v=_value: (Pooler(32), (v(),), {}), ("hidden",))
    add("EncoderOnly.pool", f"hidden {_kind}", lambda v=_value: (model("bert").pool, (v(),), {}), ("hidden",))
for _kind, _mask, _expect in [
    ("attention_mask a list", lambda: [[1, 1, 1]] * B, "error"),
    ("attention_mask of another shape", lambda: torch.ones(B, 2), "error"),
    ("attention_mask with a value 2", lambda: torch.full((B, L), 2), "error"),
    ("attention_mask float", lambda: torch.ones(B, L), "error"),
    ("a row of padding only (zeros)", lambda: torch.tensor([[1, 1, 0], [0, 0, 0]]), "ok"),
    ("attention_mask bool", lambda: torch.ones(B, L, dtype=torch.bool), "ok"),
]:
    add(
        "mean_pooling",
        _kind,
        lambda m=_mask: (mean_pooling, (torch.randn(B, L, 4), m()), {}),
        ("attention_mask",),
        _expect,
    )
for _kind, _hidden in [
    ("hidden a list", lambda: [[[0.0]]]),
    ("hidden 2-D", lambda: torch.randn(B, 4)),
    ("hidden int", lambda: torch.ones(B, L, 4, dtype=torch.long)),
]:
    add(
        "mean_pooling",
        _kind,
        lambda h=_hidden: (mean_pooling, (h(), torch.ones(B, L, dtype=torch.long)), {}),
        ("hidden",),
    )
for _kind, _args, _kwargs in [
    ("model not a module", (3, ids(), torch.ones(B, L, dtype=torch.long)), {}),
    ("normalize a string", (None, ids(), torch.ones(B, L, dtype=torch.long)), {"normalize": "yes"}),
    ("a padding-only row", (None, ids(), torch.tensor([[1, 1, 1], [0, 0, 0]])), {}),
]:

    def _make(a=_args, k=_kwargs):
        a = (model("bert") if a[0] is None else a[0],) + a[1:]
        return sentence_embeddings, a, k

    add(
        "sentence_embeddings",
        _kind,
        _make,
        ("model", "normalize", "attention_mask"),
        "ok" if "padding" in _kind else "error",
    )


# ----------------------------------------------------------------------------------------------
# Configs and presets
# ----------------------------------------------------------------------------------------------
for _kind, _name, _overrides in [
    ("unknown preset", "gpt3", {}),
    ("preset not a string", 3, {}),
    ("unknown field", "gpt2", {"layers": 2}),
    ("num_heads 0", "gpt2", {"num_heads": 0}),
    ("d_model not divisible", "gpt2", {"d_model": 30, "num_heads": 4}),
    ("dropout 1.0", "gpt2", {"dropout": 1.0}),
    ("position unknown", "gpt2", {"position": "relative"}),
    ("norm unknown", "gpt2", {"norm": "batchnorm"}),
    ("activation unknown", "gpt2", {"activation": "tanh"}),
    ("vocab_size a float", "gpt2", {"vocab_size": 50.0}),
    ("max_positions 0", "gpt2", {"max_positions": 0}),
    ("learned positions without max_positions", "gpt2", {"max_positions": None}),
    ("relative_buckets 1", "t5-small", {"relative_buckets": 1}),
    ("relative_max_distance 2", "t5-small", {"relative_max_distance": 2}),
    ("norm_eps negative", "gpt2", {"norm_eps": -1.0}),
    ("norm_eps NaN", "gpt2", {"norm_eps": NAN}),
    ("rope_base 0", "llama-tiny", {"rope_base": 0.0}),
    ("embedding_scale NaN", "gpt2", {"embedding_scale": NAN}),
    ("output_scale a string", "gpt2", {"output_scale": "0.1"}),
    ("attention_scale inf", "gpt2", {"attention_scale": INF}),
    ("pad_token_id negative", "bert-base", {"pad_token_id": -1}),
    ("eos_token_id a float", "gpt2", {"eos_token_id": 1.0}),
    ("decoder_start_token_id a string", "t5-small", {"decoder_start_token_id": "0"}),
    ("gated a string", "gpt2", {"gated": "yes"}),
    ("tie_embeddings None", "gpt2", {"tie_embeddings": None}),
    ("type_vocab_size negative", "bert-base", {"type_vocab_size": -1}),
    ("backend unknown", "gpt2", {"backend": "flash"}),
]:

    def _make(n=_name, o=_overrides):
        overrides = {**TINY, **o}
        if n == "t5-small":
            overrides.setdefault("head_dim", 16)
        return create_model, (n,), overrides

    add("create_model", _kind, _make, tuple(_overrides) + ("name", "name_or_config", "preset"))
add("ModelConfig.from_dict", "not a dict", lambda: (ModelConfig.from_dict, ([1, 2],), {}), ("data",))
add(
    "ModelConfig.from_dict",
    "unknown key",
    lambda: (ModelConfig.from_dict, ({"architecture": "decoder_only", "x": 1},), {}),
    ("x", "data"),
)
add(
    "ModelConfig",
    "architecture unknown",
    lambda: (ModelConfig, ("decoder", VOCAB, 32, 1, 2, 64), {}),
    ("architecture",),
)


# ----------------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------------
test_the_table_holds_many_distinct_kinds, test_bad_input = table_tests(CASES, minimum=300)


# ----------------------------------------------------------------------------------------------
# Hypothesis
# ----------------------------------------------------------------------------------------------
token_values = st.one_of(st.integers(-3, VOCAB + 3), st.sampled_from([2**62, -(2**63), 2**63 - 1]))


@st.composite
def id_tensors(draw, max_batch=3, max_len=5):
    batch, length = draw(st.integers(0, max_batch)), draw(st.integers(0, max_len))
    values = draw(st.lists(token_values, min_size=batch * length, max_size=batch * length))
    dtype = draw(st.sampled_from([torch.long, torch.long, torch.int32, torch.int16, torch.float32]))
    tensor = torch.tensor(values, dtype=torch.long).reshape(batch, length)
    return tensor.to(dtype) if dtype != torch.int32 else tensor.clamp(-(2**31), 2**31 - 1).to(dtype)


@st.composite
def attention_masks(draw, shape):
    kind = draw(st.sampled_from(["none", "ones", "random", "zeros", "wrong shape", "values"]))
    if kind == "none":
        return None
    if kind == "wrong shape":
        return torch.ones(shape[0], shape[1] + 1, dtype=torch.long)
    if kind == "values":
        return torch.randint(-1, 3, shape)
    mask = torch.ones(shape, dtype=torch.long) if kind == "ones" else torch.zeros(shape, dtype=torch.long)
    if kind == "random" and mask.numel():
        mask = torch.randint(0, 2, shape)
    return mask


@given(data=st.data(), name=st.sampled_from(DECODERS + ENCODERS + SEQ2SEQ))
def test_model_forward_on_random_ids(data, name):
    input_ids = data.draw(id_tensors())
    kwargs = {"attention_mask": data.draw(attention_masks(tuple(input_ids.shape)))}
    if name in SEQ2SEQ:
        kwargs["decoder_input_ids"] = data.draw(id_tensors())
    judge(
        model(name),
        (input_ids,),
        kwargs,
        names=("input_ids", "attention_mask", "decoder_input_ids"),
        what=f"random {name} forward",
    )
