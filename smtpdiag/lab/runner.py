"""Start a lab: certificates, an access token, both submission servers and a configuration file.

Everything lives in a temporary directory that is removed when the lab stops. The written
configuration has one target, ``lab``, that smtpdiag's commands can use directly
(``--config FILE --target lab``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from secrets import token_urlsafe
from types import FrameType
from typing import TextIO

from smtpdiag.lab.certs import write_certificates
from smtpdiag.lab.lab_account import LabAccount
from smtpdiag.lab.scenarios import LabListener, Scenario, get_scenario, list_scenarios
from smtpdiag.lab.smtp_server import LabServer
from smtpdiag.secrets import Secret

logger = logging.getLogger(__name__)

__all__ = ["LAB_USER", "LabInfo", "list_scenarios", "serve", "start_lab"]

LAB_USER = "lab.user@example.com"
"""Mailbox that the lab servers accept."""

TARGET_NAME = "lab"
"""Name of the target in the written configuration file."""

CONFIG_FILE_NAME = "smtpdiag.toml"
TOKEN_FILE_NAME = "access-token"  # noqa: S105 (a file name)

TIMEOUT_SECONDS = 5
"""``timeout`` written into the configuration; loopback peers reply at once or not at all."""

# Prefix of Google access tokens, so the lab token looks like the real thing in transcripts.
_TOKEN_PREFIX = "ya29.lab-"  # noqa: S105 (a prefix; the rest is random)


@dataclass(frozen=True)
class LabInfo:
    """Addresses and files of a running lab that a client needs; contains no secret."""

    scenario: str
    config_file: Path
    smtp_starttls: str
    """``HOST:PORT`` of the STARTTLS server."""
    smtps: str
    """``HOST:PORT`` of the implicit TLS server."""
    ca_file: Path
    user: str
    access_token_file: Path

    def to_json_line(self) -> str:
        """Return the lab description as one JSON object on one line, without a newline."""
        document = {
            "scenario": self.scenario,
            "config_file": str(self.config_file),
            "smtp_starttls": self.smtp_starttls,
            "smtps": self.smtps,
            "ca_file": str(self.ca_file),
            "user": self.user,
            "access_token_file": str(self.access_token_file),
        }
        return json.dumps(document)


@contextmanager
def start_lab(scenario: Scenario, workdir: Path | None = None) -> Iterator[LabInfo]:
    """Run the lab of ``scenario`` until the block ends, then stop it and remove its files.

    The lab's temporary directory is created inside ``workdir``, or in the system temporary
    directory when ``workdir`` is None.
    """
    with ExitStack() as stack:
        directory = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="smtpdiag-lab-", dir=workdir))
        )
        certificates = write_certificates(directory, scenario.certificate)
        token_file = directory / TOKEN_FILE_NAME
        account = LabAccount(LAB_USER, _write_token(token_file, scenario.token_length))

        servers = {
            LabListener.STARTTLS: LabServer(
                scenario.server, account, certificates, implicit_tls=False
            ),
            LabListener.IMPLICIT: LabServer(
                scenario.server, account, certificates, implicit_tls=True
            ),
        }
        for server in servers.values():
            stack.enter_context(server)

        info = LabInfo(
            scenario=scenario.name,
            config_file=directory / CONFIG_FILE_NAME,
            smtp_starttls=servers[LabListener.STARTTLS].address,
            smtps=servers[LabListener.IMPLICIT].address,
            ca_file=certificates.ca_file,
            user=LAB_USER,
            access_token_file=token_file,
        )
        info.config_file.write_text(
            _config_text(scenario, info, servers[scenario.target_listener]), encoding="utf-8"
        )
        logger.info("lab for scenario %s running in %s", scenario.name, directory)
        yield info
    logger.info("lab for scenario %s stopped", scenario.name)


def _write_token(path: Path, length: int | None) -> Secret:
    """Create a random access token and write it to a new file of mode 0600.

    The token has ``length`` characters, or 32 random bytes after the prefix when ``length``
    is None.
    """
    if length is None:
        value = _TOKEN_PREFIX + token_urlsafe(32)
    else:
        # token_urlsafe(n) returns at least n characters for n > 0.
        random_length = length - len(_TOKEN_PREFIX)
        value = _TOKEN_PREFIX + token_urlsafe(random_length)[:random_length]
    token = Secret(value, f"file {path}")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(token.reveal() + "\n")
    return token


def _config_text(scenario: Scenario, info: LabInfo, target: LabServer) -> str:
    """Return the TOML configuration with the ``lab`` target."""
    values: dict[str, str | int | bool] = {
        "host": scenario.target_host,
        "port": target.port,
        "tls_mode": scenario.target_tls_mode.value,
        "ca_file": str(info.ca_file),
        "user": info.user,
        "access_token_file": str(info.access_token_file),
    }
    if scenario.send_test:
        values["send_test"] = True
        values["mail_from"] = "other@example.com"
        values["rcpt_to"] = "rcpt@example.com"
    lines = [
        f"# smtpdiag lab, scenario {scenario.name}: {scenario.description}",
        "# Removed when the lab stops.",
        "",
        "[defaults]",
        f"timeout = {TIMEOUT_SECONDS}",
        "",
        f"[targets.{TARGET_NAME}]",
    ]
    lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # An ASCII-only JSON string is also a valid TOML basic string: both use the same escapes.
    return json.dumps(value, ensure_ascii=True)


def serve(scenario_name: str, out: TextIO) -> int:
    """Run a lab until SIGINT or SIGTERM; write its JSON line to ``out`` once it is up.

    Must be called from the main thread, because only that thread can install signal
    handlers. Raises ``UsageError`` for an unknown scenario name.
    """
    scenario = get_scenario(scenario_name)
    stop_requested = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping the lab", signal.Signals(signal_number).name)
        stop_requested.set()

    # Handlers go in before the lab starts, so an early signal still removes the lab's files.
    previous = {
        number: signal.signal(number, request_stop) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with start_lab(scenario) as info:
            out.write(info.to_json_line() + "\n")
            out.flush()
            stop_requested.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0
