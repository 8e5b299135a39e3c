"""The shipped corpora (format, provenance facts, reproducible cleaning), reading files, the deterministic split."""

from __future__ import annotations

import fnmatch
import math
import re
import shutil
import subprocess
import unicodedata
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmarch
from llmarch.data.prepare import KJV_PSALMS_COMMAND, TANG300_SOURCE, clean_kjv_psalms, clean_tang300
from llmarch.training.corpus import CORPORA, load_corpus, read_text, split_documents, split_text

DATA_DIR = Path(llmarch.__file__).parent / "data"


# ----------------------------------------------------------------------------- shipped corpora

def test_known_corpora_and_aliases():
    assert set(CORPORA) == {"tang300", "psalms"}
    assert load_corpus("chinese") == load_corpus("tang300")
    assert load_corpus("english") == load_corpus("psalms")
    with pytest.raises(ValueError, match=r"name must be one of .*tang300.*psalms.*got 'shakespeare'"):
        load_corpus("shakespeare")
    with pytest.raises(TypeError, match="name must be a str"):
        load_corpus(3)


def test_tang300_format():
    text = load_corpus("tang300")
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert "\x1b" not in text and "\r" not in text
    assert unicodedata.is_normalized("NFC", text)
    poems = split_documents(text)
    assert len(poems) == 313  # the number of entries in Debian's tang300 fortune file
    for poem in poems:
        title, author, *verses = poem.split("\n")
        assert re.fullmatch(r"《[^《》]+》", title), title
        assert re.fullmatch(r"作者：\w+", author), author
        assert verses and all(v.strip() == v and v for v in verses), poem
    assert {p.split("\n")[1] for p in poems} >= {"作者：李白", "作者：杜甫", "作者：王维"}
    # cleaned punctuation: no half-width commas / full stops, no katakana middle dot, no % separator lines
    assert not set(text) & {",", ".", "\u30fb", "%"}
    assert "《夜思》\n作者：李白\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡。" in text


def test_psalms_format():
    text = load_corpus("psalms")
    assert text.endswith("\n") and not text.endswith("\n\n") and text.isascii()
    psalms = split_documents(text)
    assert [p.split("\n")[0] for p in psalms] == [f"Psalm {i}" for i in range(1, 151)]
    assert sum(len(p.split("\n")) - 1 for p in psalms) == 2461  # verses in the KJV Psalms
    assert psalms[22].split("\n")[1] == "The LORD is my shepherd; I shall not want."  # Psalm 23:1
    assert not re.search(r"^\s*\d", text, flags=re.MULTILINE)  # verse numbers removed


