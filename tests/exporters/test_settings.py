"""Exporter configuration: the [exporter] table, targets, log files and web settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporters.settings import (
    DEFAULT_INTERVALS,
    DEFAULT_LISTEN,
    JOB_CHECKS,
    JOB_PUBLISHES,
    JOBS,
    ExporterConfig,
    LogFile,
    default_workers,
    load_exporter_config,
    parse_listen,
)
from smtpdiag.config import load, target_names
from smtpdiag.context import DEFAULT_MSMTP_TIME_FORMAT
from smtpdiag.errors import ConfigError, SecretError, UsageError
from smtpdiag.lab.certs import write_certificates

TARGETS = """
[targets.relay]
host = "127.0.0.1"
port = 2525

[targets.gmail]
provider = "google"
user = "alerts@example.com"
"""


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "smtpdiag.toml"
    path.write_text(text)
    return str(path)


def load_text(tmp_path: Path, text: str, **kwargs: str) -> ExporterConfig:
    return load_exporter_config(write_config(tmp_path, text), environ={}, **kwargs)


# Defaults and the parsed [exporter] table.


def test_targets_keep_file_order(tmp_path: Path) -> None:
    config = load_text(tmp_path, TARGETS)
    assert [entry.name for entry in config.targets] == ["relay", "gmail"]


def test_provider_label_of_generic_target(tmp_path: Path) -> None:
    config = load_text(tmp_path, TARGETS)
    assert config.targets[0].provider == "generic"


def test_provider_label_from_oauth_provider(tmp_path: Path) -> None:
    config = load_text(tmp_path, TARGETS)
    assert config.targets[1].provider == "google"


def test_target_built_like_check_command(tmp_path: Path) -> None:
    config = load_text(tmp_path, TARGETS)
    assert (config.targets[0].target.host, config.targets[0].target.port) == ("127.0.0.1", 2525)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("jobs", JOBS),
        ("jitter", 0.1),
        ("workers", 16),
        ("max_connections", 32),
        ("state_file", None),
        ("log_files", ()),
    ],
)
def test_default_value(tmp_path: Path, field: str, expected: object) -> None:
    config = load_text(tmp_path, TARGETS)
    assert getattr(config, field) == expected


def test_default_intervals(tmp_path: Path) -> None:
    config = load_text(tmp_path, TARGETS)
    assert dict(config.intervals) == dict(DEFAULT_INTERVALS)


def test_default_listen(tmp_path: Path) -> None:
    config = load_text(tmp_path, TARGETS)
    assert config.web.listen == DEFAULT_LISTEN


def test_exporter_table_values(tmp_path: Path) -> None:
    text = (
        TARGETS
        + """
[exporter]
listen = "[::1]:9999"
jobs = ["tls", "auth"]
jitter = 0.25
workers = 4
state_file = "STATE"

