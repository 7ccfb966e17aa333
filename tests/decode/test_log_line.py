"""decode of pasted mail log lines: recognition, reason findings, facts and leaked secrets."""

from __future__ import annotations

import json

import pytest

from smtpdiag.decode.detect import decode_text
from smtpdiag.decode.log_line import is_log_line
from smtpdiag.decode.result import InputKind
from smtpdiag.models import Severity, Status

# msmtp's log file after Gmail rejected a PLAIN login (the user is replaced). msmtp joins the
# reply lines with a literal backslash-n.
MSMTP_GMAIL = (
    "Mar 13 11:29:50 host=smtp.gmail.com tls=on auth=on user='user@example.com' "
    "from=localuser recipients=rcpt@example.net smtpstatus=535 smtpmsg='535-5.7.1 Username and "
    "Password not accepted. Learn more at \\n535 5.7.1 "
    "http://mail.google.com/support/bin/answer.py?answer=14257 22sm1992975qyk.10' "
    "errormsg='authentication failed (method PLAIN)' exitcode=EX_NOPERM"
)

# Postfix 3.x smtp client refused by Exchange Online.
POSTFIX_EXCHANGE = (
    "Sep 28 13:03:50 relay postfix/smtp[17059]: 9BDCBA19EA: SASL authentication failed; "
    "server smtp.office365.com[192.0.2.50] said: 535 5.7.3 Authentication unsuccessful "
    "[XX0P281CA0094.DEUP281.PROD.OUTLOOK.COM]"
)

# msmtp through syslog with an RFC 3339 timestamp (rsyslog's newer default), a success.
MSMTP_SYSLOG_OK = (
    "2026-12-04T10:00:00+01:00 laptop msmtp: host=smtp.example.com tls=on auth=on "
    "user=alerts@example.com from=alerts@example.com recipients=ops@example.net mailsize=728 "
    "smtpstatus=250 smtpmsg='250 2.0.0 OK' exitcode=EX_OK"
)

# msmtpd --log=FILE after it replied 535 to AUTH PLAIN.
MSMTPD_FAILED = "2026-12-04 10:00:00 msmtpd[4242] info: authentication failed, session aborted"

# Exim main log, server side.
EXIM_FAILED = (
    "2026-12-04 10:00:00 login authenticator failed for (client.example.net) [192.0.2.7]: "
    "535 Incorrect authentication data (set_id=alerts@example.com)"
)

# sasl-xoauth2 without log_full_trace_on_failure: the summary line with Microsoft's
# AADSTS700082 error body, shortened.
SASL_XOAUTH2_EXPIRED = (
    "Dec  4 10:00:00 relay sasl-xoauth2: auth failed: 2026-12-04 10:00:00: TokenStore::Refresh: "
    'code=400, response={"error": "invalid_grant", "error_description": "AADSTS700082: The '
    'refresh token has expired due to inactivity."}'
)

# Postfix relaying to a local msmtpd whose msmtp failed with EX_NOPERM (77).
POSTFIX_PIPE_FAILED = (
    "Dec  4 10:00:00 relay postfix/smtp[1234]: 4F3A21B0C1: to=<ops@example.net>, "
    "relay=127.0.0.1[127.0.0.1]:2525, delay=0.5, delays=0.1/0/0.1/0.3, dsn=5.0.0, "
    "status=bounced (host 127.0.0.1[127.0.0.1] said: 554 Pipe command reported error 77 "
    "(in reply to end of DATA command))"
)

