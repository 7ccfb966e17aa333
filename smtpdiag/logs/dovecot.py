"""Dovecot 2.3 log lines: logins and failed AUTH of its login processes, and their causes.

Dovecot writes its own log file (``log_path``) as ``Mon DD HH:MM:SS process: Level: text``,
without host or pid. The process may carry the user, pid and session, as in
``submission(user)<pid><session>`` or ``auth-worker(pid)``. Written to syslog or journald, the
tag is ``dovecot`` and the message is ``process: Level: text``, without the level for Info::

    Dec 05 06:21:30 auth: Info: oauth2(user@example.com,127.0.0.1,<gt7ZAN1hCr5/AAAB>): oauth2
        failed: Introspection failed: Provided token is not valid
    Dec 05 06:21:30 submission-login: Info: Disconnected: Aborted login by logging out (auth
        failed, 1 attempts in 0 secs): user=<user@example.com>, method=XOAUTH2, rip=127.0.0.1,
        lip=127.0.0.1, TLS, session=<gt7ZAN1hCr5/AAAB>
    Dec 05 06:22:18 submission-login: Info: Login: user=<user@example.com>, method=XOAUTH2,
        rip=127.0.0.1, lip=127.0.0.1, mpid=5561, TLS, session=<cICBA91hBoF/AAAB>

Events, all on the server side:

* ``*-login: Login: ...``: one successful AUTH.
* ``*-login: ... (<reason>): user=<...>, method=...``: the session ended without a login.
  ``(auth failed, N attempts in S secs)`` and ``(authorization failed, N attempts ...)`` are N
  failed attempts, ``auth.token_rejected`` for ``method=XOAUTH2`` or ``OAUTHBEARER`` and
  ``auth.credentials_rejected`` for other mechanisms. Each other reason in
  ``DISCONNECT_REASONS``, such as a temporary failure of the auth service or an unsupported
  mechanism, is one. Reasons without an attempt, such as ``(no auth attempts in 1 secs)``,
  give no event.
* ``auth: oauth2(user,ip,<session>): oauth2 failed: <step> failed: <error>``: the oauth2
  passdb's verdict on one token, with the reason in ``OAUTH2_REASONS``. Dovecot logs it at
  Error when the token endpoint failed and at Info when the token was refused
  (``mech-oauth2.c`` and ``db-oauth2.c`` of Dovecot 2.3). Dovecot 2.3.19 writes the Info line
  only with ``auth_verbose = yes``; without it the disconnect line is the only trace.

Counting rule, so that one failed AUTH counts once: the ``oauth2 failed`` line is the failed
attempt, because it carries the precise reason. The parser remembers how many such lines
each session had (the last ``MEMORY_SIZE`` sessions). The disconnect line of that session
then counts only the attempts beyond them, with the reason of the disconnect. A session
without ``oauth2 failed`` lines (other passdbs, or an Info line that the log level dropped)
has every attempt counted by its disconnect line. A ``Login:`` line drops the session from
that memory, so failures before a later successful AUTH of the same session stay counted.

Every other line of a Dovecot process (master, config, the mail processes, Debug lines) is
attributed to Dovecot without an event.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from dataclasses import dataclass

from smtpdiag.logs.model import LineResult, LogEvent, Outcome, Side, Source, SyslogRecord
from smtpdiag.logs.timestamps import TimeReader

MEMORY_SIZE = 1024
"""Number of sessions whose ``oauth2 failed`` lines the parser remembers."""

SYSLOG_TAG = "dovecot"
"""Tag of Dovecot's lines in syslog and SYSLOG_IDENTIFIER in journald."""

PROCESSES = frozenset(
    {
        "aggregator",
        "anvil",
        "auth",
        "auth-worker",
        "config",
        "dict",
        "dict-async",
        "director",
        "dns-client",
        "doveadm",
        "doveadm-server",
        "imap",
        "imap-hibernate",
        "imap-urlauth",
        "imap-urlauth-worker",
        "indexer",
        "indexer-worker",
        "ipc",
        "lda",
        "lmtp",
        "log",
        "managesieve",
        "master",
        "pop3",
        "quota-status",
        "replicator",
        "ssl-params",
        "stats",
        "submission",
    }
)
"""Names of Dovecot 2.3's services, as the first word of their log lines; any name ending in
``-login`` is a login process too."""

LEVELS = ("Info", "Warning", "Error", "Fatal", "Panic", "Debug")
"""Log levels that Dovecot writes after the process name."""

TOKEN_REJECTED = "auth.token_rejected"  # noqa: S105 - a finding code
USER_MISMATCH = "scope.user_mismatch"
INSUFFICIENT_SCOPE = "auth.insufficient_scope"
TEMPORARY_FAILURE = "auth.temporary_failure"
CREDENTIALS_REJECTED = "auth.credentials_rejected"
CLIENT_ABORTED = "auth_failure_rate.client_aborted"

BEARER_MECHANISMS = frozenset({"XOAUTH2", "OAUTHBEARER"})
"""Mechanisms whose failed attempts count as ``auth.token_rejected`` in place of
``auth.credentials_rejected``."""

