"""Aggregation of parsed log lines into totals, time windows, reasons, leaks and findings.

``Analysis`` takes one candidate line at a time, so a batch run over files and a follow run
share it. Its memory grows with the number of windows, distinct reasons, sources and leak
kinds per file, and with at most ``MAX_HOSTS`` hosts, never with the number of lines.
``summary`` turns the counters into a frozen ``LogsSummary`` with findings and a status.
"""

from __future__ import annotations

import math
import re
import string
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, BinaryIO

from smtpdiag import __version__
from smtpdiag.logs.classify import kind_for_reason, split_reply
from smtpdiag.logs.kinds import (
    FAILURES_BELOW_THRESHOLD,
    LOG_UNREADABLE,
    NO_ATTEMPTS,
    THRESHOLD_EXCEEDED,
    TOKEN_IN_LOG,
)
from smtpdiag.logs.model import NO_RESULT, Fate, LineResult, LogEvent, Outcome, Source
from smtpdiag.models import Finding, Severity, Status, worst_status
from smtpdiag.redact import redact

if TYPE_CHECKING:
    from smtpdiag.logs.leaks import Leak
    from smtpdiag.logs.reader import LogLine

LOGS_SCHEMA = "smtpdiag.logs/1"

MAX_HOSTS = 1000
"""Distinct hosts counted one by one; events of further hosts count under ``OTHER_HOSTS``."""

OTHER_HOSTS = "other"

TOP_REASONS = 5
"""Reasons that get a finding of their own, the most frequent first."""

RECENT_FAILURES = 10
"""Failures kept for the follow display."""

MAX_EXAMPLE_LENGTH = 1000
"""Characters of an example line kept per reason; longer lines are cut with an ellipsis."""

SECRET_KIND_NAMES = {
    "xoauth2_response": "an XOAUTH2 client response (user and access token in base64)",
    "oauthbearer_response": "an OAUTHBEARER client response (access token in base64)",
    "bearer_token": "a bearer access token",
    "jwt": "a JWT access or ID token",
    "google_access_token": "a Google access token (ya29.)",
    "refresh_token": "a refresh token",
    "client_secret": "an OAuth2 client secret",
}
"""Plain names of the kinds that ``leaks.find_leaks`` reports."""

MISSING_DETAIL = "(not in the log)"
"""Text for a title placeholder that the log line gives no value for."""

_BYTE_ARRAY_MESSAGE = re.compile(r'"MESSAGE":\s*\[')
"""A journal entry whose MESSAGE is an array of byte values (not valid UTF-8)."""

_EXIT_CODE = re.compile(r"(?:reported error|exit code|exitcode=EX_\w+ \()\s*(\d+)")

Parser = Callable[[str], LineResult]
LeakFinder = Callable[[str], "Sequence[Leak]"]
LeakMasker = Callable[[str, "Sequence[Leak]"], str]


@dataclass(frozen=True)
class AnalysisOptions:
    """Settings of one analysis run."""

    window_seconds: float = 900.0
    """Length of a window; windows start at multiples of it since the epoch."""
    threshold: float = 0.02
    """A window is over when failures / attempts is greater than this ratio (0 to 1)."""
    min_attempts: int = 20
    """... and it has at least this many attempts."""
    since: float | None = None
    """POSIX seconds; events before it are not counted. None: no lower bound."""
    until: float | None = None
    """POSIX seconds; events at or after it are not counted. None: no upper bound."""
    zone: tzinfo | None = None
    """Zone of timestamps that carry none; None means the machine's local zone."""
    msmtp_time_format: str | None = "%b %d %H:%M:%S"
    """strftime format of msmtp's ``logfile_time_format``; None when it is ``none``."""


@dataclass(frozen=True)
class SourceCount:
    """Counters of one log source."""

    lines: int
    attempts: int
    failures: int
    parse_errors: int
    fates: Mapping[str, int]
    """Messages per fate (``sent``, ``deferred``, ``bounced``) after failures."""


@dataclass(frozen=True)
class HostCount:
    """AUTH attempts and failures with one peer."""

    attempts: int
    failures: int


@dataclass(frozen=True)
class ReasonCount:
    """Failures with one reason."""

    count: int
    source: str
    """Source of the first line with this reason."""
    example: str
    """First line with this reason, secrets masked and redacted."""
    fix: str | None
    """Fix of the reason's finding kind; None for a code the catalog does not know."""
    reply_code: int | None = None
    enhanced_code: str | None = None
    host: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    """Values for the placeholders of the kind's title, from the first line."""


@dataclass(frozen=True)
class WindowCount:
    """One window ``[start, end)`` with attempts in it."""

    start: float
    end: float
    attempts: int
    failures: int
    failure_ratio: float
    over_threshold: bool


