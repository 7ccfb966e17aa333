"""The main job end to end: the CLI against every lab scenario, msmtp against the lab."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest
from scripted_peer import scripted_peer
from system_programs import require_program

from smtpdiag.cli import main
from smtpdiag.lab.logs_demo import LOG_SCENARIOS
from smtpdiag.lab.msmtp_client import send, write_msmtprc
from smtpdiag.lab.runner import LabInfo, start_lab
from smtpdiag.lab.scenarios import SCENARIOS, get_scenario

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "smtpdiag.report-1.schema.json").read_text())
SCENARIO_NAMES = list(SCENARIOS)


@pytest.fixture(scope="module", params=SCENARIO_NAMES)
def lab(request: pytest.FixtureRequest) -> Iterator[LabInfo]:
    scenario = get_scenario(request.param)
    needed = {
        "msmtp": scenario.needs_msmtp,
        "dovecot": scenario.needs_dovecot,
        "postfix": scenario.needs_postfix,
    }
    for program in (name for name, needs in needed.items() if needs):
        require_program(program)
    with start_lab(scenario) as info:
        yield info


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main([*args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def finding_codes(report: dict[str, object]) -> set[str]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return {finding["code"] for check in checks for finding in check["findings"]}


def test_config_target_exit_code(lab: LabInfo, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_json(capsys, "check", "--config", str(lab.config_file), "--target", "lab")
    assert code == expected_exit_code(lab.scenario)


def test_config_target_expected_codes(lab: LabInfo, capsys: pytest.CaptureFixture[str]) -> None:
    _, report = run_json(capsys, "check", "--config", str(lab.config_file), "--target", "lab")
    expected = set(get_scenario(lab.scenario).expected_codes)
    assert expected <= finding_codes(report)


def test_config_target_report_matches_schema(
    lab: LabInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    _, report = run_json(capsys, "check", "--config", str(lab.config_file), "--target", "lab")
    jsonschema.validate(report, SCHEMA)


def expected_exit_code(scenario: str) -> int:
    """Return the exit code a correct diagnosis of ``scenario`` ends with."""
    # A scenario that expects no finding is healthy, and a rotated refresh token and reply
    # lines that end with a bare LF are only information: those runs succeed.
    if not get_scenario(scenario).expected_codes or scenario in {
        "rotating-refresh-token",
        "bare-lf",
    }:
        return 0
    # The two-step AUTH works after the long line is refused, and 454 is temporary: Dovecot
    # replies 454 when its introspection endpoint fails. A refused line is only a warning,
    # so dovecot-token-expired and dovecot-user-mismatch end with 2 because Dovecot rejects
    # the token that the two-step AUTH sent.
    return 1 if scenario in {"line-too-long", "temporary-454", "dovecot-introspection-down"} else 2


# Configuration keys whose command-line option is not --KEY-WITH-DASHES.
_OPTION_NAMES = {
    "mail_from": "--from",
    "rcpt_to": "--to",
    "auth_mechanism": "--mechanism",
    "ntp_servers": "--ntp-server",
    "log_files": "--log-file",
    "msmtp_account": "--account",
}


def command_line_form(lab: LabInfo) -> list[str]:
    """Return the flags-only form of the lab's configuration file: every key as an option."""
    document = tomllib.loads(lab.config_file.read_text())
    values = {**document.get("defaults", {}), **document["targets"]["lab"]}
    arguments = ["check"]
    if "host" in values:  # a relay scenario takes its host from the msmtprc
        arguments.append(f"{values.pop('host')}:{values.pop('port')}")
    for key, value in values.items():
        option = _OPTION_NAMES.get(key, "--" + key.replace("_", "-"))
        if value is True:
            arguments.append(option)
        elif isinstance(value, list):
            for item in value:
                arguments += [option, str(item)]
        else:
            arguments += [option, str(value)]
    return arguments


