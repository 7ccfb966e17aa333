"""Raw-socket SMTP client for lab tests: line by line, so a test can prove the server is silent."""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

CLIENT_NAME = "client.example.com"
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: its code and the text of each line without the code."""

    code: int
    lines: tuple[str, ...]

    @property
    def enhanced_code(self) -> str:
        """Return the enhanced status code that starts the last line, or an empty string."""
        first_word = self.lines[-1].split(" ", 1)[0]
        return first_word if first_word[:1].isdigit() and "." in first_word else ""

    @property
    def text(self) -> str:
        """Return the text of the last line."""
        return self.lines[-1]


class LineClient:
    """SMTP client that keeps its own receive buffer instead of a file object."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ehlo: Reply | None = None
        """Reply to the last EHLO sent by ``starttls_client``."""
        self._buffer = b""

    def auth_mechanisms(self) -> list[str]:
        """Return the mechanisms of the AUTH line of the last EHLO reply, in order."""
        lines = self.ehlo.lines if self.ehlo is not None else ()
        for line in lines:
            if line.upper().startswith("AUTH "):
                return line.split()[1:]
        return []

    def send(self, line: str) -> None:
        """Send ``line`` followed by CRLF."""
        self.sock.sendall(line.encode("ascii") + b"\r\n")

    def read_reply(self) -> Reply:
        """Read one reply, multi-line replies included."""
        code = 0
        lines: list[str] = []
        while True:
            line = self._read_line()
            code = int(line[:3])
            lines.append(line[4:])
            if line[3:4] != "-":
                return Reply(code, tuple(lines))

    def command(self, line: str) -> Reply:
        """Send ``line`` and return the reply."""
        self.send(line)
        return self.read_reply()

    def is_silent(self, seconds: float) -> bool:
        """Return whether the server sends nothing within ``seconds``."""
        if self._buffer:
            return False
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(TIMEOUT_SECONDS)
        self._buffer += data
        return False

    def _read_line(self) -> str:
        while b"\r\n" not in self._buffer:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("server closed the connection inside a reply")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line.decode("utf-8")


@contextmanager
def starttls_client(host: str, port: int, context: ssl.SSLContext) -> Iterator[LineClient]:
    """Connect, upgrade with STARTTLS and send the second EHLO; QUIT when the block ends."""
    with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS) as plain:
        plain_client = LineClient(plain)
        plain_client.read_reply()
        plain_client.command(f"EHLO {CLIENT_NAME}")
        starttls = plain_client.command("STARTTLS")
        if starttls.code != 220:
            raise ConnectionError(f"STARTTLS failed: {starttls}")
        with context.wrap_socket(plain, server_hostname="localhost") as encrypted:
            client = LineClient(encrypted)
            client.ehlo = client.command(f"EHLO {CLIENT_NAME}")
            yield client
            # The server may already have closed the connection after a failed test step.
            with suppress(OSError):
                client.command("QUIT")


def b64(data: bytes) -> str:
    """Return ``data`` in base64 as text."""
    return base64.b64encode(data).decode("ascii")


def xoauth2_response(user: str, token: str) -> str:
    """Return the base64 XOAUTH2 client response."""
    return b64(f"user={user}\x01auth=Bearer {token}\x01\x01".encode())


def oauthbearer_response(user: str, token: str) -> str:
    """Return the base64 OAUTHBEARER client response with an authzid."""
    return b64(f"n,a={user},\x01auth=Bearer {token}\x01\x01".encode())
