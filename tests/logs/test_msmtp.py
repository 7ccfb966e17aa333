"""msmtp's log record: fields, counting rule, reasons, time formats and the stderr copy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smtpdiag.logs import msmtp
from smtpdiag.logs.keywords import CANDIDATE
from smtpdiag.logs.model import LineResult, LogEvent, Outcome, Side, Source, SyslogRecord
from smtpdiag.logs.timestamps import TimeReader

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC).timestamp()
TIMES = TimeReader(UTC, now=lambda: NOW)

# Lines produced by Debian's msmtp 1.8.23 against the lab (smtpdiag.lab), with the lab's
# account and addresses; the lab listens on 127.0.0.1.
REAL_HEALTHY = (
    "Dec 05 00:39:28 host=127.0.0.1 tls=on auth=on user=lab.user@example.com "
    "from=lab.user@example.com recipients=rcpt@example.com mailsize=147 smtpstatus=250 "
    "smtpmsg='250 2.0.0 OK: discarded by the lab' exitcode=EX_OK"
)
REAL_GOOGLE_BAD_TOKEN = (
    "Dec 05 00:39:28 host=127.0.0.1 tls=on auth=on user=lab.user@example.com "
    "from=lab.user@example.com recipients=rcpt@example.com smtpstatus=535 "
    "smtpmsg='535 5.7.8 Username and Password not accepted. For more information, go to "
    "https://support.google.com/mail/?p=BadCredentials' "
    "errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM"
)
REAL_MICROSOFT_AUTH_DISABLED = (
    "Dec 05 00:39:28 host=127.0.0.1 tls=on auth=on user=lab.user@example.com "
    "from=lab.user@example.com recipients=rcpt@example.com smtpstatus=535 "
    "smtpmsg='535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
    "for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. "
    "[XX0PR00CA0000.namprd00.prod.outlook.com 2026-12-04T10:00:00.000Z 08DD0000000000]' "
    "errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM"
)
REAL_CERT_EXPIRED = (
    "Dec 05 00:39:28 host=127.0.0.1 tls=on auth=on user=lab.user@example.com "
    "from=lab.user@example.com recipients=rcpt@example.com errormsg='TLS certificate "
    "verification failed: The certificate is NOT trusted. The certificate chain uses expired "
    "certificate. ' exitcode=EX_UNAVAILABLE"
)
REAL_WRONG_HOSTNAME = (
    "Dec 05 00:39:28 host=127.0.0.1 tls=on auth=on user=lab.user@example.com "
    "from=lab.user@example.com recipients=rcpt@example.com errormsg='TLS certificate "
    "verification failed: The certificate is NOT trusted. The name in the certificate does "
    "not match the expected. ' exitcode=EX_UNAVAILABLE"
)
REAL_SEND_AS_DENIED = (
    "Dec 05 00:39:28 host=127.0.0.1 tls=on auth=on user=lab.user@example.com "
    "from=lab.user@example.com recipients=rcpt@example.com smtpstatus=554 "
    "smtpmsg='554 5.2.252 SendAsDenied; lab.user@example.com not allowed to send as "
    "other@example.com; STOREDRV.Submission.Exception:SendAsDeniedException."
    "MapiExceptionSendAsDenied [Hostname=XX0PR00MB0000.namprd00.prod.outlook.com]' "
    "errormsg='the server did not accept the mail' exitcode=EX_UNAVAILABLE"
)
REAL_GREETING_421 = (
    "Dec 05 00:39:28 host=127.0.0.1 tls=on auth=on user=lab.user@example.com "
    "from=lab.user@example.com recipients=rcpt@example.com smtpstatus=421 "
    "smtpmsg='421 4.3.2 Service not available' "
    "errormsg='cannot get initial OK message from server' exitcode=EX_PROTOCOL"
)

# A Gmail reply from a public msmtp log of 2010 (multi-line reply, quoted user name), with
# the user's address replaced.
GMAIL_PLAIN_REJECTED = (
    "Mar 13 11:29:50 host=smtp.gmail.com tls=on auth=on user='user@example.com' "
    "from=localuser recipients=rcpt@example.net smtpstatus=535 smtpmsg='535-5.7.1 Username "
    "and Password not accepted. Learn more at \\n535 5.7.1 "
    "http://mail.google.com/support/bin/answer.py?answer=14257 22sm1992975qyk.10' "
    "errormsg='authentication failed (method PLAIN)' exitcode=EX_NOPERM"
)

# Records built from msmtp 1.8's error texts (the strings in /usr/bin/msmtp) and field
# layout. The combination of reply, text and exit code in each is assumed, not captured.
RECIPIENT_REJECTED = (
    "host=smtp.example.com tls=on auth=on user=user@example.com from=user@example.com "
    "recipients=nobody@example.net smtpstatus=550 smtpmsg='550 5.1.1 <nobody@example.net>: "
    "Recipient address rejected: User unknown' errormsg='recipient address nobody@example.net "
    "not accepted by the server' exitcode=EX_DATAERR"
)
AUTH_OFF_530 = (
    "host=smtp.example.com tls=on auth=off from=user@example.com recipients=a@example.net "
    "smtpstatus=530 smtpmsg='530 5.7.0 Authentication required' errormsg='envelope from "
    "address user@example.com not accepted by the server' exitcode=EX_DATAERR"
)
AUTH_OFF_550 = (
    "host=smtp.example.com tls=on auth=off from=user@example.com recipients=a@example.net "
    "smtpstatus=550 smtpmsg='550 5.1.1 User unknown' errormsg='recipient address "
    "a@example.net not accepted by the server' exitcode=EX_DATAERR"
)
AUTH_OFF_SENT = (
    "host=127.0.0.1 tls=off auth=off from=user@example.com recipients=a@example.net "
    "mailsize=120 smtpstatus=250 smtpmsg='250 2.0.0 Ok: queued as 4F3' exitcode=EX_OK"
)
CONNECTION_REFUSED = (
    "host=smtp.example.com tls=on auth=on user=user@example.com from=user@example.com "
    "recipients=a@example.net errormsg='cannot connect to smtp.example.com, port 587: "
    "Connection refused' exitcode=EX_TEMPFAIL"
)
IO_ERROR_WITHOUT_TEXT = (
    "host=smtp.example.com tls=on auth=on user=user@example.com from=user@example.com "
    "recipients=a@example.net exitcode=EX_IOERR"
)
MECHANISM_MISSING = (
    "host=smtp.example.com tls=on auth=on user=user@example.com from=user@example.com "
    "recipients=a@example.net errormsg='the server does not support authentication method "
    "XOAUTH2' exitcode=EX_UNAVAILABLE"
)
UNKNOWN_ERROR = (
    "host=smtp.example.com tls=on auth=on user=user@example.com from=user@example.com "
    "recipients=a@example.net errormsg='cannot read output of ?oauth2token?' "
    "exitcode=EX_CONFIG"
)
UNCLASSIFIED_AT_AUTH = (
    "host=smtp.example.com tls=on auth=on user=user@example.com from=user@example.com "
    "recipients=a@example.net smtpstatus=550 smtpmsg='550 5.7.0 Too many attempts' "
    "errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM"
)
SOCKET_SUCCESS = (
    "socket=/run/smtp.sock tls=off auth=on user=relay from=user@example.com "
    "recipients=a@example.net mailsize=99 smtpstatus=250 smtpmsg='250 OK' exitcode=EX_OK"
)


def record(line: str) -> SyslogRecord:
    if line.startswith(("host=", "socket=")):
        return SyslogRecord(message=line)
    split = msmtp.split_logfile(line, TIMES, msmtp.DEFAULT_TIME_FORMAT)
    assert split is not None
    return split


def only_event(line: str) -> LogEvent:
    result = msmtp.parse_record(record(line))
    assert len(result.events) == 1
    return result.events[0]


@pytest.mark.parametrize(
    ("line", "outcome", "reason"),
    [
        pytest.param(REAL_HEALTHY, Outcome.SUCCESS, None, id="real-healthy"),
        pytest.param(
            REAL_GOOGLE_BAD_TOKEN,
            Outcome.FAILURE,
            "auth.credentials_rejected",
            id="real-google-bad-token",
        ),
        pytest.param(
            REAL_MICROSOFT_AUTH_DISABLED,
            Outcome.FAILURE,
            "auth.smtp_auth_disabled_tenant",
            id="real-microsoft-auth-disabled",
        ),
        pytest.param(REAL_CERT_EXPIRED, Outcome.FAILURE, "tls.cert_expired", id="real-expired"),
        pytest.param(
            REAL_WRONG_HOSTNAME, Outcome.FAILURE, "tls.hostname_mismatch", id="real-wrong-name"
        ),
        pytest.param(
            REAL_SEND_AS_DENIED, Outcome.FAILURE, "auth.send_as_denied", id="real-send-as-denied"
        ),
        pytest.param(
            REAL_GREETING_421,
            Outcome.FAILURE,
            "auth_failure_rate.connection_failed",
            id="real-greeting-421",
        ),
        pytest.param(
            GMAIL_PLAIN_REJECTED, Outcome.FAILURE, "auth.credentials_rejected", id="gmail-plain"
        ),
        pytest.param(RECIPIENT_REJECTED, Outcome.SUCCESS, None, id="recipient-rejected"),
        pytest.param(
            AUTH_OFF_530, Outcome.FAILURE, "auth.authentication_required", id="auth-off-530"
        ),
        pytest.param(
            CONNECTION_REFUSED,
            Outcome.FAILURE,
            "auth_failure_rate.connection_failed",
            id="connection-refused",
        ),
        pytest.param(
            IO_ERROR_WITHOUT_TEXT,
            Outcome.FAILURE,
            "auth_failure_rate.connection_failed",
            id="io-error-without-reply",
        ),
        pytest.param(
            MECHANISM_MISSING,
            Outcome.FAILURE,
            "auth.mechanism_unsupported",
            id="mechanism-not-offered",
        ),
        pytest.param(
            UNKNOWN_ERROR,
            Outcome.FAILURE,
            "auth_failure_rate.submission_failed",
            id="unknown-error",
        ),
        pytest.param(
            UNCLASSIFIED_AT_AUTH, Outcome.FAILURE, "auth.unclassified", id="unclassified-at-auth"
        ),
        pytest.param(SOCKET_SUCCESS, Outcome.SUCCESS, None, id="socket-success"),
    ],
)
def test_outcome_and_reason(line: str, outcome: Outcome, reason: str | None) -> None:
    event = only_event(line)
    assert event.outcome == outcome
    assert event.reason == reason


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(AUTH_OFF_SENT, id="auth-off-sent"),
        pytest.param(AUTH_OFF_550, id="auth-off-recipient-rejected"),
    ],
)
def test_auth_off_is_no_attempt(line: str) -> None:
    assert msmtp.parse_record(record(line)) == LineResult(source=Source.MSMTP)


def test_gmail_rejection_fields() -> None:
    event = only_event(GMAIL_PLAIN_REJECTED)
    assert event == LogEvent(
        source=Source.MSMTP,
        side=Side.CLIENT,
        outcome=Outcome.FAILURE,
        timestamp=datetime(2026, 3, 13, 11, 29, 50, tzinfo=UTC).timestamp(),
        host="smtp.gmail.com",
        reason="auth.credentials_rejected",
        reply_code=535,
        enhanced_code="5.7.1",
        reply_text=(
            "Username and Password not accepted. Learn more at "
            "http://mail.google.com/support/bin/answer.py?answer=14257 22sm1992975qyk.10"
        ),
        mechanism="PLAIN",
    )


def test_socket_is_host() -> None:
    assert only_event(SOCKET_SUCCESS).host == "/run/smtp.sock"


def test_mechanism_from_errormsg() -> None:
    assert only_event(REAL_GOOGLE_BAD_TOKEN).mechanism == "XOAUTH2"


def test_record_without_exitcode_is_parse_error() -> None:
    line = "host=smtp.example.com tls=on auth=on user=u from=u recipients=a@example.net"
    assert msmtp.parse_record(SyslogRecord(message=line)) == LineResult(
        source=Source.MSMTP, parse_error=True
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            "host=a tls=on auth=on user='user@example.com' exitcode=EX_OK",
            {"host": "a", "tls": "on", "auth": "on", "user": "user@example.com"},
            id="quoted-user",
        ),
        pytest.param(
            "host=a user='John Doe' from=x exitcode=EX_OK",
            {"host": "a", "user": "John Doe", "from": "x"},
            id="quoted-with-space",
        ),
        pytest.param(
            "host=a smtpmsg='550 from=x denied ?y?' errormsg='it failed' exitcode=EX_DATAERR",
            {"host": "a", "smtpmsg": "550 from=x denied ?y?", "errormsg": "it failed"},
            id="key-text-inside-quotes",
        ),
        pytest.param(
            "host=a errormsg='TLS failed. ' exitcode=EX_UNAVAILABLE  ",
            {"host": "a", "errormsg": "TLS failed. "},
            id="trailing-space-inside-quotes",
        ),
        pytest.param(
            "host=a from= recipients=b,c exitcode=EX_OK",
            {"host": "a", "from": "", "recipients": "b,c"},
            id="empty-value",
        ),
    ],
)
def test_parse_fields(message: str, expected: dict[str, str]) -> None:
    fields = msmtp.parse_fields(message)
    exit_code = fields.pop("exitcode")
    assert exit_code.startswith("EX_")
    assert fields == expected


@pytest.mark.parametrize(
    ("line", "time_format", "expected_time"),
    [
        pytest.param(REAL_HEALTHY, msmtp.DEFAULT_TIME_FORMAT, "2026-12-05T00:39:28", id="default"),
        pytest.param(
            "2026-12-04 10:00:01 host=a auth=on exitcode=EX_OK",
            "%Y-%m-%d %H:%M:%S",
            "2026-12-04T10:00:01",
            id="iso-like",
        ),
        pytest.param(
            "2026-12-04 10:00:01 host=a auth=on exitcode=EX_OK",
            "%F %T",
            "2026-12-04T10:00:01",
            id="c-shorthands",
        ),
        pytest.param(
            "Fri Dec  4 10:00:01 2026 host=a auth=on exitcode=EX_OK",
            "%c",
            "2026-12-04T10:00:01",
            id="locale-c-five-words",
        ),
        pytest.param(
            "04.12. 10:00 host=a auth=on exitcode=EX_OK",
            "%d.%m. %H:%M",
            "2026-12-04T10:00:00",
            id="custom-without-year",
        ),
    ],
)
def test_split_logfile_time(line: str, time_format: str, expected_time: str) -> None:
    split = msmtp.split_logfile(line, TIMES, time_format)
    assert split is not None
    assert split.message.startswith("host=")
    assert split.timestamp == datetime.fromisoformat(expected_time + "+00:00").timestamp()


def test_split_logfile_format_without_directives() -> None:
    line = "none host=a auth=on exitcode=EX_OK"
    assert msmtp.split_logfile(line, TIMES, "none") == SyslogRecord(message=line[5:])


def test_split_logfile_without_time() -> None:
    line = "host=a auth=on exitcode=EX_OK"
    assert msmtp.split_logfile(line, TIMES, None) == SyslogRecord(message=line)


@pytest.mark.parametrize(
    ("line", "time_format"),
    [
        pytest.param("Dec 05 00:39:28 something else", msmtp.DEFAULT_TIME_FORMAT, id="no-host"),
        pytest.param(
            "Dec 05 00:39:28 host=smtp.example.com", "%F %T", id="unread-time-without-exitcode"
        ),
        pytest.param("Dec 05 00:39:28 H=mx.example.com exitcode", None, id="no-record"),
    ],
)
def test_split_logfile_rejects(line: str, time_format: str | None) -> None:
    assert msmtp.split_logfile(line, TIMES, time_format) is None


@pytest.mark.parametrize(
    ("line", "time_format"),
    [
        pytest.param("host=a exitcode=EX_OK", msmtp.DEFAULT_TIME_FORMAT, id="time-missing"),
        pytest.param(REAL_HEALTHY, None, id="time-present-but-none"),
        pytest.param(REAL_HEALTHY, "%Y-%m-%d %H:%M:%S", id="other-format"),
        pytest.param("2026-13-45 10:00:00 host=a exitcode=EX_OK", "%F %T", id="invalid-date"),
        # A crash can leave NUL bytes where the file was preallocated; the next record follows.
        pytest.param("\x00\x00\x00" + REAL_HEALTHY, msmtp.DEFAULT_TIME_FORMAT, id="nul-bytes"),
        pytest.param("\x00\x00host=a auth=on exitcode=EX_OK", None, id="nul-bytes-none"),
    ],
)
def test_record_behind_unread_time_is_parse_error(line: str, time_format: str | None) -> None:
    split = msmtp.split_logfile(line, TIMES, time_format)
    assert split is not None
    assert split.message.startswith("host=")
    assert split.timestamp is None
    assert msmtp.parse_record(split) == LineResult(source=Source.MSMTP, parse_error=True)


@pytest.mark.parametrize(
    ("time_format", "problem"),
    [
        pytest.param("", "the format is empty", id="empty"),
        pytest.param("  ", "the format is empty", id="blank"),
        pytest.param("%", "it ends with a lone %", id="lone-percent"),
        pytest.param("%b %d %", "it ends with a lone %", id="trailing-percent"),
        pytest.param("%Q", "%Q is not a directive smtpdiag can read", id="unknown"),
        pytest.param("%s", "%s is not a directive smtpdiag can read", id="epoch-seconds"),
        pytest.param(msmtp.DEFAULT_TIME_FORMAT, None, id="default"),
        pytest.param("%F %T", None, id="shorthands"),
        pytest.param("%Y-%m-%dT%H:%M:%S%z", None, id="iso-with-offset"),
        pytest.param("%h %e %T", None, id="space-padded-day"),
        pytest.param("[%%] %c", None, id="literal-percent"),
    ],
)
def test_time_format_problem(time_format: str, problem: str | None) -> None:
    assert msmtp.time_format_problem(time_format) == problem


def test_space_padded_day_reads_back() -> None:
    line = "Dec  5 00:39:28 host=smtp.example.com tls=on auth=on exitcode=EX_OK"
    split = msmtp.split_logfile(line, TIMES, "%h %e %T")
    assert split is not None
    assert split.timestamp == datetime(2026, 12, 5, 0, 39, 28, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("msmtp: log info was: host=a auth=on exitcode=EX_OK", id="msmtp"),
        pytest.param("sendmail: log info was: host=a auth=on exitcode=EX_OK", id="sendmail"),
        pytest.param("/usr/sbin/sendmail: log info was: host=a auth=on exitcode=EX_OK", id="path"),
    ],
)
def test_parse_stderr(line: str) -> None:
    assert msmtp.parse_stderr(line) == SyslogRecord(message="host=a auth=on exitcode=EX_OK")


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("msmtp: cannot log to /var/log/msmtp: Permission denied", id="other-line"),
        pytest.param("msmtp: log info was: something", id="no-record"),
        pytest.param("a b: log info was: host=a exitcode=EX_OK", id="space-in-program"),
    ],
)
def test_parse_stderr_rejects(line: str) -> None:
    assert msmtp.parse_stderr(line) is None


@pytest.mark.parametrize(
    "line",
    [
        REAL_HEALTHY,
        REAL_GOOGLE_BAD_TOKEN,
        REAL_MICROSOFT_AUTH_DISABLED,
        REAL_CERT_EXPIRED,
        REAL_SEND_AS_DENIED,
        GMAIL_PLAIN_REJECTED,
        AUTH_OFF_530,
        CONNECTION_REFUSED,
        IO_ERROR_WITHOUT_TEXT,
        SOCKET_SUCCESS,
    ],
)
def test_event_lines_are_candidates(line: str) -> None:
    assert CANDIDATE.search(line.encode()) is not None


def test_time_format_none_writes_the_word_none() -> None:
    # msmtp 1.8.23 writes the literal word for logfile_time_format none.
    line = (
        "none host=127.0.0.1 tls=on auth=on from=a@example.com recipients=b@example.com "
        "exitcode=EX_OK"
    )
    record = msmtp.split_logfile(line, TimeReader(None), None)
    assert record is not None
    assert record.message.startswith("host=127.0.0.1")
