"""How many kinds of bad input the fuzz tests try (issue 10.4 asks for at least 200 in all).

Each ``tests/test_fuzz_*.py`` holds a table ``CASES``: one row per kind of bad (or unusual but
valid) input for one public entry point. Run with ``-s`` to see the counts.
"""

from __future__ import annotations

import test_fuzz_attention
import test_fuzz_generation
import test_fuzz_io
import test_fuzz_models
import test_fuzz_nn
import test_fuzz_training
from fuzz_harness import check_unique

MODULES = (test_fuzz_attention, test_fuzz_nn, test_fuzz_models, test_fuzz_generation, test_fuzz_training, test_fuzz_io)


def test_at_least_200_distinct_kinds_of_bad_input():
    cases = [case for module in MODULES for case in module.CASES]
    check_unique(cases)  # no kind counted twice, across the modules too
    for module in MODULES:
        entries = len({case.entry for case in module.CASES})
        print(f"{module.__name__:22s} {len(module.CASES):5d} kinds over {entries:3d} entry points")
    print(f"{'total':22s} {len(cases):5d} kinds over {len({case.entry for case in cases}):3d} entry points")
    assert len(cases) >= 200
