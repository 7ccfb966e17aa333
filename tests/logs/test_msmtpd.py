"""msmtpd's log lines: its log file layout, AUTH results and failed pipe commands."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smtpdiag.logs import msmtpd
from smtpdiag.logs.keywords import CANDIDATE
from smtpdiag.logs.model import Fate, LineResult, LogEvent, Outcome, Side, Source, SyslogRecord
from smtpdiag.logs.timestamps import TimeReader

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC).timestamp()
TIMES = TimeReader(UTC, now=lambda: NOW)
AT = datetime(2026, 12, 4, 10, 0, 5, tzinfo=UTC).timestamp()

# Message texts as msmtpd 1.8 (src/msmtpd.c) writes them; msmtpd is not installed here, so
# these lines are composed from its source, not captured.
LOGFILE_PREFIX = "2026-12-04 10:00:05 msmtpd[2841] "


def parse(message: str) -> LineResult:
    return msmtpd.parse_record(SyslogRecord(message=message, timestamp=AT, program="msmtpd"))


def test_split_logfile() -> None:
    line = LOGFILE_PREFIX + "info: authenticated user relay"
    assert msmtpd.split_logfile(line, TIMES) == SyslogRecord(
        message="authenticated user relay", timestamp=AT, program="msmtpd", pid=2841
    )


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("2026-12-04 10:00:05 1vX-000 <= a@example.net", id="exim"),
        pytest.param("2026-12-04 10:00:05 msmtpd[x] info: y", id="pid-not-number"),
        pytest.param("2026-12-04 10:00:05 msmtpd[1] debug: y", id="unknown-level"),
        pytest.param("Dec  4 10:00:05 mx msmtpd[1]: y", id="syslog"),
    ],
)
def test_split_logfile_rejects(line: str) -> None:
    assert msmtpd.split_logfile(line, TIMES) is None


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            "authenticated user relay",
            LogEvent(
                source=Source.MSMTPD,
                side=Side.SERVER,
                outcome=Outcome.SUCCESS,
                timestamp=AT,
                mechanism="PLAIN",
            ),
            id="auth-success",
        ),
        pytest.param(
            "authentication failed, session aborted",
            LogEvent(
                source=Source.MSMTPD,
                side=Side.SERVER,
                outcome=Outcome.FAILURE,
                timestamp=AT,
                reason="auth.credentials_rejected",
                reply_code=535,
                reply_text="Authentication failed",
                mechanism="PLAIN",
            ),
            id="auth-failure",
        ),
        pytest.param(
            "client did not authenticate, session aborted",
            LogEvent(
                source=Source.MSMTPD,
                side=Side.SERVER,
                outcome=Outcome.FAILURE,
                timestamp=AT,
                reason="auth.authentication_required",
                reply_code=530,
                reply_text="Authentication required",
                mechanism="PLAIN",
            ),
            id="no-auth",
        ),
        pytest.param(
            "pipe command reported error 77, session aborted",
            LogEvent(
                source=Source.MSMTPD,
                side=Side.CLIENT,
                outcome=Outcome.FAILURE,
                timestamp=AT,
                reason="auth_failure_rate.pipe_command_failed",
                reply_code=554,
                reply_text="Pipe command reported error 77",
                fate=Fate.BOUNCED,
            ),
            id="pipe-noperm-bounces",
        ),
        pytest.param(
            "pipe command reported error 75, session aborted",
            LogEvent(
                source=Source.MSMTPD,
                side=Side.CLIENT,
                outcome=Outcome.FAILURE,
                timestamp=AT,
                reason="auth_failure_rate.pipe_command_deferred",
                reply_code=451,
                reply_text="Pipe command reported error 75",
                fate=Fate.DEFERRED,
            ),
            id="pipe-tempfail-defers",
        ),
        pytest.param(
            "pipe command failed to execute, session aborted",
            LogEvent(
                source=Source.MSMTPD,
                side=Side.CLIENT,
                outcome=Outcome.FAILURE,
                timestamp=AT,
                reason="auth_failure_rate.pipe_command_failed",
                reply_code=554,
                reply_text="Pipe command failed to execute",
                fate=Fate.BOUNCED,
            ),
            id="pipe-not-executed",
        ),
    ],
)
def test_counted_message(message: str, expected: LogEvent) -> None:
    assert parse(message) == LineResult(events=(expected,), source=Source.MSMTPD)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("connection from 127.0.0.1, active sessions 1 (max 16), auth_delay=no"),
        pytest.param("starting SMTP session"),
        pytest.param("pipe command is /usr/bin/msmtp -f user@example.com -- a@example.net"),
        pytest.param("client ended session"),
        pytest.param("connection closed"),
    ],
)
def test_other_message_counts_nothing(message: str) -> None:
    assert parse(message) == LineResult(source=Source.MSMTPD)


def test_piped_mail_is_client_success() -> None:
    (event,) = parse("mail was piped successfully").events
    assert (event.side, event.outcome, event.fate, event.reason) == (
        Side.CLIENT,
        Outcome.SUCCESS,
        Fate.SENT,
        None,
    )


@pytest.mark.parametrize(
    "line",
    [
        LOGFILE_PREFIX + "info: authenticated user relay",
        LOGFILE_PREFIX + "error: pipe command reported error 77, session aborted",
        "Dec  4 10:00:05 mx msmtpd[2841]: authentication failed, session aborted",
    ],
)
def test_event_lines_are_candidates(line: str) -> None:
    assert CANDIDATE.search(line.encode()) is not None
