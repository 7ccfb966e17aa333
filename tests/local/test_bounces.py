"""Tests of the bounce tally: counts, first and last times, and the evidence lines kept."""

from __future__ import annotations

import pytest

from smtpdiag.local.bounces import (
    ELLIPSIS,
    EVIDENCE_LINES,
    Bounce,
    BounceTally,
    classify_bounce,
    evidence_text,
    message_id,
)


def tally_of(statuses: list[int]) -> BounceTally:
    tally = BounceTally()
    for index, status in enumerate(statuses):
        tally.add(Bounce("msmtpd", status, float(index), f"line {index}"))
    return tally


def test_tally_counts_per_status() -> None:
    summary = tally_of([77, 77, 65]).summary(3, True, [])
    assert summary.counts == {("msmtpd", 77): 2, ("msmtpd", 65): 1}


def test_tally_first_seen_per_kind() -> None:
    summary = tally_of([65, 77, 78, 65]).summary(4, True, [])
    assert summary.first_seen == {False: 0.0, True: 1.0}


def test_tally_last_seen_per_kind() -> None:
    summary = tally_of([65, 77, 78, 65]).summary(4, True, [])
    assert summary.last_seen == {False: 3.0, True: 2.0}


def test_tally_keeps_first_and_last_lines() -> None:
    count = 3 * EVIDENCE_LINES
    summary = tally_of([77] * count).summary(count, True, [])
    expected = [*range(EVIDENCE_LINES), *range(count - EVIDENCE_LINES, count)]
    assert [bounce.line for bounce in summary.bounces] == [f"line {i}" for i in expected]


@pytest.mark.parametrize(
    ("program", "message", "expected"),
    [
        ("msmtpd", "pipe command reported error 78, session aborted", ("msmtpd", 78)),
        ("msmtpd", "pipe command reported error 75, session aborted", None),
        (None, "554 Pipe command reported error 77", None),
    ],
    ids=["msmtpd-554", "msmtpd-temporary", "no-program"],
)
def test_classify_bounce(
    program: str | None, message: str, expected: tuple[str, int] | None
) -> None:
    assert classify_bounce(program, message) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("5DEF: to=<bob@example.net>, status=bounced", "5DEF"),
        ("4ABC12: to=<bob@example.net>, status=bounced", "4ABC12"),
        ("5E8B21A3F0AB: to=<bob@example.net>, status=bounced", "5E8B21A3F0AB"),
        ("4TzK7d0Qx2z9sLp: to=<bob@example.net>, status=bounced", "4TzK7d0Qx2z9sLp"),
        ("to=<bob@example.net>, status=bounced", None),
    ],
    ids=["short-4", "short-6", "short-12", "long-id", "no-id"],
)
def test_postfix_queue_id(message: str, expected: str | None) -> None:
    assert message_id("postfix", message) == expected


def test_short_queue_id_lines_are_one_message() -> None:
    tally = BounceTally()
    for _ in range(3):
        tally.add(Bounce("postfix", 77, 0.0, "line", message_id="5DEF"))
    summary = tally.summary(3, True, [])
    assert summary.messages == {("postfix", 77): 1}
    assert summary.counts == {("postfix", 77): 3}


POSTFIX_REPLY = (
    "Mar  2 11:50:00 mx postfix/smtp[4242]: 5DEF: to=<bob@example.net>, status=bounced "
    "(host 127.0.0.1[127.0.0.1] said: 554 Pipe command reported error 77"
)


@pytest.mark.parametrize(
    ("source", "text", "expected"),
    [
        (
            "postfix",
            POSTFIX_REPLY + " (in reply to end of DATA command))",
            POSTFIX_REPLY + ELLIPSIS,
        ),
        (
            "postfix",
            POSTFIX_REPLY + " 1//0gSecret (in reply to end of DATA command))",
            POSTFIX_REPLY + ELLIPSIS,
        ),
        (
            "exim",
            "1rKXyz-000abc-12 ** bob@example.net: 554 Pipe command reported error 77",
            "1rKXyz-000abc-12 ** bob@example.net: 554 Pipe command reported error 77",
        ),
        (
            "msmtpd",
            "msmtpd[4300] error: pipe command reported error 77, session aborted ya29.x",
            "msmtpd[4300] error: pipe command reported error 77, session aborted" + ELLIPSIS,
        ),
        (
            "postfix",
            "554 Pipe command reported error 770 password=hunter2",
            "554 Pipe command reported error 770" + ELLIPSIS,
        ),
    ],
    ids=["postfix-tail", "postfix-secret", "exim-nothing-after", "msmtpd-tail", "whole-number"],
)
def test_evidence_text_cut_after_reply(source: str, text: str, expected: str) -> None:
    assert evidence_text(source, text, text) == expected


def test_evidence_text_from_decoded_message() -> None:
    # A journal line whose MESSAGE is an array of bytes does not show the reply in its text.
    raw = '{"MESSAGE": [53, 53, 52], "SYSLOG_IDENTIFIER": "postfix/smtp"}'
    message = "5DEF: status=bounced (said: 554 Pipe command reported error 78 GOCSPX-secret)"
    expected = "5DEF: status=bounced (said: 554 Pipe command reported error 78" + ELLIPSIS
    assert evidence_text("postfix", raw, message) == expected
