"""TLS handshake with pyOpenSSL over memory BIOs on an already connected socket.

Memory BIOs keep socket I/O in this module: every read waits with ``select`` against one
deadline, so a server that stalls mid-handshake ends the handshake on time, and the first
bytes the server sent stay known for classifying a failure. pyOpenSSL errors are translated
into ``HandshakeError`` here and nowhere else.
"""

from __future__ import annotations

import logging
import socket
import time

from OpenSSL import SSL, crypto

from smtpdiag.errors import SmtpDiagError
from smtpdiag.readiness import wait_readable
from smtpdiag.tls.certificate import CertificateInfo
from smtpdiag.tls.model import Handshake, VerifyError
from smtpdiag.tls.verify_errors import verify_error_message

logger = logging.getLogger(__name__)

_FIRST_BYTES_KEPT = 512
_READ_SIZE = 16384
_FAREWELL_SECONDS = 1.0
"""Maximum wait, in seconds, for the reply to the farewell, within the handshake's deadline."""


class HandshakeError(SmtpDiagError):
    """The handshake failed: OpenSSL's reason, its state, and the server's first bytes."""

    def __init__(self, reason: str, received: bytes, state: str) -> None:
        self.reason = reason
        self.received = received
        self.state = state
        super().__init__(f"TLS handshake failed ({state}): {reason}")


class _VerifyRecorder:
    """Verify callback that records every error and lets the handshake go on."""

    def __init__(self) -> None:
        self.errors: list[VerifyError] = []

    def __call__(
        self, connection: SSL.Connection, certificate: crypto.X509, code: int, depth: int, ok: int
    ) -> bool:
        if not ok:
            subject = certificate.to_cryptography().subject.rfc4514_string()
            error = VerifyError(code, verify_error_message(code), depth, subject)
            if error not in self.errors:
                self.errors.append(error)
        # Returning True never aborts: the tls check reports every problem, with or without
        # --insecure, and sends no credentials over this session.
        return True


def client_context(ca_file: str | None, recorder: _VerifyRecorder) -> SSL.Context:
    """Build the context: trust ``ca_file`` or the system store, record verify errors."""
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    # TLS 1.0 and 1.1 are allowed, and security level 0 lets OpenSSL 3 offer them, so that an
    # outdated server is named instead of failing the handshake. This session carries no
    # credentials.
    # NOTE: level 0 also accepts weak keys and signatures without a verify error.
    context.set_min_proto_version(SSL.TLS1_VERSION)
    context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    if ca_file:
        context.load_verify_locations(ca_file)
    else:
        context.set_default_verify_paths()
    context.set_verify(SSL.VERIFY_PEER, recorder)
    return context


def run_handshake(
    sock: socket.socket,
    ca_file: str | None,
    sni: str | None,
    timeout: float,
    *,
    farewell: bytes = b"",
) -> Handshake:
    """Run a client handshake on ``sock`` within ``timeout`` seconds; raises HandshakeError.

    ``farewell`` (such as an SMTP ``QUIT``) is sent over TLS after the handshake.
    """
    recorder = _VerifyRecorder()
    try:
        context = client_context(ca_file, recorder)
    except SSL.Error as error:
        raise HandshakeError(f"cannot load the trust store: {_reason(error)}", b"", "") from None
    connection = SSL.Connection(context, None)
    connection.set_connect_state()
    if sni:
        connection.set_tlsext_host_name(sni.encode("idna"))
    deadline = time.monotonic() + timeout
    received = bytearray()
    while True:
        try:
            connection.do_handshake()
            break
        except SSL.WantReadError:
            _flush(connection, sock, deadline, received)
            chunk = _receive(connection, sock, deadline, received, timeout)
            if len(received) < _FIRST_BYTES_KEPT:
                received += chunk[: _FIRST_BYTES_KEPT - len(received)]
            connection.bio_write(chunk)
        except SSL.Error as error:
            raise HandshakeError(_reason(error), bytes(received), _state(connection)) from None
    _flush(connection, sock, deadline, received)
    handshake = _describe(connection, sni, recorder)
    if farewell:
        _say_goodbye(
            connection, sock, min(deadline, time.monotonic() + _FAREWELL_SECONDS), farewell
        )
    return handshake


