"""The running exporter against lab servers: a scrape that promtool accepts, a lab that turns
failing behind an unchanged configuration, log lines appended while it runs, and labels.

A small TCP relay sits between the exporter and two lab servers that share one certificate
authority and one account: one accepts the token, the other rejects every token like Gmail.
Switching the relay's upstream switches the "lab" the target reaches without touching the
exporter's configuration.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from system_programs import require_program

import checks
from exporters.service import ExporterService
from smtpdiag.lab.certs import write_certificates
from smtpdiag.lab.lab_account import LabAccount
from smtpdiag.lab.scenarios import get_scenario
from smtpdiag.lab.smtp_server import LabServer
from smtpdiag.secrets import Secret

SPECS = tuple(spec for spec in checks.REGISTRY if spec.id != "auth_failure_rate")
USER = "lab.user@example.com"
TOKEN = "ya29.exporter-lab-" + "x" * 40
INTERVAL = 1.0
"""Seconds between runs of the auth job."""
WAIT = 15.0
"""Bound for a state to appear; reaching it is the assertion, never the time it took."""

MSMTP_SUCCESS = (
    "Dec 05 00:39:28 host=smtp.gmail.com tls=on auth=on user=lab.user@example.com "
    "from=lab.user@example.com recipients=rcpt@example.com mailsize=147 smtpstatus=250 "
    "smtpmsg='250 2.0.0 OK' exitcode=EX_OK\n"
)
MSMTP_FAILURE = (
    "Dec 05 00:39:29 host=smtp.gmail.com tls=on auth=on user=lab.user@example.com "
    "from=lab.user@example.com recipients=rcpt@example.com smtpstatus=535 "
    "smtpmsg='535-5.7.8 Username and Password not accepted. For more information, go to\\n"
    "535 5.7.8  https://support.google.com/mail/?p=BadCredentials' "
    "errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM\n"
)


class SwitchingRelay:
    """TCP relay on 127.0.0.1 whose upstream port can change between connections."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with source, sink:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@dataclass
class Running:
    service: ExporterService
    relay: SwitchingRelay
    failing_port: int
    log_file: Path

    def scrape(self) -> str:
        assert self.service.server is not None
        with urllib.request.urlopen(self.service.server.url + "/metrics", timeout=20) as answer:
            return str(answer.read().decode("utf-8"))


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == name and item.labels == labels:
                return float(item.value)
    return None


def wait_for(running: Running, name: str, value: float, **labels: str) -> float | None:
    deadline = time.monotonic() + WAIT
    current = sample(running.scrape(), name, **labels)
    while current != value and time.monotonic() < deadline:
        time.sleep(0.1)
        current = sample(running.scrape(), name, **labels)
    return current


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    (tmp_path / "certs").mkdir()
    certificates = write_certificates(tmp_path / "certs")
    token_file = tmp_path / "access-token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    account = LabAccount(USER, Secret(TOKEN, "test"))
    log_file = tmp_path / "msmtp.log"
    log_file.touch()
    healthy = LabServer(get_scenario("healthy").server, account, certificates, implicit_tls=False)
    failing = LabServer(
        get_scenario("google-bad-token").server, account, certificates, implicit_tls=False
    )
    with healthy, failing:
        relay = SwitchingRelay(healthy.port)
        config = tmp_path / "exporter.toml"
        config.write_text(
            f"""
[targets.mail]
host = "127.0.0.1"
port = {relay.port}
tls_mode = "starttls"
ca_file = "{certificates.ca_file}"
user = "{USER}"
access_token_file = "{token_file}"
provider = "google"
timeout = 5

[exporter]
jobs = ["connect", "tls", "token", "auth"]
jitter = 0.1
log_files = ["{log_file}"]

[exporter.intervals]
connect = {INTERVAL}
tls = 60
token = 60
auth = {INTERVAL}
""",
            encoding="utf-8",
        )
        service = ExporterService(str(config), SPECS, listen="127.0.0.1:0", tick=0.05)
        service.start()
        thread = threading.Thread(target=service.serve)
        thread.start()
        try:
            yield Running(service, relay, failing.port, log_file)
        finally:
            service.request_stop()
            thread.join(30)
            relay.close()


