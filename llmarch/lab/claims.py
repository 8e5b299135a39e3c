"""What a chapter says about an experiment, checked against the experiment's result.

A page that reads a result ("the encoder-decoder is far ahead") states it in prose, which no
doctest runs when the numbers come from a cached long run. Each experiment therefore lists its
page's statements as ``(statement, holds)`` pairs computed from the result; the run's text on the
page prints them, and the figure script that draws the page refuses to build the site when one
of them does not hold, so the prose cannot drift from the numbers.
"""

from __future__ import annotations

__all__ = ["Claims", "claim_lines", "require"]

#: ``[(statement, holds)]``: a statement in words and whether the result bears it out.
Claims = list[tuple[str, bool]]


def claim_lines(claims: Claims) -> list[str]:
    """One line per statement, ``holds`` or ``DOES NOT HOLD`` in front.

    >>> claim_lines([("2 > 1", 2 > 1), ("1 > 2", 1 > 2)])
    ['holds          2 > 1', 'DOES NOT HOLD  1 > 2']
    """
    return [f"{'holds' if holds else 'DOES NOT HOLD':<15}{statement}" for statement, holds in claims]


def require(claims: Claims, what: str) -> None:
    """Raise ``AssertionError`` naming every statement of ``what`` that does not hold.

    >>> require([("2 > 1", True)], "arithmetic")
    >>> require([("1 > 2", False)], "arithmetic")
    Traceback (most recent call last):
    ...
    AssertionError: arithmetic: the page says what this result does not show: 1 > 2
    """
    failed = [statement for statement, holds in claims if not holds]
    if failed:
        raise AssertionError(f"{what}: the page says what this result does not show: " + "; ".join(failed))
