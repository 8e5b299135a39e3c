"""Key/value caches for incremental decoding.

A decoder-only model may reuse the keys and values of earlier tokens because position ``i``
depends only on positions ``<= i`` (the causal mask): appending a token never changes the past.
Each attention layer owns one *layer cache*; ``KVCache`` holds one per layer.

* ``DynamicLayerCache`` grows as tokens arrive (capacity doubles, so appending costs
  amortised O(new tokens) copies, not a re-copy of the whole past each step).
* ``StaticLayerCache`` is preallocated to ``max_len``; its fill level lives in a tensor and
  its shapes never change, so a decoding step can be captured by ``torch.compile`` /
  CUDA graphs. It returns the whole buffer; the causal mask with ``offset`` hides unused slots.
* Cross-attention stores the encoder's keys/values once (``DynamicLayerCache.set_static``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .checks import check_bool, check_device, check_dtype, check_indices, check_ndim, check_positive_int

__all__ = ["DynamicLayerCache", "StaticLayerCache", "KVCache", "check_cache"]

_SHAPE = "(batch, kv_heads, seq, head_dim)"


def _check_kv(key: Tensor, value: Tensor) -> None:
    check_ndim("key", key, 4, _SHAPE)
    check_ndim("value", value, 4, _SHAPE)
    if key.shape[:3] != value.shape[:3]:
        raise ValueError(
            f"key and value must agree in (batch, kv_heads, seq), got {tuple(key.shape)} and {tuple(value.shape)}"
        )
    if not key.dtype.is_floating_point:
        raise TypeError(f"key must be a floating-point tensor, got {key.dtype}")
    if value.dtype != key.dtype:
        raise TypeError(f"value must have the dtype of key ({key.dtype}), got {value.dtype}")
    if value.device != key.device:
        raise ValueError(f"value must be on the device of key ({key.device}), got {value.device}")


def _check_like_cache(key: Tensor, value: Tensor, keys: Tensor, values: Tensor) -> None:
    """New keys/values must match the stored ones in batch, heads, head size, dtype and device."""
    for name, new, stored in (("key", key, keys), ("value", value, values)):
        expected = (stored.shape[0], stored.shape[1], stored.shape[3])
        if (new.shape[0], new.shape[1], new.shape[3]) != expected:
            raise ValueError(
                f"{name} must have (batch, kv_heads, head_dim) = {expected} like the cache, got shape {tuple(new.shape)}"
            )
        if new.dtype != stored.dtype:
            raise TypeError(f"{name} must have the cache's dtype {stored.dtype}, got {new.dtype}")
        if new.device != stored.device:
            raise ValueError(f"{name} must be on the cache's device {stored.device}, got {new.device}")


# --8<-- [start:dynamic_cache]
class DynamicLayerCache:
    """A growing key/value store for one attention layer.

    >>> cache = DynamicLayerCache()
    >>> k, v = cache.update(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))   # prompt: 3 tokens
    >>> k, v = cache.update(torch.ones(1, 2, 1, 4), torch.ones(1, 2, 1, 4))     # one new token
    >>> cache.offset, tuple(k.shape)
    (4, (1, 2, 4, 4))
    """

    def __init__(self) -> None:
        self._keys: Tensor | None = None
        self._values: Tensor | None = None
        self.length = 0
        self.is_static_context = False

    @property
    def offset(self) -> int:
        """Number of tokens already stored (the position of the next token)."""
        return self.length

    def update(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``key``/``value`` ``(batch, kv_heads, new, head_dim)``; return all stored so far."""
        _check_kv(key, value)
        if self._keys is not None:
            _check_like_cache(key, value, self._keys, self._values)
        new = key.shape[2]
        end = self.length + new
        if self._keys is None or end > self._keys.shape[2]:
            self._grow(key, value, end)
        self._keys[:, :, self.length:end] = key
        self._values[:, :, self.length:end] = value
        self.length = end
        return self._keys[:, :, :end], self._values[:, :, :end]

    def _grow(self, key: Tensor, value: Tensor, needed: int) -> None:
        capacity = max(needed, 2 * (0 if self._keys is None else self._keys.shape[2]), 16)
        keys = key.new_empty(*key.shape[:2], capacity, key.shape[3])
        values = value.new_empty(*value.shape[:2], capacity, value.shape[3])
        if self._keys is not None:
            keys[:, :, : self.length] = self._keys[:, :, : self.length]
            values[:, :, : self.length] = self._values[:, :, : self.length]
        self._keys, self._values = keys, values

    def set_static(self, key: Tensor, value: Tensor) -> None:
        """Store keys/values computed once (cross-attention over the encoder output)."""
        _check_kv(key, value)
        self._keys, self._values, self.length = key, value, key.shape[2]
        self.is_static_context = True

    def get(self) -> tuple[Tensor, Tensor]:
        """All stored keys and values ``(batch, kv_heads, length, head_dim)``."""
        if self._keys is None:
            raise ValueError("the cache must hold keys and values (call update() or set_static() first), "
                             "got an empty cache")
        return self._keys[:, :, : self.length], self._values[:, :, : self.length]

    def reorder(self, indices: Tensor) -> None:
        """Select batch rows in place (beam search keeps the caches of surviving beams).

        ``indices`` is a 1-D integer tensor of rows in ``[0, batch)``; rows may repeat.
        """
        if self._keys is not None:
            check_indices("indices", indices, self._keys.shape[0])
            self._select(indices)

    def _select(self, indices: Tensor) -> None:
        """``reorder`` without the argument check."""
        if self._keys is not None:
            self._keys = self._keys.index_select(0, indices)
            self._values = self._values.index_select(0, indices)
