"""Sybil: every docs page is a test.

Each ``docs/**/*.md`` page (Chinese ``x.md`` and English ``x.en.md`` alike) is a document with
its own namespace. ``pycon`` blocks (``>>>`` prompts) run as doctests, ``python`` blocks are
executed (or run as doctests if they hold ``>>>``). Doctest flags: NUMBER, ELLIPSIS,
NORMALIZE_WHITESPACE. Tooling that lives under docs/ is not collected as test modules.
"""

from __future__ import annotations

import os
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

os.environ.setdefault("MPLBACKEND", "Agg")

from sybil import Sybil  # noqa: E402
from sybil.evaluators.doctest import NUMBER  # noqa: E402  (the flag pytest also knows)
from sybil.evaluators.python import PythonEvaluator  # noqa: E402
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser  # noqa: E402

FLAGS = NUMBER | ELLIPSIS | NORMALIZE_WHITESPACE

# hooks/ and figures/ are imported by mkdocs, notebooks/ are executed by mkdocs-jupyter
# (and by tests/test_site.py through the strict build): none is a test module.
collect_ignore_glob = ["hooks/*", "figures/*", "notebooks/*"]


class PyconCodeBlockParser(PythonCodeBlockParser):
    """```pycon fenced blocks: a Python console session (``>>>``), checked as a doctest."""

    def __init__(self, doctest_optionflags: int = 0) -> None:
        super().__init__(doctest_optionflags=doctest_optionflags)
        self.codeblock_parser = CodeBlockParser("pycon", PythonEvaluator())


def _setup(namespace):
    import torch

    torch.manual_seed(0)


pytest_collect_file = Sybil(
    parsers=[
        PyconCodeBlockParser(doctest_optionflags=FLAGS),
        PythonCodeBlockParser(doctest_optionflags=FLAGS),
        SkipParser(),
    ],
    patterns=["*.md"],
    setup=_setup,
).pytest()


def pytest_collection_modifyitems(items):
    """The blocks of one page share a namespace and build on each other: whatever order a plugin
    (pytest-randomly) gave the items, run each page's blocks in page order. Pages themselves may
    still be shuffled among the other tests."""
    pages: dict = {}
    for item in items:
        example = getattr(item, "example", None)
        if example is not None:
            pages.setdefault(item.parent, []).append(item)
    in_page_order = {page: iter(sorted(blocks, key=lambda item: item.example.start))
                     for page, blocks in pages.items()}
    items[:] = [next(in_page_order[item.parent]) if item.parent in in_page_order else item for item in items]
