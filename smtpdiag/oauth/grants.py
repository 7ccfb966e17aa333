"""Token requests (RFC 6749 sections 4.4 and 6) and the reading of a successful reply.

The client authenticates with ``client_secret_post``: its id and secret go in the form body,
which Google, Microsoft, Yandex and Mail.ru all accept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from smtpdiag.context import OAuthSettings
from smtpdiag.oauth.model import Grant, HttpReply, TokenResponse, register_secret_fields
from smtpdiag.oauth.profiles import ProviderProfile
from smtpdiag.secrets import Secret


def choose_grant(oauth: OAuthSettings) -> Grant | None:
    """Return the configured grant, else refresh_token when a refresh token is configured,
    else client_credentials when a client secret is; None when neither applies."""
    if oauth.grant is not None:
        return oauth.grant
    if oauth.refresh_token is not None:
        return Grant.REFRESH_TOKEN
    if oauth.client_id and oauth.client_secret is not None:
        return Grant.CLIENT_CREDENTIALS
    return None


def requested_scope(oauth: OAuthSettings, profile: ProviderProfile, grant: Grant) -> str | None:
    """Return the configured scope, else the profile's scope for ``grant``."""
    if oauth.scope:
        return oauth.scope
    return profile.app_scope if grant is Grant.CLIENT_CREDENTIALS else profile.scope


def request_fields(oauth: OAuthSettings, grant: Grant, scope: str | None) -> dict[str, str]:
    """Return the form fields of the token request; they contain secrets."""
    fields = {"grant_type": grant.value}
    if oauth.client_id:
        fields["client_id"] = oauth.client_id
    if oauth.client_secret is not None:
        fields["client_secret"] = oauth.client_secret.reveal()
    if grant is Grant.REFRESH_TOKEN and oauth.refresh_token is not None:
        fields["refresh_token"] = oauth.refresh_token.reveal()
    if scope:
        fields["scope"] = scope
    return fields


def json_object(reply: HttpReply) -> dict[str, Any] | None:
    """Return the reply body as a JSON object with its secret fields registered, or None."""
    if reply.truncated:
        return None
    try:
        value = json.loads(reply.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    register_secret_fields(value)
    return value


def token_response(reply: HttpReply, obtained_at: datetime) -> TokenResponse | None:
    """Return the token response of a 2xx JSON reply with an access token, else None."""
    if not 200 <= reply.status < 300:
        return None
    body = json_object(reply)
    if body is None:
        return None
    return parse_token_body(body, obtained_at)


def parse_token_body(body: Mapping[str, Any], obtained_at: datetime) -> TokenResponse | None:
    """Read RFC 6749 section 5.1 fields; None when ``access_token`` is missing or empty."""
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token.strip():
        return None
    refresh_token = body.get("refresh_token")
    scope = body.get("scope")
    token_type = body.get("token_type")
    return TokenResponse(
        access_token=Secret(access_token.strip(), "token endpoint"),
        token_type=token_type if isinstance(token_type, str) else None,
        expires_in=_seconds(body.get("expires_in")),
        scopes=tuple(scope.split()) if isinstance(scope, str) else None,
        refresh_token=(
            Secret(refresh_token, "token endpoint")
            if isinstance(refresh_token, str) and refresh_token
            else None
        ),
        obtained_at=obtained_at,
    )


def _seconds(value: object) -> float | None:
    """Read ``expires_in``: a number, or a string of digits as some servers send it.

    NOTE: an unreadable value (``"abc"``, a negative number) is treated as absent, with no
    finding of its own; the token's lifetime is then unknown.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None
