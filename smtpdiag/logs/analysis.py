"""Aggregation of parsed log lines into totals, time windows, reasons, leaks and findings.

``Analysis`` takes one candidate line at a time, so a batch run over files and a follow run
share it. Its memory grows with the number of windows, distinct reasons, sources and leak
kinds per file, and with at most ``MAX_HOSTS`` hosts, never with the number of lines.
``summary`` turns the counters into a frozen ``LogsSummary`` with findings and a status.

``AnalysisOptions`` is defined in ``options``, the value classes and their JSON form in
``summary``, and the building of findings in ``findings``. This module re-exports their public
names, so callers can import all of them from here.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO

from smtpdiag.logs.classify import kind_for_reason
from smtpdiag.logs.findings import (
    MISSING_DETAIL,
    SECRET_KIND_NAMES,
    TOP_REASONS,
    build_findings,
    lines_text,
    no_attempts_finding,
    omit_missing,
    reason_details,
)
from smtpdiag.logs.model import NO_RESULT, Fate, LineResult, LogEvent, Outcome, Source
from smtpdiag.logs.options import THRESHOLD_TOLERANCE, AnalysisOptions, exceeds_threshold
from smtpdiag.logs.summary import (
    LOGS_SCHEMA,
    HostCount,
    LeakReport,
    LogsSummary,
    ReasonCount,
    RecentFailure,
    SourceCount,
    WindowCount,
    iso_time,
    window_dict,
)
from smtpdiag.models import Status, worst_status
from smtpdiag.redact import redact

if TYPE_CHECKING:
    from smtpdiag.logs.leaks import Leak
    from smtpdiag.logs.reader import LogLine
    from smtpdiag.spec import FindingKind

__all__ = [
    "LOGS_SCHEMA",
    "MAX_EXAMPLE_LENGTH",
    "MAX_HOSTS",
    "MISSING_DETAIL",
    "OTHER_HOSTS",
    "RECENT_FAILURES",
    "SECRET_KIND_NAMES",
    "THRESHOLD_TOLERANCE",
    "TOP_REASONS",
    "Analysis",
    "AnalysisOptions",
    "HostCount",
    "LeakFinder",
    "LeakMasker",
    "LeakReport",
    "LogsSummary",
    "Parser",
    "ReasonCount",
    "RecentFailure",
    "SourceCount",
    "WindowCount",
    "analyze_files",
    "exceeds_threshold",
    "iso_time",
    "lines_text",
    "no_attempts_finding",
    "window_dict",
]

MAX_HOSTS = 1000
"""Distinct hosts counted one by one; events of further hosts count under ``OTHER_HOSTS``."""

OTHER_HOSTS = "other"

RECENT_FAILURES = 10
"""Failures kept for the follow display."""

MAX_EXAMPLE_LENGTH = 1000
"""Characters of an example line kept per reason; longer lines are cut with an ellipsis."""

_BYTE_ARRAY_MESSAGE = re.compile(r'"MESSAGE":\s*\[')
"""A journal entry whose MESSAGE is an array of byte values (not valid UTF-8)."""

Parser = Callable[[str], LineResult]
LeakFinder = Callable[[str], "Sequence[Leak]"]
LeakMasker = Callable[[str, "Sequence[Leak]"], str]


class _SourceCounter:
    """Mutable counters of one source while lines are fed."""

    __slots__ = ("attempts", "bounced_after_failure", "failures", "fates", "lines", "parse_errors")

    def __init__(self) -> None:
        self.lines = 0
        self.attempts = 0
        self.failures = 0
        self.parse_errors = 0
        self.fates: dict[Fate, int] = {}
        # Bounces of events that are not successful attempts: mail lost to a failure at or
        # before AUTH, not to a later refusal such as an unknown recipient.
        self.bounced_after_failure = 0


class _ReasonCounter:
    """Count and first example of one reason while lines are fed."""

    __slots__ = ("count", "event", "example", "reply_text")

    def __init__(self, event: LogEvent, example: str, reply_text: str | None) -> None:
        self.count = 0
        self.event = event
        self.example = example
        self.reply_text = reply_text  # secrets masked


class Analysis:
    """Accumulates lines into totals, per-source/host/reason counts, windows, leaks and examples,
    in memory bounded by the number of windows and distinct reasons (hosts capped).

    ``parser``, ``find_leaks`` and ``mask_leaks`` replace the real line parser and leak
    finder, for tests; by default they are ``dispatch.LineParser`` and ``leaks``.
    """

    def __init__(
        self,
        options: AnalysisOptions,
        now: Callable[[], float] = time.time,
        *,
        parser: Parser | None = None,
        find_leaks: LeakFinder | None = None,
        mask_leaks: LeakMasker | None = None,
    ) -> None:
        self.options = options
        self._parse = parser or _default_parser(options, now)
        if find_leaks is None or mask_leaks is None:
            from smtpdiag.logs import leaks

            find_leaks = find_leaks or leaks.find_leaks
            mask_leaks = mask_leaks or leaks.mask_leaks
        self._find_leaks = find_leaks
        self._mask_leaks = mask_leaks
        self._lines = 0
        self._attempts = 0
        self._failures = 0
        self._parse_errors = 0
        self._sources: dict[Source, _SourceCounter] = {}
        self._since = options.since if options.since is not None else -math.inf
        self._until = options.until if options.until is not None else math.inf
        self._window_size = options.window_seconds
        self._hosts: dict[str, list[int]] = {}
        self._reasons: dict[str, _ReasonCounter] = {}
        self._windows: dict[float, list[int]] = {}
        self._leaks: dict[tuple[str, str], list[int]] = {}
        self._read_errors: list[tuple[str, str]] = []
        self._outside = 0
        self._latest_outside: float | None = None
        self.recent_failures: deque[RecentFailure] = deque(maxlen=RECENT_FAILURES)
        """The last failures counted, oldest first."""

    @property
    def attempts_counted(self) -> int:
        """AUTH attempts counted so far."""
        return self._attempts

    @property
    def failures_counted(self) -> int:
        """Failures counted so far; the ``sequence`` of the latest recent failure."""
        return self._failures

    def feed(self, line: LogLine) -> None:
        """Parse one candidate line, look for secrets in it and count its events."""
        self._lines += 1
        text = line.text
        leaks = self._find_leaks(text)
        example = text
        if text[:1] == "{" and _BYTE_ARRAY_MESSAGE.search(text) is not None:
            message, decoded = self._decoded_message_leaks(text)
            if decoded:
                # The bytes spell a secret: the example shows the decoded text, masked.
                leaks = [*leaks, *decoded]
                example = self._mask_leaks(message, decoded)
        if leaks:
            self._count_leaks(line, leaks)

        result = self._parse(text)
        if result is NO_RESULT or result.source is None:
            return
        source = result.source
        counter = self._sources.get(source) or self._source(source)
        counter.lines += 1
        if result.parse_error:
            counter.parse_errors += 1
            self._parse_errors += 1

        if example is not text:
            text, leaks = example, ()
        since, until = self._since, self._until
        for event in result.events:
            timestamp = event.timestamp
            if timestamp is None or since <= timestamp < until:
                self._count_event(event, text, leaks, counter if event.source is source else None)
            elif event.outcome.is_attempt:
                self._count_outside(timestamp)

    def _decoded_message_leaks(self, text: str) -> tuple[str, Sequence[Leak]]:
        """Return a journal entry's MESSAGE written as an array of bytes, and its secrets.

        journald writes a MESSAGE that is not valid UTF-8 as byte values, which hide a
        secret from the search in the raw line.
        """
        from smtpdiag.logs.journal import record_from_json

        record = record_from_json(text)
        if record is None:
            return "", ()
        return record.message, self._find_leaks(record.message)

    def add_lines_read(self, count: int) -> None:
        """Count lines that were read but were not candidates, so never fed."""
        self._lines += count

    def add_read_error(self, path: str, error: str) -> None:
        """Record a file that could not be read; the summary reports it as a finding."""
        self._read_errors.append((path, error))

    def window_at(self, timestamp: float) -> WindowCount:
        """Return the window that contains ``timestamp``, empty when nothing was counted in it."""
        size = self.options.window_seconds
        start = timestamp - timestamp % size
        attempts, failures = self._windows.get(start, (0, 0))
        return self._window(start, attempts, failures)

    def summary(self) -> LogsSummary:
        """Return the totals, windows, leaks and findings of everything fed so far."""
        windows = tuple(
            self._window(start, counts[0], counts[1])
            for start, counts in sorted(self._windows.items())
        )
        reasons = self._reason_counts()
        leaks = tuple(
            LeakReport(path, counts[0], kind, counts[1])
            for (path, kind), counts in self._leaks.items()
        )
        ratio = self._failures / self._attempts if self._attempts else None
        findings = build_findings(
            self.options,
            lines=self._lines,
            attempts=self._attempts,
            failures=self._failures,
            failure_ratio=ratio,
            windows=windows,
            reasons=reasons,
            leaks=leaks,
            read_errors=self._read_errors,
            outside=(self._outside, self._latest_outside),
            bounced={
                source.value: counter.bounced_after_failure
                for source, counter in self._sources.items()
            },
        )
        status = worst_status(finding.severity.status for finding in findings)
        return LogsSummary(
            lines=self._lines,
            attempts=self._attempts,
            failures=self._failures,
            failure_ratio=ratio,
            by_source={
                source.value: _frozen_source(counter) for source, counter in self._sources.items()
            },
            by_host={name: HostCount(counts[0], counts[1]) for name, counts in self._hosts.items()},
            by_reason=reasons,
            windows=windows,
            leaks=leaks,
            parse_errors=self._parse_errors,
            read_errors=tuple(self._read_errors),
            findings=findings,
            status=Status.OK if status is Status.SKIPPED else status,
            options=self.options,
            attempts_outside=self._outside,
            latest_outside=self._latest_outside,
        )

    def _source(self, source: Source) -> _SourceCounter:
        counter = self._sources.get(source)
        if counter is None:
            counter = self._sources[source] = _SourceCounter()
        return counter

    def _count_outside(self, timestamp: float | None) -> None:
        self._outside += 1
        latest = self._latest_outside
        if timestamp is not None and (latest is None or timestamp > latest):
            self._latest_outside = timestamp

    def _count_event(
        self,
        event: LogEvent,
        text: str,
        leaks: Sequence[Leak],
        counter: _SourceCounter | None = None,
    ) -> None:
        """Count one event in range; ``counter`` is its source's, when the caller has it."""
        if counter is None:
            counter = self._source(event.source)
        fate = event.fate
        outcome = event.outcome
        if fate is not None:
            # A Postfix delivery line both counts as a failed attempt and defers the message.
            fates = counter.fates
            fates[fate] = fates.get(fate, 0) + 1
            if fate is Fate.BOUNCED and outcome is not Outcome.SUCCESS:
                counter.bounced_after_failure += 1
        if outcome is Outcome.CAUSE:
            # The failure was counted from another line; its cause is listed as a reason.
            self._count_reason(event, text, leaks)
            return
        if outcome is Outcome.DELIVERY:
            return

        failed = outcome is Outcome.FAILURE
        # NOTE: the totals and windows add every source. Logs of one chain (Postfix, msmtpd,
        # msmtp and the server) each record the same message, so read together they count
        # one failed AUTH once per log. The per-source counts stay exact.
        self._attempts += 1
        counter.attempts += 1
        if failed:
            self._count_failure(event, text, leaks, counter)

        # Host and window counters, inline: this runs for every attempt.
        host = event.host
        if host is not None:
            counts = self._hosts.get(host) or self._new_host(host)
            counts[0] += 1
            if failed:
                counts[1] += 1
        timestamp = event.timestamp
        if timestamp is not None:
            start = timestamp - timestamp % self._window_size
            window = self._windows.get(start) or self._new_window(start)
            if window is not None:
                window[0] += 1
                if failed:
                    window[1] += 1

    def _count_failure(
        self, event: LogEvent, text: str, leaks: Sequence[Leak], counter: _SourceCounter
    ) -> None:
        """Count a failed attempt and its reason, and add it to ``recent_failures``."""
        self._failures += 1
        counter.failures += 1
        self._count_reason(event, text, leaks)
        self.recent_failures.append(
            RecentFailure(
                self._failures, event.timestamp, event.source.value, event.host, event.reason
            )
        )

    def _new_host(self, host: str) -> list[int]:
        """Return the counters of a host not seen before; ``OTHER_HOSTS``'s past the limit."""
        key = host if len(self._hosts) < MAX_HOSTS else OTHER_HOSTS
        return self._hosts.setdefault(key, [0, 0])

    def _new_window(self, start: float) -> list[int] | None:
        """Return new counters for the window at ``start``; None when it cannot be shown.

        A window beyond the years that ISO 8601 output can show is not kept: its events count
        as events without a time.
        """
        if iso_time(start + self._window_size) is None:
            return None
        counts = self._windows[start] = [0, 0]
        return counts

    def _count_reason(self, event: LogEvent, text: str, leaks: Sequence[Leak]) -> None:
        if event.reason is None:
            return
        counter = self._reasons.get(event.reason)
        if counter is None:
            reply_text = event.reply_text
            if leaks and reply_text:
                reply_text = self._mask_leaks(reply_text, self._find_leaks(reply_text))
            example = self._example(text, leaks)
            counter = self._reasons[event.reason] = _ReasonCounter(event, example, reply_text)
        counter.count += 1

    def _example(self, text: str, leaks: Sequence[Leak]) -> str:
        masked = self._mask_leaks(text, leaks) if leaks else text
        if len(masked) > MAX_EXAMPLE_LENGTH:
            masked = masked[: MAX_EXAMPLE_LENGTH - 1] + "…"
        return redact(masked)

    def _count_leaks(self, line: LogLine, leaks: Sequence[Leak]) -> None:
        for kind in {leak.kind for leak in leaks}:
            counts = self._leaks.get((line.path, kind))
            if counts is None:
                self._leaks[(line.path, kind)] = [line.number, 1]
            else:
                counts[1] += 1

    def _window(self, start: float, attempts: int, failures: int) -> WindowCount:
        options = self.options
        ratio = failures / attempts if attempts else 0.0
        over = attempts >= options.min_attempts and exceeds_threshold(
            failures, attempts, options.threshold
        )
        return WindowCount(
            start, start + self.options.window_seconds, attempts, failures, ratio, over
        )

    def _reason_counts(self) -> dict[str, ReasonCount]:
        ordered = sorted(self._reasons.items(), key=lambda item: (-item[1].count, item[0]))
        return {code: _frozen_reason(code, counter) for code, counter in ordered}


