"""The ``smtpdiag logs`` command: option checks, a batch run over files, and follow mode.

``cli.logs`` only parses the command line and calls ``run_logs``. An invalid option value
raises ``UsageError`` (exit code 3) that names the value and the fix. Otherwise the exit code
is the summary's status (0 ok, 1 warning, 2 critical).
"""

from __future__ import annotations

import logging
import os
import queue
import re
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from types import FrameType
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from smtpdiag.errors import UsageError
from smtpdiag.logs.analysis import Analysis, AnalysisOptions, LogsSummary
from smtpdiag.logs.options import MAX_MIN_ATTEMPTS, MAX_WINDOW_MINUTES
from smtpdiag.redact import redact

if TYPE_CHECKING:
    from smtpdiag.logs.reader import LogLine

logger = logging.getLogger(__name__)

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}

POLL_SECONDS = 0.25
"""Pause between two reads of the followed files; the display refreshes every ``--interval``."""


MAX_INTERVAL_SECONDS = 3600
"""Maximum pause between two updates of the follow display: one hour."""


@dataclass(frozen=True)
class LogsRequest:
    """The command line of ``smtpdiag logs``, as given."""

    paths: tuple[str, ...] = ()
    output_format: str = "table"
    """``table`` or ``json``."""
    window_minutes: float = 15.0
    threshold_percent: float = 2.0
    min_attempts: int = 20
    since: str | None = None
    until: str | None = None
    timezone: str | None = None
    msmtp_time_format: str = "%b %d %H:%M:%S"
    """strftime format, or ``none`` when msmtp writes no time."""
    journal: bool = False
    follow: bool = False
    state_file: str | None = None
    interval: float = 1.0


def load_zone(name: str) -> tzinfo:
    """Return the IANA time zone ``name``; raise UsageError naming it when it is unknown."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise UsageError(
            f"Unknown time zone {name!r}.",
            "Give an IANA zone name such as UTC, Europe/Berlin or America/New_York.",
            value=name,
        ) from error


def parse_time(text: str, option: str, now: float, zone: tzinfo | None) -> float:
    """Return POSIX seconds for ``text``: ISO 8601, or a duration back from ``now`` (2h, 30m).

    An ISO 8601 time without an offset is read in ``zone`` (None: the local zone).
    """
    relative = _RELATIVE.match(text)
    if relative is not None:
        return now - float(relative[1]) * _UNIT_SECONDS[relative[2]]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"Invalid time {text!r} for {option}.",
            "Give an ISO 8601 time (2026-03-01T12:00:00Z) or a duration back from now "
            "(90s, 30m, 2h, 1d).",
            value=text,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone) if zone is not None else moment.astimezone()
    return moment.timestamp()


def build_options(request: LogsRequest, now: float) -> AnalysisOptions:
    """Check the numeric and time options and return the analysis options."""
    if not 0 < request.window_minutes <= MAX_WINDOW_MINUTES:
        raise _invalid(
            "--window",
            request.window_minutes,
            f"Give a number of minutes above 0 and at most {MAX_WINDOW_MINUTES} (one day).",
        )
    if not 0 <= request.threshold_percent <= 100:
        raise _invalid("--threshold", request.threshold_percent, "Give a percentage from 0 to 100.")
    if not 1 <= request.min_attempts <= MAX_MIN_ATTEMPTS:
        raise _invalid(
            "--min-attempts",
            request.min_attempts,
            f"Give a whole number from 1 to {MAX_MIN_ATTEMPTS}.",
        )
    if not 0 < request.interval <= MAX_INTERVAL_SECONDS:
        raise _invalid(
            "--interval",
            request.interval,
            f"Give a number of seconds above 0 and at most {MAX_INTERVAL_SECONDS}.",
        )
    zone = load_zone(request.timezone) if request.timezone is not None else None
    since = parse_time(request.since, "--since", now, zone) if request.since else None
    until = parse_time(request.until, "--until", now, zone) if request.until else None
    if since is not None and until is not None and since >= until:
        raise UsageError(
            f"--since {request.since} is not before --until {request.until}.",
            "Give a --since time earlier than the --until time.",
        )
    time_format = _msmtp_time_format(request.msmtp_time_format)
    return AnalysisOptions(
        window_seconds=request.window_minutes * 60,
        threshold=request.threshold_percent / 100,
        min_attempts=request.min_attempts,
        since=since,
        until=until,
        zone=zone,
        msmtp_time_format=time_format,
    )


def _msmtp_time_format(text: str) -> str | None:
    """Return the checked ``--msmtp-time-format``; None for ``none``."""
    if text.lower() == "none":
        return None
    from smtpdiag.logs.msmtp import time_format_problem

    problem = time_format_problem(text)
    if problem is not None:
        raise UsageError(
            f"Invalid value {text!r} for --msmtp-time-format: {problem}.",
            "Give msmtp's logfile_time_format as written in its configuration, such as "
            "'%b %d %H:%M:%S' (the default) or '%Y-%m-%d %H:%M:%S', or none.",
            value=text,
        )
    return text


def _invalid(option: str, value: object, fix: str) -> UsageError:
    return UsageError(f"Invalid value {value} for {option}.", fix, value=str(value))


def check_inputs(request: LogsRequest) -> None:
    """Raise UsageError when there is nothing to read or every named file is missing."""
    if not request.paths and not request.journal:
        raise UsageError(
            "No log file given.",
            "Name one or more log files (- reads standard input), or read journald with --journal.",
        )
    if request.state_file and not request.follow:
        raise UsageError("--state works only with --follow.", "Add --follow or drop --state.")
    if request.journal and request.paths:
        raise UsageError(
            f"--journal reads journald, not the files {', '.join(request.paths)}.",
            "Drop --journal to read the files, or drop the files to read journald.",
        )
    if "" in request.paths:
        raise UsageError("An empty log file path was given.", "Name the log file.", value="")
    if request.follow or request.journal or "-" in request.paths:
        return
    problems = [problem for problem in map(_path_problem, request.paths) if problem]
    if len(problems) == len(request.paths):
        raise UsageError(
            f"Nothing to read: {'; '.join(problems)}.",
            "Name the mail log files; Postfix usually logs to /var/log/mail.log or "
            "/var/log/maillog, and Debian 12 logs to journald only (use --journal).",
        )


def _path_problem(path: str) -> str | None:
    """Return why ``path`` cannot be a log file to read, or None when it may be one."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"no such file {path}"
    except OSError as error:
        return f"cannot read {path}: {error.strerror}"
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        return None
    kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
    return f"{path} is {kind}"