def _say_goodbye(
    connection: SSL.Connection, sock: socket.socket, deadline: float, farewell: bytes
) -> None:
    """Send ``farewell`` and wait for the server's 221 reply or the end of the stream.

    Closing right after the handshake makes servers log a reset during their handshake step
    (TLS 1.3 servers send session tickets after it), so the session ends the SMTP way.
    """
    plaintext = bytearray()
    try:
        connection.send(farewell)
        _flush(connection, sock, deadline, bytearray())
        while b"221" not in plaintext:
            readable = wait_readable(sock, deadline - time.monotonic())
            chunk = sock.recv(_READ_SIZE) if readable else b""
            if not chunk:
                return
            connection.bio_write(chunk)
            plaintext += _decrypted(connection)
        connection.shutdown()
        _flush(connection, sock, deadline, bytearray())
    except (SSL.Error, OSError, HandshakeError) as error:
        # The handshake is measured already; the goodbye is a courtesy.
        logger.debug("ending the TLS session failed: %s", error)


def _decrypted(connection: SSL.Connection) -> bytes:
    """Return the application data that OpenSSL can decrypt from the records received."""
    data = bytearray()
    while True:
        try:
            data += connection.recv(_READ_SIZE)
        except (SSL.WantReadError, SSL.ZeroReturnError):
            return bytes(data)


def _flush(
    connection: SSL.Connection, sock: socket.socket, deadline: float, received: bytearray
) -> None:
    """Send what OpenSSL wrote into the outgoing BIO."""
    while True:
        try:
            data = connection.bio_read(_READ_SIZE)
        except SSL.WantReadError:
            return
        try:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            sock.sendall(data)
        except OSError as error:
            raise HandshakeError(
                f"sending failed: {error.strerror or error}", bytes(received), _state(connection)
            ) from None


def _receive(
    connection: SSL.Connection,
    sock: socket.socket,
    deadline: float,
    received: bytearray,
    timeout: float,
) -> bytes:
    """Wait for the server's next bytes until the deadline; end of stream is an error."""
    remaining = deadline - time.monotonic()
    if not wait_readable(sock, remaining):
        raise HandshakeError(
            f"no response within {timeout:g} s", bytes(received), _state(connection)
        )
    try:
        chunk = sock.recv(_READ_SIZE)
    except OSError as error:
        raise HandshakeError(
            f"receiving failed: {error.strerror or error}", bytes(received), _state(connection)
        ) from None
    if not chunk:
        raise HandshakeError(
            "the server closed the connection", bytes(received), _state(connection)
        )
    return chunk


def _describe(connection: SSL.Connection, sni: str | None, recorder: _VerifyRecorder) -> Handshake:
    chain = connection.get_peer_cert_chain(as_cryptography=True) or []
    leaf = connection.get_peer_certificate(as_cryptography=True)
    if leaf is None:
        raise HandshakeError("the server sent no certificate", b"", _state(connection))
    return Handshake(
        sni=sni,
        version=connection.get_protocol_version_name(),
        cipher=connection.get_cipher_name() or "unknown",
        leaf=CertificateInfo.from_x509(leaf),
        chain=tuple(CertificateInfo.from_x509(certificate) for certificate in chain),
        verify_errors=tuple(recorder.errors),
    )


def _reason(error: SSL.Error) -> str:
    """Return OpenSSL's reason text, e.g. ``wrong version number``, from the error queue."""
    queue = error.args[0] if error.args else None
    if isinstance(queue, list) and queue and isinstance(queue[-1], tuple):
        return str(queue[-1][-1])
    if isinstance(error, SSL.SysCallError) and len(error.args) == 2:
        return str(error.args[1])
    return str(error) or error.__class__.__name__


def _state(connection: SSL.Connection) -> str:
    return connection.get_state_string().decode("ascii", "replace")
