"""Small helpers that several lab servers share: secret files and free loopback ports."""

from __future__ import annotations

import os
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"


def write_secret(path: Path, value: str) -> Path:
    """Write ``value`` and a newline to a new file of mode 0600 and return its path.

    Raises ``FileExistsError`` when the file exists, so a secret never lands in a file that
    someone else created first.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(value + "\n")
    return path


def free_tcp_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago, for a server that binds its
    own listener (Dovecot, Postfix).

    NOTE: another program may take the port before that server binds it; its start then fails
    with a bind error.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])
