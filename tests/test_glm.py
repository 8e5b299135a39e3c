"""GLM: Part A / Part B, 2D positions and the mask against Figure 2 of Du et al. 2022; the model's
2D position embeddings; what each position can see; the blank-infilling loss; bad spans."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from llmarch import create_model
from llmarch.nn.cache import KVCache
from llmarch.training.glm import check_spans, glm_blank_infilling, glm_fill_blanks, glm_loss
from llmarch.training.glm_sampling import glm_batch, sample_glm_spans
from llmarch.training.objectives import GLM

VOCAB = 24
M, S, E = 21, 22, 23  # [MASK], [START], [END]
X = {f"x{i}": i for i in range(1, 7)}  # the paper's x1 .. x6 as ids 1 .. 6
NAMES = {**{v: k for k, v in X.items()}, M: "[M]", S: "[S]", E: "[E]", -100: "-"}

# Figure 2 (c) and (d), arXiv:2103.10360 -- the spans {x3} and {x5 x6}, Part B in the order x5 x6, x3.
FIGURE_INPUT = "x1 x2 [M] x4 [M] [S] x5 x6 [S] x3".split()
FIGURE_POSITION_1 = [1, 2, 3, 4, 5, 5, 5, 5, 3, 3]  # the figure counts from 1
FIGURE_POSITION_2 = [0, 0, 0, 0, 0, 1, 2, 3, 1, 2]
FIGURE_TARGET = "x5 x6 [E] x3 [E]".split()  # outputs at the Part B positions
FIGURE_MASK = """
1111100000
1111100000
1111100000
1111100000
1111100000
1111110000
1111111000
1111111100
1111111110
1111111111
""".split()  # rows: queries; 1 = may attend (Part A sees A; Part B sees A and B up to itself)


def figure_example():
    return glm_blank_infilling(torch.arange(1, 7), [(2, 3), (4, 6)], mask_token_id=M, start_token_id=S,
                               end_token_id=E, order=[1, 0])


def tiny(**overrides):
    torch.manual_seed(0)
    return create_model("gpt2", num_layers=2, d_model=32, num_heads=4, d_ff=64, vocab_size=VOCAB, dropout=0.0,
                        attention_dropout=0.0, max_positions=32, position="learned_2d", **overrides).eval()


def test_figure_2_of_the_paper():
    ex = figure_example()
    assert [NAMES[i] for i in ex.input_ids.tolist()] == FIGURE_INPUT
    assert (ex.position_ids + 1).tolist() == FIGURE_POSITION_1
    assert ex.block_position_ids.tolist() == FIGURE_POSITION_2
    assert ex.part_a_length == 5
    assert [NAMES[i] for i in ex.labels.tolist()] == ["-"] * 5 + FIGURE_TARGET
    expected = torch.tensor([[c == "1" for c in row] for row in FIGURE_MASK])
    assert torch.equal(ex.attention_mask(), expected)


def test_the_model_attends_as_figure_2_d(device):
    """Perturbing token j moves the logits at i exactly where Figure 2(d) lets i see j."""
    model = tiny().to(device)
    ex = glm_blank_infilling(torch.arange(1, 7, device=device), [(2, 3), (4, 6)], mask_token_id=M,
                             start_token_id=S, end_token_id=E, order=[1, 0])
    kwargs = dict(position_ids=ex.position_ids[None], block_position_ids=ex.block_position_ids[None],
                  prefix_lengths=ex.part_a_length)
    base = model(ex.input_ids[None], **kwargs)[0]
    expected = torch.tensor([[c == "1" for c in row] for row in FIGURE_MASK])
    for j in range(10):
        ids = ex.input_ids.clone()
        ids[j] = 7 + j  # another ordinary token
        moved = (model(ids[None], **kwargs)[0] - base).abs().amax(-1).cpu()
        assert torch.equal(moved > 1e-4, expected[:, j]) and bool(((moved < 1e-6) | (moved > 1e-4)).all()), j


def test_no_target_is_visible_where_it_is_predicted():
    """A Part B position predicts the next token of its span: perturbing it (and everything after)
    leaves that position's logits unchanged; Part A holds [MASK] where the spans were."""
    model = tiny()
    ex = figure_example()
    kwargs = dict(position_ids=ex.position_ids[None], block_position_ids=ex.block_position_ids[None],
                  prefix_lengths=ex.part_a_length)
    base = model(ex.input_ids[None], **kwargs)[0]
    for t in range(ex.part_a_length, 10):
        ids = ex.input_ids.clone()
        ids[t + 1:] = 9  # every later token, the target of t included
        assert (model(ids[None], **kwargs)[0, t] - base[t]).abs().max() < 1e-6
    part_a = ex.input_ids[:ex.part_a_length].tolist()
    assert X["x3"] not in part_a and X["x5"] not in part_a and X["x6"] not in part_a


