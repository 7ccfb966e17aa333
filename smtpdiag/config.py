"""Configuration: TOML file with named targets, ``SMTPDIAG_*`` variables and CLI values.

Precedence, highest first: command line, environment, the chosen target's table, the file's
``[defaults]`` table, the msmtp account named by ``msmtprc`` and ``msmtp_account``, built-in
defaults. Every key has the same name in the file, the environment and on the command
line: the TOML key ``ca_file`` is ``SMTPDIAG_CA_FILE`` in the environment and ``--ca-file``
on the command line.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import ssl
import stat
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from smtpdiag.config_trust import FileIdentity, find_trust_problem
from smtpdiag.config_values import KEYS, parse_host, parse_port
from smtpdiag.context import (
    DEFAULT_MSMTP_TIME_FORMAT,
    LogSettings,
    MsmtpSettings,
    OAuthSettings,
    RelaySettings,
    SecretFile,
    SecretRole,
    SecretSettings,
    Settings,
    Target,
    TlsMode,
)
from smtpdiag.errors import ConfigError, SecretError, UsageError
from smtpdiag.secrets import (
    Secret,
    secret_from_credentials,
    secret_from_env,
    secret_from_file,
)

if TYPE_CHECKING:
    from smtpdiag.msmtprc.model import MsmtpFile

logger = logging.getLogger(__name__)

ENV_PREFIX = "SMTPDIAG_"

MAX_CONFIG_BYTES = 1_048_576
"""Maximum size of a configuration file read."""
ACCESS_TOKEN_CREDENTIAL = "access_token"  # noqa: S105 (a file name, not a secret)
"""File name of the access token under ``$CREDENTIALS_DIRECTORY`` (systemd credentials)."""


SECRET_ENV = f"{ENV_PREFIX}ACCESS_TOKEN"
"""Environment variable that contains the access token itself."""

REFRESH_TOKEN_ENV = f"{ENV_PREFIX}REFRESH_TOKEN"
CLIENT_SECRET_ENV = f"{ENV_PREFIX}CLIENT_SECRET"
REFRESH_TOKEN_CREDENTIAL = "refresh_token"  # noqa: S105 (a file name)
CLIENT_SECRET_CREDENTIAL = "client_secret"  # noqa: S105 (a file name)

_IGNORED_ENV = {
    f"{ENV_PREFIX}CONFIG",
    f"{ENV_PREFIX}TARGET",
    SECRET_ENV,
    REFRESH_TOKEN_ENV,
    CLIENT_SECRET_ENV,
}


@dataclass(frozen=True)
class Loaded:
    """Result of loading configuration: the target and the run settings."""

    target: Target
    settings: Settings


COMMAND_KEYS = ("token_command", "access_token_command", "msmtp_program")
"""Keys whose value smtpdiag runs as a command. A value from a file must pass
``find_trust_problem``."""


class ConfigDocument(dict[str, Any]):
    """Parsed content of a TOML configuration file, with the identity of the file read."""

    def __init__(self, content: Mapping[str, Any], identity: FileIdentity) -> None:
        super().__init__(content)
        self.identity = identity
        """``fstat`` of the descriptor the content was read from."""


@dataclass(frozen=True)
class SourceFile:
    """A configuration file that the values of a layer come from."""

    path: str
    identity: FileIdentity | None = None
    """``fstat`` of the descriptor the file was read from. None when the caller passed the
    parsed content without it, so the file is judged by its ``stat`` at load time."""
    names: Mapping[str, str] = field(default_factory=dict)
    """Wording of a command key for messages, where the file spells it differently."""


class Layer(NamedTuple):
    """Values from one source, with the name of the source for error messages."""

    origin: str
    values: dict[str, Any]
    file: SourceFile | None = None
    """The file the values come from, or None for the environment and the command line."""


def split_host_port(text: str, *, allow_port_zero: bool = False) -> tuple[str, int | None]:
    """Split ``HOST``, ``HOST:PORT``, ``[IPV6]`` or ``[IPV6]:PORT``; a bare IPv6 is a host.

    ``allow_port_zero`` accepts port 0, which lets a listener's system choose a free port.
    """
    example = "Write HOST, HOST:PORT or [IPV6]:PORT, e.g. smtp.example.com:587 or [::1]:2525."
    bracketed = re.fullmatch(r"\[([^\]]*)\](?::(.*))?", text)
    if bracketed:
        host, port = bracketed.group(1), bracketed.group(2)
    elif text.startswith("[") or "]" in text:
        raise UsageError(f"The target {text!r} has unbalanced brackets.", example, value=text)
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, None
    try:
        host = parse_host(host)
    except ValueError as error:
        raise UsageError(
            f"Invalid host in the target {text!r}: {error}.", example, value=text
        ) from None
    if port is None:
        return host, None
    try:
        return host, parse_port(port, allow_zero=allow_port_zero)
    except ValueError as error:
        raise UsageError(
            f"The port in the target {text!r} is not valid: {error}.", example, value=text
        ) from None


def read_config_file(path: str) -> ConfigDocument:
    """Read and parse a TOML configuration file."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode) and not os.path.isdir(path):
            raise ConfigError(path, "is not a regular file.", "Pass the path of a TOML file.")
        with open(path, "rb") as stream:
            identity = FileIdentity.from_status(os.fstat(stream.fileno()))
            data = stream.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(
                path,
                f"is larger than {MAX_CONFIG_BYTES} bytes.",
                "Pass the smtpdiag TOML file, which is a few kilobytes.",
            )
        return ConfigDocument(tomllib.loads(data.decode("utf-8")), identity)
    except FileNotFoundError:
        raise ConfigError(
            path, "the file does not exist.", "Check the --config path or SMTPDIAG_CONFIG."
        ) from None
    except IsADirectoryError:
        raise ConfigError(path, "is a directory.", "Pass the path of a TOML file.") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "is not UTF-8 text.", "Save the file as UTF-8.") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ConfigError(
                path,
                "cannot be read because its path contains a symbolic link loop "
                f"({error.strerror}).",
                "Fix the symbolic link so that it points to the TOML file.",
            ) from None
        raise ConfigError(
            path, f"cannot be read ({error.strerror}).", "Check its permissions."
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            path, f"is not valid TOML: {error}.", "Fix the syntax at that line."
        ) from None


