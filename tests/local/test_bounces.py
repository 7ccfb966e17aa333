"""Tests of the bounce tally: counts, first and last times, and the evidence lines kept."""

from __future__ import annotations

import pytest

from smtpdiag.local.bounces import EVIDENCE_LINES, Bounce, BounceTally, classify_bounce


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
