"""classify_challenge on Google's and RFC 7628's error challenges, and the client's response."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from smtpdiag.knowledge.challenges import (
    NOT_NAMED,
    classify_challenge,
    classify_challenge_response,
    details_for_challenge,
)


def decode(challenge: str) -> dict[str, Any]:
    """Decode the base64 JSON of a 334 error challenge."""
    decoded: dict[str, Any] = json.loads(base64.b64decode(challenge))
    return decoded


# Google's XOAUTH2 documentation: decodes to
# {"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"} and a newline.
GOOGLE_DOC_401 = (
    "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3Bl"
    "IjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K"
)

CHALLENGES = [
    pytest.param(decode(GOOGLE_DOC_401), "auth.token_rejected", id="google-doc-401"),
    # Gmail as seen by clients that send an unusable token.
    pytest.param(
        {"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"},
        "auth.insufficient_scope",
        id="google-400-with-scope",
    ),
    pytest.param({"status": "400", "schemes": "Bearer"}, "auth.token_rejected", id="google-400"),
    pytest.param({"status": 401}, "auth.token_rejected", id="status-as-number"),
    # RFC 7628 section 4.4 SMTP example.
    pytest.param(
        {"status": "invalid_token", "schemes": "bearer mac", "scope": "https://mail.example.com/"},
        "auth.token_rejected",
        id="rfc7628-invalid-token",
    ),
    pytest.param(
        {"status": "insufficient_scope", "scope": "https://mail.example.com/"},
        "auth.insufficient_scope",
        id="rfc7628-insufficient-scope",
    ),
    pytest.param({"status": "insufficient_scope"}, "auth.insufficient_scope", id="no-scope"),
    pytest.param(
        {
            "status": "invalid_request",
            "openid-configuration": "https://example.com/.well-known/openid-configuration",
        },
        "auth.invalid_request",
        id="rfc7628-invalid-request",
    ),
    pytest.param({"status": "server_error"}, "auth.token_rejected", id="unknown-status"),
    pytest.param({"scope": "https://mail.google.com/"}, "auth.token_rejected", id="no-status"),
]


@pytest.mark.parametrize(("payload", "expected"), CHALLENGES)
def test_error_challenge_classified(payload: dict[str, Any], expected: str) -> None:
    kind = classify_challenge(payload, empty=False)
    assert kind is not None
    assert kind.code == expected


def test_empty_challenge_means_token_missing() -> None:
    kind = classify_challenge(None, empty=True)
    assert kind is not None
    assert kind.code == "auth.token_missing"


def test_challenge_without_payload_has_no_kind() -> None:
    assert classify_challenge(None, empty=False) is None


def test_details_for_google_challenge() -> None:
    assert details_for_challenge(decode(GOOGLE_DOC_401)) == {
        "status": "401",
        "scope": "https://mail.google.com/",
        "schemes": "bearer mac",
    }


def test_details_for_challenge_without_fields() -> None:
    assert details_for_challenge({}) == {
        "status": NOT_NAMED,
        "scope": NOT_NAMED,
        "schemes": NOT_NAMED,
    }


def test_details_ignore_non_text_values() -> None:
    details = details_for_challenge({"status": None, "scope": ["a", "b"]})
    assert details["status"] == NOT_NAMED
    assert details["scope"] == NOT_NAMED


def test_scope_title_filled_from_challenge() -> None:
    payload = {"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"}
    kind = classify_challenge(payload, empty=False)
    assert kind is not None
    finding = kind.make(details=details_for_challenge(payload))
    assert finding.title == "OAuth2 token lacks the scope https://mail.google.com/"


def test_unknown_status_shown_in_title() -> None:
    payload = {"status": "server_error"}
    kind = classify_challenge(payload, empty=False)
    assert kind is not None
    finding = kind.make(details=details_for_challenge(payload))
    assert finding.title == "Server rejected the OAuth2 token (status server_error)"


RESPONSES = [
    pytest.param("XOAUTH2", "", None, id="xoauth2-empty-line"),
    pytest.param("xoauth2", "", None, id="mechanism-lower-case"),
    pytest.param("XOAUTH2", "*", None, id="xoauth2-cancel"),
    pytest.param("XOAUTH2", "QUIT", "auth.challenge_unanswered", id="xoauth2-quit"),
    pytest.param("XOAUTH2", "RSET", "auth.challenge_unanswered", id="xoauth2-rset"),
    pytest.param("XOAUTH2", "AQ==", "auth.challenge_unanswered", id="xoauth2-oauthbearer-dummy"),
    pytest.param("OAUTHBEARER", "AQ==", None, id="oauthbearer-dummy"),
    pytest.param("OAUTHBEARER", "", None, id="oauthbearer-empty-line-as-msmtp"),
    pytest.param("OAUTHBEARER", "QUIT", "auth.challenge_unanswered", id="oauthbearer-quit"),
    pytest.param("PLAIN", "QUIT", None, id="other-mechanism"),
]


@pytest.mark.parametrize(("mechanism", "response", "expected"), RESPONSES)
def test_challenge_response(mechanism: str, response: str, expected: str | None) -> None:
    kind = classify_challenge_response(mechanism, response)
    assert (None if kind is None else kind.code) == expected
