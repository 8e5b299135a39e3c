"""Shared test fixtures: a ``device`` parameter, fixed seeds and hypothesis profiles.

* ``device`` runs a test on ``"cpu"`` and, where ``torch.cuda.is_available()``, again on
  ``"cuda"`` -- so one CUDA run executes the same suite on a GPU.
* Every test starts from the same random state (``torch.manual_seed(0)``, ``random.seed(0)``).
* ``cpp_compiler``: skips a test that needs ``torch.compile`` on the CPU (inductor builds C++)
  where no C++ compiler is installed -- a missing system component, named in the skip reason.
  Any other failure of ``torch.compile`` fails the test.
* Hypothesis: profile ``"ci"`` (default; no deadline, few examples, so the suite stays fast on
  2 cores) and ``"thorough"`` (select with ``HYPOTHESIS_PROFILE=thorough``).
"""

from __future__ import annotations

import os
import random
import shutil

import pytest
import torch

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is a test extra; tests that need it import it themselves
    settings = None

if settings is not None:
    _common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    settings.register_profile("ci", max_examples=15, derandomize=True, **_common)
    settings.register_profile("thorough", max_examples=300, **_common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """The device to run on: ``cpu``, plus ``cuda`` when a GPU is present."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _fixed_seed():
    """Seed Python and torch (all devices) before every test."""
    random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def cpp_compiler() -> str:
    """The C++ compiler inductor looks for on the CPU ($CXX, else g++); skip, with the reason,
    where none is installed."""
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if compiler is None:
        pytest.skip("no C++ compiler for torch.compile's CPU backend: install g++ (or set CXX)")
    return compiler
