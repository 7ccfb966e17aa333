"""Send mail through a running lab with the real msmtp binary, so its log lines are real.

msmtp writes one log record per message; the demo and the tests feed those records to the
log parsers. The configuration file uses ``auth xoauth2`` and a ``passwordeval`` that prints
the token file, the usual OAuth2 setup of msmtp. The relay scenarios run that ``passwordeval``
through a token script, as sites do.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # The runner writes msmtp configurations with this module, so the import runs only for
    # type checking.
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
    password_command: str | None = None,
) -> Path:
    """Write an msmtp configuration for the lab's STARTTLS server and return its path.

    ``token_file`` defaults to the lab's access token; ``logfile`` to ``msmtp.log`` in
    ``directory``; ``time_format`` sets ``logfile_time_format`` (msmtp's default when None).
    ``password_command`` is the ``passwordeval`` command, ``cat`` of the token file when None.
    """
    if password_command is None:
        password_command = f"cat {token_file or info.access_token_file}"
    host, port = info.smtp_starttls.rsplit(":", 1)
    lines = [
        "defaults",
        "tls on",
        "tls_starttls on",
        f"tls_trust_file {info.ca_file}",
        # msmtp has no timeout by default. The lab replies within milliseconds.
        "timeout 30",
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
        f"passwordeval {password_command}",
        "account default : lab",
    ]
    config = directory / name
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o600)  # msmtp refuses a configuration file that others can read
    return config


def write_token_script(path: Path, token_file: Path) -> Path:
    """Write a shell script of mode 0700 that prints ``token_file``, and return ``path``.

    It takes the place of the script that a site's ``passwordeval`` runs to get a fresh
    access token.
    """
    lines = [
        "#!/bin/sh",
        "# Print the lab access token for msmtp's passwordeval.",
        f"exec cat {shlex.quote(str(token_file))}",
    ]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")
    return path


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
