"""The msmtprc reader without the msmtp binary: lines, sections, inheritance and problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtpdiag.errors import ConfigError
from smtpdiag.msmtprc.model import Account, Assignment, ParseProblem, parse_c_integer
from smtpdiag.msmtprc.parser import (
    CARRIAGE_RETURN_PROBLEM,
    MAX_FILE_BYTES,
    parse_file,
    parse_text,
    trim_argument,
)

RELAY = """\
# msmtpd pipes every message to this account
defaults
tls on
logfile /var/log/msmtp.log

account relay
host smtp.gmail.com
auth xoauth2
user alerts@example.com
passwordeval "/usr/local/bin/token-exchange --account alerts"

account default : relay
"""


def only_account(text: str) -> Account:
    accounts = parse_text(text).accounts
    assert len(accounts) == 1
    return accounts[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("  both sides \t", "both sides"),
        ('"quoted"', "quoted"),
        ('"  inner blanks  "', "  inner blanks  "),
        ('"a"b"', 'a"b'),
        ('"', '"'),
        ('""', ""),
        ('"open', '"open'),
        ('\\"escaped\\"', '\\"escaped\\"'),
    ],
    ids=[
        "plain",
        "blanks",
        "quotes",
        "blanks in quotes",
        "inner quote",
        "one quote",
        "empty quotes",
        "open quote",
        "no escapes",
    ],
)
def test_trim_argument(text: str, expected: str) -> None:
    assert trim_argument(text) == expected


def test_account_names_in_file_order() -> None:
    assert parse_text(RELAY).account_names == ("relay", "default")


def test_relay_file_has_no_problems() -> None:
    assert parse_text(RELAY).problems == ()


def test_default_inherits_passwordeval() -> None:
    account = parse_text(RELAY).account("default")
    assert account is not None
    assert account.get("passwordeval") == "/usr/local/bin/token-exchange --account alerts"


def test_history_lists_defaults_then_own_line() -> None:
    text = "defaults\ntls off\naccount a\nhost h\ntls on\n"
    account = only_account(text)
    assert account.history["tls"] == (
        Assignment("tls", "off", 2, "defaults"),
        Assignment("tls", "on", 5, "a"),
    )


def test_assignment_in_force_is_the_last() -> None:
    account = only_account("defaults\ntls off\naccount a\nhost h\ntls on\n")
    assert account.assignment("tls") == Assignment("tls", "on", 5, "a")


def test_inherited_lines_keep_their_section() -> None:
    config = parse_text("account a\nhost h\naccount b : a\n")
    account = config.account("b")
    assert account is not None
    assert account.assignment("host") == Assignment("host", "h", 2, "a")


def test_inheritance_skips_parent_defaults() -> None:
    text = "defaults\nport 26\naccount a\nhost h\ndefaults\nport 27\naccount b : a\n"
    account = parse_text(text).account("b")
    assert account is not None
    assert account.port == 27


def test_inheritance_copies_grandparent_lines() -> None:
    text = "account a\nhost h\nuser ua\naccount b : a\naccount c : b\n"
    account = parse_text(text).account("c")
    assert account is not None
    assert account.get("user") == "ua"


def test_later_parent_wins() -> None:
    text = "account a\nhost ha\naccount b\nhost hb\naccount c : a, b\n"
    account = parse_text(text).account("c")
    assert account is not None
    assert account.get("host") == "hb"


def test_own_line_beats_parent() -> None:
    text = "account a\nhost ha\naccount c : a\nhost hc\n"
    account = parse_text(text).account("c")
    assert account is not None
    assert account.get("host") == "hc"


def test_implicit_default_account() -> None:
    config = parse_text("host first.example\naccount other\nhost o\n")
    assert config.account_names == ("default", "other")


def test_implicit_default_section_name() -> None:
    account = parse_text("host first.example\n").account("default")
    assert account is not None
    assert account.assignment("host") == Assignment("host", "first.example", 1, "default")


def test_lines_before_account_are_not_defaults() -> None:
    account = parse_text("port 27\naccount x\nhost h\n").account("x")
    assert account is not None
    assert account.port_is_default


def test_comment_only_after_blanks() -> None:
    account = only_account("account a\n  # comment\nfrom a@example.com # kept\n")
    assert account.get("from") == "a@example.com # kept"


def test_crlf_endings() -> None:
    account = only_account("account a\r\nhost h\r\nport 2525\r\n")
    assert account.port == 2525


def test_carriage_return_without_newline_is_kept() -> None:
    config = parse_text("account a\nhost h\nport 25\r")
    assert config.problems == (
        ParseProblem(3, CARRIAGE_RETURN_PROBLEM),
        ParseProblem(3, "invalid argument [3 characters] for command port"),
    )


def test_carriage_return_line_ends_hide_content() -> None:
    config = parse_text("account default\rhost h\rpassword Sup3rS3cretValue\r")
    assert [problem.message for problem in config.problems] == [CARRIAGE_RETURN_PROBLEM]
    assert "Sup3rS3cretValue" not in repr(config.problems)


def test_environment_file_line_is_not_shown() -> None:
    config = parse_text("CLIENT_SECRET=GOCSPX-abcdefghijklmnopqrstuvwxyz\n")
    assert config.problems == (ParseProblem(1, "unknown command [47 characters]"),)


def test_tab_separates_command() -> None:
    account = only_account("account a\nhost\th\nuser\t\t u v \t\n")
    assert account.get("user") == "u v"


def test_byte_order_mark_is_part_of_command() -> None:
    config = parse_text("\ufeffaccount a\nhost h\n")
    assert config.problems[0] == ParseProblem(1, "unknown command account after a byte order mark")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("from " + "a" * 494, None),
        ("from " + "a" * 495, "line longer than 500 characters"),
        ("from " + "\u00e9" * 247, None),
        ("from " + "\u00e9" * 248, "line longer than 500 characters"),
    ],
    ids=["499 bytes", "500 bytes", "499 bytes of utf-8", "501 bytes of utf-8"],
)
def test_line_length_in_bytes(line: str, problem: str | None) -> None:
    config = parse_text(f"account a\nhost h\n{line}\n")
    expected = () if problem is None else (ParseProblem(3, problem),)
    assert config.problems == expected


def test_long_line_is_still_read() -> None:
    long_from = "from " + "a" * 600
    account = only_account(f"account a\nhost h\n{long_from}\n")
    assert account.get("from") == "a" * 600


def test_crlf_counts_in_line_length() -> None:
    config = parse_text("account a\r\nhost h\r\nfrom " + "a" * 494 + "\r\n")
    assert config.problems == (ParseProblem(3, "line longer than 500 characters"),)


def test_last_line_without_newline_counts_fully() -> None:
    config = parse_text("account a\nhost h\nfrom " + "a" * 495)
    assert config.problems == (ParseProblem(3, "line longer than 500 characters"),)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("account a\nhost h\nfoo bar\n", ParseProblem(3, "unknown command foo")),
        ("account a\nHOST h\n", ParseProblem(2, "unknown command HOST")),
        ('account a\n"host" h\n', ParseProblem(2, 'unknown command "host"')),
        (
            "account a\nhost h\ntls maybe\n",
            ParseProblem(3, "invalid argument maybe for command tls"),
        ),
        ("account a\nhost h\nport 0\n", ParseProblem(3, "invalid argument 0 for command port")),
        (
            "account a\nhost h\nport 65536\n",
            ParseProblem(3, "invalid argument 65536 for command port"),
        ),
        ("account a\nhost h\nport 25a\n", ParseProblem(3, "invalid argument 25a for command port")),
        ("account a\nhost h\nport\n", ParseProblem(3, "command port needs an argument")),
        ("account a\nhost\n", ParseProblem(2, "command host needs an argument")),
        (
            "account a\nhost h\nauth XOAUTH2\n",
            ParseProblem(3, "invalid argument XOAUTH2 for command auth"),
        ),
        (
            "account a\nhost h\ntls_nostarttls off\n",
            ParseProblem(3, "command tls_nostarttls does not take an argument"),
        ),
        (
            "account a\nhost h\ndsn_notify failure, delay\n",
            ParseProblem(3, "invalid argument failure, delay for command dsn_notify"),
        ),
        (
            "account a\nhost h\nsyslog LOG_LOCAL8\n",
            ParseProblem(3, "invalid argument LOG_LOCAL8 for command syslog"),
        ),
        (
            "account a\nhost h\ntls_fingerprint ab:cd\n",
            ParseProblem(3, "invalid argument ab:cd for command tls_fingerprint"),
        ),
        ("account a : b\nhost h\n", ParseProblem(1, "account b not (yet) defined")),
        ("account a:a\nhost h\n", ParseProblem(1, "account a not (yet) defined")),
        ("account a\nhost h\naccount a\n", ParseProblem(3, "account a was already defined")),
        (
            "account a,b\nhost h\n",
            ParseProblem(1, "an account name must not contain colons or commas"),
        ),
        ("account\nhost h\n", ParseProblem(1, "missing account name")),
        ("account a\nhost h\naccount b :\n", ParseProblem(3, "missing account name")),
        ("defaults x\n", ParseProblem(1, "command defaults does not take an argument")),
        ("host h\naccount default\n", ParseProblem(2, "account default was already defined")),
    ],
    ids=[
        "unknown command",
        "upper case command",
        "quoted command",
        "tls maybe",
        "port 0",
        "port above 65535",
        "port with letters",
        "port empty",
        "host empty",
        "upper case mechanism",
        "nostarttls argument",
        "dsn_notify spaces",
        "syslog facility",
        "short fingerprint",
        "undefined parent",
        "self parent",
        "defined twice",
        "comma in name",
        "missing name",
        "empty parent list",
        "defaults argument",
        "implicit default redefined",
    ],
)
def test_problem(text: str, problem: ParseProblem) -> None:
    assert parse_text(text).problems == (problem,)


def test_reader_goes_on_after_problem() -> None:
    config = parse_text("account a\nhost h\nfoo\naccount b\nhost i\ntls maybe\n")
    assert [problem.line for problem in config.problems] == [3, 6]


def test_accounts_after_problem_are_known() -> None:
    config = parse_text("account a\nhost h\nfoo\naccount b\nhost i\n")
    assert config.account_names == ("a", "b")


def test_bad_line_is_not_recorded() -> None:
    account = only_account("account a\nhost h\ntls on\ntls maybe\n")
    assert account.tls


def test_duplicate_account_keeps_first() -> None:
    config = parse_text("account a\nhost first\naccount a\nhost second\n")
    account = config.account("a")
    assert account is not None
    assert account.get("host") == "first"


def test_missing_parent_still_inherits_the_rest() -> None:
    config = parse_text("account a\nhost h\naccount b : a, zzz\n")
    account = config.account("b")
    assert account is not None
    assert account.get("host") == "h"


@pytest.mark.parametrize(
    ("text", "tls", "starttls", "port"),
    [
        ("account a\nhost h\n", False, True, 25),
        ("account a\nhost h\ntls\n", True, True, 25),
        ("account a\nhost h\ntls on\ntls_starttls off\n", True, False, 465),
        ("account a\nhost h\ntls on\ntls_nostarttls\n", True, False, 465),
        ("account a\nhost h\ntls on\ntls_nostarttls\ntls_starttls\n", True, True, 25),
        ("account a\nhost h\ntls on\ntls_starttls off\nport 587\n", True, False, 587),
        ("account a\nhost h\nprotocol lmtp\n", False, True, 0),
    ],
    ids=[
        "no tls",
        "tls empty argument",
        "implicit",
        "nostarttls",
        "starttls after nostarttls",
        "explicit port",
        "lmtp without port",
    ],
)
def test_effective_tls_and_port(text: str, tls: bool, starttls: bool, port: int) -> None:
    account = only_account(text)
    assert (account.tls, account.starttls, account.port) == (tls, starttls, port)


def test_parent_nostarttls_beats_later_defaults() -> None:
    text = "account a\nhost h\ntls on\ntls_nostarttls\ndefaults\ntls_starttls on\naccount b : a\n"
    account = parse_text(text).account("b")
    assert account is not None
    assert not account.starttls


@pytest.mark.parametrize(
    ("line", "expected"),
    [("", None), ("auth", ""), ("auth on", ""), ("auth off", None), ("auth xoauth2", "xoauth2")],
    ids=["unset", "empty", "on", "off", "mechanism"],
)
def test_auth(line: str, expected: str | None) -> None:
    assert only_account(f"account a\nhost h\n{line}\n").auth == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25", 25),
        ("+25", 25),
        (" 25", 25),
        ("0x19", 25),
        ("025", 21),
        ("0", None),
        ("-1", None),
        ("08", None),
        ("0x", None),
        ("2147483648", None),
        ("", None),
    ],
    ids=[
        "decimal",
        "plus",
        "leading blank",
        "hex",
        "octal",
        "zero",
        "negative",
        "bad octal",
        "bare hex prefix",
        "above int max",
        "empty",
    ],
)
def test_parse_c_integer(text: str, expected: int | None) -> None:
    assert parse_c_integer(text) == expected


def test_parse_file_reads_bytes(tmp_path: Path) -> None:
    path = tmp_path / "msmtprc"
    path.write_bytes(b"account a\nhost h\nfrom \xff\n")
    account = parse_file(str(path)).account("a")
    assert account is not None
    assert account.get("from") == "\ufffd"


def test_parse_file_counts_raw_bytes(tmp_path: Path) -> None:
    path = tmp_path / "msmtprc"
    path.write_bytes(b"account a\nhost h\nfrom " + b"\xff" * 495 + b"\n")
    problems = parse_file(str(path)).problems
    assert problems == (ParseProblem(3, "line longer than 500 characters"),)


def test_parse_file_keeps_path(tmp_path: Path) -> None:
    path = tmp_path / "msmtprc"
    path.write_text(RELAY)
    assert parse_file(str(path)).path == str(path)


def _rejected_path(directory: Path, kind: str) -> Path:
    if kind == "missing":
        return directory / "missing"
    if kind == "directory":
        return directory
    path = directory / "big"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    return path


@pytest.mark.parametrize("kind", ["missing", "directory", "over 1 MB"])
def test_parse_file_rejects(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ConfigError):
        parse_file(str(_rejected_path(tmp_path, kind)))
