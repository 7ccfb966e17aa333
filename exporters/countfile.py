"""Log counter values kept between ``smtpdiag exporter --once`` runs.

A textfile for node_exporter is read again after every run, so its counters must keep growing
from run to run as a running exporter's do. ``--once`` therefore loads the values that the
previous run saved, adds the lines appended since then (the follower's state file records
where reading of each file stopped), and saves the sum. The file sits beside the state file,
with the suffix ``.counts``, is written atomically with mode 0600, and contains no secret:
only label values of closed sets and numbers.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from exporters.logcounters import ATTEMPT_SOURCES, LEAK_SOURCES, SOURCES, LogCounts
from exporters.reasons import LOG_REASONS, PROVIDERS
from smtpdiag.errors import UsageError
from smtpdiag.logs.reader import open_regular_file

SUFFIX = ".counts"
"""Suffix added to the state file's path to name the counter file."""

MAX_BYTES = 1 << 20
"""Largest counter file read: far more than the closed label sets can fill."""

_Key = TypeVar("_Key")


def counts_path(state_file: str) -> str:
    """Return the path of the counter file that belongs to ``state_file``."""
    return state_file + SUFFIX


def load_counts(path: str) -> LogCounts | None:
    """Return the counter values saved in ``path``, or None when the file does not exist.

    Raises:
        UsageError: the file cannot be read or does not hold valid counter values.
    """
    try:
        # A FIFO or device at the path is rejected, not read: a FIFO would block the run.
        with open_regular_file(path, "counter file") as stream:
            data = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise _invalid(path, f"cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_BYTES:
        raise _invalid(path, f"is larger than {MAX_BYTES} bytes")
    try:
        document = json.loads(data)
        return _counts(document)
    except (ValueError, TypeError, KeyError) as error:
        raise _invalid(path, f"does not hold valid counter values ({error})") from None


def save_counts(path: str, counts: LogCounts) -> None:
    """Write ``counts`` to ``path`` atomically, with mode 0600.

    Raises:
        UsageError: the file cannot be written.
    """
    document = {
        "attempts": _rows(counts.attempts.items()),
        "failures": _rows(counts.failures.items()),
        "lines": dict(counts.lines),
        "parse_errors": dict(counts.parse_errors),
        "secret_leaks": dict(counts.secret_leaks),
    }
    directory = os.path.dirname(os.path.abspath(path))
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".counts-", dir=directory)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                json.dump(document, stream, sort_keys=True)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise UsageError(
            f"Cannot write the counter file {path}: {error.strerror or error}.",
            "Set [exporter] state_file to a path in a directory the exporter can write.",
            value=path,
        ) from None


def _rows(items: Iterable[tuple[tuple[str, ...], int]]) -> list[list[Any]]:
    return [[*key, count] for key, count in sorted(items)]


def _counts(document: Any) -> LogCounts:
    """Build counter values from the parsed file; raise ValueError for anything invalid."""
    if not isinstance(document, dict):
        raise ValueError("the top level is not an object")
    attempts = _keyed(document["attempts"], 2, _attempt_key)
    failures = _keyed(document["failures"], 3, _failure_key)
    return LogCounts(
        attempts=MappingProxyType(attempts),
        failures=MappingProxyType(failures),
        lines=MappingProxyType(_by_source(document["lines"], SOURCES)),
        parse_errors=MappingProxyType(_by_source(document["parse_errors"], SOURCES)),
        secret_leaks=MappingProxyType(_by_source(document["secret_leaks"], LEAK_SOURCES)),
        files_followed=0,
    )


def _keyed(rows: Any, width: int, check: Callable[[tuple[str, ...]], _Key]) -> dict[_Key, int]:
    if not isinstance(rows, list):
        raise ValueError("a counter table is not a list")
    values: dict[_Key, int] = {}
    for row in rows:
        if not isinstance(row, list) or len(row) != width + 1:
            raise ValueError(f"the row {row!r} does not have {width} labels and a count")
        values[check(tuple(row[:width]))] = _count(row[width])
    return values


def _attempt_key(labels: tuple[str, ...]) -> tuple[str, str]:
    source, provider = labels
    if source not in ATTEMPT_SOURCES or provider not in PROVIDERS:
        raise ValueError(f"unknown labels {labels!r}")
    return source, provider


def _failure_key(labels: tuple[str, ...]) -> tuple[str, str, str]:
    source, provider, reason = labels
    if source not in ATTEMPT_SOURCES or provider not in PROVIDERS or reason not in LOG_REASONS:
        raise ValueError(f"unknown labels {labels!r}")
    return source, provider, reason


def _by_source(values: Any, sources: tuple[str, ...]) -> dict[str, int]:
    if not isinstance(values, dict):
        raise ValueError("a counter table is not an object")
    unknown = set(values) - set(sources)
    if unknown:
        raise ValueError(f"unknown source {sorted(unknown)[0]!r}")
    return {source: _count(count) for source, count in values.items()}


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def _invalid(path: str, problem: str) -> UsageError:
    return UsageError(
        f"The counter file {path} {problem}.",
        "Delete it: the log counters then start again from 0, which Prometheus reads as a "
        "counter reset.",
        value=path,
    )
