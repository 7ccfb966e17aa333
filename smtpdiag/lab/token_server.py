"""HTTPS token endpoint of the lab: OAuth2 grants, tokeninfo and introspection on 127.0.0.1.

``POST /token`` takes the refresh-token and client-credentials grants (RFC 6749 sections 6
and 4.4) and replies in the shape of Microsoft's or Google's token endpoint, errors
included. ``POST /tokeninfo`` describes an access token the way Google's tokeninfo endpoint
does, and ``POST /introspect`` the way RFC 7662 defines, for issued tokens and for the lab
account's own token. Every access token that the endpoint issues is registered with the lab
account, so the lab submission servers accept it. ``TokenServer.revoke_grant`` revokes the
refresh token and every access token at once, as a provider does when a user withdraws
consent. A ``TokenFault`` makes ``POST /token`` hang without a reply or send a body of
10 MiB.

The server is the standard library's ``ThreadingHTTPServer`` with the lab's server
certificate, run in a daemon thread. Each connection gets its own thread, a socket timeout
and its TLS handshake there, so a silent client delays no other request and never blocks
the server's shutdown. Request lines go to the ``logging`` module at DEBUG; bodies are never
logged.

The ``Date`` header, the times in error bodies and the ``iat``, ``nbf`` and ``exp`` claims
come from a ``LabClock``, which may run ahead of or behind the local clock.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import ssl
import sys
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from smtpdiag.lab.certs import CertificateFiles
from smtpdiag.lab.lab_account import APP_SMTP_PERMISSION, IssuedToken, LabAccount
from smtpdiag.lab.lab_clock import LabClock
from smtpdiag.lab.options import (
    GOOGLE_MAIL_SCOPE,
    HUGE_BODY_OCTETS,
    RecordedReply,
    TokenEndpointOptions,
    TokenFault,
    TokenFormat,
    TokenProvider,
)
from smtpdiag.redact import REDACTOR
from smtpdiag.secrets import Secret

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

TOKEN_PATH = "/token"  # noqa: S105 (a URL path)
TOKENINFO_PATH = "/tokeninfo"
INTROSPECTION_PATH = "/introspect"

LAB_TENANT_ID = "6b3c9e2a-4f1d-4c8b-9a7e-2d5f0e1c3b4a"
"""Microsoft tenant id of the lab: the ``tid`` claim and the tenant written into the
configuration. A fixed GUID that names no real tenant."""
LAB_TENANT_NAME = "smtpdiag lab"
"""Directory name that Microsoft's error texts give for the tenant."""

LAB_USER_OBJECT_ID = "0c8a4d6e-2b1f-4e3a-9c5d-7f6e8a9b0c1d"
"""``oid`` of the lab user in delegated JWT access tokens."""
LAB_APP_OBJECT_ID = "3e5f7a9b-1c2d-4e6f-8a0b-2c4d6e8f0a1b"
"""``oid`` of the lab application's service principal in app-only JWT access tokens."""

ACCESS_TOKEN_LIFETIME = 3599
"""``expires_in`` of issued access tokens in seconds, as both providers send it."""

REQUEST_TIMEOUT_SECONDS = 5.0
"""Socket timeout of each connection: TLS handshake, request line, headers and body."""

MAX_REQUEST_BODY_OCTETS = 65536
"""Maximum request body size in octets; a token request has a few hundred."""

_MAX_FORM_FIELDS = 100

HUGE_BODY_START = b'{"token_type":"Bearer","expires_in":3599,"padding":"'
"""Start of the body in ``TokenFault.HUGE_BODY``. Padding fills the rest, and neither the
string nor the object is ever closed."""

_PADDING_CHUNK = b"A" * 65536

# Prefixes that make the random values look like the real thing in transcripts.
_GOOGLE_ACCESS_TOKEN_PREFIX = "ya29.lab-"  # noqa: S105 (a prefix; the rest is random)


@dataclass(frozen=True)
class ClientCredentials:
    """The lab client's id and secret and the refresh token issued to the lab user."""

    client_id: str
    client_secret: Secret
    refresh_token: Secret


