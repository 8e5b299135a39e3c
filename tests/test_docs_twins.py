"""Every docs page has its twin in the other language, and the twins share their code.

``docs/**/x.md`` (Chinese) and ``docs/**/x.en.md`` (English) must both exist, and their fenced
code blocks must be identical in content and order: only the prose is translated. The same holds
for notebook sources ``docs/notebooks/x.py`` / ``x.en.py`` (their code cells). The site also must
not contain placeholder markers.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Fenced code blocks of a Markdown text as ``(language, dedented source)``, in order."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence = match["fence"]
        language = match["info"].split()[0] if match["info"].strip() else ""
        body, i = [], i + 1
        closing = re.compile(rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*")
        while i < len(lines) and not closing.fullmatch(lines[i]):
            body.append(lines[i])
            i += 1
        blocks.append((language, textwrap.dedent("\n".join(body)).strip("\n")))
        i += 1
    return blocks


def notebook_code_cells(text: str) -> list[str]:
    """Code cells of a jupytext percent-format source, in order."""
    cells = re.split(r"^# %%.*$", text, flags=re.M)
    headers = re.findall(r"^# %%.*$", text, flags=re.M)
    return [cell.strip("\n") for header, cell in zip(headers, cells[1:]) if "[markdown]" not in header]


def _pages(pattern: str) -> list[Path]:
    return sorted(p for p in DOCS.rglob(pattern) if "_build" not in p.parts)


def _twins(suffix: str) -> list[tuple[Path, Path]]:
    zh = [p for p in _pages(f"*{suffix}") if not p.name.endswith(f".en{suffix}")]
    if suffix == ".py":  # only notebook sources have twins; hooks, figures and conftest do not
        zh = [p for p in zh if p.parent.name == "notebooks"]
    return [(p, p.with_name(p.name[: -len(suffix)] + f".en{suffix}")) for p in zh]


def _rel(path: Path) -> str:
    return str(path.relative_to(DOCS.parent))


def test_the_chinese_and_english_page_sets_match():
    zh_pages = {p for p in _pages("*.md") if not p.name.endswith(".en.md")}
    en_pages = set(_pages("*.en.md"))
    assert zh_pages, "no docs pages found"
    missing_en = sorted(_rel(p.with_name(p.name[:-3] + ".en.md")) for p in zh_pages
                        if p.with_name(p.name[:-3] + ".en.md") not in en_pages)
    missing_zh = sorted(_rel(p.with_name(p.name[:-6] + ".md")) for p in en_pages
                        if p.with_name(p.name[:-6] + ".md") not in zh_pages)
    assert not missing_en, f"Chinese pages without their English twin, expected: {missing_en}"
    assert not missing_zh, f"English pages without their Chinese twin, expected: {missing_zh}"


def test_the_chinese_and_english_notebook_sets_match():
    sources = {p for p in _pages("*.py") if p.parent.name == "notebooks"}
    for path in sources:
        twin = (path.with_name(path.name[:-6] + ".py") if path.name.endswith(".en.py")
                else path.with_name(path.name[:-3] + ".en.py"))
        assert twin in sources, f"{_rel(path)} has no twin {_rel(twin)}"


@pytest.mark.parametrize("zh, en", _twins(".md"), ids=lambda p: _rel(p) if isinstance(p, Path) else p)
def test_twin_pages_have_identical_code_blocks(zh: Path, en: Path):
    if not en.exists():
        pytest.fail(f"{_rel(zh)} has no English twin {_rel(en)}")
    zh_blocks, en_blocks = code_blocks(zh.read_text("utf-8")), code_blocks(en.read_text("utf-8"))
    assert len(zh_blocks) == len(en_blocks), (
        f"{_rel(zh)} has {len(zh_blocks)} code blocks, {_rel(en)} has {len(en_blocks)}")
    for n, (a, b) in enumerate(zip(zh_blocks, en_blocks), 1):
        assert a == b, f"code block {n} differs between {_rel(zh)} and {_rel(en)}:\n{a}\n---\n{b}"


@pytest.mark.parametrize("zh, en", _twins(".py"), ids=lambda p: _rel(p) if isinstance(p, Path) else p)
def test_twin_notebooks_have_identical_code_cells(zh: Path, en: Path):
    assert en.exists(), f"{_rel(zh)} has no English twin {_rel(en)}"
    assert notebook_code_cells(zh.read_text("utf-8")) == notebook_code_cells(en.read_text("utf-8"))


def test_code_block_extraction():
    text = "a\n```pycon\n>>> 1\n1\n```\n\n!!! note\n\n    ```python\n    x = 1\n    ```\n"
    assert code_blocks(text) == [("pycon", ">>> 1\n1"), ("python", "x = 1")]


PLACEHOLDER = re.compile(r"\btodo\b|\btbd\b|待补充|待完成|\bfixme\b|\bxxx\b", re.I)


@pytest.mark.parametrize("path", _pages("*.md") + _pages("*.py"), ids=_rel)
def test_no_placeholders_on_the_site(path: Path):
    hits = [f"{_rel(path)}:{n}: {line.strip()}" for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
            if PLACEHOLDER.search(line)]
    assert not hits, "placeholder text found:\n" + "\n".join(hits)


# --------------------------------------------------------------------------- code width

MAX_CODE_COLUMNS = 88  # wider lines scroll off the right edge of a code block at a 1280-px window


def columns(line: str) -> int:
    """Display width in a monospace font: a wide (CJK) or full-width character takes two columns.

    >>> columns("abc"), columns("今天。")
    (3, 6)
    """
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in line)


@pytest.mark.parametrize("path", _pages("*.md") + [p for p in _pages("*.py") if p.parent.name == "notebooks"],
                         ids=_rel)
def test_code_lines_fit_88_columns(path: Path):
    """Code blocks of the pages (and code cells of the notebooks), dedented, fit 88 columns."""
    text = path.read_text("utf-8")
    blocks = notebook_code_cells(text) if path.suffix == ".py" else [body for _, body in code_blocks(text)]
    long = [f"{_rel(path)}: code block {n}: {columns(line)} columns: {line.strip()[:60]}..."
            for n, body in enumerate(blocks, 1)
            for line in body.splitlines() if columns(line) > MAX_CODE_COLUMNS]
    assert not long, f"code lines wider than {MAX_CODE_COLUMNS} columns:\n" + "\n".join(long)


SNIPPET = re.compile(r'^\s*--8<--\s+"(?P<file>[^":]+)(?::(?P<section>[\w-]+))?"\s*$', re.M)


def snippet_lines(path: Path) -> list[tuple[str, str]]:
    """``(file:section, line)`` for every line of package source a page includes with
    ``--8<-- "file:section"`` (pymdownx.snippets), dedented as the page shows it."""
    out = []
    for match in SNIPPET.finditer(path.read_text("utf-8")):
        if match["file"].startswith("docs/figures/_build/"):  # written by the build, not source
            continue
        source = (DOCS.parent / match["file"]).read_text("utf-8").splitlines()
        if match["section"]:
            start = next(i for i, line in enumerate(source) if f"[start:{match['section']}]" in line)
            end = next(i for i, line in enumerate(source) if f"[end:{match['section']}]" in line)
            source = source[start + 1:end]
        name = f"{match['file']}:{match['section']}" if match["section"] else match["file"]
        out += [(name, line) for line in textwrap.dedent("\n".join(source)).splitlines()]
    return out


def test_package_snippets_shown_on_pages_fit_88_columns():
    long = sorted({f"{name}: {columns(line)} columns: {line.strip()[:50]}..."
                   for path in _pages("*.md") for name, line in snippet_lines(path)
                   if columns(line) > MAX_CODE_COLUMNS})
    assert not long, f"{len(long)} included source lines wider than {MAX_CODE_COLUMNS} columns:\n" + "\n".join(long)


# --------------------------------------------------------------------------- Chinese quotation marks

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NOT_PROSE = [
    re.compile(r"\$\$.*?\$\$", re.S),                  # display math
    re.compile(r"<!--.*?-->", re.S),                   # HTML comments (e.g. Sybil's skip markers)
    re.compile(r"(`+)(?:(?!\1).)+?\1"),                # inline code
    re.compile(r"\$[^$\n]+\$"),                         # inline math
    re.compile(r"\]\([^)\s]*\)"),                       # link and image targets
    re.compile(r"<[^>\n]+>"),                           # HTML tags and autolinks
    re.compile(r"\{\s*[#.:][^}\n]*\}"),                 # attribute lists such as { #kv }
    re.compile(r'^[ \t]*(?:!!!|\?\?\?\+?)[ \t]+[\w-]+[ \t]+(")[^"\n]*(")', re.M),  # admonition title syntax
]
_UNIT_START = re.compile(r"^[ \t]*(?:[-*+][ \t]|\d+\.[ \t]|\|)")  # list items and table rows


def prose_mask(text: str) -> str:
    """``text`` with everything that is not prose blanked out (same length and line breaks):
    fenced code blocks, inline code, math, link targets, HTML and Markdown syntax."""
    chars, offset, fence = list(text), 0, None

    def blank(start: int, end: int) -> None:
        for i in range(start, end):
            if chars[i] != "\n":
                chars[i] = " "

    for line in text.split("\n"):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match["fence"]
            blank(offset, offset + len(line))
        elif fence is not None:
            blank(offset, offset + len(line))
            if (match and match["fence"][0] == fence[0] and len(match["fence"]) >= len(fence)
                    and not match["info"].strip()):
                fence = None
        offset += len(line) + 1
    for pattern in _NOT_PROSE:
        for match in list(pattern.finditer("".join(chars))):
            spans = [match.span(g) for g in range(1, (pattern.groups or 0) + 1)] if pattern.groups > 1 \
                else [match.span()]
            for start, end in spans:
                blank(start, end)
    return "".join(chars)


def prose_units(text: str) -> list[tuple[int, str]]:
    """``(first line number, masked text)`` of each paragraph, list item and table row."""
    units, current, start = [], [], 0
    for n, line in enumerate(prose_mask(text).split("\n"), 1):
        if (not line.strip() or _UNIT_START.match(line)) and current:
            units.append((start, "\n".join(current)))
            current = []
        if line.strip():
            start = start if current else n
            current.append(line)
    if current:
        units.append((start, "\n".join(current)))
    return units


def test_prose_extraction():
    text = ('中文“引号”和 `"code"` 与 $"x"$。\n\n```py\nx = "中文"\n```\n\n'
            '!!! note "标题"\n\n- 一项 "ASCII"\n- English "quote" only\n')
    units = prose_units(text)
    assert [n for n, _ in units] == [1, 7, 9, 10]
    assert [u.count('"') for _, u in units] == [0, 0, 2, 2]
    assert "x =" not in prose_mask(text) and "标题" in prose_mask(text)


def notebook_markdown(text: str) -> str:
    """The Markdown cells of a jupytext percent-format source, ``# `` prefixes removed."""
    cells = re.split(r"^# %%.*$", text, flags=re.M)
    headers = re.findall(r"^# %%.*$", text, flags=re.M)
    return "\n\n".join(re.sub(r"^# ?", "", cell.strip("\n"), flags=re.M)
                       for header, cell in zip(headers, cells[1:]) if "[markdown]" in header)


_CHINESE_SOURCES = [p for p in _pages("*.md") if not p.name.endswith(".en.md")] + [
    p for p in _pages("*.py") if p.parent.name == "notebooks" and not p.name.endswith(".en.py")]


@pytest.mark.parametrize("path", _CHINESE_SOURCES, ids=_rel)
def test_chinese_prose_uses_chinese_quotation_marks(path: Path):
    """In a Chinese page, a paragraph, list item or table row with Chinese text quotes with “”,
    not ASCII "..." (code, math, URLs and Markdown syntax are not prose)."""
    text = path.read_text("utf-8")
    text = notebook_markdown(text) if path.suffix == ".py" else text
    where = "markdown cells" if path.suffix == ".py" else "line"
    bad = [f"{_rel(path)}: {where} {n}: {' '.join(unit.split())[:100]}" for n, unit in prose_units(text)
           if CJK.search(unit) and '"' in unit]
    assert not bad, 'ASCII quotation marks " in Chinese prose (use “ ”):\n' + "\n".join(bad)
