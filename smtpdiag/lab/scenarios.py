"""Lab scenarios: one broken (or healthy) submission setup each, and what diagnosing it must find.

A lab always runs two servers, one with STARTTLS and one with implicit TLS, both with the
scenario's server options. The scenario names which of them the written ``lab`` target points
at and which ``tls_mode`` the configuration claims. A relay scenario adds an msmtpd-style
relay that hands each message to the real msmtp, configured for the STARTTLS server. A
Dovecot scenario adds a real Dovecot submission server whose oauth2 passdb sends each token
to the lab token service's introspection endpoint, and the ``lab`` target points at
Dovecot. Its expected codes follow the replies of Dovecot 2.3.19. A chain scenario runs a whole
deployment: Postfix relays to the msmtpd-style relay, whose msmtp gets its token from a
refresh-token script and sends to the real Dovecot. The ``lab`` target then describes that
deployment as on a real host (msmtprc, ``relay = "postfix"`` and the four log files).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType

from smtpdiag.context import TlsMode
from smtpdiag.errors import UsageError
from smtpdiag.lab.chain import ChainFault
from smtpdiag.lab.options import (
    AUTH_BUFFER_OCTETS,
    GOOGLE_MAIL_SCOPE,
    ErrorChallenge,
    LeafOptions,
    NtpMode,
    RecordedReply,
    ServerOptions,
    SmtpFault,
    TokenEndpointOptions,
    TokenFault,
    TokenFormat,
    TokenProvider,
)
from smtpdiag.oauth.profiles import EXCHANGE_AUDIENCES

GMAIL_MECHANISMS = ("LOGIN", "PLAIN", "XOAUTH2", "PLAIN-CLIENTTOKEN", "OAUTHBEARER", "XOAUTH")
"""AUTH mechanisms that Gmail advertises after STARTTLS, in its order."""

EXCHANGE_MECHANISMS = ("LOGIN", "XOAUTH2")
"""AUTH mechanisms that Exchange Online advertises after STARTTLS: no OAUTHBEARER."""

GMAIL_BAD_CREDENTIALS = (
    "535 5.7.8 Username and Password not accepted. For more information, go to "
    "https://support.google.com/mail/?p=BadCredentials"
)
"""Gmail's final reply to a rejected token.

NOTE: Gmail splits this text over two ``535-`` / ``535`` lines; the lab sends one line.
"""

# Exchange Online ends its replies with the name of the replying server, a timestamp and a
# request id. The values here are placeholders in that format.
_EXCHANGE_SUFFIX = (
    "[XX0PR00CA0000.namprd00.prod.outlook.com 2026-12-04T10:00:00.000Z 08DD0000000000]"
)

MIN_TOKEN_LENGTH = 32
"""Shortest lab token a scenario may ask for, so the random part stays unguessable."""

LONG_TOKEN_LENGTH = 1600
"""Length of the lab token in ``line-too-long``, about that of a Microsoft access token."""

OTHER_HOST_NAME = "mail.other.example"
"""Only name of the certificate in ``wrong-hostname``, and of the certificate that
``sni-required`` presents without SNI; ``.example`` is reserved by RFC 2606."""

EXPIRING_SOON = timedelta(days=5)
"""Remaining validity of the certificate in ``cert-expiring-soon``."""

MICROSOFT_SMTP_SCOPE = "https://outlook.office.com/SMTP.Send offline_access"
"""Scope that a delegated Microsoft client requests for SMTP, with a refresh token."""

SLOW_ENDPOINT_DELAY_SECONDS = 3.0
"""Delay of the token endpoint in ``slow-endpoint``, longer than the written timeout."""
SLOW_ENDPOINT_TIMEOUT = 1
"""``timeout`` written into the configuration of ``slow-endpoint``, in seconds."""

CLOCK_SKEW_SECONDS = 90.0
"""Offset of the lab clock in ``clock-skew-90s``, ``clock-skew-minus-90s`` (negated) and
``ntp-unreachable``: over smtpdiag's default critical threshold of 60 s."""
SMALL_CLOCK_SKEW_SECONDS = 3.0
"""Offset of the lab clock in ``clock-skew-3s``: under smtpdiag's default warning
threshold of 5 s."""


class AccessTokenState(StrEnum):
    """State of the lab account's own access token, the one in the lab's token file."""

    VALID = "valid"
    """Opaque token that never expires."""
    REVOKED = "revoked"
    """The lab calls ``TokenServer.revoke_grant`` once it runs: introspection then reports
    the token, and every token the endpoint issued, as inactive."""
    EXPIRED = "expired"
    """Microsoft-like JWT for the lab user that expired ``EXPIRED_TOKEN_AGE`` ago."""
    OTHER_USER = "other-user"
    """Microsoft-like JWT, valid for an hour, for ``OTHER_TOKEN_USER``: introspection names
    that user too."""


EXPIRED_TOKEN_AGE = timedelta(hours=1)
"""Time since the expiry of the token file's JWT in ``AccessTokenState.EXPIRED``."""

