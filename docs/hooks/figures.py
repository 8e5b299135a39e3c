"""MkDocs hook: draw the site's figures with our own code before every build.

Every ``docs/figures/<name>.py`` (files starting with ``_`` are helpers) defines
``draw(out_dir: pathlib.Path) -> list[pathlib.Path]`` and writes its pictures into
``docs/figures/_build/`` (git-ignored). A Chinese picture is ``<stem>.svg``, its English twin
``<stem>.en.svg``; mkdocs-static-i18n then serves the right one to each language from the same
Markdown link ``figures/_build/<stem>.svg``.

A script is re-run only when it, a helper, or the ``llmarch`` package is newer than its outputs
(so ``mkdocs serve`` does not loop on its own output).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.figures")

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
FIGURES = DOCS / "figures"
OUT = FIGURES / "_build"
STAMPS = OUT / ".stamps.json"


def _newest_mtime(paths) -> float:
    return max((p.stat().st_mtime for p in paths), default=0.0)


def _load(path: Path):
    name = f"_llmarch_docs_figure_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_figures(force: bool = False) -> list[Path]:
    """Run every figure script whose inputs changed; return the paths written."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    for path in (str(ROOT), str(FIGURES)):
        if path not in sys.path:
            sys.path.insert(0, path)
    OUT.mkdir(parents=True, exist_ok=True)
    stamps = json.loads(STAMPS.read_text()) if STAMPS.exists() else {}
    shared = _newest_mtime(
        list((ROOT / "llmarch").rglob("*.py")) + list(FIGURES.glob("_*.py")) + [Path(__file__)]
    )
    written: list[Path] = []
    for script in sorted(FIGURES.glob("[!_]*.py")):
        key = max(script.stat().st_mtime, shared)
        entry = stamps.get(script.name)
        outputs = [OUT / name for name in entry["outputs"]] if entry else []
        if not force and entry and entry["key"] >= key and outputs and all(p.exists() for p in outputs):
            continue
        log.info("drawing %s", script.relative_to(ROOT))
        paths = [Path(p) for p in _load(script).draw(OUT)]
        stamps[script.name] = {"key": key, "outputs": [p.name for p in paths]}
        written += paths
    if written:  # never touch docs/ when nothing changed: `mkdocs serve` would rebuild forever
        STAMPS.write_text(json.dumps(stamps, indent=1))
    return written


def on_pre_build(config, **kwargs) -> None:
    build_figures()
