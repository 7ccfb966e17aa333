"""Fault server of the lab: a raw socket SMTP server that fails in ways aiosmtpd cannot.

It listens on 127.0.0.1 and a free port, accepts connections in a background thread and
runs each session in a thread of its own. Apart from its ``SmtpFault`` it speaks just
enough SMTP for a submission probe: the greeting, EHLO, STARTTLS with the lab certificate,
AUTH XOAUTH2 and OAUTHBEARER with the lab account's token, NOOP, RSET and QUIT.
"""

from __future__ import annotations

import binascii
import contextlib
import logging
import socket
import ssl
import struct
import threading
from base64 import b64decode
from types import TracebackType
from typing import NoReturn

from smtpdiag.lab.bearer_auth import MalformedResponseError, parse_oauthbearer, parse_xoauth2
from smtpdiag.lab.certs import CertificateFiles
from smtpdiag.lab.lab_account import AUTH_ACCEPTED, LabAccount
from smtpdiag.lab.options import AUTH_BUFFER_OCTETS, SmtpFault
from smtpdiag.lab.smtp_server import LOOPBACK, SERVER_NAME, server_tls_context

logger = logging.getLogger(__name__)

DRIP_INTERVAL_SECONDS = 1.0
"""Pause between two bytes of the greeting in ``SmtpFault.SLOW_DRIP``."""

HUGE_LINE_OCTETS = 1024 * 1024
"""Length of the over-long EHLO reply line in ``SmtpFault.HUGE_LINE``."""

BINARY_GREETING = b"\x00\x00\xff\xfe\x80\x9f garbage \xc3\x28\x00\r\n"
"""Greeting of ``SmtpFault.BINARY_GARBAGE``: NUL bytes and invalid UTF-8 sequences."""

AUTH_REJECTED = "535 5.7.8 Authentication credentials invalid"

_POLL_SECONDS = 0.1
"""Socket timeout between checks of the stop flag, so ``stop`` ends every thread soon."""

_HANDSHAKE_SECONDS = 5.0
"""Time that the server side of a TLS handshake may take on loopback."""

_JOIN_SECONDS = 2.0


class _SessionEnded(Exception):
    """The peer closed the connection, the server stops, or the fault ended the session."""


class FaultServer:
    """One fault server on 127.0.0.1 and a free port; a context manager, like ``LabServer``."""

    def __init__(
        self,
        fault: SmtpFault,
        account: LabAccount,
        certificates: CertificateFiles,
        *,
        implicit_tls: bool,
    ) -> None:
        self.fault = fault
        self.implicit_tls = implicit_tls
        self._account = account
        self._tls_context = server_tls_context(certificates)
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sessions: set[_FaultSession] = set()
        self._lock = threading.Lock()
        self._port = 0

    @property
    def host(self) -> str:
        """Address the server listens on."""
        return LOOPBACK

    @property
    def port(self) -> int:
        """Port the server listens on; 0 before ``start``."""
        return self._port

    @property
    def address(self) -> str:
        """``HOST:PORT`` of the server."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Bind a free port and start accepting connections."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, 0))
        listener.listen(16)
        listener.settimeout(_POLL_SECONDS)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._spawn(self._accept_loop, "accept")
        logger.info(
            "lab fault server %s started on %s (%s)",
            self.fault.value,
            self.address,
            "implicit TLS" if self.implicit_tls else "STARTTLS",
        )

    def stop(self) -> None:
        """Close the listener and every open connection, then wait for the threads to end."""
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            sessions = list(self._sessions)
            threads = list(self._threads)
        for session in sessions:
            # After STARTTLS the session's socket is the TLS socket, which owns the descriptor.
            _shut(session.socket)
        for thread in threads:
            thread.join(_JOIN_SECONDS)
            if thread.is_alive():
                logger.warning("lab fault server thread %s did not end", thread.name)
        logger.info("lab fault server on %s stopped", self.address)

    def __enter__(self) -> FaultServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(
            target=target,  # type: ignore[arg-type]
            args=args,
            name=f"lab-fault-{self.fault.value}-{name}",
            daemon=True,
        )
        with self._lock:
            self._threads = [known for known in self._threads if known.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                connection, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                # The listener was closed by ``stop``.
                return
            connection.settimeout(_POLL_SECONDS)
            session = _FaultSession(
                connection, self.fault, self._account, self._tls_context, self._stopping
            )
            with self._lock:
                self._sessions.add(session)
            self._spawn(self._serve, f"{peer[0]}:{peer[1]}", session)

    def _serve(self, session: _FaultSession) -> None:
        try:
            session.run(implicit_tls=self.implicit_tls)
        except _SessionEnded:
            pass
        except (OSError, ssl.SSLError) as error:
            # A client that gives up mid-fault resets or closes the connection; that is
            # the expected end of most fault sessions.
            logger.debug("lab fault session %s ended: %s", self.fault.value, error)
        finally:
            with self._lock:
                self._sessions.discard(session)
            _shut(session.socket)


def _shut(connection: socket.socket) -> None:
    """Shut down and close ``connection``, ignoring a socket that is already closed."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()


