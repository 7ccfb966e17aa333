"""Exporter configuration: the ``[exporter]`` table and the targets of a smtpdiag TOML file.

The file is the one ``smtpdiag check --config`` reads, plus an optional ``[exporter]`` table
with ``listen``, ``jobs``, ``jitter``, ``workers``, ``max_connections``, ``log_files``,
``state_file`` and the sub-tables ``[exporter.intervals]`` and ``[exporter.web]``. Each
``[targets.NAME]`` table is built exactly as ``smtpdiag check --target NAME`` builds it, so
``SMTPDIAG_*`` variables apply to every target.

A target with neither host nor domain but with ``log_files`` is a log-only target: its log
files are followed and counted, it gets no probe jobs, and it is not in
``ExporterConfig.targets``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from smtpdiag.config import (
    ENV_PREFIX,
    Loaded,
    read_config_file,
    split_host_port,
    target_names,
    toml_text,
)
from smtpdiag.config import load as load_target
from smtpdiag.config_values import KEYS, parse_log_files, parse_text
from smtpdiag.context import DEFAULT_MSMTP_TIME_FORMAT, Settings, Target
from smtpdiag.errors import ConfigError, UsageError
from smtpdiag.secrets import Secret, secret_from_file

logger = logging.getLogger(__name__)

JOB_CHECKS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "connect": ("dns", "connect"),
        "tls": ("dns", "connect", "tls"),
        "clock": ("dns", "connect", "clock"),
        "token": ("token", "scope"),
        "auth": ("dns", "connect", "token", "auth"),
        "local": ("msmtp_config", "relay", "secrets"),
    }
)
"""Check ids that each job runs together, dependencies first. The ``local`` job reads the
target's msmtprc, relay and secret files. A target that configures none of them gets skipped
results, which export nothing."""

JOB_PUBLISHES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "connect": ("dns", "connect"),
        "tls": ("tls",),
        "clock": ("clock",),
        "token": ("token", "scope"),
        "auth": ("auth",),
        "local": ("msmtp_config", "relay", "secrets"),
    }
)
"""Check ids whose results a job stores. Each check id of ``JOB_CHECKS`` is in one job here."""

JOBS: tuple[str, ...] = tuple(JOB_CHECKS)
"""Every job name, in the order the defaults list them."""

DEFAULT_INTERVALS: Mapping[str, float] = MappingProxyType(
    {"connect": 60.0, "tls": 60.0, "clock": 60.0, "token": 300.0, "auth": 300.0, "local": 300.0}
)
"""Seconds between two runs of each job."""

DEFAULT_LISTEN = "127.0.0.1:10587"
"""Address of the HTTP endpoint. It is on loopback, so nothing is exposed by default."""

DEFAULT_JITTER = 0.1
MIN_DEFAULT_WORKERS = 16
"""Minimum number of probe threads when ``workers`` is not set. Above it the default is one
thread per target, so that one cycle over every target runs in parallel and takes about as long
as one probe."""
MIN_INTERVAL = 1.0
MAX_INTERVAL = 86400.0
MAX_JITTER = 0.5
MAX_WORKERS = 256
EXTRA_CONNECTIONS = 16
"""Connections that the default ``max_connections`` allows beyond ``workers``: room for
scrapes of /metrics, health checks and the landing page while every worker runs a /probe."""
MAX_CONNECTIONS = 1024

_EXPORTER_KEYS = (
    "listen",
    "jobs",
    "jitter",
    "workers",
    "max_connections",
    "log_files",
    "state_file",
    "intervals",
    "web",
)
_WEB_KEYS = (
    "tls_cert_file",
    "tls_key_file",
    "tls_client_ca_file",
    "basic_auth_user",
    "basic_auth_password_file",
)


@dataclass(frozen=True)
class WebSettings:
    """Listen address, TLS files and basic auth credentials of the HTTP endpoint."""

    listen: str = DEFAULT_LISTEN
    """``HOST:PORT`` or ``[IPV6]:PORT``, validated by ``parse_listen``; port 0 lets the system
    choose."""
    tls_cert_file: str | None = None
    """PEM certificate chain. With ``tls_key_file`` set as well, the endpoint serves HTTPS."""
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None
    """PEM bundle that client certificates must chain to, or None to accept any client."""
    basic_auth_user: str | None = None
    basic_auth_password: Secret | None = None
    """Password read from ``basic_auth_password_file``, set exactly when the user is set."""


@dataclass(frozen=True)
class LogFile:
    """One mail log that the exporter follows and how to read its timestamps."""

    path: str
    timezone: str | None = None
    """IANA zone of timestamps without an offset (``log_timezone``), or None for the local zone."""
    msmtp_time_format: str | None = DEFAULT_MSMTP_TIME_FORMAT
    """strftime format of msmtp's log file, or None when msmtp writes no timestamp."""


