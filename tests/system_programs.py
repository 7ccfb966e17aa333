"""Locate system programs that some tests drive (msmtp, swaks, promtool, Dovecot, Postfix).

Outside CI a missing program skips the test. Under ``CI=true`` it fails the test, because
``.ci/run`` installs every such program and a skip there would hide a broken install step.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

EXTRACTED_TOOLS = str(Path(__file__).resolve().parent.parent / ".ci" / "tools" / "usr" / "bin")
"""Where .ci/run unpacks programs taken out of Debian packages without installing them
(promtool)."""


def require_program(name: str) -> str:
    """Return the path of ``name``, or skip (fail under CI) when it is not installed."""
    path = shutil.which(name) or shutil.which(name, path=f"/usr/sbin:/sbin:{EXTRACTED_TOOLS}")
    if path is not None:
        return path
    message = f"{name} is not installed; .ci/run installs it from Debian packages"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)
