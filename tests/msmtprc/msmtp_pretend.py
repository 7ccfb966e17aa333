"""Run the real ``msmtp --pretend`` over an msmtprc and put its output next to the reader's."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from smtpdiag.msmtprc.model import Account, MsmtpFile

COMPARED = (
    "host",
    "port",
    "tls",
    "tls_starttls",
    "auth",
    "user",
    "from",
    "passwordeval",
    "logfile",
)
"""Settings of ``msmtp --pretend`` that the tests compare with the reader."""

NOT_SET = "(not set)"


@dataclass(frozen=True)
class PretendResult:
    """What ``msmtp --pretend`` printed: its settings, and its error line without ``msmtp: ``."""

    settings: dict[str, str]
    error: str | None


def write_msmtprc(directory: Path, text: str, name: str = "msmtprc") -> Path:
    """Write ``text`` byte for byte with mode 0600, which msmtp requires of a file with
    secrets."""
    path = directory / name
    path.write_bytes(text.encode("utf-8"))
    path.chmod(0o600)
    return path


def run_pretend(msmtp: str, path: Path, account: str) -> PretendResult:
    """Run ``msmtp --pretend -C PATH -a ACCOUNT`` with HOME in the file's directory."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(path.parent)}
    completed = subprocess.run(
        [msmtp, "--pretend", "-C", str(path), "-a", account],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=environment,
        timeout=20,
        check=False,
    )
    settings = {}
    for line in completed.stdout.splitlines():
        key, separator, value = line.partition(" = ")
        if separator and key in COMPARED:
            settings[key] = value
    errors = [line for line in completed.stderr.splitlines() if line.startswith("msmtp: ")]
    return PretendResult(settings, errors[0].removeprefix("msmtp: ") if errors else None)


def reader_settings(account: Account) -> dict[str, str]:
    """Render the reader's view of ``account`` as ``msmtp --pretend`` prints it."""
    auth = account.auth
    return {
        "host": account.get("host") or NOT_SET,
        "port": str(account.port),
        "tls": "on" if account.tls else "off",
        "tls_starttls": "on" if account.starttls else "off",
        "auth": "none" if auth is None else (auth.upper() or "choose"),
        "user": account.get("user") or NOT_SET,
        "from": account.get("from") or NOT_SET,
        "passwordeval": account.get("passwordeval") or NOT_SET,
        "logfile": account.get("logfile") or NOT_SET,
    }


def reader_error(config: MsmtpFile) -> str | None:
    """Render the reader's first problem as msmtp's error line, or None."""
    if not config.problems:
        return None
    problem = config.problems[0]
    if problem.message.startswith("line longer than"):
        return f"{config.path}: {problem.message}"
    return f"{config.path}: line {problem.line}: {problem.message}"
