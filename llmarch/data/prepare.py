"""Rebuild the shipped corpora from their Debian sources (run once by a maintainer, never at run time).

``python -m llmarch.data.prepare`` needs ``apt-get install fortunes-zh bible-kjv`` and rewrites
``tang300.txt`` and ``psalms.txt`` beside this file. The cleaning is two pure functions,
:func:`clean_tang300` and :func:`clean_kjv_psalms`, so that the tests can check them on small samples.

Shipped format (both files): one document per block, blocks separated by one blank line, the
file ends with a newline; a document is a title line, (for the poems) an author line, then the
text, one verse per line, with no blank line inside a document.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

__all__ = ["clean_tang300", "clean_kjv_psalms", "TANG300_SOURCE", "KJV_PSALMS_COMMAND"]

TANG300_SOURCE = "/usr/share/games/fortunes/tang300"  # Debian package fortunes-zh
KJV_PSALMS_COMMAND = ["bible", "-l0", "Ps1:1-150:6"]    # Debian packages bible-kjv + bible-kjv-text

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")       # colour codes such as ESC[32m ... ESC[m
_SEPARATOR = re.compile(r"^%\n", flags=re.MULTILINE)  # fortune(6) separates entries with a line "%"
# Half-width punctuation in two long titles and the Japanese katakana middle dot in "清平调・其二"
# become the full-width / Chinese forms used everywhere else in the text.
_TANG_PUNCT = str.maketrans({",": "，", ".": "。", "\u30fb": "\u00b7"})


def clean_tang300(raw: str) -> str:
    """Clean Debian's ``tang300`` fortune file into one poem per blank-line-separated block.

    Each entry is ``《title》`` (green), ``作者：author`` (yellow), then the poem. Removes the ANSI
    colour codes and the ``%`` separators, drops blank lines inside an entry (four poems have
    one between their preface and the poem), strips trailing spaces and normalises punctuation.

    Args:
        raw: the file's text (UTF-8 decoded).

    Returns:
        The poems joined by blank lines, ending with a newline.

    Raises:
        ValueError: if an entry does not start with a title and an author line.

    >>> raw = "\\x1b[32m《静夜思》\\x1b[m\\n\\x1b[33m作者：李白\\x1b[m\\n床前明月光，疑是地上霜。\\n%\\n"
    >>> print(clean_tang300(raw), end="")
    《静夜思》
    作者：李白
    床前明月光，疑是地上霜。
    """
    text = _ANSI.sub("", raw).replace("\r\n", "\n")
    poems = []
    for entry in _SEPARATOR.split(text):
        lines = [line.rstrip() for line in entry.split("\n") if line.strip()]
        if not lines:
            continue
        if len(lines) < 3 or not (lines[0].startswith("《") and lines[1].startswith("作者：")):
            raise ValueError(f"raw: expected an entry '《title》 / 作者：name / poem', got {entry[:80]!r}")
        poems.append("\n".join(line.translate(_TANG_PUNCT) for line in lines))
    return "\n\n".join(poems) + "\n"


_PSALM_HEADER = re.compile(r"^Psalms (\d+)$")
_VERSE = re.compile(r"^\s+(\d+) (.+)$")


def clean_kjv_psalms(raw: str) -> str:
    """Clean the output of ``bible -l0 Ps1:1-150:6`` into one psalm per blank-line-separated block.

    The output has a header line ``Psalms N`` per chapter and one line ``  V text`` per verse.
    Keeps a title ``Psalm N`` and the verses, one per line, without their numbers.

    Args:
        raw: the program's output.

    Returns:
        The psalms joined by blank lines, ending with a newline.

    Raises:
        ValueError: on a line that is neither a header, a verse nor blank, or a verse before any header.

    >>> raw = "\\nPsalms 1\\n\\n  1 Blessed is the man.\\n  2 But his delight.\\n"
    >>> print(clean_kjv_psalms(raw), end="")
    Psalm 1
    Blessed is the man.
    But his delight.
    """
    psalms: list[list[str]] = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        if header := _PSALM_HEADER.match(line):
            psalms.append([f"Psalm {header.group(1)}"])
        elif (verse := _VERSE.match(line)) and psalms:
            psalms[-1].append(verse.group(2).strip())
        else:
            raise ValueError(f"raw: expected 'Psalms N' or '  V verse text', got {line[:80]!r}")
    return "\n\n".join("\n".join(psalm) for psalm in psalms) + "\n"


def main(out_dir: Path | None = None) -> None:
    """Write ``tang300.txt`` and ``psalms.txt`` (default: beside this file) from the Debian sources."""
    out_dir = Path(out_dir or Path(__file__).parent)
    raw = Path(TANG300_SOURCE).read_bytes().decode("utf-8")
    (out_dir / "tang300.txt").write_text(clean_tang300(raw), encoding="utf-8", newline="\n")
    raw = subprocess.run(KJV_PSALMS_COMMAND, check=True, capture_output=True, text=True).stdout
    (out_dir / "psalms.txt").write_text(clean_kjv_psalms(raw), encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
