"""Lab runner: the written configuration, the JSON line, clean-up and ``serve`` in a subprocess."""

from __future__ import annotations

import base64
import json
import os
import signal
import smtplib
import socket
import ssl
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import ntplib
import pytest

from smtpdiag.config import Loaded, load
from smtpdiag.context import TlsMode
from smtpdiag.lab.runner import LAB_USER, LabInfo, start_lab
from smtpdiag.lab.scenarios import SCENARIOS, AccessTokenState, Scenario

REPOSITORY = Path(__file__).resolve().parents[2]

JSON_KEYS = {
    "scenario",
    "config_file",
    "smtp_starttls",
    "smtps",
    "ca_file",
    "user",
    "access_token_file",
    "token_endpoint",
    "tokeninfo_endpoint",
    "introspection_endpoint",
    "client_id",
    "client_secret_file",
    "refresh_token_file",
    "ntp",
}


@pytest.fixture(scope="module")
def lab_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("labs")


@pytest.fixture(scope="module")
def healthy_lab(lab_parent: Path) -> Iterator[LabInfo]:
    with start_lab(SCENARIOS["healthy"], workdir=lab_parent) as info:
        yield info


@pytest.fixture(scope="module")
def healthy_config(healthy_lab: LabInfo) -> Loaded:
    return load({}, config_path=str(healthy_lab.config_file), target_name="lab", environ={})


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("host", "127.0.0.1"),
        ("tls_mode", TlsMode.STARTTLS),
        ("user", LAB_USER),
        ("name", "lab"),
    ],
)
def test_config_target_field(healthy_config: Loaded, field: str, expected: object) -> None:
    assert getattr(healthy_config.target, field) == expected


def test_config_port_is_starttls_server(healthy_lab: LabInfo, healthy_config: Loaded) -> None:
    assert healthy_config.target.port == port_of(healthy_lab.smtp_starttls)


def test_config_ca_file(healthy_lab: LabInfo, healthy_config: Loaded) -> None:
    assert healthy_config.target.ca_file == str(healthy_lab.ca_file)


def test_config_token_is_file_content(healthy_lab: LabInfo, healthy_config: Loaded) -> None:
    token = healthy_config.target.access_token
    assert token is not None
    assert token.reveal() == healthy_lab.access_token_file.read_text().strip()


def test_config_timeout(healthy_config: Loaded) -> None:
    assert healthy_config.settings.timeout == 5.0


def test_config_token_authenticates(healthy_config: Loaded) -> None:
    target = healthy_config.target
    assert target.ca_file is not None
    assert target.user is not None
    assert target.access_token is not None
    context = ssl.create_default_context(cafile=target.ca_file)
    response = f"user={target.user}\x01auth=Bearer {target.access_token.reveal()}\x01\x01"
    with smtplib.SMTP(target.host, target.port, timeout=5) as client:
        client.starttls(context=context)
        client.ehlo()
        code, _ = client.docmd("AUTH", "XOAUTH2 " + base64.b64encode(response.encode()).decode())
    assert code == 235


def test_smtps_address_speaks_implicit_tls(healthy_lab: LabInfo) -> None:
    context = ssl.create_default_context(cafile=str(healthy_lab.ca_file))
    with smtplib.SMTP_SSL(
        "127.0.0.1", port_of(healthy_lab.smtps), timeout=5, context=context
    ) as client:
        code, _ = client.ehlo()
    assert code == 250


def test_token_file_is_private(healthy_lab: LabInfo) -> None:
    assert stat.S_IMODE(healthy_lab.access_token_file.stat().st_mode) == 0o600


def test_lab_directory_inside_workdir(healthy_lab: LabInfo, lab_parent: Path) -> None:
    assert healthy_lab.config_file.parent.parent == lab_parent


def test_json_line_keys(healthy_lab: LabInfo) -> None:
    assert set(json.loads(healthy_lab.to_json_line())) == JSON_KEYS


def test_json_line_dovecot_keys(healthy_lab: LabInfo) -> None:
    info = replace(healthy_lab, dovecot="127.0.0.1:2587", dovecot_log_file=Path("/d/dovecot.log"))
    keys = set(json.loads(info.to_json_line()))
    assert keys == JSON_KEYS | {"dovecot", "dovecot_log_file"}


def test_healthy_lab_has_no_dovecot(healthy_lab: LabInfo) -> None:
    assert (healthy_lab.dovecot, healthy_lab.dovecot_log_file) == (None, None)


def test_expired_token_file_holds_expired_jwt(lab_parent: Path) -> None:
    # The token file alone, without Dovecot.
    scenario = Scenario(name="expired-file", description="x", access_token=AccessTokenState.EXPIRED)
    with start_lab(scenario, workdir=lab_parent) as info:
        token = info.access_token_file.read_text().strip()
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert (claims["upn"], claims["exp"] < time.time() - 3500) == (LAB_USER, True)


def test_json_line_is_one_line(healthy_lab: LabInfo) -> None:
    assert "\n" not in healthy_lab.to_json_line()


def test_json_line_omits_token(healthy_lab: LabInfo) -> None:
    token = healthy_lab.access_token_file.read_text().strip()
    assert token not in healthy_lab.to_json_line()


def test_token_endpoint_runs_in_every_lab(healthy_lab: LabInfo) -> None:
    endpoint = healthy_lab.token_endpoint
    assert endpoint.startswith("https://127.0.0.1:")
    assert endpoint.endswith("/token")