# journalctl -o json entry of the Postfix line above; field set trimmed to what a parser reads.
# NOTE: constructed from journald's export format, not copied from a real journal.
JOURNAL_EXCHANGE = json.dumps(
    {
        "__REALTIME_TIMESTAMP": "1790600630000000",
        "SYSLOG_IDENTIFIER": "postfix/smtp",
        "_PID": "17059",
        "_HOSTNAME": "relay",
        "MESSAGE": POSTFIX_EXCHANGE.split(": ", 1)[1],
    }
)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        pytest.param(MSMTP_GMAIL, "auth.credentials_rejected", id="msmtp-gmail-535"),
        pytest.param(POSTFIX_EXCHANGE, "auth.exchange_refused", id="postfix-exchange-5.7.3"),
        pytest.param(MSMTPD_FAILED, "auth.credentials_rejected", id="msmtpd-535"),
        pytest.param(EXIM_FAILED, "auth.credentials_rejected", id="exim-server-535"),
        pytest.param(JOURNAL_EXCHANGE, "auth.exchange_refused", id="journal-json"),
        pytest.param(SASL_XOAUTH2_EXPIRED, "token.refresh_token_expired", id="sasl-xoauth2"),
        pytest.param(
            POSTFIX_PIPE_FAILED, "auth_failure_rate.pipe_command_failed", id="msmtpd-pipe-554"
        ),
    ],
)
def test_failure_finding(text: str, code: str) -> None:
    result = decode_text(text)
    assert result.input_kind is InputKind.LOG
    assert [finding.code for finding in result.findings] == [code]
    assert result.status is Status.CRITICAL


@pytest.mark.parametrize(
    ("text", "source"),
    [
        pytest.param(MSMTP_GMAIL, "msmtp", id="msmtp"),
        pytest.param(POSTFIX_EXCHANGE, "postfix", id="postfix"),
        pytest.param(MSMTPD_FAILED, "msmtpd", id="msmtpd"),
        pytest.param(EXIM_FAILED, "exim", id="exim"),
    ],
)
def test_log_source_fact(text: str, source: str) -> None:
    assert decode_text(text).facts["log_source"] == source


def test_msmtp_facts() -> None:
    facts = decode_text(MSMTP_GMAIL).facts
    assert facts["reply_code"] == 535
    assert facts["enhanced_code"] == "5.7.1"
    assert facts["mechanism"] == "PLAIN"
    assert facts["host"] == "smtp.gmail.com"
    assert facts["outcome"] == "failure"
    assert facts["reply_text"].startswith("Username and Password not accepted.")


# NOTE: constructed: a 5.7.139 reply with a reason text that smtpdiag does not know.
POSTFIX_UNKNOWN_REASON = (
    "Sep 28 13:03:50 relay postfix/smtp[17059]: 9BDCBA19EA: SASL authentication failed; "
    "server smtp.office365.com[192.0.2.50] said: 535 5.7.139 Authentifizierung fehlgeschlagen"
)


def test_postfix_title_quotes_reply_once() -> None:
    finding = decode_text(POSTFIX_UNKNOWN_REASON).findings[0]
    assert finding.code == "auth.microsoft_auth_failed"
    assert finding.title == (
        "Microsoft 365 rejected AUTH: 535 5.7.139 Authentifizierung fehlgeschlagen"
    )


def test_pipe_exit_code_title() -> None:
    finding = decode_text(POSTFIX_PIPE_FAILED).findings[0]
    assert finding.title == "The relay's pipe command failed with exit code 77"


def test_token_body_title() -> None:
    finding = decode_text(SASL_XOAUTH2_EXPIRED).findings[0]
    assert finding.title == "The refresh token expired (invalid_grant, AADSTS700082)"


def test_reply_text_without_codes() -> None:
    facts = decode_text(POSTFIX_EXCHANGE).facts
    assert facts["reply_text"] == (
        "Authentication unsuccessful [XX0P281CA0094.DEUP281.PROD.OUTLOOK.COM]"
    )


def test_evidence_is_the_line() -> None:
    finding = decode_text(POSTFIX_EXCHANGE).findings[0]
    assert finding.evidence == (POSTFIX_EXCHANGE,)


def test_success_gives_facts_only() -> None:
    result = decode_text(MSMTP_SYSLOG_OK)
    assert result.input_kind is InputKind.LOG
    assert result.findings == ()
    assert result.status is Status.OK


def test_success_timestamp_iso() -> None:
    assert decode_text(MSMTP_SYSLOG_OK).facts["timestamp"] == "2026-12-04T09:00:00Z"


def test_success_outcome() -> None:
    facts = decode_text(MSMTP_SYSLOG_OK).facts
    assert facts["outcome"] == "success"
    assert facts["reply_code"] == 250


