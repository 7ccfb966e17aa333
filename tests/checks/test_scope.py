"""The scope check, run directly with the token check's result as its upstream input."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from checks import scope
from smtpdiag.context import CheckContext, OAuthSettings, Settings, Target, TlsMode
from smtpdiag.models import CheckResult, Status
from smtpdiag.oauth.model import ACCESS_TOKEN_OUTPUT, AccessToken, Grant
from smtpdiag.sasl import jwt_claims
from smtpdiag.secrets import Secret

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
TENANT = "3f2b8c4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f"
OPAQUE = "ya29.a0AfB_byC-opaque-access-token-for-scope-check-tests-42"

EXCHANGE_V1: dict[str, Any] = {
    "aud": "https://outlook.office.com",
    "iss": f"https://sts.windows.net/{TENANT}/",
    "iat": T - 600,
    "nbf": T - 600,
    "exp": T + 3000,
    "appid": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
    "scp": "SMTP.Send",
    "tid": TENANT,
    "unique_name": "alice@contoso.com",
    "upn": "alice@contoso.com",
    "ver": "1.0",
}
GRAPH_V1: dict[str, Any] = {
    **EXCHANGE_V1,
    "aud": "00000003-0000-0000-c000-000000000000",
    "scp": "Mail.Send SMTP.Send User.Read",
}
APP_ONLY: dict[str, Any] = {
    "aud": "https://outlook.office365.com",
    "iss": f"https://sts.windows.net/{TENANT}/",
    "exp": T + 3500,
    "appid": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
    "idtyp": "app",
    "roles": ["SMTP.SendAsApp"],
    "tid": TENANT,
    "ver": "1.0",
}


def make_jwt(payload: dict[str, Any]) -> str:
    """Build a JWT with base64url JSON parts and a dummy signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.ZHVtbXktc2lnbmF0dXJl"


def jwt_token(payload: dict[str, Any], grant: Grant = Grant.REFRESH_TOKEN) -> AccessToken:
    value = make_jwt(payload)
    return AccessToken(
        value=Secret(value, "test"),
        source="refresh_token grant at https://login.microsoftonline.com/x/oauth2/v2.0/token",
        grant=grant,
        scopes=("https://outlook.office.com/SMTP.Send",),
        expires_at=NOW + timedelta(hours=1),
        claims=jwt_claims(value),
    )


def opaque_token(scopes: tuple[str, ...] | None, expires_in: float = 3599) -> AccessToken:
    return AccessToken(
        value=Secret(OPAQUE, "test"),
        source="refresh_token grant at https://oauth2.googleapis.com/token",
        grant=Grant.REFRESH_TOKEN,
        scopes=scopes,
        expires_at=NOW + timedelta(seconds=expires_in),
    )


def target(
    provider: str | None = "microsoft", user: str = "alice@contoso.com", **oauth: Any
) -> Target:
    hosts = {"microsoft": "smtp.office365.com", "google": "smtp.gmail.com"}
    return Target(
        host=hosts.get(provider or "", "smtp.gmail.com"),
        port=587,
        tls_mode=TlsMode.STARTTLS,
        user=user,
        oauth=OAuthSettings(provider=provider, tenant=oauth.pop("tenant", TENANT), **oauth),
    )


def context(token: AccessToken | None) -> CheckContext:
    outputs = {ACCESS_TOKEN_OUTPUT: token} if token is not None else {}
    upstream = {"token": CheckResult("token", Status.OK, "token obtained", outputs=outputs)}
    return CheckContext(settings=Settings(timeout=5.0), upstream=upstream, now=lambda: NOW)


def codes(result: CheckResult) -> list[str]:
    return [finding.code for finding in result.findings]


def test_spec_declares_token() -> None:
    assert (scope.SPEC.id, scope.SPEC.requires) == ("scope", ("token",))


def test_spec_lists_every_code() -> None:
    assert {kind.code for kind in scope.SPEC.findings} == {
        "scope.wrong_audience",
        "scope.missing",
        "scope.user_mismatch",
        "scope.wrong_tenant",
        "scope.token_expired",
        "scope.token_not_yet_valid",
        "scope.unverifiable",
        "scope.token_inactive",
        "scope.introspection_failed",
    }


def test_skipped_without_upstream() -> None:
    ctx = CheckContext(settings=Settings(), now=lambda: NOW)
    result = scope.run(target(), ctx)
    assert result.status is Status.SKIPPED
    assert result.summary == "no access token: the token check did not produce one"


def test_skipped_without_token_output() -> None:
    result = scope.run(target(), context(None))
    assert result.status is Status.SKIPPED


