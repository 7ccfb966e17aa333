"""Behaviour knobs of the lab: how a submission server and its certificate misbehave.

These types import no third-party library, so scenarios can be listed without loading
aiosmtpd or cryptography.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

SUPPORTED_MECHANISMS = ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER")
"""SASL mechanisms that the lab server implements."""

GOOGLE_MAIL_SCOPE = "https://mail.google.com/"
"""OAuth2 scope that Google requires for SMTP, returned in the lab's error challenges."""


@dataclass(frozen=True)
class ServerOptions:
    """Behaviour of one lab submission server."""

    greeting_reply: str | None = None
    """Reply sent in place of the 220 greeting, after which the server closes the connection;
    None for the normal 220 greeting."""
    offer_starttls: bool = True
    """Whether EHLO advertises STARTTLS; without it STARTTLS gets ``502``. Ignored on the
    implicit TLS server, which never offers STARTTLS."""
    auth_mechanisms: tuple[str, ...] = ("PLAIN", "XOAUTH2", "OAUTHBEARER")
    """Mechanisms advertised after TLS, in this order; the others get ``504``."""
    oauth_scope: str = GOOGLE_MAIL_SCOPE
    """Scope named in the JSON error challenge that follows a rejected bearer token."""

    def __post_init__(self) -> None:
        unknown = [name for name in self.auth_mechanisms if name not in SUPPORTED_MECHANISMS]
        if unknown:
            raise ValueError(
                f"unsupported AUTH mechanism {unknown[0]!r}; "
                f"supported: {', '.join(SUPPORTED_MECHANISMS)}"
            )
        if self.greeting_reply is not None and self.greeting_reply.startswith("220"):
            raise ValueError("greeting_reply replaces the 220 greeting and must not be a 220 reply")


@dataclass(frozen=True)
class LeafOptions:
    """The server certificate of a lab: names, validity window and the chain it is sent with.

    The validity window is given as offsets from the time the certificate is written, so a
    scenario can ask for an expired (both offsets negative) or a not-yet-valid (both
    positive) certificate.
    """

    dns_names: tuple[str, ...] = ("localhost",)
    """Subject alternative names of type DNS; the first is also the common name."""
    ip_addresses: tuple[str, ...] = ("127.0.0.1", "::1")
    """Subject alternative names of type IP address."""
    not_before_offset: timedelta = timedelta(days=-1)
    not_after_offset: timedelta = timedelta(days=30)
    include_intermediate: bool = True
    """Whether the server sends the intermediate CA certificate after its own."""