def test_several_lines_deduplicated() -> None:
    text = "\n".join([MSMTP_GMAIL, MSMTP_GMAIL, POSTFIX_EXCHANGE, MSMTP_SYSLOG_OK])
    result = decode_text(text)
    assert [finding.code for finding in result.findings] == [
        "auth.credentials_rejected",
        "auth.exchange_refused",
    ]


def test_several_lines_counts() -> None:
    text = "\n".join([MSMTP_GMAIL, POSTFIX_EXCHANGE, MSMTP_SYSLOG_OK])
    facts = decode_text(text).facts
    assert facts["attempts"] == 3
    assert facts["failures"] == 2
    assert facts["log_sources"] == ["msmtp", "postfix"]


# A client's SMTP debug output in syslog with its XOAUTH2 response
# (user=alerts@example.com, auth=Bearer ya29.<fake token>). Constructed, not from a real log.
XOAUTH2_RESPONSE = (
    "dXNlcj1hbGVydHNAZXhhbXBsZS5jb20BYXV0aD1CZWFyZXIgeWEyOS5hMEFmSDZTTWJmYWtldG9rZW5mb3J0ZXN0cwEB"
)
LEAK_LINE = f"Dec  4 09:58:00 relay app[99]: smtp debug: AUTH XOAUTH2 {XOAUTH2_RESPONSE}"


def test_leak_finding() -> None:
    result = decode_text(LEAK_LINE)
    assert result.input_kind is InputKind.LOG
    assert [finding.code for finding in result.findings] == ["secrets.token_in_log"]
    assert result.findings[0].severity is Severity.CRITICAL


def test_leak_masked_everywhere() -> None:
    document = json.dumps(decode_text(LEAK_LINE).to_dict())
    assert XOAUTH2_RESPONSE not in document
    assert "[secret]" in document


def test_leak_with_failure() -> None:
    result = decode_text(f"{LEAK_LINE}\n{POSTFIX_EXCHANGE}")
    assert [finding.code for finding in result.findings] == [
        "auth.exchange_refused",
        "secrets.token_in_log",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(MSMTP_GMAIL, True, id="msmtp-record"),
        pytest.param(POSTFIX_EXCHANGE, True, id="rfc3164"),
        pytest.param(MSMTP_SYSLOG_OK, True, id="rfc3339"),
        pytest.param(MSMTPD_FAILED, True, id="msmtpd-file"),
        pytest.param(EXIM_FAILED, True, id="exim-main-log"),
        pytest.param(JOURNAL_EXCHANGE, True, id="journal-json"),
        pytest.param(
            "<22>1 2026-12-04T10:00:00Z relay postfix/smtp 17059 - - 9BDCBA19EA: SASL "
            "authentication failed",
            True,
            id="rfc5424",
        ),
        pytest.param("535 5.7.8 Username and Password not accepted.", False, id="bare-reply"),
        pytest.param("2026-12-04 10:00:00 S: 220 smtp.example.com ESMTP", False, id="transcript"),
        pytest.param('{"error": "invalid_grant"}', False, id="token-body"),
        pytest.param(
            "msmtp: TLS handshake failed: error:0A00010B:SSL routines::wrong version number",
            False,
            id="msmtp-stderr",
        ),
    ],
)
def test_is_log_line(line: str, expected: bool) -> None:
    assert is_log_line(line) is expected


def test_log_line_without_event_falls_through() -> None:
    # A syslog line that quotes a TLS error: no AUTH event, so the TLS decoder explains it.
    text = (
        "Dec  4 10:00:00 laptop app[12]: TLS handshake failed: error:0A000086:SSL routines::"
        "certificate verify failed"
    )
    assert decode_text(text).input_kind is InputKind.TLS_ERROR


def test_secret_in_reply_text_is_masked() -> None:
    line = (
        "Sep 28 13:03:50 relay postfix/smtp[17059]: 9BDCBA19EA: to=<a@example.net>, "
        "relay=smtp.gmail.com[192.0.2.1]:587, delay=1, delays=0/0/0/1, dsn=5.7.8, "
        "status=deferred (SASL authentication failed; server smtp.gmail.com[192.0.2.1] said: "
        "535 5.7.8 bad token ya29.a0AfB_byC7SECRETexampleTOKEN1234567890)"
    )
    result = decode_text(line)
    assert "SECRETexample" not in json.dumps(result.to_dict())
