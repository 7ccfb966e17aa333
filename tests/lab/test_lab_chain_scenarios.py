"""Chain scenarios in the lab: ``smtpdiag lab --scenario chain-...``, its JSON line and target.

One served lab of ``chain-refresh-revoked`` runs for the module; tests/test_real_chain.py
diagnoses every chain scenario.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from system_programs import require_program

from smtpdiag.errors import UsageError
from smtpdiag.lab import runner
from smtpdiag.lab.runner import LAB_USER, LabInfo, start_lab
from smtpdiag.lab.scenarios import CHAIN_MESSAGES, get_scenario

REPOSITORY = Path(__file__).resolve().parents[2]
SCENARIO = "chain-refresh-revoked"
STOP_TIMEOUT_SECONDS = 30
"""Time the served lab gets to stop Postfix, Dovecot and the relay after SIGINT."""

CHAIN_KEYS = {
    "relay",
    "msmtprc",
    "relay_log_file",
    "msmtp_log_file",
    "dovecot",
    "dovecot_log_file",
    "postfix",
    "postfix_config_dir",
    "postfix_log_file",
    "token_script",
    "messages_sent",
    "delivered",
}
TARGET_KEYS = {
    "msmtprc",
    "relay",
    "postfix_config_dir",
    "log_files",
    "introspect",
    "introspection_endpoint",
    "token_ca_file",
}


@dataclass(frozen=True)
class ServedChain:
    """The served lab's JSON line and configuration, read while it ran, and how it stopped."""

    line: dict[str, Any]
    config: dict[str, Any]
    postfix_greeting: bytes
    relay_greeting: bytes
    running_after_line: bool
    exit_code: int
    processes_after_stop: tuple[str, ...]


def greeting(address: str) -> bytes:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        return connection.recv(512)