def new_client_credentials(provider: TokenProvider) -> ClientCredentials:
    """Create random client credentials shaped like the provider's own."""
    if provider is TokenProvider.GOOGLE:
        digits = "".join(str(secrets.randbelow(10)) for _ in range(12))
        client_id = f"{digits}-lab{secrets.token_hex(14)}.apps.googleusercontent.com"
        client_secret = "GOCSPX-" + secrets.token_urlsafe(21)
        refresh_token = "1//lab-" + secrets.token_urlsafe(72)
    else:
        client_id = str(uuid.uuid4())
        client_secret = "lab8Q~" + secrets.token_urlsafe(26)
        refresh_token = "0.lab-" + secrets.token_urlsafe(96)
    return ClientCredentials(
        client_id=client_id,
        client_secret=Secret(client_secret, "lab client secret"),
        refresh_token=Secret(refresh_token, "lab refresh token"),
    )


@dataclass(frozen=True)
class EndpointReply:
    """One HTTP reply of the token endpoint."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"


def json_reply(
    status: int, document: Mapping[str, Any], *, indent: int | None = None
) -> EndpointReply:
    """Return a JSON reply; Google indents its bodies by 2, Microsoft sends one line."""
    separators = (",", ": ") if indent else (",", ":")
    text = json.dumps(document, indent=indent, separators=separators)
    return EndpointReply(status, text.encode("utf-8"))


def microsoft_error(
    status: int, error: str, code: int, message: str, now: datetime | None = None
) -> EndpointReply:
    """Return a Microsoft identity platform error reply for ``AADSTS<code>: <message>``.

    The description ends with the trace id, correlation id and timestamp, which the body
    repeats in fields of their own, as Microsoft's token endpoint does.
    """
    moment = now or datetime.now(UTC)
    timestamp = moment.strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    description = (
        f"AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\n"
        f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
    )
    document = {
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return json_reply(status, document)


def google_error(status: int, error: str, description: str) -> EndpointReply:
    """Return a Google OAuth 2.0 error reply."""
    return json_reply(status, {"error": error, "error_description": description}, indent=2)


def make_jwt(header: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    """Return a compact JWT with ``header`` and ``payload`` and a random signature part.

    The lab signs nothing: the third part is 256 random bytes, the size of an RS256
    signature with a 2048-bit key, so no client can or should verify it.
    """
    parts = (
        _base64url(json.dumps(header, separators=(",", ":")).encode("utf-8")),
        _base64url(json.dumps(payload, separators=(",", ":")).encode("utf-8")),
        _base64url(secrets.token_bytes(256)),
    )
    return ".".join(parts)


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class FormError(ValueError):
    """A request body is not a valid form: a repeated field, too many fields, not UTF-8."""


def parse_form(body: bytes, content_type: str) -> dict[str, str]:
    """Return the fields of a form-encoded ``body``; raise ``FormError`` when it is invalid.

    A body of another content type has no fields, as a token endpoint reads only forms.
    RFC 6749 section 3.2 forbids repeating a parameter.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return {}
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise FormError("the form is not UTF-8") from None
    except ValueError:
        raise FormError(f"the form has more than {_MAX_FORM_FIELDS} fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise FormError(f"the form repeats the field {name!r}")
        fields[name] = value
    return fields


class TokenEndpoint:
    """Request handling of the lab token endpoint apart from HTTP: one method per route.

    Thread-safe, because each request runs in its own thread. Times (issued tokens, error
    timestamps, expiry checks) come from ``clock``.
    """

    def __init__(
        self,
        options: TokenEndpointOptions,
        account: LabAccount,
        credentials: ClientCredentials,
        clock: LabClock | None = None,
    ) -> None:
        self.options = options
        self.account = account
        self.credentials = credentials
        self.clock = clock or LabClock()
        self._lock = threading.Lock()
        self._refresh_tokens = [credentials.refresh_token]
        self._grant_revoked = False
        self.token_requests = 0
        """``POST /token`` requests received, counted before the delay."""

    @property
    def _google(self) -> bool:
        return self.options.provider is TokenProvider.GOOGLE

    @property
    def grant_revoked(self) -> bool:
        """Whether ``revoke_grant`` was called."""
        with self._lock:
            return self._grant_revoked

    def revoke_grant(self) -> None:
        """Revoke the user's grant, as a user or an administrator does at the provider.

        From now on the refresh-token grant gets ``400 invalid_grant``, and introspection
        reports every access token issued so far and the account's own token as inactive.
        """
        with self._lock:
            self._grant_revoked = True
        count = self.account.issued_tokens.revoke_all()
        self.account.issued_tokens.revoke(self.account.access_token.reveal())
        logger.info(
            "token endpoint revoked the grant of %s and %d issued access tokens",
            self.account.user,
            count,
        )

    def count_token_request(self) -> None:
        """Count one ``POST /token``."""
        with self._lock:
            self.token_requests += 1

    def token(self, fields: Mapping[str, str]) -> EndpointReply:
        """Reply to ``POST /token`` with ``fields``: the scenario's recorded reply, an error
        for a wrong request, or a new access token."""
        recorded = self.options.error_reply
        if recorded is not None:
            return _recorded(recorded)
        grant_type = fields.get("grant_type", "")
        if self._google:
            return self._google_token(grant_type, fields)
        return self._microsoft_token(grant_type, fields)

    def _microsoft_token(self, grant_type: str, fields: Mapping[str, str]) -> EndpointReply:
        if not grant_type:
            return self._microsoft_missing("grant_type")
        if grant_type not in ("refresh_token", "client_credentials"):
            return microsoft_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
                self.clock.now(),
            )
        client_error = self._microsoft_client_error(fields)
        if client_error is not None:
            return client_error
        if not fields.get("scope"):
            return self._microsoft_missing("scope")
        if grant_type == "client_credentials":
            return self._issue(refresh_grant=False)
        if not fields.get("refresh_token"):
            return self._microsoft_missing("refresh_token")
        if not self._known_refresh_token(fields["refresh_token"]):
            return microsoft_error(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
                self.clock.now(),
            )
        if self.grant_revoked:
            now = self.clock.now()
            stamp = now.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
            return microsoft_error(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is "
                "needed. The user might have changed or reset their password. The grant was "
                f"issued on '{stamp}' and the TokensValidFrom date (before which tokens are "
                f"not valid) for this user is '{stamp}'.",
                now,
            )
        return self._issue(refresh_grant=True)

    def _microsoft_client_error(self, fields: Mapping[str, str]) -> EndpointReply | None:
        client_id = fields.get("client_id", "")
        if not client_id:
            return self._microsoft_missing("client_id")
        if client_id != self.credentials.client_id:
            return microsoft_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{LAB_TENANT_NAME}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in "
                "the tenant. You may have sent your authentication request to the wrong tenant.",
                self.clock.now(),
            )
        if not fields.get("client_secret"):
            return microsoft_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
                self.clock.now(),
            )
        if not _same(fields["client_secret"], self.credentials.client_secret):
            return microsoft_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
                self.clock.now(),
            )
        return None

    def _microsoft_missing(self, parameter: str) -> EndpointReply:
        return microsoft_error(
            400,
            "invalid_request",
            900144,
            f"The request body must contain the following parameter: '{parameter}'.",
            self.clock.now(),
        )

    def _google_token(self, grant_type: str, fields: Mapping[str, str]) -> EndpointReply:
        # NOTE: Google's texts for a missing or unsupported grant type and a missing refresh
        # token are not confirmed by a recorded reply.
        if grant_type != "refresh_token":
            return google_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        if fields.get("client_id", "") != self.credentials.client_id:
            return google_error(401, "invalid_client", "The OAuth client was not found.")
        if not _same(fields.get("client_secret", ""), self.credentials.client_secret):
            return google_error(401, "invalid_client", "Unauthorized")
        if not fields.get("refresh_token"):
            return google_error(400, "invalid_request", "Missing required parameter: refresh_token")
        if not self._known_refresh_token(fields["refresh_token"]):
            return google_error(400, "invalid_grant", "Bad Request")
        if self.grant_revoked:
            return google_error(400, "invalid_grant", "Token has been expired or revoked.")
        return self._issue(refresh_grant=True)

    def _known_refresh_token(self, value: str) -> bool:
        with self._lock:
            return any(_same(value, token) for token in self._refresh_tokens)

    def _issue(self, *, refresh_grant: bool) -> EndpointReply:
        """Create an access token, register it, and return the success reply."""
        now = self.clock.time()
        issued = self._new_access_token(now, refresh_grant=refresh_grant)
        self.account.issued_tokens.add(issued)

        document: dict[str, Any]
        if self._google:
            document = {
                "access_token": issued.token.reveal(),
                "expires_in": ACCESS_TOKEN_LIFETIME,
                "scope": issued.scope,
                "token_type": "Bearer",
            }
        else:
            document = {"token_type": "Bearer"}
            # Microsoft's client-credentials reply names no scope.
            if refresh_grant:
                document["scope"] = issued.scope
            document |= {
                "expires_in": ACCESS_TOKEN_LIFETIME,
                "ext_expires_in": ACCESS_TOKEN_LIFETIME,
                "access_token": issued.token.reveal(),
            }
        if refresh_grant and self.options.rotate_refresh_token:
            document["refresh_token"] = self._rotate_refresh_token().reveal()
        logger.info(
            "token endpoint issued a %s access token (%s)",
            self.options.token_format.value,
            "refresh_token grant" if refresh_grant else "client_credentials grant",
        )
        return json_reply(200, document, indent=2 if self._google else None)

    def _rotate_refresh_token(self) -> Secret:
        new = new_client_credentials(self.options.provider).refresh_token
        with self._lock:
            self._refresh_tokens.append(new)
        return new

    def _new_access_token(self, now: float, *, refresh_grant: bool) -> IssuedToken:
        options = self.options
        expires_at = now + ACCESS_TOKEN_LIFETIME
        if options.token_format is TokenFormat.OPAQUE:
            value = _GOOGLE_ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(96)
            scope = GOOGLE_MAIL_SCOPE if self._google else options.scp
            return IssuedToken(
                token=Secret(value, "lab token endpoint"),
                client_id=self.credentials.client_id,
                scope=scope,
                issued_at=now,
                expires_at=expires_at,
            )

        user = options.upn or self.account.user
        return jwt_access_token(
            options, self.credentials.client_id, user, now, expires_at, refresh_grant=refresh_grant
        )

    def tokeninfo(self, fields: Mapping[str, str]) -> EndpointReply:
        """Reply to ``POST /tokeninfo`` the way Google's tokeninfo endpoint does.

        Google sends ``exp`` and ``expires_in`` as JSON strings, and so does the lab.
        """
        value = fields.get("access_token", "")
        if not value:
            # NOTE: Google's text for a request without a token is not confirmed by a recording.
            return google_error(
                400, "invalid_request", "Either access_token, id_token, or token_handle required"
            )
        issued = self.account.issued_tokens.find(value)
        now = self.clock.time()
        if issued is None or issued.expired(now) or self.account.issued_tokens.revoked(value):
            return google_error(400, "invalid_token", "Invalid Value")
        document = {
            "azp": issued.client_id,
            "aud": issued.client_id,
            "scope": issued.scope,
            "exp": str(int(issued.expires_at)),
            "expires_in": str(int(issued.expires_at - now)),
            "access_type": "offline",
        }
        return json_reply(200, document, indent=2)

    def introspect(self, fields: Mapping[str, str]) -> EndpointReply:
        """Reply to ``POST /introspect`` as RFC 7662 defines.

        The scenario's ``introspection_reply``, when set, is the reply to every request. The
        lab requires no client authentication, although section 2.1 requires it of a real
        endpoint.
        """
        recorded = self.options.introspection_reply
        if recorded is not None:
            return _recorded(recorded)
        value = fields.get("token", "")
        if not value:
            return json_reply(
                400, {"error": "invalid_request", "error_description": "token is missing"}
            )
        if self.account.owns(value):
            return self._introspect_account_token()
        issued = self.account.issued_tokens.find(value)
        now = self.clock.time()
        if issued is None or issued.expired(now) or self.account.issued_tokens.revoked(value):
            return json_reply(200, {"active": False})
        document: dict[str, Any] = {
            "active": True,
            "scope": issued.scope,
            "client_id": issued.client_id,
        }
        user = issued.user if issued.claims is not None else self.account.user
        if user is not None:
            document["username"] = user
        document |= {
            "token_type": "Bearer",
            "exp": int(issued.expires_at),
            "iat": int(issued.issued_at),
        }
        return json_reply(200, document)

    def _introspect_account_token(self) -> EndpointReply:
        """Describe the account's own access token, the one in the lab's token file."""
        account = self.account
        if not account.token_active(self.clock.time()):
            return json_reply(200, {"active": False})
        document: dict[str, Any] = {
            "active": True,
            "scope": account.token_scope,
            "username": account.token_owner,
            "token_type": "Bearer",
        }
        if account.token_expires_at is not None:
            document["exp"] = int(account.token_expires_at)
        return json_reply(200, document)


