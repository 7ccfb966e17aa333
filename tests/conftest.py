"""Shared test configuration: helper modules on the path, Hypothesis profiles and a clean redactor
per test."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from smtpdiag.redact import REDACTOR

sys.path.insert(0, str(Path(__file__).parent))

# Property tests run a fixed number of examples per test, so the suite's duration does not
# depend on the machine. `deadline=None` turns off the per-example time limit, because the
# first example pays for imports and caches. `derandomize` makes a CI run repeatable, and
# `database=None` stores no failing examples between runs. Hypothesis still writes caches to
# `.hypothesis/`, which its own `.gitignore` keeps out of git.
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, database=None)
# A longer, randomized search for local runs: HYPOTHESIS_PROFILE=thorough.
settings.register_profile("thorough", max_examples=5000, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Clear the process-wide redactor after each test, so that the secrets of one test
    cannot mask the output that another test checks."""
    yield
    REDACTOR.clear()
