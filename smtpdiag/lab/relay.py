"""msmtpd-style relay of the lab: an SMTP server on 127.0.0.1 that pipes each message to msmtp.

The relay speaks the small SMTP dialect of msmtpd (msmtp 1.8.23, ``src/msmtpd.c``): the
greeting ``220 localhost ESMTP msmtpd``, EHLO or HELO, then MAIL, RCPT, DATA and QUIT in
that order. Every other command ends the session with a ``500`` reply, as msmtpd does.

For each message the relay runs the pipe command with the envelope sender in place of
``%F`` and the recipients appended. It writes the dot-unstuffed message to the command's
standard input and replies from its exit status. Status 0 gets ``250 Ok, mail was piped``,
the temporary statuses of ``sysexits.h`` get ``451 Pipe command reported error N``, and
any other gets ``554 Pipe command reported error N``. The relay writes msmtpd's
``--log=FILE`` lines, so the log parsers read the same lines as from msmtpd.

Unlike msmtpd, the relay runs the pipe command without a shell, stops it after
``PIPE_TIMEOUT_SECONDS`` and offers no AUTH.
"""

from __future__ import annotations

import logging
import os
import shlex
import smtplib
import socketserver
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime
from io import BufferedIOBase
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn

from smtpdiag.redact import redact

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

GREETING = "220 localhost ESMTP msmtpd"

SENDER_PLACEHOLDER = "%F"
"""Replaced by the envelope sender in the first argument of the pipe command that contains it."""

PIPE_TIMEOUT_SECONDS = 30.0
"""Limit for one run of the pipe command, from its start to its exit. msmtpd has none."""

SEND_TIMEOUT_SECONDS = PIPE_TIMEOUT_SECONDS + 5.0
"""Socket timeout of ``send_message``: longer than the pipe timeout, so the relay's reply to
DATA arrives even when the pipe command is stopped at its limit."""

CLIENT_TIMEOUT_SECONDS = 10.0
"""Socket timeout of a session's reads. A silent client ends its session like a closed one."""

LINE_OCTETS = 1023
"""Maximum length of one read: msmtpd reads lines with ``fgets`` into a 1024-octet buffer."""

MAX_COMMAND_OCTETS = 16 * 4096
"""Maximum length of the pipe command that msmtpd builds (16 blocks of 4096 octets). More
recipients get ``554 Too many recipients``."""

MAX_SESSIONS = 16
"""msmtpd's limit of concurrent sessions, written in its ``connection from`` log line."""

TEMPORARY_EXIT_STATUSES = frozenset({68, 69, 71, 75})
"""EX_NOHOST, EX_UNAVAILABLE, EX_OSERR and EX_TEMPFAIL: msmtpd replies 451 for these, so the
sending MTA keeps the message and retries."""

PIPED = "250 Ok, mail was piped"

_STDERR_LOG_OCTETS = 4096
"""How much of the pipe command's standard error the DEBUG log shows."""

# msmtpd accepts only these characters in an address, because it passes addresses to a shell.
_ADDRESS_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.@_+/="
)
_EHLO_NAME_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-"
)


def msmtp_command(msmtp: str, msmtprc: Path) -> tuple[str, ...]:
    """Return msmtpd's default pipe command ``msmtp -f %F --`` with ``-C msmtprc`` added."""
    return (msmtp, "-C", str(msmtprc), "-f", SENDER_PLACEHOLDER, "--")


def pipe_reply(exit_status: int) -> str:
    """Return msmtpd's reply to a pipe command that exited with ``exit_status``."""
    if exit_status == 0:
        return PIPED
    code = 451 if exit_status in TEMPORARY_EXIT_STATUSES else 554
    return f"{code} Pipe command reported error {exit_status}"


def parse_address(argument: str, *, allow_empty: bool) -> str | None:
    """Return the address between ``<`` and ``>`` as msmtpd reads it; None when invalid.

    Like msmtpd, the ``>`` must end the line, so ESMTP parameters after it make the address
    invalid. An empty address becomes ``MAILER-DAEMON`` when ``allow_empty`` is true.
    """
    text = argument.lstrip(" ")
    if not text.startswith("<") or not text.endswith(">") or len(text) < 2:
        return None
    address = text[1:-1]
    if address.startswith("-") or not set(address) <= _ADDRESS_CHARACTERS:
        return None
    if not address:
        return "MAILER-DAEMON" if allow_empty else None
    return address


