"""Bad input, fuzzed: the training objectives (causal LM, masked LM, span corruption, seq2seq loss).

The property and the contract for values are those of ``tests/fuzz_harness.py`` and
``tests/test_fuzz_nn.py`` (read their docstrings).
Labels are value-checked (each a class in ``[0, vocab)`` or ``-100``); a loss over no position
at all (every label ``-100``) is 0, not NaN; NaN logits give a NaN loss (NaN in, NaN out).
"""

from __future__ import annotations

import math

import torch
from fuzz_harness import CLEAN_ERRORS, Case, judge, table_tests
from fuzz_inputs import (
    ID_VARIANTS,
    INF,
    MASK_VARIANTS,
    NAN,
    VOCAB,
    B,
    L,
    ids,
    set_first,
)
from hypothesis import given
from hypothesis import strategies as st

from llmarch.training.causal_lm import causal_lm_labels, causal_lm_loss
from llmarch.training.masked_lm import mask_tokens, masked_lm_loss
from llmarch.training.seq2seq_loss import label_smoothed_cross_entropy, shift_right
from llmarch.training.span_corruption import random_spans_noise_mask, sentinel_id, span_corruption

CASES: list[Case] = []


def add(entry, kind, make, names, expect="error", errors=CLEAN_ERRORS, check=None):
    CASES.append(Case(entry, kind, make, tuple(names), expect, errors, check))


# ----------------------------------------------------------------------------------------------
# Objectives
# ----------------------------------------------------------------------------------------------
def logits(batch=B, length=L, vocab=VOCAB):
    return torch.randn(batch, length, vocab)


LABEL_VARIANTS = [  # (kind, change of good (batch, seq) labels in [0, vocab), expected outcome)
    ("a nested list", lambda t: t.tolist(), "error"),
    ("None", lambda t: None, "error"),
    ("float values", lambda t: t.float(), "error"),
    ("bool values", lambda t: t > 0, "error"),
    ("complex values", lambda t: t.to(torch.complex64), "error"),
    ("of another shape", lambda t: t[:, :2], "error"),
    ("a label == vocab_size", set_first(VOCAB), "error"),
    ("a negative label other than -100", set_first(-1), "error"),
    ("a huge label", set_first(2**62), "error"),
    ("on the meta device", lambda t: t.to("meta"), "error"),
    ("every label -100 (loss 0, not NaN)", lambda t: torch.full_like(t, -100), "ok"),
    ("int32 values", lambda t: t.int(), "ok"),
    ("non-contiguous", lambda t: t.T.contiguous().T, "ok"),
]
LOGIT_VARIANTS = [  # (kind, change of good logits, expected outcome)
    ("a nested list", lambda t: t.tolist(), "error"),
    ("2-D", lambda t: t[0], "error"),
    ("4-D", lambda t: t[None], "error"),
    ("int values", lambda t: t.long(), "error"),
    ("complex values", lambda t: t.to(torch.complex64), "error"),
    ("on the meta device", lambda t: t.to("meta"), "error"),
    ("a NaN entry (NaN in, NaN out)", set_first(NAN), "ok"),
    ("float64", lambda t: t.double(), "ok"),
    ("bfloat16", lambda t: t.bfloat16(), "ok"),
    ("non-contiguous", lambda t: t.transpose(0, 1).contiguous().transpose(0, 1), "ok"),
    ("expanded (stride 0)", lambda t: t[:1].expand_as(t), "ok"),
    ("requiring grad", lambda t: t.clone().requires_grad_(), "ok"),
]
for _entry, _function, _kwargs in [
    ("causal_lm_loss", causal_lm_loss, {}),
    ("masked_lm_loss", masked_lm_loss, {}),
    ("label_smoothed_cross_entropy", label_smoothed_cross_entropy, {}),
]:
    for _kind, _change, _expect in LABEL_VARIANTS:
        add(
            _entry,
            f"labels {_kind}",
            lambda f=_function, c=_change, k=_kwargs: (f, (logits(), c(torch.randint(0, VOCAB, (B, L)))), k),
            ("labels",),
            _expect,
        )
    for _kind, _change, _expect in LOGIT_VARIANTS:
        add(
            _entry,
            f"logits {_kind}",
            lambda f=_function, c=_change: (f, (c(logits()), torch.randint(0, VOCAB, (B, L))), {}),
            ("logits",),
            _expect,
        )
    add(
        _entry,
        "batch 0",
        lambda f=_function: (f, (logits(batch=0), torch.zeros(0, L, dtype=torch.long)), {}),
        ("logits", "labels"),
        "either",
    )
