"""UniLM: the four masks (against their definitions and the paper's seq2seq example), the mix of
objectives, the cloze corruption and loss, what each position can see in the model, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from llmarch import create_model
from llmarch.training.objectives import UniLM
from llmarch.training.unilm import (UNILM_KINDS, sample_unilm_kinds, unilm_attention_masks, unilm_batch,
                                    unilm_loss)

VOCAB = 30
MASK_ID = VOCAB - 1


def tiny(backend="auto"):
    torch.manual_seed(0)
    return create_model("gpt2", num_layers=2, d_model=32, num_heads=4, d_ff=64, vocab_size=VOCAB, dropout=0.0,
                        attention_dropout=0.0, max_positions=32, backend=backend).eval()


def allowed(kind: str, i: int, j: int, source: int) -> bool:
    """Dong et al. 2019, §2.3 / Figure 1, one entry at a time."""
    if kind == "bidirectional":
        return True
    if kind == "left_to_right":
        return j <= i
    if kind == "right_to_left":
        return j >= i
    return j < source if i < source else (j < source or j <= i)  # source: itself; target: source + its left


@given(st.lists(st.sampled_from(UNILM_KINDS), min_size=1, max_size=4), st.integers(1, 7), st.data())
def test_masks_match_the_paper_definitions(kinds, seq, data):
    sources = [data.draw(st.integers(1, seq)) for _ in kinds]
    masks = unilm_attention_masks(kinds, seq, torch.tensor(sources))
    assert masks.shape == (len(kinds), 1, seq, seq) and masks.dtype == torch.bool
    for b, kind in enumerate(kinds):
        expect = torch.tensor([[allowed(kind, i, j, sources[b]) for j in range(seq)] for i in range(seq)])
        assert torch.equal(masks[b, 0], expect), kind


def test_seq2seq_example_of_the_paper():
    # "[SOS] t1 t2 [EOS] t3 t4 t5 [EOS]": "t1 and t2 can attend to the first four tokens,
    # including [SOS] and [EOS]; t4 can only attend to the first six tokens".
    mask = unilm_attention_masks(["seq2seq"], 8, torch.tensor([4]))[0, 0]
    assert mask[1].tolist() == [True] * 4 + [False] * 4 and mask[2].tolist() == mask[1].tolist()
    assert mask[5].tolist() == [True] * 6 + [False] * 2


def test_objectives_are_mixed_in_the_papers_proportions():
    codes = sample_unilm_kinds(60_000, generator=torch.Generator().manual_seed(0))
    shares = torch.bincount(codes, minlength=4).float() / codes.numel()
    torch.testing.assert_close(shares, torch.tensor([1 / 3, 1 / 6, 1 / 6, 1 / 3]), atol=0.01, rtol=0)


def test_batch_draws_a_kind_per_row_and_masks_fifteen_percent():
    ids = torch.randint(MASK_ID, (64, 20), generator=torch.Generator().manual_seed(0))
    batch = unilm_batch(ids, mask_token_id=MASK_ID, vocab_size=VOCAB, generator=torch.Generator().manual_seed(1))
    assert len(set(batch.kinds.tolist())) == 4                        # mixed within one batch
    assert ((batch.labels != -100).sum(1) == 3).all()                 # round(0.15 * 20) per row
    scored = batch.labels != -100
    assert torch.equal(batch.labels[scored], ids[scored]) and torch.equal(batch.input_ids[~scored], ids[~scored])
    assert (batch.input_ids[scored] == MASK_ID).float().mean() > 0.6  # 80% [MASK] (10% random, 10% kept)
    s2s = batch.kinds == UNILM_KINDS.index("seq2seq")
    assert ((batch.source_lengths[s2s] >= 1) & (batch.source_lengths[s2s] <= 19)).all()
    assert (batch.source_lengths[~s2s] == 0).all()
    for b in range(64):  # each row carries its own kind's mask
        kind, source = UNILM_KINDS[int(batch.kinds[b])], int(batch.source_lengths[b])
        assert torch.equal(batch.self_attention_mask[b, 0], unilm_attention_masks([kind], 20,
                                                                                  torch.tensor([source]))[0, 0])


def test_loss_is_the_mean_over_masked_tokens():
    logits = torch.randn(2, 6, VOCAB)
    labels = torch.full((2, 6), -100)
    labels[0, 1], labels[1, 4], labels[1, 5] = 3, 7, 2
    terms = [-F.log_softmax(logits[b, t], -1)[labels[b, t]] for b, t in ((0, 1), (1, 4), (1, 5))]
    torch.testing.assert_close(unilm_loss(logits, labels), torch.stack(terms).mean())


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
@pytest.mark.parametrize("kind", UNILM_KINDS)
def test_each_position_sees_exactly_what_its_objective_allows(kind, backend, device):
    """Perturb token j: the logits at i move iff the mask lets i see j (so a cloze position never
    reads a token its objective hides, e.g. the right context in left-to-right)."""
    model = tiny(backend).to(device)
    seq, source = 6, 2
    ids = torch.randint(VOCAB, (1, seq), generator=torch.Generator().manual_seed(3)).to(device)
    mask = unilm_attention_masks([kind], seq, torch.tensor([source])).to(device)
    base = model(ids, self_attention_mask=mask)
    for j in range(seq):
        other = ids.clone()
        other[0, j] = (other[0, j] + 11) % VOCAB
        moved = (model(other, self_attention_mask=mask) - base)[0].abs().amax(-1)
        for i in range(seq):
            if allowed(kind, i, j, source):
                assert moved[i] > 1e-4, (i, j)
            else:
                assert moved[i] < 1e-6, (i, j)


def test_objective_runs_and_counts_the_masked_tokens():
    model = tiny()
    window = torch.randint(MASK_ID, (4, 11))
    objective = UniLM()
    assert objective.extra_ids(10) == 1
    loss, n = objective.loss(model, window, config=model.config, base_vocab=MASK_ID,
                             generator=torch.Generator().manual_seed(0))
    assert n == 4 * 2 and torch.isfinite(loss)  # round(0.15 * 10) = 2 per row
    loss.backward()


@pytest.mark.parametrize("call, error, message", [
    (lambda: unilm_attention_masks(["sideways"], 4), ValueError, "kinds must name objectives among .*got 'sideways'"),
    (lambda: unilm_attention_masks(["seq2seq"], 4), ValueError, "source_lengths are required for 'seq2seq' rows"),
    (lambda: unilm_attention_masks(["seq2seq"], 4, torch.tensor([5])), ValueError,
     r"source_lengths of 'seq2seq' rows must lie in \[1, 4\], got \[5\]"),
    (lambda: unilm_attention_masks(["seq2seq"], 4, torch.tensor([1, 2])), ValueError,
     r"source_lengths must have shape \(batch,\) = \(1,\), got \(2,\)"),
    (lambda: unilm_attention_masks(torch.tensor([4]), 4), ValueError, r"kinds must be codes in \[0, 4\)"),
    (lambda: unilm_attention_masks("bidirectional", 4), TypeError, "kinds must be a sequence of objective names"),
    (lambda: sample_unilm_kinds(3, proportions=[1, 1]), ValueError, "proportions must be 4 non-negative weights"),
    (lambda: unilm_batch(torch.zeros(2, 4, dtype=torch.long), mask_token_id=1, vocab_size=5, kinds=["seq2seq"]),
     ValueError, r"kinds must have one entry per row \(2\), got 1"),
    (lambda: unilm_batch(torch.zeros(1, 1, dtype=torch.long), mask_token_id=1, vocab_size=5, kinds=["seq2seq"]),
     ValueError, "input_ids must hold at least 2 tokens per row for a seq2seq row"),
])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()