OAUTH2_REASONS: tuple[tuple[str, str], ...] = (
    ("Provided token is not valid", TOKEN_REJECTED),
    ("Invalid token", TOKEN_REJECTED),
    ("Username '", USER_MISMATCH),
    ("Token is not valid for scope", INSUFFICIENT_SCOPE),
)
"""Start of the error after ``Introspection failed: `` (or ``Token validation failed: ``) and
its finding code. Every other error is the token endpoint's failure (an HTTP status such as
``500 Internal Server Error``, a TLS or CA file error, a timeout), and Dovecot replies ``454``
for it, a temporary failure."""

DISCONNECT_REASONS: dict[str, str | None] = {
    "auth failed": CREDENTIALS_REJECTED,
    "authorization failed": CREDENTIALS_REJECTED,
    "auth service reported temporary failure": TEMPORARY_FAILURE,
    "auth process communication failure": TEMPORARY_FAILURE,
    "user disabled": CREDENTIALS_REJECTED,
    "password expired": CREDENTIALS_REJECTED,
    "login disabled": CREDENTIALS_REJECTED,
    "sent invalid base64 in response": "auth.cannot_decode",
    "tried to use unsupported auth mechanism": "auth.mechanism_unsupported",
    "tried to use disallowed plaintext auth": "auth.encryption_required",
    "tried to use disallowed cleartext auth": "auth.encryption_required",
    "aborted authentication": CLIENT_ABORTED,
    "auth aborted by client": CLIENT_ABORTED,
    "disconnected while authenticating": CLIENT_ABORTED,
    "client didn't finish SASL auth": CLIENT_ABORTED,
    "no auth attempts": None,
    "disconnected before auth was ready": None,
    "disconnected while finishing login": None,
    "internal failure": None,
    "proxy dest auth failed": None,
}
"""Start of the bracketed reason of a login process's disconnect line and the finding code of
its failed attempts; None for reasons without a failed attempt. Texts of
``client_get_extra_disconnect_reason`` in ``src/login-common/client-common.c``, Dovecot 2.3."""

_SOURCE_ONLY = LineResult(source=Source.DOVECOT)
_LOGFILE = re.compile(
    r"(?P<minute>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d):(?P<second>\d\d)"
    r" (?P<process>[a-z][\w-]*(?:\([^)]*\))?(?:<[^>]*>)*): (?P<message>.*)",
    re.DOTALL,
)
_PROCESS = re.compile(
    r"(?P<process>[a-z][\w-]*(?:\([^)]*\))?(?:<[^>]*>)*): (?P<message>.*)", re.DOTALL
)
_SESSION = re.compile(r"session=<(?P<session>[^>]*)>")
_DISCONNECT = re.compile(r"\((?P<reason>[^()]*)\): user=<(?P<user>[^>]*)>(?P<fields>.*)$")
_ATTEMPTS = re.compile(r", (?P<count>\d+) attempts in ")
_METHOD = re.compile(r"method=(?P<method>[\w-]+)")
_REMOTE_IP = re.compile(r"rip=(?P<ip>[^,\s]+)")
_OAUTH2_FAILED = re.compile(
    r"oauth2\((?P<user>[^,]*),(?P<ip>[^,]*),<(?P<session>[^>]*)>\): oauth2 failed: "
    r"(?P<text>.*)$"
)
_STEP = re.compile(
    r"(?:Introspection|Token validation|Local validation|Password grant|Token is not valid)"
    r"(?: failed)?: "
)


@dataclass(frozen=True, slots=True)
class DovecotLine:
    """A Dovecot log line split into its process, level and text."""

    process: str
    """Process name without the user, pid or session in brackets (``submission-login``)."""
    level: str
    text: str
    timestamp: float | None


def is_process(name: str) -> bool:
    """Return whether a syslog tag or log file word is the name of a Dovecot process."""
    base = name.partition("(")[0].partition("<")[0]
    return base in PROCESSES or base.endswith("-login")


def split_logfile(line: str, times: TimeReader) -> SyslogRecord | None:
    """Split a line of Dovecot's ``log_path`` file; None if it is not one.

    The result's program is the process (user, pid and session included) and its message
    starts with the level, as ``syslog.split_header`` splits such a line when its process has
    no brackets.
    """
    found = _LOGFILE.match(line)
    if found is None or not is_process(found["process"]):
        return None
    message = found["message"]
    if not message.startswith(LEVELS):
        return None
    timestamp = times.without_year_text(found["minute"], found["second"])
    return SyslogRecord(message=message, timestamp=timestamp, program=found["process"])


def split_record(record: SyslogRecord) -> DovecotLine | None:
    """Return the process, level and text of a Dovecot record; None if it is not one.

    A record with the tag ``dovecot`` carries the process at the start of its message and
    omits the level ``Info``. Any other record comes from the log file, where its program is
    the process and its message starts with the level.
    """
    program = record.program or ""
    message = record.message
    if program == SYSLOG_TAG:
        found = _PROCESS.match(message)
        if found is None or not is_process(found["process"]):
            return None
        program, message = found["process"], found["message"]
        level, text = _split_level(message) or ("Info", message)
    else:
        if not is_process(program):
            return None
        split = _split_level(message)
        if split is None:
            return None
        level, text = split
    process = program.partition("(")[0].partition("<")[0]
    return DovecotLine(process, level, text, record.timestamp)


