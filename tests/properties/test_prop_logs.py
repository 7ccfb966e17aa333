"""Properties of the log line dispatcher: no line makes a parser raise, and noise lines before
a real line do not change the events that line yields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from smtpdiag.logs.dispatch import LineParser
from smtpdiag.logs.model import LineResult
from smtpdiag.logs.timestamps import TimeReader

DATA = Path(__file__).resolve().parent.parent / "logs" / "data"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()

MSMTP_FAILURE = (
    "host=smtp.example.com tls=on auth=on user=user@example.com from=user@example.com "
    "recipients=a@example.net smtpstatus=535 smtpmsg='535 5.7.8 Username and Password not "
    "accepted' errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM"
)
MSMTP_SUCCESS = (
    "host=127.0.0.1 tls=on auth=on user=lab.user@example.com from=lab.user@example.com "
    "recipients=rcpt@example.com mailsize=147 smtpstatus=250 "
    "smtpmsg='250 2.0.0 OK: discarded by the lab' exitcode=EX_OK"
)
POSTFIX_SERVER_FAILURE = (
    "postfix/submission/smtpd[4711]: warning: unknown[192.0.2.7]: "
    "SASL LOGIN authentication failed: UGFzc3dvcmQ6"
)
EXIM_CLIENT_FAILURE = (
    "smtp_relay_login authenticator failed H=relay.example.net [192.0.2.16] 535 Error: "
    "authentication failed"
)
SASL_XOAUTH2_FAILURE = "auth failed: 2026-12-04 10:00:00: TokenStore::Refresh: request failed"


def journal_line(message: str, identifier: str) -> str:
    """Return a ``journalctl -o json`` entry of ``identifier`` at 2026-12-04 10:00 UTC."""
    stamp = datetime(2026, 12, 4, 10, 0, tzinfo=UTC).timestamp()
    fields = {
        "MESSAGE": message,
        "SYSLOG_IDENTIFIER": identifier,
        "__REALTIME_TIMESTAMP": str(int(stamp * 1_000_000)),
    }
    return json.dumps(fields)


# One line of every format the dispatcher reads, in the layouts of the parser tests.
FORMAT_LINES = [
    "Dec 04 10:00:00 " + MSMTP_FAILURE,
    "Dec 04 10:00:00 " + MSMTP_SUCCESS,
    "Dec  4 10:00:00 mx msmtp: " + MSMTP_FAILURE,
    "sendmail: log info was: " + MSMTP_FAILURE,
    "2026-12-04 10:00:00 msmtpd[12] error: authentication failed, session aborted",
    "Dec  4 10:00:00 mx msmtpd[12]: pipe command reported error 77, session aborted",
    "Dec  4 10:00:00 mx " + POSTFIX_SERVER_FAILURE,
    "Dec  4 10:00:00 mx postfix/smtp[77]: sasl-xoauth2: " + SASL_XOAUTH2_FAILURE,
    "Dec  4 10:00:00 mx sasl-xoauth2: " + SASL_XOAUTH2_FAILURE,
    "2026-12-04 10:00:00 " + EXIM_CLIENT_FAILURE,
    "Dec  4 10:00:00 mx exim[99]: " + EXIM_CLIENT_FAILURE,
    journal_line(MSMTP_FAILURE, "msmtp"),
    journal_line("authenticated user relay", "msmtpd"),
    journal_line(POSTFIX_SERVER_FAILURE.split(": ", 1)[1], "postfix/submission/smtpd"),
]
# Lines that Postfix 3.7 and Dovecot 2.3.19 wrote on loopback runs.
CAPTURED_LINES = [
    line
    for path in sorted(DATA.glob("*.log"))
    for line in path.read_text(encoding="utf-8").splitlines()
    if line
]
VALID_LINES = FORMAT_LINES + CAPTURED_LINES

PROGRAMS = [
    "msmtp",
    "msmtpd[12]",
    "postfix/smtp[77]",
    "postfix/submission/smtpd[4711]",
    "exim[99]",
    "sasl-xoauth2",
    "dovecot",
    "auth",
    "submission-login",
    "submission(user@example.com)<5591><4Q3dA91hRN1/AAAB>",
]
LINE_TEXT = st.text(st.characters(exclude_characters="\n"), max_size=200)
SYSLOG_LINE = st.builds(
    "{} {}: {}".format,
    st.sampled_from(["Dec  4 10:00:00 mx", "Dec 05 06:21:30", "2026-12-04T10:00:00+00:00 mx"]),
    st.sampled_from(PROGRAMS) | st.text(max_size=20),
    LINE_TEXT,
)
JOURNAL_LINE = st.builds(
    json.dumps,
    st.dictionaries(
        st.sampled_from(["MESSAGE", "SYSLOG_IDENTIFIER", "__REALTIME_TIMESTAMP", "_PID"]),
        st.text(max_size=40) | st.integers() | st.lists(st.integers(-5, 300), max_size=10),
    ),
)


@st.composite
def mutated_lines(draw: st.DrawFn) -> str:
    """Draw a real line with a piece of arbitrary text put in place of a slice of it."""
    line = draw(st.sampled_from(VALID_LINES))
    start = draw(st.integers(0, len(line)))
    end = draw(st.integers(start, len(line)))
    return line[:start] + draw(LINE_TEXT) + line[end:]


ANY_LINE = st.one_of(LINE_TEXT, SYSLOG_LINE, JOURNAL_LINE, mutated_lines())
NOISE_LINE = st.one_of(LINE_TEXT, SYSLOG_LINE)


def parse_all(lines: list[str]) -> list[LineResult]:
    """Parse ``lines`` in order with one new dispatcher, as a run over one file does."""
    parser = LineParser(TimeReader(UTC, now=lambda: NOW))
    return [parser.parse(line) for line in lines]


# Real lines that yield events when parsed on their own.
EVENT_LINES = [line for line in VALID_LINES if parse_all([line])[0].events]


@given(st.lists(ANY_LINE, min_size=1, max_size=10))
def test_any_line_parses_without_raising(lines: list[str]) -> None:
    results = parse_all(lines)
    assert len(results) == len(lines)


def test_every_format_line_yields_events() -> None:
    missing = [line for line in FORMAT_LINES if line not in EVENT_LINES]
    assert missing == []


@given(st.sampled_from(EVENT_LINES), st.lists(NOISE_LINE, min_size=1, max_size=10))
def test_noise_before_line_keeps_events(line: str, noise: list[str]) -> None:
    alone = parse_all([line])[-1]
    after_noise = parse_all([*noise, line])[-1]
    assert after_noise.events == alone.events
    assert after_noise.source == alone.source
