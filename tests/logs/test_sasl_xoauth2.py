"""Tests of the sasl-xoauth2 plugin's lines and of one failed login as Postfix logs it."""

from __future__ import annotations

import pytest

from smtpdiag.logs import sasl_xoauth2
from smtpdiag.logs.keywords import CANDIDATE
from smtpdiag.logs.model import LineResult, LogEvent, Outcome, Side, Source, SyslogRecord
from smtpdiag.logs.postfix import PostfixParser

TIME = 1_772_359_200.0

# Layout from sasl-xoauth2's src/log.cc and src/token_store.cc: a trace line is
# "<%F %T>: <message>", syslog'd as "  <trace line>" after "auth failed:" with
# log_full_trace_on_failure, or as "auth failed: <last trace line>" without it. The Microsoft
# error body follows the identity platform's documented AADSTS700082 response.
AADSTS_BODY = (
    '{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has '
    'expired due to inactivity.","error_codes":[700082],"timestamp":"2026-03-01 10:00:00Z"}'
)
FULL_TRACE = [
    "auth failed:",
    "  2026-03-01 10:00:00: Client: created",
    "  2026-03-01 10:00:00: TokenStore::Read: file=/etc/tokens/sender.json",
    "  2026-03-01 10:00:00: TokenStore::Read: refresh=0.AXkA-example-refresh, access=",
    "  2026-03-01 10:00:00: TokenStore::GetAccessToken: token expired. refreshing.",
    "  2026-03-01 10:00:00: TokenStore::Refresh: attempt 1",
    "  2026-03-01 10:00:00: TokenStore::Refresh: token_endpoint: "
    "https://login.microsoftonline.com/common/oauth2/v2.0/token",
    "  2026-03-01 10:00:00: TokenStore::Refresh: request: client_id=00000000-0000-0000-0000-"
    "000000000000&client_secret=example-secret&grant_type=refresh_token&refresh_token=0.AXkA",
    f"  2026-03-01 10:00:01: TokenStore::Refresh: code=400, response={AADSTS_BODY}",
    "  2026-03-01 10:00:01: TokenStore::Refresh: request failed",
    "  2026-03-01 10:00:01: Client::DoStep: new state 1 and err -5",
]
# Postfix's own line for the same login: the one counted attempt.
POSTFIX_DELIVERY = (
    "9BDCBA19EA: to=<alice@example.net>, relay=smtp.office365.com[192.0.2.50]:587, delay=0.9, "
    "delays=0.1/0/0.5/0.3, dsn=4.7.0, status=deferred (SASL authentication failed; cannot "
    "authenticate to server smtp.office365.com[192.0.2.50]: bad protocol / cancel)"
)


def parse(message: str) -> LineResult:
    return sasl_xoauth2.parse(SyslogRecord(message, TIME, "mx", "sasl-xoauth2", None))


def events_of(messages: list[str]) -> list[LogEvent]:
    found: list[LogEvent] = []
    for message in messages:
        found.extend(parse(message).events)
    return found


def test_full_trace_one_event() -> None:
    events = events_of(FULL_TRACE)
    assert len(events) == 1


def test_full_trace_reason_from_body() -> None:
    (event,) = events_of(FULL_TRACE)
    assert event.reason == "token.refresh_token_expired"
    assert event.outcome is Outcome.CAUSE


def test_full_trace_event_fields() -> None:
    (event,) = events_of(FULL_TRACE)
    assert event.source is Source.POSTFIX
    assert event.side is Side.CLIENT
    assert event.timestamp == TIME
    assert event.reply_text is not None
    assert event.reply_text.startswith("TokenStore::Refresh: code=400")


def test_failed_login_counts_one_failure() -> None:
    parser = PostfixParser()
    events = [*events_of(FULL_TRACE)]
    record = SyslogRecord(POSTFIX_DELIVERY, TIME + 1, "mx", "postfix/smtp", 4242)
    events.extend(parser.parse(record).events)
    failures = [event for event in events if event.outcome is Outcome.FAILURE]
    assert len(failures) == 1
    assert failures[0].reason == "auth_failure_rate.local_sasl_failure"


