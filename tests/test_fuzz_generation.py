"""Bad input, fuzzed: ``generate``, ``stream`` and ``beam_search`` of every generating family.

The property and the contract for values are those of ``tests/fuzz_harness.py`` and
``tests/test_fuzz_nn.py`` (read their docstrings).
Generation settings must be finite and in range whatever the decoding mode (``temperature``
must be > 0 only when sampling, as in Hugging Face); explicit ``eos_token_id`` / ``pad_token_id``
must be ids of the vocabulary; inputs are checked before the first token is produced.
"""

from __future__ import annotations

import torch
from fuzz_harness import CLEAN_ERRORS, Case, judge, table_tests
from fuzz_inputs import (
    ID_VARIANTS,
    INF,
    MASK_VARIANTS,
    MAX_POS,
    NAN,
    VOCAB,
    B,
    L,
    ids,
    model,
)
from hypothesis import given
from hypothesis import strategies as st

from llmarch import (
    beam_search,
)

CASES: list[Case] = []


def add(entry, kind, make, names, expect="error", errors=CLEAN_ERRORS, check=None):
    CASES.append(Case(entry, kind, make, tuple(names), expect, errors, check))


# ----------------------------------------------------------------------------------------------
# Generation: generate, stream, beam search
# ----------------------------------------------------------------------------------------------
def generation(name, method="generate", input_ids=None, attention_mask=None, **kwargs):
    def make():
        good = ids()
        call = {"input_ids": input_ids(good) if input_ids else good, "max_new_tokens": 2, **kwargs}
        if attention_mask is not None:
            call["attention_mask"] = attention_mask(torch.ones_like(good))
        return getattr(model(name), method), (), call

    return make