def test_command_line_form_exit_code(lab: LabInfo, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_json(capsys, *command_line_form(lab))
    jsonschema.validate(report, SCHEMA)
    assert code == expected_exit_code(lab.scenario)


def test_command_line_form_expected_codes(lab: LabInfo, capsys: pytest.CaptureFixture[str]) -> None:
    _, report = run_json(capsys, *command_line_form(lab))
    assert set(get_scenario(lab.scenario).expected_codes) <= finding_codes(report)


def test_untrusted_certificate_fails_handshake(capsys: pytest.CaptureFixture[str]) -> None:
    with start_lab(get_scenario("healthy")) as info:
        code, report = run_json(capsys, "check", info.smtp_starttls, "--tls-mode", "starttls")
    assert code == 2
    assert "tls.untrusted" in finding_codes(report)


def test_insecure_continues_and_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    with start_lab(get_scenario("healthy")) as info:
        code, report = run_json(
            capsys, "check", info.smtp_starttls, "--tls-mode", "starttls", "--insecure"
        )
    # --insecure lets auth go on but changes no severity: the untrusted CA stays critical.
    assert code == 2
    # No NTP server is configured, so the clock check measures against the banner's date.
    assert finding_codes(report) == {
        "tls.untrusted",
        "tls.verification_disabled",
        "clock.ntp_not_configured",
    }


def test_implicit_tls_port_passes_in_implicit_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with start_lab(get_scenario("healthy")) as info:
        code, report = run_json(
            capsys, "check", info.smtps, "--tls-mode", "implicit", "--ca-file", str(info.ca_file)
        )
    assert code == 0
    assert report["checks"][1]["facts"]["auth_mechanisms"] == ["PLAIN", "XOAUTH2", "OAUTHBEARER"]


CANARY = "ya29.canary-Token_0123456789-abcdef"


def canary_forms() -> list[str]:
    encoded = base64.b64encode(CANARY.encode()).decode()
    xoauth2 = base64.b64encode(
        f"user=a@example.com\x01auth=Bearer {CANARY}\x01\x01".encode()
    ).decode()
    return [CANARY, encoded[4:24], quote(CANARY, safe=""), xoauth2[24:48]]


@pytest.mark.parametrize("output_format", ["table", "json", "nagios", "junit"])
def test_canary_token_never_printed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], output_format: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(CANARY + "\n")
    xoauth2 = base64.b64encode(f"user=a@example.com\x01auth=Bearer {CANARY}\x01\x01".encode())
    # A peer that echoes the token in every form in its refusal, as a broken proxy might.
    reply = (
        f"554-5.7.1 token {CANARY} url {quote(CANARY, safe='')}\r\n554 5.7.1 ".encode()
        + xoauth2
        + b"\r\n"
    )
    with scripted_peer([("send", reply)]) as port:
        main(
            [
                "-vv",
                "check",
                f"127.0.0.1:{port}",
                "--access-token-file",
                str(token_file),
                "-f",
                output_format,
            ]
        )
    captured = capfd.readouterr()
    leaked = [form for form in canary_forms() if form in captured.out + captured.err]
    assert leaked == []


def test_lab_command_prints_json_line_and_cleans_up() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "smtpdiag", "lab", "--scenario", "healthy"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        config_exists = Path(info["config_file"]).is_file()
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
    assert config_exists
    assert exit_code == 0
    assert not Path(info["config_file"]).exists()


def test_demo_diagnoses_every_scenario() -> None:
    require_program("msmtp")  # the log scenarios run the real msmtp
    total = len(SCENARIOS) + len(LOG_SCENARIOS) + 1  # and the exporter scenario
    completed = subprocess.run(
        [sys.executable, "-m", "smtpdiag", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    last_line = completed.stdout.strip().splitlines()[-1]
    assert (completed.returncode, last_line) == (
        0,
        f"{total} scenarios, {total} diagnosed as expected",
    )


def send_with_msmtp(tmp_path: Path, info: LabInfo, token_file: Path) -> int:
    config = write_msmtprc(tmp_path, info, token_file=token_file)
    return send(config, require_program("msmtp")).returncode


def test_msmtp_sends_through_lab_with_xoauth2(tmp_path: Path) -> None:
    with start_lab(get_scenario("healthy")) as info:
        exit_code = send_with_msmtp(tmp_path, info, info.access_token_file)
    assert exit_code == 0


def test_msmtp_wrong_token_exits_noperm(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-token"
    wrong.write_text("ya29.not-the-lab-token\n")
    with start_lab(get_scenario("healthy")) as info:
        exit_code = send_with_msmtp(tmp_path, info, wrong)
    log = (tmp_path / "msmtp.log").read_text()
    assert exit_code == 77  # EX_NOPERM: msmtp's exit code for an AUTH failure
    assert "exitcode=EX_NOPERM" in log