def test_failed_login_lines_are_candidates() -> None:
    for message in FULL_TRACE[:1] + FULL_TRACE[8:10]:
        assert CANDIDATE.search(f"sasl-xoauth2: {message}".encode()) is not None


SECRETS = {
    "request line": FULL_TRACE[7],
    "token read": FULL_TRACE[3],
    "xoauth2 response": "  2026-03-01 10:00:00: Client::SendToken: response: "
    "user=sender@example.com\x01auth=Bearer ya29.example-access-token\x01\x01",
    "new access token": "auth failed: 2026-03-01 10:00:00: TokenStore::Refresh: code=200, "
    'response={"access_token": "ya29.example-access-token", "expires_in": 3599}',
    "request summary": "auth failed: 2026-03-01 10:00:00: TokenStore::Refresh: request: "
    "client_id=x&client_secret=example-secret&grant_type=refresh_token&refresh_token=0.AXkA",
}


@pytest.mark.parametrize("message", SECRETS.values(), ids=SECRETS.keys())
def test_secret_lines_give_no_event(message: str) -> None:
    assert parse(message) == LineResult(source=Source.POSTFIX)


SUMMARIES = {
    "request failed": (
        "auth failed: 2026-03-01 10:00:01: TokenStore::Refresh: request failed",
        "auth_failure_rate.token_refresh_failed",
    ),
    "http error": (
        "auth failed: 2026-03-01 10:00:01: TokenStore::Refresh: http error: Couldn't resolve "
        "host name",
        "auth_failure_rate.token_refresh_failed",
    ),
    "body in summary": (
        f"auth failed: 2026-03-01 10:00:01: TokenStore::Refresh: code=400, response={AADSTS_BODY}",
        "token.refresh_token_expired",
    ),
    "token file missing": (
        "auth failed: 2026-03-01 10:00:00: TokenStore::Read: failed to open file "
        "/etc/tokens/sender.json",
        "auth_failure_rate.local_sasl_failure",
    ),
    "google invalid grant": (
        "auth failed: 2026-03-01 10:00:01: TokenStore::Refresh: code=400, response={#012  "
        '"error": "invalid_grant",#012  "error_description": "Token has been expired or '
        'revoked."#012}#012',
        "token.grant_revoked",
    ),
    "header reader newline escape": (
        "auth failed: 2026-03-01 10:00:01: TokenStore::Refresh: code=400, response={\\n  "
        '"error": "invalid_grant",\\n  "error_description": "Bad Request"\\n}\\n',
        "token.invalid_grant",
    ),
    "rsyslog newline escape": (
        "auth failed: 2026-03-01 10:00:01: TokenStore::Refresh: request failed#012",
        "auth_failure_rate.token_refresh_failed",
    ),
    "inline in postfix log": (
        "sasl-xoauth2: Exception during init: reader error",
        "auth_failure_rate.local_sasl_failure",
    ),
}


@pytest.mark.parametrize(("message", "reason"), SUMMARIES.values(), ids=SUMMARIES.keys())
def test_summary_reason(message: str, reason: str) -> None:
    (event,) = parse(message).events
    assert event.reason == reason
    assert event.outcome is Outcome.CAUSE


QUIET = {
    "bare verdict": "auth failed:",
    "bare verdict escaped": "auth failed:#012",
    "trace hint": "set log_full_trace_on_failure to see full 11 line(s) of tracing.",
    "success response": "  2026-03-01 10:00:01: TokenStore::Refresh: code=200, response={}",
    "trace request failed": "  2026-03-01 10:00:01: TokenStore::Refresh: request failed",
    "trace attempt": "  2026-03-01 10:00:00: TokenStore::Refresh: attempt 1",
}


@pytest.mark.parametrize("message", QUIET.values(), ids=QUIET.keys())
def test_line_without_event(message: str) -> None:
    assert parse(message).events == ()
