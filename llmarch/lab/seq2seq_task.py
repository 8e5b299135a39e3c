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

__all__ = ["SEP", "EOS", "PAD", "VOCAB_SIZE", "SortExamples", "string_hash", "sample_examples", "source_field",
           "model_inputs", "target_loss", "exact_match"]

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


def model_inputs(arch: str, examples, pad_to: int | None = None) -> dict:
    """The model's keyword arguments and the ``labels`` for a batch of ``SortExamples``.

    Decoder-only rows are ``source SEP target EOS`` right-padded, with ``prefix_lengths =
    len(source SEP)``; ``labels = prefix_lm_labels(...)`` hold ``target EOS`` (-100 elsewhere), for
    ``causal_lm_loss`` (which shifts by one: the logits at ``SEP`` predict the first digit). The
    encoder-decoder gets ``source`` and ``SEP target``; its ``labels`` are ``target EOS``,
    aligned with the decoder's logits. ``pad_to``: the source as ``source_field(examples, pad_to)``.

    >>> ex = SortExamples(torch.tensor([[3, 1]]), torch.tensor([[1, 3]]), torch.tensor([2]))
    >>> model_inputs("prefix", ex)["input_ids"].tolist(), model_inputs("prefix", ex)["labels"].tolist()
    ([[3, 1, 10, 1, 3, 11]], [[-100, -100, -100, 1, 3, 11]])
    >>> {k: v.tolist() for k, v in model_inputs("encdec", ex).items() if "ids" in k or k == "labels"}
    {'input_ids': [[3, 1]], 'decoder_input_ids': [[10, 1, 3]], 'labels': [[1, 3, 11]]}
    """
    from ..training.prefix_lm import prefix_lm_labels

    source, source_lengths = source_field(examples, pad_to)
    source = source[:, :int(source_lengths.max())]
    lengths = examples.lengths                          # target digits per row
    span = int(lengths.max())
    n = len(lengths)
    sep = torch.full((n, 1), SEP)
    # the target side: the sorted digits then EOS, PAD after
    answer = torch.cat([examples.target[:, :span], torch.full((n, 1), PAD)], dim=1)
    answer[torch.arange(n), lengths] = EOS
    answer_real = torch.arange(span + 1)[None, :] <= lengths[:, None]
    if arch == "encdec":
        real = torch.arange(source.shape[1])[None, :] < source_lengths[:, None]
        decoder_input = torch.cat([sep, answer[:, :-1]], dim=1).masked_fill(~answer_real, PAD)
        return {"input_ids": source, "attention_mask": real.long(), "decoder_input_ids": decoder_input,
                "decoder_attention_mask": answer_real.long(),
                "labels": answer.masked_fill(~answer_real, IGNORE_INDEX)}
    # decoder-only: each row is source SEP target EOS, right-padded; the prefix is source SEP
    width = source.shape[1] + span + 2
    columns = torch.arange(width)[None, :]
    sep_column = source_lengths[:, None]                # source in front of it, the answer after it
    from_source = source.gather(1, columns.clamp(max=source.shape[1] - 1).expand(n, -1))
    from_answer = answer.gather(1, (columns - sep_column - 1).clamp(0, span).expand(n, -1))
    rows = torch.where(columns < sep_column, from_source, torch.where(columns == sep_column, SEP, from_answer))
    mask = columns <= sep_column + 1 + lengths[:, None]  # through EOS
    rows, mask = rows.masked_fill(~mask, PAD), mask.long()
    prefix = source_lengths + 1
    labels = prefix_lm_labels(rows, prefix, mask)      # target EOS; -100 on the prefix and the padding
    return {"input_ids": rows, "attention_mask": mask, "labels": labels, "prefix_lengths": prefix}


def target_loss(model, arch: str, inputs: dict):
    """Mean cross-entropy over the target tokens (``target EOS``) of ``model_inputs(arch, ...)``."""
    from ..training.causal_lm import causal_lm_loss
    from ..training.seq2seq_loss import label_smoothed_cross_entropy

    if arch == "encdec":
        logits = model(inputs["input_ids"], inputs["decoder_input_ids"], attention_mask=inputs["attention_mask"],
                       decoder_attention_mask=inputs["decoder_attention_mask"])
        return label_smoothed_cross_entropy(logits, inputs["labels"], 0.0)
    prefix = inputs["prefix_lengths"] if arch == "prefix" else None
    logits = model(inputs["input_ids"], inputs["attention_mask"], prefix_lengths=prefix)
    return causal_lm_loss(logits, inputs["labels"])


def exact_match(model, arch: str, examples, pad_to: int | None = None) -> float:
    """Share of ``examples`` whose greedy output (``generate``, stopping at ``EOS``) is exactly
    ``target EOS``. Rows are grouped by length, so prompts need no padding. The model is left in
    the mode it was in."""
    training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for length in sorted(set(examples.lengths.tolist())):
            group = examples.select(examples.lengths == length)
            field, source_lengths = source_field(group, pad_to)
            source = field[:, :int(source_lengths[0])]
            expected = torch.cat([group.target[:, :length], torch.full((len(group), 1), EOS)], dim=1)
            if arch == "encdec":
                out = model.generate(source, length + 1, eos_token_id=EOS, pad_token_id=PAD)[:, 1:]
            else:  # the prompt is source SEP; a prefix-LM model reads it bidirectionally (config.prefix_lm)
                prompt = torch.cat([source, torch.full((len(group), 1), SEP)], dim=1)
                out = model.generate(prompt, length + 1, eos_token_id=EOS, pad_token_id=PAD)[:, prompt.shape[1]:]
            out = torch.nn.functional.pad(out, (0, length + 1 - out.shape[1]), value=PAD)
            correct += int((out == expected).all(dim=1).sum())
    model.train(training)
    return correct / len(examples)
