"""MkDocs hook: no ``<page>/sitemap.xml`` requests from the language switcher.

Material for MkDocs reads every ``<link rel="alternate" hreflang=...>`` in a page's head as the
*root* of a language and fetches ``<that link>/sitemap.xml`` to map the current page into that
language. mkdocs-static-i18n (``reconfigure_material``) fills the same links with the matching
*page* of each language instead, so every page made the browser request
``<page>/sitemap.xml``: a 404 in the console of every page. The switcher does not need the
lookup -- i18n already points each of its entries at the right page -- so remove these head links
after rendering. The language menu (``a.md-select__link``) is untouched, and the site's
``sitemap.xml`` still lists every page with its ``hreflang`` alternates.
"""

from __future__ import annotations

import re

_HEAD = re.compile(r"<head>.*?</head>", re.S)
_ALTERNATE = re.compile(r'\s*<link rel="alternate" href="[^"]*" hreflang="[^"]*">')


def on_post_page(output: str, page, config, **kwargs) -> str:
    head = _HEAD.search(output)
    if head is None:
        return output
    cleaned = _ALTERNATE.sub("", head.group())
    return output[: head.start()] + cleaned + output[head.end():]
