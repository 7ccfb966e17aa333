"""The reader against the real msmtp: ``msmtp --pretend`` prints the settings it would use."""

from __future__ import annotations

from pathlib import Path

import pytest
from system_programs import require_program

from smtpdiag.msmtprc.parser import parse_file

from .msmtp_pretend import reader_error, reader_settings, run_pretend, write_msmtprc

EVAL = 'passwordeval "echo token"'
"""A passwordeval that succeeds: msmtp --pretend runs it."""

LONG_FROM = "from " + "a" * 494
"""A line of 499 bytes, the longest msmtp reads."""

# (id, file text, account to show)
VALID_FILES = [
    (
        "defaults apply",
        "defaults\ntls on\nlogfile /tmp/msmtp-test.log\naccount relay\nhost smtp.example.com\n",
        "relay",
    ),
    (
        "account overrides defaults",
        "defaults\ntls on\nport 587\naccount relay\nhost h\ntls off\nport 2525\n",
        "relay",
    ),
    (
        "later defaults for later accounts",
        "account a\nhost a.example\ndefaults\ntls on\nuser u\naccount b\nhost b.example\n",
        "b",
    ),
    (
        "earlier account keeps old defaults",
        "account a\nhost a.example\ndefaults\ntls on\naccount b\nhost b.example\n",
        "a",
    ),
    (
        "inheritance chain",
        "account a\nhost a.example\nuser ua\nauth xoauth2\n"
        f"account b : a\nfrom b@example.com\n{EVAL}\n"
        "account c : b\nuser uc\n",
        "c",
    ),
    (
        "inheritance order",
        "account a\nhost a.example\nuser ua\naccount b\nhost b.example\nfrom fb\n"
        "account c : b, a\n",
        "c",
    ),
    (
        "inherited value beats defaults",
        "defaults\ntls_starttls on\naccount a\nhost h\ntls on\ntls_nostarttls\n"
        "defaults\ntls_starttls on\naccount b : a\n",
        "b",
    ),
    (
        "defaults beat parents' defaults",
        "defaults\ntls on\nport 26\naccount a\nhost h\ndefaults\ntls off\nport 27\naccount b : a\n",
        "b",
    ),
    (
        "default inherits",
        "account relay\nhost relay.example\nauth on\naccount default : relay\n",
        "default",
    ),
    (
        "implicit default account",
        "host first.example\nport 2525\naccount other\nhost o\n",
        "default",
    ),
    (
        "quoting",
        'account q\nhost "quoted.example"\nuser "  spaced  "\nfrom "a"b"\npasswordeval "echo x"\n',
        "q",
    ),
    ("lone quote kept", 'account q\nhost "h\nuser u"\n', "q"),
    ("crlf endings", "account w\r\nhost crlf.example\r\nport 2525\r\ntls on\r\n", "w"),
    (
        "comments",
        "# head\naccount c\n  # indented\n\thost h\nfrom a@example.com # not a comment\n",
        "c",
    ),
    ("longest line", f"account l\nhost h\n{LONG_FROM}\n", "l"),
    ("implicit tls port", "account t\nhost h\ntls\ntls_starttls off\n", "t"),
    ("nostarttls port", "account t\nhost h\ntls on\ntls_nostarttls\n", "t"),
    ("hex and octal port", "account p\nhost h\nport 0x1A\naccount o\nhost h\nport 025\n", "o"),
    ("auth off", "defaults\nauth on\naccount a\nhost h\nauth off\n", "a"),
    ("oauthbearer", f"account a\nhost h\nauth oauthbearer\nuser u@example.com\n{EVAL}\n", "a"),
    ("empty user unsets", "defaults\nuser u\naccount a\nhost h\nuser\n", "a"),
]

INVALID_FILES = [
    ("line of 500 bytes", f"account l\nhost h\n{LONG_FROM}b\n", "l"),
    ("crlf line of 500 bytes", f"account l\r\nhost h\r\n{LONG_FROM}\r\n", "l"),
    ("unknown command", "account a\nhost h\nhots h\n", "a"),
    ("tls maybe", "account a\nhost h\ntls maybe\n", "a"),
    ("port 0", "account a\nhost h\nport 0\n", "a"),
    ("port above 65535", "account a\nhost h\nport 65536\n", "a"),
    ("upper case mechanism", "account a\nhost h\nauth XOAUTH2\n", "a"),
    ("unknown mechanism", "account a\nhost h\nauth oauth2\n", "a"),
    ("undefined parent", "account a : b\nhost h\n", "a"),
    ("account defined twice", "account a\nhost h\naccount a\nhost i\n", "a"),
    ("comma in name", "account a,b\nhost h\n", "a"),
    ("empty parent", "account b\nhost h\naccount a : b,\n", "a"),
    ("defaults with argument", "defaults x\naccount a\nhost h\n", "a"),
    ("host without argument", 'account a\nhost ""\n', "a"),
    ("allow_from_override empty", "account a\nhost h\nallow_from_override\n", "a"),
    ("implicit default redefined", "host h\naccount default\n", "default"),
]


@pytest.fixture(scope="module")
def msmtp() -> str:
    return require_program("msmtp")


@pytest.mark.parametrize(
    ("text", "account"),
    [case[1:] for case in VALID_FILES],
    ids=[case[0] for case in VALID_FILES],
)
def test_settings_match_msmtp(msmtp: str, tmp_path: Path, text: str, account: str) -> None:
    path = write_msmtprc(tmp_path, text)
    expected = run_pretend(msmtp, path, account)
    config = parse_file(str(path))
    found = config.account(account)
    assert expected.error is None
    assert config.problems == ()
    assert found is not None
    assert reader_settings(found) == expected.settings


@pytest.mark.parametrize(
    ("text", "account"),
    [case[1:] for case in INVALID_FILES],
    ids=[case[0] for case in INVALID_FILES],
)
def test_error_matches_msmtp(msmtp: str, tmp_path: Path, text: str, account: str) -> None:
    path = write_msmtprc(tmp_path, text)
    expected = run_pretend(msmtp, path, account)
    assert expected.error is not None
    assert reader_error(parse_file(str(path))) == expected.error