[exporter.intervals]
tls = 30
"""
    )
    config = load_text(tmp_path, text.replace("STATE", str(tmp_path / "exporter.state")))
    assert (config.web.listen, config.jobs, config.jitter, config.workers) == (
        "[::1]:9999",
        ("tls", "auth"),
        0.25,
        4,
    )


def test_interval_override_keeps_other_defaults(tmp_path: Path) -> None:
    config = load_text(tmp_path, TARGETS + "[exporter.intervals]\ntls = 30\n")
    assert dict(config.intervals) == {**DEFAULT_INTERVALS, "tls": 30.0}


def test_state_file_path(tmp_path: Path) -> None:
    state = tmp_path / "exporter.state"
    config = load_text(tmp_path, TARGETS + f'[exporter]\nstate_file = "{state}"\n')
    assert config.state_file == str(state)


def test_listen_argument_overrides_file(tmp_path: Path) -> None:
    text = TARGETS + '[exporter]\nlisten = "127.0.0.1:1111"\n'
    config = load_text(tmp_path, text, listen="127.0.0.1:2222")
    assert config.web.listen == "127.0.0.1:2222"


def test_empty_jobs_with_log_files_run_no_probes(tmp_path: Path) -> None:
    text = TARGETS + '[exporter]\njobs = []\nlog_files = ["/var/log/mail.log"]\n'
    config = load_text(tmp_path, text)
    assert config.jobs == ()


@pytest.mark.parametrize("job", JOBS)
def test_job_publishes_subset_of_its_checks(job: str) -> None:
    assert set(JOB_PUBLISHES[job]) <= set(JOB_CHECKS[job])


def test_every_check_published_once() -> None:
    published = [check for job in JOBS for check in JOB_PUBLISHES[job]]
    assert len(published) == len(set(published))


# Invalid [exporter] values: every error names the value and is a UsageError (exit code 3).

INVALID_EXPORTER = [
    pytest.param("[exporter]\nport = 1\n", "'port'", id="unknown-key"),
    pytest.param('[exporter]\njobs = ["nope"]\n', "'nope'", id="unknown-job"),
    pytest.param('[exporter]\njobs = "tls"\n', "'tls'", id="jobs-not-list"),
    pytest.param('[exporter]\njobs = ["tls", "tls"]\n', "'tls'", id="duplicate-job"),
    pytest.param("[exporter]\njitter = 0.6\n", "jitter = 0.6", id="jitter-above-max"),
    pytest.param("[exporter]\njitter = -0.1\n", "jitter = -0.1", id="jitter-negative"),
    pytest.param("[exporter]\njitter = true\n", "jitter = true", id="jitter-boolean"),
    pytest.param('[exporter]\njitter = "0.1"\n', "jitter = '0.1'", id="jitter-string"),
    pytest.param("[exporter]\nworkers = 0\n", "workers = 0", id="workers-zero"),
    pytest.param("[exporter]\nworkers = 257\n", "workers = 257", id="workers-above-max"),
    pytest.param("[exporter]\nworkers = 1.5\n", "workers = 1.5", id="workers-float"),
    pytest.param("[exporter]\nworkers = true\n", "workers = true", id="workers-boolean"),
    pytest.param(
        "[exporter]\nmax_connections = 0\n", "max_connections = 0", id="max-connections-zero"
    ),
    pytest.param(
        "[exporter]\nmax_connections = 1025\n",
        "max_connections = 1025",
        id="max-connections-above-max",
    ),
    pytest.param(
        '[exporter]\nmax_connections = "64"\n',
        "max_connections = '64'",
        id="max-connections-string",
    ),
    pytest.param(
        "[exporter]\nmax_connections = false\n",
        "max_connections = false",
        id="max-connections-boolean",
    ),
    pytest.param("[exporter.intervals]\ntls = 0\n", "tls = 0", id="interval-zero"),
    pytest.param("[exporter.intervals]\ntls = 86401\n", "tls = 86401", id="interval-above-max"),
    pytest.param('[exporter.intervals]\ntls = "60"\n', "tls = '60'", id="interval-text"),
    pytest.param("[exporter.intervals]\nnope = 60\n", "'nope'", id="interval-unknown-job"),
    pytest.param("[exporter]\nintervals = 60\n", "intervals = 60", id="intervals-not-table"),
    pytest.param('[exporter]\nlisten = "127.0.0.1"\n', "'127.0.0.1'", id="listen-no-port"),
    pytest.param("[exporter]\nlisten = 10587\n", "10587", id="listen-not-string"),
    pytest.param('[exporter]\nlisten = "[::1:80"\n', "'[::1:80'", id="listen-bracket"),
    pytest.param('[exporter]\nlisten = "host:99999"\n', "'host:99999'", id="listen-bad-port"),
    pytest.param('[exporter]\nlisten = ":10587"\n', "':10587'", id="listen-no-host"),
    pytest.param("[exporter]\njobs = []\n", "jobs is empty", id="no-jobs-no-logs"),
    pytest.param("[exporter]\nlog_files = 5\n", "log_files = 5", id="log-files-number"),
    pytest.param("[exporter]\nstate_file = 5\n", "state_file = 5", id="state-file-number"),
    pytest.param(
        '[exporter]\nstate_file = "/nonexistent-dir/x.state"\n',
        "/nonexistent-dir/x.state",
        id="state-file-missing-directory",
    ),
    pytest.param("[exporter]\nweb = 1\n", "web = 1", id="web-not-table"),
    pytest.param("[exporter.web]\nport = 1\n", "'port'", id="web-unknown-key"),
    pytest.param(
        '[exporter.web]\ntls_cert_file = "/nonexistent.pem"\n',
        "/nonexistent.pem",
        id="web-missing-file",
    ),
    pytest.param(
        '[exporter.web]\nbasic_auth_user = "prometheus"\n',
        "basic_auth_password_file",
        id="user-without-password",
    ),
]


@pytest.mark.parametrize(("snippet", "named"), INVALID_EXPORTER)
def test_invalid_exporter_value_names_it(tmp_path: Path, snippet: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, TARGETS + snippet)
    assert named in str(caught.value)


@pytest.mark.parametrize(("snippet", "_named"), INVALID_EXPORTER)
def test_invalid_exporter_value_is_usage_error(tmp_path: Path, snippet: str, _named: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_text(tmp_path, TARGETS + snippet)
    assert caught.value.fix


def test_unknown_key_error_lists_allowed_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, TARGETS + "[exporter]\nport = 1\n")
    assert "listen, jobs, jitter, workers" in caught.value.fix


@pytest.mark.parametrize("listen", ["127.0.0.1", "[::1]", "::0", "a b:80", ":10587"])
def test_invalid_listen_argument_names_it(tmp_path: Path, listen: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_text(tmp_path, TARGETS, listen=listen)
    assert caught.value.value == listen


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("127.0.0.1:0", ("127.0.0.1", 0), id="port-zero"),
        pytest.param("127.0.0.1:10587", ("127.0.0.1", 10587), id="ipv4"),
        pytest.param("[::1]:10587", ("::1", 10587), id="ipv6"),
        pytest.param("localhost:65535", ("localhost", 65535), id="name"),
    ],
)
def test_parse_listen_valid(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("127.0.0.1", id="no-port"),
        pytest.param(":10587", id="no-host"),
        pytest.param("::1:10587", id="ipv6-without-brackets"),
        pytest.param("127.0.0.1:65536", id="port-too-large"),
        pytest.param("127.0.0.1:-1", id="negative-port"),
        pytest.param("127.0.0.1:http", id="named-port"),
        pytest.param("127.0.0.1:\uff11\uff12", id="fullwidth-digits"),
    ],
)
def test_parse_listen_invalid(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_listen(text)
    assert caught.value.value == text


# Targets.


@pytest.mark.parametrize(
    ("table", "named"),
    [
        pytest.param('port = "x"', "[targets.broken]", id="wrong-type"),
        pytest.param("nope = 1", "[targets.broken]", id="unknown-key"),
        pytest.param('tenant = "contoso"\nprovider = "google"', "[targets.broken]", id="tenant"),
        pytest.param('user = "a@example.com"', "'broken'", id="no-host"),
        pytest.param('timeout = "soon"', "[targets.broken]", id="invalid-value"),
    ],
)
def test_target_error_names_target(tmp_path: Path, table: str, named: str) -> None:
    text = TARGETS + f"\n[targets.broken]\n{table}\n"
    with pytest.raises(UsageError) as caught:
        load_text(tmp_path, text)
    assert named in str(caught.value)


def test_defaults_error_names_defaults(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        load_text(tmp_path, '[defaults]\ntimeout = "soon"\n' + TARGETS)
    assert "[defaults]" in str(caught.value)


def test_environment_applies_to_every_target(tmp_path: Path) -> None:
    path = write_config(tmp_path, TARGETS)
    config = load_exporter_config(path, environ={"SMTPDIAG_TIMEOUT": "3"})
    assert [entry.settings.timeout for entry in config.targets] == [3.0, 3.0]


def test_log_only_target_not_probed(tmp_path: Path) -> None:
    text = TARGETS + '\n[targets.logs]\nlog_files = ["/var/log/mail.log"]\n'
    config = load_text(tmp_path, text)
    assert [entry.name for entry in config.targets] == ["relay", "gmail"]


def test_log_only_target_log_files_followed(tmp_path: Path) -> None:
    text = TARGETS + '\n[targets.logs]\nlog_files = ["/var/log/mail.log"]\n'
    config = load_text(tmp_path, text)
    assert [log_file.path for log_file in config.log_files] == ["/var/log/mail.log"]


def test_log_only_configuration(tmp_path: Path) -> None:
    config = load_text(tmp_path, '[exporter]\nlog_files = ["/var/log/mail.log"]\n')
    assert (config.targets, len(config.log_files)) == ((), 1)


def test_no_target_and_no_log_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "[exporter]\nworkers = 2\n")
    assert "no target" in str(caught.value)


# Log files.

UNION = """
[exporter]
log_files = ["/log/a", "/log/b"]

