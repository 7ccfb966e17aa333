"""The line dispatcher: each format reaches its parser, other lines give no result."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from smtpdiag.logs.dispatch import LineParser
from smtpdiag.logs.model import NO_RESULT, LineResult, Outcome, Side, Source
from smtpdiag.logs.timestamps import TimeReader

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC).timestamp()
AT = datetime(2026, 12, 4, 10, 0, 0, tzinfo=UTC).timestamp()

MSMTP_RECORD = (
    "host=smtp.example.com tls=on auth=on user=user@example.com from=user@example.com "
    "recipients=a@example.net smtpstatus=535 smtpmsg='535 5.7.8 Username and Password not "
    "accepted' errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM"
)
# Postfix smtpd's warning for a failed AUTH (smtpd_sasl_proto.c); the client is made up.
POSTFIX_SERVER_FAILURE = (
    "postfix/submission/smtpd[4711]: warning: unknown[192.0.2.7]: "
    "SASL LOGIN authentication failed: UGFzc3dvcmQ6"
)
# Exim's server-side authenticator failure (smtp_in.c layout); names are made up.
EXIM_FAILURE = (
    "plain_server authenticator failed for (helo.example.net) [192.0.2.7]: "
    "535 Incorrect authentication data (set_id=user@example.com)"
)
SASL_XOAUTH2_FAILURE = "auth failed: 2026-12-04 10:00:00: TokenStore::Refresh: request failed"


def parser(time_format: str | None = "%b %d %H:%M:%S") -> LineParser:
    return LineParser(TimeReader(UTC, now=lambda: NOW), time_format)


def journal_line(message: str, identifier: str) -> str:
    return json.dumps(
        {
            "MESSAGE": message,
            "SYSLOG_IDENTIFIER": identifier,
            "__REALTIME_TIMESTAMP": str(int(AT * 1_000_000)),
        }
    )


@pytest.mark.parametrize(
    ("line", "time_format", "source", "outcome"),
    [
        pytest.param(
            "Dec 04 10:00:00 " + MSMTP_RECORD,
            "%b %d %H:%M:%S",
            Source.MSMTP,
            Outcome.FAILURE,
            id="msmtp-logfile-default-time",
        ),
        pytest.param(MSMTP_RECORD, None, Source.MSMTP, Outcome.FAILURE, id="msmtp-logfile-no-time"),
        pytest.param(
            "2026-12-04 10:00:00 " + MSMTP_RECORD,
            "%Y-%m-%d %H:%M:%S",
            Source.MSMTP,
            Outcome.FAILURE,
            id="msmtp-logfile-iso-time",
        ),
        pytest.param(
            "Dec  4 10:00:00 mx msmtp: " + MSMTP_RECORD,
            "%b %d %H:%M:%S",
            Source.MSMTP,
            Outcome.FAILURE,
            id="msmtp-syslog",
        ),
        pytest.param(
            "sendmail: log info was: " + MSMTP_RECORD,
            "%b %d %H:%M:%S",
            Source.MSMTP,
            Outcome.FAILURE,
            id="msmtp-stderr",
        ),
        pytest.param(
            "2026-12-04 10:00:00 msmtpd[12] error: authentication failed, session aborted",
            "%b %d %H:%M:%S",
            Source.MSMTPD,
            Outcome.FAILURE,
            id="msmtpd-logfile",
        ),
        pytest.param(
            "Dec  4 10:00:00 mx msmtpd[12]: pipe command reported error 77, session aborted",
            "%b %d %H:%M:%S",
            Source.MSMTPD,
            Outcome.FAILURE,
            id="msmtpd-syslog",
        ),
        pytest.param(
            "Dec  4 10:00:00 mx " + POSTFIX_SERVER_FAILURE,
            "%b %d %H:%M:%S",
            Source.POSTFIX,
            Outcome.FAILURE,
            id="postfix-syslog",
        ),
        pytest.param(
            "Dec  4 10:00:00 mx postfix/smtp[77]: sasl-xoauth2: " + SASL_XOAUTH2_FAILURE,
            "%b %d %H:%M:%S",
            Source.POSTFIX,
            Outcome.CAUSE,
            id="sasl-xoauth2-inside-postfix",
        ),
        pytest.param(
            "Dec  4 10:00:00 mx sasl-xoauth2: " + SASL_XOAUTH2_FAILURE,
            "%b %d %H:%M:%S",
            Source.POSTFIX,
            Outcome.CAUSE,
            id="sasl-xoauth2-syslog",
        ),
        pytest.param(
            "2026-12-04 10:00:00 " + EXIM_FAILURE,
            "%Y-%m-%d %H:%M:%S",
            Source.EXIM,
            Outcome.FAILURE,
            id="exim-mainlog-with-iso-msmtp-format",
        ),
        pytest.param(
            "Dec  4 10:00:00 mx exim[99]: " + EXIM_FAILURE,
            "%b %d %H:%M:%S",
            Source.EXIM,
            Outcome.FAILURE,
            id="exim-syslog",
        ),
        pytest.param(
            journal_line(MSMTP_RECORD, "msmtp"),
            "%b %d %H:%M:%S",
            Source.MSMTP,
            Outcome.FAILURE,
            id="journal-msmtp",
        ),
        pytest.param(
            journal_line("authenticated user relay", "msmtpd"),
            "%b %d %H:%M:%S",
            Source.MSMTPD,
            Outcome.SUCCESS,
            id="journal-msmtpd",
        ),
        pytest.param(
            journal_line(POSTFIX_SERVER_FAILURE.split(": ", 1)[1], "postfix/submission/smtpd"),
            "%b %d %H:%M:%S",
            Source.POSTFIX,
            Outcome.FAILURE,
            id="journal-postfix",
        ),
    ],
)
def test_line_reaches_its_parser(
    line: str, time_format: str | None, source: Source, outcome: Outcome
) -> None:
    result = parser(time_format).parse(line)
    assert result.source == source
    assert [event.outcome for event in result.events] == [outcome]


def test_msmtp_event_fields_through_dispatch() -> None:
    result = parser().parse("Dec 04 10:00:00 " + MSMTP_RECORD)
    event = result.events[0]
    assert (event.side, event.host, event.reason, event.timestamp) == (
        Side.CLIENT,
        "smtp.example.com",
        "auth.credentials_rejected",
        AT,
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("Dec  4 10:00:00 mx cron[5]: SASL nothing", NO_RESULT, id="other-program"),
        pytest.param("random text with exitcode=EX_OK", NO_RESULT, id="no-known-format"),
        pytest.param("{not json", NO_RESULT, id="broken-json"),
        pytest.param(
            journal_line("Authenticated", "sshd"),
            LineResult(source=Source.JOURNAL),
            id="journal-other-program",
        ),
        pytest.param(
            "Dec  4 10:00:00 mx msmtp: host=smtp.example.com tls=on auth=on",
            LineResult(source=Source.MSMTP, parse_error=True),
            id="msmtp-without-exitcode",
        ),
    ],
)
def test_line_without_parser(line: str, expected: LineResult) -> None:
    assert parser().parse(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("Dec 05 06:29:06 mail postfix/qmgr[8818]: C0EC323854E: removed", id="qmgr"),
        pytest.param(
            "Dec 05 06:32:33 mail postfix/pickup[16538]: CB27E230981: uid=0 "
            "from=<sender@example.test>",
            id="pickup",
        ),
        pytest.param(
            "Dec 05 06:29:18 mail postfix/bounce[9117]: A91412500CB: sender non-delivery "
            "notification: B8E202500E2",
            id="bounce",
        ),
        pytest.param(
            "Dec 05 06:29:06 mail postfix/master[8816]: daemon started -- version 3.7.11, "
            "configuration /tmp/postfix",
            id="master",
        ),
        pytest.param(
            "Dec 05 06:29:08 mail postfix/postfix-script[8849]: stopping the Postfix mail system",
            id="postfix-script",
        ),
        pytest.param(
            "Dec 05 06:29:06 mail postfix/smtpd[8820]: disconnect from localhost[127.0.0.1] "
            "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
            id="smtpd-disconnect",
        ),
        pytest.param(
            "Dec 05 06:28:46 mail postfix[8264]: fatal: chdir(/tmp/queue): No such file",
            id="postfix-command",
        ),
    ],
)
def test_postfix_program_line_attributed(line: str) -> None:
    assert parser().parse(line) == LineResult(source=Source.POSTFIX)


def test_msmtp_time_not_in_format_is_parse_error() -> None:
    # With logfile_time_format none, a time in front of the record cannot be read.
    result = parser(None).parse("Dec 04 10:00:00 " + MSMTP_RECORD)
    assert result == LineResult(source=Source.MSMTP, parse_error=True)


def test_one_parser_serves_lines_of_many_programs() -> None:
    line_parser = parser()
    lines = [
        "Dec  4 10:00:00 mx cron[5]: SASL nothing",
        "Dec  4 10:00:00 mx " + POSTFIX_SERVER_FAILURE,
        "Dec  4 10:00:00 mx cron[6]: SASL nothing",
        "Dec  4 10:00:00 mx postfix/submission/smtpd[4711]: sasl-xoauth2: " + SASL_XOAUTH2_FAILURE,
        "Dec  4 10:00:00 mx " + POSTFIX_SERVER_FAILURE,
    ]
    results = [line_parser.parse(line) for line in lines]
    assert [result.source for result in results] == [
        None,
        Source.POSTFIX,
        None,
        Source.POSTFIX,
        Source.POSTFIX,
    ]
    assert [[event.outcome for event in result.events] for result in results] == [
        [],
        [Outcome.FAILURE],
        [],
        [Outcome.CAUSE],
        [Outcome.FAILURE],
    ]
