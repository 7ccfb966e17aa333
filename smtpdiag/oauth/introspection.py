"""Ask an endpoint what an access token grants: RFC 7662 introspection or Google's tokeninfo.

An RFC 7662 endpoint takes ``token`` and ``token_type_hint`` with client authentication and
replies with ``active`` (required) and optional ``scope``, ``username``, ``exp``, ``aud`` and
``client_id``. Google's tokeninfo takes ``access_token`` and replies with ``scope``,
``expires_in``, ``aud`` and ``email``, or with ``{"error": "invalid_token"}``. The request
follows the URL (a path ending in ``tokeninfo`` is Google's kind); the reply is read by its
own shape. The token travels only in the POST body, never in the URL.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote_plus, urlsplit

from smtpdiag.models import Finding
from smtpdiag.oauth.claims import (
    Expectations,
    evaluate_scopes,
    numeric_date,
    user_findings,
    validity_findings,
)
from smtpdiag.oauth.http import post_form
from smtpdiag.oauth.model import HttpReply
from smtpdiag.oauth.scope_kinds import TOKEN_INACTIVE
from smtpdiag.redact import REDACTOR
from smtpdiag.secrets import Secret

_GOOGLE_FIELDS = ("expires_in", "azp", "email", "access_type")


class ReplyShape(StrEnum):
    """Format of an introspection reply."""

    RFC7662 = "rfc7662"
    TOKENINFO = "tokeninfo"
    """Google's tokeninfo endpoint."""


class IntrospectionError(Exception):
    """The endpoint replied, but the reply is neither an introspection nor a tokeninfo reply."""

    def __init__(self, reason: str, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status


@dataclass(frozen=True)
class Introspection:
    """Reply of an introspection or tokeninfo endpoint about one access token."""

    endpoint: str
    shape: ReplyShape
    http_status: int
    active: bool
    """RFC 7662 ``active``; False for Google's ``invalid_token``."""
    scopes: tuple[str, ...] | None = None
    """Granted scopes, or None when the reply has no ``scope``."""
    user: str | None = None
    """RFC 7662 ``username`` or Google's ``email``, or None."""
    user_field: str = "username"
    expires: float | None = None
    """Expiry in seconds since the epoch, from ``exp`` or ``expires_in``, or None."""
    audiences: tuple[str, ...] = ()
    client_id: str | None = None
    error: str | None = None
    """Google's ``error`` value when the token is not valid, or None."""

    def facts(self) -> dict[str, Any]:
        """Return the facts of the reply, which contain no token."""
        facts: dict[str, Any] = {
            "introspection_endpoint": self.endpoint,
            "introspection_format": self.shape.value,
            "http_status": self.http_status,
            "active": self.active,
        }
        optional = {
            "scopes": list(self.scopes) if self.scopes is not None else None,
            "token_user": self.user,
            "audience": list(self.audiences) or None,
            "client_id": self.client_id,
            "oauth_error": self.error,
        }
        facts.update({name: value for name, value in optional.items() if value is not None})
        return facts


def is_tokeninfo(endpoint: str) -> bool:
    """Tell whether ``endpoint`` is a tokeninfo endpoint (Google's kind) by its path."""
    try:
        path = urlsplit(endpoint.strip()).path
    except ValueError:
        return False
    return path.rstrip("/").lower().endswith("tokeninfo")


def introspect(
    endpoint: str,
    token: Secret,
    *,
    now: datetime,
    timeout: float,
    client_id: str | None = None,
    client_secret: Secret | None = None,
    ca_file: str | None = None,
) -> Introspection:
    """POST the token to ``endpoint`` and read the reply.

    Raises ``EndpointError`` when no HTTP reply arrives, ``ValueError`` for a URL that is not
    https (or http on loopback), and ``IntrospectionError`` for a reply of neither shape.
    """
    fields, headers = request_parts(endpoint, token, client_id, client_secret)
    reply = post_form(endpoint, fields, timeout=timeout, ca_file=ca_file, headers=headers)
    return parse_reply(reply, endpoint, now)


def request_parts(
    endpoint: str, token: Secret, client_id: str | None, client_secret: Secret | None
) -> tuple[dict[str, str], dict[str, str]]:
    """Return the form fields and headers of the request.

    RFC 7662 endpoints get the client's credentials as HTTP Basic (RFC 6749 section 2.3.1,
    each part form-encoded first), or ``client_id`` alone for a public client. Tokeninfo
    needs no client credentials, so none are sent there.
    """
    if is_tokeninfo(endpoint):
        return {"access_token": token.reveal()}, {}
    fields = {"token": token.reveal(), "token_type_hint": "access_token"}
    headers: dict[str, str] = {}
    if client_id and client_secret is not None:
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret.reveal())}"
        credentials = base64.b64encode(pair.encode("utf-8")).decode("ascii")
        REDACTOR.register(credentials)
        headers["Authorization"] = f"Basic {credentials}"
    elif client_id:
        fields["client_id"] = client_id
    return fields, headers


