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


class SmtpFault(StrEnum):
    """Misbehaviour of a raw fault server, which replaces the aiosmtpd lab server.

    Each value is a failure that aiosmtpd cannot produce: silence, a connection cut at a
    chosen step, or replies that break the SMTP framing.
    """

    BLACK_HOLE = "black-hole"
    """Accept the TCP connection and never send a byte."""
    SLOW_DRIP = "slow-drip"
    """Send the 220 greeting at one byte per second."""
    CLOSE_AFTER_GREETING = "close-after-greeting"
    """Close the connection right after the 220 greeting."""
    CLOSE_AFTER_EHLO = "close-after-ehlo"
    """Close the connection right after the first EHLO reply."""
    CLOSE_AFTER_STARTTLS = "close-after-starttls"
    """Reply 220 to STARTTLS, then close before the TLS handshake."""
    CLOSE_MID_HANDSHAKE = "close-mid-handshake"
    """Send half of the server's first TLS flight, then close."""
    CLOSE_MID_REPLY = "close-mid-reply"
    """Send the first two lines of the multi-line EHLO reply, then close."""
    RESET_DURING_AUTH = "reset-during-auth"
    """Reset the connection (TCP RST) when the AUTH command arrives."""
    ENDLESS_CONTINUATION = "endless-continuation"
    """Reply to EHLO with ``250-`` continuation lines that never end."""
    HUGE_LINE = "huge-line"
    """Reply to EHLO with a first reply line of one MiB."""
    BINARY_GARBAGE = "binary-garbage"
    """Greet with NUL and non-UTF-8 bytes in place of a 220 reply."""
    BARE_LF = "bare-lf"
    """End every reply line with LF alone in place of CRLF; otherwise a working server."""
    ENDLESS_CHALLENGE = "endless-challenge"
    """Reply to AUTH, and to every line after it, with an empty ``334`` challenge."""


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
    jwt_audiences: tuple[str, ...] = ()
    """Audiences for Exchange-like validation of the JWT access tokens that the lab token
    endpoint issued. Such a token is rejected unless its ``aud`` is one of these values and
    its ``upn`` is the AUTH user. It must also carry ``SMTP.Send`` in ``scp`` or
    ``SMTP.SendAsApp`` in ``roles``. Empty turns the validation off."""
    fault: SmtpFault | None = None
    """Fault of a raw fault server that runs in place of the aiosmtpd server; the options
    above do not apply to it. None runs the aiosmtpd server."""

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


class TokenProvider(StrEnum):
    """Provider whose token endpoint the lab imitates: reply shapes and token formats."""

    MICROSOFT = "microsoft"
    """Microsoft identity platform: ``ext_expires_in``, AADSTS error bodies, JWT access tokens."""
    GOOGLE = "google"
    """Google OAuth 2.0: indented JSON bodies, short error descriptions, ``ya29.`` tokens."""


class TokenFormat(StrEnum):
    """Form of the access tokens that the lab token endpoint issues."""

    JWT = "jwt"
    """Microsoft-like JWT whose claims a client can read; the signature is random bytes."""
    OPAQUE = "opaque"
    """Google-like opaque string starting with ``ya29.``."""


@dataclass(frozen=True)
class RecordedReply:
    """A fixed HTTP reply of the token endpoint, recorded from a provider or a proxy.

    Mostly an error status, but a 2xx status is allowed for a page that an intercepting
    proxy or captive portal serves with status 200 in place of the token response.
    """

    status: int
    body: str
    content_type: str = "application/json; charset=utf-8"

    def __post_init__(self) -> None:
        if not 200 <= self.status <= 599:
            raise ValueError(
                f"recorded reply status {self.status} is not an HTTP status from 200 to 599"
            )


class TokenFault(StrEnum):
    """Misbehaviour of the token endpoint at ``POST /token`` that a fixed reply cannot show."""

    HANG = "hang"
    """Read the request and never reply, until the server stops."""
    HUGE_BODY = "huge-body"
    """Reply 200 with a JSON body of ``HUGE_BODY_OCTETS`` whose padding string never closes,
    sent as fast as the client reads it."""


HUGE_BODY_OCTETS = 10 * 1024 * 1024
"""Size of the body in ``TokenFault.HUGE_BODY``: 10 MiB, ten times smtpdiag's read limit."""


EXCHANGE_AUDIENCE = "https://outlook.office.com"
"""``aud`` of the access tokens that the lab issues for Exchange Online by default."""


@dataclass(frozen=True)
class TokenEndpointOptions:
    """Behaviour of the lab's HTTPS token endpoint in one scenario."""

    provider: TokenProvider = TokenProvider.MICROSOFT
    """Provider whose reply shapes the endpoint imitates."""
    error_reply: RecordedReply | None = None
    """Reply to every ``POST /token`` in place of checking the request; None checks the
    client, its secret and the refresh token and issues a token."""
    delay_seconds: float = 0.0
    """Seconds the endpoint waits before it replies to ``POST /token``."""
    rotate_refresh_token: bool = False
    """Whether each successful reply carries a new refresh token, which the endpoint then
    accepts as well as the earlier ones."""
    token_format: TokenFormat = TokenFormat.JWT
    audience: str = EXCHANGE_AUDIENCE
    """``aud`` claim of a JWT access token."""
    scp: str = "SMTP.Send"
    """``scp`` claim of a JWT access token from the refresh-token grant: space-separated
    delegated permissions."""
    upn: str | None = None
    """``upn`` and ``unique_name`` claims of a JWT access token; None for the lab user."""
    backdate_seconds: int = 300
    """Seconds by which ``iat`` and ``nbf`` of a JWT access token precede the time of issue:
    300 as Microsoft's tokens show; 0 dates them at the time of issue, as issuers without
    such a margin do."""
    introspection_reply: RecordedReply | None = None
    """Reply to every ``POST /introspect`` in place of describing the token, e.g. a 500 of an
    introspection service that is down; None describes the token."""
    fault: TokenFault | None = None
    """Fault at every ``POST /token`` in place of ``error_reply`` and ``delay_seconds``, or
    None for normal replies."""

    def __post_init__(self) -> None:
        if self.delay_seconds < 0:
            raise ValueError(f"delay_seconds {self.delay_seconds} is negative")
        if self.fault is not None and (self.error_reply is not None or self.delay_seconds):
            raise ValueError(
                f"fault {self.fault.value!r} replaces error_reply and delay_seconds; drop them"
            )
        if self.backdate_seconds < 0:
            raise ValueError(f"backdate_seconds {self.backdate_seconds} is negative")


class NtpMode(StrEnum):
    """Behaviour of the lab's NTP responder toward client requests."""

    ANSWER = "answer"
    """Reply with a server packet that carries the lab time."""
    SILENT = "silent"
    """Read the request and send nothing, as a firewall that drops NTP looks to a client."""
    GARBAGE = "garbage"
    """Reply with bytes that are not an NTP packet."""
    CLOSED = "closed"
    """Run no responder: the written configuration names a UDP port on which nothing
    listens."""
