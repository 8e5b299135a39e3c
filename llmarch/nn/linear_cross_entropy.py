"""The LM head and its cross-entropy in one step, without the ``(tokens, vocab)`` log-probabilities.

A language model's loss is ``cross_entropy(hidden @ W^T, targets)``. Written as two calls, autograd keeps
the logits and their log-softmax for the backward pass, which builds two more ``(tokens, vocab)`` tensors
(the gradient of the log-probabilities, zeros first, and that of the logits). For GPT-2's 50,257 ids and
512 tokens each is 103 MB, and on the CPU a fresh buffer that size costs more in page faults than the
arithmetic done in it (writing one took 55-90 ms, writing it again 6-9 ms, on a 2-core AMD EPYC).

The gradient has a closed form: for the mean over the ``N`` counted targets,

$$
\\frac{\\partial L}{\\partial z_{ij}} = \\frac{\\mathrm{softmax}(z_i)_j - [j = y_i]}{N},
$$

so ``linear_cross_entropy`` computes the logits once, turns them *in place* into that gradient ``G`` and
multiplies it out at once: ``d hidden = G W`` and ``d W = G^T hidden``; the backward pass only scales the
two by the incoming gradient (1 for a loss). One ``(tokens, vocab)`` buffer instead of four, and ``d W``
is a fresh tensor that autograd adds the token embeddings' gradient into, in place, when the head is tied
to them (one more matrix-sized buffer saved).

The loss is the same number: the mean over the targets that are not ``ignore_index`` (0 when there are
none), computed in fp32. The fused path is taken for fp32, fp16 and bf16 inputs when a gradient is wanted,
outside ``torch.compile`` (which fuses the plain version by itself) and outside autocast; otherwise the
function is the plain ``mean_cross_entropy(F.linear(hidden, weight), targets)``. Its gradients are
computed in the forward pass and handed to autograd once: a second ``backward`` (``retain_graph=True``)
raises.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .checks import check_integer_tensor, check_ndim, check_same_device_dtype, check_tensor

__all__ = ["linear_cross_entropy", "mean_cross_entropy", "IGNORE_INDEX"]

IGNORE_INDEX = -100  # PyTorch's cross_entropy default
_FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)  # the loss is fp32, as the plain path's


def mean_cross_entropy(logits: Tensor, targets: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Cross-entropy of ``logits (n, vocab)`` (in fp32) against ``targets (n,)``, averaged over the targets
    that are not ``ignore_index``; 0 (not NaN, as a plain mean would give) when every target is ignored.

    >>> mean_cross_entropy(torch.zeros(2, 4), torch.tensor([-100, -100]))
    tensor(0.)
    """
    total = F.cross_entropy(logits.float(), targets, ignore_index=ignore_index, reduction="sum")
    return total / (targets != ignore_index).sum().clamp(min=1)


def _check(hidden: Tensor, weight: Tensor, targets: Tensor, ignore_index: int, autocast: bool) -> None:
    check_tensor("hidden", hidden)
    check_ndim("hidden", hidden, 2, "(tokens, d_model)")
    check_tensor("weight", weight)
    check_ndim("weight", weight, 2, "(vocab, d_model)")
    if not hidden.dtype.is_floating_point:
        raise TypeError(f"hidden must be a floating-point tensor, got {hidden.dtype}")
    if not autocast:  # (autocast casts both to its dtype: a bf16 hidden state meets the fp32 weight)
        check_same_device_dtype(("hidden", "weight"), (hidden, weight))
    elif not weight.dtype.is_floating_point:
        raise TypeError(f"weight must be a floating-point tensor, got {weight.dtype}")
    elif weight.device != hidden.device:
        raise ValueError(f"weight must be on the device of hidden ({hidden.device}), got {weight.device}")
    if weight.shape[1] != hidden.shape[1]:
        raise ValueError(f"weight must be (vocab, d_model) with d_model = {hidden.shape[1]} (that of hidden), "
                         f"got shape {tuple(weight.shape)}")
    if weight.shape[0] == 0:
        raise ValueError(f"weight must have at least one row (a vocabulary), got shape {tuple(weight.shape)}")
    check_integer_tensor("targets", targets, shape_doc="(tokens,)", ndims=1)
    if targets.shape[0] != hidden.shape[0]:
        raise ValueError(f"targets must have one id per row of hidden ({hidden.shape[0]}), got {targets.shape[0]}")
    if targets.device != hidden.device:
        raise ValueError(f"targets must be on the device of hidden ({hidden.device}), got {targets.device}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be an int, got {type(ignore_index).__name__} ({ignore_index!r})")
    if targets.numel() and not torch.compiler.is_compiling():  # a value check is a host sync
        vocab = weight.shape[0]
        bad = targets[(targets != ignore_index) & ((targets < 0) | (targets >= vocab))]
        if bad.numel():
            raise ValueError(f"targets must be ids in [0, {vocab}) or {ignore_index} (ignored), got {int(bad[0])}")


