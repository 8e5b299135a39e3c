"""Chapter 5's closing table (``llmarch.lab.why_summary``): every reason gets a row in both
languages, and the overview's statements hold for numbers shaped like the published runs and
fail when a number contradicts them."""

from __future__ import annotations

import copy

import pytest

from llmarch.lab import why_summary

#: The shape of the published numbers (``why_summary._numbers``).
PUBLISHED = {
    "zero-shot": {"causal": (0.38, 0.41), "prefix": (0.39, 0.34), "encdec": (0.82, 0.19)},
    "rank": {"causal": {"initial": (64.0, 0.0), "trained": (58.7, 0.3)},
             "bidirectional": {"initial": (16.0, 0.1), "trained": (56.8, 3.5)}},
    "rank_smallest": 2e-18, "rank_size": 64,
    "harder-task": {"causal": {"loss": (1.72, 0.01), "predicted": 1024, "tokens": 1024, "probe": (0.75, 0.01)},
                    "bidirectional": {"loss": (2.13, 0.11), "predicted": 160, "tokens": 1024,
                                      "probe": (0.60, 0.05)}},
    "in-context": {"causal": (0.25, 0.02), "prefix": (0.28, 0.07), "gd": 0.31, "least_squares": 0.0},
    "positions": {"r2": {"causal": (0.27, 0.01), "bidirectional": (-0.01, 0.0)},
                  "loss": {"none": (2.22, 0.0), "learned": (2.21, 0.01), "rotary": (2.01, 0.0)}},
    "kv-cache": {"causal": 6.6, "prefix": 38.6, "encdec": 18.8},
}


def changed(path: tuple, value) -> dict:
    numbers = copy.deepcopy(PUBLISHED)
    target = numbers
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return numbers


def failing(numbers, monkeypatch) -> list[str]:
    monkeypatch.setattr(why_summary, "_numbers", lambda results: numbers)
    return [statement for statement, holds in why_summary.claims({}) if not holds]


def test_the_statements_hold_for_the_published_shape(monkeypatch):
    assert failing(PUBLISHED, monkeypatch) == []


@pytest.mark.parametrize("path, value, broken", [
    (("zero-shot", "causal"), (0.9, 0.1), "5.1"),
    (("rank", "bidirectional", "trained"), (30.0, 2.0), "5.2: after training"),
    (("rank_smallest",), 1e-3, "5.2: the trained causal maps"),
    (("harder-task", "causal", "loss"), (2.3, 0.05), "5.3"),
    (("in-context", "prefix"), (0.6, 0.02), "5.4"),
    (("positions", "r2", "causal"), (0.05, 0.01), "5.5"),
    (("kv-cache", "prefix"), 10.0, "5.6"),
])
def test_a_statement_fails_when_its_number_contradicts_it(monkeypatch, path, value, broken):
    assert any(statement.startswith(broken) for statement in failing(changed(path, value), monkeypatch))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_closing_table_has_a_row_per_reason_in_both_languages(monkeypatch, lang):
    monkeypatch.setattr(why_summary, "_numbers", lambda results: PUBLISHED)
    lines = why_summary.closing_table({}, lang).splitlines()
    assert len(lines) == 2 + len(why_summary.REASONS)
    for (page, _, _), line in zip(why_summary.REASONS, lines[2:]):
        assert f"({page}.md)" in line and line.count(" | ") == 3
    assert "82 ± 19" in lines[2] and "38.6" in lines[-1]
