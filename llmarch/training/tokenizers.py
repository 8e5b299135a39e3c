"""Tokenizers for training: characters, or byte-level BPE (the `tokenizers` library), saved the Hugging Face way.

Both kinds have one interface -- ``encode(text) -> list[int]``, ``decode(ids) -> str``,
``vocab_size``, ``eos_token_id``, ``save(directory)`` -- and both save a ``tokenizer.json`` (plus
``tokenizer_config.json``) that ``tokenizers.Tokenizer.from_file`` and
``transformers.PreTrainedTokenizerFast(tokenizer_file=...)`` load, so a tokenizer lives in the same
folder as the model it belongs to. :func:`load_tokenizer` reads either kind back.

* :class:`CharTokenizer` -- one id per character seen in training (Chinese text is naturally
  character-level), ``<unk>`` (id 0) for characters it never saw. Pure Python; saved as a
  ``WordLevel`` model over single characters.
* :class:`BPETokenizer` -- GPT-2's byte-level BPE trained by the `tokenizers` library
  (:func:`train_bpe_tokenizer`): no unknown tokens, any string round-trips. The algorithm in a
  few lines is :mod:`llmarch.training.bpe_scratch`.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Tokenizer", "CharTokenizer", "BPETokenizer", "train_bpe_tokenizer", "train_tokenizer", "load_tokenizer",
    "EOS_TOKEN", "TOKENIZER_FILE", "TOKENIZER_CONFIG_FILE",
]

EOS_TOKEN = "<|endoftext|>"  # GPT-2's end-of-text token
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
_CHAR_SPLIT = r"[\s\S]"  # one match per character (newlines included): the char tokenizer's pre-tokenizer


@runtime_checkable
class Tokenizer(Protocol):
    """What the trainer needs from a tokenizer."""

    vocab_size: int
    eos_token_id: int | None

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def save(self, directory: str | Path) -> None: ...


def _as_id_list(ids: Any, vocab_size: int) -> list[int]:
    """``ids`` (a sequence of ints, or a 0-/1-D integer tensor) as a list, each checked to be in the vocabulary."""
    if hasattr(ids, "tolist"):  # torch / numpy
        ids = ids.tolist()
        ids = [ids] if isinstance(ids, int) else ids
    out = []
    for i in ids:
        try:
            i = operator.index(i)  # int, numpy / torch integers
        except TypeError:
            raise TypeError(f"ids must be integers, got {type(i).__name__} ({i!r})") from None
        if not 0 <= i < vocab_size:
            raise ValueError(f"ids must be in [0, {vocab_size}) (the vocabulary), got {i}")
        out.append(i)
    return out


def _write_config(directory: Path, kind: str, **special: str | None) -> None:
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False,
              "llmarch_tokenizer": kind}
    config.update({k: v for k, v in special.items() if v is not None})
    (directory / TOKENIZER_CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n",
                                                   encoding="utf-8")


# --8<-- [start:char_tokenizer]
class CharTokenizer:
    """One token per character: id 0 is ``<unk>``, then the training text's characters
    in code-point order.

    Args:
        chars: the distinct characters of the vocabulary (ids ``1 .. len(chars)``, in
            this order).

    Raises:
        ValueError: if an entry is not a single character or is repeated.

    >>> tok = CharTokenizer.train("床前明月光")
    >>> tok.encode("明月光"), tok.vocab_size
    ([4, 5, 1], 6)
    >>> tok.decode(tok.encode("明月 光"))   # ' ' was never seen
    '明月<unk>光'
    """

    unk_token = "<unk>"
    unk_token_id = 0
    # documents are separated by blank lines, not by a special token
    eos_token_id = None

    def __init__(self, chars: Sequence[str]):
        chars = list(chars)
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"chars must be single characters, got {c!r}")
        if len(set(chars)) != len(chars):
            raise ValueError(
                f"chars must be distinct, got {len(chars) - len(set(chars))} repeated"
            )
        self.itos = [self.unk_token, *chars]  # id -> string
        self.stoi = {c: i for i, c in enumerate(self.itos) if i}  # character -> id

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """The vocabulary of ``text``: its distinct characters, sorted."""
        if not isinstance(text, str) or not text:
            raise ValueError(f"text must be a non-empty str, got {text!r:.40}")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``, one per character; unseen ones become ``unk_token_id``."""
        return [self.stoi.get(c, self.unk_token_id) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``: the characters joined (``<unk>`` for id 0)."""
        return "".join(self.itos[i] for i in _as_id_list(ids, self.vocab_size))
# --8<-- [end:char_tokenizer]

    def to_json(self) -> dict:
        """The Hugging Face ``tokenizer.json`` content: a ``WordLevel`` model over single characters."""
        return {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
            "pre_tokenizer": {"type": "Split", "pattern": {"Regex": _CHAR_SPLIT}, "behavior": "Isolated",
                              "invert": False},
            "post_processor": None,
            "decoder": {"type": "Fuse"},  # join the tokens with nothing in between
            "model": {"type": "WordLevel", "vocab": {s: i for i, s in enumerate(self.itos)},
                      "unk_token": self.unk_token},
        }

    @classmethod
    def from_json(cls, data: dict) -> CharTokenizer:
        """Rebuild from :meth:`to_json`'s content.

        Raises:
            ValueError: if it is not a character-level ``WordLevel`` tokenizer as written by :meth:`to_json`.
        """
        model, pre = data.get("model") or {}, data.get("pre_tokenizer") or {}
        if model.get("type") != "WordLevel" or (pre.get("pattern") or {}).get("Regex") != _CHAR_SPLIT:
            raise ValueError(f"data must be a character-level WordLevel tokenizer (pre-tokenizer Split "
                             f"{_CHAR_SPLIT!r}), got model {model.get('type')!r}, pre-tokenizer {pre!r:.80}")
        vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
        if [i for _, i in vocab] != list(range(len(vocab))) or vocab[0][0] != cls.unk_token:
            raise ValueError(f"data: the vocabulary must number its tokens 0..n-1 with {cls.unk_token!r} first")
        return cls([s for s, _ in vocab[1:]])

    def save(self, directory: str | Path) -> None:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / TOKENIZER_FILE).write_text(json.dumps(self.to_json(), ensure_ascii=False) + "\n",
                                                encoding="utf-8")
        _write_config(directory, "char")

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def _require_tokenizers():
    try:
        import tokenizers
    except ImportError as e:  # pragma: no cover - the hf extra installs it
        raise ImportError("byte-level BPE needs the `tokenizers` package: pip install 'llmarch[hf]'") from e
    return tokenizers


class BPETokenizer:
    """Byte-level BPE (GPT-2's scheme) backed by a `tokenizers.Tokenizer`.

    Args:
        backend: a trained ``tokenizers.Tokenizer`` (see :func:`train_bpe_tokenizer`).
        eos_token: the end-of-text special token, if the vocabulary has one.

    Raises:
        ValueError: if ``eos_token`` is given but not in the vocabulary.

    >>> tok = train_bpe_tokenizer("the cat sat on the mat. " * 20, vocab_size=300)
    >>> [tok.backend.id_to_token(i) for i in tok.encode("the mat")]   # Ġ is GPT-2's stand-in for ' '
    ['the', 'Ġmat']
    >>> tok.decode(tok.encode("the cat 坐下 🐱"))                      # any text round-trips
    'the cat 坐下 🐱'
    >>> tok.eos_token_id
    0
    """

    def __init__(self, backend: Any, eos_token: str | None = EOS_TOKEN):
        self.backend = backend
        self.eos_token = eos_token
        if eos_token is not None and backend.token_to_id(eos_token) is None:
            raise ValueError(f"eos_token must be in the vocabulary, got {eos_token!r}")

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def eos_token_id(self) -> int | None:
        return None if self.eos_token is None else self.backend.token_to_id(self.eos_token)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (a literal ``<|endoftext|>`` in the text becomes the special token)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self.backend.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``; special tokens are kept as their text."""
        return self.backend.decode(_as_id_list(ids, self.vocab_size), skip_special_tokens=False)

    def save(self, directory: str | Path) -> None:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(directory / TOKENIZER_FILE))
        _write_config(directory, "bpe", eos_token=self.eos_token)

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, eos_token={self.eos_token!r})"


