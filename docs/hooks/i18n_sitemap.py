"""MkDocs hook: give every language folder a ``sitemap.xml``.

Material's language selector fetches ``<language root>/sitemap.xml`` to send the reader to the same
page in the other language. mkdocs-static-i18n writes one sitemap (with ``hreflang`` alternates)
at the site root only, so ``/en/sitemap.xml`` would be a 404. After all language builds have run
(i18n builds the other languages in its own ``on_post_build``, priority -100), copy it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mkdocs.plugins import event_priority


@event_priority(-200)
def on_post_build(config, **kwargs) -> None:
    site = Path(config.site_dir)
    sitemap = site / "sitemap.xml"
    i18n = config.plugins.get("i18n")
    if i18n is None or not sitemap.exists():
        return
    for language in i18n.config.languages:
        folder = site / language.locale
        if not language.default and folder.is_dir():
            for name in ("sitemap.xml", "sitemap.xml.gz"):
                if (site / name).exists():
                    shutil.copyfile(site / name, folder / name)
