"""Memory layout of weight matrices for one-token decoding on the CPU.

A decoding step multiplies a single row by every weight matrix: ``x (1, in) @ W.T``. PyTorch
stores an ``nn.Linear`` weight as ``(out, in)``, row-major. On some CPUs (oneDNN/MKL; measured on
a 2-core AMD EPYC with ``python -m llmarch bench generate``) the fp32 kernel for this product runs
faster when the same matrix is stored *column-major*, i.e. as the transpose of an ``(in, out)``
row-major tensor -- the layout of GPT-2's original ``Conv1D`` weights: 5.5 ms instead of 9.1 ms for
GPT-2's 50257 x 768 LM head, about 10% faster for the layers' matrices. In bf16 it is the other
way round. Which layout wins depends on the CPU and the BLAS build, so nothing applies it
behind the user's back: it is opt-in (``model.prepare_for_decoding()``), and the benchmark
reports the model with and without it. Shapes, values, names and weight tying stay the same;
only the strides change, so state dicts, ``load_state_dict`` and optimisers are unaffected, and
results agree with the row-major layout to rounding (not bit for bit: another kernel sums in
another order).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["use_decoding_layout"]


def _is_column_major(weight: torch.Tensor) -> bool:
    return weight.dim() == 2 and weight.stride() == (1, weight.shape[0])


# --8<-- [start:decoding_layout]
def use_decoding_layout(model: nn.Module) -> nn.Module:
    """Store each CPU ``nn.Linear`` weight in the layout its one-row product is fastest with.

    fp32 weights become column-major, other dtypes row-major; weights on other devices are left
    alone. Idempotent and cheap when nothing needs to change. Opt-in: ``generate`` never calls
    it (``model.prepare_for_decoding()`` does).

    >>> layer = nn.Linear(3, 4)
    >>> before = layer.weight.detach().clone()
    >>> _ = use_decoding_layout(layer)
    >>> layer.weight.stride(), torch.equal(layer.weight, before)
    ((1, 4), True)
    """
    # Outside inference mode, so that parameters never become inference tensors (training on
    # them afterwards must still work).
    with torch.inference_mode(False), torch.no_grad():
        for module in model.modules():
            if not isinstance(module, nn.Linear) or module.weight.device.type != "cpu":
                continue
            weight = module.weight
            want_column_major = weight.dtype == torch.float32
            if want_column_major and not _is_column_major(weight):
                weight.data = weight.data.t().contiguous().t()
            elif not want_column_major and not weight.is_contiguous():
                weight.data = weight.data.contiguous()
    return model
# --8<-- [end:decoding_layout]
