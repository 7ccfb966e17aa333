"""msmtp_config check against the real msmtp: each configuration mistake makes msmtp fail
against the lab, and the check names the mistake in the same file."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from system_programs import require_program

from checks import msmtp_config
from smtpdiag.context import CheckContext, MsmtpSettings, Settings, Target, TlsMode
from smtpdiag.lab.msmtp_client import TEST_MESSAGE
from smtpdiag.lab.options import ServerOptions
from smtpdiag.lab.runner import LabInfo, start_lab
from smtpdiag.lab.scenarios import SCENARIOS
from smtpdiag.models import CheckResult

pytestmark = pytest.mark.lab

MSMTP_TIMEOUT_SECONDS = 2
"""``timeout`` written into each msmtprc: loopback peers reply at once or never."""


@dataclass(frozen=True)
class MsmtpRun:
    """Exit status and standard error of one real msmtp run."""

    exit_status: int
    stderr: str


@pytest.fixture(scope="module")
def lab() -> Iterator[LabInfo]:
    """Run a lab whose servers offer only XOAUTH2 and OAUTHBEARER after TLS, as a provider
    that rejects passwords does. The healthy lab also accepts the token through PLAIN."""
    scenario = dataclasses.replace(
        SCENARIOS["healthy"], server=ServerOptions(auth_mechanisms=("XOAUTH2", "OAUTHBEARER"))
    )
    with start_lab(scenario) as info:
        yield info


def msmtprc(
    info: LabInfo,
    directory: Path,
    *,
    implicit: bool = False,
    extra: str = "",
    without: tuple[str, ...] = (),
) -> str:
    """Return an msmtprc for the lab (STARTTLS server, or implicit TLS) with ``extra`` lines
    appended to the account and the lines of the commands in ``without`` left out,
    modelled on smtpdiag.lab.msmtp_client.write_msmtprc."""
    host, port = (info.smtps if implicit else info.smtp_starttls).rsplit(":", 1)
    lines = [
        "defaults",
        "tls on",
        f"tls_trust_file {info.ca_file}",
        f"timeout {MSMTP_TIMEOUT_SECONDS}",
        f"logfile {directory / 'msmtp.log'}",
        "account lab",
        f"host {host}",
        f"port {port}",
        "auth xoauth2",
        f"user {info.user}",
        f"from {info.user}",
        f"passwordeval cat {info.access_token_file}",
    ]
    lines = [line for line in lines if line.split(" ", 1)[0] not in without]
    return "\n".join(lines) + "\n" + extra + "account default : lab\n"


def write(directory: Path, text: str, name: str = "msmtprc") -> Path:
    path = directory / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def send(config: Path) -> MsmtpRun:
    """Send the lab's test message with the real msmtp, as msmtpd does (no -a)."""
    completed = subprocess.run(
        [require_program("msmtp"), "-C", str(config), "rcpt@example.com"],
        input=TEST_MESSAGE,
        capture_output=True,
        text=True,
        timeout=MSMTP_TIMEOUT_SECONDS + 10,
        check=False,
        env={**os.environ, "HOME": str(config.parent)},
    )
    return MsmtpRun(completed.returncode, completed.stderr)


def check(config: Path) -> CheckResult:
    target = Target(
        host="",
        port=0,
        tls_mode=TlsMode.STARTTLS,
        msmtp=MsmtpSettings(config_file=str(config), program=require_program("msmtp")),
    )
    return msmtp_config.run(target, CheckContext(settings=Settings(timeout=5.0)))


def codes(result: CheckResult) -> list[str]:
    return [finding.code for finding in result.findings]


def test_correct_file_sends(lab: LabInfo, tmp_path: Path) -> None:
    run = send(write(tmp_path, msmtprc(lab, tmp_path)))
    assert (run.exit_status, run.stderr) == (0, "")


def test_correct_file_no_findings(lab: LabInfo, tmp_path: Path) -> None:
    assert codes(check(write(tmp_path, msmtprc(lab, tmp_path)))) == []


