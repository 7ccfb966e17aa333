"""Tests of the render package: the output formats and what importing it loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from smtpdiag.render import OutputFormat


def test_output_format_values() -> None:
    assert [form.value for form in OutputFormat] == ["table", "json", "nagios", "junit"]


@pytest.mark.parametrize(
    "module",
    [
        "smtpdiag.render",
        "smtpdiag.render.json_report",
        "smtpdiag.render.nagios",
        "smtpdiag.render.junit",
        "smtpdiag.render.text",
    ],
)
def test_import_does_not_load_rich(module: str) -> None:
    code = f"import sys, {module}; print(any(name.split('.')[0] == 'rich' for name in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
