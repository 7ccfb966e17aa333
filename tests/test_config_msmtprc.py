"""Configuration from an msmtprc: the lowest layer of ``load`` and ``check --msmtprc``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpdiag.cli import main
from smtpdiag.config import load
from smtpdiag.context import TlsMode
from smtpdiag.errors import ConfigError, UsageError
from smtpdiag.lab.runner import LabInfo, start_lab
from smtpdiag.lab.scenarios import get_scenario

RELAY = """\
defaults
tls on
tls_starttls off

account relay
host smtp.example.com
port 465
auth xoauth2
user alerts@example.com

account backup : relay
host backup.example.com

account default : relay
"""


@pytest.fixture
def msmtprc(tmp_path: Path) -> str:
    path = tmp_path / "msmtprc"
    path.write_text(RELAY)
    path.chmod(0o600)
    return str(path)


def test_host_and_port_from_msmtprc(msmtprc: str) -> None:
    target = load({"msmtprc": msmtprc}, environ={}).target
    assert (target.host, target.port) == ("smtp.example.com", 465)


def test_tls_mode_from_msmtprc(msmtprc: str) -> None:
    target = load({"msmtprc": msmtprc}, environ={}).target
    assert target.tls_mode is TlsMode.IMPLICIT


def test_user_and_mechanism_from_msmtprc(msmtprc: str) -> None:
    target = load({"msmtprc": msmtprc}, environ={}).target
    assert (target.user, target.auth_mechanism) == ("alerts@example.com", "XOAUTH2")


def test_default_account_name_recorded(msmtprc: str) -> None:
    target = load({"msmtprc": msmtprc}, environ={}).target
    assert (target.msmtp.config_file, target.msmtp.account) == (msmtprc, "default")


def test_named_account(msmtprc: str) -> None:
    target = load({"msmtprc": msmtprc, "msmtp_account": "backup"}, environ={}).target
    assert (target.host, target.msmtp.account) == ("backup.example.com", "backup")


def test_command_line_overrides_msmtprc(msmtprc: str) -> None:
    target = load({"msmtprc": msmtprc, "user": "other@example.com"}, environ={}).target
    assert target.user == "other@example.com"


def test_host_port_argument_overrides_msmtprc(msmtprc: str) -> None:
    target = load({"msmtprc": msmtprc}, host_port="127.0.0.1:2525", environ={}).target
    assert (target.host, target.port) == ("127.0.0.1", 2525)


def test_environment_overrides_msmtprc(msmtprc: str) -> None:
    environ = {"SMTPDIAG_MSMTPRC": msmtprc, "SMTPDIAG_PORT": "587"}
    assert load({}, environ=environ).target.port == 587


def test_toml_file_overrides_msmtprc(msmtprc: str, tmp_path: Path) -> None:
    config = tmp_path / "smtpdiag.toml"
    config.write_text(f'[targets.relay]\nmsmtprc = "{msmtprc}"\nhost = "mx.example.net"\n')
    loaded = load({}, config_path=str(config), target_name="relay", environ={})
    assert (loaded.target.host, loaded.target.port) == ("mx.example.net", 465)


def test_auto_finds_home_msmtprc(tmp_path: Path) -> None:
    (tmp_path / ".msmtprc").write_text(RELAY)
    target = load({"msmtprc": "auto"}, environ={"HOME": str(tmp_path)}).target
    assert target.msmtp.config_file == str(tmp_path / ".msmtprc")


def test_toml_msmtprc_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".msmtprc").write_text(RELAY)
    monkeypatch.setenv("HOME", str(home))
    config = tmp_path / "smtpdiag.toml"
    config.write_text('[defaults]\nmsmtprc = "~/.msmtprc"\n')
    target = load({}, config_path=str(config), environ={}).target
    assert target.msmtp.config_file == str(home / ".msmtprc")
    assert target.host == "smtp.example.com"


def test_relative_msmtprc_from_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_directory = tmp_path / "etc"
    config_directory.mkdir()
    (config_directory / "msmtprc").write_text("account default\nhost file-directory.example\n")
    config = config_directory / "smtpdiag.toml"
    config.write_text('[defaults]\nmsmtprc = "msmtprc"\n')
    working_directory = tmp_path / "work"
    working_directory.mkdir()
    (working_directory / "msmtprc").write_text("account default\nhost working.example\n")
    monkeypatch.chdir(working_directory)
    target = load({}, config_path=str(config), environ={}).target
    assert target.host == "working.example"


def test_msmtprc_link_loop_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    code, _, err = run_check(capsys, "--msmtprc", str(tmp_path / "a"))
    assert code == 3
    assert "cannot be read because its path contains a symbolic link loop" in err
    assert "Fix the symbolic link so that it points to the msmtp configuration file." in err


def test_parse_problems_do_not_stop_loading(tmp_path: Path) -> None:
    path = tmp_path / "msmtprc"
    path.write_text(RELAY + "unknown_command x\n")
    assert load({"msmtprc": str(path)}, environ={}).target.host == "smtp.example.com"


def test_only_account_without_default(tmp_path: Path) -> None:
    path = tmp_path / "msmtprc"
    path.write_text("account only\nhost only.example.com\n")
    target = load({"msmtprc": str(path)}, environ={}).target
    assert target.host == "only.example.com"
    assert target.msmtp.account is None


def test_only_account_with_unusual_name_not_used(tmp_path: Path) -> None:
    path = tmp_path / "msmtprc"
    path.write_bytes(b"account only\rhost h\rpassword Sup3rS3cretValue\r")
    with pytest.raises(UsageError) as raised:
        load({"msmtprc": str(path)}, environ={})
    assert "Sup3rS3cretValue" not in raised.value.problem
    assert raised.value.problem == f"{path} has no default account (accounts: [38 characters])."


def test_account_without_msmtprc_is_usage_error() -> None:
    with pytest.raises(UsageError) as raised:
        load({"msmtp_account": "work", "host": "127.0.0.1"}, environ={})
    assert raised.value.fix == "Pass --msmtprc PATH (or --msmtprc auto) with --account."


def test_account_without_host_names_account_and_file(tmp_path: Path) -> None:
    path = tmp_path / "msmtprc"
    path.write_text("account default\nauth xoauth2\n")
    with pytest.raises(UsageError) as raised:
        load({"msmtprc": str(path)}, environ={})
    assert raised.value.problem == f"The account 'default' in {path} has no host."


def test_account_with_invalid_host(tmp_path: Path) -> None:
    path = tmp_path / "msmtprc"
    path.write_text("account default\nhost bad host\n")
    with pytest.raises(UsageError) as raised:
        load({"msmtprc": str(path)}, environ={})
    assert "'bad host'" in raised.value.problem


def test_account_without_host_when_no_server_needed(tmp_path: Path) -> None:
    path = tmp_path / "msmtprc"
    path.write_text("account default\nauth xoauth2\n")
    target = load({"msmtprc": str(path)}, environ={}, needs_server=False).target
    assert (target.host, target.msmtp.account) == ("", "default")


def test_missing_msmtprc_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load({"msmtprc": str(tmp_path / "missing")}, environ={})


def test_unknown_account_lists_accounts(msmtprc: str) -> None:
    with pytest.raises(UsageError) as raised:
        load({"msmtprc": msmtprc, "msmtp_account": "nosuch"}, environ={})
    assert "(accounts: relay, backup, default)" in raised.value.problem


@pytest.fixture(scope="module")
def healthy_lab() -> Iterator[LabInfo]:
    with start_lab(get_scenario("healthy")) as info:
        yield info


def lab_msmtprc(directory: Path, lab: LabInfo) -> Path:
    host, port = lab.smtp_starttls.rsplit(":", 1)
    path = directory / "msmtprc"
    path.write_text(
        f"account lab\nhost {host}\nport {port}\ntls on\ntls_trust_file {lab.ca_file}\n"
        f"user {lab.user}\nauth xoauth2\naccount default : lab\n"
    )
    path.chmod(0o600)
    return path


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.lab
def test_check_reaches_lab_from_msmtprc(
    healthy_lab: LabInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = lab_msmtprc(tmp_path, healthy_lab)
    code, out, _ = run_check(capsys, "--msmtprc", str(path), "--only", "connect", "-f", "json")
    report = json.loads(out)
    host, port = healthy_lab.smtp_starttls.rsplit(":", 1)
    assert (report["target"]["host"], report["target"]["port"]) == (host, int(port))
    assert report["checks"][0]["status"] == "ok"
    assert code == 0


@pytest.mark.lab
def test_check_msmtprc_auto_uses_home(
    healthy_lab: LabInfo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab_msmtprc(tmp_path, healthy_lab).rename(tmp_path / ".msmtprc")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    code, out, _ = run_check(capsys, "--msmtprc", "auto", "--only", "connect", "-f", "json")
    assert json.loads(out)["target"]["port"] == int(healthy_lab.smtp_starttls.rsplit(":", 1)[1])
    assert code == 0


def test_check_unknown_account_exits_3(msmtprc: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_check(capsys, "--msmtprc", msmtprc, "--account", "nosuch")
    assert code == 3
    assert "relay, backup, default" in err


def test_check_missing_msmtprc_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_check(capsys, "--msmtprc", str(tmp_path / "missing"))
    assert code == 3
    assert "does not exist" in err


def test_log_file_option_adds_to_msmtp_logfile(tmp_path: Path) -> None:
    msmtp_log = tmp_path / "msmtp.log"
    msmtp_log.write_text("")
    path = tmp_path / "msmtprc"
    path.write_text(f"account default\nhost 127.0.0.1\nlogfile {msmtp_log}\n")
    cli = {"msmtprc": str(path), "log_files": "/var/log/mail.log"}
    target = load(cli, environ={}).target
    assert target.logs.files == (str(msmtp_log), "/var/log/mail.log")


def test_environment_file_as_msmtprc_names_rejected_lines(tmp_path: Path) -> None:
    path = tmp_path / "oauth.env"
    path.write_text("CLIENT_ID=abc\nCLIENT_SECRET=GOCSPX-abcdefghijklmnopqrstuv\n")
    with pytest.raises(UsageError) as raised:
        load({"msmtprc": str(path)}, environ={})
    assert "msmtp would reject the file (2 problems, the first: line 1:" in raised.value.problem
    assert "GOCSPX" not in raised.value.problem


def test_password_of_oauth_account_is_access_token(tmp_path: Path) -> None:
    path = tmp_path / "msmtprc"
    token = "ya29.a0AfB_byPasswordTokenValue0123456789abcdef"
    path.write_text(
        f"account default\nhost 127.0.0.1\nauth xoauth2\nuser u@example.com\npassword {token}\n"
    )
    path.chmod(0o600)
    target = load({"msmtprc": str(path)}, environ={}).target
    assert target.access_token is not None
    assert target.access_token.reveal() == token
    assert target.access_token.source == f"msmtprc {path} password"


def test_password_of_plain_account_is_not_a_token(tmp_path: Path) -> None:
    path = tmp_path / "msmtprc"
    path.write_text("account default\nhost 127.0.0.1\nauth plain\nuser u\npassword secret1\n")
    assert load({"msmtprc": str(path)}, environ={}).target.access_token is None