# --8<-- [start:train_bpe_tokenizer]
def train_bpe_tokenizer(text: str, vocab_size: int) -> BPETokenizer:
    """Train GPT-2-style byte-level BPE on ``text`` with the `tokenizers` library.

    Offline, in a second or so. The vocabulary is ``<|endoftext|>`` (id 0), the 256
    bytes, then the merges in the order learned; training stops early if no pair is
    left to merge.

    Args:
        text: the training text.
        vocab_size: the vocabulary size wanted, at least 257 (the special token and the
            256 bytes).

    Returns:
        The trained :class:`BPETokenizer`.

    Raises:
        ValueError: if ``text`` is empty or ``vocab_size`` < 257.
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"text must be a non-empty str, got {text!r:.40}")
    if (
        isinstance(vocab_size, bool)
        or not isinstance(vocab_size, int)
        or vocab_size < 257
    ):
        raise ValueError(
            "vocab_size must be an int >= 257 (special token + 256 bytes), "
            f"got {vocab_size!r}"
        )
    tk = _require_tokenizers()
    backend = tk.Tokenizer(tk.models.BPE())
    # GPT-2's split, bytes as chars
    backend.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN],
        show_progress=False,
        # all 256 bytes, seen or not
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator([text], trainer)
    return BPETokenizer(backend, eos_token=EOS_TOKEN)
# --8<-- [end:train_bpe_tokenizer]


def train_tokenizer(kind: str, text: str, vocab_size: int | None = None) -> CharTokenizer | BPETokenizer:
    """Train a tokenizer of the given kind.

    Args:
        kind: ``"char"`` or ``"bpe"``.
        text: the training text.
        vocab_size: for ``"bpe"`` the vocabulary size (default 1024); ignored for ``"char"``, whose
            vocabulary is the text's characters.

    Raises:
        ValueError: for an unknown ``kind`` or an invalid text / vocabulary size.

    >>> train_tokenizer("char", "abcab").vocab_size
    4
    """
    if kind == "char":
        return CharTokenizer.train(text)
    if kind == "bpe":
        return train_bpe_tokenizer(text, 1024 if vocab_size is None else vocab_size)
    raise ValueError(f"kind must be 'char' or 'bpe', got {kind!r}")


def load_tokenizer(directory: str | Path) -> CharTokenizer | BPETokenizer:
    """Load a tokenizer saved by ``save`` (or any byte-level BPE ``tokenizer.json``, e.g. GPT-2's).

    Args:
        directory: the folder holding ``tokenizer.json`` (and ``tokenizer_config.json``).

    Returns:
        A :class:`CharTokenizer` for a character-level ``WordLevel`` model, a :class:`BPETokenizer`
        for a ``BPE`` model.

    Raises:
        ValueError: if ``tokenizer.json`` is missing or holds another kind of model.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     CharTokenizer.train("春眠不觉晓").save(d)
    ...     load_tokenizer(d).decode([1, 2])
    '不春'
    """
    directory = Path(directory)
    path = directory / TOKENIZER_FILE
    if not path.is_file():
        raise ValueError(f"directory must contain {TOKENIZER_FILE}, got {str(directory)!r} without it")
    data = json.loads(path.read_text(encoding="utf-8"))
    model_type = (data.get("model") or {}).get("type")
    if model_type == "WordLevel":
        return CharTokenizer.from_json(data)
    if model_type == "BPE":
        config_path = directory / TOKENIZER_CONFIG_FILE
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        eos = config.get("eos_token")
        eos = eos.get("content") if isinstance(eos, dict) else eos  # transformers may write an AddedToken dict
        backend = _require_tokenizers().Tokenizer.from_file(str(path))
        return BPETokenizer(backend, eos_token=eos if eos is not None and backend.token_to_id(eos) is not None
                            else None)
    raise ValueError(f"{path}: model type must be 'WordLevel' (char) or 'BPE', got {model_type!r}")