def _split_level(message: str) -> tuple[str, str] | None:
    level, separator, text = message.partition(": ")
    if not separator or level not in LEVELS:
        return None
    return level, text


class DovecotParser:
    """Reads Dovecot lines; one instance per analysis, because it remembers the ``oauth2
    failed`` lines of recent sessions (see the module docstring)."""

    def __init__(self) -> None:
        self._causes: OrderedDict[str, int] = OrderedDict()

    def parse(self, record: SyslogRecord) -> LineResult | None:
        """Return the events of one Dovecot record; None for a record of another program."""
        line = split_record(record)
        if line is None:
            return None
        if line.level == "Debug":
            return _SOURCE_ONLY
        if line.process.endswith("-login"):
            return self._parse_login(line)
        if line.process == "auth" and "oauth2 failed: " in line.text:
            return self._parse_oauth2_failure(line)
        return _SOURCE_ONLY

    def _parse_login(self, line: DovecotLine) -> LineResult:
        text = line.text
        session_id = _field(_SESSION, text, "session")
        if text.startswith("Login: "):
            if session_id is not None:
                self._causes.pop(session_id, None)
            return _login_success(line)

        found = _DISCONNECT.search(text)
        if found is None:
            return _SOURCE_ONLY
        reason, attempts = _disconnect_reason(found["reason"])
        if reason is None:
            return _SOURCE_ONLY
        if session_id is not None:
            attempts -= self._causes.pop(session_id, 0)
        event = _disconnect_failure(line, found, reason)
        return LineResult((event,) * max(attempts, 0), Source.DOVECOT)

    def _parse_oauth2_failure(self, line: DovecotLine) -> LineResult:
        found = _OAUTH2_FAILED.search(line.text)
        if found is None:
            return LineResult(source=Source.DOVECOT, parse_error=True)
        session = found["session"]
        self._causes[session] = self._causes.get(session, 0) + 1
        self._causes.move_to_end(session)
        if len(self._causes) > MEMORY_SIZE:
            self._causes.popitem(last=False)
        error = _STEP.sub("", found["text"], count=1)
        event = LogEvent(
            Source.DOVECOT,
            Side.SERVER,
            Outcome.FAILURE,
            line.timestamp,
            found["ip"] or None,
            reason=oauth2_reason(error),
            reply_text=error,
        )
        return LineResult((event,), Source.DOVECOT)


def oauth2_reason(error: str) -> str:
    """Return the finding code of the oauth2 passdb's error text (after ``... failed: ``)."""
    for start, reason in OAUTH2_REASONS:
        if error.startswith(start):
            return reason
    return TEMPORARY_FAILURE


def _disconnect_reason(text: str) -> tuple[str | None, int]:
    """Return the finding code and failed attempts of a disconnect reason in brackets."""
    for start, reason in DISCONNECT_REASONS.items():
        if text.startswith(start):
            attempts = _ATTEMPTS.search(text)
            return reason, int(attempts["count"]) if attempts is not None else 1
    # NOTE: a reason of a later Dovecot release is not counted until it is listed.
    return None, 0


def _disconnect_failure(line: DovecotLine, found: re.Match[str], reason: str) -> LogEvent:
    """Return the failed attempt of a disconnect line that ``_DISCONNECT`` matched."""
    fields = found["fields"]
    mechanism = _field(_METHOD, fields, "method")
    if reason == CREDENTIALS_REJECTED and mechanism in BEARER_MECHANISMS:
        # The credential of a bearer mechanism is the token, and Dovecot logs the passdb's
        # reason only with auth_verbose = yes.
        reason = TOKEN_REJECTED
    return LogEvent(
        Source.DOVECOT,
        Side.SERVER,
        Outcome.FAILURE,
        line.timestamp,
        _field(_REMOTE_IP, fields, "ip"),
        reason=reason,
        reply_text=found["reason"],
        mechanism=mechanism,
    )


def _login_success(line: DovecotLine) -> LineResult:
    text = line.text
    event = LogEvent(
        Source.DOVECOT,
        Side.SERVER,
        Outcome.SUCCESS,
        line.timestamp,
        _field(_REMOTE_IP, text, "ip"),
        mechanism=_field(_METHOD, text, "method"),
    )
    return LineResult((event,), Source.DOVECOT)


def _field(pattern: re.Pattern[str], text: str, group: str) -> str | None:
    """Return ``group`` of the last match in ``text``, None without a match.

    Dovecot writes ``user=<name>`` first and unescaped, so a client can put ``rip=`` or
    ``method=`` into its user name. The fields that Dovecot itself writes come after it.
    """
    last = deque(pattern.finditer(text), maxlen=1)
    return last[0][group] if last else None