def _file_layers(
    path: str, document: Mapping[str, Any], target_name: str | None
) -> list[dict[str, Any]]:
    """Return the ``[defaults]`` table and the chosen target table, validated."""
    # [exporter] configures `smtpdiag exporter`, which validates it. Every other command
    # ignores it, so one file serves both.
    unknown = set(document) - {"defaults", "targets", "exporter"}
    if unknown:
        raise ConfigError(
            path,
            f"unknown top-level table {sorted(unknown)[0]!r}.",
            "Use [defaults], [targets.NAME] and [exporter] tables only.",
        )
    defaults = document.get("defaults", {})
    targets = _targets_table(path, document)
    if not isinstance(defaults, dict):
        raise ConfigError(
            path, "defaults and targets must be tables.", "Write [defaults] and [targets.NAME]."
        )
    layers = [_check_table(path, "defaults", defaults)]
    if target_name is None:
        return layers
    if target_name not in targets:
        names = ", ".join(sorted(targets)) or "none"
        raise ConfigError(
            path,
            f"has no target named {target_name!r} (targets: {names}).",
            "Pass one of those names to --target or add a [targets.NAME] table.",
        )
    table = targets[target_name]
    if not isinstance(table, dict):
        raise ConfigError(
            path, f"targets.{target_name} must be a table.", f"Write [targets.{target_name}]."
        )
    layers.append(_check_table(path, f"targets.{target_name}", table))
    return layers


def _only_target(path: str, document: Mapping[str, Any], cli: Mapping[str, Any]) -> str | None:
    """Return the name of the file's single target when nothing else names a server."""
    names = tuple(_targets_table(path, document))
    defaults = document.get("defaults", {})
    places = (cli, defaults if isinstance(defaults, dict) else {})
    named = any(place.get(key) is not None for place in places for key in _SERVER_KEYS)
    return names[0] if len(names) == 1 and not named else None


_SERVER_KEYS = ("host", "domain", "msmtprc")
"""Keys that name the server; with one of them set, a file's single target is not implied."""


def _targets_table(path: str, document: Mapping[str, Any]) -> Mapping[str, Any]:
    targets = document.get("targets", {})
    if not isinstance(targets, dict):
        raise ConfigError(
            path, "defaults and targets must be tables.", "Write [defaults] and [targets.NAME]."
        )
    return targets


