"""Tests of the log counters, the closed reason and provider sets, and the follower thread."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from exporters.logcounters import (
    ATTEMPT_SOURCES,
    LEAK_SOURCES,
    SOURCES,
    LogCounters,
    LogCounts,
    LogFollowerThread,
)
from exporters.reasons import (
    LOG_REASONS,
    NOT_FAILURE_CODES,
    OTHER_REASON,
    PRESET_REASONS,
    PROVIDERS,
    UNKNOWN_REASON,
    provider_for_event,
    provider_for_host,
    reason_label,
)
from exporters.settings import LogFile
from smtpdiag.logs.classify import _all_kinds
from smtpdiag.logs.model import LogEvent, Outcome, Side, Source
from smtpdiag.logs.reader import LogLine
from smtpdiag.oauth.profiles import PROFILES
from tests.logs import test_exim as exim_lines
from tests.logs import test_msmtp as msmtp_lines
from tests.logs import test_postfix as postfix_lines
from tests.logs import test_sasl_xoauth2 as sasl_lines

PATH = "/var/log/mail.log"
UTC_FILE = LogFile(PATH, timezone="UTC")
POSTFIX_CLIENT = "Mar  1 10:00:00 mx postfix/smtp[4242]: "
POSTFIX_SERVER = "Mar  1 10:00:00 mx postfix/submission/smtpd[4244]: "
EXIM_PREFIX = "2026-03-01 10:00:00 "
MSMTPD_PREFIX = "2026-12-04 10:00:05 msmtpd[2841] "
SASL_PREFIX = "Mar  1 10:00:01 mx sasl-xoauth2[4242]: "
# A refresh token that the leak finder recognises in a form body (from tests/logs/test_leaks).
REFRESH_TOKEN = "1//0gExampleRefreshToken-abcdefghijklmnop"
LEAK_LINE = (
    "Mar  1 10:00:00 mx postfix/smtp[4242]: 9BDCBA19EA: debug: "
    f"grant_type=refresh_token&refresh_token={REFRESH_TOKEN}"
)
AUTH_FAILURE = msmtp_lines.REAL_GOOGLE_BAD_TOKEN
AUTH_SUCCESS = msmtp_lines.REAL_HEALTHY


def counts_of(*texts: str, providers: tuple[str, ...] = ()) -> LogCounts:
    counters = LogCounters([UTC_FILE], providers)
    counters.feed(LogLine(PATH, number, text) for number, text in enumerate(texts, start=1))
    return counters.snapshot()


# (line, source, provider, reason or None for a success)
COUNTED = [
    pytest.param(AUTH_SUCCESS, "msmtp", "generic", None, id="msmtp-success"),
    pytest.param(AUTH_FAILURE, "msmtp", "generic", "credentials_rejected", id="msmtp-failure"),
    pytest.param(
        msmtp_lines.GMAIL_PLAIN_REJECTED,
        "msmtp",
        "google",
        "credentials_rejected",
        id="msmtp-gmail",
    ),
    pytest.param(
        msmtp_lines.REAL_MICROSOFT_AUTH_DISABLED,
        "msmtp",
        "generic",
        "smtp_auth_disabled_tenant",
        id="msmtp-tenant-disabled",
    ),
    pytest.param(
        msmtp_lines.REAL_CERT_EXPIRED, "msmtp", "generic", "cert_expired", id="msmtp-cert"
    ),
    pytest.param(
        POSTFIX_CLIENT + postfix_lines.OFFICE365,
        "postfix",
        "microsoft",
        "exchange_refused",
        id="postfix-office365",
    ),
    pytest.param(
        POSTFIX_CLIENT + postfix_lines.SASL_DEFERRED,
        "postfix",
        "google",
        "credentials_rejected",
        id="postfix-gmail-deferred",
    ),
    pytest.param(
        POSTFIX_CLIENT + postfix_lines.SENT, "postfix", "generic", None, id="postfix-sent"
    ),
    pytest.param(
        POSTFIX_CLIENT + postfix_lines.CANNOT_AUTHENTICATE,
        "postfix",
        "microsoft",
        "local_sasl_failure",
        id="postfix-local-sasl",
    ),
    pytest.param(
        POSTFIX_SERVER + "warning: unknown[192.0.2.7]: SASL PLAIN authentication failed: "
        "authentication failure",
        "postfix",
        "generic",
        "credentials_rejected",
        id="postfix-server",
    ),
    pytest.param(
        EXIM_PREFIX + exim_lines.CLIENT_FAILED,
        "exim",
        "generic",
        "credentials_rejected",
        id="exim-client",
    ),
    pytest.param(
        EXIM_PREFIX + exim_lines.GMAIL_530,
        "exim",
        "google",
        "authentication_required",
        id="exim-gmail-530",
    ),
    pytest.param(EXIM_PREFIX + exim_lines.DELIVERED, "exim", "generic", None, id="exim-delivered"),
    pytest.param(
        MSMTPD_PREFIX + "info: authenticated user relay", "msmtpd", "generic", None, id="msmtpd"
    ),
    pytest.param(
        MSMTPD_PREFIX + "error: authentication failed, session aborted",
        "msmtpd",
        "generic",
        "credentials_rejected",
        id="msmtpd-failure",
    ),
]


def test_preset_reasons_within_label_set() -> None:
    assert PRESET_REASONS <= LOG_REASONS


@pytest.mark.parametrize(("line", "source", "provider", "reason"), COUNTED)
def test_line_reason_starts_at_zero(
    line: str, source: str, provider: str, reason: str | None
) -> None:
    if reason is not None:
        assert reason in PRESET_REASONS


@pytest.mark.parametrize(("line", "source", "provider", "reason"), COUNTED)
def test_line_counts_one_attempt(line: str, source: str, provider: str, reason: str | None) -> None:
    counts = counts_of(line)
    assert counts.attempts[(source, provider)] == 1
    assert sum(counts.attempts.values()) == 1
    assert counts.lines[source] == 1


@pytest.mark.parametrize(("line", "source", "provider", "reason"), COUNTED)
def test_line_counts_failure_reason(
    line: str, source: str, provider: str, reason: str | None
) -> None:
    counts = counts_of(line)
    expected = 0 if reason is None else 1
    assert sum(counts.failures.values()) == expected
    if reason is not None:
        assert counts.failures[(source, provider, reason)] == 1


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(EXIM_PREFIX + exim_lines.DEFER_42, id="exim-delivery"),
        pytest.param(SASL_PREFIX + "auth failed:", id="sasl-xoauth2-header"),
        pytest.param("Mar  1 10:00:00 mx cron[1]: (root) CMD (true)", id="other-program"),
    ],
)
def test_line_counts_no_attempt(line: str) -> None:
    assert sum(counts_of(line).attempts.values()) == 0


def test_sasl_cause_not_counted_again() -> None:
    trace = [SASL_PREFIX + message for message in sasl_lines.FULL_TRACE]
    counts = counts_of(*trace, POSTFIX_CLIENT + sasl_lines.POSTFIX_DELIVERY)
    assert counts.attempts[("postfix", "microsoft")] == 1
    assert sum(counts.failures.values()) == 1


def test_parse_error_counted() -> None:
    counts = counts_of(msmtp_lines.CONNECTION_REFUSED)
    assert counts.parse_errors["msmtp"] == 1


def test_zero_series_before_any_line() -> None:
    counts = LogCounters([UTC_FILE], ["microsoft"]).snapshot()
    expected_attempts = {
        (source, provider): 0 for source in ATTEMPT_SOURCES for provider in ("microsoft", "generic")
    }
    assert dict(counts.attempts) == expected_attempts
    assert len(counts.failures) == len(ATTEMPT_SOURCES) * 2 * len(PRESET_REASONS)
    assert set(counts.failures.values()) == {0}
    assert dict(counts.lines) == dict.fromkeys(SOURCES, 0)
    assert dict(counts.parse_errors) == dict.fromkeys(SOURCES, 0)
    assert dict(counts.secret_leaks) == dict.fromkeys(LEAK_SOURCES, 0)


def test_unknown_provider_not_pre_exported() -> None:
    counts = LogCounters([UTC_FILE], ["no-such-provider"]).snapshot()
    assert {provider for _source, provider in counts.attempts} == {"generic"}


def test_secret_counts_leak() -> None:
    counts = counts_of(LEAK_LINE)
    assert counts.secret_leaks["postfix"] == 1


def test_secret_in_unknown_line() -> None:
    counts = counts_of(f"client_secret={REFRESH_TOKEN}")
    assert counts.secret_leaks["unknown"] == 1


def test_snapshot_is_frozen_copy() -> None:
    counters = LogCounters([UTC_FILE])
    before = counters.snapshot()
    counters.feed([LogLine(PATH, 1, AUTH_SUCCESS)])
    assert before.attempts[("msmtp", "generic")] == 0


def test_snapshot_mappings_read_only() -> None:
    counts = LogCounters([UTC_FILE]).snapshot()
    with pytest.raises(TypeError):
        counts.lines["msmtp"] = 5  # type: ignore[index]


ISO_RECORD = "2026-03-01 10:00:00 " + AUTH_SUCCESS.split(" ", 3)[3]
"""An msmtp record written with logfile_time_format %Y-%m-%d %H:%M:%S."""


@pytest.mark.parametrize(
    ("time_format", "expected"),
    [
        pytest.param("%Y-%m-%d %H:%M:%S", 1, id="matching-format"),
        pytest.param("%b %d %H:%M:%S", 0, id="default-format"),
    ],
)
def test_time_format_per_log_file(time_format: str, expected: int) -> None:
    iso_file = LogFile(
        "/var/log/msmtp.log", timezone="Europe/Berlin", msmtp_time_format=time_format
    )
    counters = LogCounters([UTC_FILE, iso_file])
    counters.feed([LogLine(iso_file.path, 1, ISO_RECORD)])
    assert counters.snapshot().attempts[("msmtp", "generic")] == expected


# --- closed sets ---------------------------------------------------------------------------


def test_reasons_cover_every_failure_code() -> None:
    codes = set(_all_kinds()) - NOT_FAILURE_CODES
    missing = {
        code
        for code in codes
        if not code.startswith("secrets.") and code.split(".", 1)[1] not in LOG_REASONS
    }
    assert missing == set()


@pytest.mark.parametrize(
    "excluded",
    [
        "threshold_exceeded",
        "failures_below_threshold",
        "no_attempts",
        "no_attempts_in_range",
        "log_unreadable",
        "token_in_log",
        "accepted",
    ],
)
def test_reasons_exclude(excluded: str) -> None:
    assert excluded not in LOG_REASONS


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("token.invalid_grant", "invalid_grant", id="token"),
        pytest.param("auth.invalid_request", "invalid_request", id="shared-name"),
        pytest.param("auth.brand_new_code", OTHER_REASON, id="unknown-code"),
        pytest.param("no area", OTHER_REASON, id="free-text"),
        pytest.param(None, UNKNOWN_REASON, id="none"),
    ],
)
def test_reason_label(code: str | None, expected: str) -> None:
    assert reason_label(code) == expected


HOSTS = [
    *(
        pytest.param(profile.smtp_host, name, id=f"profile-{name}")
        for name, profile in PROFILES.items()
        if profile.smtp_host is not None
    ),
    pytest.param("outlook.office365.com", "microsoft", id="outlook-office365"),
    pytest.param("smtp-mail.outlook.com", "microsoft", id="outlook-com"),
    pytest.param("SMTP.GMAIL.COM.", "google", id="upper-case-dot"),
    pytest.param("smtp.yandex.com", "yandex", id="yandex-com"),
    pytest.param("smtp.example.com", "generic", id="other"),
    pytest.param("127.0.0.1", "generic", id="address"),
    pytest.param("gmail.com.example.net", "generic", id="suffix-elsewhere"),
    pytest.param("", "generic", id="empty"),
    pytest.param(None, "generic", id="none"),
]


@pytest.mark.parametrize(("host", "expected"), HOSTS)
def test_provider_for_host(host: str | None, expected: str) -> None:
    assert provider_for_host(host) == expected


def test_provider_server_side_generic() -> None:
    event = LogEvent(Source.POSTFIX, Side.SERVER, Outcome.FAILURE, host="smtp.gmail.com")
    assert provider_for_event(event) == "generic"


def test_providers_closed() -> None:
    assert set(PROVIDERS) == {"google", "microsoft", "yandex", "mailru", "yahoo", "generic"}


# --- follower thread -----------------------------------------------------------------------


def append(path: Path, lines: list[str]) -> None:
    with path.open("a", encoding="utf-8") as stream:
        stream.writelines(line + "\n" for line in lines)


def batch(count: int) -> list[str]:
    """Return ``count`` msmtp records of which every tenth is an AUTH failure."""
    return [AUTH_FAILURE if number % 10 == 0 else AUTH_SUCCESS for number in range(count)]


@pytest.fixture
def follow(tmp_path: Path) -> Callable[..., tuple[LogCounters, LogFollowerThread]]:
    threads: list[LogFollowerThread] = []

    def make(path: Path, **options: object) -> tuple[LogCounters, LogFollowerThread]:
        log_file = LogFile(str(path), timezone="UTC")
        counters = LogCounters([log_file])
        thread = LogFollowerThread(counters, [log_file], **options)  # type: ignore[arg-type]
        threads.append(thread)
        return counters, thread

    yield make
    for thread in threads:
        thread.stop()


def totals(counters: LogCounters) -> tuple[int, int]:
    counts = counters.snapshot()
    return sum(counts.attempts.values()), sum(counts.failures.values())


def test_follow_counts_appended_lines(tmp_path: Path, follow: Callable[..., tuple]) -> None:
    path = tmp_path / "mail.log"
    append(path, batch(30))  # before the start: skipped, following starts at the end
    counters, thread = follow(path)
    append(path, batch(200))
    thread.poll_once()
    assert totals(counters) == (200, 20)


def test_follow_rotation_loses_none(tmp_path: Path, follow: Callable[..., tuple]) -> None:
    path = tmp_path / "mail.log"
    path.touch()
    counters, thread = follow(path)
    append(path, batch(50))
    thread.poll_once()
    append(path, batch(30))
    os.rename(path, tmp_path / "mail.log.1")
    append(path, batch(20))
    thread.poll_once()
    assert totals(counters) == (100, 10)


def test_follow_returns_lines_fed(tmp_path: Path, follow: Callable[..., tuple]) -> None:
    path = tmp_path / "mail.log"
    path.touch()
    _counters, thread = follow(path)
    append(path, [*batch(3), "Mar  1 10:00:00 mx cron[1]: (root) CMD (true)"])
    assert thread.poll_once() == 3


def test_follow_missing_file_reported_once(tmp_path: Path, follow: Callable[..., tuple]) -> None:
    problems: list[tuple[str, str]] = []
    path = tmp_path / "later.log"
    counters, thread = follow(path, on_error=lambda name, message: problems.append((name, message)))
    thread.poll_once()
    thread.poll_once()
    assert [name for name, _message in problems] == [str(path)]
    assert counters.snapshot().files_followed == 0


def test_follow_file_appears(tmp_path: Path, follow: Callable[..., tuple]) -> None:
    path = tmp_path / "later.log"
    counters, thread = follow(path, on_error=lambda name, message: None)
    append(path, batch(10))
    thread.poll_once()
    assert totals(counters) == (10, 1)
    assert counters.snapshot().files_followed == 1


def test_follow_state_resumes(tmp_path: Path, follow: Callable[..., tuple]) -> None:
    path = tmp_path / "mail.log"
    state = tmp_path / "exporter.state"
    path.touch()
    _first, thread = follow(path, state_file=str(state))
    append(path, batch(10))
    thread.poll_once()
    thread.stop()
    append(path, batch(20))  # written while stopped
    counters, again = follow(path, state_file=str(state))
    again.poll_once()
    assert totals(counters) == (20, 2)


def test_follow_thread_polls(tmp_path: Path, follow: Callable[..., tuple]) -> None:
    path = tmp_path / "mail.log"
    path.touch()
    counters, thread = follow(path, interval=0.01)
    thread.start()
    append(path, batch(10))
    deadline = time.monotonic() + 10.0  # a bound for a stuck thread, not a speed check
    while totals(counters) != (10, 1) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert totals(counters) == (10, 1)


def test_follow_stopped_polls_nothing(tmp_path: Path, follow: Callable[..., tuple]) -> None:
    path = tmp_path / "mail.log"
    path.touch()
    _counters, thread = follow(path)
    thread.stop()
    append(path, batch(10))
    assert thread.poll_once() == 0


def test_follow_thread_survives_failed_poll(
    tmp_path: Path, follow: Callable[..., tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mail.log"
    path.touch()
    errors: list[str] = []
    counters, thread = follow(
        path, interval=0.01, on_error=lambda name, message: errors.append(message)
    )
    real_feed = counters.feed
    failures = iter([ValueError("broken parser")])

    def feed_failing_once(lines: object) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_feed(lines)

    monkeypatch.setattr(counters, "feed", feed_failing_once)
    thread.start()
    deadline = time.monotonic() + 10.0  # a bound for a stuck thread, not a speed check
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    append(path, batch(10))
    while totals(counters) != (10, 1) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert errors == ["polling the log files failed: ValueError: broken parser"]
    assert totals(counters) == (10, 1)