@dataclass(frozen=True)
class LeakReport:
    """Secrets of one kind found in one file; never the secret itself."""

    path: str
    line_number: int
    """First line with this kind of secret."""
    kind: str
    count: int
    """Lines with this kind of secret."""


@dataclass(frozen=True)
class RecentFailure:
    """One failure, kept for the follow display."""

    sequence: int
    """1 for the first failure counted, then increasing."""
    timestamp: float | None
    source: str
    host: str | None
    reason: str | None


@dataclass(frozen=True)
class LogsSummary:
    """Result of analysing log lines: counts, windows, leaks, findings and the status."""

    lines: int
    attempts: int
    failures: int
    failure_ratio: float | None
    """None when there were no attempts."""
    by_source: Mapping[str, SourceCount]
    by_host: Mapping[str, HostCount]
    by_reason: Mapping[str, ReasonCount]
    """Reason code to its count, most frequent first."""
    windows: tuple[WindowCount, ...]
    """Windows with at least one attempt, oldest first."""
    leaks: tuple[LeakReport, ...]
    parse_errors: int
    read_errors: tuple[tuple[str, str], ...]
    findings: tuple[Finding, ...]
    status: Status
    options: AnalysisOptions = field(default_factory=AnalysisOptions)
    attempts_outside: int = 0
    """AUTH attempts read whose time lies outside ``since`` to ``until``, so not counted."""
    latest_outside: float | None = None
    """Time of the newest of those attempts; None when there was none."""

    @property
    def fates(self) -> dict[str, int]:
        """Messages per fate over all sources."""
        totals: dict[str, int] = {}
        for counts in self.by_source.values():
            for fate, number in counts.fates.items():
                totals[fate] = totals.get(fate, 0) + number
        return totals

    def to_dict(self) -> dict[str, Any]:
        """Return the ``smtpdiag.logs/1`` JSON document."""
        return {
            "schema": LOGS_SCHEMA,
            "version": __version__,
            "totals": {
                "lines": self.lines,
                "attempts": self.attempts,
                "failures": self.failures,
                "failure_ratio": self.failure_ratio,
                "parse_errors": self.parse_errors,
            },
            "by_source": {name: _source_dict(counts) for name, counts in self.by_source.items()},
            "by_host": {
                name: {"attempts": counts.attempts, "failures": counts.failures}
                for name, counts in self.by_host.items()
            },
            "by_reason": {code: _reason_dict(counts) for code, counts in self.by_reason.items()},
            "windows": [window_dict(window) for window in self.windows],
            "fates": self.fates,
            "leaks": [
                {
                    "path": leak.path,
                    "line_number": leak.line_number,
                    "kind": leak.kind,
                    "count": leak.count,
                }
                for leak in self.leaks
            ],
            "read_errors": [{"path": path, "error": error} for path, error in self.read_errors],
            "findings": [finding.to_dict() for finding in self.findings],
            "status": self.status.value,
            "options": {
                "window_seconds": self.options.window_seconds,
                "threshold": self.options.threshold,
                "min_attempts": self.options.min_attempts,
                "since": iso_time(self.options.since),
                "until": iso_time(self.options.until),
            },
        }


def iso_time(seconds: float | None) -> str | None:
    """Return POSIX ``seconds`` as ISO 8601 UTC with a ``Z``; None stays None.

    A time outside the years 1 to 9999 (or not a number) gives None rather than an error.
    """
    if seconds is None:
        return None
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


THRESHOLD_TOLERANCE = 1e-9
"""Relative margin of the threshold comparison, larger than the rounding error of a percent
divided by 100 (0.7 / 100 is slightly below 7 / 1000 in floating point)."""


def exceeds_threshold(failures: int, attempts: int, threshold: float) -> bool:
    """Return whether ``failures`` of ``attempts`` is more than the ratio ``threshold``.

    The comparison multiplies instead of dividing and allows ``THRESHOLD_TOLERANCE``, so a
    ratio exactly at a threshold given in percent (7 of 1000 at 0.7 %) is not over it.
    """
    return failures > threshold * attempts * (1 + THRESHOLD_TOLERANCE)


def window_dict(window: WindowCount) -> dict[str, Any]:
    """Return the JSON form of one window."""
    return {
        "start": iso_time(window.start),
        "end": iso_time(window.end),
        "attempts": window.attempts,
        "failures": window.failures,
        "failure_ratio": window.failure_ratio,
        "over_threshold": window.over_threshold,
    }


def _source_dict(counts: SourceCount) -> dict[str, Any]:
    return {
        "lines": counts.lines,
        "attempts": counts.attempts,
        "failures": counts.failures,
        "parse_errors": counts.parse_errors,
        "fates": dict(counts.fates),
    }