add(
    "causal_lm_loss",
    "one token (nothing to predict)",
    lambda: (causal_lm_loss, (logits(length=1), torch.zeros(B, 1, dtype=torch.long)), {}),
    ("labels",),
)
for _kind, _value in [("NaN", NAN), ("1.0", 1.0), ("negative", -0.1), ("a string", "0.1"), ("None", None)]:
    add(
        "label_smoothed_cross_entropy",
        f"epsilon {_kind}",
        lambda v=_value: (label_smoothed_cross_entropy, (logits(), torch.randint(0, VOCAB, (B, L)), v), {}),
        ("epsilon",),
    )
add(
    "label_smoothed_cross_entropy",
    "ignore_index a string",
    lambda: (label_smoothed_cross_entropy, (logits(), torch.randint(0, VOCAB, (B, L))), {"ignore_index": "pad"}),
    ("ignore_index",),
)

for _kind, _change, _expect in ID_VARIANTS:
    if _kind in ("a negative id", "an id == vocab_size", "a huge id", "the smallest int64"):
        continue  # no vocabulary here: any integer id is a label
    if _kind in ("batch 0", "length 0", "on the meta device"):
        _expect = "ok"  # labels of nothing are nothing: the loss rejects them
    add(
        "causal_lm_labels",
        f"input_ids {_kind}",
        lambda c=_change: (causal_lm_labels, (c(ids()),), {}),
        ("input_ids",),
        _expect,
    )
for _kind, _change, _expect in MASK_VARIANTS:
    add(
        "causal_lm_labels",
        f"attention_mask {_kind}",
        lambda c=_change: (causal_lm_labels, (ids(), c(torch.ones(B, L, dtype=torch.long))), {}),
        ("attention_mask",),
        _expect,
    )

MASK_TOKENS = dict(mask_token_id=4, vocab_size=VOCAB, special_token_ids=[0, 1, 2])
for _kind, _change, _expect in ID_VARIANTS:
    if _kind == "on the meta device":
        _expect = "ok"  # a meta tensor has no values to check: the corruption is computed on meta too
    add(
        "mask_tokens",
        f"input_ids {_kind}",
        lambda c=_change: (mask_tokens, (c(ids()),), dict(MASK_TOKENS)),
        ("input_ids",),
        _expect,
    )
for _kind, _change, _expect in MASK_VARIANTS:
    add(
        "mask_tokens",
        f"attention_mask {_kind}",
        lambda c=_change: (
            mask_tokens,
            (ids(),),
            {**MASK_TOKENS, "attention_mask": c(torch.ones(B, L, dtype=torch.long))},
        ),
        ("attention_mask",),
        _expect,
    )
for _kind, _overrides in [
    ("mask_token_id negative", {"mask_token_id": -1}),
    ("mask_token_id == vocab_size", {"mask_token_id": VOCAB}),
    ("mask_token_id a float", {"mask_token_id": 4.0}),
    ("mask_token_id a string", {"mask_token_id": "[MASK]"}),
    ("mask_token_id None", {"mask_token_id": None}),
    ("vocab_size zero", {"vocab_size": 0}),
    ("vocab_size a float", {"vocab_size": 50.5}),
    ("special_token_ids None", {"special_token_ids": None}),
    ("special_token_ids strings", {"special_token_ids": ["[CLS]"]}),
    ("special_token_ids an int", {"special_token_ids": 3}),
    ("special_token_ids floats", {"special_token_ids": [1.5]}),
    *[
        (f"{name} {k}", {name: v})
        for name in ("mlm_probability", "mask_fraction", "random_fraction")
        for k, v in [("NaN", NAN), ("negative", -0.1), ("1.5", 1.5), ("a string", "0.1")]
    ],
    ("mask_fraction + random_fraction > 1", {"mask_fraction": 0.9, "random_fraction": 0.2}),
    ("generator an int", {"generator": 0}),
]:
    add("mask_tokens", _kind, lambda o=_overrides: (mask_tokens, (ids(),), {**MASK_TOKENS, **o}), tuple(_overrides))
add(
    "mask_tokens",
    "special_token_ids a tuple",
    lambda: (mask_tokens, (ids(),), {**MASK_TOKENS, "special_token_ids": (0, 1)}),
    ("special_token_ids",),
    "ok",
)

