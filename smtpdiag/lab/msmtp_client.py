"""Send mail through a running lab with the real msmtp binary, so its log lines are real.

msmtp writes one log record per message; the demo and the tests feed those records to the
log parsers. The configuration file uses ``auth xoauth2`` and a ``passwordeval`` that prints
the token file, the usual OAuth2 setup of msmtp.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from smtpdiag.lab.runner import LabInfo

SEND_TIMEOUT_SECONDS = 30.0
"""Limit for one msmtp run; the lab replies within milliseconds."""

TEST_MESSAGE = "Subject: smtpdiag lab\r\n\r\nTest message sent through the smtpdiag lab.\r\n"


def find_msmtp() -> str | None:
    """Return the path of the msmtp binary, or None when it is not installed."""
    return shutil.which("msmtp")


def write_msmtprc(
    directory: Path,
    info: LabInfo,
    *,
    token_file: Path | None = None,
    logfile: Path | None = None,
    time_format: str | None = None,
    name: str = "msmtprc",
) -> Path:
    """Write an msmtp configuration for the lab's STARTTLS server and return its path.

    ``token_file`` defaults to the lab's access token; ``logfile`` to ``msmtp.log`` in
    ``directory``; ``time_format`` sets ``logfile_time_format`` (msmtp's default when None).
    """
    host, port = info.smtp_starttls.rsplit(":", 1)
    lines = [
        "defaults",
        "tls on",
        "tls_starttls on",
        f"tls_trust_file {info.ca_file}",
        f"logfile {logfile or directory / 'msmtp.log'}",
    ]
    if time_format is not None:
        lines.append(f"logfile_time_format {time_format}")
    lines += [
        "account lab",
        f"host {host}",
        f"port {port}",
        "auth xoauth2",
        f"user {info.user}",
        f"from {info.user}",
        f"passwordeval cat {token_file or info.access_token_file}",
        "account default : lab",
    ]
    config = directory / name
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o600)  # msmtp refuses a configuration file that others can read
    return config


def send(
    config: Path, msmtp: str, recipient: str = "rcpt@example.com"
) -> subprocess.CompletedProcess[str]:
    """Send the test message with ``msmtp -C config``; msmtp's exit code and output."""
    return subprocess.run(
        [msmtp, "-C", str(config), recipient],
        input=TEST_MESSAGE,
        capture_output=True,
        text=True,
        timeout=SEND_TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "HOME": str(config.parent)},
    )