def _reason_dict(counts: ReasonCount) -> dict[str, Any]:
    return {
        "count": counts.count,
        "source": counts.source,
        "example": counts.example,
        "fix": counts.fix,
        "reply_code": counts.reply_code,
        "enhanced_code": counts.enhanced_code,
    }


class _SourceCounter:
    """Mutable counters of one source while lines are fed."""

    __slots__ = ("attempts", "failures", "fates", "lines", "parse_errors")

    def __init__(self) -> None:
        self.lines = 0
        self.attempts = 0
        self.failures = 0
        self.parse_errors = 0
        self.fates: dict[Fate, int] = {}


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
            elif event.outcome is not Outcome.DELIVERY:
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
        findings = _findings(
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
        if fate is not None:
            # A Postfix delivery line both counts as a failed attempt and defers the message.
            fates = counter.fates
            fates[fate] = fates.get(fate, 0) + 1
        outcome = event.outcome
        if outcome is Outcome.DELIVERY:
            # An event without a fate names only a cause: sasl-xoauth2's reason for a failure
            # that Postfix's own line counted. Its reason is listed, the attempt is not counted
            # twice. A delivery line's reason was counted with its failure already.
            if event.fate is None:
                self._count_reason(event, text, leaks)
            return

        failed = outcome is Outcome.FAILURE
        self._attempts += 1
        counter.attempts += 1
        if failed:
            self._failures += 1
            counter.failures += 1
            self._count_reason(event, text, leaks)
            self.recent_failures.append(
                RecentFailure(
                    self._failures, event.timestamp, event.source.value, event.host, event.reason
                )
            )

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
    return ReasonCount(
        count=counter.count,
        source=event.source.value,
        example=counter.example,
        fix=kind.fix if kind is not None else None,
        reply_code=event.reply_code,
        enhanced_code=event.enhanced_code,
        host=event.host,
        details=_details(event, counter.reply_text),
    )


def _details(event: LogEvent, masked_reply: str | None) -> dict[str, str]:
    """Return title placeholder values that one failure event supplies.

    ``masked_reply`` is the event's reply text with secrets masked.
    """
    details: dict[str, str] = {}
    reply_text = redact(masked_reply) if masked_reply else None
    if event.reply_code is not None:
        from smtpdiag.knowledge.replies import details_for_reply

        # Some parsers keep the codes in the reply text (Postfix), others strip them (msmtp).
        text = reply_text or ""
        split = split_reply(text) if text.startswith(str(event.reply_code)) else None
        if split is not None:
            text = split[2]
        details.update(details_for_reply(event.reply_code, event.enhanced_code, text))
    if event.host:
        details["host"] = event.host
    if event.mechanism:
        details["mechanism"] = event.mechanism
    if reply_text:
        details["detail"] = reply_text
        details["error"] = reply_text
        details["reason"] = reply_text
        exit_code = _EXIT_CODE.search(reply_text)
        if exit_code is not None:
            details["exit_code"] = exit_code[1]
    return details


def _percent(ratio: float) -> str:
    """Return a ratio as a percentage with at most two decimals: 0.04 -> '4 %'."""
    return f"{ratio * 100:.2f}".rstrip("0").rstrip(".") + " %"


def _findings(
    options: AnalysisOptions,
    *,
    lines: int,
    attempts: int,
    failures: int,
    failure_ratio: float | None,
    windows: Sequence[WindowCount],
    reasons: Mapping[str, ReasonCount],
    leaks: Sequence[LeakReport],
    read_errors: Sequence[tuple[str, str]],
    outside: tuple[int, float | None] = (0, None),
) -> tuple[Finding, ...]:
    """Build the findings of a summary: the rate verdict, the top reasons, leaks, read errors.

    ``outside`` is the number of attempts outside ``since`` to ``until`` and the newest one's
    time.
    """
    findings: list[Finding | None] = [
        no_attempts_finding(lines, outside[0], outside[1], _period(options))
        if attempts == 0
        else _rate_finding(options, lines, attempts, failures, failure_ratio, windows)
    ]
    findings.extend(
        _reason_finding(code, counts) for code, counts in list(reasons.items())[:TOP_REASONS]
    )
    findings.extend(_leak_finding(leak) for leak in leaks)
    findings.extend(
        LOG_UNREADABLE.make(
            facts={"path": path, "error": error}, details={"path": path, "error": error}
        )
        for path, error in read_errors
    )
    return tuple(finding for finding in findings if finding is not None)


def lines_text(count: int) -> str:
    """Return ``1 line`` or ``N lines``."""
    return f"{count} line" if count == 1 else f"{count} lines"


def _period(options: AnalysisOptions) -> str:
    """Name the time range of ``--since`` and ``--until``; empty when it is unbounded."""
    since, until = iso_time(options.since), iso_time(options.until)
    if since and until:
        return f"from {since} to {until}"
    if since:
        return f"since {since}"
    return f"before {until}" if until else ""


def no_attempts_finding(
    lines: int, outside: int, latest_outside: float | None, period: str
) -> Finding:
    """Say that no attempt was counted: none in the lines read, or none inside ``period``.

    ``outside`` attempts were read with a time outside ``period`` (``from ... to ...``, or
    ``in the last 15 minutes``); ``latest_outside`` is the newest one's time.
    """
    finding = NO_ATTEMPTS.make(facts={"lines": lines}, details={"lines": lines})
    if outside:
        newest = iso_time(latest_outside)
        cause = (
            f"{lines_text(lines).capitalize()} read, with {outside} AUTH "
            f"{'attempt' if outside == 1 else 'attempts'} in all, but no attempt falls "
            f"{period}{f'; the newest is from {newest}' if newest else ''}. Either no mail "
            "was sent in that time, or the times in the log are read in the wrong zone or "
            "format."
        )
        fix = (
            "Widen the time range (--since, --window or log_window_minutes), or set the zone "
            "(--timezone, log_timezone) and msmtp's time format (--msmtp-time-format, "
            "msmtp_time_format) that the log was written with."
        )
        facts = {"lines": lines, "attempts_outside": outside, "latest_attempt": newest}
        return replace(finding, cause=cause, fix=fix, facts=facts)
    if lines == 1:
        return replace(finding, cause=finding.cause.replace("1 lines read", "1 line read"))
    return finding


def _rule_details(options: AnalysisOptions) -> dict[str, Any]:
    return {
        "threshold_percent": _percent(options.threshold),
        "window_minutes": f"{options.window_seconds / 60:g}",
        "min_attempts": options.min_attempts,
    }


def _rate_finding(
    options: AnalysisOptions,
    lines: int,
    attempts: int,
    failures: int,
    failure_ratio: float | None,
    windows: Sequence[WindowCount],
) -> Finding:
    """Judge the failure rate: a window over the threshold, or failures below it."""
    if failure_ratio is None:
        return NO_ATTEMPTS.make(facts={"lines": lines}, details={"lines": lines})
    over = [window for window in windows if window.over_threshold]
    if over:
        worst = max(over, key=lambda window: (window.failure_ratio, window.failures, window.start))
        facts = _window_facts(worst)
        facts["windows_over_threshold"] = [_window_facts(window) for window in over]
        facts["threshold"] = options.threshold
        facts["min_attempts"] = options.min_attempts
        facts["window_seconds"] = options.window_seconds
        details = {**_rule_details(options), **facts, "percent": _percent(worst.failure_ratio)}
        return THRESHOLD_EXCEEDED.make(facts=facts, details=details)
    # NOTE: a run without failures reports this kind too (0 of N failed): the catalog has no
    # kind of its own for it, and the kind is INFO either way.
    facts = {"attempts": attempts, "failures": failures, "failure_ratio": failure_ratio}
    details = {**_rule_details(options), **facts, "percent": _percent(failure_ratio)}
    return FAILURES_BELOW_THRESHOLD.make(facts=facts, details=details)


def _window_facts(window: WindowCount) -> dict[str, Any]:
    return {
        "window_start": iso_time(window.start),
        "window_end": iso_time(window.end),
        "attempts": window.attempts,
        "failures": window.failures,
        "failure_ratio": window.failure_ratio,
    }


def _reason_finding(code: str, counts: ReasonCount) -> Finding | None:
    """Explain one frequent reason with its own kind, at INFO because the rate finding judges."""
    kind = kind_for_reason(code)
    if kind is None:
        return None
    details = dict(counts.details)
    for _, name, _, _ in string.Formatter().parse(kind.title):
        if name and name not in details:
            details[name] = MISSING_DETAIL
    facts: dict[str, Any] = {"log_source": counts.source, "failures": counts.count}
    if counts.reply_code is not None:
        facts["reply_code"] = counts.reply_code
    if counts.enhanced_code is not None:
        facts["enhanced_code"] = counts.enhanced_code
    return kind.make(
        facts=facts, evidence=(counts.example,), details=details, severity=Severity.INFO
    )


def _leak_finding(leak: LeakReport) -> Finding:
    secret_kind = SECRET_KIND_NAMES.get(leak.kind, leak.kind)
    return TOKEN_IN_LOG.make(
        facts={
            "path": leak.path,
            "line_number": leak.line_number,
            "secret_kind": leak.kind,
            "count": leak.count,
        },
        details={"path": leak.path, "line_number": leak.line_number, "secret_kind": secret_kind},
    )


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