GENERATION_SETTINGS = [  # (kind, kwargs, expected outcome)
    *[
        (f"max_new_tokens {k}", {"max_new_tokens": v}, "error")
        for k, v in [
            ("zero", 0),
            ("negative", -1),
            ("a float", 1.5),
            ("a bool", True),
            ("a string", "3"),
            ("None", None),
        ]
    ],
    *[
        (f"sampling temperature {k}", {"do_sample": True, "temperature": v}, "error")
        for k, v in [("zero", 0.0), ("negative", -1.0), ("NaN", NAN), ("inf", INF), ("a string", "1.0"), ("None", None)]
    ],
    *[
        (f"greedy temperature {k}", {"temperature": v}, "error")
        for k, v in [("NaN", NAN), ("inf", INF), ("a string", "1.0"), ("None", None)]
    ],
    ("greedy temperature 0 (ignored, as Hugging Face)", {"temperature": 0.0}, "ok"),
    *[
        (f"top_k {k}", {"do_sample": True, "top_k": v}, "error")
        for k, v in [("zero", 0), ("negative", -1), ("a float", 2.5), ("a string", "5"), ("a bool", True)]
    ],
    ("top_k beyond the vocabulary", {"do_sample": True, "top_k": 10**9}, "ok"),
    *[
        (f"top_p {k}", {"do_sample": True, "top_p": v}, "error")
        for k, v in [
            ("zero", 0.0),
            ("1.5", 1.5),
            ("negative", -0.1),
            ("NaN", NAN),
            ("a string", "0.9"),
            ("a bool", True),
        ]
    ],
    ("top_p tiny (keeps the best token)", {"do_sample": True, "top_p": 1e-9}, "ok"),
    *[(f"do_sample {k}", {"do_sample": v}, "error") for k, v in [("a string", "yes"), ("None", None), ("an int", 1)]],
    *[
        (f"eos_token_id {k}", {"eos_token_id": v}, "error")
        for k, v in [
            ("negative", -1),
            ("== vocab_size", VOCAB),
            ("huge", 2**62),
            ("a float", 1.5),
            ("a string", "2"),
            ("a tensor", torch.tensor(2)),
        ]
    ],
    *[
        (f"pad_token_id {k}", {"eos_token_id": 1, "pad_token_id": v}, "error")
        for k, v in [("negative", -1), ("== vocab_size", VOCAB), ("a float", 1.5), ("a string", "0")]
    ],
    *[
        (f"generator {k}", {"do_sample": True, "generator": v}, "error")
        for k, v in [("an int seed", 0), ("a string", "seed")]
    ],
    *[(f"compile {k}", {"compile": v}, "error") for k, v in [("a string", "yes"), ("an int", 1), ("None", None)]],
    ("a misspelt keyword (max_length)", {"max_length": 5}, "error"),
]
BEAM_SETTINGS = [
    *[
        (f"num_beams {k}", {"num_beams": v}, "error")
        for k, v in [
            ("zero", 0),
            ("negative", -1),
            ("a float", 1.5),
            ("a bool", True),
            ("a string", "2"),
            ("None", None),
        ]
    ],
    ("num_beams with do_sample", {"num_beams": 2, "do_sample": True}, "error"),
    *[
        (f"length_penalty {k}", {"num_beams": 2, "length_penalty": v}, "error")
        for k, v in [("NaN", NAN), ("inf", INF), ("a string", "1.0"), ("None", None), ("a bool", True)]
    ],
    *[
        (f"early_stopping {k}", {"num_beams": 2, "early_stopping": v}, "error")
        for k, v in [("a string", "yes"), ("None", None), ("an int", 1)]
    ],
    ("beam eos_token_id a list", {"num_beams": 2, "eos_token_id": [1, 2]}, "ok"),
    ("beam eos_token_id an empty list", {"num_beams": 2, "eos_token_id": []}, "ok"),
    ("beam eos_token_id a list with a string", {"num_beams": 2, "eos_token_id": [1, "2"]}, "error"),
    ("beam eos_token_id beyond the vocabulary", {"num_beams": 2, "eos_token_id": [VOCAB]}, "error"),
    ("beam pad_token_id negative", {"num_beams": 2, "eos_token_id": 1, "pad_token_id": -1}, "error"),
    ("more beams than tokens", {"num_beams": VOCAB + 5}, "ok"),
]
# stream shares generate's checks (one _decode): for T5, a few kinds of each sort suffice.
STREAM_SUBSET = {
    "max_new_tokens zero",
    "sampling temperature NaN",
    "top_k zero",
    "top_p 1.5",
    "do_sample a string",
    "eos_token_id negative",
    "pad_token_id == vocab_size",
    "generator an int seed",
    "compile a string",
    "a nested list",
    "float values",
    "an id == vocab_size",
    "batch 0",
    "expanded (stride 0)",
    "a value 2",
    "one position short",
    "a row of padding only",
    "left padding",
}
for _name in ("gpt2", "t5"):
    for _method, _settings in (("generate", GENERATION_SETTINGS + BEAM_SETTINGS), ("stream", GENERATION_SETTINGS)):
        _entry = f"{type(model(_name)).__name__}({_name}).{_method}"

        def _keep(variants, reduced=_name == "t5" and _method == "stream"):
            return [v for v in variants if not reduced or v[0] in STREAM_SUBSET]

        for _kind, _kwargs, _expect in _keep(_settings):
            add(_entry, _kind, generation(_name, _method, **_kwargs), tuple(_kwargs), _expect)
        for _kind, _change, _expect in _keep(ID_VARIANTS):
            add(_entry, f"input_ids {_kind}", generation(_name, _method, input_ids=_change), ("input_ids",), _expect)
        for _kind, _change, _expect in _keep(MASK_VARIANTS):
            add(
                _entry,
                f"attention_mask {_kind}",
                generation(_name, _method, attention_mask=_change),
                ("attention_mask",),
                _expect,
            )