def run_logs(
    request: LogsRequest,
    *,
    stdout: TextIO | None = None,
    stdin: BinaryIO | None = None,
    now: Callable[[], float] = time.time,
) -> int:
    """Run ``smtpdiag logs`` and return its exit code."""
    stdout = stdout or sys.stdout
    check_inputs(request)
    options = build_options(request, now())
    if request.follow:
        summary = FollowRun(request, options, stdout, now).run()
    else:
        summary = analyze(request, options, stdin=stdin, now=now)
    emit_summary(summary, request.output_format, stdout, compact=request.follow)
    return summary.status.exit_code


def analyze(
    request: LogsRequest,
    options: AnalysisOptions,
    *,
    stdin: BinaryIO | None = None,
    now: Callable[[], float] = time.time,
) -> LogsSummary:
    """Read the files and, with ``--journal``, journald to the end; return the summary."""
    from smtpdiag.logs.analysis import analyze_files

    if not request.journal:
        return analyze_files(request.paths, options, stdin=stdin, now=now)
    from smtpdiag.logs.reader import LogReader, journal_lines

    analysis = Analysis(options, now)
    if request.paths:
        reader = LogReader(request.paths, stdin=stdin)
        fed = _feed_all(analysis, reader)
        analysis.add_lines_read(reader.lines_read - fed)
        for path, error in reader.errors:
            analysis.add_read_error(path, error)
    _feed_all(analysis, journal_lines(follow=False, since=options.since))
    return analysis.summary()


def _feed_all(analysis: Analysis, lines: Iterable[LogLine]) -> int:
    """Feed every line to ``analysis`` and return how many there were."""
    count = 0
    for line in lines:
        analysis.feed(line)
        count += 1
    return count


def emit_summary(
    summary: LogsSummary, output_format: str, stdout: TextIO, *, compact: bool
) -> None:
    """Write the summary as a table or as the JSON document, redacted."""
    if output_format == "json":
        import json

        from smtpdiag.logs.render import render_logs_json

        text = json.dumps(summary.to_dict()) + "\n" if compact else render_logs_json(summary)
        stdout.write(redact(text))
        stdout.flush()
        return
    from smtpdiag.logs.render import render_logs_table
    from smtpdiag.render.table import make_console

    render_logs_table(summary, make_console(stdout))


