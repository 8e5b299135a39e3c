"""Look inside a model: every layer's hidden states and every head's attention weights.

Both work on any model of the package (decoder-only, encoder-only, with or without a head) by
forward hooks on its ``TransformerStack``: the model runs its own ``forward`` with the inputs
given, and nothing about it changes -- the hooks are removed afterwards, and a hook that reads
attention weights recomputes them on the eager path from the very arguments the layer got.
"""

from __future__ import annotations

__all__ = ["find_stack", "layer_states", "attention_maps"]


def find_stack(model):
    """The model's first ``TransformerStack`` (the decoder of a GPT, the encoder of a BERT).

    >>> from llmarch import create_model
    >>> model = create_model("gpt2", num_layers=2, d_model=16, num_heads=2, d_ff=32, vocab_size=9)
    >>> len(find_stack(model).layers)
    2
    """
    from ..models.stack import TransformerStack

    for module in model.modules():
        if isinstance(module, TransformerStack):
            return module
    raise TypeError(f"model must contain a TransformerStack, got {type(model).__name__}")


def layer_states(model, *args, **kwargs):
    """``model(*args, **kwargs)`` run once; returns the residual stream entering the first layer and
    leaving every layer, ``(num_layers + 1, batch, seq, d_model)`` (before any final norm).

    >>> import torch
    >>> from llmarch import create_model
    >>> model = create_model("gpt2", num_layers=2, d_model=16, num_heads=2, d_ff=32, vocab_size=9).eval()
    >>> layer_states(model, torch.tensor([[1, 2, 3]])).shape
    torch.Size([3, 1, 3, 16])
    """
    import torch

    stack, states = find_stack(model), []
    handles = [stack.register_forward_pre_hook(lambda module, args: states.append(args[0].detach().clone()))]
    handles += [layer.register_forward_hook(lambda module, args, out: states.append(out.detach().clone()))
                for layer in stack.layers]
    _run_once(model, handles, args, kwargs)
    return torch.stack(states)


def attention_maps(model, *args, **kwargs):
    """``model(*args, **kwargs)`` run once; returns every layer's self-attention weights
    ``(num_layers, batch, heads, q_len, k_len)`` (each row sums to 1; masked entries are 0).

    >>> import torch
    >>> from llmarch import create_model
    >>> model = create_model("gpt2", num_layers=2, d_model=16, num_heads=2, d_ff=32, vocab_size=9).eval()
    >>> maps = attention_maps(model, torch.tensor([[1, 2, 3]]))
    >>> maps.shape, torch.allclose(maps.sum(-1), torch.ones(2, 1, 2, 3)), bool(maps[..., 0, 1:].eq(0).all())
    (torch.Size([2, 1, 2, 3, 3]), True, True)
    """
    import torch

    stack, maps = find_stack(model), []

    def read(module, args, kwargs, out):  # the same call again, asking for the weights
        maps.append(module.forward(*args, **{**kwargs, "return_weights": True})[1].detach())

    handles = [layer.self_attn.register_forward_hook(read, with_kwargs=True) for layer in stack.layers]
    _run_once(model, handles, args, kwargs)
    return torch.stack(maps)


def _run_once(model, handles: list, args: tuple, kwargs: dict) -> None:
    """``model(*args, **kwargs)`` without gradients, then remove ``handles`` (also on an error)."""
    import torch

    try:
        with torch.no_grad():
            model(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
