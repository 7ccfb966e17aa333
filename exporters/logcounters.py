"""Counters of AUTH attempts, failures, lines and leaked secrets read from followed mail logs.

``LogCounters`` counts as ``smtpdiag logs`` does, without a time window: every line read
while following adds to the counters, which only grow. A SUCCESS or FAILURE event is one
attempt, and a FAILURE also adds one failure under its reason. DELIVERY events (the fate of a
message whose failure another line counted) and CAUSE events (the reason behind a failure
another line counted, such as sasl-xoauth2's token error behind Postfix's own line) add
nothing. Every label value comes from a closed set (``exporters.reasons``), so memory stays
constant however many lines arrive.

``LogFollowerThread`` follows the files with ``smtpdiag.logs.follow.Follower`` and feeds the
counters.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar
from zoneinfo import ZoneInfo

from exporters.reasons import (
    GENERIC_PROVIDER,
    PRESET_REASONS,
    PROVIDERS,
    provider_for_event,
    reason_label,
)
from exporters.settings import LogFile
from smtpdiag.errors import UsageError
from smtpdiag.logs.dispatch import LineParser
from smtpdiag.logs.follow import Follower
from smtpdiag.logs.leaks import find_leaks
from smtpdiag.logs.model import LineResult, Outcome, Source
from smtpdiag.logs.msmtp import DEFAULT_TIME_FORMAT
from smtpdiag.logs.reader import LogLine
from smtpdiag.logs.timestamps import TimeReader

logger = logging.getLogger(__name__)

SOURCES: tuple[str, ...] = tuple(source.value for source in Source)
"""Every value of the ``source`` label of the line counters."""

ATTEMPT_SOURCES: tuple[str, ...] = (
    Source.MSMTP.value,
    Source.MSMTPD.value,
    Source.POSTFIX.value,
    Source.EXIM.value,
    Source.DOVECOT.value,
)
"""Sources whose parsers report AUTH attempts; journald entries of other programs report none."""

UNKNOWN_SOURCE = "unknown"
"""Source label of a secret found in a line of no known mail program."""

LEAK_SOURCES: tuple[str, ...] = (*SOURCES, UNKNOWN_SOURCE)
"""Every value of the ``source`` label of the leak counter."""

_Key = TypeVar("_Key")

STATE_SAVE_SECONDS = 10.0
"""Seconds between two saves of the state file while following."""


@dataclass(frozen=True)
class LogCounts:
    """Counter values at one moment; every mapping is a read-only copy."""

    attempts: Mapping[tuple[str, str], int]
    """AUTH attempts by (source, provider)."""
    failures: Mapping[tuple[str, str, str], int]
    """Failed AUTH attempts by (source, provider, reason)."""
    lines: Mapping[str, int]
    """Lines attributed to each source."""
    parse_errors: Mapping[str, int]
    """Lines of a known source that look relevant but could not be read, by source."""
    secret_leaks: Mapping[str, int]
    """Lines that contain a secret, by source (``unknown`` for lines of no known source)."""
    files_followed: int
    """Configured log files that were readable regular files at the last poll."""


@dataclass
class _Deltas:
    """Counts of one batch of lines, merged into the totals under the lock."""

    attempts: Counter[tuple[str, str]]
    failures: Counter[tuple[str, str, str]]
    lines: Counter[str]
    parse_errors: Counter[str]
    secret_leaks: Counter[str]


def _new_deltas() -> _Deltas:
    return _Deltas(Counter(), Counter(), Counter(), Counter(), Counter())


class LogCounters:
    """Thread-safe counters of the lines fed to them.

    Series that may appear later are present at 0 from the start. These are the attempts of
    each source with a parser and each provider of ``providers`` plus ``generic``, and the
    failures of those pairs with every reason of ``PRESET_REASONS``. Lines, parse errors and leaks
    start at 0 for every source. Provider names outside the closed set are ignored.
    """

    def __init__(self, log_files: Sequence[LogFile], providers: Collection[str] = ()) -> None:
        self._parsers = _parsers_by_path(log_files)
        self._default_parser: LineParser | None = None
        self._parse_lock = threading.Lock()
        self._lock = threading.Lock()
        known = [name for name in PROVIDERS if name in providers or name == GENERIC_PROVIDER]
        self._attempts = {(source, name): 0 for source in ATTEMPT_SOURCES for name in known}
        self._failures = {
            (source, name, reason): 0
            for source in ATTEMPT_SOURCES
            for name in known
            for reason in sorted(PRESET_REASONS)
        }
        self._lines = dict.fromkeys(SOURCES, 0)
        self._parse_errors = dict.fromkeys(SOURCES, 0)
        self._secret_leaks = dict.fromkeys(LEAK_SOURCES, 0)
        self._files_followed = 0

    def feed(self, lines: Iterable[LogLine]) -> None:
        """Parse ``lines``, look for secrets in them and add their events to the counters."""
        deltas = _new_deltas()
        # One batch at a time: the Postfix parser pairs lines that follow each other.
        with self._parse_lock:
            for line in lines:
                self._count_line(line, deltas)
        with self._lock:
            _merge(self._attempts, deltas.attempts)
            _merge(self._failures, deltas.failures)
            _merge(self._lines, deltas.lines)
            _merge(self._parse_errors, deltas.parse_errors)
            _merge(self._secret_leaks, deltas.secret_leaks)

    def add(self, counts: LogCounts) -> None:
        """Add counter values counted elsewhere, such as those a ``--once`` run saved."""
        with self._lock:
            _merge(self._attempts, Counter(counts.attempts))
            _merge(self._failures, Counter(counts.failures))
            _merge(self._lines, Counter(counts.lines))
            _merge(self._parse_errors, Counter(counts.parse_errors))
            _merge(self._secret_leaks, Counter(counts.secret_leaks))

    def set_files_followed(self, count: int) -> None:
        """Store the number of configured log files that are readable regular files."""
        with self._lock:
            self._files_followed = count

    def snapshot(self) -> LogCounts:
        """Return a frozen copy of every counter."""
        with self._lock:
            return LogCounts(
                attempts=MappingProxyType(dict(self._attempts)),
                failures=MappingProxyType(dict(self._failures)),
                lines=MappingProxyType(dict(self._lines)),
                parse_errors=MappingProxyType(dict(self._parse_errors)),
                secret_leaks=MappingProxyType(dict(self._secret_leaks)),
                files_followed=self._files_followed,
            )

    def _count_line(self, line: LogLine, deltas: _Deltas) -> None:
        result = self._parser_for(line.path).parse(line.text)
        source = result.source.value if result.source is not None else None
        if find_leaks(line.text):
            deltas.secret_leaks[source or UNKNOWN_SOURCE] += 1
        if source is None:
            return

        deltas.lines[source] += 1
        if result.parse_error:
            deltas.parse_errors[source] += 1
        _count_events(result, deltas)

    def _parser_for(self, path: str) -> LineParser:
        parser = self._parsers.get(path)
        if parser is not None:
            return parser
        # A path that no LogFile names: the machine's zone and msmtp's default format.
        if self._default_parser is None:
            self._default_parser = LineParser(TimeReader(None), DEFAULT_TIME_FORMAT)
        return self._default_parser


def _count_events(result: LineResult, deltas: _Deltas) -> None:
    for event in result.events:
        if event.outcome is Outcome.CAUSE or event.outcome is Outcome.DELIVERY:
            continue
        source = event.source.value
        provider = provider_for_event(event)
        deltas.attempts[(source, provider)] += 1
        if event.outcome is Outcome.FAILURE:
            deltas.failures[(source, provider, reason_label(event.reason))] += 1


def _merge(totals: dict[_Key, int], deltas: Counter[_Key]) -> None:
    for key, count in deltas.items():
        totals[key] = totals.get(key, 0) + count


def _parsers_by_path(log_files: Sequence[LogFile]) -> dict[str, LineParser]:
    """Return one parser per path, shared by the paths with the same zone and time format.

    ``TimeReader`` infers the year of year-less timestamps from the time it is made.
    """
    # NOTE: the counters ignore timestamps, so a year inferred at start-up that goes stale
    # after New Year changes no count.
    shared: dict[tuple[str | None, str | None], LineParser] = {}
    by_path: dict[str, LineParser] = {}
    for log_file in log_files:
        key = (log_file.timezone, log_file.msmtp_time_format)
        parser = shared.get(key)
        if parser is None:
            zone = ZoneInfo(log_file.timezone) if log_file.timezone else None
            parser = shared[key] = LineParser(TimeReader(zone), log_file.msmtp_time_format)
        by_path[log_file.path] = parser
    return by_path


ErrorCallback = Callable[[str, str], None]
"""Receives (path, message) for each problem with a followed file or the state file."""


class LogFollowerThread:
    """Follows the log files in a background thread and feeds each poll's lines to counters.

    Following starts at the end of each file, or at the position saved in ``state_file``. The
    state is saved every ``STATE_SAVE_SECONDS`` and on ``stop``. Each problem with a path (it
    is missing, not a regular file, or not readable) is passed to ``on_error`` once, and again
    only after it changed.

    Raises:
        UsageError: the state file cannot be used (see ``Follower``).
    """

    def __init__(
        self,
        counters: LogCounters,
        log_files: Sequence[LogFile],
        *,
        state_file: str | None = None,
        interval: float = 1.0,
        on_error: ErrorCallback | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counters = counters
        self._paths = tuple(log_file.path for log_file in log_files)
        self._state_file = state_file
        self._interval = interval
        self._on_error = on_error
        self._monotonic = monotonic
        self._follower = Follower(self._paths, state_file=state_file, start_at_end=True)
        self._problems: dict[str, str | None] = dict.fromkeys(self._paths)
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved_at = monotonic()
        self._closed = False
        self._check_paths()

    def start(self) -> None:
        """Start polling in a daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="log-follower", daemon=True)
        self._thread.start()
        logger.info("following %d log files every %g s", len(self._paths), self._interval)

    def poll_once(self) -> int:
        """Read what was appended since the last poll, feed it, and return the lines fed."""
        with self._poll_lock:
            if self._closed:
                return 0
            lines = self._follower.poll()
            self._counters.feed(lines)
            self._check_paths()
            if self._monotonic() - self._saved_at >= STATE_SAVE_SECONDS:
                self._save_state()
            return len(lines)

    def stop(self) -> None:
        """Stop the thread, save the state and close the files. Later calls do nothing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._poll_lock:
            if self._closed:
                return
            self._save_state()
            self._follower.close()
            self._closed = True
        logger.info("stopped following log files")

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll_once()
            except Exception as error:
                # Follower handles the errors of single files itself. Anything else is logged
                # with its traceback and the next poll tries again, because a follower thread
                # that ended would leave the counters frozen without a sign.
                logger.debug("polling the log files failed", exc_info=True)
                self._report(
                    ", ".join(self._paths),
                    f"polling the log files failed: {error.__class__.__name__}: {error}",
                )

    def _save_state(self) -> None:
        self._saved_at = self._monotonic()
        if self._state_file is None:
            return
        try:
            self._follower.save_state()
        except UsageError as error:
            self._report(self._state_file, str(error))

    def _check_paths(self) -> None:
        """Count the paths that can be read and report each new problem with one."""
        readable = 0
        for path in self._paths:
            problem = _path_problem(path)
            if problem is None:
                readable += 1
            elif problem != self._problems.get(path):
                self._report(path, problem)
            self._problems[path] = problem
        self._counters.set_files_followed(readable)

    def _report(self, path: str, message: str) -> None:
        if self._on_error is None:
            logger.warning("%s", message)
        else:
            self._on_error(path, message)


def _path_problem(path: str) -> str | None:
    """Return why ``path`` cannot be followed now, or None when it is a readable file."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return f"log file {path} does not exist; it is read when it appears"
    except OSError as error:
        return f"cannot read log file {path}: {error.strerror or error}"
    if not stat.S_ISREG(status.st_mode):
        return f"log file {path} is not a regular file"
    if not os.access(path, os.R_OK):
        return f"log file {path} is not readable (mode {status.st_mode & 0o777:o})"
    return None
