"""What a check receives: the target, the run settings and the results it depends on.

Checks read nothing else: no global state, no environment, no configuration files. Tests build
these objects directly to swap the clock, the resolver address and the timeouts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from smtpdiag.models import CheckResult
from smtpdiag.secrets import Secret

if TYPE_CHECKING:
    from smtpdiag.oauth.cache import TokenCache
    from smtpdiag.oauth.model import Grant

IMPLICIT_TLS_PORT = 465
"""Port of submission over implicit TLS ("submissions", RFC 8314)."""

STARTTLS_PORT = 587
"""Port of submission with STARTTLS (RFC 6409)."""


class TlsMode(StrEnum):
    """Method by which the client starts TLS on the submission port."""

    STARTTLS = "starttls"
    IMPLICIT = "implicit"

    @classmethod
    def for_port(cls, port: int) -> TlsMode:
        """Return the usual mode of ``port``: implicit TLS on 465, STARTTLS elsewhere."""
        return cls.IMPLICIT if port == IMPLICIT_TLS_PORT else cls.STARTTLS


@dataclass(frozen=True)
class OAuthSettings:
    """Token source of the token check, and the expectations of the scope check."""

    provider: str | None = None
    """Provider profile name (``google``, ``microsoft``, …), or None for generic."""
    tenant: str | None = None
    """Microsoft tenant: an id or domain, ``organizations``, ``common`` or ``consumers``."""
    token_endpoint: str | None = None
    grant: Grant | None = None
    """Grant to use; None picks refresh_token when a refresh token is configured."""
    client_id: str | None = None
    client_secret: Secret | None = None
    refresh_token: Secret | None = None
    refresh_token_file: str | None = None
    """File the refresh token was read from, or None for a variable or credential."""
    write_back_refresh_token: bool = False
    """Whether a rotated refresh token replaces the content of ``refresh_token_file``."""
    scope: str | None = None
    """Space-separated scopes to request; None uses the provider profile's."""
    token_command: str | None = None
    """Shell command that prints the access token, run as msmtp runs ``passwordeval``."""
    token_ca_file: str | None = None
    """PEM bundle for verifying the token endpoint; None for the system trust store."""
    introspect: bool = False
    """Whether the scope check queries a tokeninfo or introspection endpoint for an opaque token."""
    introspection_endpoint: str | None = None
    """Endpoint for ``introspect``; None uses the provider profile's tokeninfo endpoint."""
    token_cache_file: str | None = None
    """File (mode 0600) that keeps the access token between runs; None keeps it in memory."""
    refresh_margin: float = 300.0
    """Seconds before expiry at which a cached access token is no longer used."""

    @property
    def configured(self) -> bool:
        """Whether any token source besides a plain access token is configured."""
        return bool(self.token_command or self.refresh_token or self.client_id)


DEFAULT_MSMTP_TIME_FORMAT = "%b %d %H:%M:%S"
"""msmtp's default ``logfile_time_format``: no year and no zone."""


@dataclass(frozen=True)
class LogSettings:
    """Log files of the auth_failure_rate check and the rule that judges their failure rate."""

    files: tuple[str, ...] = ()
    """Paths of the mail logs to read; empty means the check is skipped."""
    window_minutes: float = 15.0
    """Length in minutes of the window, ending now, whose AUTH attempts are counted."""
    threshold_percent: float = 2.0
    """Share of failed attempts, in percent, above which the window is reported as critical."""
    min_attempts: int = 20
    """Attempts a window needs before its failure share is judged."""
    timezone: str | None = None
    """IANA zone name for timestamps without an offset; None means the local zone."""
    msmtp_time_format: str | None = DEFAULT_MSMTP_TIME_FORMAT
    """strftime format of msmtp's log file (``logfile_time_format``); None for ``none``."""


@dataclass(frozen=True)
class MsmtpSettings:
    """The msmtp configuration a target was read from, for the msmtp_config check."""

    config_file: str | None = None
    """Path of the msmtprc the target was derived from; None when it came from elsewhere."""
    account: str | None = None
    """Name of the msmtprc account in use (``default`` included). None without an msmtprc, or
    when the file has no ``default`` account and its only account is used in its place."""
    program: str = "msmtp"
    """msmtp binary whose ``--version`` output lists the mechanisms it supports."""


@dataclass(frozen=True)
class RelaySettings:
    """The local relay in front of the submission server, for the relay check."""

    address: str | None = None
    """``HOST:PORT`` of the relay, such as ``127.0.0.1:2525``; None to read it from Postfix
    or Exim, or when no relay is configured."""
    postfix: bool = False
    """Whether to read Postfix's ``relayhost`` (``postconf``, else ``main.cf``)."""
    postfix_config_dir: str | None = None
    """Postfix configuration directory (``postconf -c``); None for Postfix's default."""
    exim_config: str | None = None
    """Exim configuration file, or Debian's ``update-exim4.conf.conf``, naming the smarthost."""

    @property
    def configured(self) -> bool:
        """Whether any source of the relay address is set."""
        return bool(self.address or self.postfix or self.postfix_config_dir or self.exim_config)