@pytest.mark.parametrize("attribute", ["client_secret_file", "refresh_token_file"])
def test_secret_files_are_private(healthy_lab: LabInfo, attribute: str) -> None:
    path: Path = getattr(healthy_lab, attribute)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_json_line_names_ntp_responder(healthy_lab: LabInfo) -> None:
    ntp = json.loads(healthy_lab.to_json_line())["ntp"]
    assert ntp == f"127.0.0.1:{healthy_lab.ntp_port}"
    assert healthy_lab.ntp_port > 0


@pytest.mark.parametrize(
    "name", ["healthy", "greeting-421", "cert-expired", "token-healthy", "ntp-unreachable"]
)
def test_config_names_ntp_responder(lab_parent: Path, name: str) -> None:
    with start_lab(SCENARIOS[name], workdir=lab_parent) as info:
        document = tomllib.loads(info.config_file.read_text(encoding="utf-8"))
    assert document["defaults"]["ntp_servers"] == ["127.0.0.1"]
    assert document["defaults"]["ntp_port"] == info.ntp_port


def test_ntp_responder_answers_at_config_port(healthy_lab: LabInfo) -> None:
    document = tomllib.loads(healthy_lab.config_file.read_text(encoding="utf-8"))
    stats = ntplib.NTPClient().request(
        document["defaults"]["ntp_servers"][0],
        version=4,
        port=document["defaults"]["ntp_port"],
        timeout=5,
    )
    assert abs(stats.offset) < 0.05


def test_loaded_config_ntp_settings(healthy_lab: LabInfo, healthy_config: Loaded) -> None:
    assert healthy_config.settings.ntp_servers == ("127.0.0.1",)
    assert healthy_config.settings.ntp_port == healthy_lab.ntp_port


def test_ntp_responder_stopped_after_exit(lab_parent: Path) -> None:
    with start_lab(SCENARIOS["healthy"], workdir=lab_parent) as info:
        port = info.ntp_port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.connect(("127.0.0.1", port))
        client.send(bytes([0x23]) + bytes(47))
        with pytest.raises(ConnectionRefusedError):
            client.recv(1024)


def test_token_endpoint_stopped_after_exit(lab_parent: Path) -> None:
    with start_lab(SCENARIOS["healthy"], workdir=lab_parent) as info:
        port = port_of(info.token_endpoint.removesuffix("/token").removeprefix("https://"))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_implicit_tls_only_points_at_smtps(lab_parent: Path) -> None:
    with start_lab(SCENARIOS["implicit-tls-only"], workdir=lab_parent) as info:
        loaded = load({}, config_path=str(info.config_file), target_name="lab", environ={})
        expected_port = port_of(info.smtps)
    assert (loaded.target.port, loaded.target.tls_mode) == (expected_port, TlsMode.STARTTLS)


def test_directory_removed_after_exit(lab_parent: Path) -> None:
    with start_lab(SCENARIOS["greeting-421"], workdir=lab_parent) as info:
        directory = info.config_file.parent
    assert not directory.exists()


def test_server_stopped_after_exit(lab_parent: Path) -> None:
    with start_lab(SCENARIOS["healthy"], workdir=lab_parent) as info:
        port = port_of(info.smtp_starttls)
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", port, timeout=5)


@pytest.fixture
def served_lab(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """``serve('healthy', sys.stdout)`` in a child Python, temporary files under ``tmp_path``."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "TMPDIR": str(tmp_path)}
    code = (
        "import sys; from smtpdiag.lab.runner import serve; sys.exit(serve('healthy', sys.stdout))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def test_serve_prints_line_then_stops_on_sigterm(served_lab: subprocess.Popen[str]) -> None:
    assert served_lab.stdout is not None
    info = json.loads(served_lab.stdout.readline())
    config_file = Path(info["config_file"])
    existed_while_running = config_file.is_file()

    served_lab.send_signal(signal.SIGTERM)
    returncode = served_lab.wait(timeout=10)

    assert existed_while_running
    assert returncode == 0
    assert not config_file.parent.exists()


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGHUP], ids=["sigint", "sighup"])
def test_serve_stops_and_cleans_up_on_signal(
    served_lab: subprocess.Popen[str], number: signal.Signals
) -> None:
    assert served_lab.stdout is not None
    config_file = Path(json.loads(served_lab.stdout.readline())["config_file"])
    served_lab.send_signal(number)
    assert served_lab.wait(timeout=10) == 0
    assert not config_file.parent.exists()


SIGNAL_IN_WORKER_THREAD = """
import signal, sys, threading, time
from smtpdiag.lab.runner import serve

def signal_from_worker():
    time.sleep(1.0)
    # The signal goes to this thread, not the main thread, as the kernel may choose for a
    # kill(2) to the process while the main thread waits.
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

threading.Thread(target=signal_from_worker, daemon=True).start()
sys.exit(serve("healthy", sys.stdout))
"""


def test_signal_to_worker_thread_stops_lab(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "TMPDIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-c", SIGNAL_IN_WORKER_THREAD],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment,
    )
    try:
        assert process.stdout is not None
        config_file = Path(json.loads(process.stdout.readline())["config_file"])
        returncode = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()
    assert returncode == 0
    assert not config_file.parent.exists()
