"""Renderers that turn a redacted ``Report`` into table, JSON, Nagios or JUnit output.

Renderers only format: verdicts come from the checks. This module imports nothing heavy, so
``rich`` is loaded only when the table renderer is imported.
"""

from __future__ import annotations

from enum import StrEnum


class OutputFormat(StrEnum):
    """Output format of ``smtpdiag check``, as given to ``--format``."""

    TABLE = "table"
    JSON = "json"
    NAGIOS = "nagios"
    JUNIT = "junit"