def processes_using(directories: list[str]) -> tuple[str, ...]:
    """Return the command lines of running processes that name one of ``directories``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(directory in command for directory in directories):
            found.append(command)
    return tuple(found)


def stop(process: subprocess.Popen[str]) -> int:
    """Stop the served lab with SIGINT, as Ctrl-C does; SIGKILL only when it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=STOP_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def served() -> Iterator[ServedChain]:
    for program in ("postfix", "msmtp", "dovecot"):
        require_program(program)
    process = subprocess.Popen(
        [sys.executable, "-m", "smtpdiag", "lab", "--scenario", SCENARIO],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    try:
        assert process.stdout is not None
        line = json.loads(process.stdout.readline())
        config = tomllib.loads(Path(line["config_file"]).read_text(encoding="utf-8"))
        postfix_greeting = greeting(line["postfix"])
        relay_greeting = greeting(line["relay"])
        running = process.poll() is None
    finally:
        exit_code = stop(process)
        assert process.stdout is not None
        process.stdout.close()
    directories = [str(Path(line[key]).parent) for key in ("msmtprc", "dovecot_log_file")]
    yield ServedChain(
        line,
        config,
        postfix_greeting,
        relay_greeting,
        running,
        exit_code,
        processes_using(directories),
    )


def test_served_line_has_chain_keys(served: ServedChain) -> None:
    assert set(served.line) >= CHAIN_KEYS


def test_served_line_counts(served: ServedChain) -> None:
    assert (served.line["messages_sent"], served.line["delivered"]) == (CHAIN_MESSAGES, 0)


def test_served_line_has_no_relay_reply(served: ServedChain) -> None:
    assert "relay_reply" not in served.line


def test_served_line_scenario(served: ServedChain) -> None:
    assert served.line["scenario"] == SCENARIO


def test_served_lab_runs_after_line(served: ServedChain) -> None:
    assert served.running_after_line is True


def test_served_postfix_greets(served: ServedChain) -> None:
    assert served.postfix_greeting.startswith(b"220 mail.lab.invalid ESMTP")


def test_served_relay_greets(served: ServedChain) -> None:
    assert served.relay_greeting.startswith(b"220 ")


def test_served_stops_on_sigint(served: ServedChain) -> None:
    assert served.exit_code == 0


def test_served_leaves_no_process(served: ServedChain) -> None:
    assert served.processes_after_stop == ()


@pytest.mark.parametrize("key", ["config_file", "msmtprc", "postfix_log_file", "dovecot_log_file"])
def test_served_files_removed(served: ServedChain, key: str) -> None:
    assert Path(served.line[key]).parent.exists() is False


def test_target_keys(served: ServedChain) -> None:
    assert set(served.config["targets"]["lab"]) == TARGET_KEYS


def test_target_relay_is_postfix(served: ServedChain) -> None:
    target = served.config["targets"]["lab"]
    assert (target["relay"], target["postfix_config_dir"]) == (
        "postfix",
        served.line["postfix_config_dir"],
    )


def test_target_msmtprc(served: ServedChain) -> None:
    assert served.config["targets"]["lab"]["msmtprc"] == served.line["msmtprc"]


def test_target_log_files(served: ServedChain) -> None:
    line = served.line
    assert served.config["targets"]["lab"]["log_files"] == [
        line["postfix_log_file"],
        line["relay_log_file"],
        line["msmtp_log_file"],
        line["dovecot_log_file"],
    ]


def test_target_introspects(served: ServedChain) -> None:
    target = served.config["targets"]["lab"]
    assert (target["introspect"], target["introspection_endpoint"]) == (
        True,
        served.line["introspection_endpoint"],
    )


def test_target_ntp_is_lab(served: ServedChain) -> None:
    ntp_port = int(served.line["ntp"].rsplit(":", 1)[1])
    assert served.config["defaults"]["ntp_port"] == ntp_port


def test_json_line_without_chain() -> None:
    info = LabInfo(
        scenario="healthy",
        config_file=Path("/x/smtpdiag.toml"),
        smtp_starttls="127.0.0.1:1",
        smtps="127.0.0.1:2",
        ca_file=Path("/x/ca.pem"),
        user=LAB_USER,
        access_token_file=Path("/x/access-token"),
        token_endpoint="https://127.0.0.1:3/token",
        tokeninfo_endpoint="https://127.0.0.1:3/tokeninfo",
        introspection_endpoint="https://127.0.0.1:3/introspect",
        client_id="id",
        client_secret_file=Path("/x/client-secret"),
        refresh_token_file=Path("/x/refresh-token"),
        ntp="127.0.0.1:4",
    )
    assert CHAIN_KEYS & set(json.loads(info.to_json_line())) == set()


# --- without the programs ---


@pytest.mark.parametrize(
    ("missing", "packages"),
    [
        pytest.param(("find_postfix",), "postfix", id="postfix"),
        pytest.param(("find_msmtp",), "msmtp", id="msmtp"),
        pytest.param(("find_dovecot",), "dovecot-core dovecot-submissiond", id="dovecot"),
        pytest.param(
            ("find_postfix", "find_dovecot"),
            "postfix dovecot-core dovecot-submissiond",
            id="postfix-and-dovecot",
        ),
    ],
)
def test_missing_program_names_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, missing: tuple[str, ...], packages: str
) -> None:
    for name in missing:
        monkeypatch.setattr(runner, name, lambda: None)
    with pytest.raises(UsageError) as caught, start_lab(get_scenario("chain"), workdir=tmp_path):
        pass
    assert f"Install the Debian packages {packages}," in caught.value.fix


def test_missing_program_starts_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runner, "find_postfix", lambda: None)
    with pytest.raises(UsageError), start_lab(get_scenario("chain"), workdir=tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []


def test_chain_needs_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runner, "find_postfix", lambda: "/usr/sbin/postfix")
    monkeypatch.setattr(runner, "find_msmtp", lambda: "/usr/bin/msmtp")
    monkeypatch.setattr(runner, "find_dovecot", lambda: "/usr/sbin/dovecot")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with (
        pytest.raises(UsageError, match="need root"),
        start_lab(get_scenario("chain"), workdir=tmp_path),
    ):
        pass
