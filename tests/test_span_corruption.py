"""T5 span corruption and the label-smoothed sequence-to-sequence loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from llmarch.training.seq2seq_loss import IGNORE_INDEX, label_smoothed_cross_entropy, shift_right
from llmarch.training.span_corruption import random_spans_noise_mask, span_corruption

VOCAB = 1000


def t5_reference_counts(length: int, noise_density: float, mean_noise_span_length: float) -> tuple[int, int]:
    """Noise tokens and spans as T5's ``random_spans_noise_mask`` computes them
    (google-research/text-to-text-transfer-transformer, t5/data/preprocessors.py), transcribed
    to NumPy: TensorFlow float32 arithmetic, ``tf.round`` rounds halves to even (as ``np.round``).

        length = tf.maximum(length, 2)
        num_noise_tokens = to_int(tf.round(to_float(length) * noise_density))
        num_noise_tokens = tf.minimum(tf.maximum(num_noise_tokens, 1), length - 1)
        num_noise_spans = to_int(tf.round(to_float(num_noise_tokens) / mean_noise_span_length))
        num_noise_spans = tf.maximum(num_noise_spans, 1)
    """
    length = max(length, 2)
    tokens = int(np.round(np.float32(length) * np.float32(noise_density)))
    tokens = min(max(tokens, 1), length - 1)
    spans = int(np.round(np.float32(tokens) / np.float32(mean_noise_span_length)))
    return tokens, max(spans, 1)


def _counts(mask):
    starts = mask & ~torch.cat((mask.new_zeros(1), mask[:-1]))
    return int(mask.sum()), int(starts.sum())


@given(length=st.integers(2, 2000), seed=st.integers(0, 2**31 - 1),
       density=st.sampled_from([0.15, 0.3, 0.5, 0.05]), mean_span=st.sampled_from([3.0, 2.5, 1.0, 8.0]))
def test_noise_mask_has_the_reference_counts(length, seed, density, mean_span):
    mask = random_spans_noise_mask(length, density, mean_span, generator=torch.Generator().manual_seed(seed))
    assert mask.shape == (length,)
    assert _counts(mask) == t5_reference_counts(length, density, mean_span)
    assert not mask[0] and mask[-1]  # non-noise first, noise last (the reference interleaving)


@pytest.mark.parametrize("length", [190, 350, 1310])  # float32 and float64 round differently here
def test_counts_follow_the_reference_float32_rounding(length):
    mask = random_spans_noise_mask(length, generator=torch.Generator().manual_seed(0))
    assert _counts(mask) == t5_reference_counts(length, 0.15, 3.0)
    assert _counts(mask)[0] == round(length * 0.15) + 1  # not Python's float64 round


def test_published_outputs_of_the_reference():
    """Masks printed by running T5's TensorFlow function (github.com/Birch-san/rand-play,
    README): length 30 is always ``0...01111`` (4 noise tokens, one span, at the end); length
    31 masks have 5 noise tokens in 2 spans."""
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        assert random_spans_noise_mask(30, generator=g).int().tolist() == [0] * 26 + [1] * 4
        assert _counts(random_spans_noise_mask(31, generator=g)) == (5, 2)


def test_mean_span_length_and_density_on_average():
    g = torch.Generator().manual_seed(0)
    masks = torch.stack([random_spans_noise_mask(512, generator=g) for _ in range(50)])
    assert abs(masks.float().mean().item() - 0.15) < 0.002
    starts = masks & ~torch.cat((masks.new_zeros(50, 1), masks[:, :-1]), dim=1)
    assert abs(masks.sum().item() / starts.sum().item() - 3.0) < 0.1


@given(length=st.integers(2, 200), seed=st.integers(0, 2**31 - 1))
def test_inputs_and_targets_reassemble_the_original(length, seed):
    tokens = torch.randint(0, VOCAB - 100, (length,), generator=torch.Generator().manual_seed(seed))
    inputs, targets = span_corruption(tokens, VOCAB, generator=torch.Generator().manual_seed(seed), eos_token_id=1)
    assert inputs[-1] == targets[-1] == 1
    inputs, targets = inputs[:-1].tolist(), targets[:-1].tolist()
    # each sentinel in the input is replaced by what follows the same sentinel in the target
    spans, current = {}, None
    for token in targets:
        if token >= VOCAB - 100:
            current = token
            spans[current] = []
        else:
            spans[current].append(token)
    rebuilt = [t for token in inputs for t in (spans[token] if token >= VOCAB - 100 else [token])]
    assert rebuilt == tokens.tolist()
    sentinels = [t for t in inputs if t >= VOCAB - 100]
    assert sentinels == list(range(VOCAB - 1, VOCAB - 1 - len(sentinels), -1))  # <extra_id_0>, <extra_id_1>, ...


def test_reproducible_with_a_generator():
    tokens = torch.arange(50)
    a = span_corruption(tokens, VOCAB, generator=torch.Generator().manual_seed(3))
    b = span_corruption(tokens, VOCAB, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_tokens_that_collide_with_sentinels_are_refused():
    with pytest.raises(ValueError, match="tokens must stay below the sentinel ids"):
        span_corruption(torch.tensor([1, 2, 3, 99]), 100)


@pytest.mark.parametrize("bad, message", [(dict(noise_density=1.0), "noise_density must be in"),
                                          (dict(mean_noise_span_length=0.5), "mean_noise_span_length must be")])
def test_bad_settings_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        random_spans_noise_mask(10, **bad)


def test_label_smoothing_matches_pytorch_and_ignores_padding():
    logits = torch.randn(3, 5, 11)
    labels = torch.randint(0, 11, (3, 5))
    labels[1, 3:] = IGNORE_INDEX
    expected = F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1), label_smoothing=0.1)
    torch.testing.assert_close(label_smoothed_cross_entropy(logits, labels), expected)
    torch.testing.assert_close(label_smoothed_cross_entropy(logits, labels, 0.0),
                               F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1)))
    changed = logits.clone()
    changed[1, 3:] = 100.0  # padded positions do not matter
    torch.testing.assert_close(label_smoothed_cross_entropy(changed, labels), expected)


def test_label_smoothing_prefers_a_less_confident_model():
    labels = torch.tensor([[0]])
    confident = torch.tensor([[[30.0, 0.0, 0.0, 0.0]]])
    hedged = torch.tensor([[[4.0, 0.0, 0.0, 0.0]]])
    assert label_smoothed_cross_entropy(hedged, labels) < label_smoothed_cross_entropy(confident, labels)
    assert F.cross_entropy(hedged[0], labels[0]) > F.cross_entropy(confident[0], labels[0])


def test_shift_right_and_bad_shapes():
    assert shift_right(torch.tensor([[4, 5, IGNORE_INDEX]]), 0, 0).tolist() == [[0, 4, 5]]
    with pytest.raises(ValueError, match=r"labels must have shape \(batch, tgt\) = \(2, 3\), got \(2, 4\)"):
        label_smoothed_cross_entropy(torch.randn(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))