for _kind, _tokens, _expect in [
    ("a list", lambda: [5, 6, 7], "error"),
    ("2-D", lambda: ids(), "error"),
    ("float", lambda: torch.arange(5.0), "error"),
    ("bool", lambda: torch.ones(5, dtype=torch.bool), "error"),
    ("empty", lambda: torch.zeros(0, dtype=torch.long), "error"),
    ("a negative id", lambda: torch.tensor([5, -1, 6]), "error"),
    ("a sentinel id", lambda: torch.tensor([5, VOCAB - 1]), "error"),
    ("on the meta device", lambda: torch.arange(5, device="meta"), "error"),
    ("one token", lambda: torch.tensor([5]), "ok"),
    ("int32", lambda: torch.arange(5, dtype=torch.int32), "ok"),
    ("non-contiguous", lambda: torch.arange(10)[::2], "ok"),
]:
    add(
        "span_corruption",
        f"tokens {_kind}",
        lambda t=_tokens: (span_corruption, (t(), VOCAB), {}),
        ("tokens",),
        _expect,
    )
for _kind, _kwargs in [
    ("vocab_size zero", {"vocab_size": 0}),
    ("vocab_size a float", {"vocab_size": 50.0}),
    ("vocab_size None", {"vocab_size": None}),
    *[
        (f"noise_density {k}", {"noise_density": v})
        for k, v in [("0", 0.0), ("1", 1.0), ("NaN", NAN), ("a string", "0.15")]
    ],
    *[
        (f"mean_noise_span_length {k}", {"mean_noise_span_length": v})
        for k, v in [("0.5", 0.5), ("NaN", NAN), ("inf", INF), ("a string", "3")]
    ],
    *[
        (f"eos_token_id {k}", {"eos_token_id": v})
        for k, v in [("negative", -1), ("== vocab_size", VOCAB), ("a float", 1.0), ("a string", "</s>")]
    ],
    ("generator a string", {"generator": "seed"}),
]:
    add(
        "span_corruption",
        _kind,
        lambda k=_kwargs: (span_corruption, (torch.arange(3, 23),), {"vocab_size": VOCAB, **k}),
        tuple(_kwargs),
    )
for _kind, _args in [
    ("length 0", (0,)),
    ("length negative", (-2,)),
    ("length a float", (4.0,)),
    ("length None", (None,)),
    ("noise_density NaN", (10, NAN)),
    ("mean_noise_span_length a string", (10, 0.15, "3")),
]:
    add(
        "random_spans_noise_mask",
        _kind,
        lambda a=_args: (random_spans_noise_mask, a, {}),
        ("length", "noise_density", "mean_noise_span_length"),
    )
for _kind, _args in [
    ("index negative", (-1, VOCAB)),
    ("index == vocab_size", (VOCAB, VOCAB)),
    ("index a float", (0.0, VOCAB)),
    ("vocab_size zero", (0, 0)),
]:
    add("sentinel_id", _kind, lambda a=_args: (sentinel_id, a, {}), ("index", "vocab_size"))
for _kind, _labels, _kwargs in [
    ("labels a list", lambda: [[1, 2]], {}),
    ("labels 1-D", lambda: torch.tensor([1, 2]), {}),
    ("labels float", lambda: torch.ones(B, L), {}),
    ("labels empty sequence", lambda: torch.zeros(B, 0, dtype=torch.long), {}),
    ("decoder_start_token_id a string", lambda: ids(), {"decoder_start_token_id": "<s>"}),
    ("decoder_start_token_id negative", lambda: ids(), {"decoder_start_token_id": -1}),
    ("pad_token_id a float", lambda: ids(), {"pad_token_id": 0.5}),
    ("pad_token_id None", lambda: ids(), {"pad_token_id": None}),
]:
    add(
        "shift_right",
        _kind,
        lambda lab=_labels, k=_kwargs: (shift_right, (lab(),), {"decoder_start_token_id": 0, "pad_token_id": 0, **k}),
        ("labels", "decoder_start_token_id", "pad_token_id"),
        "error",
    )


# ----------------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------------
test_the_table_holds_many_distinct_kinds, test_bad_input = table_tests(CASES, minimum=150)


# ----------------------------------------------------------------------------------------------
# Hypothesis
# ----------------------------------------------------------------------------------------------
@given(
    length=st.integers(0, 4),
    vocab=st.sampled_from([1, 2, VOCAB]),
    labels=st.lists(st.sampled_from([0, 1, 3, -100, -1, VOCAB, 2**62]), min_size=0, max_size=8),
    loss=st.sampled_from([causal_lm_loss, masked_lm_loss, label_smoothed_cross_entropy]),
)
def test_losses_on_random_labels(length, vocab, labels, loss):
    labels = (labels * 8)[: 2 * length] if labels else [0] * (2 * length)
    target = torch.tensor(labels, dtype=torch.long).reshape(2, length)
    result = judge(
        loss, (torch.randn(2, length, vocab), target), names=("labels", "logits"), what=f"random {loss.__name__}"
    )
    if isinstance(result, torch.Tensor):
        assert math.isfinite(result.item())
