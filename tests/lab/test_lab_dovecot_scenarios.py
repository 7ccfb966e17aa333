"""Dovecot scenarios end to end: ``smtpdiag check`` against a lab that runs the real Dovecot."""

from __future__ import annotations

import base64
import io
import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lab_reports import empty_report
from system_programs import require_program
from typer.testing import CliRunner

from smtpdiag.cli import app
from smtpdiag.errors import UsageError
from smtpdiag.lab import demo, runner
from smtpdiag.lab.demo import DOVECOT_MISSING, run_demo
from smtpdiag.lab.runner import LAB_USER, LabInfo, start_lab
from smtpdiag.lab.scenarios import SCENARIOS, get_scenario

EXPECTED_CODES = {
    "dovecot": set(),
    "dovecot-token-revoked": {
        "scope.token_inactive",
        "auth.token_rejected",
    },
    "dovecot-token-expired": {
        "scope.token_expired",
        "scope.token_inactive",
        "auth.line_too_long",
        "auth.token_rejected",
    },
    "dovecot-user-mismatch": {
        "scope.user_mismatch",
        "auth.line_too_long",
        "auth.token_rejected",
    },
    "dovecot-introspection-down": {
        "scope.introspection_failed",
        "auth.temporary_failure",
    },
}
DOVECOT_SCENARIOS = list(EXPECTED_CODES)
REJECTED = ["dovecot-token-revoked", "dovecot-token-expired", "dovecot-user-mismatch"]
CHALLENGE = '{"status":"401","schemes":"bearer","scope":"mail"}'
CHALLENGE_BASE64 = base64.b64encode(CHALLENGE.encode()).decode()


@dataclass(frozen=True)
class Diagnosis:
    """One scenario's lab description, written configuration and ``smtpdiag check`` result."""

    info: LabInfo
    config: dict[str, Any]
    json_line: dict[str, Any]
    exit_code: int
    report: dict[str, Any]
    dovecot_log: str

    def findings(self) -> list[dict[str, Any]]:
        return [item for check in self.report["checks"] for item in check["findings"]]

    def finding(self, code: str) -> dict[str, Any]:
        matches = [item for item in self.findings() if item["code"] == code]
        assert matches, f"{code} not in {[item['code'] for item in self.findings()]}"
        return matches[0]

    def check(self, check_id: str) -> dict[str, Any]:
        return next(check for check in self.report["checks"] if check["id"] == check_id)


def diagnose(name: str, parent: Path) -> Diagnosis:
    with start_lab(get_scenario(name), workdir=parent) as info:
        config = tomllib.loads(info.config_file.read_text())
        json_line = json.loads(info.to_json_line())
        arguments = ["check", "--config", str(info.config_file), "--target", "lab", "-f", "json"]
        result = CliRunner().invoke(app, arguments)
        assert info.dovecot_log_file is not None
        log = info.dovecot_log_file.read_text()
    return Diagnosis(info, config, json_line, result.exit_code, json.loads(result.stdout), log)


@pytest.fixture(scope="module")
def diagnoses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Diagnosis]:
    require_program("dovecot")
    parent = tmp_path_factory.mktemp("dovecot-diagnosis")
    return {name: diagnose(name, parent) for name in DOVECOT_SCENARIOS}


# --- scenario table ---


def test_dovecot_scenarios_follow_relay_scenarios() -> None:
    names = list(SCENARIOS)
    start = names.index("relay-token-rejected") + 1
    assert names[start : start + len(DOVECOT_SCENARIOS)] == DOVECOT_SCENARIOS


@pytest.mark.parametrize("name", DOVECOT_SCENARIOS)
def test_scenario_expected_codes(name: str) -> None:
    assert set(SCENARIOS[name].expected_codes) == EXPECTED_CODES[name]


@pytest.mark.parametrize("name", DOVECOT_SCENARIOS)
def test_scenario_needs_dovecot(name: str) -> None:
    assert SCENARIOS[name].needs_dovecot is True


@pytest.mark.parametrize("name", ["healthy", "relay", "token-healthy"])
def test_other_scenarios_need_no_dovecot(name: str) -> None:
    assert SCENARIOS[name].needs_dovecot is False


# --- diagnosis through the real engine ---


@pytest.mark.parametrize("name", DOVECOT_SCENARIOS)
def test_diagnosis_codes(diagnoses: dict[str, Diagnosis], name: str) -> None:
    codes = {item["code"] for item in diagnoses[name].findings()}
    assert codes == EXPECTED_CODES[name]


@pytest.mark.parametrize(
    ("name", "exit_code"),
    [
        pytest.param("dovecot", 0, id="dovecot"),
        pytest.param("dovecot-token-revoked", 2, id="revoked"),
        pytest.param("dovecot-token-expired", 2, id="expired"),
        pytest.param("dovecot-user-mismatch", 2, id="user-mismatch"),
        pytest.param("dovecot-introspection-down", 1, id="introspection-down"),
    ],
)
def test_diagnosis_exit_code(diagnoses: dict[str, Diagnosis], name: str, exit_code: int) -> None:
    assert diagnoses[name].exit_code == exit_code


