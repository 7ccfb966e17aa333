"""Rendering of a logs summary: the JSON document against its schema, the table, the timeline
and the follow-mode lines."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from smtpdiag.logs.analysis import (
    AnalysisOptions,
    HostCount,
    LeakReport,
    LogsSummary,
    ReasonCount,
    RecentFailure,
    SourceCount,
    WindowCount,
)
from smtpdiag.logs.kinds import THRESHOLD_EXCEEDED, TOKEN_IN_LOG
from smtpdiag.logs.render import (
    follow_json,
    follow_line,
    render_logs_json,
    render_logs_table,
    sparkline,
)
from smtpdiag.models import Status
from smtpdiag.render.table import make_console

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "smtpdiag.logs-1.schema.json"

EXAMPLE = (
    "Nov 20 14:00:07 host=smtp.example.com tls=on auth=on user=alice@example.com "
    "from=alice@example.com recipients=bob@example.net smtpstatus=535 "
    "smtpmsg='535 5.7.8 Username and Password not accepted [BN0PR04CA0123]' "
    "errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM\x1b[31m"
)


def window(start: float, attempts: int, failures: int, over: bool) -> WindowCount:
    return WindowCount(start, start + 900, attempts, failures, failures / attempts, over)


def make_summary() -> LogsSummary:
    windows = (window(0, 25, 1, True), window(900, 40, 0, False), window(2700, 10, 1, False))
    return LogsSummary(
        lines=120,
        attempts=75,
        failures=2,
        failure_ratio=2 / 75,
        by_source={
            "msmtp": SourceCount(100, 75, 2, 1, {"bounced": 1, "deferred": 2}),
            "postfix": SourceCount(20, 0, 0, 0, {}),
        },
        by_host={"smtp.example.com": HostCount(75, 2)},
        by_reason={
            "auth.credentials_rejected": ReasonCount(
                2, "msmtp", EXAMPLE, "Create a new token.", 535, "5.7.8"
            )
        },
        windows=windows,
        leaks=(LeakReport("/var/log/msmtp.log", 17, "google_access_token", 3),),
        parse_errors=1,
        read_errors=(("/var/log/mail.log.2", "permission denied"),),
        findings=(
            THRESHOLD_EXCEEDED.make(
                facts={"attempts": 25}, details={"failures": 1, "attempts": 25}
            ),
            TOKEN_IN_LOG.make(details={"path": "/var/log/msmtp.log", "line_number": 17}),
        ),
        status=Status.CRITICAL,
        options=AnalysisOptions(since=0.0),
    )


def test_json_matches_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    document = json.loads(render_logs_json(make_summary()))
    errors = [error.message for error in validator.iter_errors(document)]
    assert errors == []


def test_json_of_empty_summary_matches_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    empty = LogsSummary(0, 0, 0, None, {}, {}, {}, (), (), 0, (), (), Status.OK)
    errors = [error.message for error in validator.iter_errors(empty.to_dict())]
    assert errors == []


def test_json_fates_and_leaks() -> None:
    document = json.loads(render_logs_json(make_summary()))
    assert document["fates"] == {"bounced": 1, "deferred": 2}
    assert document["leaks"] == [
        {"path": "/var/log/msmtp.log", "line_number": 17, "kind": "google_access_token", "count": 3}
    ]
    assert document["read_errors"] == [
        {"path": "/var/log/mail.log.2", "error": "permission denied"}
    ]


SPARK_CASES = [
    pytest.param([], "", id="no-windows"),
    pytest.param([window(0, 10, 0, False)], "▁", id="one-clean-window"),
    pytest.param([window(0, 10, 1, False), window(900, 10, 2, False)], "▅█", id="relative-heights"),
    pytest.param(
        [window(0, 10, 2, False), window(2700, 10, 2, False)], "█  █", id="gaps-are-spaces"
    ),
]


@pytest.mark.parametrize(("windows", "expected"), SPARK_CASES)
def test_sparkline(windows: list[WindowCount], expected: str) -> None:
    assert sparkline(windows, 900.0) == expected


def test_sparkline_keeps_last_windows() -> None:
    windows = [window(index * 900.0, 10, index % 2, False) for index in range(200)]
    line = sparkline(windows, 900.0, count=96)
    assert len(line) == 96
    assert line.endswith("▁█")


def render_table_text(summary: LogsSummary) -> str:
    stream = io.StringIO()
    render_logs_table(summary, make_console(stream, color=False))
    return stream.getvalue()


def test_fates_per_source_when_several_log_them() -> None:
    summary = make_summary()
    by_source = {
        "postfix": SourceCount(38, 3, 3, 0, {"bounced": 3}),
        "msmtpd": SourceCount(15, 3, 3, 0, {"bounced": 3}),
    }
    text = render_table_text(replace(summary, by_source=by_source))
    assert "postfix: 3 messages bounced (lost), 0 deferred (still queued)." in text
    assert "msmtpd: 3 messages bounced (lost), 0 deferred (still queued)." in text
    assert "6 messages" not in text


def test_table_sections() -> None:
    text = render_table_text(make_summary())
    assert "lines: 120   attempts: 75   failures: 2 (2.67 %)   parse errors: 1" in text
    assert "1 message bounced (lost), 2 deferred (still queued)." in text
    assert "auth.credentials_rejected" in text
    assert "Create a new token." in text
    assert "1970-01-01T00:00:00Z to 1970-01-01T00:15:00Z" in text
    assert "▄▁ █" in text
    assert "secret in log: /var/log/msmtp.log:17  google_access_token  (3 lines)" in text
    assert "auth_failure_rate.threshold_exceeded" in text


def test_table_escapes_control_characters() -> None:
    text = render_table_text(make_summary())
    assert "\x1b" not in text
    assert "\\x1b[31m" in text
    assert "[BN0PR04CA0123]" in text


def test_follow_line_lists_new_failures() -> None:
    current = window(900, 21, 1, True)
    failure = RecentFailure(4, 950.0, "msmtp", "smtp.example.com", "auth.credentials_rejected")
    text = follow_line(1000.0, current, [failure], 0.02)
    assert text.splitlines() == [
        "00:16:40 window 1970-01-01T00:15:00Z: attempts 21, failures 1, ratio 4.76 % "
        "(threshold 2.00 %) OVER THRESHOLD",
        "  failure: 1970-01-01T00:15:50Z msmtp smtp.example.com auth.credentials_rejected",
    ]


def test_follow_json_object() -> None:
    data = json.loads(follow_json(1000.0, window(900, 4, 1, False), 10, 2))
    assert data == {
        "time": "1970-01-01T00:16:40Z",
        "window": {
            "start": "1970-01-01T00:15:00Z",
            "end": "1970-01-01T00:30:00Z",
            "attempts": 4,
            "failures": 1,
            "failure_ratio": 0.25,
            "over_threshold": False,
        },
        "totals": {"attempts": 10, "failures": 2},
    }


def test_table_caps_windows_over_threshold() -> None:
    windows = tuple(window(index * 900.0, 20, 5, True) for index in range(25))
    summary = LogsSummary(500, 500, 125, 0.25, {}, {}, {}, windows, (), 0, (), (), Status.CRITICAL)
    text = render_table_text(summary)
    assert "… 5 earlier windows (--format json lists them)" in text
    assert "1970-01-01T01:15:00Z to" in text
    assert "1970-01-01T01:00:00Z to" not in text