def ehlo_name(argument: str) -> str:
    """Return the EHLO name for the Received header: ``unknown``, ``invalid`` or the name."""
    if not argument:
        return "unknown"
    inner = argument
    if inner.startswith("["):
        inner = inner[1:]
    if inner.endswith("]"):
        inner = inner[:-1]
    return argument if set(inner) <= _EHLO_NAME_CHARACTERS else "invalid"


def format_log_line(when: datetime, pid: int, error: bool, message: str) -> str:
    """Return one line of msmtpd's ``--log=FILE`` format, without the newline."""
    level = "error" if error else "info"
    return f"{when.strftime('%Y-%m-%d %H:%M:%S')} msmtpd[{pid}] {level}: {message}"


class RelayLog:
    """msmtpd's log file: one line per event, appended and flushed at once, in local time."""

    def __init__(
        self, path: Path, *, pid: int | None = None, now: Callable[[], datetime] = datetime.now
    ) -> None:
        self.path = path
        self._pid = os.getpid() if pid is None else pid
        self._now = now
        self._lock = threading.Lock()

    def info(self, message: str) -> None:
        """Append an ``info`` line."""
        self._write(False, message)

    def error(self, message: str) -> None:
        """Append an ``error`` line."""
        self._write(True, message)

    def _write(self, error: bool, message: str) -> None:
        line = format_log_line(self._now(), self._pid, error, message)
        with self._lock, self.path.open("a", encoding="utf-8") as stream:
            stream.write(line + "\n")


def send_message(address: str, sender: str, recipients: Sequence[str], message: str) -> str:
    """Send ``message`` to the relay at ``HOST:PORT`` with smtplib and return its last reply.

    That reply is the reply to DATA, or the first MAIL or RCPT reply that is not 250. The
    client names itself ``localhost`` in EHLO, so it looks up no host name.
    """
    host, port = address.rsplit(":", 1)
    client = smtplib.SMTP(host, int(port), local_hostname="localhost", timeout=SEND_TIMEOUT_SECONDS)
    try:
        reply = _send_transaction(client, sender, recipients, message)
    finally:
        _quit(client)
    return reply


def _send_transaction(
    client: smtplib.SMTP, sender: str, recipients: Sequence[str], message: str
) -> str:
    client.ehlo()
    code, text = client.mail(sender)
    if code != 250:
        return _reply_line(code, text)
    for recipient in recipients:
        code, text = client.rcpt(recipient)
        if code != 250:
            return _reply_line(code, text)
    try:
        code, text = client.data(message)
    except smtplib.SMTPDataError as error:
        # The reply to DATA itself was not 354, such as 554 Cannot start pipe command.
        return _reply_line(error.smtp_code, error.smtp_error)
    return _reply_line(code, text)


