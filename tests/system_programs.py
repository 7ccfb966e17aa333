"""Locate system programs that some tests drive (msmtp, swaks, promtool, Dovecot, Postfix).

Outside CI a missing program skips the test. Under ``CI=true`` it fails the test, because
``.ci/run`` installs every such program and a skip there would hide a broken install step.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

EXTRACTED_TOOLS = str(Path(__file__).resolve().parent.parent / ".ci" / "tools" / "usr" / "bin")
"""Where .ci/run unpacks programs taken out of Debian packages without installing them
(promtool)."""


ROOT_PROGRAMS = frozenset({"dovecot", "postfix"})
"""Programs that the lab starts as root: their masters switch to their own users."""


def require_program(name: str) -> str:
    """Return the path of ``name``, or skip (fail under CI) when it is not installed, or when
    it is one of ``ROOT_PROGRAMS`` and the tests do not run as root."""
    path = shutil.which(name) or shutil.which(name, path=f"/usr/sbin:/sbin:{EXTRACTED_TOOLS}")
    if path is None:
        _missing(f"{name} is not installed; .ci/run installs it from Debian packages")
    if name in ROOT_PROGRAMS and os.geteuid() != 0:
        _missing(f"the lab starts {name} as root; these tests run as root in CI")
    return path


def _missing(message: str) -> NoReturn:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)
