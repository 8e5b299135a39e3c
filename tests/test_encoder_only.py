"""EncoderOnly (BERT) and its heads: sizes, bidirectionality, padding, heads, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmarch import (EncoderOnly, EncoderOnlyForMaskedLM, EncoderOnlyForSequenceClassification, create_model,
                     get_config)

TINY = dict(num_layers=2, d_model=32, num_heads=4, d_ff=64, vocab_size=50, max_positions=16)


def tiny(**overrides):
    return get_config("bert-base", **{**TINY, **overrides})


def count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name, hf_kwargs", [
    ("bert-base", {}),
    ("bert-large", dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)),
])
def test_preset_parameter_counts_equal_hugging_face(name, hf_kwargs):
    transformers = pytest.importorskip("transformers")
    with torch.device("meta"):
        ours = create_model(name)
        hf = transformers.BertModel(transformers.BertConfig(**hf_kwargs))
        hf_mlm = transformers.BertForMaskedLM(transformers.BertConfig(**hf_kwargs))
        ours_mlm = EncoderOnlyForMaskedLM(get_config(name, pooler=False))
    assert type(ours) is EncoderOnly
    assert count(ours) == count(hf)
    assert count(ours_mlm) == count(hf_mlm)  # the tied output matrix is counted once
    if name == "bert-base":
        assert count(ours) == 109_482_240


def test_shapes_and_pool(device):
    model = EncoderOnly(tiny()).to(device).eval()
    ids = torch.randint(1, 50, (3, 7), device=device)
    hidden = model(ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))
    assert hidden.shape == (3, 7, 32)
    assert model.pool(hidden).shape == (3, 32)
    assert torch.isfinite(hidden).all()


def test_every_token_sees_the_future():
    """Bidirectional: changing the last token changes the first token's hidden state."""
    model = EncoderOnly(tiny()).eval()
    ids = torch.randint(1, 50, (1, 6))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] % 49) + 1
    with torch.no_grad():
        assert not torch.allclose(model(ids)[0, 0], model(changed)[0, 0])


@given(lengths=st.lists(st.integers(1, 8), min_size=1, max_size=4), extra=st.integers(1, 4))
def test_padding_does_not_change_real_tokens(lengths, extra):
    """Each sequence padded in a batch gives what it gives alone, whatever the pad tokens are."""
    torch.manual_seed(0)
    model = EncoderOnly(tiny()).eval()
    seq = max(lengths) + extra
    ids = torch.randint(1, 50, (len(lengths), seq))  # random junk in the padding slots
    mask = (torch.arange(seq)[None] < torch.tensor(lengths)[:, None]).long()
    types = torch.randint(0, 2, ids.shape)
    with torch.no_grad():
        batched = model(ids, attention_mask=mask, token_type_ids=types)
        for row, n in enumerate(lengths):
            alone = model(ids[row:row + 1, :n], token_type_ids=types[row:row + 1, :n])
            torch.testing.assert_close(batched[row, :n], alone[0], atol=1e-5, rtol=1e-5)


def test_all_ones_mask_equals_no_mask_and_backends_agree():
    torch.manual_seed(0)
    sdpa = EncoderOnly(tiny(backend="sdpa")).eval()
    eager = EncoderOnly(tiny(backend="eager")).eval()
    eager.load_state_dict(sdpa.state_dict())
    ids = torch.randint(1, 50, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        torch.testing.assert_close(sdpa(ids, attention_mask=torch.ones_like(ids)), sdpa(ids))
        torch.testing.assert_close(sdpa(ids, attention_mask=mask), eager(ids, attention_mask=mask),
                                   atol=1e-5, rtol=1e-5)


def test_dropout_only_in_training():
    model = EncoderOnly(tiny(dropout=0.5, attention_dropout=0.5))
    ids = torch.randint(1, 50, (2, 5))
    model.eval()
    torch.testing.assert_close(model(ids), model(ids))
    model.train()
    assert not torch.allclose(model(ids), model(ids))


def test_masked_lm_head_is_tied_and_trains():
    model = EncoderOnlyForMaskedLM(tiny(pooler=False))
    assert model.output_weight is model.model.embeddings.tokens.weight
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.startswith("decoder") for n in names)
    untied = EncoderOnlyForMaskedLM(tiny(pooler=False, tie_embeddings=False))
    assert untied.output_weight is untied.decoder.weight
    ids = torch.randint(1, 50, (2, 5))
    logits = model(ids)
    logits.sum().backward()
    assert logits.shape == (2, 5, 50)
    assert model.model.embeddings.tokens.weight.grad is not None