add(
    "DecoderOnlyLM(gpt2).generate",
    "prompt plus max_new_tokens beyond max_positions",
    generation("gpt2", max_new_tokens=MAX_POS),
    ("max_new_tokens", "max_positions"),
)
add(
    "DecoderOnlyLM(gpt2).generate",
    "max_new_tokens huge",
    generation("gpt2", max_new_tokens=2**62),
    ("max_new_tokens", "max_positions"),
)
add(
    "EncoderDecoderLM(transformer).generate",
    "max_new_tokens beyond max_positions",
    lambda: (model("transformer").generate, (ids(),), {"max_new_tokens": MAX_POS + 1}),
    ("max_new_tokens",),
)
for _kind, _args, _kwargs in [
    ("model an int", lambda: (3, ids()), {}),
    ("model an encoder-only model", lambda: (model("bert"), ids()), {}),
    ("input_ids a list", lambda: (model("gpt2"), [[1, 2, 3]]), {}),
    ("input_ids float", lambda: (model("gpt2"), ids().float()), {}),
    ("attention_mask float", lambda: (model("gpt2"), ids(), torch.ones(B, L)), {}),
    ("num_beams zero", lambda: (model("gpt2"), ids()), {"num_beams": 0}),
    ("max_new_tokens zero", lambda: (model("gpt2"), ids()), {"max_new_tokens": 0}),
    ("early_stopping a string", lambda: (model("gpt2"), ids()), {"early_stopping": "always"}),
    ("compile a string", lambda: (model("gpt2"), ids()), {"compile": "yes"}),
    ("eos_token_id a string", lambda: (model("gpt2"), ids()), {"eos_token_id": "2"}),
    ("eos_token_id a nested list", lambda: (model("gpt2"), ids()), {"eos_token_id": [[1]]}),
    ("length_penalty NaN", lambda: (model("gpt2"), ids()), {"length_penalty": NAN}),
]:
    add(
        "beam_search",
        _kind,
        lambda a=_args, k=_kwargs: (beam_search, a(), {"max_new_tokens": 2, **k}),
        ("model", "input_ids", "attention_mask", *_kwargs),
    )


# ----------------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------------
test_the_table_holds_many_distinct_kinds, test_bad_input = table_tests(CASES, minimum=200)


# ----------------------------------------------------------------------------------------------
# Hypothesis
# ----------------------------------------------------------------------------------------------
settings_values = {
    "max_new_tokens": st.sampled_from([1, 2, 0, -1, 1.5, None]),
    "do_sample": st.sampled_from([True, False, "yes"]),
    "temperature": st.sampled_from([1.0, 0.5, 0.0, -1.0, NAN, INF, "1"]),
    "top_k": st.sampled_from([None, 1, 5, 0, -2, 2.5]),
    "top_p": st.sampled_from([None, 0.9, 1.0, 0.0, 1.5, NAN]),
    "eos_token_id": st.sampled_from([None, 1, -1, VOCAB, 1.5]),
    "pad_token_id": st.sampled_from([None, 0, -1, VOCAB]),
    "num_beams": st.sampled_from([1, 1, 2, 0, 1.5]),
    "length_penalty": st.sampled_from([1.0, -1.0, NAN]),
    "early_stopping": st.sampled_from([False, True, "never", "x"]),
}


@given(data=st.data(), name=st.sampled_from(["gpt2", "llama", "t5"]), method=st.sampled_from(["generate", "stream"]))
def test_generation_on_random_settings(data, name, method):
    chosen = data.draw(st.fixed_dictionaries({}, optional=settings_values))
    if method == "stream":
        for key in ("num_beams", "length_penalty", "early_stopping"):
            chosen.pop(key, None)
    input_ids = data.draw(st.sampled_from([ids(), ids(batch=1), ids().float(), ids(batch=0), ids(length=MAX_POS)]))
    chosen.setdefault("max_new_tokens", 2)
    result = judge(
        getattr(model(name), method),
        (input_ids,),
        chosen,
        names=tuple(chosen) + ("input_ids", "max_positions"),
        what=f"random {name}.{method}",
    )
    if isinstance(result, torch.Tensor):
        assert result.dtype == torch.long and result.min() >= 0