OTHER_TOKEN_USER = "someone.else@example.com"  # noqa: S105 (an address)
"""User of the token file's JWT in ``AccessTokenState.OTHER_USER``."""


class LabListener(StrEnum):
    """One of the lab's two servers, as the server that a target points at."""

    STARTTLS = "starttls"
    """Plain connection upgraded with STARTTLS, like port 587."""
    IMPLICIT = "implicit"
    """TLS from the first byte, like port 465."""


@dataclass(frozen=True)
class Scenario:
    """One lab setup and the finding codes that a correct diagnosis of it contains."""

    name: str
    description: str
    """One line for ``--list-scenarios`` and the demo."""
    server: ServerOptions = field(default_factory=ServerOptions)
    """Behaviour of both lab servers."""
    certificate: LeafOptions = field(default_factory=LeafOptions)
    """Server certificate of both lab servers."""
    target_host: str = "127.0.0.1"
    """``host`` written into the configuration: the name a client connects to, verifies the
    certificate against and sends as SNI. Clients send no SNI for an IP address."""
    target_listener: LabListener = LabListener.STARTTLS
    target_tls_mode: TlsMode = TlsMode.STARTTLS
    """``tls_mode`` written into the configuration, which may disagree with the listener."""
    expected_codes: tuple[str, ...] = ()
    """Finding codes the diagnosis must report; empty means the overall status must be ok."""
    send_test: bool = False
    """Whether the written configuration makes the auth check send a test message."""
    token_length: int | None = None
    """Length of the lab access token in characters; None for a Google-like token of about
    50 characters."""
    token_endpoint: TokenEndpointOptions | None = None
    """Behaviour of the lab token endpoint, which every lab runs. When set, the written
    configuration makes smtpdiag fetch its access token there (``token_endpoint``,
    ``client_id``, secret files) in place of reading the access token file."""
    requested_scope: str | None = None
    """``scope`` written into the configuration of a scenario with ``token_endpoint``; None
    for the provider's SMTP scope."""
    timeout: int | None = None
    """``timeout`` written into the configuration in seconds; None for the lab default."""
    clock_offset_seconds: float = 0.0
    """Seconds by which the lab clock runs ahead of the local clock (behind when negative).
    The NTP responder, the token endpoint's ``Date`` header and JWT claims, and the SMTP
    greeting all read the lab clock."""
    ntp_mode: NtpMode = NtpMode.ANSWER
    """Behaviour of the NTP responder; ``NtpMode.CLOSED`` runs none, and the configuration
    names a UDP port on which nothing listens."""
    relay: bool = False
    """Whether an msmtpd-style relay runs in front of the STARTTLS server. The lab then
    writes an msmtprc for that server, sends one message through the relay, and writes a
    ``lab`` target with ``msmtprc``, ``relay`` and ``log_files`` in place of a host."""
    dovecot: bool = False
    """Whether the lab runs a real Dovecot submission server with an SMTP sink as its relay
    host. Its oauth2 passdb sends each token to the lab introspection endpoint. The ``lab``
    target then names Dovecot's STARTTLS port and makes smtpdiag query the same endpoint
    (``introspect = true``)."""
    access_token: AccessTokenState = AccessTokenState.VALID
    """State of the lab account's own access token."""
    introspection_reply: RecordedReply | None = None
    """Reply of the lab's ``POST /introspect`` to every request, e.g. a 500 of a service
    that is down; None describes the token. The token source stays as it is."""
    chain: ChainFault | None = None
    """Fault of the deployment chain (Postfix, relay, msmtp, Dovecot) that the lab runs
    with ``CHAIN_MESSAGES`` messages before the target is written; None runs no chain."""

    def __post_init__(self) -> None:
        if self.token_length is not None and self.token_length < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"token_length {self.token_length} is below the minimum of {MIN_TOKEN_LENGTH}"
            )
        if self.requested_scope is not None and self.token_endpoint is None:
            raise ValueError("requested_scope needs token_endpoint options")
        if self.relay and self.token_endpoint is not None:
            raise ValueError("a relay scenario reads the lab token file; drop token_endpoint")
        if self.relay and self.target_listener is not LabListener.STARTTLS:
            raise ValueError("a relay scenario's msmtprc names the STARTTLS server")
        if self.dovecot and self.relay:
            raise ValueError("a Dovecot scenario cannot also run the relay")
        if self.dovecot and self.target_tls_mode is not TlsMode.STARTTLS:
            raise ValueError("a Dovecot scenario's target uses Dovecot's STARTTLS port")
        if self.chain is not None and (self.relay or self.dovecot):
            raise ValueError("a chain scenario runs its own relay and Dovecot; drop both flags")
        if self.chain is not None and self.token_endpoint is not None:
            raise ValueError(
                "a chain scenario's token script needs the default endpoint; drop token_endpoint"
            )
        jwt_file = (AccessTokenState.EXPIRED, AccessTokenState.OTHER_USER)
        if self.access_token in jwt_file and self.token_endpoint is not None:
            raise ValueError(
                f"a {self.access_token.value} access token is read from the token file; "
                "drop token_endpoint"
            )

    @property
    def needs_msmtp(self) -> bool:
        """Whether the lab runs the msmtp program, which a relay or chain scenario pipes
        mail to."""
        return self.relay or self.chain is not None

    @property
    def needs_dovecot(self) -> bool:
        """Whether the lab runs the dovecot program."""
        return self.dovecot or self.chain is not None

    @property
    def needs_postfix(self) -> bool:
        """Whether the lab runs the postfix program, which only a chain scenario does."""
        return self.chain is not None

    @property
    def token_scope(self) -> str | None:
        """Scope written into the configuration; None without ``token_endpoint``."""
        if self.token_endpoint is None:
            return None
        if self.requested_scope is not None:
            return self.requested_scope
        if self.token_endpoint.provider is TokenProvider.GOOGLE:
            return GOOGLE_MAIL_SCOPE
        return MICROSOFT_SMTP_SCOPE


