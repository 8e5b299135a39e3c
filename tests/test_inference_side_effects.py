"""Inference never changes a model (DESIGN.md, "Inference has no side effects").

For every family: ``forward`` (with and without autograd), ``generate`` (greedy, sampling),
``stream`` and beam search leave every parameter and buffer with the same values, dtype, shape,
strides and ``requires_grad``; forward hooks see tensors that nobody overwrites later; the only
way to change the weight layout is the explicit ``prepare_for_decoding()``.
(The compiled path is checked in tests/test_compiled_generation.py.)
"""

from __future__ import annotations

import pytest
import torch
from model_state import MIN_MARGIN, assert_unchanged, greedy_margin, model_state

from llmarch import EncoderOnlyForMaskedLM, EncoderOnlyForSequenceClassification, create_model, get_config

SMALL = dict(num_layers=2, d_model=32, num_heads=4, d_ff=64, vocab_size=60)
GENERATING = {
    "gpt2": {},
    "gpt1": {},
    "llama-tiny": {"num_kv_heads": 2},
    "t5-small": {"head_dim": 8},
    "transformer-base": {},
}


def _model(name: str):
    return create_model(name, **SMALL, **GENERATING.get(name, {})).eval()


def _encoders():
    config = get_config("bert-base", **SMALL)
    return {"bert-base": create_model("bert-base", **SMALL).eval(),
            "bert-mlm": EncoderOnlyForMaskedLM(config).eval(),
            "bert-classifier": EncoderOnlyForSequenceClassification(config, num_labels=3).eval()}


def _prompt():
    ids = torch.randint(3, 60, (2, 5), generator=torch.Generator().manual_seed(0))
    return ids, torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])


def _forward(model, ids, mask):
    if hasattr(model, "encoder"):  # encoder-decoder: the prompt is the source
        return model(ids, ids[:, :3], attention_mask=mask)
    return model(ids, attention_mask=mask)


@pytest.mark.parametrize("name", list(GENERATING))
def test_every_inference_call_leaves_the_model_unchanged(name):
    model = _model(name)
    before = model_state(model)
    ids, mask = _prompt()
    calls = {
        "forward": lambda: _forward(model, ids, mask),
        "forward under no_grad": lambda: torch.no_grad()(_forward)(model, ids, mask),
        "forward under inference_mode": lambda: torch.inference_mode()(_forward)(model, ids, mask),
        "generate (greedy)": lambda: model.generate(ids, 6, mask),
        "generate (sampling)": lambda: model.generate(ids, 6, mask, do_sample=True, top_k=5, top_p=0.9,
                                                      generator=torch.Generator().manual_seed(0)),
        "stream": lambda: list(model.stream(ids, 6, mask)),
        "beam search": lambda: model.generate(ids, 6, mask, num_beams=3),
    }
    for what, call in calls.items():
        call()
        assert_unchanged(model, before, what)


@pytest.mark.parametrize("name", ["bert-base", "bert-mlm", "bert-classifier"])
def test_encoders_leave_the_model_unchanged(name):
    model = _encoders()[name]
    before = model_state(model)
    ids, mask = _prompt()
    model(ids, attention_mask=mask)
    with torch.inference_mode():
        model(ids, attention_mask=mask)
    assert_unchanged(model, before, "forward")


def test_prepare_for_decoding_is_the_explicit_way_to_change_the_layout():
    model = _model("gpt2")
    ids, _ = _prompt()
    plain = model.generate(ids, 8, eos_token_id=None)
    assert greedy_margin(model, plain, ids.shape[1]) > MIN_MARGIN  # no near-tie: tokens comparable
    before = model_state(model)
    assert model.prepare_for_decoding() is model
    assert model.lm_head.weight.stride() == (1, 60)  # column-major now, values unchanged
    assert all(torch.equal(model_state(model)[name][0], state[0]) for name, state in before.items())
    assert torch.equal(model.generate(ids, 8, eos_token_id=None), plain)  # tokens: integers


@pytest.mark.parametrize("name", ["gpt2", "llama-tiny", "t5-small", "bert-base"])
@pytest.mark.parametrize("grad", [False, True])
def test_forward_hooks_see_outputs_nobody_overwrites(name, grad):
    """A hook's tensor must still hold what the module returned after the forward pass ends
    (in-place residuals and activations are only used where no hook holds the output)."""
    model = _encoders()[name] if name.startswith("bert") else _model(name)
    seen = []

    def keep(module, args, output):
        if isinstance(output, torch.Tensor):
            seen.append((output, output.detach().clone()))

    handles = [module.register_forward_hook(keep) for module in model.modules() if module is not model]
    ids, mask = _prompt()
    with torch.set_grad_enabled(grad):
        with_hooks = _forward(model, ids, mask) if name != "bert-base" else model(ids, attention_mask=mask)
    for handle in handles:
        handle.remove()
    assert len(seen) > 10
    for i, (output, copy) in enumerate(seen):
        assert torch.equal(output.detach(), copy), f"hook output {i} was overwritten later"
    with torch.set_grad_enabled(grad):
        without = _forward(model, ids, mask) if name != "bert-base" else model(ids, attention_mask=mask)
    torch.testing.assert_close(with_hooks, without, atol=1e-6, rtol=0)  # other allocation, same math
