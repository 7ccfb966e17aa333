"""Configuration: TOML targets, SMTPDIAG_* variables, CLI values and their precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtpdiag.cli import main
from smtpdiag.config import load, split_host_port
from smtpdiag.config_values import KEYS
from smtpdiag.context import TlsMode
from smtpdiag.errors import ConfigError, UsageError

CONFIG = """
[defaults]
timeout = 4

[targets.prod]
host = "smtp.example.com"
port = 465
tls_mode = "auto"
user = "alerts@example.com"

[targets.relay]
host = "127.0.0.1"
port = 2525
tls_mode = "starttls"
timeout = 2
"""


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "smtpdiag.toml"
    path.write_text(CONFIG)
    return str(path)


def test_file_target_host(config_file: str) -> None:
    loaded = load({}, config_path=config_file, target_name="prod", environ={})
    assert (loaded.target.host, loaded.target.port) == ("smtp.example.com", 465)


def test_auto_mode_on_465_is_implicit(config_file: str) -> None:
    loaded = load({}, config_path=config_file, target_name="prod", environ={})
    assert loaded.target.tls_mode is TlsMode.IMPLICIT


def test_defaults_table_applies(config_file: str) -> None:
    loaded = load({}, config_path=config_file, target_name="prod", environ={})
    assert loaded.settings.timeout == 4


def test_target_table_overrides_defaults(config_file: str) -> None:
    loaded = load({}, config_path=config_file, target_name="relay", environ={})
    assert loaded.settings.timeout == 2


def test_environment_overrides_file(config_file: str) -> None:
    loaded = load(
        {}, config_path=config_file, target_name="relay", environ={"SMTPDIAG_TIMEOUT": "7"}
    )
    assert loaded.settings.timeout == 7


def test_cli_overrides_environment(config_file: str) -> None:
    loaded = load(
        {"timeout": 9},
        config_path=config_file,
        target_name="relay",
        environ={"SMTPDIAG_TIMEOUT": "7"},
    )
    assert loaded.settings.timeout == 9


def test_cli_host_port_overrides_file(config_file: str) -> None:
    loaded = load(
        {}, host_port="127.0.0.1:2600", config_path=config_file, target_name="relay", environ={}
    )
    assert loaded.target.port == 2600


def test_config_path_from_environment(config_file: str) -> None:
    loaded = load({}, environ={"SMTPDIAG_CONFIG": config_file, "SMTPDIAG_TARGET": "relay"})
    assert loaded.target.port == 2525


@pytest.mark.parametrize(
    ("mode", "port", "expected"),
    [
        pytest.param(None, None, (587, TlsMode.STARTTLS), id="default-587-starttls"),
        pytest.param("implicit", None, (465, TlsMode.IMPLICIT), id="implicit-defaults-465"),
        pytest.param("auto", 465, (465, TlsMode.IMPLICIT), id="auto-465"),
        pytest.param("auto", 2525, (2525, TlsMode.STARTTLS), id="auto-other-port"),
        pytest.param("starttls", 465, (465, TlsMode.STARTTLS), id="explicit-wins"),
    ],
)
def test_port_and_mode(mode: str | None, port: int | None, expected: tuple[int, TlsMode]) -> None:
    loaded = load({"tls_mode": mode, "port": port}, host_port="mail.example.com", environ={})
    assert (loaded.target.port, loaded.target.tls_mode) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("smtp.example.com", ("smtp.example.com", None), id="host"),
        pytest.param("smtp.example.com:465", ("smtp.example.com", 465), id="host-port"),
        pytest.param("[::1]:2525", ("::1", 2525), id="bracketed-ipv6-port"),
        pytest.param("[::1]", ("::1", None), id="bracketed-ipv6"),
        pytest.param("2001:db8::1", ("2001:db8::1", None), id="bare-ipv6"),
    ],
)
def test_split_host_port(text: str, expected: tuple[str, int | None]) -> None:
    assert split_host_port(text) == expected


USAGE_ERRORS = [
    pytest.param(
        {"timeout": -1}, "smtp.example.com", {}, "Invalid timeout -1", id="negative-timeout"
    ),
    pytest.param(
        {"timeout": "soon"}, "smtp.example.com", {}, "Invalid timeout 'soon'", id="text-timeout"
    ),
    pytest.param(
        {}, "smtp.example.com:99999", {}, "'smtp.example.com:99999'", id="port-out-of-range"
    ),
    pytest.param({}, "smtp.example.com:abc", {}, "'smtp.example.com:abc'", id="port-not-number"),
    pytest.param(
        {}, "smtp.example.com:\uff15\uff18\uff17", {}, "is not valid", id="port-fullwidth-digits"
    ),
    pytest.param({}, "smtp.example.com:0", {}, "from 1 to 65535", id="port-zero"),
    pytest.param({}, None, {}, "No target given", id="no-target"),
    pytest.param({}, "x", {"SMTPDIAG_TIMOUT": "3"}, "SMTPDIAG_TIMOUT", id="misspelt-variable"),
    pytest.param({"timeout": "1e10"}, "x", {}, "at most 3600", id="huge-timeout"),
    pytest.param({"timeout": "ten"}, "x", {}, "Invalid timeout 'ten'", id="word-timeout"),
    pytest.param(
        {"ehlo_name": "evil\r\nMAIL FROM:<x@y>"}, "x", {}, "control characters", id="ehlo-injection"
    ),
    pytest.param(
        {"ehlo_name": "has space"}, "x", {}, "Invalid ehlo_name 'has space'", id="ehlo-space"
    ),
    pytest.param(
        {"dns_nameservers": "notanip"},
        "x",
        {},
        "'notanip' is not an IP address",
        id="nameserver-not-ip",
    ),
    pytest.param({}, "::1:36419", {}, "[IPV6]:PORT", id="bare-ipv6-with-port"),
    pytest.param({}, "[::1", {}, "unbalanced brackets", id="unclosed-bracket"),
    pytest.param({}, "[::1]x", {}, "unbalanced brackets", id="text-after-bracket"),
    pytest.param({}, "smtp example.com", {}, "Invalid host", id="space-in-host"),
    pytest.param(
        {}, "x", {"SMTPDIAG_TLS_MODE": "ssl"}, "Invalid tls_mode 'ssl'", id="bad-env-mode"
    ),
    pytest.param(
        {"ca_file": "/nonexistent/ca.pem"}, "x", {}, "/nonexistent/ca.pem", id="missing-ca-file"
    ),
    pytest.param(
        {},
        None,
        {"SMTPDIAG_TARGET": "prod"},
        "needs a configuration file",
        id="target-without-file",
    ),
    pytest.param({"sni": "192.0.2.1"}, "x", {}, "SNI carries host names only", id="sni-ip"),
    pytest.param(
        {"sni": "mail.example.com", "no_sni": True}, "x", {}, "both set", id="sni-and-no-sni"
    ),
    pytest.param(
        {"cert_warning_days": "soon"}, "x", {}, "Invalid cert_warning_days", id="days-text"
    ),
    pytest.param(
        {"cert_warning_days": "5", "cert_critical_days": "10"},
        "x",
        {},
        "is above cert_warning_days",
        id="critical-above-warning",
    ),
]


@pytest.mark.parametrize(("cli", "host_port", "environ", "message"), USAGE_ERRORS)
def test_usage_error_names_value(
    cli: dict[str, object], host_port: str | None, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load(cli, host_port=host_port, environ=environ)


CONFIG_ERRORS = [
    pytest.param("[targets.a\nhost='x'", "not valid TOML", id="syntax"),
    pytest.param("[targets.a]\nhots = 'x'\n", "unknown key 'hots'", id="unknown-key"),
    pytest.param(
        "[target.a]\nhost = 'x'\n", "unknown top-level table 'target'", id="unknown-table"
    ),
    pytest.param(
        "[targets.a]\nhost = 'x'\nport = 'many'\n",
        "port = 'many' has the wrong type",
        id="bad-port",
    ),
    pytest.param(
        "[targets.a]\nhost = 'x'\nport = '587'\n",
        "port = '587' has the wrong type",
        id="port-as-string",
    ),
    pytest.param(
        "[targets.a]\nhost = 'x'\ninsecure = 'yes'\n",
        "insecure = 'yes' has the wrong type",
        id="bool-as-string",
    ),
    pytest.param(
        "[targets.a]\nhost = 'x'\ndns_nameservers = ['127.0.0.1', 5]\n",
        "expected a list of IP address strings",
        id="nameserver-number",
    ),
    pytest.param(
        "[targets.a]\nhost = '127.0.0.1:2525'\n",
        "put the port in the port setting",
        id="port-inside-host",
    ),
    pytest.param(
        "[targets.a]\nhost = 'x'\nport = true\n",
        "port = true has the wrong type",
        id="toml-boolean-shown-as-toml",
    ),
    pytest.param(
        "[targets.a]\nhost = 'x'\nmsmtp_time_format = '%b %Q'\n",
        "%Q is not a directive smtpdiag can read",
        id="unreadable-time-format",
    ),
    pytest.param(
        "[targets.a]\nhost = 'x'\nlog_files = []\n",
        "Set log_files to a list of mail log file paths",
        id="empty-log-files",
    ),
    pytest.param("[targets.a]\n", "has neither host nor domain", id="empty-target"),
    pytest.param("[targets.b]\nhost = 'x'\n", "no target named 'a'", id="missing-target"),
]


@pytest.mark.parametrize(("text", "message"), CONFIG_ERRORS)
def test_config_error_names_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load({}, config_path=str(path), target_name="a", environ={})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load({}, config_path=str(tmp_path / "none.toml"), target_name="a", environ={})


def test_access_token_from_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("ya29.file-token-value\n")
    loaded = load({"access_token_file": str(token_file)}, host_port="x", environ={})
    assert loaded.target.access_token is not None
    assert loaded.target.access_token.reveal() == "ya29.file-token-value"


def test_access_token_from_environment() -> None:
    loaded = load({}, host_port="x", environ={"SMTPDIAG_ACCESS_TOKEN": "ya29.env-token-value"})
    assert loaded.target.access_token is not None
    assert loaded.target.access_token.reveal() == "ya29.env-token-value"


def test_access_token_from_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "access_token").write_text("ya29.credential-value")
    loaded = load({}, host_port="x", environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert loaded.target.access_token is not None
    assert loaded.target.access_token.source == f"file {tmp_path / 'access_token'}"


def test_target_description_hides_token() -> None:
    loaded = load({}, host_port="x", environ={"SMTPDIAG_ACCESS_TOKEN": "ya29.hidden-token-value"})
    assert "ya29.hidden-token-value" not in repr(loaded.target.describe())


def test_ca_file_without_certificate(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(UsageError, match="contains no usable PEM certificate"):
        load({"ca_file": str(junk)}, host_port="x", environ={})


def test_config_link_loop_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.toml").symlink_to("b.toml")
    (tmp_path / "b.toml").symlink_to("a.toml")
    code = main(["check", "--only", "token", "--config", str(tmp_path / "a.toml")])
    err = capsys.readouterr().err
    assert code == 3
    assert (
        f"{tmp_path / 'a.toml'}: cannot be read because its path contains a symbolic link loop"
        in err
    )
    assert "Fix the symbolic link so that it points to the TOML file." in err


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ca_file", "~/ca.pem"),
        ("access_token_file", "~/token"),
        ("token_cache_file", "~/cache.json"),
        ("msmtprc", "~/.msmtprc"),
        ("exim_config", "~/exim.conf"),
    ],
)
def test_path_key_expands_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key: str, value: str
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert KEYS[key].parse(value) == f"{tmp_path}/{value[2:]}"


def test_path_lists_expand_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = (f"{tmp_path}/mail.log", "/var/log/mail.log")
    assert KEYS["log_files"].parse(["~/mail.log", "/var/log/mail.log"]) == expected
    assert KEYS["secret_files"].parse("~/mail.log,/var/log/mail.log") == expected


def test_relative_path_key_stays_relative() -> None:
    assert KEYS["ca_file"].parse("certs/ca.pem") == "certs/ca.pem"


def test_msmtprc_auto_not_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert KEYS["msmtprc"].parse("auto") == "auto"


def test_config_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "utf16.toml"
    path.write_bytes(b"\xff\xfe[\x00t\x00")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load({}, config_path=str(path), target_name="a", environ={})


@pytest.mark.parametrize(
    "name", ["client.example.com", "[192.0.2.1]", "[IPv6:2001:db8::1]", "localhost"]
)
def test_valid_ehlo_name(name: str) -> None:
    loaded = load({"ehlo_name": name}, host_port="x", environ={})
    assert loaded.target.ehlo_name == name


TLS_KEY_CASES = [
    pytest.param({"sni": "mail.example.com"}, {}, ("mail.example.com", False), id="cli-sni"),
    pytest.param({"no_sni": True}, {}, (None, True), id="cli-no-sni"),
    pytest.param(
        {}, {"SMTPDIAG_SNI": "relay.example.com."}, ("relay.example.com", False), id="env-sni"
    ),
    pytest.param({}, {"SMTPDIAG_NO_SNI": "yes"}, (None, True), id="env-no-sni"),
    pytest.param({}, {}, (None, False), id="default"),
]


@pytest.mark.parametrize(("cli", "environ", "expected"), TLS_KEY_CASES)
def test_sni_keys(
    cli: dict[str, object], environ: dict[str, str], expected: tuple[str | None, bool]
) -> None:
    target = load(cli, host_port="smtp.example.com", environ=environ).target
    assert (target.sni, target.no_sni) == expected


def test_certificate_days_from_file(tmp_path: Path) -> None:
    path = tmp_path / "smtpdiag.toml"
    path.write_text("[targets.a]\nhost = 'x'\ncert_warning_days = 30\ncert_critical_days = 10\n")
    settings = load({}, config_path=str(path), target_name="a", environ={}).settings
    assert (settings.cert_warning_days, settings.cert_critical_days) == (30, 10)


def test_certificate_days_default() -> None:
    settings = load({}, host_port="x", environ={}).settings
    assert (settings.cert_warning_days, settings.cert_critical_days) == (21, 7)


def test_ca_file_directory_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        load({"ca_file": str(tmp_path)}, host_port="x", environ={})


def test_single_target_used_without_name(tmp_path: Path) -> None:
    path = tmp_path / "smtpdiag.toml"
    path.write_text('[targets.lab]\nhost = "127.0.0.1"\nport = 2525\n')
    target = load({}, config_path=str(path), environ={}).target
    assert (target.name, target.port) == ("lab", 2525)


def test_single_target_not_used_with_host(tmp_path: Path) -> None:
    path = tmp_path / "smtpdiag.toml"
    path.write_text('[targets.lab]\nhost = "127.0.0.1"\nport = 2525\n')
    target = load({}, host_port="127.0.0.2:587", config_path=str(path), environ={}).target
    assert (target.name, target.host) == (None, "127.0.0.2")


def test_secret_files_as_toml_list(tmp_path: Path) -> None:
    secret = tmp_path / "oauth.env"
    secret.write_text("CLIENT_ID=x\n")
    path = tmp_path / "smtpdiag.toml"
    path.write_text(f'[targets.relay]\nhost = "127.0.0.1"\nsecret_files = ["{secret}"]\n')
    target = load({}, config_path=str(path), environ={}).target
    assert [item.path for item in target.secrets.files] == [str(secret)]
