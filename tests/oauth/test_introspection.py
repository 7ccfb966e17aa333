"""Introspection: RFC 7662 and Google tokeninfo replies, read from a loopback HTTP server."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from smtpdiag.models import Severity
from smtpdiag.oauth.claims import Expectations
from smtpdiag.oauth.http import EndpointError
from smtpdiag.oauth.introspection import (
    IntrospectionError,
    ReplyShape,
    introspect,
    is_tokeninfo,
    judge,
    parse_reply,
)
from smtpdiag.oauth.model import Grant, HttpReply
from smtpdiag.oauth.profiles import get_profile
from smtpdiag.secrets import Secret

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
TOKEN = "ya29.a0AfB_byC-opaque-access-token-for-tests-0123456789"

# RFC 7662 section 2.2 example reply, with times moved around NOW.
RFC7662_ACTIVE = {
    "active": True,
    "client_id": "l238j323ds-23ij4",
    "username": "jdoe",
    "scope": "read write dolphin",
    "sub": "Z5O3upPC88QrAjx00dis",
    "aud": "https://protected.example.net/resource",
    "iss": "https://server.example.com/",
    "exp": T + 3000,
    "iat": T - 600,
    "extension_field": "twenty-seven",
}
RFC7662_INACTIVE = {"active": False}
# Google tokeninfo for an access token: exp and expires_in come as strings; ids are made up.
GOOGLE_TOKENINFO = {
    "azp": "1234567890-abc.apps.googleusercontent.com",
    "aud": "1234567890-abc.apps.googleusercontent.com",
    "sub": "110248495921238986420",
    "scope": "https://mail.google.com/",
    "exp": str(T + 3599),
    "expires_in": "3599",
    "email": "alice@gmail.com",
    "email_verified": "true",
    "access_type": "offline",
}
GOOGLE_INVALID = {"error": "invalid_token", "error_description": "Invalid Value"}
INVALID_CLIENT = {"error": "invalid_client", "error_description": "Client authentication failed"}


def reply(status: int, body: Any, content_type: str = "application/json") -> HttpReply:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpReply(status, "", {"content-type": content_type}, data, False, 0.01)


PARSE_CASES = [
    ("rfc7662 active", reply(200, RFC7662_ACTIVE), ReplyShape.RFC7662, True),
    ("rfc7662 inactive", reply(200, RFC7662_INACTIVE), ReplyShape.RFC7662, False),
    ("rfc7662 active as text", reply(200, {"active": "true"}), ReplyShape.RFC7662, False),
    ("tokeninfo", reply(200, GOOGLE_TOKENINFO), ReplyShape.TOKENINFO, True),
    ("tokeninfo invalid", reply(400, GOOGLE_INVALID), ReplyShape.TOKENINFO, False),
]


@pytest.mark.parametrize(
    ("http_reply", "shape", "active"), [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES]
)
def test_parse_shapes(http_reply: HttpReply, shape: ReplyShape, active: bool) -> None:
    result = parse_reply(http_reply, "https://idp.example.com/introspect", NOW)
    assert (result.shape, result.active) == (shape, active)


def test_parse_rfc7662_fields() -> None:
    result = parse_reply(reply(200, RFC7662_ACTIVE), "https://idp.example.com/i", NOW)
    assert result.scopes == ("read", "write", "dolphin")
    assert result.user == "jdoe"
    assert result.expires == float(T + 3000)
    assert result.audiences == ("https://protected.example.net/resource",)
    assert result.client_id == "l238j323ds-23ij4"


def test_parse_tokeninfo_fields() -> None:
    result = parse_reply(reply(200, GOOGLE_TOKENINFO), "https://g.example/tokeninfo", NOW)
    assert result.scopes == ("https://mail.google.com/",)
    assert result.user == "alice@gmail.com"
    assert result.user_field == "email"
    assert result.expires == float(T + 3599)


def test_parse_tokeninfo_expires_in_only() -> None:
    body = {"scope": "https://mail.google.com/", "expires_in": "120"}
    result = parse_reply(reply(200, body), "https://g.example/tokeninfo", NOW)
    assert result.expires == float(T + 120)


FAILED_CASES = [
    ("invalid client", reply(401, INVALID_CLIENT), "invalid_client", 401),
    ("html error page", reply(502, b"<html>Bad Gateway</html>", "text/html"), "text/html", 502),
    ("json list", reply(200, [1, 2]), "not a JSON object", 200),
    ("unrelated json", reply(200, {"hello": "world"}), "without an active field", 200),
    ("not utf-8", reply(200, b"\xff\xfe{", "application/json"), "not a JSON object", 200),
]


@pytest.mark.parametrize(
    ("http_reply", "words", "status"),
    [c[1:] for c in FAILED_CASES],
    ids=[c[0] for c in FAILED_CASES],
)
def test_unusable_replies(http_reply: HttpReply, words: str, status: int) -> None:
    with pytest.raises(IntrospectionError) as caught:
        parse_reply(http_reply, "https://idp.example.com/introspect", NOW)
    assert words in caught.value.reason
    assert caught.value.http_status == status


GOOGLE = Expectations(get_profile("google"), Grant.REFRESH_TOKEN, "alice@gmail.com", None)
GENERIC = Expectations(get_profile("generic"), Grant.REFRESH_TOKEN, "jdoe@example.com", None)

JUDGE_CASES = [
    ("tokeninfo correct", GOOGLE_TOKENINFO, GOOGLE, []),
    (
        "tokeninfo gmail.send",
        {**GOOGLE_TOKENINFO, "scope": "https://www.googleapis.com/auth/gmail.send"},
        GOOGLE,
        ["scope.missing"],
    ),
    (
        "tokeninfo other account",
        {**GOOGLE_TOKENINFO, "email": "bob@gmail.com"},
        GOOGLE,
        ["scope.user_mismatch"],
    ),
    ("tokeninfo invalid", GOOGLE_INVALID, GOOGLE, ["scope.token_inactive"]),
    ("rfc7662 inactive", RFC7662_INACTIVE, GENERIC, ["scope.token_inactive"]),
    ("rfc7662 plain username", RFC7662_ACTIVE, GENERIC, []),
    (
        "rfc7662 address username",
        {**RFC7662_ACTIVE, "username": "other@example.com"},
        GENERIC,
        ["scope.user_mismatch"],
    ),
    ("rfc7662 expired", {**RFC7662_ACTIVE, "exp": T - 1}, GENERIC, ["scope.token_expired"]),
]


@pytest.mark.parametrize(
    ("body", "expectations", "codes"), [c[1:] for c in JUDGE_CASES], ids=[c[0] for c in JUDGE_CASES]
)
def test_judge(body: dict[str, Any], expectations: Expectations, codes: list[str]) -> None:
    status = 400 if "error" in body else 200
    result = parse_reply(reply(status, body), "https://idp.example.com/tokeninfo", NOW)
    assert [finding.code for finding in judge(result, expectations, NOW)] == codes


def test_inactive_finding_text() -> None:
    result = parse_reply(reply(200, RFC7662_INACTIVE), "https://idp.example.com/i", NOW)
    [finding] = judge(result, GENERIC, NOW)
    assert '"active": false' in finding.cause
    assert finding.severity is Severity.CRITICAL
    assert finding.facts["active"] is False
    assert finding.facts["introspection_endpoint"] == "https://idp.example.com/i"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://oauth2.googleapis.com/tokeninfo", True),
        ("https://www.googleapis.com/oauth2/v3/tokeninfo", True),
        ("https://idp.example.com/oauth2/introspect", False),
        ("https://[::1", False),
    ],
)
def test_is_tokeninfo(url: str, expected: bool) -> None:
    assert is_tokeninfo(url) is expected


@dataclass
class Recorded:
    """Requests seen by the loopback endpoint and the reply it sends."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    forms: list[dict[str, list[str]]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Recorded]]:
    recorded = Recorded()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            recorded.paths.append(self.path)
            recorded.forms.append(parse_qs(self.rfile.read(length).decode()))
            recorded.authorizations.append(self.headers.get("Authorization"))
            data = json.dumps(recorded.body).encode()
            self.send_response(recorded.status)
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
        yield f"http://127.0.0.1:{server.server_port}", recorded
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_rfc7662_request(endpoint: tuple[str, Recorded]) -> None:
    base, recorded = endpoint
    recorded.body = RFC7662_ACTIVE
    secret = Secret("s3cr3t+value/=", "test")
    result = introspect(
        f"{base}/oauth2/introspect",
        Secret(TOKEN, "test"),
        now=NOW,
        timeout=5.0,
        client_id="relay app",
        client_secret=secret,
    )
    assert result.shape is ReplyShape.RFC7662
    assert recorded.paths == ["/oauth2/introspect"]
    assert recorded.forms == [{"token": [TOKEN], "token_type_hint": ["access_token"]}]
    expected = base64.b64encode(b"relay+app:s3cr3t%2Bvalue%2F%3D").decode()
    assert recorded.authorizations == [f"Basic {expected}"]