def test_2d_position_embedding_is_the_sum_of_two_tables():
    model = tiny()
    emb = model.embeddings
    ids, pos, block = torch.tensor([[3, 4, 5]]), torch.tensor([[0, 1, 1]]), torch.tensor([[0, 1, 2]])
    expected = emb.tokens.weight[ids] + emb.positions.weight[pos] + emb.block_positions.weight[block]
    torch.testing.assert_close(emb(ids, pos, block_position_ids=block), expected)
    torch.testing.assert_close(emb(ids, pos), emb(ids, pos, block_position_ids=torch.zeros_like(ids)))
    assert {"embeddings.positions.weight", "embeddings.block_positions.weight"} <= set(model.state_dict())


@st.composite
def texts_with_spans(draw):
    n = draw(st.integers(1, 30))
    seed = draw(st.integers(0, 2**16))
    spans = sample_glm_spans(n, mask_ratio=draw(st.sampled_from([0.15, 0.3, 0.5])), generator=torch.Generator()
                             .manual_seed(seed))
    return n, spans, seed


@given(texts_with_spans())
def test_parts_reassemble_the_text(case):
    n, spans, seed = case
    text = torch.arange(1, n + 1) % 20 + 1  # ordinary ids in [1, 20]
    ex = glm_blank_infilling(text, spans, mask_token_id=M, start_token_id=S, end_token_id=E,
                             generator=torch.Generator().manual_seed(seed))
    k, covered = len(spans), sum(e - s for s, e in spans)
    assert ex.part_a_length == n - covered + k and len(ex.input_ids) == n + 2 * k
    part_a = ex.input_ids[:ex.part_a_length].tolist()
    assert part_a.count(M) == k and ex.position_ids[:ex.part_a_length].tolist() == list(range(ex.part_a_length))
    # put every generated span back at its [MASK] (position 1) and recover the text
    filled = {}
    ids, pos, block, labels = (t[ex.part_a_length:].tolist() for t in
                               (ex.input_ids, ex.position_ids, ex.block_position_ids, ex.labels))
    for i, (token, p, b, target) in enumerate(zip(ids, pos, block, labels)):
        assert (token == S) == (b == 1)                               # [S] opens every span
        if target != E:
            assert labels[i] == ids[i + 1]                            # the target is the next input token
            filled.setdefault(p, []).append(target)
        else:
            assert i + 1 == len(ids) or ids[i + 1] == S               # [E] closes it
    rebuilt = []
    for index, token in enumerate(part_a):
        rebuilt += filled[index] if token == M else [token]
    assert rebuilt == text.tolist()


@given(st.integers(1, 200), st.integers(0, 10_000))
def test_sampled_spans_cover_enough_and_never_touch(n, seed):
    spans = sample_glm_spans(n, generator=torch.Generator().manual_seed(seed))
    assert spans == check_spans(spans, n)
    target = max(1, int(0.15 * n))
    assert sum(e - s for s, e in spans) >= min(target, n - len(spans))  # 15%, unless the text is full of spans
    assert all(s1 > e0 for (_, e0), (s1, _) in zip(spans, spans[1:]))  # at least one token between spans


def test_loss_is_the_mean_over_part_b_targets():
    logits = torch.randn(1, 10, VOCAB)
    ex = figure_example()
    terms = [-F.log_softmax(logits[0, t], -1)[ex.labels[t]] for t in range(5, 10)]
    torch.testing.assert_close(glm_loss(logits, ex.labels[None]), torch.stack(terms).mean())


def test_padded_batch_rows_match_single_examples():
    model = tiny()
    windows = torch.randint(1, 20, (3, 16), generator=torch.Generator().manual_seed(0))
    batch = glm_batch(windows, mask_token_id=M, start_token_id=S, end_token_id=E, mask_ratio=0.3,
                      generator=torch.Generator().manual_seed(2))
    logits = model(batch.input_ids, batch.attention_mask, position_ids=batch.position_ids,
                   block_position_ids=batch.block_position_ids, prefix_lengths=batch.prefix_lengths)
    for b in range(3):
        n = int(batch.attention_mask[b].sum())
        alone = model(batch.input_ids[b:b + 1, :n], position_ids=batch.position_ids[b:b + 1, :n],
                      block_position_ids=batch.block_position_ids[b:b + 1, :n],
                      prefix_lengths=int(batch.prefix_lengths[b]))
        torch.testing.assert_close(logits[b, :n], alone[0], atol=1e-5, rtol=1e-5)
    assert (batch.labels[batch.attention_mask == 0] == -100).all()


