"""A TCP connection that can switch to TLS while keeping the peer's raw bytes visible.

TLS runs over ``ssl.MemoryBIO`` instead of ``SSLContext.wrap_socket``, so the bytes the peer
sent are still known when a handshake fails. An SMTP greeting in reply to a ClientHello means
the port expects STARTTLS, and a TLS record means the peer speaks TLS.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass

from smtpdiag.errors import SmtpDiagError
from smtpdiag.readiness import wait_readable

TLS_RECORD_TYPES = frozenset({0x14, 0x15, 0x16, 0x17})
"""First byte of a TLS record: change_cipher_spec, alert, handshake, application_data."""

_FIRST_BYTES_KEPT = 512


def looks_like_tls(data: bytes) -> bool:
    """Return whether ``data`` starts with a TLS record header (type, then major version 3)."""
    return len(data) >= 2 and data[0] in TLS_RECORD_TYPES and data[1] == 0x03


class TlsHandshakeError(SmtpDiagError):
    """The TLS handshake failed; ``received`` contains the first bytes the peer sent."""

    def __init__(self, reason: str, received: bytes, *, verify_error: str | None = None) -> None:
        self.reason = reason
        self.received = received
        self.verify_error = verify_error
        super().__init__(f"TLS handshake failed: {reason}")


@dataclass(frozen=True)
class TlsInfo:
    """Parameters of an established TLS session."""

    version: str
    cipher: str
    server_hostname: str | None


class Channel:
    """A connected socket, optionally wrapped in TLS, with deadline-aware reads."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._deadline = float("inf")
        self.tls_info: TlsInfo | None = None

    @classmethod
    def connect(cls, address: str, port: int, timeout: float) -> Channel:
        """Open a TCP connection; raises ``OSError``, e.g. ``TimeoutError`` or a refusal."""
        sock = socket.create_connection((address, port), timeout=timeout)
        return cls(sock)

    def set_timeout(self, seconds: float) -> None:
        """Start a deadline ``seconds`` from now for the following reads and writes together.

        A deadline instead of a per-read timeout stops a peer that sends one byte at a time
        from stretching an operation without bound.
        """
        self._deadline = time.monotonic() + seconds
        self._arm()

    def _arm(self) -> None:
        """Set the socket timeout to the time left before the deadline."""
        if self._deadline == float("inf"):
            return
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the operation's deadline has passed")
        self._sock.settimeout(remaining)

    def send(self, data: bytes) -> None:
        """Send all of ``data``, encrypted when TLS is active."""
        if self._tls is None:
            self._arm()
            self._sock.sendall(data)
            return
        self._tls.write(data)
        self._flush()

    def wait_readable(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the peer to send something; never consumes bytes."""
        if self._tls is not None and self._tls.pending():
            return True
        return wait_readable(self._sock, seconds)

    def receive(self, size: int) -> bytes:
        """Return up to ``size`` bytes, or ``b""`` when the peer closed the connection."""
        if self._tls is None:
            self._arm()
            return self._sock.recv(size)
        while True:
            try:
                return self._tls.read(size)
            except ssl.SSLWantReadError:
                if not self._pull():
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def start_tls(
        self, context: ssl.SSLContext, server_hostname: str | None, timeout: float
    ) -> TlsInfo:
        """Run the TLS handshake within ``timeout`` seconds and switch the channel to TLS."""
        tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        received = bytearray()
        self.set_timeout(timeout)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._arm()
                chunk = self._sock.recv(16384)
                if not chunk:
                    raise TlsHandshakeError(
                        "the server closed the connection", bytes(received)
                    ) from None
                if len(received) < _FIRST_BYTES_KEPT:
                    received += chunk[: _FIRST_BYTES_KEPT - len(received)]
                self._incoming.write(chunk)
            except ssl.SSLCertVerificationError as error:
                raise TlsHandshakeError(
                    error.verify_message or error.reason or str(error),
                    bytes(received),
                    verify_error=error.verify_message,
                ) from None
            except ssl.SSLError as error:
                raise TlsHandshakeError(error.reason or str(error), bytes(received)) from None
        self._flush()
        self._tls = tls
        cipher = tls.cipher()
        self.tls_info = TlsInfo(
            tls.version() or "unknown", cipher[0] if cipher else "unknown", server_hostname
        )
        return self.tls_info

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._arm()
            self._sock.sendall(pending)

    def _pull(self) -> bool:
        self._arm()
        chunk = self._sock.recv(16384)
        if not chunk:
            self._incoming.write_eof()
            return False
        self._incoming.write(chunk)
        return True

    def plain_socket(self) -> socket.socket:
        """Return the TCP socket, for a TLS library that runs its own handshake on it.

        Only valid before ``start_tls``; the caller then owns all further I/O on the socket.
        """
        if self._tls is not None:
            raise ValueError("the channel already runs TLS; its socket carries TLS records")
        return self._sock

    def close(self) -> None:
        """Close the socket without a TLS close_notify; the session is over either way."""
        self._sock.close()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def client_context(ca_file: str | None, insecure: bool) -> ssl.SSLContext:
    """Build the client TLS context: system trust store or ``ca_file``; no checks when insecure."""
    context = ssl.create_default_context(cafile=ca_file)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def unverified_context() -> ssl.SSLContext:
    """Build a TLS context that accepts any certificate, for sessions that send no secret.

    The connect check uses it so that certificate problems, which the tls check judges, do
    not hide what comes after the handshake. It loads no trust store, which saves the tens
    of milliseconds that reading the system CA bundle takes.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
