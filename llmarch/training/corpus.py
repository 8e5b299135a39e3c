"""The corpora a small model trains on: shipped texts, reading a file, a deterministic train/validation split.

Two public-domain corpora ship inside the package (``llmarch/data/``, provenance in its ``README.md``):

* ``"tang300"`` -- 唐诗三百首, the 313 poems of Debian's ``fortunes-zh`` (simplified characters),
  about 30 k characters;
* ``"psalms"`` -- the 150 Psalms of the King James Version from Debian's ``bible-kjv-text``,
  about 225 k characters (about 43 k words: a similar amount of text once tokenized).

A *document* is a block of lines; documents are separated by one blank line (a poem, a psalm).
Nothing is downloaded: the texts are read from the installed package.
"""

from __future__ import annotations

import re
from fractions import Fraction
from importlib import resources
from pathlib import Path

__all__ = ["CORPORA", "load_corpus", "read_text", "split_documents", "split_text"]

CORPORA: dict[str, str] = {
    "tang300": "唐诗三百首 (Three Hundred Tang Poems, compiled 1763; poems 7th-9th century, public domain): "
               "313 poems, title / author / verses, simplified characters. Cleaned from Debian fortunes-zh 2.98, "
               "/usr/share/games/fortunes/tang300.",
    "psalms": "The Book of Psalms, King James Version (1611; public domain outside the UK): 150 psalms, "
              "one verse per line. Extracted from Debian bible-kjv-text 4.38 with `bible -l0 Ps1:1-150:6`.",
}
_ALIASES = {"chinese": "tang300", "english": "psalms"}
_FILES = {"tang300": "tang300.txt", "psalms": "psalms.txt"}
_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


def _known() -> str:
    return ", ".join([*CORPORA, *(f"{a} (= {n})" for a, n in _ALIASES.items())])


def load_corpus(name: str) -> str:
    """The text of a shipped corpus.

    Args:
        name: ``"tang300"`` (alias ``"chinese"``) or ``"psalms"`` (alias ``"english"``).

    Returns:
        The whole corpus as one string: documents separated by a blank line, ending with ``"\\n"``.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).

    >>> text = load_corpus("tang300")
    >>> print(text[:text.index("\\n\\n")])  # the first poem
    《感遇·其一》
    作者：张九龄
    兰叶春葳蕤，桂华秋皎洁。
    欣欣此生意，自尔为佳节。
    谁知林栖者，闻风坐相悦。
    草木有本心，何求美人折？
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = _ALIASES.get(name, name)
    if key not in CORPORA:
        raise ValueError(f"name must be one of the shipped corpora ({_known()}), got {name!r}")
    return resources.files("llmarch.data").joinpath(_FILES[key]).read_text(encoding="utf-8")


def read_text(path_or_name: str | Path) -> str:
    """A corpus by name (see :func:`load_corpus`) or the text of a UTF-8 file.

    Args:
        path_or_name: a shipped corpus name, or a path to a UTF-8 text file.

    Returns:
        The text (``"\\r\\n"`` line ends become ``"\\n"``).

    Raises:
        ValueError: if it is neither a corpus name nor an existing file, or the text is empty or only whitespace.

    >>> len(read_text("english")) == len(load_corpus("psalms"))
    True
    """
    key = str(path_or_name)
    if _ALIASES.get(key, key) in CORPORA:
        text = load_corpus(key)
    else:
        path = Path(path_or_name)
        if not path.is_file():
            raise ValueError(f"path_or_name must be a corpus name ({_known()}) or an existing text file, "
                             f"got {key!r}")
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    if not text.strip():
        raise ValueError(f"path_or_name: the text of {key!r} is empty")
    return text


def split_documents(text: str) -> list[str]:
    """The documents of a text: blocks separated by blank lines, without surrounding newlines.

    >>> split_documents("a\\nb\\n\\nc\\n\\n\\nd\\n")
    ['a\\nb', 'c', 'd']
    """
    return [doc for doc in _BLANK_LINES.split(text.strip("\n")) if doc.strip()]


# --8<-- [start:split_text]
def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """Split a text into training and validation text at document boundaries.

    No randomness: validation gets every ``1 / val_fraction``-th document (spread
    evenly, so that it samples every part of an anthology ordered by form, like
    唐诗三百首), training gets the rest; each is re-joined with blank lines. A
    text with a single document is split at line boundaries instead.

    Args:
        text: documents separated by blank lines (see :func:`split_documents`).
        val_fraction: share of documents for validation, ``0 < val_fraction < 1``.

    Returns:
        ``(train_text, val_text)``, both non-empty, each ending with ``"\\n"``.

    Raises:
        ValueError: if ``val_fraction`` is out of range, or the text has fewer than two
            documents and fewer than two lines.

    >>> poems = "\\n\\n".join(f"poem {i}" for i in range(10))
    >>> train, val = split_text(poems, val_fraction=0.2)
    >>> val
    'poem 4\\n\\npoem 9\\n'
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    docs, sep = split_documents(text), "\n\n"
    if len(docs) < 2:
        docs, sep = [line for line in text.split("\n") if line.strip()], "\n"
    if len(docs) < 2:
        raise ValueError(
            f"text must have at least 2 documents or 2 lines to split, got {len(docs)}"
        )
    f = Fraction(str(val_fraction))  # exact: 0.29 * 100 is 28.999999999999996 in floats
    # document i is validation when the running count floor((i + 1) * f) steps up:
    # evenly spread
    is_val = [(i + 1) * f // 1 > i * f // 1 for i in range(len(docs))]
    if not any(is_val):
        is_val[-1] = True  # at least one validation document
    if all(is_val):
        is_val[0] = False  # at least one training document
    train = sep.join(d for d, v in zip(docs, is_val) if not v) + "\n"
    val = sep.join(d for d, v in zip(docs, is_val) if v) + "\n"
    return train, val
# --8<-- [end:split_text]
