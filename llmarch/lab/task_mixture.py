"""A mixture of instructed digit tasks with some task *types* held out: a toy for zero-shot
generalisation (chapter 5.1, ``llmarch.lab.why_zero_shot``).

An example is a two-token instruction -- a **permutation** and a **map** -- followed by a
string of digits; the answer is the string permuted, each digit mapped::

    permutations  keep, reverse, rotate (left by one place)
    maps          same, add1 (d + 1 mod 10), flip (9 - d)
    [reverse] [add1] 3 1 4 1   ->   2 5 2 4

The two act on different things (where a digit goes, what it becomes), so they commute and each
of the 3 x 3 = 9 task types is a composition of two primitives. Three of them, one in every
row and every column of that square, are **held out** (``HELD_OUT``): no training batch ever
holds them, while each primitive is trained in two other pairings. Solving a held-out type is
zero-shot generalisation to a new task in the small: every piece was seen, the combination was
not. The digit strings are split as in chapter 4 (``seq2seq_task.string_hash``), so the
trained types are also scored on strings they never saw.

Vocabulary: digits 0-9, then ``SEP``, ``EOS``, ``PAD`` of ``llmarch.lab.seq2seq_task``, then one
token per primitive (13-15 the permutations, 16-18 the maps). The three architectures read the
rows of chapter 4: decoder-only ``instruction digits SEP answer EOS`` (the prefix is everything
up to ``SEP``), encoder-decoder ``instruction digits`` -> ``SEP answer`` (``model_inputs``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .seq2seq_task import EOS, IGNORE_INDEX, PAD, SEP, string_hash

__all__ = ["PERMUTATIONS", "MAPS", "TASKS", "HELD_OUT", "TRAINED", "VOCAB_SIZE", "op_token", "apply_task",
           "TaskExamples", "sample_tasks", "model_inputs", "answer_logits", "teacher_forced_correct",
           "greedy_answers"]

PERMUTATIONS = ("keep", "reverse", "rotate")
MAPS = ("same", "add1", "flip")
#: Every task type, a (permutation, map) pair, in a fixed order (``TaskExamples.task`` indexes it).
TASKS = tuple((p, m) for p in PERMUTATIONS for m in MAPS)
#: Never trained: one per row and column of the 3 x 3 square (a Latin diagonal).
HELD_OUT = (("keep", "flip"), ("reverse", "add1"), ("rotate", "same"))
TRAINED = tuple(task for task in TASKS if task not in HELD_OUT)
FIRST_OP = 13
VOCAB_SIZE = FIRST_OP + len(PERMUTATIONS) + len(MAPS)


def op_token(name: str) -> int:
    """The token id of a primitive.

    >>> op_token("keep"), op_token("flip"), VOCAB_SIZE
    (13, 18, 19)
    """
    ops = PERMUTATIONS + MAPS
    if name not in ops:
        raise ValueError(f"name must be one of {', '.join(ops)}, got {name!r}")
    return FIRST_OP + ops.index(name)


def apply_task(task: tuple[str, str], digits: Tensor) -> Tensor:
    """The answers of ``task`` = (permutation, map) for ``(n, length)`` digit strings.

    >>> apply_task(("reverse", "add1"), torch.tensor([[3, 1, 4, 1]])).tolist()
    [[2, 5, 2, 4]]
    >>> apply_task(("rotate", "flip"), torch.tensor([[3, 1, 4, 1]])).tolist()
    [[8, 5, 8, 6]]
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    permutation, value = task
    moved = {"keep": digits, "reverse": digits.flip(1), "rotate": digits.roll(-1, dims=1)}[permutation]
    return {"same": moved, "add1": (moved + 1) % 10, "flip": 9 - moved}[value]


@dataclass
class TaskExamples:
    """A batch of instructed examples, all of one string length.

    Attributes:
        source: ``(n, 2 + length)``: permutation token, map token, digits.
        target: ``(n, length)`` the answers.
        task: ``(n,)`` each row's index into ``TASKS``.
    """

    source: Tensor
    target: Tensor
    task: Tensor

    def __len__(self) -> int:
        return self.source.shape[0]

    def select(self, rows: Tensor) -> "TaskExamples":
        """The examples at ``rows`` (an index or bool tensor)."""
        return TaskExamples(self.source[rows], self.target[rows], self.task[rows])


def sample_tasks(n: int, *, tasks, length: int, heldout_modulus: int, split: str, generator: torch.Generator,
                 balanced: bool = False) -> TaskExamples:
    """``n`` examples of the task types ``tasks`` on random digit strings of ``split``.

    Args:
        n: examples.
        tasks: task types to draw from (each in ``TASKS``), uniformly.
        length: digits per string (>= 2).
        heldout_modulus: a string is held out iff ``string_hash % heldout_modulus == 0``.
        split: ``"train"`` (never a held-out string) or ``"heldout"`` (only those).
        generator: a CPU ``torch.Generator``.
        balanced: cycle through ``tasks`` in order instead of drawing them (evaluation sets).

    Returns:
        ``TaskExamples`` with ``n`` rows.

    Raises:
        ValueError: for an empty or unknown ``tasks``, ``length < 2`` or an unknown ``split``.

    >>> ex = sample_tasks(4, tasks=HELD_OUT, length=4, heldout_modulus=10, split="heldout",
    ...                   generator=torch.Generator().manual_seed(0), balanced=True)
    >>> ex.source.shape, [TASKS[i] for i in ex.task.tolist()][:2]
    (torch.Size([4, 6]), [('keep', 'flip'), ('reverse', 'add1')])
    >>> bool((string_hash(ex.source[:, 2:], torch.full((4,), 4)) % 10 == 0).all())
    True
    """
    tasks = tuple(tuple(task) for task in tasks)
    if not tasks or any(task not in TASKS for task in tasks):
        raise ValueError(f"tasks must be a non-empty sequence of task types from TASKS, got {tasks!r}")
    if length < 2:
        raise ValueError(f"length must be >= 2, got {length}")
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    strings, have = [], 0
    while have < n:  # draw, then keep the strings of the split (about 1 in heldout_modulus is held out)
        digits = torch.randint(0, 10, (2 * (n - have) + 16, length), generator=generator)
        held = string_hash(digits, torch.full((len(digits),), length)) % heldout_modulus == 0
        strings.append(digits[held] if split == "heldout" else digits[~held])
        have += len(strings[-1])
    digits = torch.cat(strings)[:n]
    pick = torch.arange(n) % len(tasks) if balanced else torch.randint(0, len(tasks), (n,), generator=generator)
    index = torch.tensor([TASKS.index(task) for task in tasks])[pick]
    target = torch.empty_like(digits)
    for i, task in enumerate(TASKS):
        rows = index == i
        target[rows] = apply_task(task, digits[rows])
    ops = torch.tensor([[op_token(p), op_token(m)] for p, m in TASKS])[index]
    return TaskExamples(torch.cat([ops, digits], dim=1), target, index)


