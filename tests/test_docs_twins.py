"""Every docs page has its twin in the other language, and the twins share their code.

``docs/**/x.md`` (Chinese) and ``docs/**/x.en.md`` (English) must both exist, and their fenced
code blocks must be identical in content and order: only the prose is translated. The same holds
for notebook sources ``docs/notebooks/x.py`` / ``x.en.py`` (their code cells). The site also must
not contain placeholder markers.
"""

from __future__ import annotations

import re
import textwrap
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