JWT_HEADER = {"typ": "JWT", "alg": "RS256", "kid": "lab"}
"""Header of the lab's JWT access tokens: RS256 as Microsoft's, though nothing signs them."""


def jwt_access_token(
    options: TokenEndpointOptions,
    client_id: str,
    user: str,
    now: float,
    expires_at: float,
    *,
    refresh_grant: bool,
) -> IssuedToken:
    """Create a Microsoft-like JWT access token issued at ``now`` for ``client_id``.

    A token of the refresh-token grant is delegated for ``user`` with ``options.scp``; one
    of the client-credentials grant is app-only and names no user.
    """
    claims = _jwt_claims(
        options, client_id, user, int(now), int(expires_at), refresh_grant=refresh_grant
    )
    if refresh_grant:
        audience = options.audience.rstrip("/")
        scope = " ".join(f"{audience}/{permission}" for permission in options.scp.split())
    else:
        scope = APP_SMTP_PERMISSION
    return IssuedToken(
        token=Secret(make_jwt(JWT_HEADER, claims), "lab token endpoint"),
        client_id=client_id,
        scope=scope,
        issued_at=now,
        expires_at=expires_at,
        claims=claims,
    )


def _jwt_claims(
    options: TokenEndpointOptions,
    client_id: str,
    user: str,
    now: int,
    expires_at: int,
    *,
    refresh_grant: bool,
) -> dict[str, Any]:
    """Return the payload of a Microsoft-like v1.0 access token."""
    issued_at = now - options.backdate_seconds
    claims: dict[str, Any] = {
        "aud": options.audience,
        "iss": f"https://sts.windows.net/{LAB_TENANT_ID}/",
        "iat": issued_at,
        "nbf": issued_at,
        "exp": expires_at,
        "app_displayname": LAB_TENANT_NAME,
        "appid": client_id,
        "appidacr": "1",
    }
    if refresh_grant:
        claims |= {
            "idtyp": "user",
            "oid": LAB_USER_OBJECT_ID,
            "scp": options.scp,
            "sub": LAB_USER_OBJECT_ID,
            "tid": LAB_TENANT_ID,
            "unique_name": user,
            "upn": user,
        }
    else:
        claims |= {
            "idtyp": "app",
            "oid": LAB_APP_OBJECT_ID,
            "roles": [APP_SMTP_PERMISSION],
            "sub": LAB_APP_OBJECT_ID,
            "tid": LAB_TENANT_ID,
        }
    claims["ver"] = "1.0"
    return claims