@dataclass(frozen=True)
class ExporterTarget:
    """One probed target: its name, its loaded configuration and its provider label."""

    name: str
    """Name of the ``[targets.NAME]`` table, used as the ``target`` metric label."""
    target: Target
    settings: Settings
    provider: str
    """The ``provider`` metric label: the target's OAuth provider, or ``generic``."""


@dataclass(frozen=True)
class ExporterConfig:
    """Everything ``smtpdiag exporter`` runs with, loaded from one file."""

    path: str
    targets: tuple[ExporterTarget, ...]
    """Probed targets in file order, empty only when log files are followed."""
    jobs: tuple[str, ...]
    """Enabled jobs. An empty tuple runs no probes and only follows log files."""
    intervals: Mapping[str, float]
    """Seconds between runs, for every job name in ``JOBS``."""
    jitter: float
    """Fraction of an interval by which each run moves earlier or later at random."""
    workers: int
    """Threads that run probe jobs."""
    max_connections: int
    """HTTP connections served at once, each in its own thread; further ones get 503."""
    log_files: tuple[LogFile, ...]
    """Followed log files, each path once."""
    state_file: str | None
    """File that keeps the log read positions across restarts, or None."""
    web: WebSettings


def load_exporter_config(
    path: str, *, listen: str | None = None, environ: Mapping[str, str] | None = None
) -> ExporterConfig:
    """Read ``path`` once and build the exporter configuration.

    ``listen`` (from ``--listen``) overrides ``[exporter] listen``. Raises ``ConfigError`` or
    another ``UsageError`` that names the invalid value and the fix.
    """
    environ = os.environ if environ is None else environ
    document = read_config_file(path)
    table = _table(path, document.get("exporter", {}), "exporter", _EXPORTER_KEYS)

    targets, target_logs = _load_targets(path, document, environ)
    log_files = _merge_log_files(_exporter_log_files(path, table, document, environ), target_logs)
    if not targets and not log_files:
        raise ConfigError(
            path,
            "has no target with a host or domain and no log file.",
            'Add a [targets.NAME] table with host = "...", or [exporter] log_files = [...].',
        )
    jobs = _jobs(path, table.get("jobs", list(JOBS)))
    if not jobs and not log_files:
        raise ConfigError(
            path,
            "[exporter] jobs is empty and no log file is configured, so the exporter has "
            "nothing to do.",
            f"List jobs to run, e.g. jobs = {toml_text(list(JOBS))}, or add log_files.",
        )
    workers = _workers(path, table.get("workers", default_workers(len(targets))))
    return ExporterConfig(
        path=path,
        targets=targets,
        jobs=jobs,
        intervals=_intervals(path, table.get("intervals", {})),
        jitter=_number(path, "exporter", "jitter", table.get("jitter", DEFAULT_JITTER), MAX_JITTER),
        workers=workers,
        max_connections=_max_connections(
            path, table.get("max_connections", default_max_connections(workers))
        ),
        log_files=log_files,
        state_file=_state_file(path, table.get("state_file")),
        web=_web(path, table.get("web", {}), _listen(path, table, listen)),
    )


def _table(path: str, value: object, where: str, allowed: Sequence[str]) -> dict[str, Any]:
    """Check that ``value`` is a table whose keys are all in ``allowed``."""
    if not isinstance(value, dict):
        raise ConfigError(
            path, f"{where} = {toml_text(value)} is not a table.", f"Write a [{where}] table."
        )
    for key in value:
        if key not in allowed:
            raise ConfigError(
                path, f"unknown key {key!r} in [{where}].", f"Valid keys: {', '.join(allowed)}."
            )
    return dict(value)