def _reply_line(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return f"{code} {text}"


def _quit(client: smtplib.SMTP) -> None:
    """End the session; msmtpd has already closed the connection after an error reply."""
    try:
        client.quit()
    except (smtplib.SMTPServerDisconnected, OSError):
        client.close()


class _Aborted(Exception):
    """The session ends early; msmtpd has already replied and logged why."""


class _Session:
    """One SMTP session of the relay on an accepted connection."""

    def __init__(
        self, server: _RelayTCPServer, reader: BufferedIOBase, writer: BufferedIOBase, peer: str
    ) -> None:
        self._server = server
        self._reader = reader
        self._writer = writer
        self._peer = peer
        self._log = server.relay_log
        self._ehlo_name = "unknown"

    def run(self) -> None:
        """Greet the client and relay messages until QUIT, an error or the end of input."""
        self._log.info("starting SMTP session")
        try:
            self._reply(GREETING)
            command: str | None = self._greeting_exchange()
            while command is not None:
                command = self._transaction(command)
        except _Aborted:
            return

    def _greeting_exchange(self) -> str:
        """Read EHLO or HELO, reply, and return the command that follows it."""
        command = self._read_command("client did not send initial command, session aborted")
        if command[:5].upper() not in ("EHLO ", "HELO "):
            self._abort("500 Expected EHLO or HELO", "client did not start with EHLO or HELO")
        self._ehlo_name = ehlo_name(command[5:])
        self._reply("250 localhost")
        return self._read_command("client did not send second command, session aborted")

    def _transaction(self, command: str) -> str | None:
        """Handle one MAIL to DATA exchange starting with ``command``; return the next command.

        Returns None when the session ends normally.
        """
        if command.upper() == "QUIT":
            self._reply("221 Bye")
            self._log.info("client ended session")
            return None
        if command[:10].upper() != "MAIL FROM:":
            self._abort(
                "500 Expected MAIL FROM:<addr> or QUIT", "client did not send MAIL FROM or QUIT"
            )
        sender = parse_address(command[10:], allow_empty=True)
        if sender is None:
            self._abort("501 Invalid address", "invalid address in MAIL FROM")
        self._reply("250 Ok")

        recipients = self._read_recipients(sender)
        self._pipe_message(sender, recipients)
        try:
            return self._read_line()
        except _ClientGone:
            self._log.info("client ended session without sending QUIT")
            return None

    def _read_recipients(self, sender: str) -> list[str]:
        """Read RCPT commands until DATA and return the recipients."""
        recipients: list[str] = []
        command_length = len(shlex.join(self._server.command_for(sender, [])))
        while True:
            command = self._read_command("client did not send command, session aborted")
            is_rcpt = command[:8].upper() == "RCPT TO:"
            if not recipients and not is_rcpt:
                self._abort("500 Expected RCPT TO:<addr>", "client did not send RCPT TO")
            if recipients and command.upper() == "DATA":
                return recipients
            if not is_rcpt:
                self._abort(
                    "500 Expected RCPT TO:<addr> or DATA", "client did not send RCPT TO or DATA"
                )
            recipient = parse_address(command[8:], allow_empty=False)
            if recipient is None:
                self._abort("501 Invalid address", "invalid address in RCPT TO")
            command_length += 1 + len(recipient)
            if command_length >= MAX_COMMAND_OCTETS:
                self._abort("554 Too many recipients", "too many recipients")
            recipients.append(recipient)
            self._reply("250 Ok")

    def _pipe_message(self, sender: str, recipients: list[str]) -> None:
        """Run the pipe command, feed it the message, and reply from its exit status."""
        command = self._server.command_for(sender, recipients)
        self._log.info(f"pipe command is {shlex.join(command)}")
        with tempfile.TemporaryFile() as stderr:
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    env=self._server.environ,
                )
            except OSError as error:
                logger.warning("relay could not start %s: %s", command[0], error)
                self._abort("554 Cannot start pipe command", "cannot start pipe command")
            try:
                exit_status = self._run_pipe(process)
            finally:
                _log_stderr(stderr, command[0], process.returncode)

        if exit_status is None:
            self._abort("554 Pipe command failed to execute", "pipe command failed to execute")
        if exit_status != 0:
            self._abort(pipe_reply(exit_status), f"pipe command reported error {exit_status}")
        self._reply(PIPED)
        self._log.info("mail was piped successfully")

    def _run_pipe(self, process: subprocess.Popen[bytes]) -> int | None:
        """Copy the message into ``process`` and wait for it within the pipe timeout.

        Returns the exit status, or None when the process ended by a signal (also the kill
        at the timeout). Raises ``_Aborted`` when the message could not be copied.
        """
        timeout = self._server.pipe_timeout_seconds
        watchdog = threading.Timer(timeout, _kill, args=(process, timeout))
        watchdog.start()
        try:
            copied = self._copy_message(process)
            if copied:
                process.wait()
        finally:
            watchdog.cancel()
            if process.returncode is None:
                process.kill()
                process.wait()
        if not copied:
            self._abort("554 Cannot pipe mail to command", "cannot pipe mail to command")
        return process.returncode if process.returncode >= 0 else None

    def _copy_message(self, process: subprocess.Popen[bytes]) -> bool:
        """Send 354, then copy the client's data up to the lone dot into the pipe command.

        Returns False when the client's data ended early or the pipe command stopped reading.
        """
        stdin = process.stdin
        if stdin is None:
            raise RuntimeError("pipe command started without a standard input pipe")
        try:
            stdin.write(self._received_header())
            self._reply("354 Send data")
            for line in self._data_lines():
                stdin.write(line)
            stdin.close()
        except (_ClientGone, OSError):
            return False
        return True

    def _data_lines(self) -> Iterator[bytes]:
        """Yield the message lines with LF line ends, dot-unstuffed, up to the lone dot.

        A line longer than ``LINE_OCTETS`` arrives in parts; only the first part of a line
        is checked for a leading dot, as msmtpd does. Raises ``_ClientGone`` when the input
        ends before the lone dot.
        """
        line_starts = True
        while True:
            chunk = self._read_raw()
            if chunk.endswith(b"\n"):
                text = chunk.removesuffix(b"\n").removesuffix(b"\r")
                ending, continues = b"\n", False
            else:
                # A CR that the buffer split from its LF is dropped; msmtpd does the same.
                text, ending, continues = chunk.removesuffix(b"\r"), b"", True
            if line_starts and text.startswith(b"."):
                if text == b"." and not continues:
                    return
                text = text[1:]
            line_starts = not continues
            yield text + ending

    def _received_header(self) -> bytes:
        """Return the Received header that msmtpd 1.8.21 and later put before the message.

        msmtpd adds the host names of both ends when reverse DNS has them. The lab relay
        writes only the addresses, so it makes no DNS query. It ends the header lines with
        LF like every other line it pipes.
        """
        local, remote = self._server.local_ip, self._peer
        date = format_datetime(datetime.now().astimezone())
        header = (
            f"Received: from {self._ehlo_name} ([{remote}])\n"
            f"\tby [{local}] (msmtpd) with ESMTP;\n\t{date}\n"
        )
        return header.encode("ascii", errors="replace")

    def _read_command(self, missing_message: str) -> str:
        """Return the next command line; log ``missing_message`` and abort when there is none."""
        try:
            return self._read_line()
        except _ClientGone:
            self._log.error(missing_message)
            raise _Aborted from None

    def _read_line(self) -> str:
        """Return the next complete line without its line end; ``_ClientGone`` otherwise.

        A line longer than ``LINE_OCTETS`` counts as missing, as in msmtpd.
        """
        chunk = self._read_raw()
        if not chunk.endswith(b"\n"):
            raise _ClientGone
        # Latin-1 keeps every octet; the address checks reject what is not ASCII.
        return chunk.removesuffix(b"\n").removesuffix(b"\r").decode("latin-1")

    def _read_raw(self) -> bytes:
        try:
            chunk = self._reader.readline(LINE_OCTETS)
        except OSError as error:
            logger.debug("relay session with %s: read failed: %s", self._peer, error)
            raise _ClientGone from error
        if not chunk:
            raise _ClientGone
        return chunk

    def _reply(self, line: str) -> None:
        try:
            self._writer.write(line.encode("ascii") + b"\r\n")
            self._writer.flush()
        except OSError as error:
            logger.debug("relay session with %s: write failed: %s", self._peer, error)
            raise _Aborted from error

    def _abort(self, reply: str, message: str) -> NoReturn:
        """Send ``reply``, log ``message`` as msmtpd's error, and end the session."""
        self._reply(reply)
        self._log.error(f"{message}, session aborted")
        raise _Aborted