class _FaultSession:
    """One client connection of a fault server, from the greeting to the fault."""

    def __init__(
        self,
        connection: socket.socket,
        fault: SmtpFault,
        account: LabAccount,
        tls_context: ssl.SSLContext,
        stopping: threading.Event,
    ) -> None:
        self.socket = connection
        self._fault = fault
        self._account = account
        self._tls_context = tls_context
        self._stopping = stopping
        self._buffer = bytearray()
        self._tls = False
        self._end = b"\n" if fault is SmtpFault.BARE_LF else b"\r\n"

    def run(self, *, implicit_tls: bool) -> None:
        """Run the session until the fault ends it or the client leaves."""
        if self._fault is SmtpFault.BLACK_HOLE:
            self._drain()
        if implicit_tls:
            self._start_tls()
        self._greet()
        while True:
            line = self._read_line()
            verb = line.split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                self._ehlo()
            elif verb == b"STARTTLS" and not self._tls:
                self._reply("220 2.0.0 Ready to start TLS")
                self._start_tls()
            elif verb == b"AUTH":
                self._auth(line)
            elif verb in (b"NOOP", b"RSET"):
                self._reply("250 2.0.0 OK")
            elif verb == b"QUIT":
                self._reply("221 2.0.0 Bye")
                raise _SessionEnded
            else:
                self._reply("502 5.5.1 Command not implemented")

    def _greet(self) -> None:
        greeting = f"220 {SERVER_NAME} ESMTP smtpdiag lab fault server".encode() + self._end
        if self._fault is SmtpFault.BINARY_GARBAGE:
            self._send(BINARY_GREETING)
            self._drain()
        if self._fault is SmtpFault.SLOW_DRIP:
            for index in range(len(greeting)):
                self._send(greeting[index : index + 1])
                if self._stopping.wait(DRIP_INTERVAL_SECONDS):
                    raise _SessionEnded
        else:
            self._send(greeting)
        if self._fault is SmtpFault.CLOSE_AFTER_GREETING:
            raise _SessionEnded

    def _ehlo(self) -> None:
        keywords = ["AUTH XOAUTH2 OAUTHBEARER"] if self._tls else ["STARTTLS"]
        lines = [SERVER_NAME, "PIPELINING", "ENHANCEDSTATUSCODES", *keywords]
        if self._fault is SmtpFault.CLOSE_MID_REPLY:
            self._send(b"".join(f"250-{line}".encode() + self._end for line in lines[:2]))
            raise _SessionEnded
        if self._fault is SmtpFault.ENDLESS_CONTINUATION:
            self._endless_continuation()
        if self._fault is SmtpFault.HUGE_LINE:
            self._send(b"250-" + b"x" * HUGE_LINE_OCTETS + self._end)
        self._reply(
            *(
                f"250{'-' if index < len(lines) - 1 else ' '}{line}"
                for index, line in enumerate(lines)
            )
        )
        if self._fault is SmtpFault.CLOSE_AFTER_EHLO:
            raise _SessionEnded

    def _endless_continuation(self) -> NoReturn:
        """Send ``250-`` lines until the client leaves or the server stops."""
        number = 0
        while not self._stopping.is_set():
            number += 1
            self._send(f"250-X-LINE-{number}".encode() + self._end)
        raise _SessionEnded

    def _auth(self, line: bytes) -> None:
        if self._fault is SmtpFault.RESET_DURING_AUTH:
            # SO_LINGER with a zero timeout makes close() send RST in place of FIN.
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.socket.close()
            raise _SessionEnded
        if self._fault is SmtpFault.ENDLESS_CHALLENGE:
            while True:
                self._reply("334 ")
                self._read_line()
        parts = line.decode("ascii", errors="replace").split()
        mechanism = parts[1].upper() if len(parts) > 1 else ""
        if mechanism not in ("XOAUTH2", "OAUTHBEARER"):
            self._reply("504 5.5.4 Unrecognized authentication type")
            return
        if len(parts) > 2:
            response = parts[2]
        else:
            self._reply("334 ")
            response = self._read_line().decode("ascii", errors="replace").strip()
        accepted = self._accepts(mechanism, response)
        self._reply(AUTH_ACCEPTED if accepted else AUTH_REJECTED)

    def _accepts(self, mechanism: str, response: str) -> bool:
        """Return whether ``response`` carries the lab account's user and token."""
        try:
            payload = b64decode(response, validate=True)
            parse = parse_xoauth2 if mechanism == "XOAUTH2" else parse_oauthbearer
            bearer = parse(payload)
        except (binascii.Error, MalformedResponseError):
            return False
        return self._account.accepts(bearer.user, bearer.token)

    def _start_tls(self) -> None:
        if self._fault is SmtpFault.CLOSE_AFTER_STARTTLS:
            raise _SessionEnded
        if self._fault is SmtpFault.CLOSE_MID_HANDSHAKE:
            self._half_handshake()
        self.socket.settimeout(_HANDSHAKE_SECONDS)
        self.socket = self._tls_context.wrap_socket(self.socket, server_side=True)
        self.socket.settimeout(_POLL_SECONDS)
        self._buffer.clear()
        self._tls = True

    def _half_handshake(self) -> NoReturn:
        """Read the ClientHello, send half of the server's first flight, and end."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self._tls_context.wrap_bio(incoming, outgoing, server_side=True)
        flight = b""
        while not flight:
            incoming.write(self._receive())
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                flight = outgoing.read()
        self._send(flight[: len(flight) // 2])
        raise _SessionEnded

    def _reply(self, *lines: str) -> None:
        self._send(b"".join(line.encode() + self._end for line in lines))

    def _send(self, data: bytes) -> None:
        while data:
            if self._stopping.is_set():
                raise _SessionEnded
            try:
                sent = self.socket.send(data)
            except TimeoutError:
                continue
            data = data[sent:]

    def _receive(self) -> bytes:
        """Return the next bytes from the client; raise ``_SessionEnded`` at its end."""
        while not self._stopping.is_set():
            try:
                chunk = self.socket.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                raise _SessionEnded
            return chunk
        raise _SessionEnded

    def _read_line(self) -> bytes:
        """Return the next command line without its line end."""
        while b"\n" not in self._buffer:
            if len(self._buffer) > AUTH_BUFFER_OCTETS:
                self._reply("500 5.5.2 Line too long")
                raise _SessionEnded
            self._buffer += self._receive()
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer[:] = rest
        return line.rstrip(b"\r")

    def _drain(self) -> NoReturn:
        """Read and discard whatever the client sends until it leaves; never reply."""
        while True:
            self._receive()
