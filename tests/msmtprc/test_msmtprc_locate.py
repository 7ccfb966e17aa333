"""Finding the msmtprc for ``auto`` and choosing the account."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtpdiag.errors import UsageError
from smtpdiag.msmtprc.locate import SYSTEM_MSMTPRC, candidate_paths, find_msmtprc, select_account
from smtpdiag.msmtprc.parser import parse_text


def make_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("account default\nhost h\n")
    return str(path)


def test_candidates_in_msmtp_order(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path)}
    assert candidate_paths(environ) == (
        str(tmp_path / ".msmtprc"),
        str(tmp_path / ".config" / "msmtp" / "config"),
        SYSTEM_MSMTPRC,
    )


def test_candidates_use_xdg_config_home(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert candidate_paths(environ)[1] == str(tmp_path / "xdg" / "msmtp" / "config")


def test_empty_xdg_config_home_is_unset(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": ""}
    assert candidate_paths(environ)[1] == str(tmp_path / ".config" / "msmtp" / "config")


def test_home_msmtprc_comes_first(tmp_path: Path) -> None:
    expected = make_file(tmp_path / ".msmtprc")
    make_file(tmp_path / ".config" / "msmtp" / "config")
    assert find_msmtprc({"HOME": str(tmp_path)}) == expected


def test_xdg_file_when_no_msmtprc(tmp_path: Path) -> None:
    expected = make_file(tmp_path / "xdg" / "msmtp" / "config")
    environ = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert find_msmtprc(environ) == expected


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / ".msmtprc").mkdir()
    expected = make_file(tmp_path / ".config" / "msmtp" / "config")
    assert find_msmtprc({"HOME": str(tmp_path)}) == expected


def test_none_found_names_every_path(tmp_path: Path) -> None:
    if Path(SYSTEM_MSMTPRC).exists():
        pytest.skip(f"{SYSTEM_MSMTPRC} exists on this machine")
    with pytest.raises(UsageError) as raised:
        find_msmtprc({"HOME": str(tmp_path)})
    for path in candidate_paths({"HOME": str(tmp_path)}):
        assert path in raised.value.problem


TWO_ACCOUNTS = "account relay\nhost r\naccount backup\nhost b\n"


@pytest.mark.parametrize(
    ("text", "name", "expected", "fallback"),
    [
        ("account relay\nhost r\naccount default : relay\n", None, "default", False),
        ("host first\n", None, "default", False),
        ("account relay\nhost r\n", None, "relay", True),
        (TWO_ACCOUNTS, "backup", "backup", False),
        ("account relay\nhost r\naccount default : relay\n", "relay", "relay", False),
    ],
    ids=["default account", "implicit default", "only account", "named", "named over default"],
)
def test_select_account(text: str, name: str | None, expected: str, fallback: bool) -> None:
    account, used_fallback = select_account(parse_text(text), name)
    assert (account.name, used_fallback) == (expected, fallback)


@pytest.mark.parametrize(
    ("name", "words"),
    [(None, "no default account"), ("missing", "no account named 'missing'")],
    ids=["no default", "unknown name"],
)
def test_select_account_lists_accounts(name: str | None, words: str) -> None:
    with pytest.raises(UsageError) as raised:
        select_account(parse_text(TWO_ACCOUNTS, "/etc/msmtprc"), name)
    assert words in raised.value.problem
    assert "(accounts: relay, backup)" in raised.value.problem


def test_select_account_in_empty_file() -> None:
    with pytest.raises(UsageError) as raised:
        select_account(parse_text("# nothing\n"), None)
    assert "(accounts: none)" in raised.value.problem


def test_dangling_link_is_returned(tmp_path: Path) -> None:
    (tmp_path / ".msmtprc").symlink_to(tmp_path / "absent")
    assert find_msmtprc({"HOME": str(tmp_path)}) == str(tmp_path / ".msmtprc")
