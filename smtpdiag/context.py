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
from typing import Any

from smtpdiag.models import CheckResult
from smtpdiag.secrets import Secret

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
    auth_mechanism: str | None = None
    """SASL mechanism, ``XOAUTH2`` or ``OAUTHBEARER``; None picks one that the server offers."""
    challenge_answer: str = "auto"
    send_test: bool = False
    """Whether the auth check sends one small test message after a successful AUTH."""
    mail_from: str | None = None
    rcpt_to: str | None = None
    """Reply to a 334 error challenge: ``auto`` (by mechanism), ``empty`` line or ``kvsep``."""

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

    def remaining(self) -> float:
        """Return the seconds left before the check's deadline, never below zero."""
        return max(0.0, self.deadline - time.monotonic())

    def io_timeout(self) -> float:
        """Return the next network operation's timeout: the setting, capped by the deadline."""
        return max(0.05, min(self.settings.timeout, self.remaining()))
