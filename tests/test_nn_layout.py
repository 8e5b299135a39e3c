"""use_decoding_layout changes strides only: values, tying, results and trainability stay."""

import torch
from model_state import MIN_MARGIN, greedy_margin
from torch import nn

from llmarch import create_model
from llmarch.nn.layout import use_decoding_layout


def _tiny_gpt():
    return create_model("gpt2", num_layers=2, d_model=32, num_heads=4, d_ff=64, vocab_size=50,
                        dropout=0.0, attention_dropout=0.0).eval()


def test_fp32_becomes_column_major_and_keeps_values_and_tying():
    model = _tiny_gpt()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    use_decoding_layout(model)
    assert model.lm_head.weight is model.embeddings.tokens.weight
    assert model.lm_head.weight.stride() == (1, 50)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bf16_goes_back_to_row_major():
    layer = use_decoding_layout(nn.Linear(4, 6))
    layer.to(torch.bfloat16)  # .to keeps the strides ...
    assert not layer.weight.is_contiguous()
    use_decoding_layout(layer)  # ... and the bf16 choice is row-major
    assert layer.weight.is_contiguous()


def test_generation_is_unchanged_and_the_model_still_trains():
    model = _tiny_gpt()
    prompt = torch.tensor([[1, 2, 3, 4]])
    reference = model(prompt)
    tokens = model.generate(prompt, max_new_tokens=5)
    assert greedy_margin(model, tokens, prompt.shape[1]) > MIN_MARGIN  # no near-tie: tokens comparable
    model.prepare_for_decoding()  # the explicit, opt-in layout switch
    assert torch.allclose(model(prompt), reference, atol=1e-6)
    assert torch.equal(model.generate(prompt, max_new_tokens=5), tokens)
    model.train()
    loss = model(tokens).logsumexp(-1).mean()  # parameters are not inference tensors
    loss.backward()
    assert model.lm_head.weight.grad is not None and torch.isfinite(model.lm_head.weight.grad).all()