class _ClientGone(Exception):
    """The client closed the connection, went silent, or sent an over-long line."""


def _kill(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        logger.warning(
            "relay pipe command %s still running after %g s; killing it", process.pid, timeout
        )
        process.kill()


def _log_stderr(stderr: IO[bytes], program: str, exit_status: int | None) -> None:
    """Log the start of the pipe command's standard error at DEBUG, with secrets masked."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    stderr.seek(0)
    text = stderr.read(_STDERR_LOG_OCTETS).decode("utf-8", errors="replace").strip()
    if text:
        logger.debug("%s exited with %s: %s", program, exit_status, redact(text))


class _RelayHandler(socketserver.StreamRequestHandler):
    """Run one session per accepted connection, with msmtpd's log lines around it."""

    server: _RelayTCPServer
    timeout = CLIENT_TIMEOUT_SECONDS

    def handle(self) -> None:
        server = self.server
        peer = str(self.client_address[0])
        active = server.session_started()
        try:
            server.relay_log.info(
                f"connection from {peer}, active sessions {active} (max {MAX_SESSIONS}), "
                "auth_delay=no"
            )
            _Session(server, self.rfile, self.wfile, peer).run()
            server.relay_log.info("connection closed")
        finally:
            server.session_ended()


class _RelayTCPServer(socketserver.ThreadingTCPServer):
    """Threading TCP server on 127.0.0.1 with the relay's settings for its sessions."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        command: tuple[str, ...],
        relay_log: RelayLog,
        pipe_timeout_seconds: float,
        environ: Mapping[str, str] | None,
    ) -> None:
        self.command = command
        self.relay_log = relay_log
        self.pipe_timeout_seconds = pipe_timeout_seconds
        self.environ = None if environ is None else dict(environ)
        self.local_ip = LOOPBACK
        self._sessions_changed = threading.Condition()
        self._active_sessions = 0
        super().__init__((LOOPBACK, 0), _RelayHandler)

    def command_for(self, sender: str, recipients: Sequence[str]) -> list[str]:
        """Return the pipe command for one message: ``%F`` replaced once, recipients added."""
        arguments: list[str] = []
        replaced = False
        for argument in self.command:
            if not replaced and SENDER_PLACEHOLDER in argument:
                arguments.append(argument.replace(SENDER_PLACEHOLDER, sender, 1))
                replaced = True
            else:
                arguments.append(argument)
        return arguments + list(recipients)

    def session_started(self) -> int:
        """Count a new session and return the number of active sessions, this one included."""
        # NOTE: msmtpd waits before it accepts a 17th concurrent session. The relay only
        # reports the count.
        with self._sessions_changed:
            self._active_sessions += 1
            return self._active_sessions

    def session_ended(self) -> None:
        with self._sessions_changed:
            self._active_sessions -= 1
            self._sessions_changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no session is active; return False when ``timeout`` seconds pass first."""
        with self._sessions_changed:
            return self._sessions_changed.wait_for(lambda: self._active_sessions == 0, timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback on stderr; a session that fails is logged instead.
        logger.exception("relay session with %s failed", client_address)


class RelayServer:
    """The lab relay on 127.0.0.1 and a free port, served by a daemon thread.

    Use as a context manager, or call ``start`` and ``stop``.
    """

    def __init__(
        self,
        command: Sequence[str],
        log_file: Path,
        *,
        pipe_timeout_seconds: float = PIPE_TIMEOUT_SECONDS,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """Relay to ``command`` (argv, ``%F`` for the sender) and log to ``log_file``.

        ``environ`` is the pipe command's environment; None passes the relay's own.
        """
        if not command:
            raise ValueError("the pipe command is empty")
        if pipe_timeout_seconds <= 0:
            raise ValueError(f"pipe_timeout_seconds {pipe_timeout_seconds} is not above 0")
        self.command = tuple(command)
        self.log = RelayLog(log_file)
        self.pipe_timeout_seconds = pipe_timeout_seconds
        self.environ = environ
        self._server: _RelayTCPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def log_file(self) -> Path:
        """msmtpd-format log file of the relay."""
        return self.log.path

    @property
    def port(self) -> int:
        """Port the relay listens on; 0 before ``start``."""
        return 0 if self._server is None else int(self._server.server_address[1])

    @property
    def address(self) -> str:
        """``HOST:PORT`` of the relay."""
        return f"{LOOPBACK}:{self.port}"

    def wait_idle(self, timeout: float = CLIENT_TIMEOUT_SECONDS) -> bool:
        """Wait until every session has ended and written its last log line.

        Returns False when ``timeout`` seconds pass first, and True when the relay is not
        running.
        """
        server = self._server
        return True if server is None else server.wait_idle(timeout)

    def start(self) -> None:
        """Bind a free port, create the log file, and serve in a daemon thread."""
        self.log.path.touch()
        server = _RelayTCPServer(self.command, self.log, self.pipe_timeout_seconds, self.environ)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            # shutdown() waits for the next poll, so a short interval makes stopping quick.
            kwargs={"poll_interval": 0.01},
            name=f"lab-relay-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("lab relay started on %s, piping to %s", self.address, self.command[0])

    def stop(self) -> None:
        """Stop accepting connections and close the listening socket.

        A running session goes on in its daemon thread until its client or pipe command ends.
        """
        server = self._server
        if server is None:
            return
        address = self.address
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._server = None
        self._thread = None
        logger.info("lab relay on %s stopped", address)

    def __enter__(self) -> RelayServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
