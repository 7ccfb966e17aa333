"""A private Dovecot submission server on 127.0.0.1 that authenticates OAuth2 bearer tokens.

Dovecot (Debian's dovecot-core and dovecot-submissiond, tested with 2.3.19.1) runs in the
foreground with a configuration that this module writes into a directory of its own. Its
oauth2 passdb posts each token to an RFC 7662 introspection URL (the lab token service) and
lets the user in when the reply contains ``"active": true`` and the AUTH user as
``username``.
After a successful AUTH, Dovecot's submission service connects to ``submission_relay_host``,
so an SMTP sink must listen at ``DovecotSettings.relay_address``.

Dovecot needs root: its master switches to the ``dovenull`` user for the login processes,
to ``dovecot`` for the auth process and to ``mail`` for the submission process. Those users
must reach the files they read, so the directory and every directory above it must be
searchable by other users (``o+x``), which pytest's ``tmp_path`` is not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from smtpdiag.lab.certs import CertificateFiles
from smtpdiag.lab.files import free_tcp_port

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

START_TIMEOUT_SECONDS = 10.0
"""Limit for Dovecot to send its 220 greeting on its port after it was started."""

STOP_TIMEOUT_SECONDS = 5.0
"""Wait after SIGTERM before SIGKILL, for the master and again for its children."""

LOG_TAIL_LINES = 20
"""Lines of Dovecot's log quoted in the error of a failed start."""

INTERNAL_USER = "dovecot"
"""Debian's user for Dovecot's internal processes, the auth process among them."""
LOGIN_USER = "dovenull"
"""Debian's unprivileged user for the login processes."""
MAIL_USER = "mail"
"""Owner of the mail directory and the user of the static userdb (uid 8 on Debian)."""

CONFIG_NAME = "dovecot.conf"
OAUTH2_CONFIG_NAME = "oauth2.conf.ext"
TOKEN_CA_NAME = "token-ca.pem"  # noqa: S105 (a file name)
LOG_NAME = "dovecot.log"

_POLL_SECONDS = 0.05
_SEARCHABLE_BY_OTHERS = 0o001


class DovecotError(RuntimeError):
    """Dovecot could not be set up or started; the message quotes the end of its log."""


def find_dovecot() -> str | None:
    """Return the path of the dovecot program (PATH, then /usr/sbin, /sbin); None when missing."""
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/sbin")


@dataclass(frozen=True)
class DovecotSettings:
    """Introspection URL, relay address and certificates of a private Dovecot."""

    introspection_url: str
    """RFC 7662 endpoint that the oauth2 passdb posts every token to."""
    token_ca_file: Path
    """CA certificate that signed the introspection endpoint's certificate."""
    certificates: CertificateFiles
    """Server certificate, chain and key for the submission service's STARTTLS."""
    relay_address: str
    """``HOST:PORT`` of the SMTP sink that Dovecot relays accepted mail to."""
    auth_debug: bool = False
    """Whether to write ``auth_debug = yes``. Dovecot then logs the tokens it passes on, a
    real leak that the log checks must find."""


