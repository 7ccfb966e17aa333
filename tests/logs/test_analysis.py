"""Analysis: windows and the threshold rule, filters, counters, leaks and findings.

A fake parser reads a compact test notation, one event per line, so these tests pin the
counting rules without depending on any log format:
``S <time|-> <source> <host|->`` success, ``F <time|-> <source> <host|-> <reason> [reply]``
failure, ``D <time> <source> <fate>`` delivery, ``E <source>`` parse error, anything else no
result. A fake leak finder reports every word that starts with ``SECRET`` as a bearer token.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from smtpdiag.logs import analysis as analysis_module
from smtpdiag.logs.analysis import Analysis, AnalysisOptions, LogsSummary
from smtpdiag.logs.classify import kind_for_reason, split_reply
from smtpdiag.logs.model import NO_RESULT, Fate, LineResult, LogEvent, Outcome, Side, Source
from smtpdiag.logs.reader import LogLine
from smtpdiag.models import Severity, Status

SECRET = re.compile(r"SECRET\w+")


@dataclass(frozen=True)
class FakeLeak:
    kind: str
    start: int
    end: int


def fake_leaks(text: str) -> tuple[FakeLeak, ...]:
    return tuple(FakeLeak("bearer_token", m.start(), m.end()) for m in SECRET.finditer(text))


def fake_mask(text: str, leaks: object) -> str:
    return SECRET.sub("[secret]", text)


def fake_parse(text: str) -> LineResult:
    parts = text.split(" ", 5)
    tag = parts[0]
    if tag == "E":
        return LineResult(source=Source(parts[1]), parse_error=True)
    if tag not in {"S", "F", "D"}:
        return NO_RESULT
    timestamp = None if parts[1] == "-" else float(parts[1])
    source = Source(parts[2])
    if tag == "D":
        event = LogEvent(source, Side.CLIENT, Outcome.DELIVERY, timestamp, fate=Fate(parts[3]))
    elif tag == "S":
        event = LogEvent(source, Side.CLIENT, Outcome.SUCCESS, timestamp, host=_host(parts[3]))
    else:
        event = _failure(source, timestamp, parts)
    return LineResult((event,), source)


def _host(text: str) -> str | None:
    return None if text == "-" else text


def _failure(source: Source, timestamp: float | None, parts: list[str]) -> LogEvent:
    reply = split_reply(parts[5]) if len(parts) > 5 else None
    return LogEvent(
        source,
        Side.CLIENT,
        Outcome.FAILURE,
        timestamp,
        host=_host(parts[3]),
        reason=parts[4],
        reply_code=reply[0] if reply else None,
        enhanced_code=reply[1] if reply else None,
        reply_text=reply[2] if reply else None,
    )


def analyze(lines: list[str], path: str = "mail.log", **options: object) -> LogsSummary:
    analysis = make_analysis(**options)
    for number, text in enumerate(lines, start=1):
        analysis.feed(LogLine(path, number, text))
    return analysis.summary()


def make_analysis(**options: object) -> Analysis:
    return Analysis(
        AnalysisOptions(**options),  # type: ignore[arg-type]
        lambda: 1_800_000_000.0,
        parser=fake_parse,
        find_leaks=fake_leaks,
        mask_leaks=fake_mask,
    )


REJECTED = "auth.credentials_rejected"


def attempts(count: int, failures: int, start: float = 0.0) -> list[str]:
    """Lines of ``count`` attempts one second apart, the first ``failures`` of them failed."""
    lines = []
    for index in range(count):
        moment = start + index
        if index < failures:
            lines.append(f"F {moment} msmtp smtp.example.com {REJECTED} 535 5.7.8 rejected")
        else:
            lines.append(f"S {moment} msmtp smtp.example.com")
    return lines


THRESHOLD_CASES = [
    pytest.param(25, 1, True, id="4-percent-of-25-over"),
    pytest.param(100, 2, False, id="2-percent-of-100-boundary-not-over"),
    pytest.param(100, 3, True, id="3-percent-of-100-over"),
    pytest.param(19, 5, False, id="19-attempts-below-minimum"),
    pytest.param(20, 1, True, id="20-attempts-at-minimum"),
    pytest.param(50, 0, False, id="no-failures"),
]


@pytest.mark.parametrize(("count", "failures", "over"), THRESHOLD_CASES)
def test_window_threshold_rule(count: int, failures: int, over: bool) -> None:
    summary = analyze(attempts(count, failures))
    assert len(summary.windows) == 1
    assert summary.windows[0].over_threshold is over
    assert summary.windows[0].attempts == count
    assert summary.windows[0].failures == failures


@pytest.mark.parametrize(("count", "failures", "over"), THRESHOLD_CASES)
def test_status_follows_threshold(count: int, failures: int, over: bool) -> None:
    summary = analyze(attempts(count, failures))
    assert summary.status is (Status.CRITICAL if over else Status.OK)
    assert summary.status.exit_code == (2 if over else 0)


def test_windows_align_to_epoch() -> None:
    summary = analyze(attempts(2, 1, start=899.0) + attempts(1, 0, start=1800.5))
    assert [(w.start, w.end) for w in summary.windows] == [
        (0.0, 900.0),
        (900.0, 1800.0),
        (1800.0, 2700.0),
    ]
    assert [(w.attempts, w.failures) for w in summary.windows] == [(1, 1), (1, 0), (1, 0)]


def test_custom_window_length() -> None:
    summary = analyze(attempts(3, 0, start=59.0), window_seconds=60.0)
    assert [w.start for w in summary.windows] == [0.0, 60.0]


def test_untimed_events_count_in_totals_only() -> None:
    summary = analyze(["S - msmtp smtp.example.com", f"F - msmtp smtp.example.com {REJECTED}"])
    assert (summary.attempts, summary.failures) == (2, 1)
    assert summary.failure_ratio == 0.5
    assert summary.windows == ()


def test_since_and_until_filter_events() -> None:
    lines = attempts(10, 5, start=0.0) + attempts(10, 0, start=1000.0) + attempts(10, 10, 3000)
    summary = analyze(lines, since=1000.0, until=3000.0)
    assert summary.lines == 30
    assert (summary.attempts, summary.failures) == (10, 0)
    assert [w.start for w in summary.windows] == [900.0]
    assert summary.by_source["msmtp"].lines == 30


def test_until_is_exclusive() -> None:
    summary = analyze(attempts(2, 0, start=99.0), until=100.0)
    assert summary.attempts == 1


def test_delivery_counts_fates_not_attempts() -> None:
    lines = ["D 10 postfix bounced", "D 11 postfix deferred", "D 12 postfix deferred"]
    summary = analyze(lines)
    assert summary.attempts == 0
    assert dict(summary.by_source["postfix"].fates) == {"bounced": 1, "deferred": 2}
    assert summary.fates == {"bounced": 1, "deferred": 2}


def test_parse_errors_count_per_source() -> None:
    summary = analyze(["E exim", "E exim", "E postfix", "unrelated"])
    assert summary.parse_errors == 3
    assert summary.by_source["exim"].parse_errors == 2
    assert summary.by_source["postfix"].parse_errors == 1
    assert summary.lines == 4


def test_lines_read_adds_non_candidates() -> None:
    analysis = make_analysis()
    analysis.feed(LogLine("mail.log", 1, "S 1 msmtp smtp.example.com"))
    analysis.add_lines_read(41)
    assert analysis.summary().lines == 42


def test_hosts_capped_under_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analysis_module, "MAX_HOSTS", 2)
    lines = [f"S 1 msmtp host{index}.example.com" for index in range(4)]
    lines.append(f"F 2 msmtp host0.example.com {REJECTED}")
    summary = analyze(lines)
    assert set(summary.by_host) == {"host0.example.com", "host1.example.com", "other"}
    assert summary.by_host["other"].attempts == 2
    assert summary.by_host["host0.example.com"].failures == 1


def test_reasons_most_frequent_first() -> None:
    lines = [
        "F 1 msmtp smtp.example.com auth.unclassified 535 5.7.0 no",
        f"F 2 msmtp smtp.example.com {REJECTED} 535 5.7.8 first SECRETabc",
        f"F 3 postfix smtp.example.com {REJECTED} 535 5.7.8 second",
    ]
    summary = analyze(lines)
    assert list(summary.by_reason) == [REJECTED, "auth.unclassified"]
    reason = summary.by_reason[REJECTED]
    assert reason.count == 2
    assert reason.source == "msmtp"
    assert reason.example == f"F 2 msmtp smtp.example.com {REJECTED} 535 5.7.8 first [secret]"
    kind = kind_for_reason(REJECTED)
    assert kind is not None
    assert reason.fix == kind.fix
    assert (reason.reply_code, reason.enhanced_code) == (535, "5.7.8")


def test_unknown_reason_has_no_fix() -> None:
    summary = analyze(["F 1 msmtp smtp.example.com area.not_a_code"])
    assert summary.by_reason["area.not_a_code"].fix is None
    assert "area.not_a_code" not in {finding.code for finding in summary.findings}


def test_leaks_reported_per_path_and_kind() -> None:
    analysis = make_analysis()
    analysis.feed(LogLine("a.log", 7, "S 1 msmtp smtp.example.com Bearer SECRETone"))
    analysis.feed(LogLine("a.log", 9, "S 2 msmtp smtp.example.com Bearer SECRETtwo"))
    analysis.feed(LogLine("b.log", 3, "debug SECRETthree"))
    summary = analysis.summary()
    found = {(leak.path, leak.line_number, leak.kind, leak.count) for leak in summary.leaks}
    assert found == {("a.log", 7, "bearer_token", 2), ("b.log", 3, "bearer_token", 1)}
    assert summary.status is Status.CRITICAL
    assert "SECRET" not in json.dumps(summary.to_dict())


def test_leak_finding_names_path_and_line() -> None:
    summary = analyze(["x", "debug SECRETabc"], path="/var/log/msmtp.log")
    leak = next(f for f in summary.findings if f.code == "secrets.token_in_log")
    assert leak.title == "A secret is written in /var/log/msmtp.log (line 2, a bearer access token)"
    assert leak.facts["line_number"] == 2
    assert leak.facts["secret_kind"] == "bearer_token"


def test_threshold_finding_names_worst_window() -> None:
    lines = attempts(25, 1, start=0.0) + attempts(20, 5, start=900.0) + attempts(30, 0, 1800)
    summary = analyze(lines)
    finding = summary.findings[0]
    assert finding.code == "auth_failure_rate.threshold_exceeded"
    assert finding.severity is Severity.CRITICAL
    assert finding.title == (
        "5 of 20 AUTH attempts failed (25 %) between 1970-01-01T00:15:00Z and 1970-01-01T00:30:00Z"
    )
    assert finding.facts["failure_ratio"] == 0.25
    starts = [window["window_start"] for window in finding.facts["windows_over_threshold"]]
    assert starts == ["1970-01-01T00:00:00Z", "1970-01-01T00:15:00Z"]


def test_threshold_cause_states_rule() -> None:
    summary = analyze(attempts(25, 1))
    assert "More than 2 % of the AUTH attempts in a 15-minute window" in summary.findings[0].cause
    assert "20 or more attempts" in summary.findings[0].cause


def test_failures_below_threshold_finding() -> None:
    summary = analyze(attempts(100, 2))
    finding = summary.findings[0]
    assert finding.code == "auth_failure_rate.failures_below_threshold"
    assert finding.title == "2 of 100 AUTH attempts failed (2 %), within the threshold"
    assert finding.severity is Severity.INFO


def test_too_few_attempts_are_not_judged() -> None:
    summary = analyze(attempts(5, 5))
    finding = summary.findings[0]
    assert finding.code == "auth_failure_rate.failures_below_threshold"
    assert finding.title == (
        "5 of 5 AUTH attempts failed (100 %), too few attempts in any window to judge against "
        "the 2 % threshold"
    )


def test_no_attempts_finding() -> None:
    summary = analyze(["unrelated", "D 1 postfix deferred"])
    assert [finding.code for finding in summary.findings] == ["auth_failure_rate.no_attempts"]
    assert summary.findings[0].facts == {"lines": 2}
    assert summary.failure_ratio is None
    assert summary.status is Status.OK


def test_reason_findings_are_info_with_facts() -> None:
    summary = analyze(attempts(25, 1))
    finding = next(f for f in summary.findings if f.code == REJECTED)
    assert finding.severity is Severity.INFO
    assert finding.facts == {
        "log_source": "msmtp",
        "failures": 1,
        "reply_code": 535,
        "enhanced_code": "5.7.8",
    }
    assert finding.evidence == (f"F 0.0 msmtp smtp.example.com {REJECTED} 535 5.7.8 rejected",)


def test_reason_title_without_missing_values() -> None:
    summary = analyze(["F 1 msmtp - auth_failure_rate.connection_failed"])
    finding = next(f for f in summary.findings if f.code == "auth_failure_rate.connection_failed")
    assert finding.title == "Could not reach the submission server"
    assert finding.cause == (
        "The client could not connect or lost the connection before it could log in."
    )
    summary = analyze(["F 1 msmtpd 127.0.0.1 auth_failure_rate.pipe_command_failed"])
    finding = next(f for f in summary.findings if f.code.endswith("pipe_command_failed"))
    assert finding.title == "The relay's pipe command failed"
    assert "'Pipe command reported error N'" in finding.cause


@pytest.mark.parametrize(
    ("reason", "title"),
    [
        pytest.param("auth.token_rejected", "Server rejected the OAuth2 token", id="status"),
        pytest.param(
            "auth.insufficient_scope",
            "OAuth2 token lacks a scope that the server requires",
            id="scope",
        ),
        pytest.param("auth.unclassified", "Unexpected reply during AUTH", id="reply"),
        pytest.param(
            "scope.user_mismatch",
            "Access token belongs to another account than the SMTP user",
            id="users",
        ),
        pytest.param("tls.cert_expired", "Certificate expired", id="not-after"),
    ],
)
def test_reason_title_reads_without_value(reason: str, title: str) -> None:
    summary = analyze([f"F 1 msmtp - {reason}"])
    finding = next(f for f in summary.findings if f.code == reason)
    assert finding.title == title


def test_reason_texts_have_no_placeholders() -> None:
    reasons = ["auth.insufficient_scope", "scope.user_mismatch", "auth.token_missing"]
    summary = analyze([f"F {number} msmtp - {reason}" for number, reason in enumerate(reasons)])
    for finding in summary.findings[1:]:
        text = f"{finding.title} {finding.cause} {finding.fix}"
        assert "{" not in text, finding.code
        assert "(not in the log)" not in text, finding.code
        assert "  " not in text, finding.code


def test_dovecot_user_mismatch_names_users() -> None:
    error = "Username 'smtp.user@example.com' did not match 'token.user@example.com'"
    summary = analyze([f"F 1 dovecot 127.0.0.1 scope.user_mismatch 535 {error}"])
    finding = next(f for f in summary.findings if f.code == "scope.user_mismatch")
    assert finding.title == (
        "Access token belongs to token.user@example.com, not to the SMTP user smtp.user@example.com"
    )


def test_dovecot_scope_names_scope() -> None:
    error = "Token is not valid for scope 'mail submit'"
    summary = analyze([f"F 1 dovecot 127.0.0.1 auth.insufficient_scope 535 {error}"])
    finding = next(f for f in summary.findings if f.code == "auth.insufficient_scope")
    assert finding.title == "OAuth2 token lacks the scope mail submit"


def test_pipe_exit_code_from_reply() -> None:
    line = (
        "F 1 msmtpd 127.0.0.1 auth_failure_rate.pipe_command_failed "
        "554 Pipe command reported error 77"
    )
    summary = analyze([line])
    finding = next(f for f in summary.findings if f.code.endswith("pipe_command_failed"))
    assert finding.title == "The relay's pipe command failed with exit code 77"


def test_only_top_five_reasons_get_findings() -> None:
    codes = [
        "auth.credentials_rejected",
        "auth.unclassified",
        "tls.cert_expired",
        "token.invalid_grant",
        "auth_failure_rate.submission_failed",
        "auth_failure_rate.client_aborted",
    ]
    lines = [
        f"F {index} msmtp smtp.example.com {code}"
        for rank, code in enumerate(codes)
        for index in range(10 - rank)
    ]
    summary = analyze(lines)
    assert len(summary.by_reason) == 6
    reason_codes = [f.code for f in summary.findings if f.code in summary.by_reason]
    assert reason_codes == [code for code in codes[:5] if kind_for_reason(code) is not None]


def test_read_error_is_warning() -> None:
    analysis = make_analysis()
    for line in attempts(30, 0):
        analysis.feed(LogLine("mail.log", 1, line))
    analysis.add_read_error("/var/log/missing.log", "file not found")
    summary = analysis.summary()
    finding = summary.findings[-1]
    assert finding.code == "auth_failure_rate.log_unreadable"
    assert finding.title == "Cannot read the log file /var/log/missing.log"
    assert summary.read_errors == (("/var/log/missing.log", "file not found"),)
    assert summary.status is Status.WARNING


def test_window_at_current_time() -> None:
    analysis = make_analysis()
    for number, line in enumerate(attempts(4, 1, start=950.0), start=1):
        analysis.feed(LogLine("mail.log", number, line))
    window = analysis.window_at(1000.0)
    assert (window.start, window.attempts, window.failures) == (900.0, 4, 1)
    assert analysis.window_at(5000.0).attempts == 0


def test_recent_failures_keep_last_ten() -> None:
    analysis = make_analysis()
    for number, line in enumerate(attempts(12, 12), start=1):
        analysis.feed(LogLine("mail.log", number, line))
    recent = list(analysis.recent_failures)
    assert [failure.sequence for failure in recent] == list(range(3, 13))
    assert recent[-1].reason == REJECTED
    assert analysis.failures_counted == 12


def test_to_dict_totals_and_options() -> None:
    summary = analyze(attempts(25, 1), since=0.0)
    data = summary.to_dict()
    assert data["schema"] == "smtpdiag.logs/1"
    assert data["totals"] == {
        "lines": 25,
        "attempts": 25,
        "failures": 1,
        "failure_ratio": 0.04,
        "parse_errors": 0,
    }
    assert data["options"] == {
        "window_seconds": 900.0,
        "threshold": 0.02,
        "min_attempts": 20,
        "since": "1970-01-01T00:00:00Z",
        "until": None,
    }
    assert data["windows"] == [
        {
            "start": "1970-01-01T00:00:00Z",
            "end": "1970-01-01T00:15:00Z",
            "attempts": 25,
            "failures": 1,
            "failure_ratio": 0.04,
            "over_threshold": True,
        }
    ]
    assert data["status"] == "critical"


def summary_of_events(*events: LogEvent) -> LogsSummary:
    analysis = Analysis(
        AnalysisOptions(),
        lambda: 1_800_000_000.0,
        parser=lambda text: LineResult((events[int(text)],), events[int(text)].source),
        find_leaks=fake_leaks,
        mask_leaks=fake_mask,
    )
    for index in range(len(events)):
        analysis.feed(LogLine("mail.log", index + 1, str(index)))
    return analysis.summary()


def test_failure_with_fate_counts_both() -> None:
    deferred = LogEvent(
        Source.POSTFIX,
        Side.CLIENT,
        Outcome.FAILURE,
        10.0,
        host="smtp.example.com",
        reason=REJECTED,
        fate=Fate.DEFERRED,
    )
    summary = summary_of_events(deferred)
    assert (summary.attempts, summary.failures) == (1, 1)
    assert summary.fates == {"deferred": 1}


def test_reply_secret_masked_in_title() -> None:
    rejected = LogEvent(
        Source.MSMTP,
        Side.CLIENT,
        Outcome.FAILURE,
        10.0,
        host="smtp.example.com",
        reason="auth.unclassified",
        reply_code=535,
        enhanced_code="5.7.0",
        reply_text="rejected token SECRETxyz",
    )
    analysis = Analysis(
        AnalysisOptions(),
        parser=lambda text: LineResult((rejected,), Source.MSMTP),
        find_leaks=fake_leaks,
        mask_leaks=fake_mask,
    )
    analysis.feed(LogLine("mail.log", 1, "msmtp record with SECRETxyz"))
    summary = analysis.summary()
    finding = next(f for f in summary.findings if f.code == "auth.unclassified")
    assert "SECRET" not in finding.title
    assert "[secret]" in finding.title
    assert "SECRET" not in json.dumps(summary.to_dict())


def test_sasl_xoauth2_cause_listed_without_second_failure() -> None:
    from smtpdiag.logs.analysis import Analysis, AnalysisOptions
    from smtpdiag.logs.reader import LogLine

    lines = [
        "Dec  4 10:00:01 relay postfix/smtp[2001]: 4F1A2B3C4D: SASL authentication failed; "
        "cannot authenticate to server smtp.office365.com[192.0.2.50]: generic failure",
        # Shape from sasl-xoauth2's log.cc: the verdict line flushed to syslog on failure.
        "Dec  4 10:00:01 relay sasl-xoauth2: auth failed: TokenStore::Refresh: code=400, "
        'response={"error":"invalid_grant","error_description":"AADSTS700082: The refresh '
        'token has expired due to inactivity.","error_codes":[700082]}',
    ]
    analysis = Analysis(AnalysisOptions())
    for number, text in enumerate(lines, start=1):
        analysis.feed(LogLine("mail.log", number, text))
    summary = analysis.summary()
    assert summary.failures == 1
    assert "token.refresh_token_expired" in summary.by_reason


BOUNDARY_PERCENTS = [0.7, 1.4, 2.8, 2.9, 4.1]
"""Percentages whose value divided by 100 is not exact in floating point."""


@pytest.mark.parametrize("percent", BOUNDARY_PERCENTS, ids=str)
@pytest.mark.parametrize(
    ("extra", "over"), [pytest.param(0, False, id="at"), pytest.param(1, True, id="above")]
)
def test_threshold_boundary_in_percent(percent: float, extra: int, over: bool) -> None:
    failures = round(percent * 10) + extra
    summary = analyze(attempts(1000, failures), threshold=percent / 100, window_seconds=3600.0)
    assert [window.over_threshold for window in summary.windows] == [over]


@pytest.mark.parametrize(
    ("failures", "attempts_count", "threshold", "expected"),
    [
        pytest.param(7, 1000, 0.7 / 100, False, id="at-0.7"),
        pytest.param(8, 1000, 0.7 / 100, True, id="above-0.7"),
        pytest.param(1, 1, 0.0, True, id="any-failure-at-0"),
        pytest.param(0, 1, 0.0, False, id="no-failure-at-0"),
        pytest.param(1, 1, 1.0, False, id="nothing-over-100"),
    ],
)
def test_exceeds_threshold(
    failures: int, attempts_count: int, threshold: float, expected: bool
) -> None:
    assert analysis_module.exceeds_threshold(failures, attempts_count, threshold) is expected


@pytest.mark.parametrize(
    "seconds",
    [
        pytest.param(1e20, id="after-9999"),
        pytest.param(-1e20, id="before-year-1"),
        pytest.param(float("nan"), id="nan"),
    ],
)
def test_iso_time_out_of_range_is_none(seconds: float) -> None:
    assert analysis_module.iso_time(seconds) is None


def test_time_beyond_9999_counts_without_window() -> None:
    summary = analyze(["S 1e20 msmtp -", "S 100 msmtp -"])
    assert (summary.attempts, [window.attempts for window in summary.windows]) == (2, [1])
    document = json.dumps(summary.to_dict())
    assert '"start": "1970-01-01T00:00:00Z"' in document


def journal_bytes_line(message: str) -> str:
    # journald exports a MESSAGE that is not valid UTF-8 as an array of byte values; the
    # trailing 0xff byte makes this one invalid.
    values = [*message.encode(), 0xFF]
    return json.dumps({"__REALTIME_TIMESTAMP": "100000000", "MESSAGE": values})


def test_secret_in_journal_byte_array_reported() -> None:
    summary = analyze(["S 1 msmtp -", journal_bytes_line("token SECRETabc here")])
    assert [(leak.line_number, leak.kind, leak.count) for leak in summary.leaks] == [
        (2, "bearer_token", 1)
    ]


def test_journal_byte_array_without_secret_no_leak() -> None:
    assert analyze([journal_bytes_line("plain text")]).leaks == ()


def test_journal_byte_array_example_masked() -> None:
    def parse(text: str) -> LineResult:
        event = LogEvent(Source.JOURNAL, Side.CLIENT, Outcome.FAILURE, 1.0, reason=REJECTED)
        return LineResult((event,), Source.JOURNAL) if text.startswith("{") else NO_RESULT

    analysis = Analysis(
        AnalysisOptions(), lambda: 0.0, parser=parse, find_leaks=fake_leaks, mask_leaks=fake_mask
    )
    analysis.feed(LogLine("journal", 1, journal_bytes_line("AUTH XOAUTH2 SECRETabc")))
    example = analysis.summary().by_reason[REJECTED].example
    assert example == "AUTH XOAUTH2 [secret]\ufffd"


def test_postfix_delivery_line_reason_once() -> None:
    from smtpdiag.logs.analysis import Analysis, AnalysisOptions
    from smtpdiag.logs.reader import LogLine

    said = (
        "SASL authentication failed; server smtp.office365.com[192.0.2.50] said: 535 5.7.3 "
        "Authentication unsuccessful [XX0P281CA0094.DEUP281.PROD.OUTLOOK.COM]"
    )
    lines = [
        f"Sep 28 13:03:50 relay postfix/smtp[17059]: 9BDCBA19EA: {said}",
        "Sep 28 13:03:50 relay postfix/smtp[17059]: 9BDCBA19EA: to=<rcpt@example.net>, "
        "relay=smtp.office365.com[192.0.2.50]:587, delay=1.2, delays=0.1/0/0.6/0.5, "
        f"dsn=4.7.3, status=deferred ({said})",
    ]
    analysis = Analysis(AnalysisOptions())
    for number, text in enumerate(lines, start=1):
        analysis.feed(LogLine("mail.log", number, text))
    summary = analysis.summary()
    assert summary.failures == 1
    assert summary.by_reason["auth.exchange_refused"].count == 1


@pytest.mark.parametrize(
    "reason",
    [
        "auth.token_rejected",
        "auth.insufficient_scope",
        "auth.temporary_failure",
        "auth.credentials_rejected",
        "scope.user_mismatch",
    ],
)
def test_dovecot_reason_fix_is_whole_text(reason: str) -> None:
    summary = analyze([f"F 1 dovecot 127.0.0.1 {reason}"])
    fix = summary.by_reason[reason].fix
    assert fix is not None
    assert "{" not in fix


def test_reason_fixes_have_no_placeholders() -> None:
    from smtpdiag.logs import analysis
    from smtpdiag.logs.classify import _all_kinds

    unfilled = [code for code, kind in _all_kinds().items() if "{" in analysis._fix_text(kind, {})]
    assert unfilled == []
