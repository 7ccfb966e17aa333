"""A private Postfix instance on 127.0.0.1 that relays every message to one relayhost.

The instance lives in one directory: ``etc/`` contains main.cf and master.cf, ``queue/`` and
``data/`` are its ``queue_directory`` and ``data_directory``, and ``postfix.log`` is its
``maillog_file``. It runs as root, as ``postfix -c DIR/etc start`` requires, and its daemons
drop to the ``postfix`` user.

What ``postfix -c`` needs (Postfix 3.7.11 on Debian, checked by running it as root):

- ``alternate_config_directories`` in the default main.cf is not needed. Postfix checks it
  only for set-gid commands such as ``postdrop`` and ``postqueue``, which the lab never runs,
  and Debian's package installed with "No configuration" has no /etc/postfix/main.cf at all.
- ``post-install`` and ``set-permissions`` are not run by hand. ``postfix start`` runs
  ``postfix-script check-fatal``, which runs ``post-install create-missing``: that creates
  the queue subdirectories and ``data_directory`` with the owners that
  /etc/postfix/postfix-files lists.
- The configuration directory must not contain the queue. ``postfix-script check-warn``
  warns about every file under ``config_directory`` that root does not own, so a queue
  inside it fills the log with warnings.
- The ``postfix`` user must be able to enter the queue, so the directory and all its parents
  need the search bit for others. ``start`` sets the directory to 0755, because
  ``tempfile.mkdtemp`` creates it with 0700.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from smtpdiag.lab.files import free_tcp_port

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

MASTER_CF_SOURCES = (Path("/usr/share/postfix/master.cf.dist"), Path("/etc/postfix/master.cf"))
"""Candidate files for the base of the instance's own master.cf; the first that exists is used.
Debian's package ships the first unchanged. Its installation writes the second, which an
administrator may have changed since."""

COMPATIBILITY_LEVEL = "3.6"
"""Highest ``compatibility_level`` of Postfix 3.7, which turns off the warnings about changed
defaults."""

LOG_FILE_NAME = "postfix.log"

COMMAND_TIMEOUT_SECONDS = 30.0
"""Limit for one run of ``postfix start``; it returns within a second on loopback."""

STOP_TIMEOUT_SECONDS = 5.0
"""Time the master and its children get to exit after SIGTERM before they get SIGKILL."""

POLL_SECONDS = 0.05

SMTP_TIMEOUT_SECONDS = 60
"""Postfix's SMTP client timeouts toward the relayhost (defaults of 300 to 600 s). The lab
relay stops its pipe command after 30 s, so 60 s bound a test without cutting a delivery."""

FATE_STATUSES = ("sent", "bounced", "deferred")
"""``status=`` values that end one delivery attempt."""

# A delivery line of the smtp(8) client, for example (Postfix 3.7.11, one line):
#   Dec 05 06:29:35 mail postfix/smtp[10066]: BD3D1250260: to=<rcpt@example.com>,
#   relay=127.0.0.1[127.0.0.1]:37859, delay=0.03, delays=0.01/0.01/0/0.02, dsn=5.0.0,
#   status=bounced (host 127.0.0.1[127.0.0.1] said: 554 Pipe command reported error 77 (in
#   reply to end of DATA command))
# A message that found no relayhost to connect to has "relay=none".
_DELIVERY_LINE = re.compile(
    r"postfix/smtp\[\d+\]: (?P<queue_id>[0-9A-Za-z]+): to=<(?P<recipient>[^>]*)>, "
    r"relay=(?P<relay>\S+?),.* status=(?P<status>sent|bounced|deferred) \((?P<reason>.*)\)$"
)


class PostfixError(RuntimeError):
    """The private Postfix could not be set up or started; the message quotes its log's end."""


@dataclass(frozen=True)
class DeliveryFate:
    """One delivery attempt that Postfix's SMTP client logged."""

    queue_id: str
    recipient: str
    relay: str
    """``relay=`` field: ``HOST[ADDRESS]:PORT``, or ``none`` when no connection was made."""
    status: str
    """``sent``, ``bounced`` or ``deferred``."""
    reason: str
    """Text in brackets after the status, with the relayhost's reply when it sent one."""


def find_postfix() -> str | None:
    """Return the path of the postfix command (PATH, then /usr/sbin and /sbin); None when
    it is not installed."""
    return shutil.which("postfix") or shutil.which("postfix", path="/usr/sbin:/sbin")


def read_fates(log_file: Path) -> tuple[DeliveryFate, ...]:
    """Return the delivery attempts of Postfix's SMTP client in ``log_file``, in log order."""
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ()
    return tuple(_parse_fates(text))


