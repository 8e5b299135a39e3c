"""MkDocs hook: keep mkdocs-jupyter notebooks alive under mkdocs-static-i18n.

mkdocs-jupyter wraps each notebook source (``docs/notebooks/*.py``, jupytext percent format) in a
``NotebookFile`` during ``on_files``, so MkDocs treats it as a page. mkdocs-static-i18n runs its
own ``on_files`` later (priority -100) and rebuilds every ``File``, which drops that wrapper: the
notebook would silently become a static ``.py`` download. This hook runs after i18n and wraps the
notebook files again, keeping i18n's (language-specific) destination and URL.
"""

from __future__ import annotations

import re

from mkdocs.plugins import event_priority
from mkdocs.structure.files import Files
from mkdocs_jupyter.plugin import NotebookFile


class _I18nNotebookFile(NotebookFile):
    def __init__(self, file):  # noqa: D107 - keep i18n's dest_path/url as they are
        self.file = file
        self.dest_path = file.dest_path
        self.abs_dest_path = file.abs_dest_path
        self.url = file.url


@event_priority(-110)
def on_files(files: Files, config, **kwargs) -> Files:
    plugin = config.plugins.get("mkdocs-jupyter")
    if plugin is None:
        return files
    for file in list(files):
        if not isinstance(file, NotebookFile) and plugin.should_include(file):
            files.remove(file)
            files.append(_I18nNotebookFile(file))
    return files


_CDN_SCRIPT = re.compile(
    r"<script[^>]*>(?:(?!</script>).)*?(?:cdnjs\.cloudflare\.com|cdn\.jsdelivr\.net|unpkg\.com)(?:(?!</script>).)*</script>",
    re.S,
)
_EMPTY_SRC_SCRIPT = re.compile(r'<script src="">\s*</script>')


def on_post_page(output: str, page, config, **kwargs) -> str:
    """Strip nbconvert's CDN loaders (mermaid, MathJax) from notebook pages: the site works
    offline, KaTeX (vendored) typesets the notebooks' math, and our diagrams are images."""
    plugin = config.plugins.get("mkdocs-jupyter")
    if plugin is None or not plugin.should_include(page.file):
        return output
    output = _CDN_SCRIPT.sub("", output)
    return _EMPTY_SRC_SCRIPT.sub("", output)


@event_priority(-110)
def on_page_context(context, page, config, nav, **kwargs):
    """Point the language switcher of a notebook page at the same notebook in each language.

    i18n computes alternates before the notebooks are pages again, so on the English notebook the
    Chinese link would fall back to the site root. Notebook twins share their path, so map it.
    """
    plugin, i18n = config.plugins.get("mkdocs-jupyter"), config.plugins.get("i18n")
    alternates = getattr(config.extra, "alternate", None)  # i18n sets it as an attribute per page
    if plugin is None or i18n is None or not alternates or not plugin.should_include(page.file):
        return context
    default = next(language.locale for language in i18n.config.languages if language.default)
    current, url = i18n.current_language, page.file.url
    if current != default and url.startswith(f"{current}/"):
        url = url[len(current) + 1:]
    for alternate in alternates:
        alternate["link"] = url if alternate["lang"] == default else f"{alternate['lang']}/{url}"
    return context