@pytest.mark.parametrize("check_id", ["dns", "connect", "tls", "token", "scope", "auth", "clock"])
def test_healthy_checks(diagnoses: dict[str, Diagnosis], check_id: str) -> None:
    assert diagnoses["dovecot"].check(check_id)["status"] == "ok"


def test_healthy_auth_reply(diagnoses: dict[str, Diagnosis]) -> None:
    summary = diagnoses["dovecot"].check("auth")["summary"]
    assert summary == f"AUTH XOAUTH2 accepted for {LAB_USER}"


def test_healthy_dovecot_logged_login(diagnoses: dict[str, Diagnosis]) -> None:
    log = diagnoses["dovecot"].dovecot_log
    assert f"submission-login: Info: Login: user=<{LAB_USER}>, method=XOAUTH2" in log


def test_connect_names_dovecot_mechanisms(diagnoses: dict[str, Diagnosis]) -> None:
    summary = diagnoses["dovecot"].check("connect")["summary"]
    assert summary.endswith("STARTTLS, TLSv1.3, AUTH XOAUTH2 OAUTHBEARER")


@pytest.mark.parametrize("name", REJECTED)
def test_rejection_reply_text(diagnoses: dict[str, Diagnosis], name: str) -> None:
    facts = diagnoses[name].finding("auth.token_rejected")["facts"]
    assert (facts["reply_code"], facts["enhanced_code"], facts["reply_text"]) == (
        535,
        "5.7.8",
        "5.7.8 Authentication failed.",
    )


@pytest.mark.parametrize("name", REJECTED)
def test_rejection_decoded_challenge(diagnoses: dict[str, Diagnosis], name: str) -> None:
    facts = diagnoses[name].finding("auth.token_rejected")["facts"]
    assert facts["challenge"] == json.loads(CHALLENGE)


@pytest.mark.parametrize("name", REJECTED)
def test_rejection_transcript_has_challenge(diagnoses: dict[str, Diagnosis], name: str) -> None:
    evidence = diagnoses[name].finding("auth.token_rejected")["evidence"]
    assert f"S: 334 {CHALLENGE_BASE64}" in evidence


@pytest.mark.parametrize("name", ["dovecot-token-expired", "dovecot-user-mismatch"])
def test_jwt_auth_line_too_long(diagnoses: dict[str, Diagnosis], name: str) -> None:
    facts = diagnoses[name].finding("auth.line_too_long")["facts"]
    assert (facts["reply_code"], facts["reply_text"]) == (500, "5.5.2 Line too long")


@pytest.mark.parametrize("name", ["dovecot-token-expired", "dovecot-user-mismatch"])
def test_jwt_line_too_long_is_warning(diagnoses: dict[str, Diagnosis], name: str) -> None:
    # The two-step form reached Dovecot, whose reply was the 334 error challenge.
    finding = diagnoses[name].finding("auth.line_too_long")
    assert (finding["severity"], finding["facts"]["two_step_reply_code"]) == ("warning", 334)


@pytest.mark.parametrize("name", ["dovecot-token-expired", "dovecot-user-mismatch"])
def test_jwt_auth_summary_names_rejection(diagnoses: dict[str, Diagnosis], name: str) -> None:
    auth = diagnoses[name].check("auth")
    assert (auth["status"], auth["summary"]) == (
        "critical",
        "Server rejected the OAuth2 token (status 401)",
    )


def test_healthy_scope_summary_names_scopes(diagnoses: dict[str, Diagnosis]) -> None:
    scope = diagnoses["dovecot"].check("scope")
    scopes = scope["facts"]["introspection"]["scopes"]
    assert scopes != []
    assert scope["summary"] == f"opaque token grants {' '.join(scopes)} (introspection)"


def test_revoked_introspection_inactive(diagnoses: dict[str, Diagnosis]) -> None:
    facts = diagnoses["dovecot-token-revoked"].finding("scope.token_inactive")["facts"]
    assert (facts["active"], facts["http_status"]) == (False, 200)


def test_revoked_dovecot_log(diagnoses: dict[str, Diagnosis]) -> None:
    log = diagnoses["dovecot-token-revoked"].dovecot_log
    assert "(auth failed, 1 attempts" in log


def test_expired_token_exp_in_past(diagnoses: dict[str, Diagnosis]) -> None:
    facts = diagnoses["dovecot-token-expired"].finding("scope.token_expired")["facts"]
    assert facts["exp_in_seconds"] < -3500


