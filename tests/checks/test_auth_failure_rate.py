"""auth_failure_rate check: log files with lines inside and outside the window, the rule,
unreadable files, leaks, the configuration keys, and a run through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from checks import auth_failure_rate
from smtpdiag import config as configuration
from smtpdiag.cli import main
from smtpdiag.context import CheckContext, LogSettings, RelaySettings, Settings, Target, TlsMode
from smtpdiag.errors import ConfigError, UsageError
from smtpdiag.logs.analysis import AnalysisOptions
from smtpdiag.logs.reader import DEADLINE_CHECK_LINES
from smtpdiag.models import CheckResult, Severity, Status

NOW = datetime(2026, 12, 4, 10, 0, 0, tzinfo=UTC)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


# msmtp's log file with the default logfile_time_format (%b %d %H:%M:%S), as msmtp_log_to_file
# writes it; addresses replaced by example.com ones.
def msmtp_ok(moment: datetime) -> str:
    return (
        f"{moment:%b %d %H:%M:%S} host=smtp.example.com tls=on auth=on user=alerts@example.com "
        "from=alerts@example.com recipients=ops@example.net mailsize=1234 smtpstatus=250 "
        "smtpmsg='250 2.0.0 OK' exitcode=EX_OK"
    )


# Gmail's reply to a rejected XOAUTH2 token, two reply lines joined by a literal \n.
def msmtp_rejected(moment: datetime) -> str:
    return (
        f"{moment:%b %d %H:%M:%S} host=smtp.gmail.com tls=on auth=on user=alerts@example.com "
        "from=alerts@example.com recipients=ops@example.net smtpstatus=535 "
        "smtpmsg='535-5.7.8 Username and Password not accepted. For more information, go to"
        "\\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials a1b2c3' "
        "errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM"
    )


# Postfix 3.x smtp client through Exchange Online, RFC 3164 header as rsyslog writes it.
def postfix_refused(moment: datetime, queue_id: str) -> str:
    return (
        f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S} relay postfix/smtp[17059]: {queue_id}: "
        "SASL authentication failed; server smtp.office365.com[192.0.2.50] said: "
        "535 5.7.3 Authentication unsuccessful [XX0P281CA0094.DEUP281.PROD.OUTLOOK.COM]"
    )


def postfix_sent(moment: datetime, queue_id: str) -> str:
    return (
        f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S} relay postfix/smtp[17060]: {queue_id}: "
        "to=<ops@example.net>, relay=smtp.office365.com[192.0.2.50]:587, delay=0.9, "
        "delays=0.1/0/0.5/0.3, dsn=2.0.0, status=sent (250 2.0.0 OK)"
    )


def queue_id(index: int) -> str:
    return f"4F3A{index:06X}"


def many(count: int, builder: Callable[[datetime], str], start: float = 14.0) -> list[str]:
    """Return ``count`` lines, one every 3 seconds from ``start`` minutes ago."""
    return [builder(ago(start - index * 0.05)) for index in range(count)]


def postfix_many(count: int, builder: Callable[[datetime, str], str], offset: int = 0) -> list[str]:
    return [builder(ago(13 - index * 0.05), queue_id(offset + index)) for index in range(count)]


def context() -> CheckContext:
    return CheckContext(settings=Settings(), now=lambda: NOW)


def target(files: tuple[str, ...], **logs: Any) -> Target:
    settings = LogSettings(files=files, timezone="UTC", **logs)
    return Target(host="127.0.0.1", port=587, tls_mode=TlsMode.STARTTLS, logs=settings)


def run_on(tmp_path: Path, lines: list[str], **logs: Any) -> CheckResult:
    path = tmp_path / "mail.log"
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return auth_failure_rate.run(target((str(path),), **logs), context())


def codes(result: CheckResult) -> list[str]:
    return [finding.code for finding in result.findings]


def severity_of(result: CheckResult, code: str) -> Severity:
    return next(finding.severity for finding in result.findings if finding.code == code)


@dataclass(frozen=True)
class Case:
    lines: list[str]
    status: Status
    first_code: str | None
    """Code of the first finding; None when every attempt in the window succeeded."""
    attempts: int
    failures: int
    sources: list[str]


CASES = {
    # 19 successes and 1 failure: 5 % of 20 attempts breaks the 2 % rule.
    "msmtp-over-threshold": Case(
        [*many(19, msmtp_ok), msmtp_rejected(ago(2))],
        Status.CRITICAL,
        "auth_failure_rate.threshold_exceeded",
        20,
        1,
        ["msmtp"],
    ),
    # 59 successes and 1 failure: 1.7 % is within the rule.
    "msmtp-below-threshold": Case(
        [*many(59, msmtp_ok), msmtp_rejected(ago(2))],
        Status.OK,
        "auth_failure_rate.failures_below_threshold",
        60,
        1,
        ["msmtp"],
    ),
    # 3 of 5 failed, but 5 attempts are too few to judge.
    "too-few-attempts": Case(
        [*many(2, msmtp_ok), *many(3, msmtp_rejected, start=5)],
        Status.OK,
        "auth_failure_rate.failures_below_threshold",
        5,
        3,
        ["msmtp"],
    ),
    # Failures 20 to 60 minutes ago are outside the window and do not count.
    "old-failures-ignored": Case(
        [*many(40, msmtp_rejected, start=60), *many(20, msmtp_ok)],
        Status.OK,
        None,
        20,
        0,
        ["msmtp"],
    ),
    "only-old-lines": Case(
        many(30, msmtp_rejected, start=120),
        Status.OK,
        "auth_failure_rate.no_attempts_in_range",
        0,
        0,
        ["msmtp"],
    ),
    # Postfix and msmtp in one file: 15 + 10 successes, 2 Exchange refusals (2 of 27 = 7.4 %).
    "postfix-and-msmtp": Case(
        [
            *many(15, msmtp_ok),
            *postfix_many(10, postfix_sent),
            *postfix_many(2, postfix_refused, offset=100),
        ],
        Status.CRITICAL,
        "auth_failure_rate.threshold_exceeded",
        27,
        2,
        ["msmtp", "postfix"],
    ),
    "lines-of-other-programs": Case(
        ["Dec  4 09:55:00 relay CRON[123]: (root) CMD (run-parts /etc/cron.hourly)"],
        Status.OK,
        "auth_failure_rate.no_attempts",
        0,
        0,
        [],
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_window_status(tmp_path: Path, case: Case) -> None:
    result = run_on(tmp_path, case.lines)
    assert result.status is case.status
    assert (codes(result) or [None])[0] == case.first_code


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_window_facts(tmp_path: Path, case: Case) -> None:
    result = run_on(tmp_path, case.lines)
    assert result.facts["attempts"] == case.attempts
    assert result.facts["failures"] == case.failures
    assert result.facts["log_source"] == case.sources
    assert result.facts["lines"] == len(case.lines)
    assert result.facts["window_start"] == "2026-12-04T09:45:00Z"
    assert result.facts["window_end"] == "2026-12-04T10:00:00Z"


def test_ratio_fact(tmp_path: Path) -> None:
    result = run_on(tmp_path, CASES["msmtp-over-threshold"].lines)
    assert result.facts["failure_ratio"] == pytest.approx(0.05)


def test_no_attempts_ratio_is_none(tmp_path: Path) -> None:
    result = run_on(tmp_path, CASES["only-old-lines"].lines)
    assert result.facts["failure_ratio"] is None


def test_threshold_title(tmp_path: Path) -> None:
    result = run_on(tmp_path, CASES["msmtp-over-threshold"].lines)
    assert result.findings[0].title == (
        "1 of 20 AUTH attempts failed (5 %) between 2026-12-04T09:45:00Z and 2026-12-04T10:00:00Z"
    )


@pytest.mark.parametrize(
    ("case", "title"),
    [
        pytest.param(
            "msmtp-below-threshold",
            "1 of 60 AUTH attempts failed (1.67 %), within the threshold",
            id="judged",
        ),
        pytest.param(
            "too-few-attempts",
            "3 of 5 AUTH attempts failed (60 %), too few attempts in any window to judge against "
            "the 2 % threshold",
            id="too-few",
        ),
    ],
)
def test_below_threshold_title(tmp_path: Path, case: str, title: str) -> None:
    result = run_on(tmp_path, CASES[case].lines)
    assert result.findings[0].title == title


def test_summary_text(tmp_path: Path) -> None:
    result = run_on(tmp_path, CASES["msmtp-over-threshold"].lines)
    assert result.summary == "1 of 20 AUTH attempts failed (5 %) in the last 15 minutes"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        pytest.param("msmtp-over-threshold", "auth.credentials_rejected", id="gmail-535"),
        pytest.param("postfix-and-msmtp", "auth.exchange_refused", id="exchange-535-5.7.3"),
    ],
)
def test_reason_finding_is_info(tmp_path: Path, case: str, reason: str) -> None:
    result = run_on(tmp_path, CASES[case].lines)
    assert reason in codes(result)
    assert severity_of(result, reason) is Severity.INFO


def test_reason_counts_fact(tmp_path: Path) -> None:
    result = run_on(tmp_path, CASES["postfix-and-msmtp"].lines)
    assert result.facts["reasons"] == {"auth.exchange_refused": 2}


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        # 1 of 20 is 5 %: above a 2 % threshold, not above 5 %.
        pytest.param({"threshold_percent": 5.0}, Status.OK, id="threshold-5-percent"),
        pytest.param({"threshold_percent": 4.9}, Status.CRITICAL, id="threshold-4.9-percent"),
        pytest.param({"min_attempts": 21}, Status.OK, id="min-attempts-21"),
        pytest.param({"min_attempts": 20}, Status.CRITICAL, id="min-attempts-20"),
        # A 10-minute window leaves out the successes 10 to 14 minutes ago: 1 of 5 attempts.
        pytest.param({"window_minutes": 10.0}, Status.OK, id="window-10-minutes"),
    ],
)
def test_rule_settings(tmp_path: Path, settings: dict[str, object], status: Status) -> None:
    result = run_on(tmp_path, CASES["msmtp-over-threshold"].lines, **settings)
    assert result.status is status


def test_ten_minute_window_counts(tmp_path: Path) -> None:
    result = run_on(tmp_path, CASES["msmtp-over-threshold"].lines, window_minutes=10.0)
    assert result.facts["attempts"] == 1
    assert result.facts["failures"] == 1
    assert result.facts["window_start"] == "2026-12-04T09:50:00Z"


def test_no_log_files_skipped() -> None:
    result = auth_failure_rate.run(target(()), context())
    assert result.status is Status.SKIPPED
    assert result.summary == auth_failure_rate.NO_LOG_FILES


def test_missing_file_unreadable(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.log")
    result = auth_failure_rate.run(target((missing,)), context())
    assert result.status is Status.WARNING
    assert "auth_failure_rate.log_unreadable" in codes(result)


def test_missing_file_names_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.log")
    result = auth_failure_rate.run(target((missing,)), context())
    finding = next(f for f in result.findings if f.code == "auth_failure_rate.log_unreadable")
    assert finding.title == f"Cannot read the log file {missing}"


def test_missing_file_other_files_read(tmp_path: Path) -> None:
    present = tmp_path / "mail.log"
    present.write_text("".join(f"{line}\n" for line in CASES["msmtp-over-threshold"].lines))
    files = (str(tmp_path / "absent.log"), str(present))
    result = auth_failure_rate.run(target(files), context())
    assert result.status is Status.CRITICAL
    assert result.facts["attempts"] == 20


# A client's debug output written to the mail log: AUTH XOAUTH2 with its base64 response
# (user=alerts@example.com, auth=Bearer ya29.<fake token>). Constructed, not from a real log.
XOAUTH2_RESPONSE = (
    "dXNlcj1hbGVydHNAZXhhbXBsZS5jb20BYXV0aD1CZWFyZXIgeWEyOS5hMEFmSDZTTWJmYWtldG9rZW5mb3J0ZXN0cwEB"
)
LEAK_LINE = f"Dec  4 09:58:00 relay app[99]: smtp debug: AUTH XOAUTH2 {XOAUTH2_RESPONSE}"


def test_leak_left_to_secrets_check(tmp_path: Path) -> None:
    result = run_on(tmp_path, [*many(20, msmtp_ok), LEAK_LINE])
    assert "secrets.token_in_log" not in codes(result)
    assert result.status is Status.OK


def test_leak_never_shows_secret(tmp_path: Path) -> None:
    result = run_on(tmp_path, [*many(20, msmtp_ok), LEAK_LINE])
    text = json.dumps(result.to_dict())
    assert XOAUTH2_RESPONSE not in text


def test_deadline_gives_unknown(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    lines = many(DEADLINE_CHECK_LINES + 10, msmtp_ok)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    expired = CheckContext(settings=Settings(), now=lambda: NOW, deadline=0.0)
    result = auth_failure_rate.run(target((str(path),)), expired)
    assert result.status is Status.UNKNOWN


def test_spec_lists_only_own_area() -> None:
    areas = {kind.area for kind in auth_failure_rate.SPEC.findings}
    assert areas == {"auth_failure_rate"}


# Configuration keys.


def load(cli: dict[str, object], environ: dict[str, str] | None = None) -> LogSettings:
    loaded = configuration.load(cli, host_port="127.0.0.1", environ=environ or {})
    return loaded.target.logs


def test_defaults() -> None:
    assert load({}) == LogSettings()


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        pytest.param("log_files", "/a.log, /b.log", "files", ("/a.log", "/b.log"), id="files-text"),
        pytest.param("log_files", ["/a.log"], "files", ("/a.log",), id="files-list"),
        pytest.param("log_window_minutes", "5", "window_minutes", 5.0, id="window"),
        pytest.param("failure_threshold_percent", "0.5", "threshold_percent", 0.5, id="percent"),
        pytest.param("failure_min_attempts", "50", "min_attempts", 50, id="min-attempts"),
        pytest.param("log_timezone", "Europe/Berlin", "timezone", "Europe/Berlin", id="zone"),
        pytest.param("msmtp_time_format", "none", "msmtp_time_format", None, id="format-none"),
        pytest.param(
            "msmtp_time_format",
            "%Y-%m-%d %H:%M:%S",
            "msmtp_time_format",
            "%Y-%m-%d %H:%M:%S",
            id="format-iso",
        ),
    ],
)
def test_key_parsed(key: str, value: object, field: str, expected: object) -> None:
    assert getattr(load({key: value}), field) == expected


def test_environment_files() -> None:
    logs = load({}, {"SMTPDIAG_LOG_FILES": "/var/log/mail.log,/var/log/msmtp.log"})
    assert logs.files == ("/var/log/mail.log", "/var/log/msmtp.log")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("log_files", " , ", id="files-empty"),
        pytest.param("log_window_minutes", "0", id="window-zero"),
        pytest.param("log_window_minutes", "1441", id="window-over-a-day"),
        pytest.param("failure_threshold_percent", "101", id="percent-over-100"),
        pytest.param("failure_threshold_percent", "-1", id="percent-negative"),
        pytest.param("failure_threshold_percent", "2%", id="percent-sign"),
        pytest.param("failure_min_attempts", "0", id="min-attempts-zero"),
        pytest.param("failure_min_attempts", "2.5", id="min-attempts-fraction"),
        pytest.param("log_timezone", "Mars/Olympus", id="zone-unknown"),
        pytest.param("msmtp_time_format", "%b %d\n", id="format-newline"),
        pytest.param("msmtp_time_format", "hh:mm", id="format-no-directive"),
    ],
)
def test_invalid_value_names_key(key: str, value: str) -> None:
    with pytest.raises(UsageError) as raised:
        load({key: value})
    assert f"Invalid {key}" in str(raised.value)


def test_toml_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "smtpdiag.toml"
    path.write_text('[targets.relay]\nhost = "127.0.0.1"\nfailure_min_attempts = "20"\n')
    with pytest.raises(ConfigError) as raised:
        configuration.load({}, config_path=str(path), target_name="relay", environ={})
    assert "failure_min_attempts" in str(raised.value)


# End to end through the CLI, with the log files named in the configuration file.


def write_config(tmp_path: Path, log: Path) -> Path:
    path = tmp_path / "smtpdiag.toml"
    path.write_text(
        f'[targets.relay]\nhost = "127.0.0.1"\nlog_files = ["{log}"]\nlog_timezone = "UTC"\n',
        encoding="utf-8",
    )
    return path


def run_cli(
    tmp_path: Path, lines: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, object]]:
    log = tmp_path / "mail.log"
    # Lines of the last minutes by the real clock, because the CLI runs on it.
    log.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    config = write_config(tmp_path, log)
    code = main(
        [
            "check",
            "--config",
            str(config),
            "--target",
            "relay",
            "--only",
            "auth_failure_rate",
            "--format",
            "json",
        ]
    )
    return code, json.loads(capsys.readouterr().out)


def recent(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def test_cli_over_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [msmtp_ok(recent(10 - index * 0.1)) for index in range(19)]
    lines.append(msmtp_rejected(recent(1)))
    code, report = run_cli(tmp_path, lines, capsys)
    assert code == 2
    checks = report["checks"]
    assert isinstance(checks, list)
    assert [check["id"] for check in checks] == ["auth_failure_rate"]
    assert checks[0]["facts"]["attempts"] == 20


def test_cli_no_attempts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_cli(tmp_path, [msmtp_ok(recent(120))], capsys)
    assert code == 0
    assert report["status"] == "ok"


@pytest.mark.parametrize("percent", [0.7, 1.4, 2.8, 2.9, 4.1], ids=str)
@pytest.mark.parametrize(
    ("extra", "over"), [pytest.param(0, False, id="at"), pytest.param(1, True, id="above")]
)
def test_threshold_boundary_in_percent(percent: float, extra: int, over: bool) -> None:
    options = AnalysisOptions(threshold=percent / 100)
    failures = round(percent * 10) + extra
    assert auth_failure_rate.is_over_threshold(1000, failures, options) is over


@pytest.mark.parametrize(
    ("lines", "summary"),
    [
        pytest.param(
            [msmtp_ok(ago(60)), msmtp_ok(ago(30))],
            "no AUTH attempts in the last 15 minutes (2 lines read; 2 attempts outside the window)",
            id="old-attempts",
        ),
        pytest.param(
            [msmtp_ok(ago(60))],
            "no AUTH attempts in the last 15 minutes (1 line read; 1 attempt outside the window)",
            id="one-old-attempt",
        ),
        pytest.param(
            ["Dec 04 09:59:00 mx sshd[1]: Accepted publickey for admin"],
            "no AUTH attempts in the last 15 minutes (1 line read)",
            id="one-line-no-attempt",
        ),
    ],
)
def test_no_attempts_summary(tmp_path: Path, lines: list[str], summary: str) -> None:
    assert run_on(tmp_path, lines).summary == summary


def test_old_attempts_cause_names_window(tmp_path: Path) -> None:
    result = run_on(tmp_path, [msmtp_ok(ago(60)), msmtp_ok(ago(30))])
    finding = result.findings[0]
    assert finding.code == "auth_failure_rate.no_attempts_in_range"
    assert finding.cause.startswith(
        "2 lines read, with 2 AUTH attempts in all, but no attempt falls in the last 15 minutes "
        "(from 2026-12-04T09:45:00Z to 2026-12-04T10:00:00Z); the newest is from "
        "2026-12-04T09:30:00Z."
    )
    assert finding.facts["attempts_outside"] == 2


def test_one_line_cause_is_singular(tmp_path: Path) -> None:
    result = run_on(tmp_path, ["Dec 04 09:59:00 mx sshd[1]: Accepted publickey for admin"])
    assert result.findings[0].cause.startswith("None of the 1 line read records")


@pytest.mark.parametrize(
    ("args", "name"),
    [
        pytest.param(["--log-file", "LOG"], "LOG", id="log-file"),
        pytest.param([], "local", id="no-log-file"),
    ],
)
def test_check_without_target_when_only_log_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], name: str
) -> None:
    log = tmp_path / "mail.log"
    log.write_text(msmtp_ok(recent(5)) + "\n", encoding="utf-8")
    args = [str(log) if arg == "LOG" else arg for arg in args]
    code = main(["check", "--only", "auth_failure_rate", "--format", "json", *args])
    report = json.loads(capsys.readouterr().out)
    expected_name = str(log) if name == "LOG" else name
    assert (code, report["target"]["name"], report["target"]["host"]) == (0, expected_name, "")


def test_check_with_network_checks_still_needs_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["check", "--only", "connect,auth_failure_rate", "--log-file", "mail.log"])
    assert code == 3
    assert "No target given." in capsys.readouterr().err


# Postfix 3.7 delivering to msmtpd, which replied 554 because msmtp exited with 77.
def postfix_pipe_bounced(moment: datetime, queue_id: str) -> str:
    return (
        f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S} relay postfix/smtp[17061]: {queue_id}: "
        "to=<ops@example.net>, relay=127.0.0.1[127.0.0.1]:2525, delay=0.08, "
        "delays=0/0.01/0/0.07, dsn=5.0.0, status=bounced (host 127.0.0.1[127.0.0.1] said: "
        "554 Pipe command reported error 77 (in reply to end of DATA command))"
    )


def test_bounced_mail_reported_without_relay(tmp_path: Path) -> None:
    result = run_on(tmp_path, postfix_many(3, postfix_pipe_bounced))
    assert "auth_failure_rate.mail_bounced" in codes(result)
    assert result.status is Status.WARNING


def test_bounced_mail_left_to_relay_check(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    lines = postfix_many(3, postfix_pipe_bounced)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    checked = replace(target((str(path),)), relay=RelaySettings(address="127.0.0.1:2525"))
    result = auth_failure_rate.run(checked, context())
    assert "auth_failure_rate.mail_bounced" not in codes(result)
    assert "auth_failure_rate.pipe_command_failed" in codes(result)