def test_fill_mask_returns_sorted_top_k():
    model = EncoderOnlyForMaskedLM(tiny(pooler=False)).eval()
    ids = torch.tensor([[2, 4, 49, 6, 49], [2, 49, 5, 6, 7]])
    positions, tokens, probs = model.fill_mask(ids, mask_token_id=49, top_k=3)
    assert positions.tolist() == [[0, 2], [0, 4], [1, 1]]
    assert tokens.shape == probs.shape == (3, 3)
    assert (probs[:, :-1] >= probs[:, 1:]).all() and (probs.sum(-1) <= 1 + 1e-6).all()
    with torch.no_grad():
        full = model(ids).softmax(-1)
    torch.testing.assert_close(probs[2, 0], full[1, 1].max())
    with pytest.raises(ValueError, match="no mask token"):
        model.fill_mask(ids, mask_token_id=48)
    with pytest.raises(ValueError, match="top_k must be <= vocab_size"):
        model.fill_mask(ids, mask_token_id=49, top_k=51)


def test_sequence_classification_head():
    model = EncoderOnlyForSequenceClassification(tiny(), num_labels=3).eval()
    assert model(torch.randint(1, 50, (4, 6))).shape == (4, 3)
    with pytest.raises(ValueError, match="pooler=True"):
        EncoderOnlyForSequenceClassification(tiny(pooler=False))
    with pytest.raises(ValueError, match="no pooler"):
        EncoderOnly(tiny(pooler=False)).pool(torch.zeros(1, 2, 32))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(token_type_ids=torch.tensor([[0, 1, 2]])), ValueError, r"token_type_ids must lie in \[0, 2\), got values in \[0, 2\]"),
    (dict(token_type_ids=torch.tensor([[0, 1]])), ValueError, "token_type_ids must have the shape of input_ids"),
    (dict(attention_mask=torch.ones(1, 4, dtype=torch.long)), ValueError,
     r"attention_mask must have shape \(1, 3\) \(that of input_ids\), got \(1, 4\)"),
    (dict(attention_mask=torch.ones(1, 1, 3, dtype=torch.long)), ValueError, r"attention_mask must have shape \(batch, seq\)"),
    (dict(attention_mask=torch.ones(1, 3)), TypeError, "attention_mask must be an integer or bool tensor of 0/1, got torch.float32"),
    (dict(attention_mask=torch.tensor([[1, 2, 1]])), ValueError, "attention_mask must hold only 0 and 1"),
])
def test_bad_input_is_named(kwargs, error, message):
    model = EncoderOnly(tiny()).eval()
    with pytest.raises(error, match=message):
        model(torch.tensor([[2, 3, 4]]), **kwargs)


def test_too_long_and_out_of_vocabulary():
    model = EncoderOnly(tiny()).eval()
    with pytest.raises(ValueError, match="input_ids has 17 tokens, longer than max_positions = 16"):
        model(torch.ones(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 50\)"):
        model(torch.tensor([[1, 50]]))
    with pytest.raises(ValueError, match="architecture must be 'encoder_only'"):
        EncoderOnly(get_config("gpt2", **TINY))


def test_mean_pooling_ignores_padding_and_checks_shapes():
    from llmarch import mean_pooling

    hidden = torch.randn(2, 4, 8)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    torch.testing.assert_close(mean_pooling(hidden, mask)[0], hidden[0, :2].mean(0))
    torch.testing.assert_close(mean_pooling(hidden, mask)[1], hidden[1].mean(0))
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(batch, seq\) = \(2, 4\), got \(2, 3\)"):
        mean_pooling(hidden, mask[:, :3])


def test_rotary_encoder_uses_the_position_ids_it_is_given():
    """Custom ``position_ids`` reach the attention layers (rotary), not only the embeddings: shifting
    every position by a constant changes nothing (RoPE is relative), reversing them does."""
    from llmarch.models.config import ModelConfig
    from llmarch.models.encoder_only import EncoderOnly

    config = ModelConfig("encoder_only", vocab_size=20, d_model=32, num_layers=2, num_heads=2, d_ff=64,
                         position="rotary", max_positions=None, dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)
    model = EncoderOnly(config).double().eval()
    ids = torch.randint(20, (2, 7))
    positions = torch.arange(7)[None]
    with torch.no_grad():
        default = model(ids)
        shifted = model(ids, position_ids=positions + 5)
        reversed_ = model(ids, position_ids=positions.flip(-1))
    torch.testing.assert_close(shifted, default, atol=1e-10, rtol=1e-10)
    assert (reversed_ - default).abs().max() > 1e-3
