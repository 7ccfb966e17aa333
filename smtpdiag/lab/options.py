"""Behaviour knobs of the lab: how a submission server and its certificate misbehave.

These types import no third-party library, so scenarios can be listed without loading
aiosmtpd or cryptography.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

SUPPORTED_MECHANISMS = ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER")
"""SASL mechanisms that the lab server implements."""

ADVERTISED_ONLY_MECHANISMS = ("PLAIN-CLIENTTOKEN", "XOAUTH")
"""Mechanisms that Gmail advertises and the lab lists without implementing them (``504``)."""

GOOGLE_MAIL_SCOPE = "https://mail.google.com/"
"""OAuth2 scope that Google requires for SMTP, returned in the lab's error challenges."""

COMMAND_LINE_OCTETS = 512
"""RFC 5321 section 4.5.3.1.4: maximum length of a command line, CRLF included."""

AUTH_BUFFER_OCTETS = 12288
"""Stream reader limit of the lab server, in octets: it reads a line of an AUTH exchange
whose LF lies within the limit. RFC 4954 section 4 suggests 12288 octets for the server's
authentication buffer."""

_SHORTEST_AUTH_LINE = len("AUTH XOAUTH2\r\n")
_REPLY_PATTERN = re.compile(r"[45][0-9][0-9] [^\r\n]*")


class ErrorChallenge(StrEnum):
    """The ``334`` JSON error challenge that follows a rejected bearer token, if any."""

    BY_MECHANISM = "by-mechanism"
    """``GOOGLE_401`` for XOAUTH2 and ``RFC7628`` for OAUTHBEARER."""
    GOOGLE_401 = "google-401"
    """Gmail for an invalid or expired token: status ``"401"``, schemes ``"bearer"``."""
    GOOGLE_400 = "google-400"
    """Gmail for a token without the mail scope: status ``"400"``, schemes ``"Bearer"``."""
    RFC7628 = "rfc7628"
    """RFC 7628 section 3.2.2: status ``"invalid_token"`` and the scope, no ``schemes``."""
    NONE = "none"
    """No challenge: the final reply follows the client response at once, as Exchange does."""


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
    """Mechanisms advertised after TLS, in this order; the others get ``504``, and so do the
    advertised names in ``ADVERTISED_ONLY_MECHANISMS``."""
    oauth_scope: str = GOOGLE_MAIL_SCOPE
    """Scope named in the JSON error challenge that follows a rejected bearer token."""
    reject_all_tokens: bool = False
    """Whether the lab token is rejected like any other, in every mechanism (PLAIN and LOGIN
    use it as the password)."""
    error_challenge: ErrorChallenge = ErrorChallenge.BY_MECHANISM
    """Error challenge sent after a rejected XOAUTH2 or OAUTHBEARER token."""
    rejection_reply: str | None = None
    """Final reply to a rejected XOAUTH2 or OAUTHBEARER token: sent after the client's
    response to the error challenge, or at once without a challenge. None for the default of
    the mechanism: Gmail's ``535 5.7.8`` for XOAUTH2, RFC 7628's ``535 5.7.1`` for
    OAUTHBEARER. PLAIN and LOGIN always fail with ``535 5.7.8``."""
    data_reply: str | None = None
    """Reply to the end of a message's DATA in place of accepting it, e.g. Exchange Online's
    ``554 5.2.252 SendAsDenied``; None accepts and counts the message."""
    starttls_reply: str | None = None
    """Reply to STARTTLS in place of starting TLS, e.g. ``454 4.7.0 TLS not available due to
    local problem``; None starts TLS. STARTTLS stays advertised either way."""
    max_auth_line_length: int = COMMAND_LINE_OCTETS
    """Longest AUTH command line accepted, in octets with CRLF; a longer one gets
    ``500 5.5.2 Line too long``. Lines sent in reply to a ``334`` may be up to
    ``AUTH_BUFFER_OCTETS`` long whatever this limit is."""

    def __post_init__(self) -> None:
        known = SUPPORTED_MECHANISMS + ADVERTISED_ONLY_MECHANISMS
        unknown = [name for name in self.auth_mechanisms if name not in known]
        if unknown:
            raise ValueError(
                f"unsupported AUTH mechanism {unknown[0]!r}; supported: {', '.join(known)}"
            )
        if self.greeting_reply is not None and self.greeting_reply.startswith("220"):
            raise ValueError("greeting_reply replaces the 220 greeting and must not be a 220 reply")
        if self.rejection_reply is not None and not _REPLY_PATTERN.fullmatch(self.rejection_reply):
            raise ValueError(
                f"rejection_reply {self.rejection_reply!r} is not a one-line 4xx or 5xx reply"
            )
        if self.data_reply is not None and not _REPLY_PATTERN.fullmatch(self.data_reply):
            raise ValueError(f"data_reply {self.data_reply!r} is not a one-line 4xx or 5xx reply")
        if self.starttls_reply is not None and not _REPLY_PATTERN.fullmatch(self.starttls_reply):
            raise ValueError(
                f"starttls_reply {self.starttls_reply!r} is not a one-line 4xx or 5xx reply"
            )
        if not _SHORTEST_AUTH_LINE <= self.max_auth_line_length <= AUTH_BUFFER_OCTETS:
            raise ValueError(
                f"max_auth_line_length {self.max_auth_line_length} is outside "
                f"{_SHORTEST_AUTH_LINE}..{AUTH_BUFFER_OCTETS}"
            )


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
    self_signed: bool = False
    """Whether the leaf signs itself (issuer equals subject) in place of the lab
    intermediate. The server then sends the leaf alone, and ``ca.pem`` does not verify it."""
    sni_fallback_dns_names: tuple[str, ...] = ()
    """DNS names of a second leaf, signed by the lab intermediate and without IP address
    names. The server presents it unless the client's SNI is one of ``dns_names``. Empty
    means one certificate, whatever the client sends."""