def test_user_mismatch_names_other_user(diagnoses: dict[str, Diagnosis]) -> None:
    facts = diagnoses["dovecot-user-mismatch"].finding("scope.user_mismatch")["facts"]
    assert (facts["token_user"], facts["user"]) == ("someone.else@example.com", LAB_USER)


def test_introspection_down_reply(diagnoses: dict[str, Diagnosis]) -> None:
    facts = diagnoses["dovecot-introspection-down"].finding("auth.temporary_failure")["facts"]
    assert (facts["reply_code"], facts["enhanced_code"]) == (454, "4.7.0")


def test_introspection_down_reply_text(diagnoses: dict[str, Diagnosis]) -> None:
    facts = diagnoses["dovecot-introspection-down"].finding("auth.temporary_failure")["facts"]
    assert facts["reply_text"].startswith("4.7.0 Temporary authentication failure. [")


def test_introspection_down_http_status(diagnoses: dict[str, Diagnosis]) -> None:
    facts = diagnoses["dovecot-introspection-down"].finding("scope.introspection_failed")["facts"]
    assert facts["http_status"] == 500


def test_introspection_down_dovecot_log(diagnoses: dict[str, Diagnosis]) -> None:
    log = diagnoses["dovecot-introspection-down"].dovecot_log
    assert "oauth2 failed: Introspection failed: 500 Internal Server Error" in log


# --- written configuration and JSON line ---


@pytest.mark.parametrize("name", DOVECOT_SCENARIOS)
def test_target_names_dovecot(diagnoses: dict[str, Diagnosis], name: str) -> None:
    diagnosis = diagnoses[name]
    target = diagnosis.config["targets"]["lab"]
    assert f"{target['host']}:{target['port']}" == diagnosis.info.dovecot


@pytest.mark.parametrize("name", DOVECOT_SCENARIOS)
def test_target_introspects(diagnoses: dict[str, Diagnosis], name: str) -> None:
    diagnosis = diagnoses[name]
    target = diagnosis.config["targets"]["lab"]
    assert (target["introspect"], target["introspection_endpoint"]) == (
        True,
        diagnosis.info.introspection_endpoint,
    )


@pytest.mark.parametrize("name", DOVECOT_SCENARIOS)
def test_target_tls_mode(diagnoses: dict[str, Diagnosis], name: str) -> None:
    assert diagnoses[name].config["targets"]["lab"]["tls_mode"] == "starttls"


@pytest.mark.parametrize(
    ("name", "token_key"),
    [
        pytest.param("dovecot", "access_token_file", id="file"),
        pytest.param("dovecot-token-expired", "access_token_file", id="expired-file"),
        pytest.param("dovecot-user-mismatch", "access_token_file", id="other-user-file"),
    ],
)
def test_target_token_source(diagnoses: dict[str, Diagnosis], name: str, token_key: str) -> None:
    assert token_key in diagnoses[name].config["targets"]["lab"]


def test_json_line_dovecot_fields(diagnoses: dict[str, Diagnosis]) -> None:
    diagnosis = diagnoses["dovecot"]
    assert (diagnosis.json_line["dovecot"], diagnosis.json_line["dovecot_log_file"]) == (
        diagnosis.info.dovecot,
        str(diagnosis.info.dovecot_log_file),
    )


@pytest.mark.parametrize("name", DOVECOT_SCENARIOS)
def test_dovecot_directory_removed(diagnoses: dict[str, Diagnosis], name: str) -> None:
    log_file = diagnoses[name].info.dovecot_log_file
    assert log_file is not None
    assert log_file.parent.exists() is False


# --- without Dovecot ---


def test_lab_without_dovecot_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runner, "find_dovecot", lambda: None)
    scenario = get_scenario("dovecot")
    with (
        pytest.raises(UsageError, match="dovecot-core and dovecot-submissiond"),
        start_lab(scenario, workdir=tmp_path),
    ):
        pass


def test_lab_without_dovecot_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(runner, "find_dovecot", lambda: None)
    with pytest.raises(UsageError), start_lab(get_scenario("dovecot"), workdir=tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def healthy_and_dovecot(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    subset = {name: SCENARIOS[name] for name in ("healthy", "dovecot")}
    monkeypatch.setattr(demo, "SCENARIOS", subset)
    yield


def test_demo_without_dovecot(healthy_and_dovecot: None) -> None:
    out = io.StringIO()
    code = run_demo(empty_report, lambda name, report: None, out, locate_dovecot=lambda: None)
    assert (code, out.getvalue().splitlines()) == (
        0,
        [
            "healthy: diagnosed as expected",
            f"dovecot: {DOVECOT_MISSING}",
            "1 scenarios, 1 diagnosed as expected",
        ],
    )


def test_missing_line_names_packages() -> None:
    assert "dovecot-core" in DOVECOT_MISSING
    assert "dovecot-submissiond" in DOVECOT_MISSING
