"""Token requests and successful token replies (RFC 6749 sections 4.4, 5.1 and 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smtpdiag.context import OAuthSettings
from smtpdiag.oauth.grants import (
    choose_grant,
    parse_token_body,
    request_fields,
    requested_scope,
    token_response,
)
from smtpdiag.oauth.model import Grant, HttpReply
from smtpdiag.oauth.profiles import get_profile
from smtpdiag.redact import REDACTOR
from smtpdiag.secrets import Secret

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
REFRESH = Secret("0.AXoA-refresh-token-value", "test")
CLIENT_SECRET = Secret("client~secret~value~1234", "test")


def reply(body: bytes, status: int = 200) -> HttpReply:
    return HttpReply(status, "OK", {"content-type": "application/json"}, body, False, 0.05)


@pytest.mark.parametrize(
    ("oauth", "grant"),
    [
        (OAuthSettings(client_id="c", refresh_token=REFRESH), Grant.REFRESH_TOKEN),
        (OAuthSettings(client_id="c", client_secret=CLIENT_SECRET), Grant.CLIENT_CREDENTIALS),
        (
            OAuthSettings(client_id="c", client_secret=CLIENT_SECRET, refresh_token=REFRESH),
            Grant.REFRESH_TOKEN,
        ),
        (
            OAuthSettings(
                client_id="c",
                client_secret=CLIENT_SECRET,
                refresh_token=REFRESH,
                grant=Grant.CLIENT_CREDENTIALS,
            ),
            Grant.CLIENT_CREDENTIALS,
        ),
        (OAuthSettings(), None),
        (OAuthSettings(client_id="c"), None),
    ],
)
def test_choose_grant(oauth: OAuthSettings, grant: Grant | None) -> None:
    assert choose_grant(oauth) is grant


@pytest.mark.parametrize(
    ("provider", "grant", "scope"),
    [
        ("microsoft", Grant.REFRESH_TOKEN, "https://outlook.office.com/SMTP.Send offline_access"),
        ("microsoft", Grant.CLIENT_CREDENTIALS, "https://outlook.office365.com/.default"),
        ("google", Grant.REFRESH_TOKEN, "https://mail.google.com/"),
        ("yandex", Grant.REFRESH_TOKEN, "mail:smtp"),
        ("mailru", Grant.REFRESH_TOKEN, "mail.imap"),
        ("yahoo", Grant.REFRESH_TOKEN, "mail-w"),
        ("generic", Grant.REFRESH_TOKEN, None),
    ],
)
def test_profile_scope(provider: str, grant: Grant, scope: str | None) -> None:
    assert requested_scope(OAuthSettings(), get_profile(provider), grant) == scope


def test_configured_scope_wins() -> None:
    oauth = OAuthSettings(scope="mail:smtp")
    assert requested_scope(oauth, get_profile("microsoft"), Grant.REFRESH_TOKEN) == "mail:smtp"


def test_refresh_request_fields() -> None:
    oauth = OAuthSettings(client_id="app-id", client_secret=CLIENT_SECRET, refresh_token=REFRESH)
    assert request_fields(oauth, Grant.REFRESH_TOKEN, "mail:smtp") == {
        "grant_type": "refresh_token",
        "client_id": "app-id",
        "client_secret": CLIENT_SECRET.reveal(),
        "refresh_token": REFRESH.reveal(),
        "scope": "mail:smtp",
    }


def test_client_credentials_fields_send_no_refresh_token() -> None:
    oauth = OAuthSettings(client_id="app-id", client_secret=CLIENT_SECRET, refresh_token=REFRESH)
    fields = request_fields(
        oauth, Grant.CLIENT_CREDENTIALS, "https://outlook.office365.com/.default"
    )
    assert "refresh_token" not in fields
    assert fields["grant_type"] == "client_credentials"


def test_microsoft_success_body() -> None:
    # Shape of a Microsoft identity platform v2.0 reply; token values are placeholders.
    body = (
        b'{"token_type":"Bearer","scope":"https://outlook.office.com/SMTP.Send",'
        b'"expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAi.lab.token-value",'
        b'"refresh_token":"0.AXoA-new-refresh-value"}'
    )
    response = token_response(reply(body), NOW)
    assert response is not None
    assert response.access_token.reveal() == "eyJ0eXAi.lab.token-value"
    assert response.token_type == "Bearer"
    assert response.expires_in == 3599
    assert response.expires_at == NOW + timedelta(seconds=3599)
    assert response.scopes == ("https://outlook.office.com/SMTP.Send",)
    assert response.refresh_token is not None
    assert "0.AXoA-new-refresh-value" not in REDACTOR.redact("x 0.AXoA-new-refresh-value")


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [(3599, 3599.0), ("3600", 3600.0), (None, None), (True, None), (-5, None), ("soon", None)],
)
def test_expires_in_shapes(expires_in: object, expected: float | None) -> None:
    response = parse_token_body({"access_token": "abcdefgh", "expires_in": expires_in}, NOW)
    assert response is not None
    assert response.expires_in == expected


@pytest.mark.parametrize(
    "body",
    [
        b'{"error": "invalid_grant"}',
        b'{"access_token": ""}',
        b'{"access_token": 42}',
        b"[1, 2]",
        b"<html>502 Bad Gateway</html>",
        b"\xff\xfe",
    ],
)
def test_unusable_bodies(body: bytes) -> None:
    assert token_response(reply(body), NOW) is None


def test_error_status_is_never_a_token() -> None:
    assert token_response(reply(b'{"access_token": "abcdefgh"}', status=400), NOW) is None