def target_names(path: str, document: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """Return the names of the ``[targets.NAME]`` tables in file order.

    ``document`` is the already parsed content of ``path``. Without it, the file is read.
    """
    if document is None:
        document = read_config_file(path)
    return tuple(_targets_table(path, document))


def _check_table(path: str, where: str, table: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in table.items():
        if key not in KEYS:
            raise ConfigError(
                path,
                f"unknown key {key!r} in [{where}].",
                f"Valid keys: {', '.join(KEYS)}.",
            )
        _check_toml_type(path, where, key, value)
    return dict(table)


# TOML has types, so a file value must already be of the right one: port = "587" is a
# mistake worth naming, while the same text from the environment is the only form there is.
_TOML_TYPES: Mapping[str, tuple[type, ...]] = {
    "port": (int,),
    "dns_port": (int,),
    "insecure": (bool,),
    "no_sni": (bool,),
    "cert_warning_days": (int,),
    "cert_critical_days": (int,),
    "send_test": (bool,),
    "timeout": (int, float),
    "check_deadline": (int, float),
    "run_deadline": (int, float),
    "dns_nameservers": (list,),
    "introspect": (bool,),
    "write_back_refresh_token": (bool,),
    "token_refresh_margin": (int, float),
    "ntp_servers": (list,),
    "ntp_port": (int,),
    "clock_warning_seconds": (int, float),
    "clock_critical_seconds": (int, float),
    "log_files": (list, str),
    "secret_files": (list, str),
    "log_window_minutes": (int, float),
    "failure_threshold_percent": (int, float),
    "failure_min_attempts": (int,),
}


def _check_toml_type(path: str, where: str, key: str, value: object) -> None:
    expected = _TOML_TYPES.get(key, (str,))
    if isinstance(value, bool) and bool not in expected:
        wrong = True
    else:
        wrong = not isinstance(value, expected)
    if wrong:
        raise ConfigError(
            path,
            f"[{where}] {key} = {toml_text(value)} has the wrong type.",
            f"Set {key} to {KEYS[key].expected}, written as a TOML "
            f"{' or '.join(_TOML_TYPE_NAMES[kind] for kind in expected)}.",
        )


def toml_text(value: object) -> str:
    """Return ``value`` for a message, booleans as TOML writes them (``true``, ``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


_TOML_TYPE_NAMES = {int: "integer", float: "float", bool: "boolean", list: "array", str: "string"}


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _IGNORED_ENV:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in KEYS:
            raise UsageError(
                f"Unknown environment variable {name}.",
                "Unset it or use one of: "
                + ", ".join([*sorted(_IGNORED_ENV), *(ENV_PREFIX + k.upper() for k in KEYS)])
                + ".",
                value=name,
            )
        layer[key] = value
    return layer


def _merge(layers: Sequence[Layer]) -> dict[str, Any]:
    """Merge layers (lowest precedence first) and parse every value, naming its origin on error."""
    merged: dict[str, Any] = {}
    for origin, layer, _ in layers:
        for key, raw in layer.items():
            if raw is None:
                continue
            try:
                merged[key] = KEYS[key].parse(raw)
            except ValueError as error:
                raise UsageError(
                    f"Invalid {key} {toml_text(raw)} from {origin}: {error}.",
                    f"Set {key} to {KEYS[key].expected}.",
                    value=str(raw),
                ) from None
    return merged


def load(
    cli: Mapping[str, Any],
    *,
    host_port: str | None = None,
    config_path: str | None = None,
    target_name: str | None = None,
    environ: Mapping[str, str] | None = None,
    needs_server: bool = True,
    document: Mapping[str, Any] | None = None,
) -> Loaded:
    """Build the target and settings from all configuration sources.

    With ``needs_server`` False (every selected check reads only local files), a missing
    host and domain is no error: the target is then named after its log files, or ``local``.
    ``document`` is the already parsed content of ``config_path``, so that a caller loading
    several targets reads the file once. Without it, the file is read here.
    Raises UsageError when a command would come from a file that an account other than root
    and the runner can change (``check_command_files``).
    """
    environ = os.environ if environ is None else environ
    config_path = config_path or environ.get(f"{ENV_PREFIX}CONFIG")
    target_name = target_name or environ.get(f"{ENV_PREFIX}TARGET")
    if target_name and not config_path:
        raise UsageError(
            f"The target name {target_name!r} (from --target or SMTPDIAG_TARGET) needs a "
            "configuration file.",
            "Pass --config FILE or set SMTPDIAG_CONFIG.",
            value=target_name,
        )

    layers: list[Layer] = []
    if config_path:
        if document is None:
            document = read_config_file(config_path)
        if target_name is None and host_port is None:
            target_name = _only_target(config_path, document, cli)
        identity = document.identity if isinstance(document, ConfigDocument) else None
        source = SourceFile(config_path, identity)
        for index, layer in enumerate(_file_layers(config_path, document, target_name)):
            where = "[defaults]" if index == 0 else f"[targets.{target_name}]"
            layers.append(Layer(f"{config_path} {where}", layer, source))
    layers.append(Layer("the environment", _env_layer(environ)))
    cli_layer = dict(cli)
    if host_port:
        host, port = split_host_port(host_port)
        cli_layer["host"] = host
        if port is not None:
            cli_layer["port"] = port
    layers.append(Layer("the command line", cli_layer))
    merged, layers = _with_msmtprc(_merge(layers), layers, environ, needs_server)
    check_command_files(layers)
    values = _apply_provider(merged)

    if not needs_server and "host" not in values and "domain" not in values:
        values = {**values, "host": ""}
        target_name = target_name or _local_name(values)
    return Loaded(_build_target(values, target_name, environ), _build_settings(values))


def _with_msmtprc(
    values: dict[str, Any],
    layers: list[Layer],
    environ: Mapping[str, str],
    needs_server: bool,
) -> tuple[dict[str, Any], list[Layer]]:
    """Add the values of the msmtprc account as the lowest layer, when ``msmtprc`` is set.

    Returns the merged values and the layers, the msmtprc's first when it was read.
    ``msmtprc`` and ``msmtp_account`` become the resolved path and the name of the account
    used. Parse problems of the file do not stop loading; the msmtp_config check reports them.
    """
    if "msmtprc" not in values:
        if "msmtp_account" in values:
            raise UsageError(
                f"The msmtp account {values['msmtp_account']!r} is given without an msmtp "
                "configuration file.",
                "Pass --msmtprc PATH (or --msmtprc auto) with --account.",
                value=values["msmtp_account"],
            )
        return values, layers
    from smtpdiag.msmtprc.derive import config_values
    from smtpdiag.msmtprc.locate import find_msmtprc, select_account
    from smtpdiag.msmtprc.parser import parse_file

    path = values["msmtprc"]
    if path.lower() == "auto":
        path = find_msmtprc(environ)
    msmtp_file = parse_file(path)
    account, fallback = select_account(msmtp_file, values.get("msmtp_account"))
    if fallback:
        logger.warning("%s has no default account; using its only account %s", path, account.name)
    derived = config_values(msmtp_file, account)
    source = SourceFile(
        path,
        msmtp_file.identity,
        {"token_command": f"passwordeval command of the msmtp account {account.name}"},
    )
    layers = [Layer(f"{path} account {account.name}", derived, source), *layers]
    merged = _merge(layers)
    if "log_files" in derived and "log_files" in values:
        # msmtp's own log stays read beside the MTA logs that a higher layer names.
        extra = [name for name in values["log_files"] if name not in derived["log_files"]]
        merged["log_files"] = (*derived["log_files"], *extra)
    if needs_server and "host" not in merged and "domain" not in merged:
        raise _missing_host(msmtp_file, account.name, account.get("host"))
    merged = {**merged, "msmtprc": path}
    password = account.get("password")
    if password and "auth_mechanism" in derived and "token_command" not in derived:
        # msmtp sends a password line as the token of auth xoauth2 or oauthbearer. The token
        # and auth checks use it the same way when nothing else supplies a token.
        merged[_MSMTP_PASSWORD] = Secret(password, f"msmtprc {path} password")
    if not fallback:
        # Without an account name the msmtp_config check finds the same fallback and reports
        # that msmtp, run without -a, would fail.
        merged["msmtp_account"] = account.name
    return merged, layers


def check_command_files(layers: Sequence[Layer]) -> None:
    """Raise UsageError when the command of a key in ``COMMAND_KEYS`` comes from an unsafe file.

    A file is unsafe when an account other than root and the runner can change it
    (``find_trust_problem``). Only the layer that decides a key's value counts, so a command
    on the command line or in an ``SMTPDIAG_*`` variable replaces the file's, which then never
    runs.
    """
    for key in COMMAND_KEYS:
        deciding = [layer for layer in layers if layer.values.get(key) is not None]
        if not deciding or deciding[-1].file is None:
            continue
        source = deciding[-1].file
        path = _absolute(source.path)
        problem = find_trust_problem(path, source.identity)
        if problem is not None:
            setting = source.names.get(key, key)
            raise UsageError(
                f"Rejected the {setting} in {path}: {problem.text}.",
                problem.fix,
                value=path,
            )


def _absolute(path: str) -> str:
    """Put the working directory before a relative ``path``.

    ``..`` stays, because after a symbolic link it leaves the link's target, which
    ``os.path.abspath`` would not know.
    """
    if os.path.isabs(path):
        return path
    parts = [part for part in path.split("/") if part not in ("", ".")]
    return os.path.join(os.getcwd(), *parts)


_MSMTP_PASSWORD = "msmtp password"  # noqa: S105 (a key name, not a password)
"""Key of the msmtprc password in the merged values; a space keeps it out of KEYS' names."""


def _missing_host(msmtp_file: MsmtpFile, account: str, host: str | None) -> UsageError:
    """Build the error for an msmtp account that yields no usable host."""
    path = msmtp_file.path
    if host is None and msmtp_file.problems:
        # Often not an msmtprc at all: an environment file or a mail log passed by mistake.
        first = msmtp_file.problems[0]
        return UsageError(
            f"The account {account!r} in {path} has no host, and msmtp would reject the file "
            f"({len(msmtp_file.problems)} problems, the first: line {first.line}: "
            f"{first.message}).",
            "Pass the msmtp configuration file msmtp itself uses (msmtp --version names it), "
            "or fix the lines msmtp rejects.",
            value=path,
        )
    if host is None:
        problem = f"The account {account!r} in {path} has no host."
    else:
        problem = (
            f"The host {host!r} of the account {account!r} in {path} is not a valid host "
            "name or IP address."
        )
    return UsageError(
        problem,
        "Add 'host smtp.example.com' to the account, pass HOST[:PORT], or pass --account "
        "with an account that has a host.",
        value=account,
    )


LOCAL_TARGET = "local"
"""Target name of a run without a server when no log file is configured."""


def _local_name(values: Mapping[str, Any]) -> str:
    """Name a target without a server after its log files."""
    files = values.get("log_files", ())
    return ", ".join(files) if files else LOCAL_TARGET


def _apply_provider(values: dict[str, Any]) -> dict[str, Any]:
    """Fill the host and port a provider profile names, unless a host or domain is given."""
    if "provider" not in values:
        return values
    from smtpdiag.oauth.profiles import get_profile

    profile = get_profile(values["provider"])
    if "host" in values or "domain" in values or profile.smtp_host is None:
        return values
    filled = {"host": profile.smtp_host, **values}
    if "port" not in values and "tls_mode" not in values and profile.smtp_port is not None:
        filled["port"] = profile.smtp_port
    return filled


def _build_target(
    values: Mapping[str, Any], name: str | None, environ: Mapping[str, str]
) -> Target:
    if "host" not in values and "domain" not in values:
        if name is not None:
            raise UsageError(
                f"The target {name!r} has neither host nor domain.",
                f'Add host = "..." or domain = "..." to [targets.{name}].',
                value=name,
            )
        raise UsageError(
            "No target given.",
            "Pass HOST[:PORT], --domain DOMAIN, or --config FILE --target NAME.",
        )
    mode = values.get("tls_mode", "auto")
    port = values.get("port")
    if port is None:
        port = 465 if mode == "implicit" else 587
    tls_mode = TlsMode.for_port(port) if mode == "auto" else TlsMode(mode)
    return Target(
        host=values.get("host", ""),
        port=port,
        tls_mode=tls_mode,
        name=name,
        domain=values.get("domain"),
        ca_file=_ca_file(values.get("ca_file")),
        insecure=values.get("insecure", False),
        sni=values.get("sni"),
        no_sni=_no_sni(values),
        ehlo_name=values.get("ehlo_name", "localhost"),
        user=values.get("user"),
        auth_mechanism=values.get("auth_mechanism"),
        challenge_answer=values.get("challenge_answer", "auto"),
        send_test=_send_test(values),
        mail_from=values.get("mail_from"),
        rcpt_to=values.get("rcpt_to"),
        access_token=_checked_token(_load_access_token(values, environ)),
        oauth=_build_oauth(values, environ),
        logs=_build_logs(values),
        msmtp=MsmtpSettings(
            config_file=values.get("msmtprc"),
            account=values.get("msmtp_account"),
            program=values.get("msmtp_program", "msmtp"),
        ),
        relay=_build_relay(values),
        secrets=_build_secrets(values, environ),
    )


def _build_relay(values: Mapping[str, Any]) -> RelaySettings:
    """Collect where the relay check finds the relay's address."""
    relay = values.get("relay")
    return RelaySettings(
        address=None if relay in (None, "postfix") else relay,
        postfix=relay == "postfix",
        postfix_config_dir=values.get("postfix_config_dir"),
        exim_config=values.get("exim_config"),
    )


_SECRET_FILE_KEYS = (
    ("access_token_file", SecretRole.ACCESS_TOKEN),
    ("refresh_token_file", SecretRole.REFRESH_TOKEN),
    ("client_secret_file", SecretRole.CLIENT_SECRET),
    ("token_cache_file", SecretRole.TOKEN_CACHE),
)
_CREDENTIAL_ROLES = (
    (ACCESS_TOKEN_CREDENTIAL, SecretRole.ACCESS_TOKEN),
    (REFRESH_TOKEN_CREDENTIAL, SecretRole.REFRESH_TOKEN),
    (CLIENT_SECRET_CREDENTIAL, SecretRole.CLIENT_SECRET),
)


def _build_secrets(values: Mapping[str, Any], environ: Mapping[str, str]) -> SecretSettings:
    """List the files that hold the target's secrets: configured files and credentials."""
    files = [SecretFile(values[key], role) for key, role in _SECRET_FILE_KEYS if key in values]
    files += [SecretFile(path, SecretRole.SECRET_FILE) for path in values.get("secret_files", ())]
    directory = environ.get("CREDENTIALS_DIRECTORY") or None
    if directory:
        for credential, role in _CREDENTIAL_ROLES:
            path = Path(directory) / credential
            if path.is_file():
                files.append(SecretFile(str(path), role))
    return SecretSettings(files=tuple(files), credentials_directory=directory)


def _build_logs(values: Mapping[str, Any]) -> LogSettings:
    """Collect the log files and the failure-rate rule of the auth_failure_rate check."""
    time_format = values.get("msmtp_time_format", DEFAULT_MSMTP_TIME_FORMAT)
    return LogSettings(
        files=values.get("log_files", ()),
        window_minutes=values.get("log_window_minutes", 15.0),
        threshold_percent=values.get("failure_threshold_percent", 2.0),
        min_attempts=values.get("failure_min_attempts", 20),
        timezone=values.get("log_timezone"),
        msmtp_time_format=time_format,
    )


def _build_oauth(values: Mapping[str, Any], environ: Mapping[str, str]) -> OAuthSettings:
    """Collect the token source and what the scope check expects; check that they fit."""
    from smtpdiag.oauth.model import Grant
    from smtpdiag.oauth.profiles import MICROSOFT_TENANT_ALIASES

    if "token_command" in values and "access_token_command" in values:
        raise UsageError(
            "token_command and access_token_command are both set.",
            "Keep token_command; access_token_command is its older name.",
        )
    command = values.get("token_command", values.get("access_token_command"))
    refresh_token = _checked_token(
        _load_secret(
            values,
            environ,
            "refresh_token_file",
            REFRESH_TOKEN_ENV,
            REFRESH_TOKEN_CREDENTIAL,
            "refresh token",
        ),
        "refresh token",
    )
    client_secret = _load_secret(
        values,
        environ,
        "client_secret_file",
        CLIENT_SECRET_ENV,
        CLIENT_SECRET_CREDENTIAL,
        "client secret",
    )
    grant = Grant(values["grant"]) if "grant" in values else None
    client_id = values.get("client_id")
    if (refresh_token is not None or client_secret is not None or grant) and not client_id:
        raise UsageError(
            "A refresh token, client secret or grant is configured without a client id.",
            "Pass --client-id ID (the application id of the app registration).",
        )
    if values.get("write_back_refresh_token") and "refresh_token_file" not in values:
        raise UsageError(
            "write_back_refresh_token needs the refresh token in a file.",
            "Pass --refresh-token-file FILE, or drop --write-back-refresh-token.",
        )
    if grant is Grant.REFRESH_TOKEN and refresh_token is None:
        raise UsageError(
            "The refresh_token grant needs a refresh token.",
            "Pass --refresh-token-file FILE, or set SMTPDIAG_REFRESH_TOKEN.",
        )
    if grant is Grant.CLIENT_CREDENTIALS and client_secret is None:
        raise UsageError(
            "The client_credentials grant needs a client secret.",
            "Pass --client-secret-file FILE, or set SMTPDIAG_CLIENT_SECRET.",
        )
    if "tenant" in values and values.get("provider") not in (None, "microsoft"):
        raise UsageError(
            f"tenant is set, but only the microsoft provider has tenants "
            f"(provider is {values.get('provider')}).",
            "Drop tenant, or pass --provider microsoft.",
            value=values["tenant"],
        )
    app_only = grant is Grant.CLIENT_CREDENTIALS or (
        grant is None and refresh_token is None and client_secret is not None
    )
    if (
        app_only
        and values.get("provider") == "microsoft"
        and "token_endpoint" not in values
        and values.get("tenant", "common") in MICROSOFT_TENANT_ALIASES
    ):
        raise UsageError(
            "Microsoft's client_credentials grant needs a tenant id or domain, not "
            f"{values.get('tenant', 'the default common')!r}.",
            "Pass --tenant with the directory (tenant) id or a verified domain, "
            "e.g. contoso.onmicrosoft.com.",
        )
    oauth = OAuthSettings(
        provider=values.get("provider"),
        tenant=values.get("tenant"),
        token_endpoint=values.get("token_endpoint"),
        grant=grant,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
        refresh_token_file=values.get("refresh_token_file"),
        write_back_refresh_token=values.get("write_back_refresh_token", False),
        scope=values.get("scope"),
        token_command=command,
        token_ca_file=_ca_file(values.get("token_ca_file"), "token_ca_file"),
        introspect=values.get("introspect", False),
        introspection_endpoint=values.get("introspection_endpoint"),
        token_cache_file=_cache_file(values.get("token_cache_file")),
        refresh_margin=values.get("token_refresh_margin", 300.0),
    )
    if oauth.grant is None and not oauth.token_command:
        from smtpdiag.oauth.grants import choose_grant

        # Resolved here so that the report's target shows the grant that will be used.
        oauth = replace(oauth, grant=choose_grant(oauth))
    if client_id and oauth.token_endpoint is None and not oauth.token_command:
        from smtpdiag.oauth.profiles import get_profile

        if get_profile(oauth.provider).token_endpoint is None:
            raise UsageError(
                "A client id is configured, but no token endpoint.",
                "Pass --token-endpoint URL, or --provider NAME for a known provider.",
            )
    return oauth


def _cache_file(path: str | None) -> str | None:
    """Check that the token cache file can be created: not a directory, in an existing one."""
    if path is None:
        return None
    if Path(path).is_dir():
        raise UsageError(
            f"The token_cache_file {path} is a directory.",
            "Pass the path of a file in it, e.g. /var/cache/smtpdiag/token.json.",
            value=path,
        )
    if not Path(path).parent.is_dir():
        raise UsageError(
            f"The directory of the token_cache_file {path} does not exist.",
            "Create the directory (mode 0700) or choose a path in an existing one.",
            value=path,
        )
    return path


def _load_secret(
    values: Mapping[str, Any],
    environ: Mapping[str, str],
    file_key: str,
    variable: str,
    credential: str,
    name: str,
) -> Secret | None:
    """Find one secret: its file key, then its variable, then its systemd credential."""
    if file_key in values:
        return secret_from_file(values[file_key], name)
    if variable in environ:
        return secret_from_env(variable, environ, name)
    return secret_from_credentials(credential, name, environ)


def _no_sni(values: Mapping[str, Any]) -> bool:
    """Return whether to send no SNI; a name to send and no name at all exclude each other."""
    no_sni = bool(values.get("no_sni", False))
    if no_sni and "sni" in values:
        raise UsageError(
            "sni and no_sni are both set.",
            "Pass either --sni NAME or --no-sni, not both.",
        )
    return no_sni


def _send_test(values: Mapping[str, Any]) -> bool:
    """Return whether to send a test message; it needs both addresses."""
    if not values.get("send_test", False):
        return False
    missing = [key for key in ("mail_from", "rcpt_to") if key not in values]
    if missing:
        raise UsageError(
            f"The test message needs {' and '.join(missing)}.",
            "Pass --from ADDRESS and --to ADDRESS with --send-test.",
        )
    return True


def _existing_file(path: str | None, key: str) -> str | None:
    if path is not None and Path(path).is_dir():
        raise UsageError(
            f"The {key} {path} is a directory.", f"Pass the path of a file as {key}.", value=path
        )
    if path is not None and not Path(path).is_file():
        raise UsageError(
            f"The {key} {path} does not exist or is not a file.",
            f"Check the {key} path.",
            value=path,
        )
    return path


def _ca_file(path: str | None, key: str = "ca_file") -> str | None:
    """Check that ``path`` is a readable PEM bundle that OpenSSL accepts."""
    if _existing_file(path, key) is None:
        return None
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, UnicodeDecodeError) as error:
        raise UsageError(
            f"The {key} {path} contains no usable PEM certificate ({error.__class__.__name__}).",
            "Pass a file of -----BEGIN CERTIFICATE----- blocks, such as the lab's ca.pem.",
            value=path,
        ) from None
    return path


def _checked_token(secret: Secret | None, name: str = "access token") -> Secret | None:
    """Strip blanks around the token and reject the common ways a token file goes wrong."""
    if secret is None:
        return None
    value = secret.reveal().strip().lstrip("\ufeff").strip()
    where = secret.source
    field_name = name.replace(" ", "_")
    if value.lower().startswith("bearer "):
        raise SecretError(
            f"The {name} from {where} starts with 'Bearer '.",
            "Store the token alone; smtpdiag adds the Bearer scheme itself.",
        )
    if value.startswith("{"):
        raise SecretError(
            f"The {name} from {where} is a JSON document, such as a token endpoint reply.",
            f"Store only the value of its {field_name} field.",
        )
    if any(char.isspace() or ord(char) < 0x20 for char in value):
        raise SecretError(
            f"The {name} from {where} contains spaces or several lines.",
            "Store the token alone on one line.",
        )
    return Secret(value, where) if value != secret.reveal() else secret


def _load_access_token(values: Mapping[str, Any], environ: Mapping[str, str]) -> Secret | None:
    """Find the access token: file, environment, systemd credential, then msmtprc password.

    A token command is not run here: the token check runs it and diagnoses its output.
    """
    found = _load_secret(
        values, environ, "access_token_file", SECRET_ENV, ACCESS_TOKEN_CREDENTIAL, "access token"
    )
    if found is None and not values.get("token_command"):
        password: Secret | None = values.get(_MSMTP_PASSWORD)
        return password
    return found


def _build_settings(values: Mapping[str, Any]) -> Settings:
    timeout = values.get("timeout", 10.0)
    check_deadline = values.get("check_deadline", max(30.0, 3 * timeout))
    warning_days = values.get("cert_warning_days", 21)
    critical_days = values.get("cert_critical_days", 7)
    if critical_days > warning_days:
        raise UsageError(
            f"cert_critical_days ({critical_days}) is above cert_warning_days ({warning_days}).",
            "Set cert_critical_days to at most cert_warning_days, e.g. 7 and 21.",
        )
    clock_warning = values.get("clock_warning_seconds", 5.0)
    clock_critical = values.get("clock_critical_seconds", 60.0)
    if clock_warning > clock_critical:
        raise UsageError(
            f"clock_warning_seconds ({clock_warning:g}) is above clock_critical_seconds "
            f"({clock_critical:g}).",
            "Set clock_warning_seconds to at most clock_critical_seconds, e.g. 5 and 60.",
        )
    return Settings(
        timeout=timeout,
        check_deadline=check_deadline,
        run_deadline=values.get("run_deadline", max(60.0, check_deadline * 2)),
        dns_nameservers=values.get("dns_nameservers", ()),
        dns_port=values.get("dns_port", 53),
        cert_warning_days=warning_days,
        cert_critical_days=critical_days,
        ntp_servers=values.get("ntp_servers", ()),
        ntp_port=values.get("ntp_port", 123),
        clock_warning_seconds=clock_warning,
        clock_critical_seconds=clock_critical,
    )
