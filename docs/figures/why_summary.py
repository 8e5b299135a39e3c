"""Chapter 5's closing table (both languages), written from the six sections' cached experiments;
the build stops when a statement the chapter's overview makes about them does not hold
(``why_summary.claims``). Redraw alone: ``python docs/figures/why_summary.py``.
"""

from __future__ import annotations

from _common import run_alone, save_tables, save_text


def draw(out_dir):
    from llmarch.lab.claims import claim_lines, require
    from llmarch.lab.why_summary import claims, closing_table, load_results

    results = load_results(verbose=True)
    require(claims(results), "chapter 5, the closing table")
    return save_tables(out_dir, "why_summary_table", closing_table, results) + [
        save_text(out_dir, "why_summary_claims.txt", "\n".join(claim_lines(claims(results))))]


if __name__ == "__main__":
    run_alone(draw)
