"""Tests of the collector: samples of cached results, log counters, HELP texts and labels."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporters.cache import CachedResult, ResultCache
from exporters.collector import ExporterStatus, SmtpdiagCollector, probe_registry
from exporters.logcounters import ATTEMPT_SOURCES, LEAK_SOURCES, SOURCES, LogCounters
from exporters.reasons import LOG_REASONS, PRESET_REASONS, PROVIDERS
from exporters.settings import (
    DEFAULT_INTERVALS,
    ExporterConfig,
    ExporterTarget,
    LogFile,
    WebSettings,
)
from smtpdiag import __version__
from smtpdiag.context import Settings, Target, TlsMode
from smtpdiag.logs.reader import LogLine
from smtpdiag.models import CheckResult, Finding, Report, Severity, Status
from tests.logs import test_msmtp as msmtp_lines
from tests.logs import test_postfix as postfix_lines

NOW = 1_780_000_000.0
FINISHED = NOW - 30.0
LOG_PATH = "/var/log/mail.log"
LOG_FILE = LogFile(LOG_PATH, timezone="UTC")
REFRESH_TOKEN = "1//0gExampleRefreshToken-abcdefghijklmnop"
ACCESS_TOKEN = "ya29.a0AfB_byC3example0000000000000000000000000000"
TARGET_NAMES = ("gmail_relay", "office365")
CHECK_IDS = {
    "dns",
    "connect",
    "tls",
    "clock",
    "token",
    "scope",
    "auth",
    "msmtp_config",
    "relay",
    "secrets",
}


def finding(code: str, severity: Severity = Severity.CRITICAL, **facts: object) -> Finding:
    return Finding(code, severity, "title", "cause", "fix", facts)


def result(
    check_id: str,
    status: Status = Status.OK,
    findings: Sequence[Finding] = (),
    duration: float = 0.25,
    **facts: object,
) -> CheckResult:
    return CheckResult(check_id, status, "summary", tuple(findings), facts, duration)


def cached(target: str, check: CheckResult, provider: str = "google") -> CachedResult:
    return CachedResult(target, provider, check, FINISHED, 60.0)


def full_results(target: str, provider: str) -> list[CachedResult]:
    """Return one result of every published check, some with findings."""
    return [
        cached(target, result("dns"), provider),
        cached(target, result("connect", duration=0.125), provider),
        cached(
            target,
            result(
                "tls",
                Status.WARNING,
                [finding("tls.cert_expiring_soon", Severity.WARNING)],
                cert_not_after="2026-06-01T00:00:00Z",
            ),
            provider,
        ),
        cached(target, result("clock", clock_offset_seconds=-0.75), provider),
        cached(
            target,
            result(
                "token",
                Status.CRITICAL,
                [finding("token.invalid_grant", reply_text=f"user@example.com {ACCESS_TOKEN}")],
                expires_at="2026-05-29T12:00:00Z",
            ),
            provider,
        ),
        cached(target, result("scope", Status.SKIPPED), provider),
        cached(target, result("auth", Status.UNKNOWN), provider),
    ]


def config(log_files: tuple[LogFile, ...] = (LOG_FILE,), **intervals: float) -> ExporterConfig:
    return ExporterConfig(
        path="/etc/smtpdiag/exporter.toml",
        targets=(),
        jobs=tuple(DEFAULT_INTERVALS),
        intervals={**DEFAULT_INTERVALS, **intervals},
        jitter=0.1,
        workers=4,
        max_connections=20,
        log_files=log_files,
        state_file=None,
        web=WebSettings(),
    )


def status_of(exporter_config: ExporterConfig) -> ExporterStatus:
    return ExporterStatus(exporter_config, reload_success=True, reload_success_time=NOW - 600)


def registry_of(
    cache: ResultCache,
    counters: LogCounters | None = None,
    exporter_config: ExporterConfig | None = None,
) -> CollectorRegistry:
    exporter_config = exporter_config or config()
    registry = CollectorRegistry()
    collector = SmtpdiagCollector(
        cache, counters, lambda: status_of(exporter_config), wall=lambda: NOW
    )
    registry.register(collector)
    return registry


def fill(cache: ResultCache, *entries: CachedResult) -> ResultCache:
    for entry in entries:
        cache.put(entry)
    return cache


@pytest.fixture
def full_registry() -> CollectorRegistry:
    cache = fill(
        ResultCache(),
        *full_results("gmail_relay", "google"),
        *full_results("office365", "microsoft"),
    )
    counters = LogCounters([LOG_FILE], ["google", "microsoft"])
    lines = [
        msmtp_lines.REAL_HEALTHY,
        msmtp_lines.REAL_GOOGLE_BAD_TOKEN,
        msmtp_lines.GMAIL_PLAIN_REJECTED,
        "Mar  1 10:00:00 mx postfix/smtp[4242]: " + postfix_lines.OFFICE365,
        f"Mar  1 10:00:00 mx postfix/smtp[4242]: 9BDCBA19EA: refresh_token={REFRESH_TOKEN}",
        msmtp_lines.CONNECTION_REFUSED,
    ]
    counters.feed(LogLine(LOG_PATH, number, text) for number, text in enumerate(lines, 1))
    return registry_of(cache, counters)


# --- samples of cached results -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        pytest.param("smtpdiag_up", {"target": "gmail_relay"}, 1.0, id="up"),
        pytest.param(
            "smtpdiag_check_status", {"target": "gmail_relay", "check": "tls"}, 1.0, id="warning"
        ),
        pytest.param(
            "smtpdiag_check_status",
            {"target": "gmail_relay", "check": "token"},
            2.0,
            id="critical",
        ),
        pytest.param(
            "smtpdiag_check_status", {"target": "gmail_relay", "check": "auth"}, 3.0, id="unknown"
        ),
        pytest.param(
            "smtpdiag_check_status", {"target": "gmail_relay", "check": "dns"}, 0.0, id="ok"
        ),
        pytest.param(
            "smtpdiag_check_success",
            {"target": "gmail_relay", "check": "tls"},
            1.0,
            id="success-warning",
        ),
        pytest.param(
            "smtpdiag_check_success",
            {"target": "gmail_relay", "check": "auth"},
            0.0,
            id="success-unknown",
        ),
        pytest.param(
            "smtpdiag_check_duration_seconds",
            {"target": "office365", "check": "connect"},
            0.125,
            id="duration",
        ),
        pytest.param(
            "smtpdiag_check_last_run_timestamp_seconds",
            {"target": "office365", "check": "clock"},
            FINISHED,
            id="last-run",
        ),
        pytest.param(
            "smtpdiag_check_finding",
            {"target": "gmail_relay", "check": "token", "reason": "invalid_grant"},
            1.0,
            id="finding",
        ),
        pytest.param(
            "smtpdiag_tls_cert_not_after_timestamp_seconds",
            {"target": "gmail_relay"},
            1_780_272_000.0,
            id="cert-not-after",
        ),
        pytest.param(
            "smtpdiag_clock_offset_seconds", {"target": "office365"}, -0.75, id="clock-offset"
        ),
        pytest.param(
            "smtpdiag_token_expires_in_seconds",
            {"target": "office365", "provider": "microsoft"},
            1_780_056_000.0 - NOW,
            id="token-expires-in",
        ),
        pytest.param("smtpdiag_build_info", {"version": __version__}, 1.0, id="build-info"),
        pytest.param("smtpdiag_config_last_reload_successful", {}, 1.0, id="reload"),
        pytest.param(
            "smtpdiag_config_last_reload_success_timestamp_seconds",
            {},
            NOW - 600,
            id="reload-time",
        ),
        pytest.param("smtpdiag_scrape_duration_seconds", {}, 0.0, id="first-scrape"),
    ],
)
def test_sample(
    full_registry: CollectorRegistry, name: str, labels: dict[str, str], expected: float
) -> None:
    assert full_registry.get_sample_value(name, labels) == expected


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        pytest.param(
            "smtpdiag_check_status", {"target": "gmail_relay", "check": "scope"}, id="skip-status"
        ),
        pytest.param(
            "smtpdiag_check_success",
            {"target": "gmail_relay", "check": "scope"},
            id="skip-success",
        ),
        pytest.param(
            "smtpdiag_check_finding",
            {"target": "gmail_relay", "check": "dns", "reason": "invalid_grant"},
            id="finding-elsewhere",
        ),
    ],
)
def test_sample_absent(full_registry: CollectorRegistry, name: str, labels: dict[str, str]) -> None:
    assert full_registry.get_sample_value(name, labels) is None


def test_skipped_check_keeps_duration(full_registry: CollectorRegistry) -> None:
    labels = {"target": "gmail_relay", "check": "scope"}
    assert full_registry.get_sample_value("smtpdiag_check_duration_seconds", labels) == 0.25


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(Status.OK, 1.0, id="ok"),
        pytest.param(Status.WARNING, 1.0, id="warning"),
        pytest.param(Status.CRITICAL, 0.0, id="critical"),
        pytest.param(Status.UNKNOWN, 0.0, id="unknown"),
        pytest.param(Status.SKIPPED, None, id="skipped"),
    ],
)
def test_up_from_connect(status: Status, expected: float | None) -> None:
    cache = fill(ResultCache(), cached("relay", result("connect", status)))
    assert registry_of(cache).get_sample_value("smtpdiag_up", {"target": "relay"}) == expected


def test_up_absent_before_connect() -> None:
    cache = fill(ResultCache(), cached("relay", result("tls")))
    assert registry_of(cache).get_sample_value("smtpdiag_up", {"target": "relay"}) is None


@pytest.mark.parametrize(
    ("dns", "connect", "expected"),
    [
        pytest.param(Status.CRITICAL, Status.SKIPPED, 0.0, id="dns-failed-connect-skipped"),
        pytest.param(Status.UNKNOWN, None, 0.0, id="dns-unknown-no-connect"),
        pytest.param(Status.OK, Status.CRITICAL, 0.0, id="refused"),
        pytest.param(Status.OK, Status.OK, 1.0, id="reached"),
        pytest.param(Status.WARNING, Status.WARNING, 1.0, id="reached-with-warnings"),
        pytest.param(Status.OK, Status.SKIPPED, None, id="connect-skipped"),
    ],
)
def test_up_from_dns_and_connect(
    dns: Status, connect: Status | None, expected: float | None
) -> None:
    results = [cached("relay", result("dns", dns))]
    if connect is not None:
        results.append(cached("relay", result("connect", connect)))
    cache = fill(ResultCache(), *results)
    assert registry_of(cache).get_sample_value("smtpdiag_up", {"target": "relay"}) == expected


def test_check_interval_per_check() -> None:
    registry = registry_of(ResultCache())
    values = {
        check: registry.get_sample_value("smtpdiag_check_interval_seconds", {"check": check})
        for check in ("dns", "connect", "tls", "token", "scope", "auth", "clock")
    }
    assert values == {
        "dns": 60.0,
        "connect": 60.0,
        "tls": 60.0,
        "token": 300.0,
        "scope": 300.0,
        "auth": 300.0,
        "clock": 60.0,
    }


def test_check_runs_count_every_put() -> None:
    cache = fill(
        ResultCache(),
        cached("relay", result("connect", Status.OK)),
        cached("relay", result("connect", Status.CRITICAL)),
        cached("backup", result("connect", Status.OK)),
        cached("relay", result("tls", Status.OK)),
    )
    registry = registry_of(cache)
    connect = registry.get_sample_value("smtpdiag_check_runs_total", {"check": "connect"})
    tls = registry.get_sample_value("smtpdiag_check_runs_total", {"check": "tls"})
    assert connect == 3.0
    assert tls == 1.0


def test_check_runs_survive_retain() -> None:
    cache = fill(ResultCache(), cached("relay", result("connect", Status.OK)))
    cache.retain([])
    registry = registry_of(cache)
    assert registry.get_sample_value("smtpdiag_check_runs_total", {"check": "connect"}) == 1.0


def test_check_runs_absent_before_results() -> None:
    text = generate_latest(registry_of(ResultCache())).decode()
    assert "# TYPE smtpdiag_check_runs_total counter" in text
    assert "smtpdiag_check_runs_total{" not in text


def test_info_finding_not_exported() -> None:
    scope = result(
        "scope",
        Status.OK,
        [finding("scope.unverifiable", Severity.INFO), finding("scope.expired", Severity.WARNING)],
    )
    registry = registry_of(fill(ResultCache(), cached("relay", scope)))
    labels = {"target": "relay", "check": "scope"}
    assert (
        registry.get_sample_value("smtpdiag_check_finding", {**labels, "reason": "unverifiable"})
        is None
    )
    assert (
        registry.get_sample_value("smtpdiag_check_finding", {**labels, "reason": "expired"}) == 1.0
    )


def test_cert_not_after_from_finding() -> None:
    tls = result(
        "tls",
        Status.CRITICAL,
        [finding("tls.cert_expired", cert_not_after="2026-01-01T00:00:00+00:00")],
    )
    cache = fill(ResultCache(), cached("relay", tls))
    value = registry_of(cache).get_sample_value(
        "smtpdiag_tls_cert_not_after_timestamp_seconds", {"target": "relay"}
    )
    assert value == 1_767_225_600.0


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not a date", id="text"),
        pytest.param(1_767_225_600, id="number"),
        pytest.param(None, id="none"),
    ],
)
def test_cert_not_after_invalid(value: object) -> None:
    cache = fill(ResultCache(), cached("relay", result("tls", cert_not_after=value)))
    sample = registry_of(cache).get_sample_value(
        "smtpdiag_tls_cert_not_after_timestamp_seconds", {"target": "relay"}
    )
    assert sample is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(True, id="bool"),
        pytest.param(float("nan"), id="nan"),
        pytest.param("0.5", id="text"),
    ],
)
def test_clock_offset_invalid(value: object) -> None:
    cache = fill(ResultCache(), cached("relay", result("clock", clock_offset_seconds=value)))
    sample = registry_of(cache).get_sample_value(
        "smtpdiag_clock_offset_seconds", {"target": "relay"}
    )
    assert sample is None


def test_token_expiry_computed_at_scrape() -> None:
    cache = fill(ResultCache(), cached("relay", result("token", expires_at="2026-05-29T12:00:00Z")))
    clock = [NOW]
    registry = CollectorRegistry()
    status = status_of(config())
    registry.register(SmtpdiagCollector(cache, None, lambda: status, wall=lambda: clock[0]))
    labels = {"target": "relay", "provider": "google"}
    first = registry.get_sample_value("smtpdiag_token_expires_in_seconds", labels)
    clock[0] += 100.0
    second = registry.get_sample_value("smtpdiag_token_expires_in_seconds", labels)
    assert first is not None
    assert second == first - 100.0


def test_duplicate_finding_codes_one_series() -> None:
    findings = [finding("auth.credentials_rejected"), finding("auth.credentials_rejected")]
    cache = fill(ResultCache(), cached("relay", result("auth", Status.CRITICAL, findings)))
    text = generate_latest(registry_of(cache)).decode()
    assert text.count('reason="credentials_rejected"') == 1


def test_odd_finding_code_is_other() -> None:
    findings = [finding("auth.Not A Code")]
    cache = fill(ResultCache(), cached("relay", result("auth", Status.CRITICAL, findings)))
    labels = {"target": "relay", "check": "auth", "reason": "other"}
    assert registry_of(cache).get_sample_value("smtpdiag_check_finding", labels) == 1.0


def test_scrape_duration_of_previous_scrape() -> None:
    registry = registry_of(ResultCache())
    generate_latest(registry)
    value = registry.get_sample_value("smtpdiag_scrape_duration_seconds")
    assert value is not None
    assert value > 0.0


def test_reload_failed() -> None:
    registry = CollectorRegistry()
    status = ExporterStatus(config(), reload_success=False, reload_success_time=NOW - 600)
    registry.register(SmtpdiagCollector(ResultCache(), None, lambda: status))
    assert registry.get_sample_value("smtpdiag_config_last_reload_successful") == 0.0


# --- log counters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        pytest.param(
            "smtpdiag_auth_attempts_total", {"source": "msmtp", "provider": "google"}, 1.0, id="a"
        ),
        pytest.param(
            "smtpdiag_auth_attempts_total",
            {"source": "msmtp", "provider": "generic"},
            2.0,
            id="attempts-generic",
        ),
        pytest.param(
            "smtpdiag_auth_failures_total",
            {"source": "postfix", "provider": "microsoft", "reason": "exchange_refused"},
            1.0,
            id="failures",
        ),
        pytest.param("smtpdiag_log_lines_total", {"source": "msmtp"}, 4.0, id="lines"),
        pytest.param("smtpdiag_log_parse_errors_total", {"source": "msmtp"}, 1.0, id="errors"),
        pytest.param("smtpdiag_secret_leaks_total", {"source": "postfix"}, 1.0, id="leaks"),
        pytest.param("smtpdiag_log_files_followed", {}, 0.0, id="files-followed"),
    ],
)
def test_log_sample(
    full_registry: CollectorRegistry, name: str, labels: dict[str, str], expected: float
) -> None:
    assert full_registry.get_sample_value(name, labels) == expected


def test_log_zero_series_before_lines() -> None:
    registry = registry_of(ResultCache(), LogCounters([LOG_FILE]))
    families = {
        family.name: family
        for family in text_string_to_metric_families(generate_latest(registry).decode())
    }
    attempts = families["smtpdiag_auth_attempts"].samples
    failures = families["smtpdiag_auth_failures"].samples
    assert len(attempts) == len(ATTEMPT_SOURCES)
    assert len(failures) == len(ATTEMPT_SOURCES) * len(PRESET_REASONS)
    assert {sample.value for sample in [*attempts, *failures]} == {0.0}
    assert len(families["smtpdiag_log_lines"].samples) == len(SOURCES)
    assert len(families["smtpdiag_secret_leaks"].samples) == len(LEAK_SOURCES)


def test_no_log_series_without_counters() -> None:
    registry = registry_of(ResultCache(), None, config(log_files=()))
    text = generate_latest(registry).decode()
    assert "smtpdiag_auth_attempts_total" not in text


def test_secret_not_in_scrape(full_registry: CollectorRegistry) -> None:
    text = generate_latest(full_registry).decode()
    assert REFRESH_TOKEN not in text
    assert ACCESS_TOKEN not in text
    assert "example.com" not in text


# --- HELP texts and describe ---------------------------------------------------------------


def help_texts(registry: CollectorRegistry) -> dict[str, str]:
    text = generate_latest(registry).decode()
    return {family.name: family.documentation for family in text_string_to_metric_families(text)}


def test_help_names_configured_interval() -> None:
    registry = registry_of(ResultCache(), None, config(connect=90.0))
    assert "connect job every 90 s" in help_texts(registry)["smtpdiag_up"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("smtpdiag_tls_cert_not_after_timestamp_seconds", "tls job every 60 s", id="t"),
        pytest.param("smtpdiag_token_expires_in_seconds", "token job every 300 s", id="token"),
        pytest.param(
            "smtpdiag_check_status", "the auth job runs auth every 300 s", id="check-status"
        ),
        pytest.param(
            "smtpdiag_check_status", "the connect job runs dns and connect every 60 s", id="dns"
        ),
    ],
)
def test_help_says_cached(name: str, expected: str) -> None:
    assert expected in help_texts(registry_of(ResultCache()))[name]


class ExplodingCache(ResultCache):
    """A cache whose every read fails, so that a test detects any read."""

    def snapshot(self) -> tuple[CachedResult, ...]:
        raise AssertionError("the cache was read")

    def for_target(self, target: str) -> tuple[CachedResult, ...]:
        raise AssertionError("the cache was read")


class ExplodingCounters(LogCounters):
    def snapshot(self) -> object:  # type: ignore[override]
        raise AssertionError("the counters were read")


def test_describe_reads_nothing() -> None:
    collector = SmtpdiagCollector(
        ExplodingCache(),
        ExplodingCounters([LOG_FILE]),
        lambda: (_ for _ in ()).throw(AssertionError("status was read")),
    )
    names = {family.name for family in collector.describe()}
    assert "smtpdiag_up" in names
    assert "smtpdiag_auth_attempts" in names


def test_describe_has_no_samples() -> None:
    collector = SmtpdiagCollector(ExplodingCache(), None, lambda: status_of(config()))
    assert [family.samples for family in collector.describe() if family.samples] == []


class CountingCache(ResultCache):
    """A cache that counts its snapshots."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def snapshot(self) -> tuple[CachedResult, ...]:
        self.reads += 1
        return super().snapshot()


