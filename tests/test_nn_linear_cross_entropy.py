"""``linear_cross_entropy``: the LM head + cross-entropy in one step equals the two PyTorch calls (value and
gradients), on every path; ``DecoderOnlyLM(targets=...)`` uses it; the trainer's AdamW is the fused one."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmarch import create_model
from llmarch.nn.linear_cross_entropy import linear_cross_entropy
from llmarch.training.optim import build_optimizer


def _inputs(n=13, d=8, vocab=29, dtype=torch.float32, seed=0, ignored=(2, 7)):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, d, generator=g, dtype=dtype)
    weight = torch.randn(vocab, d, generator=g, dtype=dtype) * 0.5
    targets = torch.randint(vocab, (n,), generator=g)
    targets[list(ignored)] = -100
    return hidden, weight, targets


def _reference(hidden, weight, targets):
    """PyTorch's two calls, with autograd's own gradients."""
    h, w = hidden.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    loss = F.cross_entropy(F.linear(h, w).float(), targets)
    loss.backward()
    return loss.detach(), h.grad, w.grad


@pytest.mark.parametrize("shape", [(1, 1, 2), (13, 8, 29), (64, 16, 300)])
def test_fused_loss_and_gradients_equal_pytorch(shape):
    n, d, vocab = shape
    hidden, weight, targets = _inputs(n, d, vocab, ignored=() if n < 8 else (2, 7))
    h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    loss = linear_cross_entropy(h, w, targets)
    assert loss.grad_fn is not None and "LinearCrossEntropy" in type(loss.grad_fn).__name__  # the fused path
    loss.backward()
    ref_loss, ref_h, ref_w = _reference(hidden, weight, targets)
    torch.testing.assert_close(loss, ref_loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h.grad, ref_h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w.grad, ref_w, atol=1e-5, rtol=1e-5)


def test_incoming_gradient_scales_both_gradients():
    hidden, weight, targets = _inputs()
    h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    (linear_cross_entropy(h, w, targets) / 4).backward()
    _, ref_h, ref_w = _reference(hidden, weight, targets)
    torch.testing.assert_close(h.grad, ref_h / 4, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(w.grad, ref_w / 4, atol=1e-6, rtol=1e-5)


def test_only_the_wanted_gradient_is_computed():
    hidden, weight, targets = _inputs()
    h = hidden.clone().requires_grad_()
    linear_cross_entropy(h, weight, targets).backward()
    torch.testing.assert_close(h.grad, _reference(hidden, weight, targets)[1], atol=1e-5, rtol=1e-5)
    assert weight.grad is None


def test_all_targets_ignored_gives_zero_and_zero_gradients():
    hidden, weight, _ = _inputs()
    h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    loss = linear_cross_entropy(h, w, torch.full((hidden.shape[0],), -100))
    loss.backward()
    assert loss.item() == 0.0 and not h.grad.any() and not w.grad.any()


def test_tied_weight_gets_both_gradients():
    """Embedding lookup and head share one matrix: its gradient is the sum of both uses."""
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(31, 8, generator=g)
    ids, targets = torch.randint(31, (12,), generator=g), torch.randint(31, (12,), generator=g)
    grads = []
    for fused in (True, False):
        w = weight.clone().requires_grad_()
        hidden = torch.tanh(F.embedding(ids, w))
        loss = linear_cross_entropy(hidden, w, targets) if fused else F.cross_entropy(hidden @ w.T, targets)
        loss.backward()
        grads.append(w.grad)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


def test_plain_paths_no_grad_and_autocast_agree():
    hidden, weight, targets = _inputs()
    ref = _reference(hidden, weight, targets)[0]
    with torch.no_grad():
        torch.testing.assert_close(linear_cross_entropy(hidden, weight, targets), ref, atol=1e-6, rtol=1e-6)
    h = hidden.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 matmul: the bf16 tolerance
        loss = linear_cross_entropy(h.bfloat16(), weight, targets)
    assert loss.dtype == torch.float32 and "LinearCrossEntropy" not in type(loss.grad_fn).__name__
    torch.testing.assert_close(loss, ref, atol=3e-2, rtol=1e-2)


def test_bf16_inputs_match_pytorch_in_bf16():
    hidden, weight, targets = _inputs(n=32, d=16, vocab=100, dtype=torch.bfloat16)
    h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    loss = linear_cross_entropy(h, w, targets)
    loss.backward()
    ref_loss, ref_h, ref_w = _reference(hidden, weight, targets)
    assert loss.dtype == torch.float32 and h.grad.dtype == torch.bfloat16
    torch.testing.assert_close(loss, ref_loss, atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(h.grad, ref_h, atol=1e-2, rtol=2e-2)
    torch.testing.assert_close(w.grad, ref_w, atol=1e-2, rtol=2e-2)


def test_second_backward_raises_instead_of_replaying():
    hidden, weight, targets = _inputs()
    loss = linear_cross_entropy(hidden.requires_grad_(), weight, targets)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="call backward once per forward"):
        loss.backward()


@pytest.mark.parametrize(("args", "error", "message"), [
    ((torch.zeros(3, 4), torch.zeros(5, 4), torch.tensor([0, 5, 1])), ValueError,
     r"targets must be ids in \[0, 5\) or -100 \(ignored\), got 5"),
    ((torch.zeros(3, 4), torch.zeros(5, 4), torch.tensor([0, 1])), ValueError,
     r"targets must have one id per row of hidden \(3\), got 2"),
    ((torch.zeros(3, 4), torch.zeros(5, 3), torch.tensor([0, 1, 2])), ValueError,
     r"weight must be \(vocab, d_model\) with d_model = 4"),
    ((torch.zeros(3, 4), torch.zeros(5, 4, dtype=torch.float64), torch.tensor([0, 1, 2])), ValueError,
     r"weight must have the dtype of hidden \(torch.float32\), got torch.float64"),
    ((torch.zeros(3, 4), torch.zeros(5, 4), torch.tensor([0.0, 1.0, 2.0])), TypeError,
     r"targets must be an integer tensor"),
    ((torch.zeros(2, 3, 4), torch.zeros(5, 4), torch.tensor([0, 1])), ValueError,
     r"hidden must have shape \(tokens, d_model\) \(2 dims\), got shape \(2, 3, 4\)"),
])
def test_bad_arguments_are_named(args, error, message):
    with pytest.raises(error, match=message):
        linear_cross_entropy(*args)


def test_decoder_only_targets_give_the_loss_of_its_logits():
    torch.manual_seed(0)
    model = create_model("gpt2", num_layers=2, d_model=32, num_heads=4, d_ff=64, vocab_size=50, dropout=0.0,
                         attention_dropout=0.0)
    ids = torch.randint(50, (3, 9))
    targets = ids[:, 1:].clone()
    targets[0, -2:] = -100
    loss = model(ids[:, :-1], targets=targets)
    loss.backward()
    fused_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    logits = model(ids[:, :-1])
    reference = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    reference.backward()
    torch.testing.assert_close(loss, reference, atol=1e-5, rtol=1e-5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(fused_grads[name], p.grad, atol=1e-5, rtol=1e-4, msg=name)
    with pytest.raises(ValueError, match=r"targets must have the shape of input_ids \(3, 8\), got \(3, 9\)"):
        model(ids[:, :-1], targets=ids)


def test_decoder_only_targets_with_a_head_hook_compute_the_logits_the_hook_sees():
    model = create_model("gpt2", num_layers=1, d_model=16, num_heads=2, d_ff=32, vocab_size=20, dropout=0.0,
                         attention_dropout=0.0)
    seen = []
    handle = model.lm_head.register_forward_hook(lambda module, args, output: seen.append(output.shape))
    ids = torch.randint(20, (2, 5))
    loss = model(ids[:, :-1], targets=ids[:, 1:])
    handle.remove()
    assert seen == [torch.Size([2, 4, 20])]
    torch.testing.assert_close(loss, F.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten()))


def test_hugging_face_gpt2_loss_equals_ours_with_targets():
    transformers = pytest.importorskip("transformers")
    from llmarch.interop.gpt2 import config_to_hf, state_dict_from_hf

    torch.manual_seed(0)
    ours = create_model("gpt2", num_layers=2, d_model=32, num_heads=4, d_ff=64, vocab_size=60, max_positions=16,
                        dropout=0.0, attention_dropout=0.0, bos_token_id=None, eos_token_id=None)
    hf_config = {k: v for k, v in config_to_hf(ours).items() if k not in ("architectures", "model_type")}
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**hf_config)).eval()
    ours.load_state_dict(state_dict_from_hf(hf.state_dict(), ours.config), strict=True)
    ours.eval()
    ids = torch.randint(60, (2, 10))
    targets = torch.cat([ids[:, 1:], torch.full((2, 1), -100)], dim=1)  # HF shifts labels = ids by one
    torch.testing.assert_close(ours(ids, targets=targets), hf(input_ids=ids, labels=ids).loss, atol=1e-5, rtol=1e-5)


def test_trainer_adamw_is_fused_for_plain_cpu_parameters():
    model = torch.nn.Linear(3, 2)
    assert build_optimizer(model, lr=1e-3).defaults["fused"] is True
    assert build_optimizer(model, lr=1e-3, fused=False).defaults["fused"] is False
