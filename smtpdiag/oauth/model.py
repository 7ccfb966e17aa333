"""Shapes exchanged by the token, scope and auth checks.

The token check turns a token source (a grant at the token endpoint, a command, a file) into
an ``AccessToken`` and puts it in its result's ``outputs`` under ``ACCESS_TOKEN_OUTPUT``.
The scope and auth checks read it from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from smtpdiag.redact import REDACTOR
from smtpdiag.secrets import Secret

ACCESS_TOKEN_OUTPUT = "access_token"  # noqa: S105 (a key name)
"""Key of the ``AccessToken`` in the token check's ``CheckResult.outputs``."""

SECRET_FIELDS = ("access_token", "refresh_token", "id_token", "client_secret")
"""Fields of token endpoint bodies whose values are secrets."""


def register_secret_fields(body: Mapping[str, Any]) -> None:
    """Register the string values of a body's secret fields with the redactor."""
    for name in SECRET_FIELDS:
        value = body.get(name)
        if isinstance(value, str):
            REDACTOR.register(value)


class Grant(StrEnum):
    """OAuth2 grant sent to the token endpoint (RFC 6749)."""

    REFRESH_TOKEN = "refresh_token"  # noqa: S105 (a grant type name)
    """Delegated access: a user's refresh token is exchanged for an access token."""
    CLIENT_CREDENTIALS = "client_credentials"
    """App-only access: the client authenticates as itself (Microsoft ``SMTP.SendAsApp``)."""


@dataclass(frozen=True)
class HttpReply:
    """One HTTP response of a token, tokeninfo or introspection endpoint."""

    status: int
    reason: str
    headers: Mapping[str, str]
    """Header values by lower-case name; a repeated header keeps its last value."""
    body: bytes
    """The body, cut at the client's size limit."""
    truncated: bool
    """Whether the body was longer than the client's size limit."""
    latency_seconds: float
    """Seconds from sending the request to reading the whole body."""

    @property
    def content_type(self) -> str:
        """Media type without parameters, lower case; empty when the header is missing."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def date(self) -> datetime | None:
        """The server's ``Date`` header as an aware UTC datetime, or None when unreadable."""
        value = self.headers.get("date")
        if not value:
            return None
        from email.utils import parsedate_to_datetime

        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        return parsed if parsed.tzinfo is not None else None

    def text(self, limit: int = 2000) -> str:
        """Return the start of the body as text, undecodable bytes replaced."""
        return self.body[:limit].decode("utf-8", errors="replace")


@dataclass(frozen=True)
class TokenErrorBody:
    """An OAuth2 error body (RFC 6749 section 5.2) with the fields providers add to it."""

    error: str
    """RFC 6749 ``error`` code, e.g. ``invalid_grant``."""
    description: str | None = None
    error_uri: str | None = None
    error_codes: tuple[int, ...] = ()
    """Microsoft ``error_codes``; the AADSTS numbers."""
    provider_error_code: str | None = None
    """``AADSTSnnnn`` from the description or ``error_codes``, or None."""
    suberror: str | None = None
    """Microsoft ``suberror``, e.g. ``bad_token``."""
    timestamp: str | None = None
    trace_id: str | None = None
    correlation_id: str | None = None

    def facts(self) -> dict[str, Any]:
        """Return the report facts: ``oauth_error``, ``oauth_error_description``, and so on."""
        facts: dict[str, Any] = {"oauth_error": self.error}
        optional = {
            "oauth_error_description": self.description,
            "oauth_error_uri": self.error_uri,
            "provider_error_code": self.provider_error_code,
            "error_codes": list(self.error_codes) or None,
            "suberror": self.suberror,
            "error_timestamp": self.timestamp,
            "trace_id": self.trace_id,
            "correlation_id": self.correlation_id,
        }
        facts.update({name: value for name, value in optional.items() if value is not None})
        return facts


@dataclass(frozen=True)
class TokenResponse:
    """A successful token endpoint reply (RFC 6749 section 5.1)."""

    access_token: Secret
    token_type: str | None
    expires_in: float | None
    """Lifetime in seconds from the reply, or None when the server sent none."""
    scopes: tuple[str, ...] | None
    """Granted scopes from ``scope``, or None when the reply has no ``scope``."""
    refresh_token: Secret | None
    """A refresh token in the reply, or None."""
    obtained_at: datetime
    """Local UTC time at which the reply arrived."""

    @property
    def expires_at(self) -> datetime | None:
        """Local time at which the access token expires, or None when unknown."""
        if self.expires_in is None:
            return None
        return self.obtained_at + timedelta(seconds=self.expires_in)


@dataclass(frozen=True)
class AccessToken:
    """The access token that the token check hands to the scope and auth checks."""

    value: Secret
    source: str
    """Origin of the token in words, e.g. ``refresh_token grant at https://…/token``."""
    grant: Grant | None = None
    """Grant that produced it, or None for a token from a file, variable or command."""
    scopes: tuple[str, ...] | None = None
    """Granted scopes from the token response, or None when unknown."""
    expires_at: datetime | None = None
    claims: Mapping[str, Any] | None = field(default=None, repr=False)
    """``{"header": …, "payload": …}`` of a JWT access token (signature not verified), or
    None for an opaque token."""
