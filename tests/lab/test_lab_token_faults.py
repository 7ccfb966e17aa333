"""Token endpoint and NTP fault scenarios: ``smtpdiag check`` ends with a precise finding."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fault_runs import DURATION_FACTOR, CheckRun, scenario_run

from smtpdiag.lab.options import NtpMode, TokenFault
from smtpdiag.lab.scenarios import (
    CLOCK_SKEW_SECONDS,
    ENDPOINT_FAULT_SCENARIOS,
    FAULT_SCENARIOS,
    FAULT_TIMEOUT,
    SCENARIOS,
    get_scenario,
    list_scenarios,
)

CLOCK_CODES = frozenset({"clock.ntp_unreachable", "clock.skew"})


@dataclass(frozen=True)
class Expected:
    """What a correct diagnosis of one scenario contains."""

    codes: frozenset[str]
    """Every finding code of the report."""
    code: str
    """The finding that names the fault."""
    check: str
    """Check that reports ``code``."""
    title_words: tuple[str, ...]
    cause_words: tuple[str, ...]
    evidence_lines: tuple[str, ...] = ()
    """Lines that the evidence of ``code`` contains."""


EXPECTED = {
    "token-hang": Expected(
        frozenset({"token.endpoint_unreachable"}),
        "token.endpoint_unreachable",
        "token",
        ("No complete HTTP reply", "the request was sent, but no reply came within 2 s"),
        ("the request was sent", "accepted the request and did not reply in time"),
    ),
    "token-500": Expected(
        frozenset({"token.endpoint_http_error"}),
        "token.endpoint_http_error",
        "token",
        ("returned HTTP 500",),
        ("internal_failure", '"Backend Error"', "5xx status"),
        ("HTTP 500 Internal Server Error",),
    ),
    "token-html-200": Expected(
        frozenset({"token.malformed_response"}),
        "token.malformed_response",
        "token",
        ('an HTML page titled "Sign in to continue"', "(HTTP 200)"),
        ("text/html", "captive portal"),
        ("HTTP 200 OK", "Content-Type: text/html; charset=utf-8"),
    ),
    "token-10mb": Expected(
        frozenset({"token.malformed_response"}),
        "token.malformed_response",
        "token",
        ("a body over 1 MiB (read cut at 1 MiB)", "(HTTP 200)"),
        ("stopped reading after 1 MiB (1048576 bytes)",),
        ("HTTP 200 OK",),
    ),
    "ntp-silent": Expected(
        CLOCK_CODES,
        "clock.ntp_unreachable",
        "clock",
        ("No usable NTP reply", "no reply"),
        ("no reply within 2 s", "fell back to the Date header"),
    ),
    "ntp-garbage": Expected(
        CLOCK_CODES,
        "clock.ntp_unreachable",
        "clock",
        ("No usable NTP reply", "invalid reply"),
        ("not an NTP packet", "fell back to the Date header"),
    ),
}

NAMES = [scenario.name for scenario in ENDPOINT_FAULT_SCENARIOS]


@pytest.fixture(scope="module")
def runs() -> dict[str, CheckRun]:
    return {name: scenario_run(name) for name in NAMES}


# --- scenario table ---


def test_endpoint_fault_table_covers_scenarios() -> None:
    assert sorted(EXPECTED) == sorted(NAMES)


def test_endpoint_faults_follow_smtp_faults() -> None:
    names = list(SCENARIOS)
    start = names.index(FAULT_SCENARIOS[-1].name) + 1
    assert names[start : start + len(NAMES)] == NAMES


def test_endpoint_faults_listed() -> None:
    listed = [name for name, _ in list_scenarios()]
    assert [name for name in listed if name in EXPECTED] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_fault_short_timeout(name: str) -> None:
    assert get_scenario(name).timeout == FAULT_TIMEOUT


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_fault_expected_codes(name: str) -> None:
    assert set(get_scenario(name).expected_codes) == EXPECTED[name].codes


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_fault_needs_no_program(name: str) -> None:
    scenario = get_scenario(name)
    assert (scenario.needs_msmtp, scenario.needs_dovecot, scenario.needs_postfix) == (
        False,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("name", "fault"),
    [("token-hang", TokenFault.HANG), ("token-10mb", TokenFault.HUGE_BODY)],
)
def test_token_fault_of_scenario(name: str, fault: TokenFault) -> None:
    options = get_scenario(name).token_endpoint
    assert options is not None
    assert options.fault is fault


@pytest.mark.parametrize(
    ("name", "mode"), [("ntp-silent", NtpMode.SILENT), ("ntp-garbage", NtpMode.GARBAGE)]
)
def test_ntp_fault_of_scenario(name: str, mode: NtpMode) -> None:
    scenario = get_scenario(name)
    assert (scenario.ntp_mode, scenario.clock_offset_seconds) == (mode, CLOCK_SKEW_SECONDS)


# --- diagnosis ---


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_fault_exact_codes(runs: dict[str, CheckRun], name: str) -> None:
    run = runs[name]
    assert run.codes() == EXPECTED[name].codes


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_fault_exit_code(runs: dict[str, CheckRun], name: str) -> None:
    run = runs[name]
    assert run.exit_code == 2


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_fault_finding_in_check(runs: dict[str, CheckRun], name: str) -> None:
    run = runs[name]
    expected = EXPECTED[name]
    codes = [finding["code"] for finding in run.check(expected.check)["findings"]]
    assert expected.code in codes


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_fault_title_words(runs: dict[str, CheckRun], name: str) -> None:
    run = runs[name]
    expected = EXPECTED[name]
    title = run.finding(expected.code)["title"]
    missing = [words for words in expected.title_words if words not in title]
    assert missing == []


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_fault_cause_words(runs: dict[str, CheckRun], name: str) -> None:
    run = runs[name]
    expected = EXPECTED[name]
    cause = run.finding(expected.code)["cause"]
    missing = [words for words in expected.cause_words if words not in cause]
    assert missing == []


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_fault_evidence(runs: dict[str, CheckRun], name: str) -> None:
    run = runs[name]
    expected = EXPECTED[name]
    evidence = run.finding(expected.code)["evidence"]
    missing = [line for line in expected.evidence_lines if line not in evidence]
    assert missing == []


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_fault_no_traceback(runs: dict[str, CheckRun], name: str) -> None:
    run = runs[name]
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_fault_checks_end_within_bound(runs: dict[str, CheckRun], name: str) -> None:
    run = runs[name]
    bound = FAULT_TIMEOUT * DURATION_FACTOR
    slow = [check["id"] for check in run.report["checks"] if check["duration_seconds"] >= bound]
    assert slow == []


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_fault_report_ends_within_bound(runs: dict[str, CheckRun], name: str) -> None:
    run = runs[name]
    assert run.report["duration_seconds"] < FAULT_TIMEOUT * DURATION_FACTOR


CONNECT_FAILURE_ADVICE = ("name resolution", "firewall rules", "When the connection fails")
"""Phrases of the advice for a connection that failed, which a stalled request must not get."""


@pytest.mark.parametrize("words", CONNECT_FAILURE_ADVICE)
def test_token_hang_has_no_connect_advice(runs: dict[str, CheckRun], words: str) -> None:
    finding = runs["token-hang"].finding("token.endpoint_unreachable")
    assert words not in finding["cause"]
    assert words not in finding["fix"]


def test_token_hang_fix_names_provider_and_proxy(runs: dict[str, CheckRun]) -> None:
    fix = runs["token-hang"].finding("token.endpoint_unreachable")["fix"]
    assert "service status" in fix
    assert "proxy" in fix


def test_token_hang_failure_fact(runs: dict[str, CheckRun]) -> None:
    facts = runs["token-hang"].finding("token.endpoint_unreachable")["facts"]
    assert facts["endpoint_failure"] == "stalled"


def test_truncated_body_fact(runs: dict[str, CheckRun]) -> None:
    facts = runs["token-10mb"].finding("token.malformed_response")["facts"]
    assert (facts["body_truncated"], facts["http_status"]) == (True, 200)


def test_server_failure_error_fact(runs: dict[str, CheckRun]) -> None:
    facts = runs["token-500"].finding("token.endpoint_http_error")["facts"]
    assert (facts["oauth_error"], facts["http_status"]) == ("internal_failure", 500)


@pytest.mark.parametrize("name", ["ntp-silent", "ntp-garbage"])
def test_ntp_fault_offset_from_date_header(runs: dict[str, CheckRun], name: str) -> None:
    facts = runs[name].check("clock")["facts"]
    assert facts["clock_source"] == "http_date"
    assert abs(facts["clock_offset_seconds"] + CLOCK_SKEW_SECONDS) <= 2
