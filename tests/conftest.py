"""Shared test configuration: helper modules on the path and a clean redactor per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpdiag.redact import REDACTOR

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Clear the process-wide redactor after each test, so that the secrets of one test
    cannot mask the output that another test checks."""
    yield
    REDACTOR.clear()