def model_inputs(arch: str, examples: TaskExamples) -> dict:
    """The model's keyword arguments and ``labels`` (the layout of ``seq2seq_task.model_inputs``).

    Every row has the same lengths, so no padding: decoder-only rows are ``source SEP target
    EOS`` with ``prefix_lengths = len(source SEP)`` and labels ``target EOS`` (-100 on the
    prefix; ``causal_lm_loss`` shifts them); the encoder-decoder reads ``source`` and ``SEP
    target`` and predicts ``target EOS``. ``seq2seq_task.target_loss`` takes the result.

    >>> ex = TaskExamples(torch.tensor([[14, 17, 3, 1]]), torch.tensor([[2, 4]]), torch.tensor([4]))
    >>> dec = model_inputs("prefix", ex)
    >>> dec["input_ids"].tolist(), dec["labels"].tolist(), dec["prefix_lengths"].tolist()
    ([[14, 17, 3, 1, 10, 2, 4, 11]], [[-100, -100, -100, -100, -100, 2, 4, 11]], [5])
    >>> enc = model_inputs("encdec", ex)
    >>> enc["decoder_input_ids"].tolist(), enc["labels"].tolist()
    ([[10, 2, 4]], [[2, 4, 11]])
    """
    n, source_len = examples.source.shape
    sep, eos = torch.full((n, 1), SEP), torch.full((n, 1), EOS)
    answer = torch.cat([examples.target, eos], dim=1)
    if arch == "encdec":
        return {"input_ids": examples.source, "attention_mask": torch.ones_like(examples.source),
                "decoder_input_ids": torch.cat([sep, examples.target], dim=1),
                "decoder_attention_mask": torch.ones_like(answer), "labels": answer}
    rows = torch.cat([examples.source, sep, answer], dim=1)
    labels = rows.clone()
    labels[:, :source_len + 1] = IGNORE_INDEX
    return {"input_ids": rows, "attention_mask": torch.ones_like(rows), "labels": labels,
            "prefix_lengths": torch.full((n,), source_len + 1)}


def answer_logits(model, arch: str, inputs: dict) -> Tensor:
    """``(n, length + 1, vocab)``: the logits that predict ``target EOS``, teacher-forced, one
    forward pass (decoder-only: the positions from ``SEP`` on, whose next token is scored)."""
    if arch == "encdec":
        return model(inputs["input_ids"], inputs["decoder_input_ids"], attention_mask=inputs["attention_mask"],
                     decoder_attention_mask=inputs["decoder_attention_mask"])
    prefix = inputs["prefix_lengths"] if arch == "prefix" else None
    logits = model(inputs["input_ids"], inputs["attention_mask"], prefix_lengths=prefix)
    return logits[:, int(inputs["prefix_lengths"][0]) - 1:-1]


def teacher_forced_correct(model, arch: str, examples: TaskExamples) -> Tensor:
    """``(n, length + 1)`` bool: is the most probable token the right one, at every answer
    position (``EOS`` last), given the right tokens before it. A row is all true exactly when
    greedy decoding would write the answer, so this is exact match without a decoding loop.
    The model is left in the mode it was in."""
    inputs = model_inputs(arch, examples)
    training = model.training
    model.eval()
    with torch.no_grad():
        predicted = answer_logits(model, arch, inputs).argmax(-1)
    model.train(training)
    return predicted == torch.cat([examples.target, torch.full((len(examples), 1), EOS)], dim=1)


def greedy_answers(model, arch: str, examples: TaskExamples) -> Tensor:
    """``(n, length + 1)``: what ``generate`` writes after the prompt (greedy, stopping at
    ``EOS``, ``PAD`` after it); a decoder-only prompt is ``source SEP`` (read bidirectionally by a
    prefix LM, ``config.prefix_lm``), the encoder-decoder's is ``source``. The model is left in
    the mode it was in."""
    width = examples.target.shape[1] + 1
    training = model.training
    model.eval()
    with torch.no_grad():
        if arch == "encdec":
            out = model.generate(examples.source, width, eos_token_id=EOS, pad_token_id=PAD)[:, 1:]
        else:
            prompt = torch.cat([examples.source, torch.full((len(examples), 1), SEP)], dim=1)
            out = model.generate(prompt, width, eos_token_id=EOS, pad_token_id=PAD)[:, prompt.shape[1]:]
    model.train(training)
    return torch.nn.functional.pad(out, (0, width - out.shape[1]), value=PAD)
