"""Mail log lines that record a message bounced because msmtp failed behind msmtpd.

msmtpd pipes each message to msmtp and turns msmtp's exit status into its SMTP reply: 451 for
the temporary statuses in ``TEMPORARY_EXIT_STATUSES``, 554 for every other non-zero status
(``src/msmtpd.c`` of msmtp 1.8). It also replies 554 without an exit status when the pipe
command cannot be started, its input breaks, or it ends without exiting (a signal). The MTA
in front of msmtpd returns a message to its sender on such a 554, so these lines count lost
mail. ``read_bounce`` recognises one line and ``BounceTally`` sums them up; reading the files
is the caller's part.

Postfix lines are read from syslog files, journald and Postfix's own ``maillog_file``, whose
lines have the syslog layout with a zero-padded day (``Dec 05 06:30:32 mail
postfix/smtp[12986]: ...`` from Postfix 3.7.11).

NOTE: when the relay bounces every message, Postfix sends its non-delivery notification to
the sender through the same relay, and that notification bounces too. Its line looks like
any other delivery, so each such notification counts as one more lost message.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smtpdiag.redact import redact

# The log parsers load when a line is read, not when this module is imported.
if TYPE_CHECKING:
    from smtpdiag.logs.timestamps import TimeReader

AUTH_EXIT_STATUSES = frozenset({77, 78})
"""EX_NOPERM (the server rejected AUTH) and EX_CONFIG (configuration or passwordeval failed)."""

TEMPORARY_EXIT_STATUSES = frozenset({68, 69, 71, 75})
"""Statuses for which msmtpd replies 451: EX_NOHOST, EX_UNAVAILABLE, EX_OSERR, EX_TEMPFAIL."""

EVIDENCE_LINES = 5
"""Log lines kept as evidence from the start and from the end of the bounces."""

MAX_MESSAGE_IDS = 100_000
"""Queue ids remembered per (source, exit status). Past this many, every further line counts
as a message of its own, so the message count becomes an upper bound."""

BounceKey = tuple[str, int | None]
"""``(source, exit status)``. The status is None when msmtpd replied 554 without one."""


@dataclass(frozen=True)
class Bounce:
    """One log line that records a message lost to a failed pipe command."""

    source: str
    """``postfix``, ``exim`` or ``msmtpd``."""
    exit_status: int | None
    """msmtp's exit status; None when the pipe command did not run to an exit status."""
    timestamp: float | None
    line: str
    """The log line up to msmtpd's reply, with secrets masked and registered values
    redacted."""
    message_id: str | None = None
    """Postfix queue id or Exim message id; None for msmtpd, which logs one line per message."""

    @property
    def is_auth_failure(self) -> bool:
        """Whether msmtp exited with 77 or 78, the statuses of a token or AUTH problem."""
        return self.exit_status in AUTH_EXIT_STATUSES


@dataclass(frozen=True)
class BounceSummary:
    """Bounces read from the mail logs."""

    bounces: tuple[Bounce, ...] = ()
    """Kept lines: the first and last ``EVIDENCE_LINES`` of each kind, for the evidence."""
    counts: Mapping[BounceKey, int] = field(default_factory=dict)
    """Number of lines per ``(source, exit status)``. The MTAs log one line per recipient."""
    messages: Mapping[BounceKey, int] = field(default_factory=dict)
    """Number of messages per ``(source, exit status)``: distinct queue ids for Postfix and
    Exim, lines for msmtpd."""
    first_seen: Mapping[bool, float] = field(default_factory=dict)
    """Earliest time per kind: True for exit statuses 77 and 78, False for the others."""
    last_seen: Mapping[bool, float] = field(default_factory=dict)
    lines_read: int = 0
    complete: bool = True
    """Whether every file was read to its end before the check's deadline."""
    read_errors: tuple[tuple[str, str], ...] = ()
    now: float | None = None
    """Time of the scan (POSIX seconds), from which the age of the last bounce is taken."""


# msmtpd's log messages and 554 replies for a failed pipe command (src/msmtpd.c, msmtp 1.8).
_MSMTPD_PIPE_ERROR = re.compile(
    r"(?:pipe command reported error (\d+)|cannot start pipe command"
    r"|cannot pipe mail to command|pipe command failed to execute), session aborted"
)
_REPLY_PIPE_ERROR = re.compile(
    r"\b5\d\d[ -](?:\d\.\d{1,3}\.\d{1,3} )?(?:Pipe command reported error (\d+)"
    r"|Cannot start pipe command|Cannot pipe mail to command|Pipe command failed to execute)"
)
_EXIM_MESSAGE_ID = re.compile(r"(\S+) \*\* ")
_POSTFIX_QUEUE_ID = re.compile(r"([0-9A-Za-z]+): ")
"""Any run of letters and digits before ``: ``. Short queue ids are hexadecimal without a fixed
length (commonly 6 to 12 digits), and long ones (``enable_long_queue_ids``) are longer runs of
letters and digits."""
ELLIPSIS = "…"
"""Text put at the end of a bounce line that was cut after msmtpd's reply."""


