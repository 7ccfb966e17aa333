"""Tests of the Postfix smtp client and smtpd server line parser."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

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
from smtpdiag.logs.postfix import GROUP_SECONDS, MEMORY_SIZE, PostfixParser, is_postfix

CLIENT = "postfix/smtp"
SERVER = "postfix/submission/smtpd"
PID = 4242
TIME = 1_772_359_200.0

# Delivery lines follow Postfix 3.x's "to=<>, relay=, delay=, delays=, dsn=, status= (text)"
# layout; the texts in brackets are the ones Postfix's smtp client writes.
OFFICE365 = (
    "9BDCBA19EA: SASL authentication failed; server smtp.office365.com[192.0.2.50] said: "
    "535 5.7.3 Authentication unsuccessful [XX0P281CA0094.DEUP281.PROD.OUTLOOK.COM]"
)
SENT = (
    "9BDCBA19EA: to=<alice@example.net>, relay=smtp.example.com[192.0.2.50]:587, delay=1.1, "
    "delays=0.1/0.01/0.6/0.4, dsn=2.0.0, status=sent (250 2.0.0 OK  1709287200 queued)"
)
SASL_DEFERRED = (
    "9BDCBA19EA: to=<alice@example.net>, relay=smtp.gmail.com[192.0.2.60]:587, delay=0.8, "
    "delays=0.1/0/0.7/0, dsn=4.7.8, status=deferred (SASL authentication failed; server "
    "smtp.gmail.com[192.0.2.60] said: 535-5.7.8 Username and Password not accepted. For more "
    "information, go to 535 5.7.8  https://support.google.com/mail/?p=BadCredentials)"
)
CANNOT_AUTHENTICATE = (
    "9BDCBA19EA: to=<alice@example.net>, relay=smtp.office365.com[192.0.2.50]:587, delay=0.9, "
    "delays=0.1/0/0.5/0.3, dsn=4.7.0, status=deferred (SASL authentication failed; cannot "
    "authenticate to server smtp.office365.com[192.0.2.50]: bad protocol / cancel)"
)
# NOTE: msmtpd's 554 reply text is taken from its source description, not a captured log.
PIPE_BOUNCED = (
    "5E8B21A3F0: to=<bob@example.net>, relay=127.0.0.1[127.0.0.1]:2525, delay=1.3, "
    "delays=0.01/0/0.01/1.3, dsn=5.0.0, status=bounced (host 127.0.0.1[127.0.0.1] said: 554 "
    "Pipe command reported error 77 (in reply to end of DATA command))"
)
PIPE_DEFERRED = PIPE_BOUNCED.replace("status=bounced", "status=deferred").replace(
    "error 77", "error 78"
)
USER_UNKNOWN = (
    "5E8B21A3F0: to=<nobody@example.net>, relay=smtp.example.com[192.0.2.50]:587, delay=0.6, "
    "delays=0.1/0/0.3/0.2, dsn=5.1.1, status=bounced (host smtp.example.com[192.0.2.50] said: "
    "550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown (in reply to "
    "RCPT TO command))"
)
GREYLISTED = (
    "5E8B21A3F0: to=<bob@example.net>, relay=smtp.example.com[192.0.2.50]:587, delay=0.6, "
    "delays=0.1/0/0.3/0.2, dsn=4.7.1, status=deferred (host smtp.example.com[192.0.2.50] said: "
    "451 4.7.1 Greylisted, try again later (in reply to RCPT TO command))"
)
STARTTLS_FIRST = (
    "5E8B21A3F0: to=<bob@example.net>, relay=smtp.example.com[192.0.2.50]:587, delay=0.6, "
    "delays=0.1/0/0.3/0.2, dsn=5.7.0, status=bounced (host smtp.example.com[192.0.2.50] said: "
    "530 5.7.0 Must issue a STARTTLS command first (in reply to MAIL FROM command))"
)
CONNECT_REFUSED = (
    "5E8B21A3F0: to=<bob@example.net>, relay=none, delay=30, delays=0.1/0/30/0, dsn=4.4.1, "
    "status=deferred (connect to smtp.example.com[192.0.2.50]:587: Connection refused)"
)
SUSPENDED = (
    "5E8B21A3F0: to=<bob@example.net>, relay=none, delay=60, delays=60/0/0/0, dsn=4.4.1, "
    "status=deferred (delivery temporarily suspended: connect to "
    "smtp.example.com[192.0.2.50]:587: Connection refused)"
)
LOST_CONNECTION = (
    "5E8B21A3F0: to=<bob@example.net>, relay=smtp.example.com[192.0.2.50]:465, delay=12, "
    "delays=0.1/0/12/0, dsn=4.4.2, status=deferred (lost connection with "
    "smtp.example.com[192.0.2.50] while receiving the initial server greeting)"
)
TLS_FAILED = (
    "5E8B21A3F0: to=<bob@example.net>, relay=smtp.example.com[192.0.2.50]:587, delay=0.4, "
    "delays=0.1/0/0.3/0, dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)"
)


@dataclass(frozen=True)
class Case:
    """One line and the single event expected from it."""

    message: str
    outcome: Outcome
    reason: str | None
    host: str | None
    fate: Fate | None = None
    program: str = CLIENT


CASES = {
    "office365 standalone 535 5.7.3": Case(
        OFFICE365, Outcome.FAILURE, "auth.exchange_refused", "smtp.office365.com"
    ),
    "cached failure": Case(
        "SASL [CACHED] authentication failed; server smtp.gmail.com said: 535 5.7.8 Username "
        "and Password not accepted",
        Outcome.FAILURE,
        "auth.credentials_rejected",
        "smtp.gmail.com",
    ),
    "generic failure": Case(
        "9BDCBA19EA: SASL authentication failed; cannot authenticate to server "
        "smtp.office365.com[192.0.2.50]: generic failure",
        Outcome.FAILURE,
        "auth_failure_rate.local_sasl_failure",
        "smtp.office365.com",
    ),
    "no mechanism": Case(
        "9BDCBA19EA: SASL authentication failed; cannot authenticate to server "
        "smtp.office365.com[192.0.2.50]: no mechanism available",
        Outcome.FAILURE,
        "auth_failure_rate.no_sasl_mechanism",
        "smtp.office365.com",
    ),
    "sent through 587": Case(SENT, Outcome.SUCCESS, None, "smtp.example.com", Fate.SENT),
    "ipv6 relay reused connection": Case(
        "9BDCBA19EA: to=<alice@example.net>, relay=smtp.example.com[2001:db8::25]:465, "
        "conn_use=2, delay=0.3, delays=0.1/0/0/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)",
        Outcome.SUCCESS,
        None,
        "smtp.example.com",
        Fate.SENT,
    ),
    "deferred sasl reply": Case(
        SASL_DEFERRED,
        Outcome.FAILURE,
        "auth.credentials_rejected",
        "smtp.gmail.com",
        Fate.DEFERRED,
    ),
    "deferred local sasl": Case(
        CANNOT_AUTHENTICATE,
        Outcome.FAILURE,
        "auth_failure_rate.local_sasl_failure",
        "smtp.office365.com",
        Fate.DEFERRED,
    ),
    "pipe error bounced": Case(
        PIPE_BOUNCED,
        Outcome.FAILURE,
        "auth_failure_rate.pipe_command_failed",
        "127.0.0.1",
        Fate.BOUNCED,
    ),
    "pipe error deferred": Case(
        PIPE_DEFERRED,
        Outcome.FAILURE,
        "auth_failure_rate.pipe_command_failed",
        "127.0.0.1",
        Fate.DEFERRED,
    ),
    "user unknown past auth": Case(
        USER_UNKNOWN, Outcome.SUCCESS, None, "smtp.example.com", Fate.BOUNCED
    ),
    "greylisted past auth": Case(
        GREYLISTED, Outcome.SUCCESS, None, "smtp.example.com", Fate.DEFERRED
    ),
    "starttls required": Case(
        STARTTLS_FIRST,
        Outcome.FAILURE,
        "auth.starttls_required",
        "smtp.example.com",
        Fate.BOUNCED,
    ),
    "connection refused": Case(
        CONNECT_REFUSED,
        Outcome.FAILURE,
        "auth_failure_rate.connection_failed",
        "smtp.example.com",
        Fate.DEFERRED,
    ),
    "suspended not an attempt": Case(
        SUSPENDED,
        Outcome.DELIVERY,
        "auth_failure_rate.connection_failed",
        "smtp.example.com",
        Fate.DEFERRED,
    ),
    "lost connection": Case(
        LOST_CONNECTION,
        Outcome.FAILURE,
        "auth_failure_rate.connection_failed",
        "smtp.example.com",
        Fate.DEFERRED,
    ),
    "tls handshake": Case(
        TLS_FAILED, Outcome.FAILURE, "tls.handshake_failed", "smtp.example.com", Fate.DEFERRED
    ),
    "server login failed": Case(
        "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
        Outcome.FAILURE,
        "auth.credentials_rejected",
        "192.0.2.7",
        program=SERVER,
    ),
    "server backend lost": Case(
        "warning: client.example.com[192.0.2.7]: SASL PLAIN authentication failed: "
        "Connection lost to authentication server",
        Outcome.FAILURE,
        "auth_failure_rate.backend_unavailable",
        "192.0.2.7",
        program="postfix/smtpd",
    ),
    "server aborted": Case(
        "warning: unknown[192.0.2.7]: SASL XOAUTH2 authentication aborted",
        Outcome.FAILURE,
        "auth_failure_rate.client_aborted",
        "192.0.2.7",
        program="postfix/smtps/smtpd",
    ),
    "server success": Case(
        "4F3A21B0C9: client=unknown[192.0.2.7], sasl_method=XOAUTH2, "
        "sasl_username=alice@example.com",
        Outcome.SUCCESS,
        None,
        "192.0.2.7",
        program=SERVER,
    ),
}


def parse(message: str, program: str = CLIENT, timestamp: float = TIME) -> LineResult:
    return PostfixParser().parse(SyslogRecord(message, timestamp, "mx", program, PID))


def only_event(result: LineResult) -> LogEvent:
    assert len(result.events) == 1
    return result.events[0]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_line_outcome(case: Case) -> None:
    event = only_event(parse(case.message, case.program))
    assert event.outcome is case.outcome
    assert event.reason == case.reason
    assert event.host == case.host
    assert event.fate is case.fate
    assert event.source is Source.POSTFIX
    assert event.timestamp == TIME


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_line_is_candidate(case: Case) -> None:
    assert CANDIDATE.search(case.message.encode()) is not None


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_line_side(case: Case) -> None:
    event = only_event(parse(case.message, case.program))
    expected = Side.SERVER if case.program.endswith("smtpd") else Side.CLIENT
    assert event.side is expected


def test_office365_reply_fields() -> None:
    event = only_event(parse(OFFICE365))
    assert event.reply_code == 535
    assert event.enhanced_code == "5.7.3"
    assert event.reply_text is not None
    assert event.reply_text.startswith("535 5.7.3 Authentication unsuccessful")


def test_deferred_reply_strips_bracket() -> None:
    event = only_event(parse(SASL_DEFERRED))
    assert event.reply_text is not None
    assert event.reply_text.endswith("p=BadCredentials")


def test_local_sasl_text_kept() -> None:
    event = only_event(parse(CANNOT_AUTHENTICATE))
    assert event.reply_text == "bad protocol / cancel"
    assert event.reply_code is None


def test_server_mechanism_upper_cased() -> None:
    message = (
        "warning: unknown[192.0.2.7]: SASL xoauth2 authentication failed: authentication failure"
    )
    event = only_event(parse(message, SERVER))
    assert event.mechanism == "XOAUTH2"


def test_server_success_mechanism() -> None:
    event = only_event(parse(CASES["server success"].message, SERVER))
    assert event.mechanism == "XOAUTH2"


IGNORED = {
    "relay port 25": (
        "5E8B21A3F0: to=<bob@example.net>, relay=mx.example.net[198.51.100.5]:25, delay=0.5, "
        "delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1A2B3C)",
        CLIENT,
    ),
    "relay local": (
        "5E8B21A3F0: to=<bob@example.com>, relay=local, delay=0.02, delays=0.01/0/0/0.01, "
        "dsn=2.0.0, status=sent (delivered to mailbox)",
        CLIENT,
    ),
    "relay lmtp socket": (
        "5E8B21A3F0: to=<bob@example.com>, relay=mail.example.com[private/dovecot-lmtp], "
        "delay=0.05, delays=0.01/0/0/0.04, dsn=2.0.0, status=sent (250 2.0.0 Saved)",
        CLIENT,
    ),
    "relay amavis": (
        "5E8B21A3F0: to=<bob@example.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.9, "
        "delays=0.1/0/0/0.8, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025))",
        CLIENT,
    ),
    "connect to port 25": (
        "5E8B21A3F0: to=<bob@example.net>, relay=none, delay=30, delays=0.1/0/30/0, dsn=4.4.1, "
        "status=deferred (connect to mx.example.net[198.51.100.5]:25: Connection timed out)",
        CLIENT,
    ),
    "smtpd connect": ("connect from unknown[192.0.2.7]", SERVER),
    "disconnect summary": (
        "disconnect from unknown[192.0.2.7] ehlo=1 auth=0/1 quit=1 commands=2/3",
        SERVER,
    ),
    "client without sasl": ("4F3A21B0C9: client=unknown[192.0.2.7]", SERVER),
}


@pytest.mark.parametrize(("message", "program"), IGNORED.values(), ids=IGNORED.keys())
def test_line_ignored(message: str, program: str) -> None:
    assert parse(message, program) == LineResult(source=Source.POSTFIX)


def test_unreadable_sasl_failure() -> None:
    result = parse("9BDCBA19EA: SASL authentication failed; something else entirely")
    assert result.parse_error


def outcomes(parser: PostfixParser, lines: list[tuple[str, float]]) -> list[Outcome]:
    found: list[Outcome] = []
    for message, timestamp in lines:
        record = SyslogRecord(message, timestamp, "mx", CLIENT, PID)
        found.extend(event.outcome for event in parser.parse(record).events)
    return found


def test_recipients_counted_once() -> None:
    second = SENT.replace("alice@", "carol@")
    assert outcomes(PostfixParser(), [(SENT, TIME), (second, TIME + 0.1)]) == [Outcome.SUCCESS]


def test_retry_counted_again() -> None:
    later = TIME + GROUP_SECONDS + 240
    result = outcomes(PostfixParser(), [(SASL_DEFERRED, TIME), (SASL_DEFERRED, later)])
    assert result == [Outcome.FAILURE, Outcome.FAILURE]


def test_other_pid_counted_apart() -> None:
    parser = PostfixParser()
    first = parser.parse(SyslogRecord(SENT, TIME, "mx", CLIENT, 1)).events
    second = parser.parse(SyslogRecord(SENT, TIME, "mx", CLIENT, 2)).events
    assert len(first) == 1
    assert len(second) == 1


def test_standalone_then_delivery_once() -> None:
    delivery = (
        "9BDCBA19EA: to=<alice@example.net>, relay=smtp.office365.com[192.0.2.51]:587, "
        "delay=1.5, delays=0.1/0/1.4/0, dsn=4.7.3, status=deferred (SASL authentication failed; "
        "server smtp.office365.com[192.0.2.51] said: 535 5.7.3 Authentication unsuccessful "
        "[XX0P281CA0095.DEUP281.PROD.OUTLOOK.COM])"
    )
    same_address = delivery.replace("192.0.2.51", "192.0.2.50")
    result = outcomes(PostfixParser(), [(OFFICE365, TIME), (same_address, TIME + 1)])
    assert result == [Outcome.FAILURE, Outcome.DELIVERY]


def test_failure_at_second_address_counted() -> None:
    # Postfix gave up on 192.0.2.50 (standalone line) and failed again at 192.0.2.51.
    delivery = (
        "9BDCBA19EA: to=<alice@example.net>, relay=smtp.office365.com[192.0.2.51]:587, "
        "delay=1.5, delays=0.1/0/1.4/0, dsn=4.7.3, status=deferred (SASL authentication failed; "
        "server smtp.office365.com[192.0.2.51] said: 535 5.7.3 Authentication unsuccessful "
        "[XX0P281CA0095.DEUP281.PROD.OUTLOOK.COM])"
    )
    result = outcomes(PostfixParser(), [(OFFICE365, TIME), (delivery, TIME + 1)])
    assert result == [Outcome.FAILURE, Outcome.FAILURE]


def test_standalone_other_reason_counted() -> None:
    result = outcomes(PostfixParser(), [(OFFICE365, TIME), (CANNOT_AUTHENTICATE, TIME + 1)])
    assert result == [Outcome.FAILURE, Outcome.FAILURE]


def test_memory_is_bounded() -> None:
    parser = PostfixParser()
    lines = [(SENT, TIME)]
    lines += [(SENT.replace("9BDCBA19EA", f"{number:010X}"), TIME) for number in range(MEMORY_SIZE)]
    lines.append((SENT, TIME + 1))
    assert outcomes(parser, lines).count(Outcome.SUCCESS) == MEMORY_SIZE + 2


def test_inline_sasl_xoauth2() -> None:
    message = (
        "sasl-xoauth2: auth failed: 2026-03-01 10:00:00: TokenStore::Refresh: http error: "
        "Could not resolve host: login.microsoftonline.com"
    )
    event = only_event(parse(message))
    assert event.outcome is Outcome.CAUSE
    assert event.reason == "auth_failure_rate.token_refresh_failed"


PROGRAMS = {
    "postfix/smtp": True,
    "postfix/relay/smtp": True,
    "postfix/submission/smtpd": True,
    "postfix/smtps/smtpd": True,
    "postfix-incoming/smtpd": True,
    "postfix-out/relay/smtp": True,
    "smtp": True,
    "smtpd": True,
    "postfix/qmgr": False,
    "postfix/lmtp": False,
    "exim4": False,
    "sasl-xoauth2": False,
    "msmtp": False,
}


@pytest.mark.parametrize(("program", "expected"), PROGRAMS.items(), ids=PROGRAMS.keys())
def test_is_postfix(program: str, expected: bool) -> None:
    assert is_postfix(program) is expected