JWT_CASES = [
    ("exchange delegated", EXCHANGE_V1, Grant.REFRESH_TOKEN, {}, Status.OK, []),
    (
        "graph delegated",
        GRAPH_V1,
        Grant.REFRESH_TOKEN,
        {},
        Status.CRITICAL,
        ["scope.wrong_audience"],
    ),
    (
        "other user",
        EXCHANGE_V1,
        Grant.REFRESH_TOKEN,
        {"user": "bob@contoso.com"},
        Status.CRITICAL,
        ["scope.user_mismatch"],
    ),
    (
        "other tenant",
        EXCHANGE_V1,
        Grant.REFRESH_TOKEN,
        {"tenant": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"},
        Status.CRITICAL,
        ["scope.wrong_tenant"],
    ),
    ("app-only", APP_ONLY, Grant.CLIENT_CREDENTIALS, {}, Status.OK, []),
    (
        "app-only without role",
        {**APP_ONLY, "roles": []},
        Grant.CLIENT_CREDENTIALS,
        {},
        Status.CRITICAL,
        ["scope.missing"],
    ),
    (
        "expired",
        {**EXCHANGE_V1, "exp": T - 30},
        Grant.REFRESH_TOKEN,
        {},
        Status.CRITICAL,
        ["scope.token_expired"],
    ),
    (
        "no provider configured",
        GRAPH_V1,
        Grant.REFRESH_TOKEN,
        {"provider": None},
        Status.CRITICAL,
        ["scope.wrong_audience"],
    ),
]


@pytest.mark.parametrize(
    ("payload", "grant", "settings", "status", "expected"),
    [c[1:] for c in JWT_CASES],
    ids=[c[0] for c in JWT_CASES],
)
def test_jwt_token(
    payload: dict[str, Any],
    grant: Grant,
    settings: dict[str, Any],
    status: Status,
    expected: list[str],
) -> None:
    result = scope.run(target(**settings), context(jwt_token(payload, grant)))
    assert (result.status, codes(result)) == (status, expected)


def test_jwt_summary_says_unverified() -> None:
    result = scope.run(target(), context(jwt_token(EXCHANGE_V1)))
    assert "signature not verified" in result.summary
    assert "https://outlook.office.com" in result.summary
    assert result.facts["signature_verified"] is False


def test_jwt_problem_summary_says_unverified() -> None:
    result = scope.run(target(), context(jwt_token(GRAPH_V1)))
    assert "signature not verified" in result.summary
    assert result.summary.startswith("Access token is for 00000003-0000-0000-c000-000000000000")


def test_jwt_facts() -> None:
    result = scope.run(target(), context(jwt_token(EXCHANGE_V1)))
    assert result.facts["token_kind"] == "jwt"
    assert result.facts["audience"] == "https://outlook.office.com"
    assert result.facts["scopes"] == ["SMTP.Send"]
    assert result.facts["token_user"] == "alice@contoso.com"
    assert result.facts["exp"] == datetime.fromtimestamp(T + 3000, UTC).isoformat()


OPAQUE_CASES = [
    ("google full mail", ("https://mail.google.com/",), Status.OK, []),
    (
        "google gmail.send",
        ("https://www.googleapis.com/auth/gmail.send",),
        Status.CRITICAL,
        ["scope.missing"],
    ),
    ("no scope in response", None, Status.OK, ["scope.unverifiable"]),
]


@pytest.mark.parametrize(
    ("scopes", "status", "expected"),
    [c[1:] for c in OPAQUE_CASES],
    ids=[c[0] for c in OPAQUE_CASES],
)
def test_opaque_token(scopes: tuple[str, ...] | None, status: Status, expected: list[str]) -> None:
    result = scope.run(target("google", "alice@gmail.com"), context(opaque_token(scopes)))
    assert (result.status, codes(result)) == (status, expected)


def test_opaque_expired() -> None:
    token = opaque_token(("https://mail.google.com/",), expires_in=-5)
    result = scope.run(target("google", "alice@gmail.com"), context(token))
    assert codes(result) == ["scope.token_expired"]


def test_profile_from_host() -> None:
    token = opaque_token(("https://www.googleapis.com/auth/gmail.send",))
    result = scope.run(target(None, "alice@gmail.com"), context(token))
    assert codes(result) == ["scope.missing"]
    assert result.facts["provider"] == "google"


def test_unverifiable_mentions_introspect() -> None:
    result = scope.run(target("google", "alice@gmail.com"), context(opaque_token(None)))
    assert "--introspect" in result.findings[0].fix
    assert "tokeninfo" in result.findings[0].cause


class Endpoint:
    """A loopback introspection endpoint that replies with a set body."""

    def __init__(self) -> None:
        self.status = 200
        self.body: dict[str, Any] = {}
        self.forms: list[bytes] = []


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Endpoint]]:
    state = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.forms.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            data = json.dumps(state.body).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


INTROSPECTION_CASES = [
    (
        "tokeninfo correct",
        "/tokeninfo",
        200,
        {"scope": "https://mail.google.com/", "expires_in": "3000", "email": "alice@gmail.com"},
        [],
    ),
    (
        "tokeninfo gmail.send",
        "/tokeninfo",
        200,
        {"scope": "https://www.googleapis.com/auth/gmail.send", "expires_in": "3000"},
        ["scope.missing"],
    ),
    (
        "tokeninfo invalid",
        "/tokeninfo",
        400,
        {"error": "invalid_token", "error_description": "Invalid Value"},
        ["scope.token_inactive"],
    ),
    ("rfc7662 inactive", "/introspect", 200, {"active": False}, ["scope.token_inactive"]),
    (
        "rfc7662 bad client",
        "/introspect",
        401,
        {"error": "invalid_client"},
        ["scope.introspection_failed"],
    ),
]


