"""Values that the log parsers produce and the analysis consumes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Source(StrEnum):
    """Program that wrote a log line; also the ``source`` metric label (a closed set)."""

    MSMTP = "msmtp"
    MSMTPD = "msmtpd"
    POSTFIX = "postfix"
    EXIM = "exim"
    DOVECOT = "dovecot"
    JOURNAL = "journal"
    """A journald entry of any other program; no parser counts such entries."""


class Side(StrEnum):
    """End of the SMTP session that logged the line."""

    CLIENT = "client"
    """The logging program sent AUTH to a server (msmtp, Postfix smtp, Exim transports)."""
    SERVER = "server"
    """The logging program received AUTH from a client (Postfix smtpd, Exim, msmtpd,
    Dovecot)."""


class Outcome(StrEnum):
    """Counter that one event adds to."""

    SUCCESS = "success"
    """One AUTH attempt that succeeded, or a submission that got past AUTH."""
    FAILURE = "failure"
    """One AUTH attempt, or one submission, that failed at or before AUTH."""
    DELIVERY = "delivery"
    """Fate of a message after a failure that an earlier event counted; not an attempt."""
    CAUSE = "cause"
    """Cause of a failure that another event counted, such as sasl-xoauth2's token error
    behind Postfix's own failure line; not an attempt."""

    @property
    def is_attempt(self) -> bool:
        """Whether the event counts as one AUTH attempt."""
        return self in (Outcome.SUCCESS, Outcome.FAILURE)


class Fate(StrEnum):
    """Outcome for the message itself, when the line names it."""

    SENT = "sent"
    DEFERRED = "deferred"
    """Still queued: the sending MTA retries it later."""
    BOUNCED = "bounced"
    """Returned to the sender or dropped: the message is lost unless someone resends it."""


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One fact read from one log line."""

    source: Source
    side: Side
    outcome: Outcome
    timestamp: float | None = None
    """POSIX time in seconds (UTC); None when the line carries no time."""
    host: str | None = None
    """The peer: the server name for the client side, the client address for the server side;
    None when the line does not name it."""
    reason: str | None = None
    """Finding code of a failure (``auth.credentials_rejected``); None for successes."""
    reply_code: int | None = None
    enhanced_code: str | None = None
    reply_text: str | None = None
    """The server's reply as the log line gives it, lines joined by spaces; never redacted
    here, so renderers pass it through the redactor."""
    mechanism: str | None = None
    fate: Fate | None = None


@dataclass(frozen=True, slots=True)
class SyslogRecord:
    """A log line split into its syslog header and message.

    Formats without a header (msmtp's own log file) give ``program`` None.
    """

    message: str
    timestamp: float | None = None
    hostname: str | None = None
    program: str | None = None
    """Syslog tag without the pid, such as ``msmtp``, ``postfix/submission/smtpd``."""
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class LineResult:
    """Everything one line yields: events for the counters, and whether it was understood."""

    events: tuple[LogEvent, ...] = ()
    source: Source | None = None
    """Source the line was attributed to; None for lines of no known mail program."""
    parse_error: bool = False
    """The line belongs to a known source and looks relevant but could not be read."""


NO_RESULT = LineResult()
"""Result of a line of no known source, or one without AUTH information."""