def test_span_decoding_with_a_cache_equals_the_full_pass():
    """Part A once (bidirectional, cached), then Part B one token at a time."""
    model = tiny()
    ex = figure_example()
    full = model(ex.input_ids[None], position_ids=ex.position_ids[None],
                 block_position_ids=ex.block_position_ids[None], prefix_lengths=ex.part_a_length)
    cache, a = KVCache.dynamic(2), ex.part_a_length
    steps = [model(ex.input_ids[None, :a], cache=cache, position_ids=ex.position_ids[None, :a],
                   block_position_ids=ex.block_position_ids[None, :a], prefix_lengths=a)]
    for t in range(a, 10):
        steps.append(model(ex.input_ids[None, t:t + 1], cache=cache, position_ids=ex.position_ids[None, t:t + 1],
                           block_position_ids=ex.block_position_ids[None, t:t + 1]))
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_fill_blanks_with_a_cache_equals_greedy_full_passes():
    model = tiny()
    part_a = torch.tensor([1, M, 3, 4, M])
    spans = glm_fill_blanks(model, part_a, mask_token_id=M, start_token_id=S, end_token_id=E, max_span_length=3)
    ids, pos, block, expected, gaps = part_a.tolist(), list(range(5)), [0] * 5, [], []
    for blank in (1, 4):  # the reference: one full forward pass per generated token
        ids, pos, block, span = ids + [S], pos + [blank], block + [1], []
        while True:
            logits = model(torch.tensor([ids]), position_ids=torch.tensor([pos]),
                           block_position_ids=torch.tensor([block]), prefix_lengths=5)[0, -1]
            top2 = logits.detach().topk(2).values
            gaps.append(float(top2[0] - top2[1]))
            token = int(logits.argmax())
            if token == E or len(span) == 3:
                break
            span.append(token)
            ids, pos, block = ids + [token], pos + [blank], block + [len(span) + 1]
        expected.append(span)
    assert min(gaps) > 1e-4  # no near-tie that rounding could flip
    assert [s.tolist() for s in spans] == expected


def test_objective_configures_2d_positions_and_counts_targets():
    from llmarch.models.presets import get_config

    objective = GLM()
    config = objective.configure(get_config("gpt2", num_layers=1, d_model=32, num_heads=2, d_ff=64), 20, 16, None)
    assert config.position == "learned_2d" and config.vocab_size == 23
    model = create_model(config)
    window = torch.randint(20, (2, 17))
    loss, n = objective.loss(model, window, config=config, base_vocab=20, generator=torch.Generator().manual_seed(0))
    batch = glm_batch(window[:, :-1], mask_token_id=20, start_token_id=21, end_token_id=22,
                      generator=torch.Generator().manual_seed(0))
    assert n == int((batch.labels != -100).sum()) and torch.isfinite(loss)
    with pytest.raises(ValueError, match="objective 'glm' needs learned positions .* got position='rotary'"):
        objective.configure(get_config("llama-tiny"), 20, 16, None)


@pytest.mark.parametrize("spans, order, error, message", [
    ([(1, 3), (2, 4)], None, ValueError, r"spans must not overlap, got \(1, 3\) and \(2, 4\)"),
    ([(4, 7)], None, ValueError, r"spans must be non-empty \[start, end\) ranges within the 6 tokens "
                                 r"\(0 <= start < end <= 6\), got \(4, 7\)"),
    ([(-1, 2)], None, ValueError, r"within the 6 tokens .* got \(-1, 2\)"),
    ([(3, 3)], None, ValueError, r"got \(3, 3\)"),
    ([], None, ValueError, "spans must hold at least one"),
    ([(1, 2.5)], None, TypeError, r"spans must hold \(start, end\) pairs of ints, got \(1, 2.5\)"),
    ([(1, 2), (3, 4)], [0, 0], ValueError, r"order must be a permutation of range\(2\) .* got \[0, 0\]"),
    ([(1, 2), (3, 4)], [1.0, 0], ValueError, "order must be a permutation"),
])
def test_bad_spans(spans, order, error, message):
    with pytest.raises(error, match=message):
        glm_blank_infilling(torch.arange(1, 7), spans, mask_token_id=M, start_token_id=S, end_token_id=E,
                            order=order)


def test_bad_special_ids_and_positions():
    with pytest.raises(ValueError, match=r"tokens must not contain the special ids .* got 21"):
        glm_blank_infilling(torch.tensor([1, 21, 3]), [(0, 1)], mask_token_id=M, start_token_id=S, end_token_id=E)
    with pytest.raises(ValueError, match="mask_token_id, start_token_id and end_token_id must differ"):
        glm_blank_infilling(torch.tensor([1, 2]), [(0, 1)], mask_token_id=M, start_token_id=M, end_token_id=E)
    model = tiny()
    with pytest.raises(ValueError, match=r"block_position_ids must lie in \[0, 32\) \(max_positions\), got values"):
        model(torch.tensor([[1, 2]]), block_position_ids=torch.tensor([[0, 32]]))
    with pytest.raises(ValueError, match=r"block_position_ids must have shape \(1 or 1, 2\)"):
        model(torch.tensor([[1, 2]]), block_position_ids=torch.tensor([[0, 1, 2]]))
    plain = create_model("gpt2", num_layers=1, d_model=16, num_heads=2, d_ff=32, vocab_size=VOCAB)
    with pytest.raises(ValueError, match="block_position_ids need a config with position='learned_2d'"):
        plain(torch.tensor([[1, 2]]), block_position_ids=torch.tensor([[0, 1]]))