def _default_parser(options: AnalysisOptions, now: Callable[[], float]) -> Parser:
    from smtpdiag.logs.dispatch import LineParser
    from smtpdiag.logs.timestamps import TimeReader

    return LineParser(TimeReader(options.zone, now), options.msmtp_time_format).parse


def _frozen_source(counter: _SourceCounter) -> SourceCount:
    fates = {fate.value: count for fate, count in counter.fates.items()}
    return SourceCount(
        counter.lines, counter.attempts, counter.failures, counter.parse_errors, fates
    )


def _frozen_reason(code: str, counter: _ReasonCounter) -> ReasonCount:
    event = counter.event
    kind = kind_for_reason(code)
    details = reason_details(event, counter.reply_text)
    return ReasonCount(
        count=counter.count,
        source=event.source.value,
        example=counter.example,
        fix=_fix_text(kind, details) if kind is not None else None,
        reply_code=event.reply_code,
        enhanced_code=event.enhanced_code,
        host=event.host,
        details=details,
    )


def _fix_text(kind: FindingKind, details: Mapping[str, str]) -> str:
    """Return the fix of ``kind`` with the placeholders that ``details`` fills, and without
    those it cannot fill."""
    return omit_missing(kind, details).make(details=details).fix


def analyze_files(
    paths: Sequence[str],
    options: AnalysisOptions,
    *,
    stdin: BinaryIO | None = None,
    now: Callable[[], float] = time.time,
) -> LogsSummary:
    """Read ``paths`` (``-`` is ``stdin``) to the end and return their summary.

    A file that cannot be read becomes an ``auth_failure_rate.log_unreadable`` finding and
    the other files are still read.
    """
    from smtpdiag.logs.reader import LogReader

    analysis = Analysis(options, now)
    reader = LogReader(paths, stdin=stdin)
    fed = 0
    for line in reader:
        analysis.feed(line)
        fed += 1
    analysis.add_lines_read(reader.lines_read - fed)
    for path, error in reader.errors:
        analysis.add_read_error(path, error)
    return analysis.summary()
