"""Byte-level BPE from scratch: learn merges, encode, decode -- the algorithm behind GPT-2's tokenizer.

Start from the 256 byte values (ids ``0..255``); repeatedly find the most frequent adjacent pair
of ids in the training text and give it a new id (``256, 257, ...``). Encoding replays the
merges in the order they were learned; decoding concatenates each id's bytes. Text is first cut
into *pre-tokens* (words with their leading space, numbers, punctuation runs, whitespace) and
no merge crosses a pre-token boundary -- GPT-2's rule, so that ``" dog"`` and ``" dog."`` share
the token ``" dog"``.

This file is for reading (shown in the "training a small GPT" chapter). The tokenizer that
trains the models is the `tokenizers` library's (:func:`llmarch.training.tokenizers.train_bpe_tokenizer`),
and the tests check the two learn the same merges and produce the same tokens.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

__all__ = ["GPT2_SPLIT", "pretokenize", "pair_counts", "merge_pair", "learn_bpe", "bpe_encode", "bpe_decode"]

# GPT-2's pre-tokenizer pattern written for Python's `re`: `[^\W\d_]` is a letter (\p{L} in GPT-2's
# `regex` pattern), `\d` a digit; identical to GPT-2's split for text without other numerals (½, Ⅻ).
# --8<-- [start:pretokenize]
GPT2_SPLIT = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""
)


def pretokenize(text: str) -> list[str]:
    """Cut text into GPT-2 pre-tokens; merges never cross their boundaries.

    >>> pretokenize("The LORD is my shepherd; 床前明月光。")
    ['The', ' LORD', ' is', ' my', ' shepherd', ';', ' 床前明月光', '。']
    """
    return GPT2_SPLIT.findall(text)
# --8<-- [end:pretokenize]


# --8<-- [start:learn_bpe]
def pair_counts(words: dict[tuple[int, ...], int]) -> Counter:
    """How often each adjacent pair of ids occurs, over words with their frequencies."""
    counts: Counter = Counter()
    for word, freq in words.items():
        for pair in zip(word, word[1:]):
            counts[pair] += freq
    return counts


def merge_pair(
    word: Sequence[int], pair: tuple[int, int], new_id: int
) -> tuple[int, ...]:
    """Replace every occurrence of ``pair`` in ``word``, left to right, by ``new_id``.

    >>> merge_pair((1, 1, 1, 2), (1, 1), 256)
    (256, 1, 2)
    """
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def learn_bpe(text: str, num_merges: int) -> dict[tuple[int, int], int]:
    """Learn up to ``num_merges`` merges ``{(id_a, id_b): new_id}``, in learned order.

    Each step merges the most frequent pair; a tie goes to the pair with the smallest
    ids. Below: 'a'+'a' (4 times); then 'aa'+'a' and 'a'+'b' tie (2 each): 97 < 256.

    >>> learn_bpe("aaab aaab", 2)
    {(97, 97): 256, (97, 98): 257}
    """
    # word -> frequency
    words = Counter(tuple(w.encode("utf-8")) for w in pretokenize(text))
    merges: dict[tuple[int, int], int] = {}
    for new_id in range(256, 256 + num_merges):
        counts = pair_counts(words)
        if not counts:
            break  # every word is a single token
        pair = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
        merges[pair] = new_id
        words = Counter({merge_pair(w, pair, new_id): f for w, f in words.items()})
    return merges
# --8<-- [end:learn_bpe]


# --8<-- [start:bpe_encode]
def bpe_encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    """Token ids of ``text`` under ``merges``.

    In each pre-token, the earliest-learned merge is applied until none applies.

    >>> merges = learn_bpe("low lower lowest", 3)
    >>> bpe_decode(bpe_encode("lowly", merges), merges)
    'lowly'
    """
    ids: list[int] = []
    for word in pretokenize(text):
        tokens = tuple(word.encode("utf-8"))
        while len(tokens) > 1:
            pair = min(
                zip(tokens, tokens[1:]), key=lambda p: merges.get(p, float("inf"))
            )
            if pair not in merges:
                break  # no learned merge applies any more
            tokens = merge_pair(tokens, pair, merges[pair])
        ids.extend(tokens)
    return ids


def bpe_decode(ids: Sequence[int], merges: dict[tuple[int, int], int]) -> str:
    """The text of token ids (invalid UTF-8, e.g. half a character, becomes U+FFFD)."""
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in merges.items():  # in learned order: a and b are known already
        vocab[new_id] = vocab[a] + vocab[b]
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
# --8<-- [end:bpe_encode]