[targets.one]
host = "127.0.0.1"
log_files = ["/log/b", "/log/c"]
log_timezone = "Europe/Berlin"
msmtp_time_format = "none"

[targets.two]
host = "127.0.0.1"
log_files = ["/log/c", "/log/d"]
log_timezone = "UTC"
"""


def test_log_file_union_paths(tmp_path: Path) -> None:
    config = load_text(tmp_path, UNION)
    assert [log_file.path for log_file in config.log_files] == [
        "/log/a",
        "/log/b",
        "/log/c",
        "/log/d",
    ]


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (0, LogFile("/log/a", None, DEFAULT_MSMTP_TIME_FORMAT)),
        (1, LogFile("/log/b", "Europe/Berlin", None)),
        (2, LogFile("/log/c", "Europe/Berlin", None)),
        (3, LogFile("/log/d", "UTC", DEFAULT_MSMTP_TIME_FORMAT)),
    ],
    ids=["exporter-only", "first-target-wins-over-exporter", "first-target-wins", "second"],
)
def test_log_file_union_formats(tmp_path: Path, index: int, expected: LogFile) -> None:
    config = load_text(tmp_path, UNION)
    assert config.log_files[index] == expected


def test_exporter_log_files_use_defaults_zone(tmp_path: Path) -> None:
    text = '[defaults]\nlog_timezone = "UTC"\n[exporter]\nlog_files = ["/log/a"]\n'
    config = load_text(tmp_path, text)
    assert config.log_files[0].timezone == "UTC"


def test_exporter_log_files_use_environment_format(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[exporter]\nlog_files = ["/log/a"]\n')
    config = load_exporter_config(path, environ={"SMTPDIAG_MSMTP_TIME_FORMAT": "none"})
    assert config.log_files[0].msmtp_time_format is None


# Web settings.


def password_file(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "web_password"
    path.write_text(content)
    return path


def web_config(tmp_path: Path, lines: str) -> ExporterConfig:
    return load_text(tmp_path, TARGETS + "[exporter.web]\n" + lines)


def test_basic_auth_password_read(tmp_path: Path) -> None:
    path = password_file(tmp_path, "s3cret-pass\n")
    config = web_config(
        tmp_path, f'basic_auth_user = "prom"\nbasic_auth_password_file = "{path}"\n'
    )
    assert config.web.basic_auth_password is not None
    assert config.web.basic_auth_password.reveal() == "s3cret-pass"


def test_basic_auth_password_masked(tmp_path: Path) -> None:
    path = password_file(tmp_path, "s3cret-pass\n")
    config = web_config(
        tmp_path, f'basic_auth_user = "prom"\nbasic_auth_password_file = "{path}"\n'
    )
    assert "s3cret-pass" not in repr(config.web)


def test_empty_password_file_rejected(tmp_path: Path) -> None:
    path = password_file(tmp_path, "\n")
    with pytest.raises(SecretError):
        web_config(tmp_path, f'basic_auth_user = "prom"\nbasic_auth_password_file = "{path}"\n')


def test_password_without_user_rejected(tmp_path: Path) -> None:
    path = password_file(tmp_path, "pass\n")
    with pytest.raises(ConfigError) as caught:
        web_config(tmp_path, f'basic_auth_password_file = "{path}"\n')
    assert "basic_auth_user" in str(caught.value)


def test_user_with_colon_rejected(tmp_path: Path) -> None:
    path = password_file(tmp_path, "pass\n")
    with pytest.raises(ConfigError) as caught:
        web_config(tmp_path, f'basic_auth_user = "a:b"\nbasic_auth_password_file = "{path}"\n')
    assert "'a:b'" in str(caught.value)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    files = write_certificates(tmp_path_factory.mktemp("certs"))
    return files.chain_file, files.key_file, files.ca_file


def test_tls_files_accepted(tmp_path: Path, certificates: tuple[Path, Path, Path]) -> None:
    chain, key, ca = certificates
    lines = f'tls_cert_file = "{chain}"\ntls_key_file = "{key}"\ntls_client_ca_file = "{ca}"\n'
    config = web_config(tmp_path, lines)
    assert (config.web.tls_cert_file, config.web.tls_key_file, config.web.tls_client_ca_file) == (
        str(chain),
        str(key),
        str(ca),
    )


def test_cert_without_key_rejected(tmp_path: Path, certificates: tuple[Path, Path, Path]) -> None:
    chain, _key, _ca = certificates
    with pytest.raises(ConfigError) as caught:
        web_config(tmp_path, f'tls_cert_file = "{chain}"\n')
    assert "tls_key_file" in str(caught.value)


def test_client_ca_without_tls_rejected(
    tmp_path: Path, certificates: tuple[Path, Path, Path]
) -> None:
    _chain, _key, ca = certificates
    with pytest.raises(ConfigError) as caught:
        web_config(tmp_path, f'tls_client_ca_file = "{ca}"\n')
    assert "tls_client_ca_file" in str(caught.value)


def test_key_that_does_not_match_rejected(
    tmp_path: Path, certificates: tuple[Path, Path, Path]
) -> None:
    chain, _key, _ca = certificates
    other = write_certificates(tmp_path)
    with pytest.raises(ConfigError) as caught:
        web_config(tmp_path, f'tls_cert_file = "{chain}"\ntls_key_file = "{other.key_file}"\n')
    assert str(chain) in str(caught.value)


def test_client_ca_without_certificate_rejected(
    tmp_path: Path, certificates: tuple[Path, Path, Path]
) -> None:
    chain, key, _ca = certificates
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate\n")
    lines = f'tls_cert_file = "{chain}"\ntls_key_file = "{key}"\ntls_client_ca_file = "{not_pem}"\n'
    with pytest.raises(ConfigError) as caught:
        web_config(tmp_path, lines)
    assert str(not_pem) in str(caught.value)


# smtpdiag.config: the [exporter] table is shared with the other commands.


def test_check_command_ignores_exporter_table(tmp_path: Path) -> None:
    path = write_config(tmp_path, TARGETS + "[exporter]\nworkers = 2\n")
    loaded = load({}, config_path=path, target_name="relay", environ={})
    assert loaded.target.port == 2525


def test_target_names_in_file_order(tmp_path: Path) -> None:
    path = write_config(tmp_path, TARGETS + '\n[targets.alpha]\nhost = "127.0.0.1"\n')
    assert target_names(path) == ("relay", "gmail", "alpha")


def test_other_top_level_table_still_rejected(tmp_path: Path) -> None:
    path = write_config(tmp_path, TARGETS + "[exporters]\nworkers = 2\n")
    with pytest.raises(ConfigError) as caught:
        load({}, config_path=path, target_name="relay", environ={})
    assert "'exporters'" in str(caught.value)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param('"has space"', id="space"),
        pytest.param('"alerts@example.com"', id="address"),
        pytest.param('"quote\\""', id="quote"),
        pytest.param('"<b>"', id="markup"),
        pytest.param('"-leading-dash"', id="leading-dash"),
        pytest.param('"' + "x" * 64 + '"', id="too-long"),
        pytest.param('"r\\u00e9lais"', id="non-ascii"),
    ],
)
def test_target_name_unusable_as_label(tmp_path: Path, name: str) -> None:
    text = f'[targets.{name}]\nhost = "127.0.0.1"\n'
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    assert "not usable as a metric label" in str(caught.value)


@pytest.mark.parametrize("name", ["gmail-relay", "m365.prod", "relay_2", "9relay"])
def test_target_name_usable_as_label(tmp_path: Path, name: str) -> None:
    config = load_text(tmp_path, f'[targets."{name}"]\nhost = "127.0.0.1"\n')
    assert [target.name for target in config.targets] == [name]


@pytest.mark.parametrize(
    ("targets", "expected"),
    [(0, 16), (1, 16), (16, 16), (100, 100), (256, 256), (1000, 256)],
)
def test_default_workers_follow_targets(targets: int, expected: int) -> None:
    assert default_workers(targets) == expected


def test_default_workers_one_per_target(tmp_path: Path) -> None:
    tables = "".join(f'[targets.t{index:03}]\nhost = "127.0.0.1"\n' for index in range(40))
    assert load_text(tmp_path, tables).workers == 40


def test_default_max_connections_follow_workers(tmp_path: Path) -> None:
    config = load_text(tmp_path, TARGETS + "[exporter]\nworkers = 100\n")
    assert config.max_connections == 116


def test_max_connections_from_file(tmp_path: Path) -> None:
    config = load_text(tmp_path, TARGETS + "[exporter]\nworkers = 100\nmax_connections = 8\n")
    assert config.max_connections == 8


@pytest.mark.parametrize("listen", ["127.0.0.1:99999", "a b:80"])
def test_listen_error_speaks_of_listen_address(tmp_path: Path, listen: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_text(tmp_path, TARGETS, listen=listen)
    assert "target" not in caught.value.problem


def test_probed_target_has_no_log_files(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    text = f'[targets.relay]\nhost = "127.0.0.1"\nlog_files = ["{log}"]\n'
    config = load_text(tmp_path, text)
    assert config.targets[0].target.logs.files == ()
    assert [log_file.path for log_file in config.log_files] == [str(log)]
