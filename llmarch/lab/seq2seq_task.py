"""A toy sequence-to-sequence task for comparing architectures: sort a short string of digits.

``3 1 4 1 5`` -> ``1 1 3 4 5``. Every output token depends on the *whole* input (the first output
is the smallest digit anywhere in the source), the answer is unique, and a model a few hundred
thousand parameters large learns it in a minute of CPU -- but not instantly, so architectures can
differ in how far they get with the same budget.

One vocabulary serves the three architectures of chapter 4 (``llmarch.lab.prefix_compare``)::

    digits 0 .. 9 -> ids 0 .. 9,   SEP = 10,   EOS = 11,   PAD = 12

* decoder-only (causal or prefix-LM): one row ``source SEP target``; the prefix is ``source SEP``
  and the labels are ``target EOS`` (the logits at ``SEP`` predict the first target digit);
* encoder-decoder: the encoder reads ``source``, the decoder reads ``SEP target`` (``SEP`` is the
  decoder start token) and predicts ``target EOS``.

So both read the same input tokens and are scored on exactly the same targets. ``source_field``
can also left-pad every source to one width with ``PAD`` tokens the models read like any other
token: the answer then starts at the same position in every row. A string
lies in the **held-out** split iff a hash of it is 0 modulo ``heldout_modulus``: training batches
never contain a held-out string, whatever their seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["SEP", "EOS", "PAD", "VOCAB_SIZE", "SortExamples", "string_hash", "sample_examples", "source_field"]

SEP, EOS, PAD = 10, 11, 12
VOCAB_SIZE = 13
IGNORE_INDEX = -100


@dataclass
class SortExamples:
    """A batch of examples, right-padded.

    Attributes:
        source: ``(n, max_len)`` digit ids, ``PAD`` after each row's length.
        target: ``(n, max_len)`` the sorted digits, ``PAD`` after each row's length.
        lengths: ``(n,)`` digits per row (source and target have the same length).
    """

    source: Tensor
    target: Tensor
    lengths: Tensor

    def __len__(self) -> int:
        return self.source.shape[0]

    def select(self, rows: Tensor) -> "SortExamples":
        """The examples at ``rows`` (an index or bool tensor)."""
        return SortExamples(self.source[rows], self.target[rows], self.lengths[rows])


def string_hash(digits: Tensor, lengths: Tensor) -> Tensor:
    """A polynomial hash of each row's first ``lengths[b]`` digits (and its length): ``(n,)`` long.

    >>> a = string_hash(torch.tensor([[1, 2, 12], [1, 2, 3]]), torch.tensor([2, 2]))
    >>> bool(a[0] == a[1]), bool(a[0] != string_hash(torch.tensor([[1, 2, 3]]), torch.tensor([3]))[0])
    (True, True)
    """
    h = lengths.long().clone()
    for i in range(digits.shape[1]):
        live = i < lengths
        h = torch.where(live, (h * 1_000_003 + digits[:, i].long() + 1) % 2_147_483_647, h)
    return h


def sample_examples(n: int, *, min_len: int, max_len: int, heldout_modulus: int, split: str,
                    generator: torch.Generator) -> SortExamples:
    """Draw ``n`` random digit strings of ``split`` ("train" or "heldout") and their sorted forms.

    Args:
        n: examples.
        min_len: shortest string.
        max_len: longest string (lengths are uniform in ``[min_len, max_len]``).
        heldout_modulus: a string is held out iff ``string_hash % heldout_modulus == 0``.
        split: ``"train"`` (never a held-out string) or ``"heldout"`` (only those).
        generator: a CPU ``torch.Generator``.

    Returns:
        ``SortExamples`` with ``n`` rows.

    Raises:
        ValueError: for an unknown split or lengths with ``1 <= min_len <= max_len`` violated.

    >>> ex = sample_examples(3, min_len=2, max_len=4, heldout_modulus=10, split="train",
    ...                      generator=torch.Generator().manual_seed(0))
    >>> ex.source.shape, bool((string_hash(ex.source, ex.lengths) % 10 != 0).all())
    (torch.Size([3, 4]), True)
    >>> bool((ex.target.sort(dim=1).values == ex.target).all())     # PAD (12) sorts last
    True
    """
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    if not 1 <= min_len <= max_len:
        raise ValueError(f"min_len and max_len must satisfy 1 <= min_len <= max_len, got {min_len} and {max_len}")
    kept: list[SortExamples] = []
    have = 0
    while have < n:
        m = 2 * (n - have) + 16
        lengths = torch.randint(min_len, max_len + 1, (m,), generator=generator)
        digits = torch.randint(0, 10, (m, max_len), generator=generator)
        real = torch.arange(max_len)[None, :] < lengths[:, None]
        source = digits.masked_fill(~real, PAD)
        held = string_hash(source, lengths) % heldout_modulus == 0
        keep = held if split == "heldout" else ~held
        target = source.sort(dim=1).values         # PAD (12) is larger than every digit: it stays last
        batch = SortExamples(source, target, lengths).select(keep)
        kept.append(batch)
        have += len(batch)
    source = torch.cat([b.source for b in kept])[:n]
    target = torch.cat([b.target for b in kept])[:n]
    lengths = torch.cat([b.lengths for b in kept])[:n]
    return SortExamples(source, target, lengths)


def source_field(examples: SortExamples, width: int | None = None) -> tuple[Tensor, Tensor]:
    """The source as the models read it: ``(n, S)`` ids and ``(n,)`` lengths (tokens read per row).

    ``width=None``: the digits themselves, right-padded (the padding is not read). ``width``: every
    source left-padded with ``PAD`` to ``width`` tokens which the models *read*, as part of the
    input, so that every row's source is ``width`` tokens long.

    >>> ex = SortExamples(torch.tensor([[3, 1, PAD], [4, 1, 5]]), torch.tensor([[1, 3, PAD], [1, 4, 5]]),
    ...                   torch.tensor([2, 3]))
    >>> field, lengths = source_field(ex, 4)
    >>> field.tolist(), lengths.tolist()
    ([[12, 12, 3, 1], [12, 4, 1, 5]], [4, 4])
    """
    if width is None:
        return examples.source, examples.lengths
    if width < int(examples.lengths.max()):
        raise ValueError(f"width must be >= the longest source ({int(examples.lengths.max())}), got {width}")
    n, stored = examples.source.shape
    columns = torch.arange(width)[None, :]
    start = width - examples.lengths[:, None]               # the first digit's column in each row
    index = (columns - start).clamp(0, stored - 1)
    field = examples.source.gather(1, index).masked_fill(columns < start, PAD)
    return field, torch.full_like(examples.lengths, width)