def test_register_does_not_collect() -> None:
    cache = CountingCache()
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SmtpdiagCollector(cache, None, lambda: status_of(config())))
    assert cache.reads == 0


# --- label values --------------------------------------------------------------------------

TOKEN_LIKE = re.compile(r"ya29\.|eyJ|1//|[A-Za-z0-9+/=-]{20,}")
"""Marks of a Google access token, a JWT or a Google refresh token, and any run of 20 or more
base64 or hex characters. Label values are words joined by underscores, so they contain none."""


def label_values(registry: CollectorRegistry) -> list[tuple[str, str, str]]:
    """Return (metric, label name, value) of every sample of a full scrape."""
    text = generate_latest(registry).decode()
    return [
        (sample.name, name, value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for name, value in sample.labels.items()
    ]


CLOSED_SETS = {
    "check": CHECK_IDS,
    "source": set(LEAK_SOURCES),
    "provider": set(PROVIDERS),
    "version": {__version__},
    "target": set(TARGET_NAMES),
}


def label_allowed(metric: str, name: str, value: str) -> bool:
    """Tell whether a label value is in its closed set and looks like no address or token."""
    allowed = CLOSED_SETS.get(name)
    if name == "reason":
        allowed = FINDING_REASONS if metric == "smtpdiag_check_finding" else set(LOG_REASONS)
    if allowed is None or value not in allowed:
        return False
    return "@" not in value and " " not in value and TOKEN_LIKE.search(value) is None


FINDING_REASONS = {"cert_expiring_soon", "invalid_grant"}
"""Name parts of the finding codes in ``full_results``."""


def test_labels_closed_and_clean(full_registry: CollectorRegistry) -> None:
    values = label_values(full_registry)
    wrong = [entry for entry in values if not label_allowed(*entry)]
    assert values
    assert wrong == []


# --- probe ---------------------------------------------------------------------------------


def probe_target() -> ExporterTarget:
    target = Target(host="127.0.0.1", port=587, tls_mode=TlsMode.STARTTLS, name="relay")
    return ExporterTarget("relay", target, Settings(), "microsoft")


def report_of(*checks: CheckResult) -> Report:
    return Report(__version__, {"name": "relay"}, "2026-05-28T12:00:00Z", 0.5, checks)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        pytest.param((Status.OK, Status.WARNING, Status.SKIPPED), 1.0, id="ok"),
        pytest.param((Status.OK, Status.CRITICAL), 0.0, id="critical"),
        pytest.param((Status.OK, Status.UNKNOWN), 0.0, id="unknown"),
    ],
)
def test_probe_success(statuses: tuple[Status, ...], expected: float) -> None:
    checks = [result(f"check{number}", status) for number, status in enumerate(statuses)]
    registry = probe_registry(report_of(*checks), probe_target(), 0.5)
    assert registry.get_sample_value("smtpdiag_probe_success") == expected


def test_probe_duration() -> None:
    registry = probe_registry(report_of(result("connect")), probe_target(), 0.5)
    assert registry.get_sample_value("smtpdiag_probe_duration_seconds") == 0.5


def test_probe_target_families() -> None:
    token = result("token", expires_at="2999-01-01T00:00:00Z")
    registry = probe_registry(report_of(result("connect"), token), probe_target(), 0.5)
    assert registry.get_sample_value("smtpdiag_up", {"target": "relay"}) == 1.0
    expires = registry.get_sample_value(
        "smtpdiag_token_expires_in_seconds", {"target": "relay", "provider": "microsoft"}
    )
    assert expires is not None
    assert expires > 0


def test_probe_help_says_fresh() -> None:
    registry = probe_registry(report_of(result("connect")), probe_target(), 0.5)
    assert "Fresh" in help_texts(registry)["smtpdiag_up"]


def test_probe_unknown_provider_generic() -> None:
    target = replace(probe_target(), provider="not-a-provider")
    token = result("token", expires_at="2999-01-01T00:00:00Z")
    registry = probe_registry(report_of(token), target, 0.5)
    labels = {"target": "relay", "provider": "generic"}
    assert registry.get_sample_value("smtpdiag_token_expires_in_seconds", labels) is not None
