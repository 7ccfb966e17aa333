"""promtool's metric linter on a realistic scrape and on a probe's output."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporters.cache import ResultCache
from exporters.collector import probe_registry
from exporters.logcounters import LogCounters
from smtpdiag.logs.reader import LogLine
from tests.exporters.test_collector import (
    LOG_FILE,
    LOG_PATH,
    fill,
    full_results,
    probe_target,
    registry_of,
    report_of,
    result,
)
from tests.logs import test_exim as exim_lines
from tests.logs import test_msmtp as msmtp_lines
from tests.logs import test_postfix as postfix_lines
from tests.system_programs import require_program

LINES = [
    msmtp_lines.REAL_HEALTHY,
    msmtp_lines.REAL_GOOGLE_BAD_TOKEN,
    msmtp_lines.REAL_CERT_EXPIRED,
    msmtp_lines.CONNECTION_REFUSED,
    "Mar  1 10:00:00 mx postfix/smtp[4242]: " + postfix_lines.OFFICE365,
    "Mar  1 10:00:00 mx postfix/smtp[4242]: " + postfix_lines.SENT,
    "2026-03-01 10:00:00 " + exim_lines.CLIENT_FAILED,
    "Mar  1 10:00:00 mx postfix/smtp[4242]: 9BDCBA19EA: client_secret=GOCSPX-ExampleSecret123456",
]


def promtool_check(registry: CollectorRegistry) -> subprocess.CompletedProcess[str]:
    promtool = require_program("promtool")
    return subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(registry).decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def realistic_registry() -> CollectorRegistry:
    cache = fill(
        ResultCache(),
        *full_results("gmail_relay", "google"),
        *full_results("office365", "microsoft"),
    )
    counters = LogCounters([LOG_FILE], ["google", "microsoft"])
    counters.feed(LogLine(LOG_PATH, number, text) for number, text in enumerate(LINES, 1))
    return registry_of(cache, counters)


def test_scrape_passes_promtool(realistic_registry: CollectorRegistry) -> None:
    checked = promtool_check(realistic_registry)
    assert checked.stdout + checked.stderr == ""
    assert checked.returncode == 0


def test_probe_passes_promtool() -> None:
    report = report_of(result("connect"), result("token", expires_at="2999-01-01T00:00:00Z"))
    checked = promtool_check(probe_registry(report, probe_target(), 0.5))
    assert checked.stdout + checked.stderr == ""
    assert checked.returncode == 0