def _recorded(recorded: RecordedReply) -> EndpointReply:
    return EndpointReply(recorded.status, recorded.body.encode("utf-8"), recorded.content_type)


def _same(value: str, secret: Secret) -> bool:
    return secrets.compare_digest(value.encode("utf-8"), secret.reveal().encode("utf-8"))


class _TokenRequestHandler(BaseHTTPRequestHandler):
    """HTTP side of one connection: read a form, call the endpoint, send its reply."""

    server: _TokenHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "smtpdiag-lab"
    # StreamRequestHandler applies this to the connection's socket: the TLS handshake and
    # every read and write of the request time out after it.
    timeout = REQUEST_TIMEOUT_SECONDS

    def setup(self) -> None:
        super().setup()
        # The listening thread wrapped the socket without a handshake, so a client that
        # never sends its TLS hello holds up only this thread.
        connection = self.connection
        if isinstance(connection, ssl.SSLSocket):
            connection.do_handshake()

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        routes = {
            TOKEN_PATH: self.server.endpoint.token,
            TOKENINFO_PATH: self.server.endpoint.tokeninfo,
            INTROSPECTION_PATH: self.server.endpoint.introspect,
        }
        route = routes.get(path)
        if route is None:
            self._send(_not_found(path))
            return
        body = self._read_body()
        if body is None:
            return
        try:
            fields = parse_form(body, self.headers.get("Content-Type", ""))
        except FormError as error:
            self._send(_request_error(400, str(error)))
            return

        if path == TOKEN_PATH:
            self.server.endpoint.count_token_request()
            if self._serve_fault():
                return
            delay = self.server.endpoint.options.delay_seconds
            # The wait ends early when the server stops; the client then gets no reply.
            if delay > 0 and self.server.stopping.wait(delay):
                self.close_connection = True
                return
        self._send(route(fields))

    def do_GET(self) -> None:
        self._send_method_not_allowed()

    def do_PUT(self) -> None:
        self._send_method_not_allowed()

    def do_DELETE(self) -> None:
        self._send_method_not_allowed()

    def _send_method_not_allowed(self) -> None:
        body = {"error": "invalid_request", "error_description": f"{self.command} is not allowed"}
        self._send(json_reply(405, body), extra_headers={"Allow": "POST"})

    def _read_body(self) -> bytes | None:
        """Return the request body, or None after replying to a request without a usable one."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send(_request_error(411, "a Content-Length is required"))
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            self._send(_request_error(400, "Content-Length is not a number"))
            return None
        if length < 0:
            self._send(_request_error(400, "Content-Length is negative"))
            return None
        if length > MAX_REQUEST_BODY_OCTETS:
            self._send(_request_error(413, f"the body is over {MAX_REQUEST_BODY_OCTETS} octets"))
            return None
        body = self.rfile.read(length)
        if len(body) < length:
            logger.debug("%s: connection closed inside the request body", self._client())
            self.close_connection = True
            return None
        return body

    def _serve_fault(self) -> bool:
        """Act out the scenario's ``TokenFault`` and return True, or return False without one."""
        fault = self.server.endpoint.options.fault
        if fault is TokenFault.HANG:
            logger.debug("%s: POST /token left unanswered until the server stops", self._client())
            # Only the server's stop ends the wait. The thread is a daemon thread, and after
            # the stop the connection closes without a reply.
            self.server.stopping.wait()
            self.close_connection = True
            return True
        if fault is TokenFault.HUGE_BODY:
            self._send_huge_body()
            return True
        return False

    def _send_huge_body(self) -> None:
        """Send 200 with a body of ``HUGE_BODY_OCTETS`` until the client stops reading.

        A client that closes the connection ends the write with an error. One that stops
        reading but keeps the connection open blocks a write until the socket timeout, so
        the thread ends either way, and the server's stop ends it before the next chunk.
        """
        self._send_head(200, "application/json; charset=utf-8", HUGE_BODY_OCTETS)
        sent = 0
        try:
            self.wfile.write(HUGE_BODY_START)
            sent = len(HUGE_BODY_START)
            while sent < HUGE_BODY_OCTETS and not self.server.stopping.is_set():
                chunk = _PADDING_CHUNK[: HUGE_BODY_OCTETS - sent]
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError as error:
            logger.debug(
                "%s: client stopped reading the huge body after %d of %d octets: %s",
                self._client(),
                sent,
                HUGE_BODY_OCTETS,
                error,
            )

    def _send(self, reply: EndpointReply, extra_headers: Mapping[str, str] | None = None) -> None:
        self._send_head(reply.status, reply.content_type, len(reply.body), extra_headers)
        self.wfile.write(reply.body)

    def _send_head(
        self,
        status: int,
        content_type: str,
        length: int,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send the status line and headers of a reply whose body has ``length`` octets."""
        # Every reply ends the connection, so a client never waits for a second request.
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store, no-cache")
        self.send_header("Pragma", "no-cache")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()

    def version_string(self) -> str:
        """Return the ``Server`` header value, without the Python version."""
        return self.server_version

    def date_time_string(self, timestamp: float | None = None) -> str:
        """Return the ``Date`` header value: the lab time unless ``timestamp`` is given."""
        if timestamp is None:
            timestamp = self.server.endpoint.clock.time()
        return super().date_time_string(timestamp)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The path is logged without its query, which could carry a token.
        logger.debug(
            "%s: %s %s -> %s", self._client(), self.command, urlsplit(self.path).path, code
        )

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: %s", self._client(), REDACTOR.redact(format % args))

    def _client(self) -> str:
        host, port = self.client_address[:2]
        return f"{host}:{port}"


def _not_found(path: str) -> EndpointReply:
    return _request_error(404, f"no endpoint at {path}")


def _request_error(status: int, description: str) -> EndpointReply:
    return json_reply(status, {"error": "invalid_request", "error_description": description})


class _TokenHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer on 127.0.0.1 that speaks TLS and never waits for its threads."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, endpoint: TokenEndpoint, tls_context: ssl.SSLContext) -> None:
        self.endpoint = endpoint
        self.tls_context = tls_context
        self.stopping = threading.Event()
        """Set when the server stops; ends the delay of a pending reply."""
        super().__init__((LOOPBACK, 0), _TokenRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's full name, which may ask a DNS server.
        TCPServer.server_bind(self)
        self.server_name = "localhost"
        self.server_port = self.server_address[1]

    def get_request(self) -> tuple[Any, Any]:
        connection, address = self.socket.accept()
        wrapped = self.tls_context.wrap_socket(
            connection, server_side=True, do_handshake_on_connect=False
        )
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback on stderr; a failed handshake or a timed-out client
        # is an expected event in the lab and gets one DEBUG line.
        error = sys.exc_info()[1]
        logger.debug(
            "token endpoint request from %s failed: %s",
            client_address,
            REDACTOR.redact(f"{type(error).__name__}: {error}"),
        )


class TokenServer:
    """The lab token endpoint on 127.0.0.1 and a free port, served by a daemon thread.

    Use as a context manager, or call ``start`` and ``stop``.
    """

    def __init__(
        self,
        options: TokenEndpointOptions,
        account: LabAccount,
        credentials: ClientCredentials,
        certificates: CertificateFiles,
        clock: LabClock | None = None,
    ) -> None:
        self.endpoint = TokenEndpoint(options, account, credentials, clock)
        self._tls_context = server_tls_context(certificates)
        self._server: _TokenHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """Port the server listens on; 0 before ``start``."""
        return 0 if self._server is None else int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT`` of the server."""
        return f"https://{LOOPBACK}:{self.port}"

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def tokeninfo_url(self) -> str:
        return self.base_url + TOKENINFO_PATH

    @property
    def introspection_url(self) -> str:
        return self.base_url + INTROSPECTION_PATH

    def revoke_grant(self) -> None:
        """From now on: refresh grant -> 400 invalid_grant (provider-shaped); every access
        token issued so far and the account's own token -> introspection ``{"active": false}``.
        """
        self.endpoint.revoke_grant()

    def start(self) -> None:
        """Bind a free port and serve in a daemon thread."""
        server = _TokenHTTPServer(self.endpoint, self._tls_context)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            # shutdown() waits for the next poll, so a short interval makes stopping quick.
            kwargs={"poll_interval": 0.01},
            name=f"lab-token-endpoint-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("lab token endpoint started on %s", self.base_url)

    def stop(self) -> None:
        """Stop serving and close the listening socket; pending replies are dropped."""
        server = self._server
        if server is None:
            return
        url = self.base_url
        server.stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=REQUEST_TIMEOUT_SECONDS)
        self._server = None
        self._thread = None
        logger.info("lab token endpoint on %s stopped", url)

    def __enter__(self) -> TokenServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def server_tls_context(certificates: CertificateFiles) -> ssl.SSLContext:
    """Return the server context with the lab's server certificate and its chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificates.chain_file, certificates.key_file)
    return context
