"""The exporter scenario of the demo: real labs, the real msmtp, a scrape read back."""

from __future__ import annotations

import pytest
from system_programs import require_program

import checks
from exporters.demo import judge_exporter, run_exporter_scenario

SPECS = tuple(spec for spec in checks.REGISTRY if spec.id != "auth_failure_rate")

GOOD = {
    ("smtpdiag_check_status", frozenset({("check", "auth"), ("target", "healthy")})): 0.0,
    ("smtpdiag_check_status", frozenset({("check", "auth"), ("target", "failing")})): 2.0,
    ("smtpdiag_up", frozenset({("target", "healthy")})): 1.0,
    ("smtpdiag_up", frozenset({("target", "failing")})): 1.0,
}


@pytest.mark.lab
def test_scenario_diagnosed_with_msmtp() -> None:
    require_program("msmtp")
    printed: list[str] = []
    verdict = run_exporter_scenario(SPECS, printed.append)
    assert verdict.diagnosed, verdict.line()
    assert 'smtpdiag_auth_attempts_total{provider="generic",source="msmtp"} 4.0' in printed[0]


def test_judge_without_logs() -> None:
    assert judge_exporter(GOOD, with_logs=False).diagnosed


def test_judge_missing_status_not_diagnosed() -> None:
    samples = dict(GOOD)
    del samples[("smtpdiag_check_status", frozenset({("check", "auth"), ("target", "failing")}))]
    verdict = judge_exporter(samples, with_logs=False)
    assert not verdict.diagnosed
    assert "failing auth status missing" in verdict.got


def test_judge_counts_msmtp_failures() -> None:
    samples = {
        **GOOD,
        (
            "smtpdiag_auth_attempts_total",
            frozenset({("source", "msmtp"), ("provider", "generic")}),
        ): 4.0,
        (
            "smtpdiag_auth_failures_total",
            frozenset({("source", "msmtp"), ("provider", "generic"), ("reason", "other")}),
        ): 2.0,
    }
    verdict = judge_exporter(samples, with_logs=True)
    assert not verdict.diagnosed
    assert "msmtp failures 2" in verdict.got