@pytest.mark.lab
def test_auth_ok_against_healthy_lab(running: Running) -> None:
    assert wait_for(running, "smtpdiag_check_status", 0, check="auth", target="mail") == 0


@pytest.mark.lab
def test_switch_to_failing_lab_turns_auth_critical(running: Running) -> None:
    wait_for(running, "smtpdiag_check_status", 0, check="auth", target="mail")
    switched_at = time.time()
    running.relay.upstream = running.failing_port
    status = wait_for(running, "smtpdiag_check_status", 2, check="auth", target="mail")
    last_run = sample(
        running.scrape(), "smtpdiag_check_last_run_timestamp_seconds", check="auth", target="mail"
    )
    assert status == 2
    assert last_run is not None
    # The first run after the switch already reported it: one interval plus jitter and the
    # run itself, not a later run.
    assert last_run - switched_at < INTERVAL * 1.1 + 5


@pytest.mark.lab
def test_failing_lab_names_the_reason(running: Running) -> None:
    running.relay.upstream = running.failing_port
    value = wait_for(
        running, "smtpdiag_check_finding", 1, check="auth", reason="token_rejected", target="mail"
    )
    assert value == 1


@pytest.mark.lab
def test_real_scrape_passes_promtool(running: Running, tmp_path: Path) -> None:
    promtool = require_program("promtool")
    wait_for(running, "smtpdiag_check_status", 0, check="auth", target="mail")
    running.log_file.write_text(MSMTP_SUCCESS + MSMTP_FAILURE, encoding="utf-8")
    wait_for(running, "smtpdiag_auth_attempts_total", 2, provider="google", source="msmtp")
    completed = subprocess.run(
        [promtool, "check", "metrics"],
        input=running.scrape(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (completed.returncode, completed.stdout + completed.stderr) == (0, "")


@pytest.mark.lab
def test_appended_lines_counted_exactly(running: Running) -> None:
    with running.log_file.open("a", encoding="utf-8") as stream:
        for index in range(100):
            stream.write(MSMTP_FAILURE if index % 10 == 0 else MSMTP_SUCCESS)
    attempts = wait_for(
        running, "smtpdiag_auth_attempts_total", 100, provider="google", source="msmtp"
    )
    failures = sample(
        running.scrape(),
        "smtpdiag_auth_failures_total",
        provider="google",
        reason="credentials_rejected",
        source="msmtp",
    )
    assert attempts == 100
    assert failures == 10


@pytest.mark.lab
def test_rotation_loses_no_line(running: Running) -> None:
    running.log_file.write_text(MSMTP_SUCCESS * 30, encoding="utf-8")
    wait_for(running, "smtpdiag_auth_attempts_total", 30, provider="google", source="msmtp")
    with running.log_file.open("a", encoding="utf-8") as stream:
        stream.write(MSMTP_FAILURE * 5)  # written just before the rename
    running.log_file.rename(running.log_file.with_name("msmtp.log.1"))
    running.log_file.write_text(MSMTP_SUCCESS * 7, encoding="utf-8")
    attempts = wait_for(
        running, "smtpdiag_auth_attempts_total", 42, provider="google", source="msmtp"
    )
    assert attempts == 42


_ADDRESS = re.compile(r"@|\d{1,3}(?:\.\d{1,3}){3}|::1")
_TOKEN_LIKE = re.compile(r"ya29|eyJ|[A-Za-z0-9+/=-]{32,}")
"""Token prefixes, or a long run of base64 characters; reason names use underscores."""


@pytest.mark.lab
def test_labels_carry_no_user_address_or_token(running: Running) -> None:
    running.relay.upstream = running.failing_port
    wait_for(running, "smtpdiag_check_status", 2, check="auth", target="mail")
    running.log_file.write_text(MSMTP_SUCCESS + MSMTP_FAILURE, encoding="utf-8")
    wait_for(running, "smtpdiag_auth_attempts_total", 2, provider="google", source="msmtp")
    values = {
        value
        for family in text_string_to_metric_families(running.scrape())
        for item in family.samples
        for value in item.labels.values()
    }
    suspicious = sorted(
        value
        for value in values
        if _ADDRESS.search(value) or _TOKEN_LIKE.search(value) or " " in value
    )
    assert suspicious == []