def test_auth_on_after_xoauth2_fails(lab: LabInfo, tmp_path: Path) -> None:
    run = send(write(tmp_path, msmtprc(lab, tmp_path, extra="auth on\n")))
    assert run.exit_status == 69  # EX_UNAVAILABLE
    assert "cannot find a usable authentication method" in run.stderr


def test_auth_on_after_xoauth2_named(lab: LabInfo, tmp_path: Path) -> None:
    result = check(write(tmp_path, msmtprc(lab, tmp_path, extra="auth on\n")))
    assert codes(result) == ["msmtp_config.auth_overridden"]
    assert result.findings[0].evidence == (
        f"{tmp_path / 'msmtprc'}:9: auth xoauth2",
        f"{tmp_path / 'msmtprc'}:13: auth on",
    )


def test_starttls_on_implicit_port_fails(lab: LabInfo, tmp_path: Path) -> None:
    text = msmtprc(lab, tmp_path, implicit=True, extra="tls_starttls on\n")
    run = send(write(tmp_path, text))
    assert run.exit_status == 74  # EX_IOERR
    assert "network read error: the operation timed out" in run.stderr


def test_starttls_on_implicit_port_named(lab: LabInfo, tmp_path: Path) -> None:
    # The lab's implicit TLS server listens on a port chosen by the OS, while the check
    # recognises the implicit TLS port by its number, so the checked file names port 465.
    text = msmtprc(lab, tmp_path, implicit=True, extra="tls_starttls on\n")
    text = text.replace(f"port {lab.smtps.rsplit(':', 1)[1]}\n", "port 465\n")
    assert codes(check(write(tmp_path, text))) == ["msmtp_config.starttls_on_implicit_port"]


def test_passwordeval_not_executable_fails(lab: LabInfo, tmp_path: Path) -> None:
    script = tmp_path / "token.sh"
    script.write_text(f"#!/bin/sh\ncat {lab.access_token_file}\n")
    script.chmod(0o644)
    text = msmtprc(lab, tmp_path, extra=f"passwordeval {script}\n")
    run = send(write(tmp_path, text))
    assert run.exit_status == 78  # EX_CONFIG
    assert f"cannot read output of '{script}'" in run.stderr


def test_passwordeval_not_executable_named(lab: LabInfo, tmp_path: Path) -> None:
    script = tmp_path / "token.sh"
    script.write_text(f"#!/bin/sh\ncat {lab.access_token_file}\n")
    script.chmod(0o644)
    result = check(write(tmp_path, msmtprc(lab, tmp_path, extra=f"passwordeval {script}\n")))
    assert codes(result) == ["msmtp_config.passwordeval_not_executable"]


def long_token(info: LabInfo) -> str:
    """The lab's access token, padded past msmtp's line limit as a long JWT would be."""
    return info.access_token_file.read_text().strip() + "x" * 520


def test_token_password_over_500_rejected(lab: LabInfo, tmp_path: Path) -> None:
    text = msmtprc(lab, tmp_path, extra=f"password {long_token(lab)}\n")
    run = send(write(tmp_path, text))
    assert run.exit_status == 78  # EX_CONFIG
    assert "line longer than 500 characters" in run.stderr


def test_token_password_over_500_named(lab: LabInfo, tmp_path: Path) -> None:
    text = msmtprc(lab, tmp_path, extra=f"password {long_token(lab)}\n")
    result = check(write(tmp_path, text))
    assert sorted(codes(result)) == [
        "msmtp_config.rejected_by_msmtp",
        "msmtp_config.token_in_password",
    ]
    assert all(finding.severity.value == "critical" for finding in result.findings)


def test_token_password_never_shown(lab: LabInfo, tmp_path: Path) -> None:
    token = long_token(lab)
    result = check(write(tmp_path, msmtprc(lab, tmp_path, extra=f"password {token}\n")))
    assert token[:60] not in repr(result.to_dict())