def test_public_client_request(endpoint: tuple[str, Recorded]) -> None:
    base, recorded = endpoint
    recorded.body = RFC7662_ACTIVE
    introspect(f"{base}/introspect", Secret(TOKEN, "test"), now=NOW, timeout=5.0, client_id="c1")
    assert recorded.forms[0]["client_id"] == ["c1"]
    assert recorded.authorizations == [None]


def test_tokeninfo_request(endpoint: tuple[str, Recorded]) -> None:
    base, recorded = endpoint
    recorded.body = GOOGLE_TOKENINFO
    result = introspect(
        f"{base}/tokeninfo",
        Secret(TOKEN, "test"),
        now=NOW,
        timeout=5.0,
        client_id="c1",
        client_secret=Secret("client-secret-value", "test"),
    )
    assert result.shape is ReplyShape.TOKENINFO
    assert recorded.forms == [{"access_token": [TOKEN]}]
    assert recorded.authorizations == [None]


def test_token_not_in_url(endpoint: tuple[str, Recorded]) -> None:
    base, recorded = endpoint
    recorded.body = GOOGLE_TOKENINFO
    introspect(f"{base}/tokeninfo", Secret(TOKEN, "test"), now=NOW, timeout=5.0)
    assert TOKEN not in recorded.paths[0]


def test_tokeninfo_invalid_over_wire(endpoint: tuple[str, Recorded]) -> None:
    base, recorded = endpoint
    recorded.status, recorded.body = 400, GOOGLE_INVALID
    result = introspect(f"{base}/tokeninfo", Secret(TOKEN, "test"), now=NOW, timeout=5.0)
    assert (result.active, result.error, result.http_status) == (False, "invalid_token", 400)


def test_unreachable_endpoint() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(EndpointError) as caught:
        introspect(f"http://127.0.0.1:{port}/introspect", Secret(TOKEN, "t"), now=NOW, timeout=2.0)
    assert "refused" in caught.value.reason
    assert TOKEN not in caught.value.reason


def test_plain_http_elsewhere_rejected() -> None:
    with pytest.raises(ValueError, match="plain http"):
        introspect("http://idp.example.com/introspect", Secret(TOKEN, "t"), now=NOW, timeout=1.0)


def test_facts_hold_no_token() -> None:
    result = parse_reply(reply(200, GOOGLE_TOKENINFO), "https://g.example/tokeninfo", NOW)
    findings = judge(result, GOOGLE, NOW)
    text = json.dumps([result.facts(), *[finding.to_dict() for finding in findings]])
    assert TOKEN not in text
