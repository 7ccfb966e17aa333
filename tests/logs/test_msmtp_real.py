"""The real msmtp binary writes log lines against the lab, and the line parser counts them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from system_programs import require_program

from smtpdiag.lab.msmtp_client import send, write_msmtprc
from smtpdiag.lab.runner import start_lab
from smtpdiag.lab.scenarios import get_scenario
from smtpdiag.logs.dispatch import LineParser
from smtpdiag.logs.keywords import CANDIDATE
from smtpdiag.logs.model import LogEvent, Outcome
from smtpdiag.logs.timestamps import TimeReader

pytestmark = pytest.mark.lab


@dataclass(frozen=True)
class MsmtpRun:
    """Exit status and log lines of one msmtp run against a lab scenario."""

    exit_status: int
    lines: tuple[str, ...]


def run_msmtp(tmp_path: Path, scenario: str, time_format: str | None = None) -> MsmtpRun:
    """Send one message with msmtp (XOAUTH2, STARTTLS) and return its log file's lines."""
    log_file = tmp_path / "msmtp.log"
    with start_lab(get_scenario(scenario)) as info:
        config = write_msmtprc(tmp_path, info, logfile=log_file, time_format=time_format)
        completed = send(config, require_program("msmtp"))
    return MsmtpRun(completed.returncode, tuple(log_file.read_text().splitlines()))


def events(run: MsmtpRun, time_format: str | None = "%b %d %H:%M:%S") -> list[LogEvent]:
    line_parser = LineParser(TimeReader(), time_format)
    return [event for line in run.lines for event in line_parser.parse(line).events]


@pytest.mark.parametrize(
    ("scenario", "exit_status", "outcome", "reason"),
    [
        pytest.param("healthy", 0, Outcome.SUCCESS, None, id="healthy"),
        pytest.param(
            "google-bad-token", 77, Outcome.FAILURE, "auth.credentials_rejected", id="google"
        ),
        pytest.param(
            "microsoft-auth-disabled",
            77,
            Outcome.FAILURE,
            "auth.smtp_auth_disabled_tenant",
            id="microsoft-auth-disabled",
        ),
        pytest.param("cert-expired", 69, Outcome.FAILURE, "tls.cert_expired", id="cert-expired"),
        pytest.param(
            "wrong-hostname", 69, Outcome.FAILURE, "tls.hostname_mismatch", id="wrong-hostname"
        ),
    ],
)
def test_real_msmtp_log_is_counted(
    tmp_path: Path, scenario: str, exit_status: int, outcome: Outcome, reason: str | None
) -> None:
    run = run_msmtp(tmp_path, scenario)
    found = events(run)
    assert run.exit_status == exit_status
    assert [(event.outcome, event.reason) for event in found] == [(outcome, reason)]
    assert found[0].host == "127.0.0.1"
    assert found[0].timestamp is not None


def test_real_msmtp_rejection_carries_reply(tmp_path: Path) -> None:
    event = events(run_msmtp(tmp_path, "google-bad-token"))[0]
    assert (event.reply_code, event.enhanced_code, event.mechanism) == (535, "5.7.8", "XOAUTH2")


def test_real_msmtp_lines_are_candidates(tmp_path: Path) -> None:
    run = run_msmtp(tmp_path, "google-bad-token")
    assert run.lines
    assert all(CANDIDATE.search(line.encode()) for line in run.lines)


def test_real_msmtp_time_format_none_is_literal(tmp_path: Path) -> None:
    # msmtp 1.8.23 has no setting that drops the time: "none" is a strftime format too.
    run = run_msmtp(tmp_path, "google-bad-token", time_format="none")
    found = events(run, time_format="none")
    assert run.lines[0].startswith("none host=")
    assert [(event.outcome, event.timestamp) for event in found] == [(Outcome.FAILURE, None)]


def test_real_msmtp_stderr_record(tmp_path: Path) -> None:
    # A directory in place of the log file makes msmtp print the record to stderr.
    (tmp_path / "msmtp.log").mkdir()
    with start_lab(get_scenario("google-bad-token")) as info:
        completed = send(write_msmtprc(tmp_path, info), require_program("msmtp"))
    line_parser = LineParser(TimeReader(), None)
    found = [
        event for line in completed.stderr.splitlines() for event in line_parser.parse(line).events
    ]
    assert [(event.outcome, event.reason) for event in found] == [
        (Outcome.FAILURE, "auth.credentials_rejected")
    ]


def test_real_msmtp_custom_time_format(tmp_path: Path) -> None:
    run = run_msmtp(tmp_path, "healthy", time_format="%Y-%m-%d %H:%M:%S")
    found = events(run, time_format="%Y-%m-%d %H:%M:%S")
    assert [event.outcome for event in found] == [Outcome.SUCCESS]
    assert found[0].timestamp is not None