@pytest.mark.parametrize(
    ("path", "status", "body", "expected"),
    [c[1:] for c in INTROSPECTION_CASES],
    ids=[c[0] for c in INTROSPECTION_CASES],
)
def test_introspection(
    endpoint: tuple[str, Endpoint],
    path: str,
    status: int,
    body: dict[str, Any],
    expected: list[str],
) -> None:
    base, state = endpoint
    state.status, state.body = status, body
    settings: dict[str, Any] = {"introspect": True, "introspection_endpoint": base + path}
    result = scope.run(target("google", "alice@gmail.com", **settings), context(opaque_token(None)))
    assert codes(result) == expected
    assert len(state.forms) == 1


def test_introspection_facts(endpoint: tuple[str, Endpoint]) -> None:
    base, state = endpoint
    state.body = {"scope": "https://mail.google.com/", "expires_in": "3000"}
    settings: dict[str, Any] = {"introspect": True, "introspection_endpoint": base + "/tokeninfo"}
    result = scope.run(target("google", "alice@gmail.com", **settings), context(opaque_token(None)))
    assert result.facts["introspection"]["active"] is True
    assert result.facts["introspection"]["scopes"] == ["https://mail.google.com/"]


OPAQUE_SUMMARY_CASES = [
    pytest.param(
        None,
        {"active": True, "scope": "https://mail.google.com/", "username": "alice@gmail.com"},
        "opaque token grants https://mail.google.com/ (introspection)",
        id="introspection-scopes",
    ),
    pytest.param(
        ("https://mail.google.com/", "openid"),
        {"active": True, "scope": "https://mail.google.com/"},
        "opaque token grants https://mail.google.com/ (introspection)",
        id="introspection-before-response",
    ),
    pytest.param(
        None,
        {"active": True, "username": "alice@gmail.com"},
        "opaque token is active, and introspection reports no scopes",
        id="introspection-without-scope",
    ),
    pytest.param(
        ("https://mail.google.com/",),
        None,
        "opaque token grants https://mail.google.com/ (token response)",
        id="response-scopes",
    ),
]


@pytest.mark.parametrize(("scopes", "body", "summary"), OPAQUE_SUMMARY_CASES)
def test_opaque_summary_names_scope_source(
    endpoint: tuple[str, Endpoint],
    scopes: tuple[str, ...] | None,
    body: dict[str, Any] | None,
    summary: str,
) -> None:
    base, state = endpoint
    settings: dict[str, Any] = {}
    if body is not None:
        state.body = body
        settings = {"introspect": True, "introspection_endpoint": base + "/introspect"}
    result = scope.run(
        target("google", "alice@gmail.com", **settings), context(opaque_token(scopes))
    )
    assert (result.status, codes(result)) == (Status.OK, [])
    assert result.summary == summary


def test_jwt_inactive_by_introspection(endpoint: tuple[str, Endpoint]) -> None:
    base, state = endpoint
    state.body = {"active": False}
    settings: dict[str, Any] = {"introspect": True, "introspection_endpoint": base + "/introspect"}
    result = scope.run(target(**settings), context(jwt_token(EXCHANGE_V1)))
    assert codes(result) == ["scope.token_inactive"]


def test_introspection_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings: dict[str, Any] = {
        "introspect": True,
        "introspection_endpoint": f"http://127.0.0.1:{port}/i",
    }
    result = scope.run(target("google", "alice@gmail.com", **settings), context(opaque_token(None)))
    assert (result.status, codes(result)) == (Status.WARNING, ["scope.introspection_failed"])
    assert "refused" in result.findings[0].title


def test_introspection_without_endpoint() -> None:
    token = opaque_token(("https://outlook.office.com/SMTP.Send",))
    result = scope.run(target("microsoft", introspect=True), context(token))
    assert codes(result) == ["scope.introspection_failed"]
    assert "no introspection_endpoint" in result.findings[0].facts["reason"]


def test_token_never_in_result(endpoint: tuple[str, Endpoint]) -> None:
    base, state = endpoint
    state.body = {"active": False}
    jwt = jwt_token({**GRAPH_V1, "exp": T - 1})
    settings: dict[str, Any] = {"introspect": True, "introspection_endpoint": base + "/introspect"}
    results = [
        scope.run(target(user="bob@contoso.com", **settings), context(jwt)),
        scope.run(target("google", "x@gmail.com", **settings), context(opaque_token(None))),
    ]
    text = json.dumps([result.to_dict() for result in results])
    value = jwt.value.reveal()
    assert value not in text
    assert value.split(".")[2] not in text
    assert OPAQUE not in text