def _parse_fates(text: str) -> Iterator[DeliveryFate]:
    for line in text.splitlines():
        match = _DELIVERY_LINE.search(line)
        if match is not None:
            yield DeliveryFate(**match.groupdict())


def main_cf_text(directory: Path, relayhost: str) -> str:
    """Return main.cf of an instance in ``directory`` that relays everything to ``relayhost``."""
    host, port = _split_address(relayhost)
    settings = {
        "compatibility_level": COMPATIBILITY_LEVEL,
        "queue_directory": str(directory / "queue"),
        "data_directory": str(directory / "data"),
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        # Mail never leaves loopback: smtpd listens on 127.0.0.1 only (master.cf), and the
        # SMTP client sends every message to the relayhost on 127.0.0.1 without DNS lookups.
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        "myhostname": "mail.lab.invalid",
        "mydestination": "",
        "mynetworks": "127.0.0.0/8",
        "relayhost": f"[{host}]:{port}",
        "smtp_dns_support_level": "disabled",
        "smtp_tls_security_level": "none",
        "alias_maps": "",
        "alias_database": "",
        "local_recipient_maps": "",
        "biff": "no",
        "append_dot_mydomain": "no",
        "maillog_file": str(directory / LOG_FILE_NAME),
        "maillog_file_prefixes": str(directory),
        # Postfix's own notices must not reach the relayhost, so the logs count only the
        # messages a client sent. Bounce and delay notices have the null sender, and this
        # map sends them to discard(8). An empty notify_classes turns off the postmaster
        # notices, because their double-bounce sender does not match the map.
        "sender_dependent_default_transport_maps": "inline:{ <>=discard: }",
        "notify_classes": "",
        "smtp_connect_timeout": "5s",
        "smtp_helo_timeout": f"{SMTP_TIMEOUT_SECONDS}s",
        "smtp_mail_timeout": f"{SMTP_TIMEOUT_SECONDS}s",
        "smtp_rcpt_timeout": f"{SMTP_TIMEOUT_SECONDS}s",
        "smtp_data_init_timeout": f"{SMTP_TIMEOUT_SECONDS}s",
        "smtp_data_xfer_timeout": f"{SMTP_TIMEOUT_SECONDS}s",
        "smtp_data_done_timeout": f"{SMTP_TIMEOUT_SECONDS}s",
        # A deferred message waits for the next queue run, which no test lives to see.
        "queue_run_delay": "300s",
        "minimal_backoff_time": "300s",
    }
    return "".join(f"{name} = {value}\n" for name, value in settings.items())


def master_cf_text(source: str, smtpd_port: int) -> str:
    """Return ``source`` (a master.cf) with no service chrooted and smtpd on 127.0.0.1.

    The chroot column is set to ``n`` because a chrooted daemon would need copies of
    /etc files inside the queue directory. The ``smtp inet`` service becomes
    ``127.0.0.1:PORT inet``. Other lines, comments and continuation lines stay unchanged.
    """
    lines: list[str] = []
    for line in source.splitlines():
        fields = line.split()
        is_service = bool(line) and not line[0].isspace() and not line.startswith("#")
        if is_service and len(fields) >= 8:
            fields[4] = "n"
            if fields[0] == "smtp" and fields[1] == "inet":
                fields[0] = f"{LOOPBACK}:{smtpd_port}"
            lines.append(" ".join(fields))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _master_cf_source() -> Path:
    """Return the first of ``MASTER_CF_SOURCES`` that exists; raise PostfixError if none does."""
    for path in MASTER_CF_SOURCES:
        if path.is_file():
            return path
    names = ", ".join(str(path) for path in MASTER_CF_SOURCES)
    raise PostfixError(f"no master.cf to start from: none of {names} exists")


