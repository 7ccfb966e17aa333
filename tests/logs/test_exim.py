"""Tests of Exim's mainlog split and AUTH lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from smtpdiag.logs.exim import is_exim, parse_message, split_mainlog
from smtpdiag.logs.keywords import CANDIDATE
from smtpdiag.logs.model import (
    Fate,
    LineResult,
    LogEvent,
    Outcome,
    Side,
    Source,
    SyslogRecord,
)
from smtpdiag.logs.timestamps import TimeReader

NOW = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
TIMES = TimeReader(UTC, lambda: NOW)
STAMP = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC).timestamp()

# Line shapes from Exim 4.9x's smtp_in.c (server) and transports/smtp.c (client) as printed by
# their log_write() calls; the client failure pair is the documented must-pass case.
CLIENT_FAILED = (
    "smtp_relay_login authenticator failed H=relay.example.net [192.0.2.16] 535 Error: "
    "authentication failed"
)
DEFER_42 = (
    "1rKXyz-000abc-12 == rcpt@example.net R=send_via_smtp_relay T=smtp_relay_smtp defer (-42): "
    "authentication required but authentication attempt(s) failed"
)
# NOTE: the multi-line reply joined with a literal "\n" follows a report of Gmail's 530 after
# pipelined MAIL FROM; the X= and DN= fields are shortened.
GMAIL_530 = (
    "1rKXyz-000abc-12 ** rcpt@example.net R=smarthost T=remote_smtp H=smtp.gmail.com "
    "[192.0.2.60] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes: SMTP error from remote mail "
    "server after pipelined MAIL FROM:<sender@example.com> SIZE=1532: 530-5.7.0 "
    "Authentication Required. Learn more at\\n530 5.7.0  https://support.google.com/mail/"
    "?p=WantAuthError a1-20020a05 - gsmtp"
)
AFTER_AUTH = (
    "1rKXyz-000abc-12 ** rcpt@example.net R=smarthost T=remote_smtp H=smtp.example.com "
    "[192.0.2.50]: SMTP error from remote mail server after AUTH PLAIN: 535 5.7.8 "
    "Authentication credentials invalid"
)
ARRIVAL = (
    "1rKXyz-000abc-12 <= sender@example.com H=client.example.com (laptop) [192.0.2.7]:51234 "
    "I=[192.0.2.1]:587 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no "
    "A=dovecot_plain:sender@example.com S=1532 id=a1@example.com"
)
DELIVERED = (
    "1rKXyz-000abc-12 => rcpt@example.net R=send_via_smtp_relay T=smtp_relay_smtp "
    "H=relay.example.net [192.0.2.16] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes "
    'A=smtp_relay_login C="250 2.0.0 OK queued as 4F3A21"'
)


@dataclass(frozen=True)
class Case:
    """One Exim message and the event expected from it."""

    message: str
    outcome: Outcome
    side: Side
    reason: str | None
    host: str | None
    fate: Fate | None = None


CASES = {
    "server 535": Case(
        "dovecot_plain authenticator failed for (laptop) [192.0.2.7]: 535 Incorrect "
        "authentication data (set_id=sender@example.com)",
        Outcome.FAILURE,
        Side.SERVER,
        "auth.credentials_rejected",
        "192.0.2.7",
    ),
    "server times suffix": Case(
        "login authenticator failed for client.example.com ([192.0.2.7]) [192.0.2.7]:51234 "
        "I=[192.0.2.1]:587: 535 Incorrect authentication data (set_id=sender): 1 Time(s)",
        Outcome.FAILURE,
        Side.SERVER,
        "auth.credentials_rejected",
        "192.0.2.7",
    ),
    "server bad base64": Case(
        "xoauth2 authenticator failed for (laptop) [192.0.2.8]: 501 Invalid base64 data",
        Outcome.FAILURE,
        Side.SERVER,
        "auth.cannot_decode",
        "192.0.2.8",
    ),
    "client 535": Case(
        CLIENT_FAILED,
        Outcome.FAILURE,
        Side.CLIENT,
        "auth.credentials_rejected",
        "relay.example.net",
    ),
    "defer -42": Case(DEFER_42, Outcome.DELIVERY, Side.CLIENT, None, None, Fate.DEFERRED),
    "gmail 530 after mail from": Case(
        GMAIL_530,
        Outcome.FAILURE,
        Side.CLIENT,
        "auth.authentication_required",
        "smtp.gmail.com",
        Fate.BOUNCED,
    ),
    "bounce after auth": Case(
        AFTER_AUTH,
        Outcome.FAILURE,
        Side.CLIENT,
        "auth.credentials_rejected",
        "smtp.example.com",
        Fate.BOUNCED,
    ),
    "server success": Case(ARRIVAL, Outcome.SUCCESS, Side.SERVER, None, "192.0.2.7"),
    "client success": Case(
        DELIVERED, Outcome.SUCCESS, Side.CLIENT, None, "relay.example.net", Fate.SENT
    ),
}


def parse(message: str) -> LineResult:
    return parse_message(SyslogRecord(message, STAMP, None, "exim", None))


def only_event(result: LineResult) -> LogEvent:
    assert len(result.events) == 1
    return result.events[0]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_message_event(case: Case) -> None:
    event = only_event(parse(case.message))
    assert event.outcome is case.outcome
    assert event.side is case.side
    assert event.reason == case.reason
    assert event.host == case.host
    assert event.fate is case.fate
    assert event.source is Source.EXIM
    assert event.timestamp == STAMP


@pytest.mark.parametrize("case", [pytest.param(case, id=name) for name, case in CASES.items()])
def test_message_is_candidate(case: Case) -> None:
    assert CANDIDATE.search(case.message.encode()) is not None


def test_must_pass_pair() -> None:
    events = [*parse(CLIENT_FAILED).events, *parse(DEFER_42).events]
    failures = [event for event in events if event.outcome is Outcome.FAILURE]
    deliveries = [event for event in events if event.outcome is Outcome.DELIVERY]
    assert len(failures) == 1
    assert len(deliveries) == 1
    assert deliveries[0].fate is Fate.DEFERRED


def test_client_reply_fields() -> None:
    event = only_event(parse(CLIENT_FAILED))
    assert event.reply_code == 535
    assert event.reply_text == "535 Error: authentication failed"
    assert event.mechanism == "LOGIN"


def test_multiline_reply_joined() -> None:
    event = only_event(parse(GMAIL_530))
    assert event.reply_code == 530
    assert event.enhanced_code == "5.7.0"
    assert event.reply_text is not None
    assert event.reply_text.startswith("530 5.7.0 Authentication Required. Learn more at https")


def test_server_set_id_not_in_reply() -> None:
    event = only_event(parse(CASES["server 535"].message))
    assert event.reply_text == "535 Incorrect authentication data"
    assert event.mechanism == "PLAIN"


IGNORED = {
    "arrival without auth": "1rKXyz-000abc-12 <= sender@example.com H=(laptop) [192.0.2.7] "
    "P=esmtps S=912",
    "delivery without auth": "1rKXyz-000abc-12 => rcpt@example.net R=dnslookup T=remote_smtp "
    "H=mx.example.net [198.51.100.5]",
    "rcpt rejected": "1rKXyz-000abc-12 ** rcpt@example.net R=dnslookup T=remote_smtp "
    "H=mx.example.net [198.51.100.5]: SMTP error from remote mail server after RCPT "
    "TO:<rcpt@example.net>: 550 5.1.1 User unknown",
    "completed": "1rKXyz-000abc-12 Completed",
    "new message id": "1rKXyz-000000AbCd-0Ab2 Completed",
}


@pytest.mark.parametrize("message", IGNORED.values(), ids=IGNORED.keys())
def test_message_without_event(message: str) -> None:
    assert parse(message) == LineResult(source=Source.EXIM)


def test_unreadable_authenticator_line() -> None:
    assert parse("plain authenticator failed somehow").parse_error


MAINLOG = {
    "plain": ("2026-03-01 10:00:00 1rKXyz-000abc-12 Completed", STAMP, None),
    "pid": ("2026-03-01 10:00:00 [4242] 1rKXyz-000abc-12 Completed", STAMP, 4242),
    "fraction and zone": (
        "2026-03-01 11:00:00.250 +0100 [4242] 1rKXyz-000abc-12 Completed",
        STAMP + 0.25,
        4242,
    ),
    "negative zone": (
        "2026-03-01 05:00:00 -0500 1rKXyz-000abc-12 Completed",
        STAMP,
        None,
    ),
}


@pytest.mark.parametrize(("line", "timestamp", "pid"), MAINLOG.values(), ids=MAINLOG.keys())
def test_split_mainlog(line: str, timestamp: float, pid: int | None) -> None:
    record = split_mainlog(line, TIMES)
    assert record is not None
    assert record.timestamp == timestamp
    assert record.pid == pid
    assert record.program == "exim"
    assert record.message == "1rKXyz-000abc-12 Completed"


def test_split_mainlog_local_zone() -> None:
    times = TimeReader(timezone(timedelta(hours=2)), lambda: NOW)
    record = split_mainlog("2026-03-01 12:00:00 1rKXyz-000abc-12 Completed", times)
    assert record is not None
    assert record.timestamp == STAMP


NOT_MAINLOG = {
    "msmtpd file log": "2026-03-01 10:00:00 msmtpd[4242] info: connection from 127.0.0.1",
    "sasl-xoauth2 trace": "2026-03-01 10:00:00: TokenStore::Refresh: request failed",
    "oauth2 proxy": "2026-03-01 10:00:00,123: SMTP (localhost:1587) --> b'EHLO'",
    "syslog": "Mar  1 10:00:00 mx exim[4242]: 1rKXyz-000abc-12 Completed",
    "no message": "2026-03-01 10:00:00 ",
    "bad date": "2026-13-01 10:00:00 1rKXyz-000abc-12 Completed",
}


@pytest.mark.parametrize("line", NOT_MAINLOG.values(), ids=NOT_MAINLOG.keys())
def test_not_mainlog(line: str) -> None:
    assert split_mainlog(line, TIMES) is None


PROGRAMS = {"exim": True, "exim4": True, "eximstats": False, "postfix/smtp": False}


@pytest.mark.parametrize(("program", "expected"), PROGRAMS.items(), ids=PROGRAMS.keys())
def test_is_exim(program: str, expected: bool) -> None:
    assert is_exim(program) is expected


def test_syslog_message_with_exims_own_time() -> None:
    # Exim writes its own time into syslog messages unless syslog_timestamp is false.
    message = (
        "2026-12-03 10:15:02 xoauth2 authenticator failed for (laptop) [192.0.2.7]: "
        "535 Incorrect authentication data"
    )
    event = only_event(parse(message))
    assert event.outcome is Outcome.FAILURE
    assert event.host == "192.0.2.7"