class SecretRole(StrEnum):
    """Purpose of a file that contains or guards a secret."""

    ACCESS_TOKEN = "access token"  # noqa: S105 (a role name)
    REFRESH_TOKEN = "refresh token"  # noqa: S105 (a role name)
    CLIENT_SECRET = "client secret"  # noqa: S105 (a role name)
    TOKEN_CACHE = "token cache"  # noqa: S105 (a role name)
    SECRET_FILE = "secret file"  # noqa: S105 (a role name)
    """A file named with ``secret_files``, such as a token script's environment file."""


@dataclass(frozen=True)
class SecretFile:
    """One file that contains a secret, whose owner and mode the secrets check reads."""

    path: str
    role: SecretRole


@dataclass(frozen=True)
class SecretSettings:
    """Locations of the target's secrets, for the secrets check."""

    files: tuple[SecretFile, ...] = ()
    """Files that contain a token, a client secret or a token script's environment."""
    credentials_directory: str | None = None
    """``$CREDENTIALS_DIRECTORY`` of the run (systemd credentials), or None when unset."""


@dataclass(frozen=True)
class Target:
    """The submission service under test and the identity used against it."""

    host: str
    """Host name or IP address literal; empty when only ``domain`` is known."""
    port: int
    tls_mode: TlsMode
    name: str | None = None
    """Name of the target in the configuration file, or None for a host from the command line."""
    domain: str | None = None
    """Mail domain whose SRV records name the submission host (RFC 6186), or None."""
    ca_file: str | None = None
    """PEM bundle that replaces the system trust store, or None for the system store."""
    insecure: bool = False
    """Whether certificate verification failures are reported but tolerated."""
    sni: str | None = None
    """Server name to send in the TLS ClientHello in place of the host, or None."""
    no_sni: bool = False
    """Whether the tls check sends no server name at all."""
    ehlo_name: str = "localhost"
    user: str | None = None
    access_token: Secret | None = None
    """Access token from a file, ``SMTPDIAG_ACCESS_TOKEN`` or a systemd credential."""
    oauth: OAuthSettings = field(default_factory=OAuthSettings)
    auth_mechanism: str | None = None
    """SASL mechanism, ``XOAUTH2`` or ``OAUTHBEARER``; None picks one that the server offers."""
    challenge_answer: str = "auto"
    """Reply to a 334 error challenge: ``auto`` (by mechanism), ``empty`` line or ``kvsep``."""
    send_test: bool = False
    """Whether the auth check sends one small test message after a successful AUTH."""
    mail_from: str | None = None
    rcpt_to: str | None = None
    logs: LogSettings = field(default_factory=LogSettings)
    """Mail logs that the auth_failure_rate check reads."""
    msmtp: MsmtpSettings = field(default_factory=MsmtpSettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    secrets: SecretSettings = field(default_factory=SecretSettings)

    def describe(self) -> dict[str, Any]:
        """Return the target for reports: no secret, only whether one is configured."""
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "tls_mode": self.tls_mode.value,
            "domain": self.domain,
            "ca_file": self.ca_file,
            "insecure": self.insecure,
            "sni": self.sni,
            "no_sni": self.no_sni,
            "user": self.user,
            "access_token": self.access_token.source if self.access_token else None,
            "auth_mechanism": self.auth_mechanism,
            "provider": self.oauth.provider,
            "token_endpoint": self.oauth.token_endpoint,
            "client_id": self.oauth.client_id,
            "grant": self.oauth.grant.value if self.oauth.grant else None,
        }


@dataclass(frozen=True)
class Settings:
    """Limits and service addresses for one run."""

    timeout: float = 10.0
    """Seconds to wait for any single network operation: connect, reply, handshake, lookup."""
    check_deadline: float = 30.0
    """Seconds after which a running check is reported as unknown."""
    run_deadline: float = 60.0
    """Seconds after which the whole run ends; unfinished checks are reported as unknown."""
    dns_nameservers: tuple[str, ...] = ()
    """Resolver addresses; empty means the system resolver configuration."""
    dns_port: int = 53
    cert_warning_days: int = 21
    """Days before a certificate's expiry at which the tls check warns."""
    cert_critical_days: int = 7
    """Days before a certificate's expiry at which the tls check reports critical."""
    ntp_servers: tuple[str, ...] = ()
    """NTP servers for the clock check, queried in order; empty means none (no default)."""
    ntp_port: int = 123
    clock_warning_seconds: float = 5.0
    """Clock offset in seconds, either direction, at which the clock check warns."""
    clock_critical_seconds: float = 60.0
    """Clock offset in seconds, either direction, at which the clock check reports critical."""


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may use besides its target."""

    settings: Settings
    upstream: Mapping[str, CheckResult] = field(default_factory=dict)
    """Results of the checks this check declared in ``requires`` that have run."""
    deadline: float = float("inf")
    """``time.monotonic()`` value by which the check must have returned."""
    now: Callable[[], datetime] = utc_now
    token_cache: TokenCache | None = None
    """Access tokens kept between runs of the token check, or None to fetch every time."""

    def remaining(self) -> float:
        """Return the seconds left before the check's deadline, never below zero."""
        return max(0.0, self.deadline - time.monotonic())

    def io_timeout(self) -> float:
        """Return the next network operation's timeout: the setting, capped by the deadline."""
        return max(0.05, min(self.settings.timeout, self.remaining()))