class _LinearCrossEntropy(torch.autograd.Function):
    """Loss in the forward pass, with both gradients; the backward pass scales them."""

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, targets: Tensor, ignore_index: int) -> Tensor:
        # (vocab, n): the one big buffer, reused for the gradient below. Transposed because on the CPU
        # ``weight @ hidden.T`` ran about 25% faster than ``hidden @ weight.T`` (2-core AMD EPYC, 512 x 768
        # by 768 x 50257), and the two gradient matmuls below are as fast in this layout.
        logits = (weight @ hidden.t()).float()
        counted = targets != ignore_index
        safe = targets.masked_fill(~counted, 0)[None, :]  # any valid id for the ignored columns
        target_logits = logits.gather(0, safe).squeeze(0)
        maxes = logits.amax(0, keepdim=True)
        exp = logits.sub_(maxes).exp_()  # in place: logits -> exp(logits - max)
        sums = exp.sum(0, keepdim=True)
        losses = (maxes + sums.log()).squeeze(0) - target_logits  # log-sum-exp minus the target's logit
        count = counted.sum().clamp(min=1).to(exp.dtype)
        loss = torch.where(counted, losses, 0.0).sum() / count
        # G^T = (softmax - onehot)^T / N on counted columns, 0 on ignored ones, still in place
        weights = counted.to(exp.dtype)[None, :] / count
        grad = exp.mul_(weights / sums).scatter_add_(0, safe, -weights).to(weight.dtype)
        ctx.grads = (grad.t() @ weight if ctx.needs_input_grad[0] else None,
                     grad @ hidden if ctx.needs_input_grad[1] else None)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss: Tensor):
        if ctx.grads is None:
            raise RuntimeError("linear_cross_entropy computes its gradients in the forward pass and hands them over "
                               "once: call backward once per forward (retain_graph=True cannot replay it)")
        grad_hidden, grad_weight = ctx.grads
        ctx.grads = None  # the tensors go to autograd (unshared, so a tied embedding's gradient adds in place)
        scaled = [None if g is None else g.mul_(grad_loss.to(g.dtype)) for g in (grad_hidden, grad_weight)]
        return scaled[0], scaled[1], None, None


# --8<-- [start:linear_cross_entropy]
def linear_cross_entropy(hidden: Tensor, weight: Tensor, targets: Tensor, *,
                         ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Mean cross-entropy of the logits ``hidden @ weight.T`` against ``targets``, without storing them.

    Equal to ``mean_cross_entropy(F.linear(hidden, weight), targets)`` (see the module docstring for
    how and when the fused path runs).

    Args:
        hidden: ``(tokens, d_model)`` floating-point: the LM head's input.
        weight: ``(vocab, d_model)``, the head's weight (same dtype and device).
        targets: ``(tokens,)`` integer ids in ``[0, vocab)``, or ``ignore_index`` (not counted).
        ignore_index: the id of targets that do not count.

    Returns:
        A scalar (fp32): the mean over the counted targets; 0 if there is none.

    Raises:
        ValueError / TypeError: for wrong ranks, dtypes or devices, disagreeing sizes, or a target that is
            neither an id nor ``ignore_index``.

    >>> hidden = torch.randn(5, 8, requires_grad=True)
    >>> weight = torch.randn(11, 8, requires_grad=True)
    >>> targets = torch.tensor([3, 0, -100, 10, 7])
    >>> loss = linear_cross_entropy(hidden, weight, targets)
    >>> reference = F.cross_entropy(hidden @ weight.T, targets)
    >>> torch.allclose(loss, reference)
    True
    >>> loss.backward()
    >>> torch.allclose(hidden.grad, torch.autograd.grad(reference, hidden)[0], atol=1e-6)
    True
    """
    autocast = torch.is_autocast_enabled(hidden.device.type) if isinstance(hidden, Tensor) else False
    _check(hidden, weight, targets, ignore_index, autocast)
    wants_grad = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    if (not wants_grad or torch.compiler.is_compiling() or autocast or hidden.dtype not in _FUSED_DTYPES
            or not hidden.numel()):
        return mean_cross_entropy(F.linear(hidden, weight), targets, ignore_index)
    return _LinearCrossEntropy.apply(hidden, weight, targets, ignore_index)
# --8<-- [end:linear_cross_entropy]
