"""Position-wise feed-forward networks: plain (ReLU, GELU) and gated (SwiGLU, GEGLU)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import check_bool, check_choice, check_features, check_positive_int, check_probability
from .inplace import output_is_private

__all__ = ["FeedForward", "ACTIVATIONS"]

ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,  # exact (erf) GELU: BERT
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2, T5 v1.1 ("gelu_new")
    "silu": F.silu,  # a.k.a. swish: SwiGLU in LLaMA
}
# The same functions overwriting their input. Without autograd (inference), and when no hook
# holds the projection's output (``llmarch.nn.inplace``), the feed-forward uses them: a fresh
# (tokens, d_ff) buffer per layer is the largest allocation of a forward pass, and on the CPU
# its page faults cost more than the activation itself (BERT-base, batch 8 x 128: about 5% of
# the forward, measured by ``python -m llmarch bench encoder`` on a 2-core AMD EPYC).
IN_PLACE_ACTIVATIONS = {
    "relu": torch.relu_,
    "gelu": torch.ops.aten.gelu_,
    "gelu_tanh": lambda x: torch.ops.aten.gelu_(x, approximate="tanh"),
    "silu": lambda x: F.silu(x, inplace=True),
}


# --8<-- [start:feedforward]
class FeedForward(nn.Module):
    r"""``down(act(up(x)))``, or gated: ``down(act(gate(x)) * up(x))`` (Shazeer, 2020).

    SwiGLU is ``activation="silu", gated=True``; GEGLU is ``activation="gelu", gated=True``.

    Args:
        d_model: input/output size.
        d_ff: hidden size.
        activation: ``"relu"``, ``"gelu"``, ``"gelu_tanh"`` or ``"silu"``.
        gated: use a gated linear unit (a third matrix, ``gate``).
        bias: biases in the linear layers.
        dropout: dropout on the hidden activations (training only).

    Shapes: ``(batch, seq, d_model) -> (batch, seq, d_model)``.

    >>> import torch
    >>> ffn = FeedForward(8, 32, activation="silu", gated=True)
    >>> ffn(torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 8])
    """

    def __init__(self, d_model: int, d_ff: int, *, activation: str = "gelu", gated: bool = False,
                 bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        check_positive_int("d_model", d_model)
        check_positive_int("d_ff", d_ff)
        self.activation_name = check_choice("activation", activation, tuple(ACTIVATIONS))
        self.activation = ACTIVATIONS[activation]
        check_bool("gated", gated)
        self.up_proj = nn.Linear(d_model, d_ff, bias=bias)
        self.gate_proj = nn.Linear(d_model, d_ff, bias=bias) if gated else None
        self.down_proj = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(check_probability("dropout", dropout))

    def forward(self, x: Tensor) -> Tensor:
        check_features("x", x, self.up_proj.weight, self.up_proj.in_features)
        first = self.gate_proj if self.gate_proj is not None else self.up_proj
        hidden = first(x)
        # Autograd keeps the pre-activation, and a hook may hold it: then no in-place write.
        if (torch.is_grad_enabled() and hidden.requires_grad) or not output_is_private(first):
            hidden = self.activation(hidden)
            if self.gate_proj is not None:
                hidden = hidden * self.up_proj(x)
        else:
            hidden = IN_PLACE_ACTIVATIONS[self.activation_name](hidden)
            if self.gate_proj is not None:
                hidden.mul_(self.up_proj(x))
        return self.down_proj(self.dropout(hidden))
# --8<-- [end:feedforward]