def test_package_data_declares_the_corpora():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((DATA_DIR.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["llmarch.data"]
    shipped = [p.name for p in DATA_DIR.iterdir() if p.suffix in {".txt", ".md"}]
    assert {"tang300.txt", "psalms.txt", "README.md"} <= set(shipped)
    assert all(any(fnmatch.fnmatch(name, pat) for pat in patterns) for name in shipped)


@pytest.mark.skipif(not Path(TANG300_SOURCE).is_file(), reason="Debian package fortunes-zh not installed")
def test_tang300_rebuilds_from_debian_source():
    raw = Path(TANG300_SOURCE).read_bytes().decode("utf-8")
    assert clean_tang300(raw) == load_corpus("tang300")


@pytest.mark.skipif(shutil.which(KJV_PSALMS_COMMAND[0]) is None, reason="Debian package bible-kjv not installed")
def test_psalms_rebuild_from_debian_source():
    raw = subprocess.run(KJV_PSALMS_COMMAND, check=True, capture_output=True, text=True, timeout=60).stdout
    assert clean_kjv_psalms(raw) == load_corpus("psalms")


# ----------------------------------------------------------------------------- cleaning functions

def test_clean_tang300_on_a_sample():
    raw = ("\x1b[32m《石鱼湖上醉歌・并序》\x1b[m\n\x1b[33m作者：元结\x1b[m\n序文一句。\n  \n诗句一,诗句二.  \n%\n"
           "\x1b[32m《出塞》\x1b[m\n\x1b[33m作者：王之涣\x1b[m\n黄河远上白云间，一片孤城万仞山。\n%\n")
    assert clean_tang300(raw) == ("《石鱼湖上醉歌·并序》\n作者：元结\n序文一句。\n诗句一，诗句二。\n\n"
                                  "《出塞》\n作者：王之涣\n黄河远上白云间，一片孤城万仞山。\n")
    with pytest.raises(ValueError, match="expected an entry"):
        clean_tang300("no title\n作者：某\n诗。\n%\n")


def test_clean_kjv_psalms_on_a_sample():
    raw = "\nPsalms 1\n\n  1 Blessed is the man.\n  2 But his delight.\n\nPsalms 2\n\n  1 Why do the heathen rage?\n"
    assert clean_kjv_psalms(raw) == ("Psalm 1\nBlessed is the man.\nBut his delight.\n\n"
                                     "Psalm 2\nWhy do the heathen rage?\n")
    with pytest.raises(ValueError, match="expected 'Psalms N'"):
        clean_kjv_psalms("  1 a verse before any psalm\n")


# ----------------------------------------------------------------------------- read_text

def test_read_text_file_and_errors(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("第一行\r\nline two\r\n".encode("utf-8"))
    assert read_text(path) == "第一行\nline two\n"
    assert read_text(str(path)) == "第一行\nline two\n"
    assert read_text("tang300") == load_corpus("tang300")
    (tmp_path / "empty.txt").write_text(" \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is empty"):
        read_text(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match=r"corpus name \(tang300, psalms.*existing text file, got '.*missing.txt'"):
        read_text(tmp_path / "missing.txt")


# ----------------------------------------------------------------------------- split_text

@pytest.mark.parametrize("name", ["tang300", "psalms"])
def test_split_corpus(name):
    text = load_corpus(name)
    docs = split_documents(text)
    train, val = split_text(text)
    assert split_text(text) == (train, val)  # deterministic
    # every 10th document (1-based: 10, 20, ...) is validation, in order; the rest training, in order
    assert split_documents(val) == docs[9::10]
    assert split_documents(train) == [d for i, d in enumerate(docs) if i % 10 != 9]
    # nothing lost: documents + blank lines between them + a final newline each (N docs: 2N - 1 separator chars)
    assert len(train) + len(val) == len(text) - 1


def test_split_text_fallbacks_and_errors():
    assert split_text("one\ntwo\nthree\nfour", val_fraction=0.5) == ("one\nthree\n", "two\nfour\n")  # lines
    assert split_text("a\n\nb", val_fraction=0.01) == ("a\n", "b\n")  # at least one validation document
    assert split_text("a\n\nb", val_fraction=0.99) == ("a\n", "b\n")  # at least one training document
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\)"):
            split_text("a\n\nb", val_fraction=bad)
    with pytest.raises(ValueError, match="at least 2 documents or 2 lines"):
        split_text("only one line")


@given(docs=st.lists(st.text(alphabet="ab 诗🙂\t", min_size=1).filter(str.strip).map(str.strip), min_size=2,
                     max_size=40),
       val_fraction=st.floats(0.01, 0.99))
def test_split_text_partitions_documents(docs, val_fraction):
    docs = [d for d in docs if d]
    text = "\n\n".join(docs) + "\n"
    train, val = split_text(text, val_fraction)
    train_docs, val_docs = split_documents(train), split_documents(val)
    assert train_docs and val_docs
    assert sorted(train_docs + val_docs) == sorted(docs)
    # floor(n * fraction) documents, at least one on each side (fraction read as the decimal written)
    expected = min(max(math.floor(len(docs) * Fraction(str(val_fraction))), 1), len(docs) - 1)
    assert len(val_docs) == expected
