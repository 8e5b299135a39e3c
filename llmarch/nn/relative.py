"""Position information as an additive attention bias: ALiBi and T5's relative position bias.

Both return a float tensor ``(1, heads, q_len, k_len)`` that is added to the attention scores
before the softmax. ``offset`` is the absolute position of the first query (the number of
tokens already in a KV cache), so incremental decoding sees the same bias as a full pass.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .checks import check_bool, check_integer_tensor, check_offset, check_positive_int

__all__ = ["ALiBi", "alibi_slopes", "T5RelativePositionBias", "relative_position_bucket"]


def _relative_positions(q_len: int, k_len: int, offset, device) -> Tensor:
    """``key_pos - query_pos`` as ``(q_len, k_len)``; queries start at ``offset``."""
    check_positive_int("q_len", q_len)
    check_positive_int("k_len", k_len)
    check_offset("offset", offset)
    if isinstance(offset, Tensor):
        device = offset.device
    query = offset + torch.arange(q_len, device=device)
    key = torch.arange(k_len, device=device)
    return key[None, :] - query[:, None]


def alibi_slopes(num_heads: int) -> Tensor:
    """Per-head slopes of ALiBi (Press et al., 2022): a geometric sequence starting at 2^(-8/n).

    For a head count that is not a power of two the paper's interpolation is used.

    >>> alibi_slopes(4)
    tensor([0.2500, 0.0625, 0.0156, 0.0039])
    """
    check_positive_int("num_heads", num_heads)

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-8 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(num_heads).is_integer():
        return torch.tensor(power_of_two(num_heads))
    closest = 2 ** math.floor(math.log2(num_heads))
    extra = power_of_two(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(power_of_two(closest) + extra)


# --8<-- [start:alibi]
class ALiBi(nn.Module):
    """Attention with Linear Biases: ``bias[h, i, j] = -slope_h * |i - j|``.

    In a causal model only ``j <= i`` is ever seen, where this is ``slope_h * (j - i)``, the
    paper's form; the symmetric form also serves bidirectional attention.

    >>> ALiBi(2)(3, 3)[0, 0]
    tensor([[ 0.0000, -0.0625, -0.1250],
            [-0.0625,  0.0000, -0.0625],
            [-0.1250, -0.0625,  0.0000]])
    """

    def __init__(self, num_heads: int) -> None:
        super().__init__()
        self.register_buffer("slopes", alibi_slopes(num_heads), persistent=False)

    def forward(self, q_len: int, k_len: int, offset: int | Tensor = 0) -> Tensor:
        """Bias ``(1, heads, q_len, k_len)`` for queries at ``offset ... offset + q_len - 1``."""
        distance = _relative_positions(q_len, k_len, offset, self.slopes.device).abs().float()
        return (0.0 - self.slopes[:, None, None] * distance)[None]  # 0.0 - x avoids -0.0
# --8<-- [end:alibi]


def check_relative_buckets(num_buckets: int, max_distance: int, bidirectional: bool, *,
                           names: tuple[str, str] = ("num_buckets", "max_distance")) -> None:
    """Raise unless the bucketing has at least one exact bucket per direction and ``max_distance`` beyond them.

    ``names`` are what errors call the two numbers (a config calls them ``relative_buckets`` ...).

    >>> check_relative_buckets(2, 128, True)
    Traceback (most recent call last):
    ...
    ValueError: num_buckets must be >= 4 (bidirectional=True), got 2
    """
    buckets_name, distance_name = names
    check_positive_int(buckets_name, num_buckets)
    check_positive_int(distance_name, max_distance)
    check_bool("bidirectional", bidirectional)
    smallest = 4 if bidirectional else 2
    if num_buckets < smallest:
        raise ValueError(f"{buckets_name} must be >= {smallest} (bidirectional={bidirectional}), got {num_buckets}")
    max_exact = (num_buckets // 2 if bidirectional else num_buckets) // 2
    if max_distance <= max_exact:
        raise ValueError(f"{distance_name} must exceed the {max_exact} exact buckets ({buckets_name}={num_buckets}, "
                         f"bidirectional={bidirectional}), got {max_distance}")


def relative_position_bucket(relative_position: Tensor, *, bidirectional: bool = True,
                             num_buckets: int = 32, max_distance: int = 128) -> Tensor:
    """T5's bucketing of ``key_pos - query_pos`` (Raffel et al., 2020), as in the reference code.

    Half the buckets hold exact small distances; the rest grow logarithmically up to
    ``max_distance``, beyond which every distance shares the last bucket. With
    ``bidirectional`` the buckets are split between keys before and after the query.

    >>> relative_position_bucket(torch.tensor([-200, -3, 0, 3, 200]))
    tensor([15,  3,  0, 19, 31])

    Raises:
        TypeError: if ``relative_position`` is not an integer tensor.
        ValueError: for fewer than 4 (bidirectional) or 2 buckets, or a ``max_distance`` not
            beyond the exact buckets.
    """
    check_integer_tensor("relative_position", relative_position)
    check_relative_buckets(num_buckets, max_distance, bidirectional)
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = -torch.clamp(relative_position, max=0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # clamp(min=1) only avoids log(0) for entries that take the small branch anyway
    large = max_exact + (
        torch.log(distance.clamp(min=1).float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).long()
    large = torch.clamp(large, max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


# --8<-- [start:t5_bias]
class T5RelativePositionBias(nn.Module):
    """A learned scalar per (bucket of relative distance, head), added to the scores.

    T5 computes it in the first layer of each stack and shares it with the other layers;
    the encoder uses bidirectional buckets, the decoder causal ones.

    Args:
        num_heads: attention heads.
        num_buckets: number of distance buckets (32 in T5).
        max_distance: distances beyond this share the last bucket (128 in T5).
        bidirectional: split buckets between both directions (encoder) or not (decoder).

    >>> bias = T5RelativePositionBias(num_heads=2)
    >>> bias(3, 5).shape
    torch.Size([1, 2, 3, 5])
    """

    def __init__(self, num_heads: int, num_buckets: int = 32, max_distance: int = 128, *,
                 bidirectional: bool = True) -> None:
        super().__init__()
        check_positive_int("num_heads", num_heads)
        check_relative_buckets(num_buckets, max_distance, bidirectional)
        self.num_buckets, self.max_distance, self.bidirectional = num_buckets, max_distance, bidirectional
        self.embedding = nn.Embedding(num_buckets, num_heads)

    def forward(self, q_len: int, k_len: int, offset: int | Tensor = 0) -> Tensor:
        """Bias ``(1, heads, q_len, k_len)`` for queries at ``offset ... offset + q_len - 1``."""
        relative = _relative_positions(q_len, k_len, offset, self.embedding.weight.device)
        buckets = relative_position_bucket(relative, bidirectional=self.bidirectional,
                                           num_buckets=self.num_buckets, max_distance=self.max_distance)
        return self.embedding(buckets).permute(2, 0, 1)[None]
# --8<-- [end:t5_bias]