class DovecotServer:
    """A Dovecot master process with a submission listener on 127.0.0.1 and a free port.

    Use as a context manager, or call ``start`` and ``stop``. The master runs in its own
    process group, so ``stop`` can find and end every child it leaves behind.
    """

    def __init__(
        self, directory: Path, settings: DovecotSettings, program: str | None = None
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.program = program
        self._port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """Port of the submission listener; 0 before ``start``."""
        return self._port

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` of the submission listener."""
        return f"{LOOPBACK}:{self._port}"

    @property
    def log_file(self) -> Path:
        """Dovecot's ``log_path``, which also takes its info and debug lines."""
        return self.directory / LOG_NAME

    @property
    def config_file(self) -> Path:
        """The written ``dovecot.conf``, for ``doveconf -c`` and ``doveadm -c``."""
        return self.directory / CONFIG_NAME

    def start(self) -> None:
        """Write the configuration, start Dovecot and wait for its 220 greeting.

        Raises ``DovecotError`` with the end of Dovecot's log when it exits or does not
        greet within ``START_TIMEOUT_SECONDS``; no process is left running then.
        """
        program = self.program or find_dovecot()
        if program is None:
            raise DovecotError(
                "dovecot is not installed (Debian packages dovecot-core and dovecot-submissiond)"
            )
        _require_root_and_users()
        self._prepare_directory()
        self._port = free_tcp_port()
        self._write_configuration()

        with self.log_file.open("ab") as log:
            # Errors that Dovecot prints before its log process runs (configuration errors)
            # go to standard error, so that ends up in the same file.
            try:
                self._process = subprocess.Popen(
                    [program, "-F", "-c", str(self.config_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            except OSError as error:
                raise DovecotError(f"cannot run {program}: {error.strerror}") from error
        logger.info("dovecot started (pid %d), waiting on %s", self._process.pid, self.address)
        try:
            self._wait_for_greeting()
        except BaseException:
            self.stop()
            raise
        logger.info("dovecot submission listening on %s", self.address)

    def stop(self) -> None:
        """Stop the master with SIGTERM (SIGKILL after a wait), then end any child left.

        Idempotent. Afterwards no process of Dovecot's process group runs.
        """
        process = self._process
        if process is None:
            return
        self._process = None
        group = process.pid
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning("dovecot (pid %d) ignored SIGTERM, sending SIGKILL", group)
                _kill_group(group)
                process.wait()
        # The master ends its children on SIGTERM; a child that outlives it is killed here.
        if not _wait_group_empty(group, STOP_TIMEOUT_SECONDS):
            logger.warning("dovecot children of pid %d still run, sending SIGKILL", group)
            _kill_group(group)
            _wait_group_empty(group, STOP_TIMEOUT_SECONDS)
        logger.info("dovecot on %s stopped (exit status %s)", self.address, process.returncode)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of Dovecot's log, or a note when there is none."""
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _prepare_directory(self) -> None:
        """Create the directory tree with the modes and owners Dovecot's users need."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)
        _require_searchable(self.directory)
        for name in ("run", "state"):
            (self.directory / name).mkdir(mode=0o755, exist_ok=True)
        mail = self.directory / "mail"
        mail.mkdir(mode=0o700, exist_ok=True)
        account = pwd.getpwnam(MAIL_USER)
        os.chown(mail, account.pw_uid, account.pw_gid)

        # The auth process runs as ``dovecot`` and cannot read the lab's private directory.
        token_ca = self.directory / TOKEN_CA_NAME
        shutil.copyfile(self.settings.token_ca_file, token_ca)
        token_ca.chmod(0o644)

    def _write_configuration(self) -> None:
        oauth2 = self.directory / OAUTH2_CONFIG_NAME
        oauth2.write_text(oauth2_config_text(self.settings, self.directory), encoding="utf-8")
        oauth2.chmod(0o644)
        text = dovecot_config_text(self.settings, self.directory, self._port)
        self.config_file.write_text(text, encoding="utf-8")
        self.config_file.chmod(0o644)

    def _wait_for_greeting(self) -> None:
        process = self._process
        if process is None:
            raise DovecotError("dovecot is not running")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            status = process.poll()
            if status is not None:
                raise DovecotError(
                    f"dovecot exited with status {status} during start-up; its log ends:\n"
                    + self.log_tail()
                )
            if _greets(self._port):
                return
            time.sleep(_POLL_SECONDS)
        raise DovecotError(
            f"dovecot did not greet on {self.address} within {START_TIMEOUT_SECONDS:g} s; "
            "its log ends:\n" + self.log_tail()
        )


def dovecot_config_text(settings: DovecotSettings, directory: Path, port: int) -> str:
    """Return ``dovecot.conf`` for a submission-only instance in ``directory`` on ``port``.

    The instance name and ``base_dir`` are unique per directory, so instances never share
    sockets or state.
    """
    relay_host, relay_port = settings.relay_address.rsplit(":", 1)
    instance = f"smtpdiag-{secrets.token_hex(6)}"
    certificates = settings.certificates
    lines = [
        f"base_dir = {directory / 'run'}",
        f"state_dir = {directory / 'state'}",
        f"instance_name = {instance}",
        "protocols = submission",
        f"listen = {LOOPBACK}",
        f"log_path = {directory / LOG_NAME}",
        f"info_log_path = {directory / LOG_NAME}",
        f"debug_log_path = {directory / LOG_NAME}",
        "ssl = required",
        # ``<`` makes the config process (root) read the files, so they may stay private.
        f"ssl_cert = <{certificates.chain_file}",
        f"ssl_key = <{certificates.key_file}",
        "auth_mechanisms = xoauth2 oauthbearer",
        "hostname = localhost",
        f"mail_location = maildir:{directory / 'mail'}/%u",
        f"default_login_user = {LOGIN_USER}",
        f"default_internal_user = {INTERNAL_USER}",
        f"default_internal_group = {INTERNAL_USER}",
        # The static userdb maps every user to Debian's ``mail`` user, uid 8.
        "first_valid_uid = 8",
        # Dovecot's default of 2 s would delay every rejected AUTH.
        "auth_failure_delay = 0",
        f"submission_relay_host = {relay_host}",
        f"submission_relay_port = {relay_port}",
        "submission_relay_trusted = yes",
    ]
    if settings.auth_debug:
        lines.append("auth_debug = yes")
    lines += [
        # Without the anvil-auth-penalty socket the auth process applies no auth penalty.
        # The penalty delays each AUTH from an address after a failed one by 2 s, doubling
        # up to 15 s, so it would slow every later check against the same lab.
        "service anvil {",
        "  unix_listener anvil-auth-penalty {",
        "    mode = 0",
        "  }",
        "}",
        "service submission-login {",
        "  inet_listener submission {",
        f"    address = {LOOPBACK}",
        f"    port = {port}",
        "  }",
        "}",
        "passdb {",
        "  driver = oauth2",
        "  mechanisms = xoauth2 oauthbearer",
        f"  args = {directory / OAUTH2_CONFIG_NAME}",
        "}",
        "userdb {",
        "  driver = static",
        f"  args = uid={MAIL_USER} gid={MAIL_USER} home={directory / 'mail'}/%u",
        "}",
    ]
    return "\n".join(lines) + "\n"


def oauth2_config_text(settings: DovecotSettings, directory: Path) -> str:
    """Return the oauth2 passdb settings: introspection by POST, ``username`` names the user."""
    lines = [
        "introspection_mode = post",
        f"introspection_url = {settings.introspection_url}",
        "username_attribute = username",
        "active_attribute = active",
        "active_value = true",
        f"tls_ca_cert_file = {directory / TOKEN_CA_NAME}",
    ]
    return "\n".join(lines) + "\n"


def _require_root_and_users() -> None:
    if os.geteuid() != 0:
        raise DovecotError(
            "the lab runs Dovecot as root, because its master switches to the users "
            f"{LOGIN_USER}, {INTERNAL_USER} and {MAIL_USER}"
        )
    for user in (LOGIN_USER, INTERNAL_USER, MAIL_USER):
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise DovecotError(
                f"user {user} not found; Debian's dovecot-core package creates it"
            ) from None


def _require_searchable(directory: Path) -> None:
    """Raise ``DovecotError`` unless other users can search every directory down to it."""
    for path in (directory.resolve(), *directory.resolve().parents):
        if not path.stat().st_mode & _SEARCHABLE_BY_OTHERS:
            raise DovecotError(
                f"directory {path} is not searchable by other users, so Dovecot's "
                f"{INTERNAL_USER} and {LOGIN_USER} processes cannot reach {directory}; "
                "use a directory under the system temporary directory"
            )


def _greets(port: int) -> bool:
    """Return whether a 220 greeting arrives on ``port``; the connection ends with QUIT."""
    try:
        with (
            socket.create_connection((LOOPBACK, port), timeout=1.0) as connection,
            connection.makefile("rb") as stream,
        ):
            line = stream.readline(1024)
            if line.startswith(b"220"):
                connection.sendall(b"QUIT\r\n")
                stream.readline(1024)
                return True
            return False
    except OSError:
        return False


def _group_members(group: int) -> list[int]:
    """Return the live (not zombie) processes of process group ``group``, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may contain spaces:
        # state, ppid, pgrp (proc(5)).
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(entry.name))
    return members


def _wait_group_empty(group: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_members(group):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)
    return True


def _kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
