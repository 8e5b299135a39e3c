"""BERT's masked-LM corruption (15% selected; 80% [MASK] / 10% random / 10% unchanged) and loss."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmarch import EncoderOnlyForMaskedLM, get_config
from llmarch.training.masked_lm import IGNORE_INDEX, mask_tokens, masked_lm_loss

PAD, CLS, SEP, MASK = 0, 1, 2, 3
SPECIAL = (PAD, CLS, SEP, MASK)
VOCAB = 1000


def batch(lengths, seq=None, seed=0):
    """[CLS] tokens [SEP] [PAD]... rows; returns (ids, attention_mask)."""
    g = torch.Generator().manual_seed(seed)
    seq = seq or max(lengths) + 2
    ids = torch.full((len(lengths), seq), PAD)
    for row, n in enumerate(lengths):
        ids[row, 0], ids[row, n + 1] = CLS, SEP
        ids[row, 1:n + 1] = torch.randint(4, VOCAB, (n,), generator=g)
    return ids, (ids != PAD).long()


def corrupt(ids, mask, seed=0, **kwargs):
    return mask_tokens(ids, mask_token_id=MASK, vocab_size=VOCAB, special_token_ids=SPECIAL,
                       attention_mask=mask, generator=torch.Generator().manual_seed(seed), **kwargs)


@given(lengths=st.lists(st.integers(0, 40), min_size=1, max_size=5), seed=st.integers(0, 2**16))
def test_selection_invariants(lengths, seed):
    ids, mask = batch(lengths)
    original = ids.clone()
    inputs, labels = corrupt(ids, mask, seed)
    assert torch.equal(ids, original)  # input not modified
    selected = labels != IGNORE_INDEX
    for row, n in enumerate(lengths):  # exactly round(15% of real tokens), at least one
        expected = 0 if n == 0 else max(1, round(0.15 * n))
        assert int(selected[row].sum()) == expected
    assert not selected[torch.isin(ids, torch.tensor(SPECIAL))].any()  # never special or padding
    assert torch.equal(labels[selected], ids[selected])  # labels are the original tokens
    assert torch.equal(inputs[~selected], ids[~selected])  # unselected tokens untouched


def test_reproducible_with_a_generator():
    ids, mask = batch([30, 25, 12])
    first, second = corrupt(ids, mask, seed=5), corrupt(ids, mask, seed=5)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[1], corrupt(ids, mask, seed=6)[1])


def test_80_10_10_split():
    ids, mask = batch([100] * 400, seed=1)  # 40,000 real tokens, 6,000 selected
    inputs, labels = corrupt(ids, mask, seed=2)
    selected = labels != IGNORE_INDEX
    n = int(selected.sum())
    masked = (inputs == MASK) & selected
    unchanged = (inputs == ids) & selected
    random = selected & ~masked & ~unchanged
    assert n == 400 * 15
    # binomial standard deviation of a fraction here is <= 0.0065: allow 4 of them
    assert abs(int(masked.sum()) / n - 0.8) < 0.026
    assert abs(int(unchanged.sum()) / n - 0.1) < 0.026  # (a random pick of the same id counts here, p = 1e-3)
    assert abs(int(random.sum()) / n - 0.1) < 0.026


def test_fractions_and_no_special_tokens():
    ids, mask = batch([50] * 20)
    inputs, labels = corrupt(ids, mask, mask_fraction=1.0, random_fraction=0.0)
    selected = labels != IGNORE_INDEX
    assert (inputs[selected] == MASK).all()
    inputs, labels = corrupt(ids, mask, mlm_probability=0.0)
    assert (labels == IGNORE_INDEX).sum() == labels.numel() - 20  # at least one per non-empty row


@pytest.mark.parametrize("kwargs, message", [
    (dict(mlm_probability=1.5), r"mlm_probability must be in \[0, 1\], got 1.5"),
    (dict(mask_fraction=0.9, random_fraction=0.2), "mask_fraction \\+ random_fraction must be <= 1"),
    (dict(attention_mask=torch.ones(1, 3, dtype=torch.long)), r"attention_mask must have shape \(1, 4\) \(that of input_ids\)"),
])
def test_bad_arguments(kwargs, message):
    ids = torch.tensor([[1, 5, 6, 2]])
    with pytest.raises(ValueError, match=message):
        mask_tokens(ids, mask_token_id=MASK, vocab_size=VOCAB, **kwargs)


def test_ids_outside_the_vocabulary():
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 7\) \(the vocabulary size\), got values in \[11, 16\]"):
        mask_tokens(torch.tensor([[11, 15, 16, 12]]), mask_token_id=MASK, vocab_size=7)


def test_loss_counts_only_selected_positions():
    logits = torch.randn(2, 4, 10)
    labels = torch.full((2, 4), IGNORE_INDEX)
    labels[0, 1], labels[1, 3] = 3, 7
    expected = torch.nn.functional.cross_entropy(torch.stack([logits[0, 1], logits[1, 3]]), torch.tensor([3, 7]))
    torch.testing.assert_close(masked_lm_loss(logits, labels), expected)
    with pytest.raises(ValueError, match="logits must be"):
        masked_lm_loss(logits[0], labels)


def test_masked_lm_training_learns_a_copy_task():
    """A few dozen steps: the loss falls well below chance (log vocab) on a learnable pattern."""
    torch.manual_seed(0)
    vocab = 24
    config = get_config("bert-base", num_layers=2, d_model=64, num_heads=4, d_ff=128, vocab_size=vocab,
                        max_positions=16, pooler=False, dropout=0.0, attention_dropout=0.0)
    model = EncoderOnlyForMaskedLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(100):  # sequences "a b c d a b c d ...": every masked token is visible 4 steps away
        pattern = torch.randint(4, vocab, (32, 4), generator=g)
        ids = pattern.repeat(1, 3)
        inputs, labels = mask_tokens(ids, mask_token_id=MASK, vocab_size=vocab, special_token_ids=SPECIAL,
                                     generator=g)
        loss = masked_lm_loss(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3 * torch.log(torch.tensor(float(vocab))).item()