@dataclass(frozen=True)
class Trap:
    """A mistake msmtp finds only when it sends: how to write it, how msmtp fails, and the
    finding that names it."""

    extra: str = ""
    without: tuple[str, ...] = ()
    script: str | None = None
    """Text of a passwordeval script written next to the msmtprc; ``{token}`` is the lab's
    token file and ``{script}`` the script's path in ``extra``."""
    exit_status: int = 0
    message: str = ""
    code: str | None = None


TRAPS = [
    pytest.param(
        Trap(
            without=("user",),
            exit_status=69,  # EX_UNAVAILABLE
            message="authentication method XOAUTH2 needs a user name",
            code="msmtp_config.user_missing",
        ),
        id="user-missing",
    ),
    pytest.param(
        Trap(
            without=("passwordeval",),
            exit_status=69,
            message="authentication method XOAUTH2 needs a password",
            code="msmtp_config.password_missing",
        ),
        id="password-missing",
    ),
    pytest.param(
        Trap(
            extra="tls_trust_file /nonexistent/ca.pem\n",
            exit_status=66,  # EX_NOINPUT
            message="cannot set X509 trust file /nonexistent/ca.pem for TLS session",
            code="msmtp_config.trust_file_missing",
        ),
        id="trust-file-missing",
    ),
    pytest.param(
        Trap(
            extra='from "Lab <{user}>"\n',
            exit_status=65,  # EX_DATAERR
            message="envelope from address Lab <{user}> not accepted by the server",
            code="msmtp_config.from_not_address",
        ),
        id="from-display-name",
    ),
    pytest.param(
        Trap(
            extra="host {host} # lab\n",
            exit_status=68,  # EX_NOHOST
            message="cannot locate host {host} # lab",
            code="msmtp_config.inline_comment",
        ),
        id="comment-after-host",
    ),
    pytest.param(
        Trap(
            extra="passwordeval {script}\n",
            script="#!/bin/sh\r\ncat {token}\r\n",
            exit_status=78,  # EX_CONFIG
            message="sh: 1: {script}: not found",
            code="msmtp_config.passwordeval_script_crlf",
        ),
        id="script-crlf",
    ),
    pytest.param(
        Trap(
            extra="passwordeval {script}\n",
            script="#!/usr/bin/env python9\nprint(1)\n",
            exit_status=78,
            message="python9",
            code="msmtp_config.passwordeval_not_found",
        ),
        id="env-interpreter-missing",
    ),
    pytest.param(
        Trap(extra="passwordeval cd {token_dir} && cat {token_name}\n"),
        id="cd-builtin-sends",
    ),
]


def write_trap(info: LabInfo, directory: Path, trap: Trap) -> tuple[Path, dict[str, str]]:
    """Write the msmtprc (and script) of ``trap``; return it and the values of its fields."""
    script = directory / "token-script"
    values = {
        "user": info.user,
        "host": info.smtp_starttls.rsplit(":", 1)[0],
        "token": str(info.access_token_file),
        "token_dir": str(info.access_token_file.parent),
        "token_name": info.access_token_file.name,
        "script": str(script),
    }
    if trap.script is not None:
        script.write_bytes(trap.script.format(**values).encode())
        script.chmod(0o700)
    extra = trap.extra.format(**values)
    return write(directory, msmtprc(info, directory, extra=extra, without=trap.without)), values


@pytest.mark.parametrize("trap", TRAPS)
def test_trap_exit_status(lab: LabInfo, tmp_path: Path, trap: Trap) -> None:
    config, _ = write_trap(lab, tmp_path, trap)
    assert send(config).exit_status == trap.exit_status


@pytest.mark.parametrize("trap", TRAPS)
def test_trap_message(lab: LabInfo, tmp_path: Path, trap: Trap) -> None:
    config, values = write_trap(lab, tmp_path, trap)
    assert trap.message.format(**values) in send(config).stderr


@pytest.mark.parametrize("trap", TRAPS)
def test_trap_named(lab: LabInfo, tmp_path: Path, trap: Trap) -> None:
    config, _ = write_trap(lab, tmp_path, trap)
    assert codes(check(config)) == ([trap.code] if trap.code else [])
