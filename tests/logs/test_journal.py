"""Tests of reading ``journalctl -o json`` lines into syslog records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smtpdiag.logs.journal import record_from_json
from smtpdiag.logs.keywords import CANDIDATE
from smtpdiag.logs.model import SyslogRecord

# Field names and value types as systemd's JSON export format defines them; the values are
# made up in the shape journalctl 252 prints.
POSTFIX_ENTRY: dict[str, Any] = {
    "__CURSOR": "s=6f1e2d;i=4a1;b=0c9d;m=1f2e3d;t=64b7c1a2b3c4d;x=9e8f",
    "__REALTIME_TIMESTAMP": "1772359200250000",
    "__MONOTONIC_TIMESTAMP": "523423423",
    "_BOOT_ID": "0c9d0c9d0c9d0c9d0c9d0c9d0c9d0c9d",
    "PRIORITY": "6",
    "SYSLOG_FACILITY": "2",
    "SYSLOG_IDENTIFIER": "postfix/smtp",
    "SYSLOG_PID": "4242",
    "_PID": "4242",
    "_COMM": "smtp",
    "_HOSTNAME": "mx",
    "MESSAGE": "9BDCBA19EA: SASL authentication failed; server smtp.office365.com"
    "[192.0.2.50] said: 535 5.7.3 Authentication unsuccessful",
}


def line(**changes: Any) -> str:
    entry = {**POSTFIX_ENTRY, **changes}
    return json.dumps({key: value for key, value in entry.items() if value is not ...})


def test_postfix_entry() -> None:
    record = record_from_json(line())
    assert record == SyslogRecord(
        message=POSTFIX_ENTRY["MESSAGE"],
        timestamp=1_772_359_200.25,
        hostname="mx",
        program="postfix/smtp",
        pid=4242,
    )


def test_entry_is_candidate() -> None:
    assert CANDIDATE.search(line().encode()) is not None


def test_byte_array_message() -> None:
    raw = "auth failed: caf\xe9".encode("latin-1")
    record = record_from_json(line(MESSAGE=list(raw)))
    assert record is not None
    assert record.message == "auth failed: caf\ufffd"


def test_utf8_byte_array_message() -> None:
    record = record_from_json(line(MESSAGE=list("café".encode())))
    assert record is not None
    assert record.message == "café"


def test_repeated_field_takes_first() -> None:
    record = record_from_json(line(SYSLOG_IDENTIFIER=["sasl-xoauth2", "other"]))
    assert record is not None
    assert record.program == "sasl-xoauth2"


def test_pid_falls_back() -> None:
    record = record_from_json(line(SYSLOG_PID=..., _PID="77"))
    assert record is not None
    assert record.pid == 77


def test_program_falls_back_to_comm() -> None:
    record = record_from_json(line(SYSLOG_IDENTIFIER=...))
    assert record is not None
    assert record.program == "smtp"


def test_missing_header_fields() -> None:
    minimal = json.dumps({"MESSAGE": "sasl-xoauth2: auth failed:"})
    assert record_from_json(minimal) == SyslogRecord(message="sasl-xoauth2: auth failed:")


def test_bad_timestamp_is_none() -> None:
    record = record_from_json(line(__REALTIME_TIMESTAMP="soon"))
    assert record is not None
    assert record.timestamp is None


REJECTED = {
    "not json": "Mar  1 10:00:00 mx postfix/smtp[4242]: MESSAGE",
    "truncated": line()[:-10],
    "array": json.dumps(["MESSAGE"]),
    "no message": line(MESSAGE=...),
    "null message": line(MESSAGE=None),
    "number message": line(MESSAGE=5),
    "empty line": "",
}


@pytest.mark.parametrize("text", REJECTED.values(), ids=REJECTED.keys())
def test_rejected_line(text: str) -> None:
    assert record_from_json(text) is None


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * 100_000 + "]" * 100_000, id="arrays"),
        pytest.param('{"MESSAGE":' + "[" * 100_000 + "]" * 100_000 + "}", id="message-arrays"),
        pytest.param('{"a":' * 100_000 + "1" + "}" * 100_000, id="objects"),
    ],
)
def test_deep_nesting_is_no_record(text: str) -> None:
    assert record_from_json(text) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("99999999999999999999999", id="beyond-float-seconds"),
        pytest.param("253402300800000000", id="year-10000"),
    ],
)
def test_time_out_of_range_is_none(value: str) -> None:
    record = record_from_json(line(__REALTIME_TIMESTAMP=value))
    assert record is not None
    assert (record.message, record.timestamp) == (POSTFIX_ENTRY["MESSAGE"], None)


def test_repeated_byte_array_message() -> None:
    record = record_from_json(line(MESSAGE=[[104, 105], [106]]))
    assert record is not None
    assert record.message == "hi"
