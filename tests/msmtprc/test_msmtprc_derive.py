"""smtpdiag configuration values derived from an msmtp account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smtpdiag.config_values import KEYS
from smtpdiag.msmtprc.derive import config_values
from smtpdiag.msmtprc.parser import parse_text


def derive(text: str, account: str = "a") -> dict[str, Any]:
    config = parse_text(text)
    found = config.account(account)
    assert found is not None
    return config_values(config, found)


def test_relay_account(tmp_path: Path) -> None:
    log = tmp_path / "msmtp.log"
    log.write_text("")
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    text = (
        f"defaults\ntls on\nlogfile {log}\ntls_trust_file {ca}\n"
        "account a\nhost smtp.office365.com\nport 587\nauth xoauth2\nuser u@example.com\n"
        'passwordeval "/usr/local/bin/token --refresh"\ndomain relay.example.com\n'
        "tls_host_override smtp.office365.com\nlogfile_time_format %Y-%m-%dT%H:%M:%S\n"
    )
    assert derive(text) == {
        "host": "smtp.office365.com",
        "port": 587,
        "tls_mode": "starttls",
        "user": "u@example.com",
        "auth_mechanism": "XOAUTH2",
        "token_command": "/usr/local/bin/token --refresh",
        "ca_file": str(ca),
        "sni": "smtp.office365.com",
        "ehlo_name": "relay.example.com",
        "log_files": [str(log)],
        "msmtp_time_format": "%Y-%m-%dT%H:%M:%S",
        "provider": "microsoft",
    }


@pytest.mark.parametrize(
    ("lines", "key", "expected"),
    [
        ("tls on\ntls_starttls off", "tls_mode", "implicit"),
        ("tls on\ntls_starttls off", "port", 465),
        ("", "port", 25),
        ("auth oauthbearer", "auth_mechanism", "OAUTHBEARER"),
        ("host SMTP.Gmail.com.", "provider", "google"),
    ],
    ids=[
        "implicit tls",
        "implicit default port",
        "plain default port",
        "oauthbearer",
        "provider host case",
    ],
)
def test_value(lines: str, key: str, expected: object) -> None:
    assert derive(f"account a\nhost h\n{lines}\n")[key] == expected


@pytest.mark.parametrize(
    ("lines", "key"),
    [
        ("", "tls_mode"),
        ("auth plain", "auth_mechanism"),
        ("auth on", "auth_mechanism"),
        ("user", "user"),
        ("passwordeval", "token_command"),
        ("tls on\ntls_trust_file system", "ca_file"),
        ("tls_trust_file /nonexistent/ca.pem", "ca_file"),
        ("domain %H", "ehlo_name"),
        ("logfile -", "log_files"),
        ("logfile /nonexistent/msmtp.log", "log_files"),
        ("logfile_time_format plain", "msmtp_time_format"),
        ("tls_host_override 192.0.2.1", "sni"),
        ("host bad host", "host"),
        ("", "provider"),
        ("protocol lmtp", "port"),
    ],
    ids=[
        "tls off",
        "plain auth",
        "auth chosen by msmtp",
        "empty user",
        "empty passwordeval",
        "system trust",
        "missing trust file",
        "domain pattern",
        "log to stdout",
        "missing log file",
        "time format without directive",
        "sni address",
        "invalid host",
        "no provider",
        "lmtp without port",
    ],
)
def test_value_left_out(lines: str, key: str) -> None:
    assert key not in derive(f"account a\nhost h\n{lines}\n")


def test_tilde_is_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "msmtp.log").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert derive("account a\nhost h\nlogfile ~/msmtp.log\n")["log_files"] == [
        str(tmp_path / "msmtp.log")
    ]


def test_every_value_passes_its_key(tmp_path: Path) -> None:
    log = tmp_path / "msmtp.log"
    log.write_text("")
    values = derive(f"account a\nhost smtp.gmail.com\ntls on\nauth xoauth2\nlogfile {log}\n")
    for key, value in values.items():
        assert KEYS[key].parse(value) is not None, key
