"""Normalisation layers: RMSNorm, and a factory that names LayerNorm / RMSNorm by string."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import check_choice, check_features, check_float, check_positive_int

__all__ = ["RMSNorm", "make_norm"]


# --8<-- [start:rmsnorm]
class RMSNorm(nn.Module):
    r"""Root-mean-square normalisation (Zhang & Sennrich, 2019): $x / \sqrt{\mathrm{mean}(x^2) + \epsilon} \cdot g$.

    No mean subtraction and no bias (T5, LLaMA). The statistic is computed in fp32 so that
    bf16/fp16 activations keep their precision.

    >>> norm = RMSNorm(4)
    >>> y = norm(torch.tensor([[3.0, -3.0, 3.0, -3.0]]))
    >>> y
    tensor([[ 1., -1.,  1., -1.]], grad_fn=<MulBackward0>)
    """

    def __init__(self, d_model: int, eps: float = 1e-6) -> None:
        super().__init__()
        check_positive_int("d_model", d_model)
        self.eps = check_float("eps", eps, non_negative=True)
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: Tensor) -> Tensor:
        # One fused op does x / sqrt(mean(x^2) + eps) (here in fp32); the weight is applied in
        # the input's dtype, as T5 and LLaMA do.
        check_features("x", x, self.weight, self.weight.shape[0])
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)
        return self.weight * normed.to(x.dtype)
# --8<-- [end:rmsnorm]


def make_norm(kind: str, d_model: int, eps: float, *, bias: bool = True) -> nn.Module:
    """``"layernorm"`` -> ``torch.nn.LayerNorm``, ``"rmsnorm"`` -> ``RMSNorm``.

    >>> make_norm("rmsnorm", 8, 1e-6)
    RMSNorm()
    """
    check_choice("norm", kind, ("layernorm", "rmsnorm"))
    check_float("eps", eps, non_negative=True)
    if kind == "rmsnorm":
        return RMSNorm(d_model, eps)
    return nn.LayerNorm(d_model, eps=eps, bias=bias)