def classify_bounce(program: str | None, message: str) -> BounceKey | None:
    """Return ``(source, exit status)`` of a log message that records a lost message.

    Three kinds of line are recognised, in the formats of the logs package. The first is
    msmtpd's own ``pipe command reported error N, session aborted`` for a status that msmtpd
    replies to with 554, or another ``…, session aborted`` error of the pipe command. The
    second is a Postfix smtp delivery line with ``status=bounced`` and such a 5xx reply, and the
    third an Exim ``**`` (bounce) line with such a reply. Deferrals are not bounces.
    """
    from smtpdiag.logs.exim import is_exim
    from smtpdiag.logs.postfix import is_postfix

    if program == "msmtpd":
        found = _MSMTPD_PIPE_ERROR.search(message)
        if found is None:
            return None
        status = None if found[1] is None else int(found[1])
        if status in TEMPORARY_EXIT_STATUSES:
            return None
        return "msmtpd", status
    found = _REPLY_PIPE_ERROR.search(message)
    if found is None or program is None:
        return None
    status = None if found[1] is None else int(found[1])
    if is_postfix(program) and "status=bounced" in message:
        return "postfix", status
    if is_exim(program) and _EXIM_MESSAGE_ID.match(message):
        return "exim", status
    return None


def message_id(source: str, message: str) -> str | None:
    """Return the Postfix queue id or Exim message id at the start of a log message."""
    pattern = {"postfix": _POSTFIX_QUEUE_ID, "exim": _EXIM_MESSAGE_ID}.get(source)
    found = pattern.match(message) if pattern is not None else None
    return None if found is None else found[1]


class BounceTally:
    """Mutable counts while the logs are read; ``summary`` freezes them."""

    def __init__(self) -> None:
        self.counts: Counter[BounceKey] = Counter()
        self.messages: Counter[BounceKey] = Counter()
        self.message_ids: dict[BounceKey, set[str]] = {}
        self.first: dict[bool, list[Bounce]] = {True: [], False: []}
        self.last: dict[bool, list[Bounce]] = {True: [], False: []}
        self.first_seen: dict[bool, float] = {}
        self.last_seen: dict[bool, float] = {}

    def add(self, bounce: Bounce) -> None:
        """Count one bounce and keep its line when it is among the first or last of its kind."""
        key = (bounce.source, bounce.exit_status)
        self.counts[key] += 1
        self._count_message(key, bounce.message_id)
        kind = bounce.is_auth_failure
        if len(self.first[kind]) < EVIDENCE_LINES:
            self.first[kind].append(bounce)
        else:
            self.last[kind] = [*self.last[kind][-(EVIDENCE_LINES - 1) :], bounce]
        if bounce.timestamp is not None:
            self.first_seen[kind] = min(
                self.first_seen.get(kind, bounce.timestamp), bounce.timestamp
            )
            self.last_seen[kind] = max(self.last_seen.get(kind, bounce.timestamp), bounce.timestamp)

    def _count_message(self, key: BounceKey, identifier: str | None) -> None:
        """Count a message once per queue id; a line without an id is a message of its own."""
        if identifier is None:
            self.messages[key] += 1
            return
        seen = self.message_ids.setdefault(key, set())
        if identifier in seen:
            return
        if len(seen) < MAX_MESSAGE_IDS:
            seen.add(identifier)
        self.messages[key] += 1

    def summary(
        self,
        lines_read: int,
        complete: bool,
        errors: Sequence[tuple[str, str]],
        now: float | None = None,
    ) -> BounceSummary:
        """Return the frozen counts with the reading state of the files."""
        evidence = [*self.first[True], *self.last[True], *self.first[False], *self.last[False]]
        return BounceSummary(
            tuple(evidence),
            counts=dict(self.counts),
            messages=dict(self.messages),
            first_seen=dict(self.first_seen),
            last_seen=dict(self.last_seen),
            lines_read=lines_read,
            complete=complete,
            read_errors=tuple(errors),
            now=now,
        )


def read_bounce(text: str, times: TimeReader) -> Bounce | None:
    """Return the bounce that one log line records, or None.

    The line kept for the evidence ends after msmtpd's reply (``evidence_text``). In what
    remains, secrets are masked (``[secret]``) as the log analysis masks them, and every
    registered secret value is redacted.
    """
    from smtpdiag.logs import exim, journal, msmtpd, syslog
    from smtpdiag.logs.leaks import find_leaks, mask_leaks

    if text.startswith("{"):
        record = journal.record_from_json(text)
    else:
        record = (
            msmtpd.split_logfile(text, times)
            or syslog.split_header(text, times)
            or exim.split_mainlog(text, times)
        )
    if record is None:
        return None
    found = classify_bounce(record.program, record.message)
    if found is None:
        return None
    source, exit_status = found
    evidence = evidence_text(source, text, record.message)
    line = redact(mask_leaks(evidence, find_leaks(evidence)))
    identifier = message_id(source, record.message)
    return Bounce(source, exit_status, record.timestamp, line, identifier)


def evidence_text(source: str, text: str, message: str) -> str:
    """Cut a bounce line after msmtpd's reply or log message, and mark the cut with ``…``.

    msmtpd writes nothing after ``Pipe command reported error N`` or ``session aborted``, so
    whatever follows in the line came from elsewhere: Postfix adds ``(in reply to end of DATA
    command))``, but a relay that is not msmtpd may put a token or password there. When the
    raw line does not contain the reply, as in a journal line whose MESSAGE is an array of
    bytes, the decoded message is cut instead.
    """
    pattern = _MSMTPD_PIPE_ERROR if source == "msmtpd" else _REPLY_PIPE_ERROR
    found = pattern.search(text)
    if found is None:
        text, found = message, pattern.search(message)
    if found is None:
        # Not reached for a line that classify_bounce accepted, whose message has the reply.
        return ELLIPSIS
    if not text[found.end() :].strip():
        return text
    return text[: found.end()] + ELLIPSIS
