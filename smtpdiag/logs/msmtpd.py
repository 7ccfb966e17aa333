"""msmtpd: the small SMTP server of the msmtp package that pipes each message to msmtp.

With ``--log=FILE`` msmtpd writes ``YYYY-MM-DD HH:MM:SS msmtpd[<pid>] info|error: <message>``
in local time; with ``--log=syslog`` the tag is ``msmtpd`` with the pid, facility mail.
Messages counted (texts of msmtp 1.8 ``src/msmtpd.c``):

* ``authenticated user <user>``: a server-side AUTH success (msmtpd implements AUTH PLAIN
  only, with ``--auth``).
* ``authentication failed, session aborted``: a server-side AUTH failure after msmtpd
  replied ``535 Authentication failed``.
* ``client did not authenticate, session aborted``: msmtpd replied ``530 Authentication
  required`` to a client that sent no AUTH; a server-side failure.
* ``pipe command reported error <N>, session aborted``: msmtp exited with status N, so the
  message was not sent. This is a client-side failure with reason
  ``auth_failure_rate.pipe_command_deferred`` for a 451 reply and
  ``auth_failure_rate.pipe_command_failed`` for a 554. msmtpd replies 451 (the sender retries) for
  EX_NOHOST, EX_UNAVAILABLE, EX_OSERR and EX_TEMPFAIL, and 554 (the sender bounces) for
  every other status. ``pipe command failed to execute`` and ``cannot start pipe command``
  count the same way, with reply 554.
* ``mail was piped successfully``: msmtp exited 0 and msmtpd replied ``250 Ok, mail was
  piped``; a client-side success with fate sent, so that a relay's failure ratio has its
  successes.

msmtpd's log lines never name the client, so ``host`` stays None.

NOTE: the 451/554 split is read from the msmtpd source that also logs the pipe error. No
msmtpd binary was available to confirm which release introduced it.
"""

from __future__ import annotations

import re

from smtpdiag.logs.model import (
    Fate,
    LineResult,
    LogEvent,
    Outcome,
    Side,
    Source,
    SyslogRecord,
)
from smtpdiag.logs.timestamps import TimeReader

PIPE_COMMAND_FAILED = "auth_failure_rate.pipe_command_failed"
PIPE_COMMAND_DEFERRED = "auth_failure_rate.pipe_command_deferred"
CREDENTIALS_REJECTED = "auth.credentials_rejected"
AUTHENTICATION_REQUIRED = "auth.authentication_required"

_LOGFILE = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d) (?P<hour>\d\d):(?P<minute>\d\d):"
    r"(?P<second>\d\d) msmtpd\[(?P<pid>\d+)\] (?:info|error): (?P<message>.*)",
    re.DOTALL,
)
_PIPE_ERROR = re.compile(r"pipe command reported error (\d+)")
_TEMPORARY_EXIT_STATUSES = frozenset((68, 69, 71, 75))
"""EX_NOHOST, EX_UNAVAILABLE, EX_OSERR, EX_TEMPFAIL: msmtpd replies 451 for these."""
_PIPE_NOT_RUN = ("pipe command failed to execute", "cannot start pipe command")

_SOURCE_ONLY = LineResult(source=Source.MSMTPD)


_PIPED = "mail was piped successfully"


def split_logfile(line: str, times: TimeReader) -> SyslogRecord | None:
    """Split a line of msmtpd's ``--log=FILE`` output; None if it is not one."""
    if line[19:27] != " msmtpd[":
        return None
    found = _LOGFILE.match(line)
    if found is None:
        return None
    timestamp = times.local(
        int(found["year"]),
        int(found["month"]),
        int(found["day"]),
        int(found["hour"]),
        int(found["minute"]),
        int(found["second"]),
    )
    return SyslogRecord(
        message=found["message"], timestamp=timestamp, program="msmtpd", pid=int(found["pid"])
    )


def parse_record(record: SyslogRecord) -> LineResult:
    """Count one msmtpd message: an AUTH success or failure, a failed pipe command, or nothing."""
    message = record.message
    if message.startswith("authenticated user "):
        return _event(record, Side.SERVER, Outcome.SUCCESS)
    if message.startswith("authentication failed"):
        return _event(
            record,
            Side.SERVER,
            Outcome.FAILURE,
            reason=CREDENTIALS_REJECTED,
            reply=(535, "Authentication failed"),
        )
    if message.startswith("client did not authenticate"):
        return _event(
            record,
            Side.SERVER,
            Outcome.FAILURE,
            reason=AUTHENTICATION_REQUIRED,
            reply=(530, "Authentication required"),
        )
    return _pipe_result(record)


def _pipe_result(record: SyslogRecord) -> LineResult:
    message = record.message
    if message.startswith(_PIPED):
        return _event(record, Side.CLIENT, Outcome.SUCCESS, fate=Fate.SENT)
    if "pipe command" not in message:
        return _SOURCE_ONLY

    found = _PIPE_ERROR.match(message)
    if found is not None:
        status = int(found[1])
        code = 451 if status in _TEMPORARY_EXIT_STATUSES else 554
        text = f"Pipe command reported error {status}"
    elif message.startswith(_PIPE_NOT_RUN):
        code = 554
        text = message.split(",", 1)[0]
        text = text[:1].upper() + text[1:]
    else:
        return _SOURCE_ONLY
    return _event(
        record,
        Side.CLIENT,
        Outcome.FAILURE,
        reason=PIPE_COMMAND_DEFERRED if code == 451 else PIPE_COMMAND_FAILED,
        reply=(code, text),
        fate=Fate.DEFERRED if code == 451 else Fate.BOUNCED,
    )


def _event(
    record: SyslogRecord,
    side: Side,
    outcome: Outcome,
    *,
    reason: str | None = None,
    reply: tuple[int, str] | None = None,
    fate: Fate | None = None,
) -> LineResult:
    event = LogEvent(
        source=Source.MSMTPD,
        side=side,
        outcome=outcome,
        timestamp=record.timestamp,
        reason=reason,
        reply_code=reply[0] if reply is not None else None,
        reply_text=reply[1] if reply is not None else None,
        mechanism="PLAIN" if side is Side.SERVER else None,
        fate=fate,
    )
    return LineResult(events=(event,), source=Source.MSMTPD)