def parse_reply(reply: HttpReply, endpoint: str, now: datetime) -> Introspection:
    """Read an introspection or tokeninfo reply; raise ``IntrospectionError`` if it is neither."""
    body = _json_object(reply)
    if body is None:
        kind = reply.content_type or "no content type"
        raise IntrospectionError(
            f"HTTP {reply.status} with a body that is not a JSON object ({kind})", reply.status
        )
    if "active" in body:
        return _rfc7662(body, reply.status, endpoint)
    error = body.get("error")
    if error == "invalid_token":
        return Introspection(endpoint, ReplyShape.TOKENINFO, reply.status, False, error=error)
    if error is not None:
        description = body.get("error_description")
        detail = f": {description}" if isinstance(description, str) and description else ""
        raise IntrospectionError(f"HTTP {reply.status}, error {error}{detail}", reply.status)
    if reply.status != 200 or not any(name in body for name in (*_GOOGLE_FIELDS, "scope")):
        raise IntrospectionError(
            f"HTTP {reply.status} without an active field or tokeninfo fields", reply.status
        )
    return _tokeninfo(body, reply.status, endpoint, now)


def judge(introspection: Introspection, expectations: Expectations, now: datetime) -> list[Finding]:
    """Turn an introspection reply into findings: inactive, else scopes, user and expiry."""
    facts = introspection.facts()
    if not introspection.active:
        answer = f'"error": "{introspection.error}"' if introspection.error else '"active": false'
        details = {"endpoint": introspection.endpoint, "answer": answer}
        return [TOKEN_INACTIVE.make(facts=facts, evidence=(answer,), details=details)]
    findings: list[Finding] = []
    if introspection.scopes is not None:
        source = f"the scope that {introspection.endpoint} reports"
        findings += evaluate_scopes(introspection.scopes, expectations, source=source, facts=facts)
    # RFC 7662 usernames need not be addresses; only an address is compared with the SMTP user.
    if introspection.user and "@" in introspection.user:
        users = ((introspection.user_field, introspection.user),)
        findings += user_findings(users, expectations.user, facts)
    # NOTE: ``aud`` is reported but not judged: Google's is the client id, and the profiles
    # with known audiences (Microsoft) have no introspection endpoint.
    findings += validity_findings(introspection.expires, None, now, facts)
    return findings


def _rfc7662(body: Mapping[str, Any], status: int, endpoint: str) -> Introspection:
    return Introspection(
        endpoint,
        ReplyShape.RFC7662,
        status,
        active=body.get("active") is True,
        scopes=_scopes(body.get("scope")),
        user=_text(body.get("username")),
        user_field="username",
        expires=numeric_date(body.get("exp")),
        audiences=_audiences(body.get("aud")),
        client_id=_text(body.get("client_id")),
    )


def _tokeninfo(body: Mapping[str, Any], status: int, endpoint: str, now: datetime) -> Introspection:
    expires = numeric_date(body.get("exp"))
    expires_in = numeric_date(body.get("expires_in"))
    if expires is None and expires_in is not None:
        expires = now.timestamp() + expires_in
    return Introspection(
        endpoint,
        ReplyShape.TOKENINFO,
        status,
        active=True,
        scopes=_scopes(body.get("scope")),
        user=_text(body.get("email")),
        user_field="email",
        expires=expires,
        audiences=_audiences(body.get("aud")),
        client_id=_text(body.get("azp")),
    )


def _json_object(reply: HttpReply) -> Mapping[str, Any] | None:
    try:
        value = json.loads(reply.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _scopes(value: Any) -> tuple[str, ...] | None:
    return tuple(value.split()) if isinstance(value, str) else None


def _audiences(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str) and item)
    return ()