class FollowRun:
    """Follow mode: read new lines as they are written until SIGINT or SIGTERM.

    Every ``--interval`` it shows the current window and new failures: a rich Live display on
    a terminal with the table format, otherwise one line (or one JSON object) per interval.
    The state file, when given, is saved every interval and at the end.
    """

    def __init__(
        self,
        request: LogsRequest,
        options: AnalysisOptions,
        stdout: TextIO,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.request = request
        self.options = options
        self.stdout = stdout
        self.now = now
        self.analysis = Analysis(options, now)
        self.stop = threading.Event()
        self._accounted = 0
        self._shown_failures = 0

    def run(self) -> LogsSummary:
        """Follow until stopped, save the state, and return the summary of what was read."""
        source = self._open_source()
        previous = self._install_signals()
        live = None
        logger.info("following %s", ", ".join(self.request.paths) or "journald")
        try:
            live = self._start_live()
            self._loop(source, live)
        finally:
            if live is not None:
                live.stop()
            source.close()
            self._restore_signals(previous)
            logger.info("stopped following")
        return self.analysis.summary()

    def _loop(self, source: _LineSource, live: Any) -> None:
        last_shown = 0.0
        while not self.stop.is_set():
            for line in source.poll():
                self.analysis.feed(line)
                self._accounted += 1
            self.analysis.add_lines_read(source.lines_read - self._accounted)
            self._accounted = source.lines_read
            moment = self.now()
            if moment - last_shown >= self.request.interval:
                last_shown = moment
                self._show(moment, live)
                source.save_state()
            self.stop.wait(min(POLL_SECONDS, self.request.interval))
        for line in source.poll():
            self.analysis.feed(line)
            self._accounted += 1
        self.analysis.add_lines_read(source.lines_read - self._accounted)

    def _show(self, moment: float, live: Any) -> None:
        from smtpdiag.logs.render import follow_json, follow_line, follow_view

        window = self.analysis.window_at(moment)
        recent = list(self.analysis.recent_failures)
        new = [failure for failure in recent if failure.sequence > self._shown_failures]
        self._shown_failures = self.analysis.failures_counted
        threshold = self.options.threshold
        if live is not None:
            live.update(follow_view(moment, window, recent, threshold), refresh=True)
            return
        if self.request.output_format == "json":
            analysis = self.analysis
            text = follow_json(moment, window, analysis.attempts_counted, analysis.failures_counted)
        else:
            text = follow_line(moment, window, new, threshold)
        self.stdout.write(redact(text) + "\n")
        self.stdout.flush()

    def _start_live(self) -> Any:
        if self.request.output_format != "table" or not self.stdout.isatty():
            return None
        from rich.live import Live

        from smtpdiag.render.table import make_console

        live = Live(console=make_console(self.stdout), auto_refresh=False, transient=True)
        live.start()
        return live

    def _open_source(self) -> _LineSource:
        sources: list[_LineSource] = []
        if self.request.paths:
            sources.append(_FileSource(self.request.paths, self.request.state_file))
        if self.request.journal:
            sources.append(_JournalSource(self.options.since))
        return sources[0] if len(sources) == 1 else _CombinedSource(sources)

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, self._on_signal)
        return previous

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        self.stop.set()

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)


class _LineSource:
    """Lines of follow mode: files through ``Follower``, or journald."""

    lines_read = 0

    def poll(self) -> list[LogLine]:
        raise NotImplementedError

    def save_state(self) -> None:
        """Save the read positions; sources without positions do nothing."""

    def close(self) -> None:
        """Release the files or the journal reader."""


class _FileSource(_LineSource):
    def __init__(self, paths: Sequence[str], state_file: str | None) -> None:
        from smtpdiag.logs.follow import Follower

        self._follower = Follower(paths, state_file=state_file, start_at_end=True)
        self._state_file = state_file

    def poll(self) -> list[LogLine]:
        lines = self._follower.poll()
        self.lines_read = self._follower.lines_read
        return lines

    def save_state(self) -> None:
        if self._state_file:
            self._follower.save_state()

    def close(self) -> None:
        self.save_state()
        self._follower.close()


class _JournalSource(_LineSource):
    """journald entries read by a background thread, because its iterator blocks."""

    def __init__(self, since: float | None) -> None:
        from smtpdiag.logs.reader import journal_lines

        self._lines = journal_lines(follow=True, since=since)
        self._queue: queue.SimpleQueue[LogLine] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._read, daemon=True, name="journal-reader")
        self._thread.start()

    def _read(self) -> None:
        for line in self._lines:
            self._queue.put(line)

    def poll(self) -> list[LogLine]:
        lines = []
        while True:
            try:
                lines.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self.lines_read += len(lines)
        return lines


class _CombinedSource(_LineSource):
    """Files and journald followed together."""

    def __init__(self, sources: Sequence[_LineSource]) -> None:
        self._sources = tuple(sources)

    def poll(self) -> list[LogLine]:
        lines = [line for source in self._sources for line in source.poll()]
        self.lines_read = sum(source.lines_read for source in self._sources)
        return lines

    def save_state(self) -> None:
        for source in self._sources:
            source.save_state()

    def close(self) -> None:
        for source in self._sources:
            source.close()
