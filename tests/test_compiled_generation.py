"""``generate(..., compile=True)``: every family decodes through one compiled graph per step
over a static KV cache, with the tokens of eager decoding.

Each test compiles with ``fullgraph=True`` (a graph break fails it), so the compiled step is
known to be one graph; the library itself allows breaks (see ``llmarch.models.generation``).
Compiling costs seconds per shape on the 2-core CI machine, so the shapes here are few.
"""

from __future__ import annotations

import pytest
import torch

from llmarch import create_model
from llmarch.models import generation
from llmarch.nn.cache import StaticLayerCache
from model_state import MIN_MARGIN, assert_unchanged, greedy_margin, model_state

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside torch's inductor


@pytest.fixture(autouse=True)
def needs_compiler(cpp_compiler):
    """Skip (with the reason) only where no C++ compiler is installed; any other failure fails."""


@pytest.fixture(autouse=True)
def fullgraph(monkeypatch):
    monkeypatch.setattr(generation, "COMPILE_OPTIONS", {**generation.COMPILE_OPTIONS, "fullgraph": True})
    monkeypatch.setattr(generation, "_COMPILED_STEPS", {})


def padded_batch(vocab: int, pad_left: bool):
    ids = torch.randint(3, vocab, (2, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    if pad_left:
        mask[0, :3] = 0
    else:
        mask[0, 4:] = 0
    return ids, mask


@pytest.mark.parametrize("name", ["llama-tiny", "gpt2"])
def test_decoder_only_compiled_equals_eager(name):
    """llama-tiny: RoPE, GQA, RMSNorm, SwiGLU, a left-padded batch; gpt2: learned positions."""
    torch.manual_seed(0)
    model = create_model(name, num_layers=2, d_model=64, num_heads=4, d_ff=128, vocab_size=100,
                         **({"num_kv_heads": 2} if name == "llama-tiny" else {})).eval()
    ids, mask = padded_batch(100, pad_left=True)
    mask = mask if name == "llama-tiny" else None
    eager = model.generate(ids, 20, mask, eos_token_id=None)
    full_mask = None if mask is None else torch.cat([mask, torch.ones(2, 19, dtype=mask.dtype)], 1)
    assert greedy_margin(model, eager, ids.shape[1], attention_mask=full_mask) > MIN_MARGIN
    before = model_state(model)
    compiled = model.generate(ids, 20, mask, eos_token_id=None, compile=True)
    assert_unchanged(model, before, "generate(compile=True)")
    assert torch.equal(compiled, eager)
    streamed = torch.stack(list(model.stream(ids, 20, mask, eos_token_id=None, compile=True)), dim=1)
    assert torch.equal(streamed, eager[:, ids.shape[1]:])
    # The parameters are inputs of the graph, not baked-in constants: new weights are used.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(-1.5)
    changed = model.generate(ids, 20, mask, eos_token_id=None)
    assert not torch.equal(changed, eager)
    assert torch.equal(model.generate(ids, 20, mask, eos_token_id=None, compile=True), changed)


def test_static_cache_is_rounded_up_and_prompt_runs_through_it():
    model = create_model("gpt2", num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=50).eval()
    with torch.inference_mode():
        _, _, state = model._start_generation(torch.tensor([[1, 2, 3]]), None, 10, compile=True)
    assert isinstance(state.cache.layers[0], StaticLayerCache)
    assert state.cache.layers[0].max_len == 64 and int(state.cache.offset) == 3


@pytest.mark.parametrize("name", ["t5-small", "transformer-base"])
def test_encoder_decoder_compiled_equals_eager(name):
    """T5: relative position bias over the static cache; Transformer: sinusoidal positions.
    The source is padded (cross-attention mask)."""
    torch.manual_seed(0)
    model = create_model(name, num_layers=2, d_model=64, num_heads=4, head_dim=16, d_ff=128, vocab_size=100).eval()
    ids, mask = padded_batch(100, pad_left=False)
    eager = model.generate(ids, 20, mask, eos_token_id=None)
    assert greedy_margin(model, eager, 1, input_ids=ids, attention_mask=mask) > MIN_MARGIN
    assert torch.equal(model.generate(ids, 20, mask, eos_token_id=None, compile=True), eager)


def test_beam_search_compiled_equals_eager():
    torch.manual_seed(0)
    model = create_model("t5-small", num_layers=1, d_model=32, num_heads=2, head_dim=16, d_ff=64,
                         vocab_size=60).eval()
    ids, mask = padded_batch(60, pad_left=False)
    eager = model.generate(ids, 12, mask, num_beams=3, length_penalty=0.8)
    assert torch.equal(model.generate(ids, 12, mask, num_beams=3, length_penalty=0.8, compile=True), eager)


def test_compile_must_be_a_bool():
    model = create_model("gpt2", num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=50).eval()
    with pytest.raises(TypeError, match=r"compile must be a bool, got str \('yes'\)"):
        model.generate(torch.tensor([[1, 2]]), 3, compile="yes")
    with pytest.raises(TypeError, match="compile must be a bool"):
        model.generate(torch.tensor([[1, 2]]), 3, num_beams=2, compile=1)
