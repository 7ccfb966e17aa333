"""Real Postfix 3.7 and Dovecot 2.3 logs (tests/logs/data): attribution, events, leaks, bounces.

tests/logs/data/README.md describes how each file was made and what happened to its messages.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smtpdiag.local.bounces import BounceTally, read_bounce
from smtpdiag.logs.analysis import AnalysisOptions, analyze_files
from smtpdiag.logs.dispatch import LineParser
from smtpdiag.logs.keywords import CANDIDATE
from smtpdiag.logs.leaks import find_leaks, mask_leaks
from smtpdiag.logs.model import LineResult, Outcome, Source
from smtpdiag.logs.timestamps import TimeReader

DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()
FILES = sorted(DATA.glob("*.log"))
LAB_TOKEN = "ya29.lab-Q7vN2kLmX9pR4tYw8ZcB1dFh"  # made-up token of the captures

SENT = ("success", None, "sent")
PIPE_BOUNCED = ("failure", "auth_failure_rate.pipe_command_failed", "bounced")

# File -> Counter of (outcome, reason, fate) over all its events; see data/README.md.
EXPECTED_EVENTS: dict[str, Counter[tuple[str, str | None, str | None]]] = {
    "postfix-3.7-relay-sent.log": Counter({SENT: 2}),
    "postfix-3.7-relay-pickup-sent.log": Counter({SENT: 2}),
    "postfix-3.7-relay-auth-sent.log": Counter({SENT: 2}),
    "postfix-3.7-relay-auth-rejected.log": Counter(
        {("failure", "auth.credentials_rejected", "deferred"): 2}
    ),
    "postfix-3.7-relay-pipe-bounced.log": Counter({PIPE_BOUNCED: 4}),
    "postfix-3.7-relay-pipe-deferred.log": Counter(
        {("failure", "auth_failure_rate.pipe_command_deferred", "deferred"): 2}
    ),
    "postfix-3.7-relay-down.log": Counter(
        {("failure", "auth_failure_rate.connection_failed", "deferred"): 2}
    ),
    "dovecot-2.3-log-path.log": Counter(
        {
            ("failure", "auth.temporary_failure", None): 2,
            ("failure", "auth.token_rejected", None): 1,
            ("failure", "scope.user_mismatch", None): 1,
            ("success", None, None): 1,
        }
    ),
    "dovecot-2.3-auth-debug.log": Counter(),
}
SOURCES = {"postfix": Source.POSTFIX, "dovecot": Source.DOVECOT}


def parse_file(path: Path) -> list[tuple[str, LineResult]]:
    line_parser = LineParser(TimeReader(UTC, now=lambda: NOW))
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(line, line_parser.parse(line)) for line in lines]


def test_every_capture_has_expectation() -> None:
    assert sorted(path.name for path in FILES) == sorted(EXPECTED_EVENTS)


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_every_line_has_its_source(path: Path) -> None:
    source = SOURCES[path.name.partition("-")[0]]
    results = parse_file(path)
    without_source = [line for line, result in results if result.source is not source]
    assert without_source == []


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_no_parse_errors(path: Path) -> None:
    errors = [line for line, result in parse_file(path) if result.parse_error]
    assert errors == []


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_events_match_message_fates(path: Path) -> None:
    events = Counter(
        (event.outcome.value, event.reason, event.fate.value if event.fate else None)
        for _, result in parse_file(path)
        for event in result.events
    )
    assert events == EXPECTED_EVENTS[path.name]


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_event_and_leak_lines_are_candidates(path: Path) -> None:
    missed = [
        line
        for line, result in parse_file(path)
        if (result.events or find_leaks(line)) and CANDIDATE.search(line.encode()) is None
    ]
    assert missed == []


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_analysis_counts_same_events(path: Path) -> None:
    # The reader's keyword filter must not drop a line with an event.
    summary = analyze_files([str(path)], AnalysisOptions(zone=UTC), now=lambda: NOW)
    attempts = sum(
        count
        for (outcome, _, _), count in EXPECTED_EVENTS[path.name].items()
        if outcome in (Outcome.SUCCESS.value, Outcome.FAILURE.value)
    )
    assert summary.attempts == attempts
    assert summary.parse_errors == 0


def test_maillog_time_is_read() -> None:
    path = DATA / "postfix-3.7-relay-pipe-bounced.log"
    stamps = {event.timestamp for _, result in parse_file(path) for event in result.events}
    assert stamps == {datetime(2026, 12, 5, 6, 30, 32, tzinfo=UTC).timestamp()}


def test_user_mismatch_keeps_both_names() -> None:
    path = DATA / "dovecot-2.3-log-path.log"
    texts = [
        event.reply_text
        for _, result in parse_file(path)
        for event in result.events
        if event.reply_text and event.reply_text.startswith("Username")
    ]
    assert texts == ["Username 'lab.user@example.com' did not match 'someone.else@example.com'"]


def test_sasl_delivery_line_alone_keeps_reply() -> None:
    path = DATA / "postfix-3.7-relay-auth-rejected.log"
    events = [event for _, result in parse_file(path) for event in result.events]
    replies = {(event.reply_code, event.enhanced_code, event.host) for event in events}
    assert replies == {(535, "5.7.8", "127.0.0.1")}


def test_dovecot_debug_leaks_found() -> None:
    lines = (DATA / "dovecot-2.3-auth-debug.log").read_text(encoding="utf-8").splitlines()
    kinds = Counter(leak.kind for line in lines for leak in find_leaks(line))
    assert kinds == Counter({"google_access_token": 1, "xoauth2_response": 1})


def test_dovecot_debug_masked_without_token() -> None:
    lines = (DATA / "dovecot-2.3-auth-debug.log").read_text(encoding="utf-8").splitlines()
    masked = "\n".join(mask_leaks(line, find_leaks(line)) for line in lines)
    assert LAB_TOKEN not in masked
    assert masked.count("[secret]") == 2


def test_dovecot_debug_leaks_reported_without_token() -> None:
    path = DATA / "dovecot-2.3-auth-debug.log"
    summary = analyze_files([str(path)], AnalysisOptions(zone=UTC), now=lambda: NOW)
    assert sorted((leak.kind, leak.count) for leak in summary.leaks) == [
        ("google_access_token", 1),
        ("xoauth2_response", 1),
    ]
    assert LAB_TOKEN not in repr(summary)


def read_bounces(name: str) -> BounceTally:
    times = TimeReader(UTC, now=lambda: NOW)
    tally = BounceTally()
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        bounce = read_bounce(line, times)
        if bounce is not None:
            tally.add(bounce)
    return tally


def test_maillog_bounces_read() -> None:
    tally = read_bounces("postfix-3.7-relay-pipe-bounced.log")
    # The 2 messages and the 2 non-delivery notifications that bounced at the same relay.
    assert dict(tally.messages) == {("postfix", 77): 4}
    assert tally.last_seen == {True: datetime(2026, 12, 5, 6, 30, 32, tzinfo=UTC).timestamp()}


def test_maillog_deferrals_are_not_bounces() -> None:
    tally = read_bounces("postfix-3.7-relay-pipe-deferred.log")
    assert dict(tally.counts) == {}
