"""Generation: logits processing vs Hugging Face, sampling, EOS, streaming, left padding, errors."""

from __future__ import annotations

import pytest
import torch

from llmarch import create_model
from llmarch.models.sampling import process_logits, select_next_token
from model_state import MIN_MARGIN, greedy_margin

transformers = pytest.importorskip("transformers")

SMALL = dict(num_layers=2, d_model=64, num_heads=4, d_ff=128, vocab_size=97, max_positions=64, dropout=0.0,
             attention_dropout=0.0)


@pytest.fixture(scope="module")
def gpt():
    torch.manual_seed(0)
    return create_model("gpt2", **SMALL).eval()


@pytest.mark.parametrize("temperature, top_k, top_p", [
    (1.0, None, None), (0.7, None, None), (1.3, 5, None), (1.0, 1, None), (1.0, None, 0.9),
    (0.8, 10, 0.5), (1.0, None, 1e-6), (1.0, 200, None),
])
def test_process_logits_equals_hf_warpers(temperature, top_k, top_p):
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    logits = torch.randn(4, 97) * 3
    expected = logits.clone()
    if temperature != 1.0:
        expected = TemperatureLogitsWarper(temperature)(None, expected)
    if top_k is not None:
        expected = TopKLogitsWarper(top_k)(None, expected)
    if top_p is not None:
        expected = TopPLogitsWarper(top_p)(None, expected)
    got = process_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    assert torch.equal(got.isinf(), expected.isinf())
    torch.testing.assert_close(got, expected)


def test_sampling_keeps_only_allowed_tokens_and_follows_probabilities():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -5.0]]).expand(20000, 5)
    g = torch.Generator().manual_seed(0)
    tokens = select_next_token(logits, do_sample=True, top_k=3, generator=g)
    assert set(tokens.unique().tolist()) == {0, 1, 2}
    expected = torch.softmax(torch.tensor([2.0, 1.0, 0.0]), 0)
    observed = torch.bincount(tokens, minlength=3)[:3].float() / len(tokens)
    torch.testing.assert_close(observed, expected, atol=0.015, rtol=0)
    nucleus = select_next_token(logits, do_sample=True, top_p=0.7, generator=g)  # 0.64 < 0.7 -> {0, 1}
    assert set(nucleus.unique().tolist()) == {0, 1}


def _hf_copy(model, tmp_path):
    from llmarch import save_pretrained

    save_pretrained(model, tmp_path, model_type="gpt2")
    return transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()


def test_sampling_matches_hf_with_the_same_seed(gpt, tmp_path):
    hf = _hf_copy(gpt, tmp_path)
    ids = torch.randint(0, 97, (2, 5))
    for kwargs in (dict(temperature=0.9, top_k=20, top_p=0.95), dict(temperature=1.0, top_k=0, top_p=1.0)):
        torch.manual_seed(123)
        expected = hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=12,
                               pad_token_id=0, **kwargs)
        torch.manual_seed(123)
        ours = dict(kwargs, top_k=kwargs["top_k"] or None)
        assert torch.equal(gpt.generate(ids, 12, do_sample=True, **ours), expected)


def test_sampling_is_reproducible_with_a_generator(gpt):
    ids = torch.randint(0, 97, (3, 4))
    runs = [gpt.generate(ids, 10, do_sample=True, top_p=0.9, generator=torch.Generator().manual_seed(7))
            for _ in range(2)]
    assert torch.equal(*runs)


def test_stream_yields_the_tokens_of_generate(gpt):
    ids = torch.randint(0, 97, (2, 6))
    mask = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1]])
    steps = list(gpt.stream(ids, 8, mask))
    assert len(steps) == 8 and steps[0].shape == (2,)
    assert torch.equal(torch.cat([ids, torch.stack(steps, 1)], 1), gpt.generate(ids, 8, mask))


def test_stream_stops_at_eos(gpt):
    ids = torch.randint(0, 97, (1, 6))
    first = gpt.generate(ids, 1)[0, -1].item()
    assert [t.tolist() for t in gpt.stream(ids, 10, eos_token_id=first)] == [[first]]


def test_left_padded_batch_equals_rows_generated_alone():
    torch.manual_seed(0)
    model = create_model("llama-tiny", **SMALL, num_kv_heads=2).eval()  # RoPE positions skip the padding too
    prompts = [torch.randint(0, 97, (n,)) for n in (3, 7, 5)]
    batch = torch.zeros(3, 7, dtype=torch.long)
    mask = torch.zeros(3, 7, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        batch[row, 7 - len(prompt):], mask[row, 7 - len(prompt):] = prompt, 1
    together = model.generate(batch, 10, mask)
    for row, prompt in enumerate(prompts):
        alone = model.generate(prompt[None], 10)
        assert greedy_margin(model, alone, len(prompt)) > MIN_MARGIN  # other shapes: no near-tie allowed
        assert torch.equal(together[row, 7:], alone[0, len(prompt):])


def test_prompt_plus_new_tokens_beyond_context_raises(gpt):
    with pytest.raises(ValueError, match=r"prompt \(60 tokens\) plus max_new_tokens \(5\) must fit the context "
                                         r"length max_positions=64"):
        gpt.generate(torch.zeros(1, 60, dtype=torch.long), 5)
    assert gpt.generate(torch.zeros(1, 60, dtype=torch.long), 4).shape == (1, 64)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(input_ids=torch.tensor([[1, 200]])), ValueError, r"input_ids must lie in \[0, 97\)"),
    (dict(input_ids=torch.zeros(1, 0, dtype=torch.long)), ValueError, "input_ids must hold at least one token"),
    (dict(input_ids=torch.tensor([1, 2])), ValueError, r"input_ids must have shape \(batch, seq\)"),
    (dict(attention_mask=torch.ones(1, 2, dtype=torch.long)), ValueError, r"attention_mask must have shape \(1, 3\)"),
    (dict(attention_mask=torch.ones(1, 3)), TypeError, "attention_mask must be an integer or bool"),
    (dict(do_sample=True, top_p=0.0), ValueError, r"top_p must be in \(0, 1\], got 0.0"),
    (dict(do_sample=True, top_p=1.5), ValueError, r"top_p must be in \(0, 1\], got 1.5"),
    (dict(do_sample=True, temperature=0.0), ValueError, "temperature must be > 0 when sampling"),
    (dict(do_sample=True, temperature=-1.0), ValueError, "temperature must be > 0 when sampling"),
    (dict(top_k=0), ValueError, "top_k must be a positive int"),
    (dict(max_new_tokens=0), ValueError, "max_new_tokens must be a positive int"),
    (dict(num_beams=0), ValueError, "num_beams must be a positive int"),
])
def test_bad_generation_arguments(gpt, kwargs, error, message):
    args = dict(input_ids=torch.tensor([[1, 2, 3]]), max_new_tokens=2) | kwargs
    with pytest.raises(error, match=message):
        gpt.generate(**args)
    if "num_beams" not in kwargs:
        with pytest.raises(error, match=message):
            gpt.stream(**args)  # errors surface on the call, before the first token


def test_greedy_ignores_temperature_like_hf(gpt):
    ids = torch.randint(0, 97, (1, 4))
    assert torch.equal(gpt.generate(ids, 5, temperature=0.0), gpt.generate(ids, 5))