def _load_targets(
    path: str, document: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[tuple[ExporterTarget, ...], list[LogFile]]:
    """Build every probed target and collect the log files of all targets, in file order."""
    targets: list[ExporterTarget] = []
    log_files: list[LogFile] = []
    for name in target_names(path, document):
        _check_target_name(path, name)
        loaded = _load_one_target(path, document, name, environ)
        logs = loaded.target.logs
        log_files.extend(
            LogFile(file, logs.timezone, logs.msmtp_time_format) for file in logs.files
        )
        if not loaded.target.host and loaded.target.domain is None:
            if not logs.files:
                raise ConfigError(
                    path,
                    f"the target {name!r} has neither host, domain nor log_files.",
                    f'Add host = "..." or domain = "..." to [targets.{name}].',
                )
            logger.info("target %s has no host or domain: following its log files only", name)
            continue
        provider = loaded.target.oauth.provider or "generic"
        # The follower reads the log files line by line. The checks get none, so the relay and
        # secrets checks of the local job do not read every file from its start on each run.
        probed = replace(loaded.target, logs=replace(logs, files=()))
        targets.append(ExporterTarget(name, probed, loaded.settings, provider))
    return tuple(targets), log_files


_TARGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
"""Target names the exporter accepts: they become ``target`` label values and ``/probe``
parameters, so they stay short and free of spaces, quotes and markup."""


def _check_target_name(path: str, name: str) -> None:
    if _TARGET_NAME.fullmatch(name) is None:
        raise ConfigError(
            path,
            f"the target name {name!r} is not usable as a metric label.",
            "Name targets with letters, digits, '_', '.' and '-' (at most 63 characters, "
            "starting with a letter or digit), e.g. [targets.gmail-relay].",
        )


def _load_one_target(
    path: str, document: Mapping[str, Any], name: str, environ: Mapping[str, str]
) -> Loaded:
    """Load one target, naming it in any error that does not name it already."""
    try:
        return load_target(
            {},
            config_path=path,
            target_name=name,
            environ=environ,
            needs_server=False,
            document=document,
        )
    except UsageError as error:
        if f"[targets.{name}]" in error.problem or "[defaults]" in error.problem:
            raise
        raise UsageError(
            f"In [targets.{name}] of {path}: {error.problem}", error.fix, value=error.value
        ) from error


def _exporter_log_files(
    path: str, table: Mapping[str, Any], document: Mapping[str, Any], environ: Mapping[str, str]
) -> list[LogFile]:
    """Return ``[exporter] log_files``, read with the zone and time format of ``[defaults]``."""
    if "log_files" not in table:
        return []
    paths = _parse(path, "exporter", "log_files", table["log_files"], parse_log_files)
    timezone = _defaults_value(path, document, environ, "log_timezone", None)
    time_format = _defaults_value(
        path, document, environ, "msmtp_time_format", DEFAULT_MSMTP_TIME_FORMAT
    )
    return [LogFile(file, timezone, time_format) for file in paths]


def _defaults_value(
    path: str, document: Mapping[str, Any], environ: Mapping[str, str], key: str, default: Any
) -> Any:
    """Return ``key`` from the environment or else ``[defaults]``, parsed, or ``default``."""
    variable = f"{ENV_PREFIX}{key.upper()}"
    if variable in environ:
        return _parse(path, "the environment", key, environ[variable], KEYS[key].parse)
    defaults = document.get("defaults", {})
    if isinstance(defaults, dict) and key in defaults:
        return _parse(path, "defaults", key, defaults[key], KEYS[key].parse)
    return default


def _merge_log_files(exporter: list[LogFile], targets: list[LogFile]) -> tuple[LogFile, ...]:
    """Return each path once, with the zone and format of the first target that names it.

    Paths only ``[exporter] log_files`` names keep the ``[defaults]`` zone and format.
    """
    merged: dict[str, LogFile] = {}
    for log_file in targets:
        merged.setdefault(log_file.path, log_file)
    ordered = {log_file.path: merged.get(log_file.path, log_file) for log_file in exporter}
    for path, log_file in merged.items():
        ordered.setdefault(path, log_file)
    return tuple(ordered.values())


def _parse(path: str, where: str, key: str, value: object, parser: Any) -> Any:
    """Run ``parser`` on ``value`` and turn its ``ValueError`` into a ``ConfigError``."""
    try:
        return parser(value)
    except ValueError as error:
        location = where if where == "the environment" else f"[{where}]"
        raise ConfigError(
            path, f"{location} {key} = {toml_text(value)} is invalid: {error}.", f"Fix {key}."
        ) from None


def _jobs(path: str, value: object) -> tuple[str, ...]:
    """Validate ``jobs``: a list of distinct job names, possibly empty."""
    fix = f"Set jobs to a list of job names from: {', '.join(JOBS)}."
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(path, f"[exporter] jobs = {toml_text(value)} is not a list.", fix)
    for job in value:
        if job not in JOB_CHECKS:
            raise ConfigError(path, f"[exporter] jobs names the unknown job {job!r}.", fix)
        if value.count(job) > 1:
            raise ConfigError(path, f"[exporter] jobs lists {job!r} more than once.", fix)
    return tuple(value)


def _intervals(path: str, value: object) -> Mapping[str, float]:
    """Merge ``[exporter.intervals]`` into the default interval of every job."""
    table = _table(path, value, "exporter.intervals", JOBS)
    intervals = dict(DEFAULT_INTERVALS)
    for job, seconds in table.items():
        intervals[job] = _number(
            path, "exporter.intervals", job, seconds, MAX_INTERVAL, MIN_INTERVAL, " seconds"
        )
    return MappingProxyType(intervals)


def _number(
    path: str,
    where: str,
    key: str,
    value: object,
    maximum: float,
    minimum: float = 0.0,
    unit: str = "",
) -> float:
    """Validate a TOML integer or float from ``minimum`` to ``maximum`` inclusive."""
    number = (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    )
    if number is None or not math.isfinite(number) or not minimum <= number <= maximum:
        raise ConfigError(
            path,
            f"[{where}] {key} = {toml_text(value)} is invalid.",
            f"Set {key} to a number from {minimum:g} to {maximum:g}{unit}.",
        )
    return number


def default_workers(target_count: int) -> int:
    """Return the probe threads used when ``workers`` is not set: one per target, 16 to 256."""
    return min(MAX_WORKERS, max(MIN_DEFAULT_WORKERS, target_count))


def _workers(path: str, value: object) -> int:
    """Validate ``workers``: a TOML integer from 1 to ``MAX_WORKERS``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WORKERS:
        raise ConfigError(
            path,
            f"[exporter] workers = {toml_text(value)} is invalid.",
            f"Set workers to a whole number from 1 to {MAX_WORKERS}.",
        )
    return value


def default_max_connections(workers: int) -> int:
    """Return the connection limit used when ``max_connections`` is not set.

    ``workers`` bounds the /probe runs that go on at once, so more connections than that plus
    ``EXTRA_CONNECTIONS`` would only wait or get 503 from the probe limit.
    """
    return workers + EXTRA_CONNECTIONS


def _max_connections(path: str, value: object) -> int:
    """Validate ``max_connections``: a TOML integer from 1 to ``MAX_CONNECTIONS``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONNECTIONS:
        raise ConfigError(
            path,
            f"[exporter] max_connections = {toml_text(value)} is invalid.",
            f"Set max_connections to a whole number from 1 to {MAX_CONNECTIONS}.",
        )
    return value


def _state_file(path: str, value: object) -> str | None:
    """Validate ``state_file``: a file path in an existing directory."""
    if value is None:
        return None
    state_file = _parse(path, "exporter", "state_file", value, parse_text)
    if Path(state_file).is_dir():
        raise ConfigError(
            path,
            f"[exporter] state_file {state_file} is a directory.",
            "Set state_file to the path of a file, e.g. /var/lib/smtpdiag/exporter.state.",
        )
    if not Path(state_file).parent.is_dir():
        raise ConfigError(
            path,
            f"the directory of [exporter] state_file {state_file} does not exist.",
            "Create the directory or choose a path in an existing one.",
        )
    return str(state_file)


def _listen(path: str, table: Mapping[str, Any], override: str | None) -> str:
    """Return the validated listen address: ``override`` (--listen), the file's, or the default."""
    if override is not None:
        parse_listen(override)
        return override
    value = table.get("listen", DEFAULT_LISTEN)
    try:
        if not isinstance(value, str):
            raise UsageError(f"{toml_text(value)} is not a string.", _LISTEN_FIX)
        parse_listen(value)
    except UsageError as error:
        raise ConfigError(path, f"[exporter] listen: {error.problem}", error.fix) from None
    return value


_LISTEN_FIX = f"Write HOST:PORT or [IPV6]:PORT, e.g. {DEFAULT_LISTEN} or [::1]:10587."


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` or ``[IPV6]:PORT`` into host and port; port 0 lets the OS choose.

    Raises ``UsageError`` naming the address when the host or the port is missing or invalid.
    """
    if text.startswith(":"):
        raise UsageError(
            f"The listen address {text!r} has no host.",
            "Write 0.0.0.0:PORT or [::]:PORT to listen on every interface, or "
            f"{DEFAULT_LISTEN} for loopback only.",
            value=text,
        )
    try:
        host, port = split_host_port(text, allow_port_zero=True)
    except UsageError:
        raise UsageError(
            f"Invalid listen address {text!r}: expected a host name or IP address and a port "
            "from 0 to 65535.",
            _LISTEN_FIX,
            value=text,
        ) from None
    if port is None:
        raise UsageError(f"The listen address {text!r} has no port.", _LISTEN_FIX, value=text)
    return host, port


def _web(path: str, value: object, listen: str) -> WebSettings:
    """Validate ``[exporter.web]`` and the listen address."""
    table = _table(path, value, "exporter.web", _WEB_KEYS)
    files = {
        key: _existing_file(path, key, table.get(key))
        for key in _WEB_KEYS
        if key != "basic_auth_user"
    }
    if (files["tls_cert_file"] is None) != (files["tls_key_file"] is None):
        raise ConfigError(
            path,
            "[exporter.web] sets only one of tls_cert_file and tls_key_file.",
            "Set both, the certificate chain and its private key, or neither.",
        )
    if files["tls_client_ca_file"] is not None and files["tls_cert_file"] is None:
        raise ConfigError(
            path,
            "[exporter.web] tls_client_ca_file needs HTTPS.",
            "Set tls_cert_file and tls_key_file as well, or drop tls_client_ca_file.",
        )
    _check_tls_files(path, files["tls_cert_file"], files["tls_key_file"])
    _check_client_ca(path, files["tls_client_ca_file"])
    user, password = _basic_auth(path, table, files["basic_auth_password_file"])
    return WebSettings(
        listen=listen,
        tls_cert_file=files["tls_cert_file"],
        tls_key_file=files["tls_key_file"],
        tls_client_ca_file=files["tls_client_ca_file"],
        basic_auth_user=user,
        basic_auth_password=password,
    )


def _existing_file(path: str, key: str, value: object) -> str | None:
    """Validate a file path of ``[exporter.web]``: it must name an existing regular file."""
    if value is None:
        return None
    file_path = _parse(path, "exporter.web", key, value, parse_text)
    if not Path(file_path).is_file():
        raise ConfigError(
            path,
            f"[exporter.web] {key} {file_path} does not exist or is not a file.",
            f"Check the {key} path.",
        )
    return str(file_path)


def _check_tls_files(path: str, cert_file: str | None, key_file: str | None) -> None:
    """Check that OpenSSL loads the certificate chain with its private key."""
    if cert_file is None or key_file is None:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # An empty password makes an encrypted key fail instead of prompting on the terminal.
        context.load_cert_chain(cert_file, key_file, password=b"")
    except (ssl.SSLError, OSError) as error:
        raise ConfigError(
            path,
            f"[exporter.web] tls_cert_file {cert_file} and tls_key_file {key_file} cannot be "
            f"loaded together ({error.__class__.__name__}: {error}).",
            "Pass a PEM certificate chain and the unencrypted PEM private key that matches it.",
        ) from None


def _check_client_ca(path: str, ca_file: str | None) -> None:
    """Check that OpenSSL reads at least one CA certificate from ``ca_file``."""
    if ca_file is None:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_verify_locations(cafile=ca_file)
    except (ssl.SSLError, OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            path,
            f"[exporter.web] tls_client_ca_file {ca_file} contains no usable PEM certificate "
            f"({error.__class__.__name__}).",
            "Pass a file of -----BEGIN CERTIFICATE----- blocks.",
        ) from None


def _basic_auth(
    path: str, table: Mapping[str, Any], password_file: str | None
) -> tuple[str | None, Secret | None]:
    """Return the basic auth user and password, which are both set or both None."""
    user_value = table.get("basic_auth_user")
    if (user_value is None) != (password_file is None):
        raise ConfigError(
            path,
            "[exporter.web] sets only one of basic_auth_user and basic_auth_password_file.",
            "Set both, or neither to serve without basic auth.",
        )
    if user_value is None or password_file is None:
        return None, None
    user = _parse(path, "exporter.web", "basic_auth_user", user_value, parse_text)
    if ":" in user:
        # RFC 7617 section 2: the user-id of Basic authentication cannot contain a colon.
        raise ConfigError(
            path,
            f"[exporter.web] basic_auth_user {user!r} contains a colon.",
            "Choose a user name without ':'.",
        )
    return user, secret_from_file(password_file, "web password")
