"""When may a layer overwrite an intermediate tensor in place?

Two inference-time savings write into a tensor a sub-module just returned instead of allocating
a new one: the feed-forward's activation (``FeedForward``) and the residual addition
(``TransformerBlock``). A fresh ``(tokens, d_ff)`` buffer per layer is the largest allocation of a
forward pass, and on the CPU its page faults cost more than the activation itself.

Overwriting is only invisible when nobody else holds that tensor. Autograd is handled by the
callers (they save nothing the write would corrupt); the other holder is a *hook*: a forward hook
registered by the user (on the module or globally) receives the very output tensor, and must see
its values, not what a later in-place write made of them. So the in-place path is taken only
for modules without hooks; with a hook, the layer allocates as usual. The result is the same.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules import module as _module

__all__ = ["output_is_private"]


def output_is_private(*modules: nn.Module) -> bool:
    """True when no hook can hold the outputs of ``modules``, so they may be overwritten in place.

    >>> layer = nn.Linear(2, 2)
    >>> output_is_private(layer)
    True
    >>> handle = layer.register_forward_hook(lambda module, args, output: None)
    >>> output_is_private(layer)
    False
    >>> handle.remove()
    """
    if _module._global_forward_hooks or _module._global_backward_hooks:
        return False
    return not any(m._forward_hooks or m._backward_hooks for m in modules)
