"""MkDocs hook: no stray spaces in wrapped Chinese paragraphs.

A line break inside a Markdown paragraph becomes a space in HTML. Between two Chinese characters
that space is wrong, so join such lines before rendering (outside fenced code blocks). Authors can
keep hard-wrapping Chinese prose at ~100 columns.
"""

from __future__ import annotations

import re

CJK = r"[\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
JOIN = re.compile(rf"({CJK})\n[ \t]*(?={CJK})")
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})", re.M)


def join_cjk_lines(markdown: str) -> str:
    out, in_fence, fence = [], False, ""
    chunk: list[str] = []
    for line in markdown.split("\n"):
        match = FENCE.match(line)
        if not in_fence and match:
            out.append(JOIN.sub(r"\1", "\n".join(chunk)))
            chunk, in_fence, fence = [], True, match.group(1)
            out.append(line)
        elif in_fence:
            out.append(line)
            if line.strip().startswith(fence) and set(line.strip()) == {fence[0]}:
                in_fence = False
        else:
            chunk.append(line)
    out.append(JOIN.sub(r"\1", "\n".join(chunk)))
    return "\n".join(part for part in out)


def on_page_markdown(markdown: str, **kwargs) -> str:
    return join_cjk_lines(markdown)
