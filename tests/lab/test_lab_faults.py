"""Fault scenarios: ``smtpdiag check`` against the raw fault server ends with a precise finding."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest
from fault_runs import DURATION_FACTOR, CheckRun, scenario_run

from smtpdiag.lab.options import SmtpFault
from smtpdiag.lab.runner import start_lab
from smtpdiag.lab.scenarios import FAULT_SCENARIOS, FAULT_TIMEOUT, get_scenario

# Every fault lab reads an opaque access token from a file, whose scopes cannot be read.
ALWAYS = {"scope.unverifiable"}


@dataclass(frozen=True)
class Expected:
    """What a correct diagnosis of one fault scenario contains."""

    code: str
    check: str
    stage: str | None
    """``stage`` fact of the finding; None for a finding without one."""
    exit_code: int = 2


EXPECTED = {
    "black-hole": Expected("connect.timeout", "connect", "greeting"),
    "slow-drip": Expected("connect.timeout", "connect", "greeting"),
    "close-after-greeting": Expected("connect.closed", "connect", "ehlo"),
    "close-after-ehlo": Expected("connect.closed", "connect", "starttls"),
    "close-after-starttls": Expected("connect.tls_handshake_failed", "connect", "tls_handshake"),
    "close-mid-handshake": Expected("connect.tls_handshake_failed", "connect", "tls_handshake"),
    "close-mid-reply": Expected("connect.closed", "connect", "ehlo"),
    "reset-during-auth": Expected("auth.no_final_reply", "auth", None),
    "endless-continuation": Expected("connect.not_smtp", "connect", "ehlo"),
    "huge-line": Expected("connect.not_smtp", "connect", "ehlo"),
    "binary-garbage": Expected("connect.not_smtp", "connect", "greeting"),
    # Bare LF is tolerated and reported as information, so the run succeeds.
    "bare-lf": Expected("connect.protocol_oddities", "connect", "done", exit_code=0),
    "endless-challenge": Expected("auth.repeated_challenge", "auth", None),
}

NAMES = [scenario.name for scenario in FAULT_SCENARIOS]


@pytest.fixture(scope="module", params=NAMES)
def fault_run(request: pytest.FixtureRequest) -> tuple[str, CheckRun]:
    return request.param, scenario_run(request.param)


def test_fault_table_covers_scenarios() -> None:
    assert sorted(EXPECTED) == sorted(NAMES)


def test_fault_names_follow_enum() -> None:
    assert [fault.value for fault in SmtpFault] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_fault_scenario_short_timeout(name: str) -> None:
    assert get_scenario(name).timeout == FAULT_TIMEOUT


@pytest.mark.parametrize("name", NAMES)
def test_fault_scenario_expected_codes(name: str) -> None:
    assert get_scenario(name).expected_codes == (EXPECTED[name].code,)


def test_fault_exact_codes(fault_run: tuple[str, CheckRun]) -> None:
    name, run = fault_run
    assert run.codes() == {EXPECTED[name].code} | ALWAYS


def test_fault_exit_code(fault_run: tuple[str, CheckRun]) -> None:
    name, run = fault_run
    assert run.exit_code == EXPECTED[name].exit_code


def test_fault_finding_in_check(fault_run: tuple[str, CheckRun]) -> None:
    name, run = fault_run
    expected = EXPECTED[name]
    codes = [finding["code"] for finding in run.check(expected.check)["findings"]]
    assert codes == [expected.code]


def test_fault_finding_stage(fault_run: tuple[str, CheckRun]) -> None:
    name, run = fault_run
    expected = EXPECTED[name]
    assert run.finding(expected.code)["facts"].get("stage") == expected.stage


def test_fault_no_traceback(fault_run: tuple[str, CheckRun]) -> None:
    _, run = fault_run
    assert "Traceback" not in run.stderr


def test_fault_checks_end_within_bound(fault_run: tuple[str, CheckRun]) -> None:
    _, run = fault_run
    bound = FAULT_TIMEOUT * DURATION_FACTOR
    slow = [check["id"] for check in run.report["checks"] if check["duration_seconds"] >= bound]
    assert slow == []


def test_fault_report_ends_within_bound(fault_run: tuple[str, CheckRun]) -> None:
    _, run = fault_run
    assert run.report["duration_seconds"] < FAULT_TIMEOUT * DURATION_FACTOR


def test_bare_lf_oddity_names_line_end() -> None:
    run = scenario_run("bare-lf")
    assert "bare LF" in run.finding("connect.protocol_oddities")["cause"]


def test_fault_server_stop_closes_open_connection() -> None:
    scenario = get_scenario("black-hole")
    with start_lab(scenario) as lab:
        host, port = lab.smtp_starttls.rsplit(":", 1)
        client = socket.create_connection((host, int(port)), timeout=5)
    with client:
        assert client.recv(1) == b""


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "implicit-tls"])
def test_close_mid_reply_evidence_shows_lines(implicit_tls: bool) -> None:
    finding = scenario_run("close-mid-reply", implicit_tls=implicit_tls).finding("connect.closed")
    assert finding["evidence"][-2] == "C: EHLO localhost"
    assert finding["evidence"][-1] == "S (incomplete): 250-localhost\\r\\n250-PIPELINING\\r\\n"


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "implicit-tls"])
def test_close_mid_reply_error_counts_lines(implicit_tls: bool) -> None:
    finding = scenario_run("close-mid-reply", implicit_tls=implicit_tls).finding("connect.closed")
    assert "after 31 bytes of a reply (2 continuation lines without" in finding["cause"]


def test_close_mid_reply_implicit_tls_stage_words() -> None:
    finding = scenario_run("close-mid-reply", implicit_tls=True).finding("connect.closed")
    assert finding["title"].endswith("closed the connection during the EHLO after TLS")


def test_reset_during_auth_cause_names_drop() -> None:
    finding = scenario_run("reset-during-auth").finding("auth.no_final_reply")
    assert "dropped the connection at AUTH" in finding["cause"]
    assert "dummy response" not in finding["cause"]


def test_reset_during_auth_fix_names_mechanism() -> None:
    finding = scenario_run("reset-during-auth").finding("auth.no_final_reply")
    assert "--mechanism OAUTHBEARER" in finding["fix"]
    assert "--challenge-answer" not in finding["fix"]


def test_reset_during_auth_sends_no_quit() -> None:
    evidence = scenario_run("reset-during-auth").finding("auth.no_final_reply")["evidence"]
    assert evidence[-2].startswith("C: AUTH XOAUTH2 ")
    assert evidence[-1] == "-- a TCP reset ended the connection"
    assert "C: QUIT" not in evidence


@pytest.mark.parametrize("name", ["black-hole", "slow-drip"])
def test_greeting_timeout_cause_names_accepted_connection(name: str) -> None:
    finding = scenario_run(name).finding("connect.timeout")
    assert "accepted the TCP connection" in finding["cause"]
    assert "firewall" not in finding["cause"]
    assert "firewall" not in finding["fix"]


def test_black_hole_evidence_names_tls_probe_result() -> None:
    evidence = scenario_run("black-hole").finding("connect.timeout")["evidence"]
    assert evidence[0] == "-- no greeting after 1 s; trying a TLS handshake"
    assert evidence[1].startswith("-- no answer to the TLS ClientHello within ")


def test_endless_continuation_excerpt_marks_cut() -> None:
    finding = scenario_run("endless-continuation").finding("connect.not_smtp")
    assert finding["evidence"][-1].startswith("S: …250-X-LINE-")
    assert "256 lines: …250-X-LINE-" in finding["cause"]


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("endless-continuation", "went on past 256 lines"),
        ("huge-line", "a line of more than 4096 octets"),
    ],
)
def test_broken_framing_names_limit(name: str, limit: str) -> None:
    assert limit in scenario_run(name).finding("connect.not_smtp")["cause"]
