"""Dovecot's log lines: the log file and syslog forms, AUTH events, and how causes count."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from smtpdiag.logs import dovecot
from smtpdiag.logs.dispatch import LineParser
from smtpdiag.logs.keywords import CANDIDATE
from smtpdiag.logs.model import LineResult, Outcome, Side, Source
from smtpdiag.logs.timestamps import TimeReader

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()
AT = datetime(2026, 12, 5, 6, 21, 30, tzinfo=UTC).timestamp()
USER = "lab.user@example.com"
SESSION = "gt7ZAN1hCr5/AAAB"
TAIL = f"rip=127.0.0.1, lip=127.0.0.1, TLS, session=<{SESSION}>"

REFUSED = (
    f"oauth2({USER},127.0.0.1,<{SESSION}>): oauth2 failed: "
    "Introspection failed: Provided token is not valid"
)
AUTH_FAILED = (
    "Disconnected: Aborted login by logging out (auth failed, 1 attempts in 0 secs): "
    f"user=<{USER}>, method=XOAUTH2, {TAIL}"
)
TEMPORARY = (
    "Disconnected: Aborted login by logging out (auth service reported temporary failure): "
    f"user=<{USER}>, method=XOAUTH2, {TAIL}"
)
LOGIN = f"Login: user=<{USER}>, method=XOAUTH2, rip=127.0.0.1, lip=127.0.0.1, mpid=5561, {TAIL}"


def parser() -> LineParser:
    return LineParser(TimeReader(UTC, now=lambda: NOW))


def logfile(process: str, level: str, text: str) -> str:
    return f"Dec 05 06:21:30 {process}: {level}: {text}"


def syslog(process: str, level: str, text: str) -> str:
    prefix = "" if level == "Info" else f"{level}: "
    return f"Dec  5 06:21:30 mail dovecot[812]: {process}: {prefix}{text}"


def journal(process: str, level: str, text: str) -> str:
    prefix = "" if level == "Info" else f"{level}: "
    entry = {
        "MESSAGE": f"{process}: {prefix}{text}",
        "SYSLOG_IDENTIFIER": "dovecot",
        "__REALTIME_TIMESTAMP": str(int(AT * 1_000_000)),
    }
    return json.dumps(entry)


Form = Callable[[str, str, str], str]
FORMS: dict[str, Form] = {"log-file": logfile, "syslog": syslog, "journal": journal}


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_login_success_in_every_form(form: Form) -> None:
    result = parser().parse(form("submission-login", "Info", LOGIN))
    assert result.source is Source.DOVECOT
    assert len(result.events) == 1
    event = result.events[0]
    assert (event.outcome, event.side, event.host, event.mechanism, event.timestamp) == (
        Outcome.SUCCESS,
        Side.SERVER,
        "127.0.0.1",
        "XOAUTH2",
        AT,
    )


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_refused_token_in_every_form(form: Form) -> None:
    result = parser().parse(form("auth", "Info", REFUSED))
    assert [(event.outcome, event.reason) for event in result.events] == [
        (Outcome.FAILURE, "auth.token_rejected")
    ]
    assert result.events[0].reply_text == "Provided token is not valid"


# Lines of processes that carry a user, pid or session in brackets; every one is Dovecot's.
BRACKETED = {
    "mail process error": (
        "Dec 05 06:22:18 submission(lab.user@example.com): Error: Mail access for users with "
        "UID 8 not permitted (see first_valid_uid in config file, uid from userdb lookup)."
    ),
    "mail process with session": (
        "Dec 05 06:22:20 submission(lab.user@example.com)<5591><4Q3dA91hRN1/AAAB>: Info: "
        "Disconnected: Failed to connect to relay server (connect) (state=GREETING) in=0 out=87"
    ),
    "auth worker with pid": (
        "Dec 05 06:22:20 auth-worker(5012): Error: conn unix:auth-worker (pid=5010,uid=110): "
        "auth-worker<1>: sql(a@example.com,127.0.0.1,<x>): Invalid password in passdb"
    ),
    "syslog auth worker": (
        "Dec  5 06:22:20 mail dovecot[812]: auth-worker(5012): Error: conn unix:auth-worker"
    ),
}


@pytest.mark.parametrize("line", BRACKETED.values(), ids=BRACKETED.keys())
def test_bracketed_process_is_dovecot(line: str) -> None:
    assert parser().parse(line) == LineResult(source=Source.DOVECOT)


NOT_DOVECOT = {
    "other program in syslog": "Dec  5 06:21:30 mail cron[5]: Info: Login: method=PLAIN",
    "process name without level": "Dec 05 06:21:30 auth: something else entirely",
    "dovecot tag with unknown process": "Dec  5 06:21:30 mail dovecot[1]: nonsense: Info: x",
    "log file with unknown process": "Dec 05 06:21:30 sshd(root): Info: Login: user=<x>",
}


@pytest.mark.parametrize("line", NOT_DOVECOT.values(), ids=NOT_DOVECOT.keys())
def test_line_of_other_program(line: str) -> None:
    assert parser().parse(line).source is not Source.DOVECOT


# (process, level, text) -> (outcome, reason) of each event
EVENTS = {
    "login": (("submission-login", "Info", LOGIN), [(Outcome.SUCCESS, None)]),
    "imap login": (("imap-login", "Info", LOGIN), [(Outcome.SUCCESS, None)]),
    "auth failed three attempts": (
        (
            "submission-login",
            "Info",
            AUTH_FAILED.replace("1 attempts in 0 secs", "3 attempts in 4 secs"),
        ),
        [(Outcome.FAILURE, "auth.token_rejected")] * 3,
    ),
    "plain auth failed": (
        ("submission-login", "Info", AUTH_FAILED.replace("method=XOAUTH2", "method=PLAIN")),
        [(Outcome.FAILURE, "auth.credentials_rejected")],
    ),
    "oauthbearer auth failed": (
        ("submission-login", "Info", AUTH_FAILED.replace("method=XOAUTH2", "method=OAUTHBEARER")),
        [(Outcome.FAILURE, "auth.token_rejected")],
    ),
    "temporary failure": (
        ("submission-login", "Info", TEMPORARY),
        [(Outcome.FAILURE, "auth.temporary_failure")],
    ),
    "unsupported mechanism": (
        (
            "submission-login",
            "Info",
            "Disconnected: Connection closed (tried to use unsupported auth mechanism): "
            f"user=<>, method=PLAIN, {TAIL}",
        ),
        [(Outcome.FAILURE, "auth.mechanism_unsupported")],
    ),
    "client cancelled": (
        (
            "submission-login",
            "Info",
            f"Disconnected: Connection closed (aborted authentication): user=<{USER}>, "
            f"method=XOAUTH2, {TAIL}",
        ),
        [(Outcome.FAILURE, "auth_failure_rate.client_aborted")],
    ),
    "no auth attempts": (
        (
            "submission-login",
            "Info",
            "Disconnected: Connection closed: SSL_accept() failed: error:0A000418:SSL "
            "routines::tlsv1 alert unknown ca: SSL alert number 48 (no auth attempts in 1 "
            f"secs): user=<>, {TAIL}",
        ),
        [],
    ),
    "user mismatch": (
        (
            "auth",
            "Info",
            f"oauth2({USER},127.0.0.1,<{SESSION}>): oauth2 failed: Introspection failed: "
            f"Username '{USER}' did not match 'someone.else@example.com'",
        ),
        [(Outcome.FAILURE, "scope.user_mismatch")],
    ),
    "scope missing": (
        (
            "auth",
            "Info",
            f"oauth2({USER},127.0.0.1,<{SESSION}>): oauth2 failed: Introspection failed: "
            "Token is not valid for scope 'mail'",
        ),
        [(Outcome.FAILURE, "auth.insufficient_scope")],
    ),
    "introspection http 500": (
        (
            "auth",
            "Error",
            f"oauth2({USER},127.0.0.1,<{SESSION}>): oauth2 failed: Introspection failed: "
            "500 Internal Server Error",
        ),
        [(Outcome.FAILURE, "auth.temporary_failure")],
    ),
    "introspection ca file": (
        (
            "auth",
            "Error",
            f"oauth2({USER},127.0.0.1,<{SESSION}>): oauth2 failed: Introspection failed: "
            "Couldn't initialize SSL context: Can't load CA certs from /tmp/x/ca.pem",
        ),
        [(Outcome.FAILURE, "auth.temporary_failure")],
    ),
    "token validation invalid": (
        (
            "auth",
            "Info",
            f"oauth2({USER},127.0.0.1,<{SESSION}>): oauth2 failed: Token validation failed: "
            "Invalid token",
        ),
        [(Outcome.FAILURE, "auth.token_rejected")],
    ),
    "master start": (
        ("master", "Info", "Dovecot v2.3.19.1 (9b53102964) starting up for submission"),
        [],
    ),
    "master warning": (("master", "Warning", "SIGHUP received - reloading configuration"), []),
    "login fatal": (("submission-login", "Fatal", "This process must not be run as root"), []),
    "debug passdb reply": (("auth", "Debug", "client passdb out: FAIL\t1\tuser=a"), []),
    "debug smtp server": (
        ("submission-login", "Debug", "smtp-server: conn 127.0.0.1:48650 [1]: Sent: 220"),
        [],
    ),
}


@pytest.mark.parametrize(("parts", "expected"), EVENTS.values(), ids=EVENTS.keys())
def test_events_of_line(parts: tuple[str, str, str], expected: list[tuple[Outcome, str]]) -> None:
    result = parser().parse(logfile(*parts))
    assert result.source is Source.DOVECOT
    assert not result.parse_error
    assert [(event.outcome, event.reason) for event in result.events] == expected


@pytest.mark.parametrize(("parts", "expected"), EVENTS.values(), ids=EVENTS.keys())
def test_event_lines_contain_keyword(
    parts: tuple[str, str, str], expected: list[tuple[Outcome, str]]
) -> None:
    line = logfile(*parts)
    assert not expected or CANDIDATE.search(line.encode()) is not None


def outcomes(lines: list[str]) -> list[tuple[Outcome, str | None]]:
    line_parser = parser()
    return [
        (event.outcome, event.reason) for line in lines for event in line_parser.parse(line).events
    ]


def test_cause_and_disconnect_count_once() -> None:
    lines = [logfile("auth", "Info", REFUSED), logfile("submission-login", "Info", AUTH_FAILED)]
    assert outcomes(lines) == [(Outcome.FAILURE, "auth.token_rejected")]


def test_temporary_cause_and_disconnect_count_once() -> None:
    cause = REFUSED.replace("Provided token is not valid", "500 Internal Server Error")
    lines = [logfile("auth", "Error", cause), logfile("submission-login", "Info", TEMPORARY)]
    assert outcomes(lines) == [(Outcome.FAILURE, "auth.temporary_failure")]


def test_disconnect_counts_attempts_beyond_causes() -> None:
    three = AUTH_FAILED.replace("1 attempts in 0 secs", "3 attempts in 2 secs")
    lines = [logfile("auth", "Info", REFUSED), logfile("submission-login", "Info", three)]
    assert outcomes(lines) == [
        (Outcome.FAILURE, "auth.token_rejected"),
        (Outcome.FAILURE, "auth.token_rejected"),
        (Outcome.FAILURE, "auth.token_rejected"),
    ]


def test_cause_of_other_session_not_subtracted() -> None:
    other = REFUSED.replace(SESSION, "otherSession/AAAB")
    lines = [logfile("auth", "Info", other), logfile("submission-login", "Info", AUTH_FAILED)]
    assert outcomes(lines) == [
        (Outcome.FAILURE, "auth.token_rejected"),
        (Outcome.FAILURE, "auth.token_rejected"),
    ]


def test_failure_before_login_stays_counted() -> None:
    lines = [
        logfile("auth", "Info", REFUSED),
        logfile("submission-login", "Info", LOGIN),
        logfile("submission-login", "Info", AUTH_FAILED),
    ]
    assert outcomes(lines) == [
        (Outcome.FAILURE, "auth.token_rejected"),
        (Outcome.SUCCESS, None),
        (Outcome.FAILURE, "auth.token_rejected"),
    ]


def test_forgotten_cause_counts_again() -> None:
    line_parser = parser()
    line_parser.parse(logfile("auth", "Info", REFUSED))
    for number in range(dovecot.MEMORY_SIZE):
        line_parser.parse(logfile("auth", "Info", REFUSED.replace(SESSION, f"s{number}")))
    result = line_parser.parse(logfile("submission-login", "Info", AUTH_FAILED))
    assert len(result.events) == 1


def test_unreadable_oauth2_failure_is_parse_error() -> None:
    result = parser().parse(logfile("auth", "Info", "oauth2 failed: no user or session"))
    assert result == LineResult(source=Source.DOVECOT, parse_error=True)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        pytest.param("Provided token is not valid", "auth.token_rejected", id="inactive"),
        pytest.param("Invalid token", "auth.token_rejected", id="invalid"),
        pytest.param("Username 'a' did not match 'b'", "scope.user_mismatch", id="user"),
        pytest.param("Token is not valid for scope 'x'", "auth.insufficient_scope", id="scope"),
        pytest.param("503 Service Unavailable", "auth.temporary_failure", id="http-503"),
        pytest.param("Request timed out", "auth.temporary_failure", id="timeout"),
    ],
)
def test_oauth2_reason(error: str, reason: str) -> None:
    assert dovecot.oauth2_reason(error) == reason


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("submission-login", True, id="login"),
        pytest.param("managesieve-login", True, id="other-login"),
        pytest.param("auth-worker(5012)", True, id="with-pid"),
        pytest.param("submission(a@example.com)<1><s>", True, id="with-user-and-session"),
        pytest.param("master", True, id="master"),
        pytest.param("sshd", False, id="other-program"),
        pytest.param("postfix/smtp", False, id="postfix"),
    ],
)
def test_is_process(name: str, expected: bool) -> None:
    assert dovecot.is_process(name) is expected


@pytest.mark.parametrize(
    ("text", "mechanism"),
    [
        pytest.param(
            "Disconnected: Aborted login by logging out (auth failed, 1 attempts in 0 secs): "
            "user=<weird, rip=192.0.2.66>, method=OAUTHBEARER, rip=203.0.113.7, "
            "lip=127.0.0.1, TLS, session=<S1>",
            "OAUTHBEARER",
            id="disconnect",
        ),
        pytest.param(
            "Login: user=<weird, rip=192.0.2.66, method=PLAIN>, method=XOAUTH2, "
            "rip=203.0.113.7, lip=127.0.0.1, mpid=5561, TLS, session=<S2>",
            "XOAUTH2",
            id="login",
        ),
    ],
)
def test_user_name_cannot_set_fields(text: str, mechanism: str) -> None:
    (event,) = parser().parse(logfile("submission-login", "Info", text)).events
    assert event.host == "203.0.113.7"
    assert event.mechanism == mechanism
