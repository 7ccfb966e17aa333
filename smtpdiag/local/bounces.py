"""Mail log lines that record a message bounced because msmtp failed behind msmtpd.

msmtpd pipes each message to msmtp and turns msmtp's exit status into its SMTP reply: 451 for
the temporary statuses in ``TEMPORARY_EXIT_STATUSES``, 554 for every other non-zero status
(``src/msmtpd.c`` of msmtp 1.8). The MTA in front of msmtpd returns a message to its sender on
such a 554, so these lines count lost mail. ``read_bounce`` recognises one line and
``BounceTally`` sums them up; reading the files is the caller's part.
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


@dataclass(frozen=True)
class Bounce:
    """One log line that records a message lost to a failed pipe command."""

    source: str
    """``postfix``, ``exim`` or ``msmtpd``."""
    exit_status: int
    timestamp: float | None
    line: str
    """The log line, redacted."""


@dataclass(frozen=True)
class BounceSummary:
    """Bounces read from the mail logs."""

    bounces: tuple[Bounce, ...] = ()
    """Kept lines: the first and last ``EVIDENCE_LINES`` of each kind, for the evidence."""
    counts: Mapping[tuple[str, int], int] = field(default_factory=dict)
    """Number of lines per ``(source, exit status)``."""
    first_seen: Mapping[bool, float] = field(default_factory=dict)
    """Earliest time per kind: True for exit statuses 77 and 78, False for the others."""
    last_seen: Mapping[bool, float] = field(default_factory=dict)
    lines_read: int = 0
    complete: bool = True
    """Whether every file was read to its end before the check's deadline."""
    read_errors: tuple[tuple[str, str], ...] = ()


_MSMTPD_PIPE_ERROR = re.compile(r"pipe command reported error (\d+), session aborted")
_REPLY_PIPE_ERROR = re.compile(
    r"\b5\d\d[ -](?:\d\.\d{1,3}\.\d{1,3} )?Pipe command reported error (\d+)"
)
_EXIM_MESSAGE_ID = re.compile(r"\S+ \*\* ")


def classify_bounce(program: str | None, message: str) -> tuple[str, int] | None:
    """Return ``(source, exit status)`` of a log message that records a lost message.

    Recognised (the line formats of the logs package): msmtpd's own ``pipe command reported
    error N, session aborted`` for a status that msmtpd replies to with 554; a Postfix smtp
    delivery line with ``status=bounced`` and a 5xx ``Pipe command reported error N`` reply;
    an Exim ``**`` (bounce) line with such a reply. Deferrals are not bounces.
    """
    from smtpdiag.logs.exim import is_exim
    from smtpdiag.logs.postfix import is_postfix

    if program == "msmtpd":
        found = _MSMTPD_PIPE_ERROR.search(message)
        if found is None or int(found[1]) in TEMPORARY_EXIT_STATUSES:
            return None
        return "msmtpd", int(found[1])
    found = _REPLY_PIPE_ERROR.search(message)
    if found is None or program is None:
        return None
    if is_postfix(program) and "status=bounced" in message:
        return "postfix", int(found[1])
    if is_exim(program) and _EXIM_MESSAGE_ID.match(message):
        return "exim", int(found[1])
    return None


class BounceTally:
    """Mutable counts while the logs are read; ``summary`` freezes them."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, int]] = Counter()
        self.first: dict[bool, list[Bounce]] = {True: [], False: []}
        self.last: dict[bool, list[Bounce]] = {True: [], False: []}
        self.first_seen: dict[bool, float] = {}
        self.last_seen: dict[bool, float] = {}

    def add(self, bounce: Bounce) -> None:
        """Count one bounce and keep its line when it is among the first or last of its kind."""
        self.counts[bounce.source, bounce.exit_status] += 1
        kind = bounce.exit_status in AUTH_EXIT_STATUSES
        if len(self.first[kind]) < EVIDENCE_LINES:
            self.first[kind].append(bounce)
        else:
            self.last[kind] = [*self.last[kind][-(EVIDENCE_LINES - 1) :], bounce]
        if bounce.timestamp is not None:
            self.first_seen[kind] = min(
                self.first_seen.get(kind, bounce.timestamp), bounce.timestamp
            )
            self.last_seen[kind] = max(self.last_seen.get(kind, bounce.timestamp), bounce.timestamp)

    def summary(
        self, lines_read: int, complete: bool, errors: Sequence[tuple[str, str]]
    ) -> BounceSummary:
        """Return the frozen counts with the reading state of the files."""
        kept = [*self.first[True], *self.last[True], *self.first[False], *self.last[False]]
        return BounceSummary(
            tuple(kept),
            dict(self.counts),
            dict(self.first_seen),
            dict(self.last_seen),
            lines_read,
            complete,
            tuple(errors),
        )


def read_bounce(text: str, times: TimeReader) -> Bounce | None:
    """Return the bounce that one log line records, or None."""
    from smtpdiag.logs import exim, journal, msmtpd, syslog

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
    return Bounce(source, exit_status, record.timestamp, redact(text))
