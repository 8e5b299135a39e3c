"""A JSON cache for the chapters' experiments, keyed by a hash of their code and settings.

A run that feeds a figure is computed once and stored as ``<cache>/<name>/<key>.json``, where
``<cache>`` is ``$LLMARCH_CACHE`` or ``.cache/llmarch`` in the current directory, and ``key`` is a
SHA-256 of the settings, the torch version and the bytes of every source file the run depends
on: change any of them and the run is computed again; change nothing and the site build reads
the stored result.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Callable, Iterable

__all__ = ["PACKAGE", "package_sources", "source_key", "cache_path", "cached_run"]

PACKAGE = Path(__file__).resolve().parents[1]


def package_sources(*extra: Path, subpackages: Iterable[str] = ("nn", "models", "training")) -> list[Path]:
    """The ``.py`` files of ``subpackages`` of ``llmarch`` plus ``extra`` files, sorted.

    >>> any(p.name == "attention.py" for p in package_sources())
    True
    """
    files = [p for name in subpackages for p in (PACKAGE / name).rglob("*.py")]
    return sorted(set(files) | {Path(p).resolve() for p in extra})


def source_key(settings: dict, files: Iterable[Path]) -> str:
    """SHA-256 (hex) of ``settings`` (as sorted JSON), the torch version and ``files``.

    >>> files = package_sources()
    >>> len(source_key({"a": 1}, files)), source_key({"a": 1}, files) == source_key({"a": 2}, files)
    (64, False)
    """
    import torch

    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(torch.__version__.encode())
    for path in files:
        path = Path(path)
        name = str(path.relative_to(PACKAGE)) if path.is_relative_to(PACKAGE) else path.name
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_path(name: str, key: str) -> Path:
    """``$LLMARCH_CACHE/<name>/<key>.json``, or ``./.cache/llmarch/<name>/<key>.json``."""
    root = os.environ.get("LLMARCH_CACHE")
    base = Path(root) if root else Path.cwd() / ".cache" / "llmarch"
    return base / name / f"{key}.json"


def cached_run(name: str, key: str, run: Callable[[], dict], *, refresh: bool = False,
               cache: bool = True, verbose: bool = False) -> dict:
    """The stored result of ``name``/``key``, or ``run()`` stored atomically (unless ``cache`` is
    false: then ``run()`` and nothing stored). ``refresh`` ignores a stored result; ``verbose``
    says on stderr where the result is kept."""
    path = cache_path(name, key)
    if verbose and cache:
        print(f"{name}: cache {path}", file=sys.stderr, flush=True)
    if cache and not refresh and path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    result = run()
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, path)
    return result