_EXCHANGE_5_7_3 = f"535 5.7.3 Authentication unsuccessful {_EXCHANGE_SUFFIX}"

EXCHANGE_TOKEN_SERVER = ServerOptions(
    auth_mechanisms=EXCHANGE_MECHANISMS,
    error_challenge=ErrorChallenge.NONE,
    rejection_reply=_EXCHANGE_5_7_3,
    # A JWT access token makes an AUTH line of about 1500 octets, which Exchange accepts.
    max_auth_line_length=AUTH_BUFFER_OCTETS,
    jwt_audiences=EXCHANGE_AUDIENCES,
)
"""Exchange-like server of the token scenarios: accepts the tokens that the lab endpoint
issued for Exchange and the lab user, and replies ``535 5.7.3`` at once to any other."""

GMAIL_TOKEN_SERVER = ServerOptions(
    auth_mechanisms=GMAIL_MECHANISMS,
    error_challenge=ErrorChallenge.GOOGLE_401,
    rejection_reply=GMAIL_BAD_CREDENTIALS,
    max_auth_line_length=AUTH_BUFFER_OCTETS,
)
"""Gmail-like server of the Google token scenario: accepts the tokens that the lab endpoint
issued."""

GMAIL_BAD_TOKEN_SERVER = ServerOptions(
    auth_mechanisms=GMAIL_MECHANISMS,
    reject_all_tokens=True,
    error_challenge=ErrorChallenge.GOOGLE_401,
    rejection_reply=GMAIL_BAD_CREDENTIALS,
)
"""Gmail-like server that rejects every token with the 401 error challenge, then 535 5.7.8."""


