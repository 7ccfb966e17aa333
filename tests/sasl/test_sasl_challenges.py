"""Parsing 334 challenges: Google and RFC 7628 error JSON, damage repair, LOGIN prompts."""

from __future__ import annotations

import base64
import json

import pytest

from smtpdiag.sasl import Challenge, ChallengeDamage, ChallengeShape, parse_challenge

# Google's XOAUTH2 protocol page; the base64 ends in "K", a newline inside the JSON text.
GOOGLE_DOC = (
    "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoi"
    "aHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K"
)
# Gmail's challenge for a rejected token as reported by client users (not in Google's docs):
# status "400" and scheme "Bearer".
GMAIL_400 = (
    "eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xl"
    "LmNvbS8ifQ=="
)
# RFC 7628 section 4.4 (SMTP failure).
RFC_4_4 = {"status": "invalid_token", "schemes": "bearer mac", "scope": "https://mail.example.com/"}
# RFC 7628 section 3.2.2 fields, with the insufficient_scope code of RFC 6750 section 3.1.
RFC_SCOPE = {
    "status": "insufficient_scope",
    "scope": "https://mail.example.com/",
    "openid-configuration": "https://example.com/.well-known/openid-configuration",
}


def b64_json(value: object) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def test_google_doc_payload() -> None:
    expected = {"status": "401", "schemes": "bearer mac", "scope": "https://mail.google.com/"}
    assert parse_challenge(GOOGLE_DOC).payload == expected


def test_google_doc_trailing_newline_damage() -> None:
    assert parse_challenge(GOOGLE_DOC).damage == (ChallengeDamage.TRAILING_NEWLINE,)


@pytest.mark.parametrize(
    ("text", "shape", "status", "scope", "schemes"),
    [
        pytest.param(
            GOOGLE_DOC,
            ChallengeShape.GOOGLE,
            "401",
            "https://mail.google.com/",
            "bearer mac",
            id="google-doc-401",
        ),
        pytest.param(
            GMAIL_400,
            ChallengeShape.GOOGLE,
            "400",
            "https://mail.google.com/",
            "Bearer",
            id="gmail-400",
        ),
        pytest.param(
            b64_json(RFC_4_4),
            ChallengeShape.RFC7628,
            "invalid_token",
            "https://mail.example.com/",
            "bearer mac",
            id="rfc7628-4.4",
        ),
        pytest.param(
            b64_json(RFC_SCOPE),
            ChallengeShape.RFC7628,
            "insufficient_scope",
            "https://mail.example.com/",
            None,
            id="insufficient-scope",
        ),
        pytest.param(
            b64_json({"status": 401, "scope": "s"}),
            ChallengeShape.GOOGLE,
            "401",
            "s",
            None,
            id="numeric-status",
        ),
        pytest.param(
            b64_json({"status": "Not Allowed"}), None, "Not Allowed", None, None, id="odd-status"
        ),
        pytest.param(b64_json({"scope": "s"}), None, None, "s", None, id="no-status"),
    ],
)
def test_challenge_fields(
    text: str,
    shape: ChallengeShape | None,
    status: str | None,
    scope: str | None,
    schemes: str | None,
) -> None:
    challenge = parse_challenge(text)
    assert challenge.shape == shape
    assert challenge.status == status
    assert challenge.scope == scope
    assert challenge.schemes == schemes
    assert challenge.problem is None


def test_openid_configuration() -> None:
    challenge = parse_challenge(b64_json(RFC_SCOPE))
    assert challenge.openid_configuration == RFC_SCOPE["openid-configuration"]


def test_clean_challenge_has_no_damage() -> None:
    assert parse_challenge(GMAIL_400).damage == ()


@pytest.mark.parametrize(
    ("text", "damage", "status"),
    [
        pytest.param(
            GMAIL_400.rstrip("="), (ChallengeDamage.MISSING_PADDING,), "400", id="no-padding"
        ),
        pytest.param(
            GMAIL_400[:40] + "\r\n " + GMAIL_400[40:],
            (ChallengeDamage.WHITESPACE,),
            "400",
            id="wrapped",
        ),
        # The "?>" at the end of the scope makes the URL-safe encoding contain "-".
        pytest.param(
            base64.urlsafe_b64encode(b'{"status":"401","scope":"https://mail.google.com/?>"}')
            .decode()
            .rstrip("="),
            (ChallengeDamage.MISSING_PADDING, ChallengeDamage.URL_SAFE),
            "401",
            id="url-safe-unpadded",
        ),
    ],
)
def test_damage_repaired(text: str, damage: tuple[ChallengeDamage, ...], status: str) -> None:
    challenge = parse_challenge(text)
    assert challenge.damage == damage
    assert challenge.status == status


@pytest.mark.parametrize("text", ["", " ", "\r\n"], ids=["nothing", "space", "crlf"])
def test_empty_challenge(text: str) -> None:
    assert parse_challenge(text) == Challenge(empty=True)


def test_login_prompt() -> None:
    challenge = parse_challenge("VXNlcm5hbWU6")
    assert challenge.text == "Username:"
    assert challenge.payload is None
    assert challenge.problem is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("<html>not base64</html>", "not base64", id="garbage"),
        pytest.param("QUJDR", "length", id="bad-length"),
        pytest.param(base64.b64encode(b"\xff\xfe\x00").decode(), "UTF-8", id="binary"),
        pytest.param(base64.b64encode(b'{"status": "401"').decode(), "not valid JSON", id="cut"),
        pytest.param(base64.b64encode(b"[1, 2]").decode(), "not an object", id="json-array"),
        pytest.param(base64.b64encode(b"abc\x07").decode(), "control", id="control-char"),
    ],
)
def test_undecodable_challenge(text: str, reason: str) -> None:
    challenge = parse_challenge(text)
    assert challenge.payload is None
    assert reason in (challenge.problem or "")