# --8<-- [end:dynamic_cache]


# --8<-- [start:static_cache]
class StaticLayerCache:
    """A preallocated key/value store of fixed shape ``(batch, kv_heads, max_len, head_dim)``.

    Writes go through ``index_copy_`` at a position held in a tensor, and ``update``
    always returns the full buffers, so no shape changes from step to step. Attention over the
    buffers must hide the slots after the fill level: ``MultiHeadAttention``
    does so with the causal mask (``offset``) or, without one, with ``filled_mask``. A
    user mask or bias for such a step spans all ``max_len`` slots.

    >>> cache = StaticLayerCache(1, 2, 8, 4)
    >>> k, v = cache.update(torch.ones(1, 2, 3, 4), torch.ones(1, 2, 3, 4))
    >>> int(cache.offset), tuple(k.shape)
    (3, (1, 2, 8, 4))
    >>> cache.update(torch.ones(1, 2, 6, 4), torch.ones(1, 2, 6, 4))
    Traceback (most recent call last):
    ...
    ValueError: static cache overflow: max_len is 8, 3 tokens are stored, got 6 more
    """

    def __init__(self, batch_size: int, num_kv_heads: int, max_len: int, head_dim: int, *,
                 dtype: torch.dtype = torch.float32, device=None) -> None:
        for name, value in (("batch_size", batch_size), ("num_kv_heads", num_kv_heads),
                            ("max_len", max_len), ("head_dim", head_dim)):
            check_positive_int(name, value)
        check_dtype("dtype", dtype)
        device = check_device("device", device)
        shape = (batch_size, num_kv_heads, max_len, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.position = torch.zeros((), dtype=torch.long, device=device)  # fill level
        self.is_static_context = False

    @property
    def max_len(self) -> int:
        return self.keys.shape[2]

    @property
    def offset(self) -> Tensor:
        """Number of tokens already stored, as a 0-dim tensor (no host sync)."""
        return self.position.clone()

    def update(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Write ``key``/``value`` ``(batch, kv_heads, new, head_dim)`` at the fill level."""
        _check_kv(key, value)
        _check_like_cache(key, value, self.keys, self.values)
        new = key.shape[2]
        if not torch.compiler.is_compiling():  # a cheap guard in eager mode
            stored = int(self.position)
            if stored + new > self.max_len:
                raise ValueError(
                    f"static cache overflow: max_len is {self.max_len}, {stored} tokens are stored, got {new} more"
                )
        index = self.position + torch.arange(new, device=self.position.device)
        self.keys.index_copy_(2, index, key)
        self.values.index_copy_(2, index, value)
        self.position.add_(new)
        return self.keys, self.values

    def filled_mask(self) -> Tensor:
        """Bool ``(1, 1, 1, max_len)``: ``True`` at the slots written so far (the rest hold no token).

        >>> cache = StaticLayerCache(1, 1, 4, 2)
        >>> _ = cache.update(torch.ones(1, 1, 3, 2), torch.ones(1, 1, 3, 2))
        >>> cache.filled_mask().int().flatten().tolist()
        [1, 1, 1, 0]
        """
        slots = torch.arange(self.max_len, device=self.position.device)
        return (slots < self.position)[None, None, None, :]

    def reorder(self, indices: Tensor) -> None:
        """Select batch rows in place (beam search); ``indices`` keeps the batch size (rows may repeat)."""
        check_indices("indices", indices, self.keys.shape[0])
        if indices.shape[0] != self.keys.shape[0]:
            raise ValueError(f"indices must select {self.keys.shape[0]} rows (a static cache keeps its batch size), "
                             f"got {indices.shape[0]}")
        self._select(indices)

    def _select(self, indices: Tensor) -> None:
        """``reorder`` without the argument check."""
        self.keys.copy_(self.keys.index_select(0, indices))
        self.values.copy_(self.values.index_select(0, indices))

    def reset(self) -> None:
        """Forget every stored token (the buffers are kept)."""
        self.position.zero_()
# --8<-- [end:static_cache]


class KVCache:
    """One layer cache per attention layer of a model (plus cross-attention caches).

    Use ``dynamic`` for ordinary generation and ``static`` for a fixed-shape cache.

    >>> cache = KVCache.dynamic(num_layers=2)
    >>> len(cache), cache.offset
    (2, 0)
    """

    def __init__(self, layers: list, cross_layers: list | None = None) -> None:
        self.layers = list(layers)
        self.cross_layers = list(cross_layers) if cross_layers is not None else None

    @classmethod
    def dynamic(cls, num_layers: int, *, cross_attention: bool = False) -> "KVCache":
        check_positive_int("num_layers", num_layers)
        check_bool("cross_attention", cross_attention)
        cross = [DynamicLayerCache() for _ in range(num_layers)] if cross_attention else None
        return cls([DynamicLayerCache() for _ in range(num_layers)], cross)

    @classmethod
    def static(cls, num_layers: int, *, batch_size: int, num_kv_heads: int, max_len: int,
               head_dim: int, dtype: torch.dtype = torch.float32, device=None,
               cross_attention: bool = False) -> "KVCache":
        check_positive_int("num_layers", num_layers)
        check_bool("cross_attention", cross_attention)
        layers = [StaticLayerCache(batch_size, num_kv_heads, max_len, head_dim, dtype=dtype, device=device)
                  for _ in range(num_layers)]
        cross = [DynamicLayerCache() for _ in range(num_layers)] if cross_attention else None
        return cls(layers, cross)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int):
        return self.layers[index]

    @property
    def offset(self) -> int | Tensor:
        """Tokens already stored (read from the first layer)."""
        return self.layers[0].offset

    def reorder(self, indices: Tensor) -> None:
        """Select batch rows of every layer cache (beam search); ``indices`` is checked once."""
        layers = self.layers + (self.cross_layers or [])
        filled = [layer for layer in layers if not isinstance(layer, DynamicLayerCache) or layer._keys is not None]
        if filled:
            filled[0].reorder(indices)
        for layer in filled[1:]:
            layer._select(indices)


def check_cache(cache: object, num_layers: int, *, cross_attention: bool = False) -> KVCache | None:
    """Raise unless ``cache`` is ``None`` or a ``KVCache`` for ``num_layers`` layers (with cross-attention
    caches when ``cross_attention``): what a model's ``forward`` takes.

    >>> check_cache(KVCache.dynamic(2), 3)
    Traceback (most recent call last):
    ...
    ValueError: cache must hold one layer cache per layer (3), got 2
    """
    if cache is None:
        return None
    if not isinstance(cache, KVCache):
        raise TypeError(f"cache must be a KVCache (KVCache.dynamic(num_layers) or KVCache.static(...)), "
                        f"got {type(cache).__name__}")
    if len(cache) != num_layers:
        raise ValueError(f"cache must hold one layer cache per layer ({num_layers}), got {len(cache)}")
    if cross_attention and (cache.cross_layers is None or len(cache.cross_layers) != num_layers):
        got = "none" if cache.cross_layers is None else len(cache.cross_layers)
        raise ValueError(f"cache must hold one cross-attention cache per decoder layer ({num_layers}; "
                         f"KVCache.dynamic(num_layers, cross_attention=True)), got {got}")
    return cache
