"""Shared matplotlib set-up for the figure scripts (Agg backend, CJK font when present)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from matplotlib import font_manager  # noqa: E402

logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # no "findfont" chatter

CJK_FONTS = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC", "SimHei"]


def setup() -> bool:
    """Configure matplotlib; return True when a font with Chinese glyphs is available."""
    available = {f.name for f in font_manager.fontManager.ttflist}
    cjk = [name for name in CJK_FONTS if name in available]
    matplotlib.rcParams.update(
        {
            "font.family": "sans-serif",
            "font.sans-serif": cjk + ["DejaVu Sans"],
            "axes.unicode_minus": False,
            "svg.fonttype": "path",  # text as outlines: the SVG needs no font in the browser
            "svg.hashsalt": "llmarch",  # deterministic ids
            "figure.dpi": 100,
        }
    )
    return bool(cjk)


def labels(zh: str, en: str, lang: str, cjk: bool) -> str:
    """The label for ``lang``; English when Chinese glyphs are unavailable."""
    return zh if lang == "zh" and cjk else en


def texts_for(lang: str, cjk: bool, **pairs: tuple[str, str]) -> dict[str, str]:
    """``{key: labels(zh, en, lang, cjk)}`` for every ``key=(zh, en)`` pair."""
    return {key: labels(zh, en, lang, cjk) for key, (zh, en) in pairs.items()}


def save(fig, out_dir, stem: str, lang: str):
    """Save ``fig`` as ``<stem>.svg`` (Chinese) or ``<stem>.en.svg`` (English); return the path."""
    import matplotlib.pyplot as plt

    path = out_dir / (f"{stem}.svg" if lang == "zh" else f"{stem}.{lang}.svg")
    fig.savefig(path, bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return path


def run_alone(draw) -> None:
    """Draw one script's figures into ``docs/figures/_build`` and print their paths: what
    ``python docs/figures/<name>.py`` does (the site build calls ``draw`` itself)."""
    out = Path(__file__).resolve().parent / "_build"
    out.mkdir(exist_ok=True)
    print("\n".join(str(p) for p in draw(out)))


def save_text(out_dir, name: str, text: str):
    """Write ``text`` (plus a final newline) to ``out_dir / name``, UTF-8; return the path."""
    path = out_dir / name
    path.write_text(text + "\n", encoding="utf-8")
    return path


def save_tables(out_dir, stem: str, table, result) -> list:
    """``table(result, lang)`` for both languages: ``<stem>.txt`` (Chinese) and ``<stem>.en.txt``
    (English), which the two pages include; return the paths."""
    return [save_text(out_dir, f"{stem}{suffix}.txt", table(result, lang))
            for lang, suffix in (("zh", ""), ("en", ".en"))]