def _microsoft_body(
    error: str, code: int, message: str, *, trace_id: str, correlation_id: str, timestamp: str
) -> str:
    """Return a Microsoft token endpoint error body in its one-line JSON form."""
    document = {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return json.dumps(document, separators=(",", ":"))


# Recorded token endpoint replies. The texts follow replies published in public bug reports;
# trace ids, correlation ids and application ids are replaced by made-up GUIDs.
AADSTS700082_REPLY = RecordedReply(
    status=400,
    body=_microsoft_body(
        "invalid_grant",
        700082,
        "The refresh token has expired due to inactivity. The token was issued on "
        "2022-01-03T09:39:41.5631952Z and was inactive for 90.00:00:00.",
        trace_id="4d1c7a52-93e0-4b6f-8a21-5c7e0f3b9d00",
        correlation_id="a2f4c6e8-1b3d-4f5a-8c7e-9d0b2a4c6e8f",
        timestamp="2022-04-04 07:51:12Z",
    ),
)
"""Microsoft: a refresh token unused for 90 days."""

AADSTS7000215_REPLY = RecordedReply(
    status=401,
    body=_microsoft_body(
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID, for a secret added to app "
        "'5e7a9c1b-3d5f-4a7b-9c1d-3e5f7a9b1c3d'.",
        trace_id="8b0d2f4a-6c8e-4a0b-92d4-6f8a0c2e4a00",
        correlation_id="c4e6a8b0-2d4f-4b6a-8e0c-2a4c6e8a0b2d",
        timestamp="2023-05-06 06:03:00Z",
    ),
)
"""Microsoft: a wrong client secret, often the secret's id pasted in place of its value."""

# NOTE: Microsoft's texts for AADSTS70011 vary with the mistake in the scope. This one is
# the form seen for a scope that does not exist, with the scope that the scenario writes.
_MISSPELLED_SCOPE = "https://outlook.office.com/SMTP.Sned offline_access"
AADSTS70011_REPLY = RecordedReply(
    status=400,
    body=_microsoft_body(
        "invalid_scope",
        70011,
        "The provided value for the input parameter 'scope' is not valid. The scope "
        f"'{_MISSPELLED_SCOPE}' does not exist.",
        trace_id="1f3b5d7f-9a1c-4e3f-a5b7-d9f1b3d5f700",
        correlation_id="e0a2c4e6-8f0a-4c2e-a6b8-0c2e4a6c8e0a",
        timestamp="2021-02-15 12:09:58Z",
    ),
)
"""Microsoft: a scope that does not exist."""

GOOGLE_INVALID_GRANT_REPLY = RecordedReply(
    status=400,
    body=json.dumps(
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
        indent=2,
    ),
)
"""Google: a refresh token that expired or was revoked."""

GOOGLE_INTERNAL_FAILURE_REPLY = RecordedReply(
    status=500,
    body=json.dumps({"error": "internal_failure", "error_description": "Backend Error"}, indent=2),
)
"""Google: the token endpoint's backend failed.

Public error reports from users of Google's client libraries show this body: with HTTP 500
in 2017, and without ``error_description`` in 2019."""

SIGN_IN_PAGE_REPLY = RecordedReply(
    status=200,
    body=(
        "<!DOCTYPE html>\n<html>\n<head><title>Sign in to continue</title></head>\n<body>\n"
        "<h1>Sign in to continue</h1>\n"
        "<p>This network requires you to sign in before you can reach the internet.</p>\n"
        '<form method="post" action="/portal/login">\n'
        '<input name="username"> <input name="password" type="password">\n'
        '<button type="submit">Sign in</button>\n</form>\n</body>\n</html>\n'
    ),
    content_type="text/html; charset=utf-8",
)
"""A web proxy's sign-in page, sent with status 200 in place of the token response.

NOTE: the page is not recorded from a product. It has the usual shape of captive portal
and proxy sign-in pages: a title and a form that posts a user name and password to the
proxy."""

PROXY_ERROR_PAGE_REPLY = RecordedReply(
    status=502,
    body=(
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ),
    content_type="text/html",
)
"""The error page of an nginx proxy between the client and the token endpoint."""


INTROSPECTION_DOWN_REPLY = RecordedReply(
    status=500,
    body=json.dumps({"error": "server_error", "error_description": "introspection is down"}),
)
"""The introspection endpoint's reply in ``dovecot-introspection-down``."""

# Dovecot 2.3.19's submission-login rejects an AUTH line of about 1500 octets, the size of
# one with a Microsoft-like JWT, with "500 5.5.2 Line too long". smtpdiag then sends the
# response after a bare 334.
_DOVECOT_LINE_TOO_LONG = "auth.line_too_long"

DOVECOT_SCENARIOS = (
    Scenario(
        name="dovecot",
        description="real Dovecot whose oauth2 passdb introspects the lab token: accepted",
        dovecot=True,
        # Dovecot 2.3 counts a client whose address equals its own as secured
        # (src/login-common/client-common.c) and offers AUTH before STARTTLS on 127.0.0.1;
        # the connect check does not report that for a loopback address.
        expected_codes=(),
    ),
    Scenario(
        name="dovecot-token-revoked",
        description="real Dovecot: the grant is revoked, so introspection reports inactive",
        dovecot=True,
        access_token=AccessTokenState.REVOKED,
        # Dovecot's XOAUTH2 rejection: a 334 challenge of {"status":"401",...}, then
        # 535 5.7.8 after the client's empty response.
        expected_codes=("scope.token_inactive", "auth.token_rejected"),
    ),
    Scenario(
        name="dovecot-token-expired",
        description="real Dovecot: the token file contains a JWT that expired an hour ago",
        # The introspection endpoint reports the expired token inactive to Dovecot and
        # smtpdiag, and smtpdiag also reads the expiry from the JWT's own exp claim.
        dovecot=True,
        access_token=AccessTokenState.EXPIRED,
        expected_codes=(
            "scope.token_expired",
            "scope.token_inactive",
            _DOVECOT_LINE_TOO_LONG,
            "auth.token_rejected",
        ),
    ),
    Scenario(
        name="dovecot-user-mismatch",
        description="real Dovecot: the token file contains a JWT for another user",
        dovecot=True,
        access_token=AccessTokenState.OTHER_USER,
        expected_codes=(
            "scope.user_mismatch",
            _DOVECOT_LINE_TOO_LONG,
            "auth.token_rejected",
        ),
    ),
    Scenario(
        name="dovecot-introspection-down",
        description="real Dovecot: introspection replies 500, Dovecot replies 454 4.7.0",
        dovecot=True,
        introspection_reply=INTROSPECTION_DOWN_REPLY,
        expected_codes=(
            "scope.introspection_failed",
            "auth.temporary_failure",
        ),
    ),
)
"""Scenarios with a real Dovecot; the demo runs them after the relay scenarios."""

CHAIN_MESSAGES = 3
"""Messages that a chain scenario sends into Postfix before the lab writes its target."""

CHAIN_SCENARIOS = (
    Scenario(
        name="chain",
        description="Postfix -> relay -> msmtp with a refresh-token script -> real Dovecot",
        chain=ChainFault.NONE,
    ),
    Scenario(
        name="chain-refresh-revoked",
        description="chain: the grant is revoked after the token script cached a token",
        chain=ChainFault.REFRESH_REVOKED,
        # Dovecot rejects the cached token after introspection, msmtp exits 77, the relay
        # replies 554 and Postfix bounces all three messages.
        expected_codes=(
            "scope.token_inactive",
            "auth.token_rejected",
            "relay.auth_failure_bounces_mail",
        ),
    ),
    Scenario(
        name="chain-token-command-fails",
        description="chain: the token script exits 1 because the endpoint rejects the grant",
        chain=ChainFault.TOKEN_COMMAND_FAILS,
        # msmtp exits 78 when its passwordeval command fails, the relay replies 554 and
        # Postfix bounces all three messages.
        # The token script prints the endpoint's invalid_grant for a refresh token it never
        # issued (AADSTS9002313), which the token check decodes.
        expected_codes=(
            "token.not_a_refresh_token",
            "token.command_failed",
            "relay.auth_failure_bounces_mail",
        ),
    ),
    Scenario(
        name="chain-dovecot-down",
        description="chain: Dovecot is stopped, msmtp cannot connect, Postfix defers",
        chain=ChainFault.SERVER_DOWN,
        # msmtp exits 75, the relay replies 451 and Postfix keeps the messages queued, so
        # nothing bounces.
        expected_codes=("connect.refused",),
    ),
)
"""Scenarios of the deployment chain; the demo runs them after the Dovecot scenarios."""


FAULT_TIMEOUT = 2
"""``timeout`` written into the configuration of the fault scenarios, in seconds: a check
that waits for a silent or endless server gives up after it."""


def _fault(fault: SmtpFault, description: str, *codes: str) -> Scenario:
    """Return the scenario named after ``fault``, whose lab runs the raw fault server."""
    return Scenario(
        name=fault.value,
        description=description,
        server=ServerOptions(fault=fault),
        timeout=FAULT_TIMEOUT,
        expected_codes=codes,
    )


FAULT_SCENARIOS = (
    _fault(
        SmtpFault.BLACK_HOLE,
        "server that accepts TCP connections and never sends a byte",
        "connect.timeout",
    ),
    _fault(
        SmtpFault.SLOW_DRIP,
        "server that sends its 220 greeting at one byte per second",
        "connect.timeout",
    ),
    _fault(
        SmtpFault.CLOSE_AFTER_GREETING,
        "server that closes the connection after its greeting",
        "connect.closed",
    ),
    _fault(
        SmtpFault.CLOSE_AFTER_EHLO,
        "server that closes the connection after its EHLO reply",
        "connect.closed",
    ),
    _fault(
        SmtpFault.CLOSE_AFTER_STARTTLS,
        "server that replies 220 to STARTTLS, then closes",
        "connect.tls_handshake_failed",
    ),
    _fault(
        SmtpFault.CLOSE_MID_HANDSHAKE,
        "server that sends half of its first TLS flight, then closes",
        "connect.tls_handshake_failed",
    ),
    _fault(
        SmtpFault.CLOSE_MID_REPLY,
        "server that closes after two lines of its multi-line EHLO reply",
        "connect.closed",
    ),
    _fault(
        SmtpFault.RESET_DURING_AUTH,
        "server that resets the connection (TCP RST) at AUTH",
        "auth.no_final_reply",
    ),
    _fault(
        SmtpFault.ENDLESS_CONTINUATION,
        "server whose EHLO reply has 250- lines without end",
        "connect.not_smtp",
    ),
    _fault(
        SmtpFault.HUGE_LINE,
        "server whose EHLO reply starts with a line of 1 MiB",
        "connect.not_smtp",
    ),
    _fault(
        SmtpFault.BINARY_GARBAGE,
        "server that greets with NUL and non-UTF-8 bytes",
        "connect.not_smtp",
    ),
    _fault(
        SmtpFault.BARE_LF,
        "server whose reply lines end with LF alone, not CRLF",
        "connect.protocol_oddities",
    ),
    _fault(
        SmtpFault.ENDLESS_CHALLENGE,
        "server that replies 334 to AUTH and to every line after it",
        "auth.repeated_challenge",
    ),
)
"""Scenarios of the raw fault server; each check must end within the timeout with a finding."""

ENDPOINT_FAULT_SCENARIOS = (
    Scenario(
        name="token-hang",
        description="token endpoint that completes TLS, reads the request and never replies",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(fault=TokenFault.HANG),
        timeout=FAULT_TIMEOUT,
        expected_codes=("token.endpoint_unreachable",),
    ),
    Scenario(
        name="token-500",
        description="Google-like token endpoint: HTTP 500 with internal_failure, Backend Error",
        server=GMAIL_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(
            provider=TokenProvider.GOOGLE,
            token_format=TokenFormat.OPAQUE,
            error_reply=GOOGLE_INTERNAL_FAILURE_REPLY,
        ),
        timeout=FAULT_TIMEOUT,
        expected_codes=("token.endpoint_http_error",),
    ),
    Scenario(
        name="token-html-200",
        description="token endpoint behind a proxy that sends its sign-in page with status 200",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(error_reply=SIGN_IN_PAGE_REPLY),
        timeout=FAULT_TIMEOUT,
        expected_codes=("token.malformed_response",),
    ),
    Scenario(
        name="token-10mb",
        description="token endpoint that sends 200 with a 10 MiB JSON body that never closes",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(fault=TokenFault.HUGE_BODY),
        timeout=FAULT_TIMEOUT,
        expected_codes=("token.malformed_response",),
    ),
    Scenario(
        name="ntp-silent",
        description="NTP responder that reads requests and never replies; lab clock 90 s ahead",
        server=EXCHANGE_TOKEN_SERVER,
        # The token endpoint's Date header is the fallback time source, which shows the skew.
        token_endpoint=TokenEndpointOptions(),
        clock_offset_seconds=CLOCK_SKEW_SECONDS,
        ntp_mode=NtpMode.SILENT,
        timeout=FAULT_TIMEOUT,
        expected_codes=("clock.ntp_unreachable", "clock.skew"),
    ),
    Scenario(
        name="ntp-garbage",
        description="NTP responder that replies with 32 octets of text; lab clock 90 s ahead",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(),
        clock_offset_seconds=CLOCK_SKEW_SECONDS,
        ntp_mode=NtpMode.GARBAGE,
        timeout=FAULT_TIMEOUT,
        expected_codes=("clock.ntp_unreachable", "clock.skew"),
    ),
)
"""Faults of the token endpoint and the NTP responder, with the fault scenarios' timeout.
The demo runs them after the fault server's scenarios."""


_ALL = (
    Scenario(
        name="healthy",
        description="STARTTLS server that accepts the lab token over XOAUTH2 and OAUTHBEARER",
    ),
    Scenario(
        name="starttls-missing",
        description="server that does not offer STARTTLS and replies 502 to it",
        server=ServerOptions(offer_starttls=False),
        expected_codes=("connect.starttls_not_offered",),
    ),
    Scenario(
        name="greeting-421",
        description="server that greets with 421 4.3.2 and closes the connection",
        server=ServerOptions(greeting_reply="421 4.3.2 Service not available"),
        expected_codes=("connect.greeting_rejected",),
    ),
    Scenario(
        name="oauth-not-offered",
        description="server that offers only AUTH PLAIN LOGIN after TLS",
        server=ServerOptions(auth_mechanisms=("PLAIN", "LOGIN")),
        expected_codes=("connect.oauth_not_offered",),
    ),
    Scenario(
        name="implicit-tls-only",
        description="configuration uses STARTTLS on a port that expects implicit TLS",
        target_listener=LabListener.IMPLICIT,
        target_tls_mode=TlsMode.STARTTLS,
        expected_codes=("connect.port_expects_implicit_tls",),
    ),
    Scenario(
        name="google-bad-token",
        description="Gmail-like server: every token gets the 401 error challenge, then 535 5.7.8",
        server=GMAIL_BAD_TOKEN_SERVER,
        expected_codes=("auth.token_rejected",),
    ),
    Scenario(
        name="google-wrong-scope",
        description="Gmail-like server: every token gets the 400 scope challenge, then 535 5.7.8",
        server=ServerOptions(
            auth_mechanisms=GMAIL_MECHANISMS,
            reject_all_tokens=True,
            error_challenge=ErrorChallenge.GOOGLE_400,
            rejection_reply=GMAIL_BAD_CREDENTIALS,
        ),
        expected_codes=("auth.insufficient_scope",),
    ),
    Scenario(
        name="microsoft-5.7.3",
        description="Exchange-like server: every token gets 535 5.7.3 at once, no challenge",
        server=ServerOptions(
            auth_mechanisms=EXCHANGE_MECHANISMS,
            reject_all_tokens=True,
            error_challenge=ErrorChallenge.NONE,
            rejection_reply=f"535 5.7.3 Authentication unsuccessful {_EXCHANGE_SUFFIX}",
        ),
        expected_codes=("auth.exchange_refused",),
    ),
    Scenario(
        name="microsoft-auth-disabled",
        description="Exchange-like server: SMTP AUTH disabled for the tenant, 535 5.7.139",
        server=ServerOptions(
            auth_mechanisms=EXCHANGE_MECHANISMS,
            reject_all_tokens=True,
            error_challenge=ErrorChallenge.NONE,
            rejection_reply=(
                "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
                "for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. "
                + _EXCHANGE_SUFFIX
            ),
        ),
        expected_codes=("auth.smtp_auth_disabled_tenant",),
    ),
    Scenario(
        name="rfc7628-invalid-token",
        description="OAUTHBEARER-only server: invalid_token challenge, then 535 5.7.1",
        server=ServerOptions(
            auth_mechanisms=("OAUTHBEARER",),
            oauth_scope="https://mail.example.com/",
            reject_all_tokens=True,
            error_challenge=ErrorChallenge.RFC7628,
            rejection_reply="535 5.7.1 Authentication failed",
        ),
        expected_codes=("auth.token_rejected",),
    ),
    Scenario(
        name="token-expires-soon",
        description="Exchange-like server: every token gets 501 5.5.127, token expires too soon",
        server=ServerOptions(
            auth_mechanisms=EXCHANGE_MECHANISMS,
            reject_all_tokens=True,
            error_challenge=ErrorChallenge.NONE,
            # NOTE: Microsoft does not document this reply. The text is from a public Postfix
            # log of Exchange's high-volume email endpoint (smtp-hve.office365.com); whether
            # smtp.office365.com sends it as well is not confirmed.
            rejection_reply="501 5.5.127 Invalid XOAUTH2 auth data - Token will expire soon",
        ),
        expected_codes=("auth.token_expires_soon",),
    ),
    Scenario(
        name="line-too-long",
        description="server that rejects AUTH lines over 512 octets; the token is 1600 characters",
        server=ServerOptions(max_auth_line_length=512),
        token_length=LONG_TOKEN_LENGTH,
        expected_codes=("auth.line_too_long",),
    ),
    Scenario(
        name="temporary-454",
        description="server that rejects every token with 454 4.7.0, a temporary failure",
        server=ServerOptions(
            reject_all_tokens=True,
            error_challenge=ErrorChallenge.NONE,
            rejection_reply="454 4.7.0 Temporary authentication failure",
        ),
        expected_codes=("auth.temporary_failure",),
    ),
    Scenario(
        name="microsoft-send-as-denied",
        description="Exchange-like server that accepts AUTH but rejects the From address at DATA",
        server=ServerOptions(
            auth_mechanisms=("LOGIN", "XOAUTH2"),
            # Exchange Online's reply for a From address the mailbox may not send as, server id
            # redacted. It arrives only after DATA, never at AUTH.
            data_reply=(
                "554 5.2.252 SendAsDenied; lab.user@example.com not allowed to send as "
                "other@example.com; STOREDRV.Submission.Exception:SendAsDeniedException."
                "MapiExceptionSendAsDenied [Hostname=XX0PR00MB0000.namprd00.prod.outlook.com]"
            ),
        ),
        send_test=True,
        expected_codes=("auth.send_as_denied",),
    ),
    Scenario(
        name="cert-expired",
        description="server certificate whose validity ended yesterday",
        certificate=LeafOptions(
            not_before_offset=timedelta(days=-90), not_after_offset=timedelta(days=-1)
        ),
        expected_codes=("tls.cert_expired",),
    ),
    Scenario(
        name="cert-not-yet-valid",
        description="server certificate that becomes valid tomorrow",
        certificate=LeafOptions(
            not_before_offset=timedelta(days=1), not_after_offset=timedelta(days=90)
        ),
        expected_codes=("tls.cert_not_yet_valid",),
    ),
    Scenario(
        name="cert-expiring-soon",
        description="server certificate that expires in 5 days",
        certificate=LeafOptions(not_after_offset=EXPIRING_SOON),
        expected_codes=("tls.cert_expiring_soon",),
    ),
    Scenario(
        name="wrong-hostname",
        description="server certificate only for mail.other.example, without IP addresses",
        certificate=LeafOptions(dns_names=(OTHER_HOST_NAME,), ip_addresses=()),
        expected_codes=("tls.hostname_mismatch",),
    ),
    Scenario(
        name="missing-intermediate",
        description="server sends its certificate without the intermediate CA",
        certificate=LeafOptions(include_intermediate=False),
        expected_codes=("tls.missing_intermediate",),
    ),
    Scenario(
        name="self-signed",
        description="self-signed server certificate for localhost, not from the lab CA",
        certificate=LeafOptions(self_signed=True),
        expected_codes=("tls.untrusted",),
    ),
    Scenario(
        name="sni-required",
        description="server presents a mail.other.example certificate unless SNI is localhost",
        certificate=LeafOptions(sni_fallback_dns_names=(OTHER_HOST_NAME,)),
        # A client sends SNI only for a host name, so the target names the server by name.
        # NOTE: this relies on localhost resolving to 127.0.0.1, where the lab listens.
        target_host="localhost",
        expected_codes=("tls.sni_required",),
    ),
    Scenario(
        name="starttls-454",
        description="server that advertises STARTTLS but replies 454 4.7.0 to it",
        server=ServerOptions(starttls_reply="454 4.7.0 TLS not available due to local problem"),
        expected_codes=("connect.starttls_rejected",),
    ),
    *FAULT_SCENARIOS,
    *ENDPOINT_FAULT_SCENARIOS,
    Scenario(
        name="relay",
        description="msmtpd-style relay that pipes mail to msmtp, which sends it with XOAUTH2",
        relay=True,
    ),
    Scenario(
        name="relay-token-rejected",
        description="relay to msmtp: the server rejects the token, and the relay replies 554",
        server=GMAIL_BAD_TOKEN_SERVER,
        relay=True,
        # msmtp exits with EX_NOPERM (77) after the 535, and msmtpd replies 554 to that status.
        expected_codes=("relay.auth_failure_bounces_mail", "auth.token_rejected"),
    ),
    *DOVECOT_SCENARIOS,
    *CHAIN_SCENARIOS,
    Scenario(
        name="token-healthy",
        description="token endpoint issues a JWT for Exchange; the Exchange-like server accepts it",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(),
    ),
    Scenario(
        name="aadsts700082",
        description="token endpoint: refresh token expired after 90 days unused (AADSTS700082)",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(error_reply=AADSTS700082_REPLY),
        expected_codes=("token.refresh_token_expired",),
    ),
    Scenario(
        name="google-invalid-grant",
        description="Google token endpoint: invalid_grant, token has been expired or revoked",
        server=GMAIL_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(
            provider=TokenProvider.GOOGLE,
            token_format=TokenFormat.OPAQUE,
            error_reply=GOOGLE_INVALID_GRANT_REPLY,
        ),
        expected_codes=("token.grant_revoked",),
    ),
    Scenario(
        name="invalid-client",
        description="token endpoint: 401 invalid_client, wrong client secret (AADSTS7000215)",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(error_reply=AADSTS7000215_REPLY),
        expected_codes=("token.invalid_client",),
    ),
    Scenario(
        name="invalid-scope",
        description="token endpoint: invalid_scope for a misspelled scope (AADSTS70011)",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(error_reply=AADSTS70011_REPLY),
        requested_scope=_MISSPELLED_SCOPE,
        expected_codes=("token.invalid_scope",),
    ),
    Scenario(
        name="graph-audience",
        description="token endpoint issues a Microsoft Graph token; Exchange replies 535 5.7.3",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(
            audience="https://graph.microsoft.com", scp="Mail.Send SMTP.Send User.Read"
        ),
        # Scopes without a resource prefix are Microsoft Graph's, the usual way to end up
        # with a Graph token.
        requested_scope="Mail.Send SMTP.Send User.Read offline_access",
        expected_codes=("scope.wrong_audience", "auth.exchange_refused"),
    ),
    Scenario(
        name="user-mismatch",
        description="token endpoint issues a token for another user; Exchange replies 535 5.7.3",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(upn="other.user@example.com"),
        expected_codes=("scope.user_mismatch",),
    ),
    Scenario(
        name="html-error-page",
        description="token endpoint behind a proxy that replies 502 with an HTML error page",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(error_reply=PROXY_ERROR_PAGE_REPLY),
        expected_codes=("token.malformed_response",),
    ),
    Scenario(
        name="slow-endpoint",
        description="token endpoint that replies after 3 s; the configured timeout is 1 s",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(delay_seconds=SLOW_ENDPOINT_DELAY_SECONDS),
        timeout=SLOW_ENDPOINT_TIMEOUT,
        expected_codes=("token.endpoint_unreachable",),
    ),
    Scenario(
        name="rotating-refresh-token",
        description="token endpoint returns a new refresh token with every access token",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(rotate_refresh_token=True),
        expected_codes=("token.refresh_token_rotated",),
    ),
    Scenario(
        name="clock-skew-90s",
        description="lab clock 90 s ahead: NTP, Date header, banner and token times",
        server=EXCHANGE_TOKEN_SERVER,
        # iat and nbf at the time of issue, so the token is issued 90 s in the future by
        # the local clock. With Microsoft's 300 s backdate they would lie in the past.
        token_endpoint=TokenEndpointOptions(backdate_seconds=0),
        clock_offset_seconds=CLOCK_SKEW_SECONDS,
        expected_codes=("clock.skew", "clock.token_issued_in_future"),
    ),
    Scenario(
        name="clock-skew-minus-90s",
        description="lab clock 90 s behind: NTP, Date header, banner and token times",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(),
        clock_offset_seconds=-CLOCK_SKEW_SECONDS,
        expected_codes=("clock.skew",),
    ),
    Scenario(
        name="clock-skew-3s",
        description="lab clock 3 s ahead, under the warning threshold",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(),
        clock_offset_seconds=SMALL_CLOCK_SKEW_SECONDS,
    ),
    Scenario(
        name="ntp-unreachable",
        description="no NTP server on the configured port; lab clock 90 s ahead",
        server=EXCHANGE_TOKEN_SERVER,
        token_endpoint=TokenEndpointOptions(),
        clock_offset_seconds=CLOCK_SKEW_SECONDS,
        ntp_mode=NtpMode.CLOSED,
        # The NTP query waits for the whole timeout, as behind a firewall that drops UDP.
        timeout=1,
        expected_codes=("clock.ntp_unreachable", "clock.skew"),
    ),
)

SCENARIOS: Mapping[str, Scenario] = MappingProxyType({scenario.name: scenario for scenario in _ALL})
"""Every scenario by name, in the order the demo runs them."""


def get_scenario(name: str) -> Scenario:
    """Return the scenario called ``name``; raise ``UsageError`` listing the valid names."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UsageError(
            f"Unknown lab scenario {name!r}.",
            f"Use one of: {', '.join(SCENARIOS)}.",
            value=name,
        ) from None


def list_scenarios() -> list[tuple[str, str]]:
    """Return the name and description of every scenario, in demo order."""
    return [(scenario.name, scenario.description) for scenario in SCENARIOS.values()]