def _split_address(address: str) -> tuple[str, int]:
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit():
        raise ValueError(f"address {address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


class PostfixServer:
    """A private Postfix instance; use as a context manager, or call ``start`` and ``stop``."""

    def __init__(self, directory: Path, relayhost: str, program: str | None = None) -> None:
        """Prepare an instance in ``directory`` that relays to ``relayhost`` (``HOST:PORT``).

        ``program`` is the postfix command; None looks it up with ``find_postfix``.
        """
        _split_address(relayhost)
        self.directory = directory
        self.relayhost = relayhost
        self.program = program or find_postfix() or "postfix"
        self._port = 0
        self._master_pid: int | None = None

    @property
    def config_directory(self) -> Path:
        """Directory of main.cf and master.cf, for ``postconf -c`` and ``postfix -c``."""
        return self.directory / "etc"

    @property
    def queue_directory(self) -> Path:
        return self.directory / "queue"

    @property
    def log_file(self) -> Path:
        """Postfix's ``maillog_file``."""
        return self.directory / LOG_FILE_NAME

    @property
    def port(self) -> int:
        """Port of smtpd on 127.0.0.1; 0 before ``start``."""
        return self._port

    @property
    def address(self) -> str:
        """``HOST:PORT`` of smtpd."""
        return f"{LOOPBACK}:{self._port}"

    def fates(self) -> tuple[DeliveryFate, ...]:
        """Return the delivery attempts logged so far."""
        return read_fates(self.log_file)

    def wait_for_fates(self, count: int, timeout: float) -> bool:
        """Wait until the log contains ``count`` delivery lines of Postfix's SMTP client
        (status sent, bounced or deferred); True when it does within ``timeout`` seconds.

        Every such line is for the relayhost, because the SMTP client delivers nowhere else.
        """
        deadline = time.monotonic() + timeout
        while len(self.fates()) < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True

    def start(self) -> None:
        """Write the configuration and start the instance.

        ``postfix start`` returns once the master has initialized and bound smtpd's port.
        Raises ``PostfixError`` with the log's end when Postfix fails to start.
        """
        self._write_configuration()
        result = subprocess.run(
            [self.program, "-c", str(self.config_directory), "start"],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        self._master_pid = self._read_master_pid()
        if result.returncode != 0 or self._master_pid is None:
            self.stop()
            raise PostfixError(
                f"postfix -c {self.config_directory} start failed with exit status "
                f"{result.returncode}: {result.stderr.strip()}\n{self._log_tail()}"
            )
        logger.info(
            "Postfix started on %s (master pid %s), relayhost %s",
            self.address,
            self._master_pid,
            self.relayhost,
        )

    def stop(self) -> None:
        """Stop the master and all its children; idempotent.

        The master leads its own process group. It gets SIGTERM, which it passes to its
        children, and the whole group gets SIGKILL when a process is left after
        ``STOP_TIMEOUT_SECONDS``.
        """
        pid = self._master_pid or self._read_master_pid()
        self._master_pid = None
        if pid is None:
            return
        _signal_group(pid, signal.SIGTERM)
        if not _wait_group_gone(pid, STOP_TIMEOUT_SECONDS):
            logger.warning("Postfix processes of group %s left after SIGTERM; killing them", pid)
            _signal_group(pid, signal.SIGKILL)
            _wait_group_gone(pid, STOP_TIMEOUT_SECONDS)
        logger.info("Postfix on %s stopped", self.address)

    def running_processes(self) -> tuple[int, ...]:
        """Return the ids of the instance's live processes; empty when it is stopped."""
        pid = self._master_pid or self._read_master_pid()
        return () if pid is None else _group_members(pid)

    def _write_configuration(self) -> None:
        _check_searchable(self.directory)
        self.directory.chmod(0o755)
        self.config_directory.mkdir(mode=0o755, exist_ok=True)
        self.queue_directory.mkdir(mode=0o755, exist_ok=True)
        self._port = free_tcp_port()
        master_cf = master_cf_text(_master_cf_source().read_text(encoding="utf-8"), self._port)
        (self.config_directory / "master.cf").write_text(master_cf, encoding="utf-8")
        main_cf = main_cf_text(self.directory, self.relayhost)
        (self.config_directory / "main.cf").write_text(main_cf, encoding="utf-8")
        self.log_file.touch()

    def _read_master_pid(self) -> int | None:
        """Return the pid in queue/pid/master.pid when that process is alive."""
        try:
            pid = int((self.queue_directory / "pid" / "master.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _group_members(pid) else None

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no Postfix log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> PostfixServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _check_searchable(directory: Path) -> None:
    """Raise ``PostfixError`` when a parent of ``directory`` bars others from entering it.

    The Postfix daemons run as the ``postfix`` user and must reach the queue below it.
    """
    for parent in directory.resolve().parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise PostfixError(
                f"{parent} has no search permission for others, so the postfix user cannot "
                f"reach the queue under {directory}; use a directory below /tmp made with "
                "mode 0755"
            )


def _signal_group(pid: int, number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, number)


def _wait_group_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_members(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def _group_members(group: int) -> tuple[int, ...]:
    """Return the live (not zombie) processes of process group ``group``, from /proc."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # Fields after the command name, which is in brackets and may contain spaces:
        # state, ppid, pgrp (proc(5)).
        fields = status.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(entry.name))
    return tuple(members)
