"""Classification of 334 challenges during an OAuth2 AUTH, and of the client's response to them.

An empty ``334 `` requests the token. A ``334`` with base64 JSON is an error challenge in one
of two shapes: Google's XOAUTH2 form carries an HTTP-like ``status`` ("401", "400") with
``schemes`` and ``scope``; RFC 7628 §3.2.2 carries an OAuth error code (``invalid_token``,
``insufficient_scope``, ``invalid_request``) with optional ``scope`` and
``openid-configuration``. After either, the client must send one dummy line before the
server sends its final reply (RFC 7628 §3.2.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smtpdiag.knowledge import kinds_client as client
from smtpdiag.spec import FindingKind

NOT_NAMED = "(not named by the server)"
"""Detail value for a field that the challenge does not carry."""

_STATUS_KINDS = {
    "401": client.TOKEN_REJECTED,
    "invalid_token": client.TOKEN_REJECTED,
    "insufficient_scope": client.INSUFFICIENT_SCOPE,
    "invalid_request": client.INVALID_REQUEST,
}

# Lines that end the exchange as RFC 7628 §3.2.3 and RFC 4954 §4 allow: the XOAUTH2 empty
# line, the OAUTHBEARER 0x01 byte in base64, and the cancel line. msmtp sends an empty line for
# both mechanisms, so OAUTHBEARER accepts it too rather than flag every msmtp session.
# NOTE: whether strict RFC 7628 servers accept an empty line for OAUTHBEARER is not verified.
_DUMMY_RESPONSES = {
    "XOAUTH2": frozenset({"", "*"}),
    "OAUTHBEARER": frozenset({"AQ==", "", "*"}),
}


def classify_challenge(payload: Mapping[str, Any] | None, *, empty: bool) -> FindingKind | None:
    """Return the finding kind for a 334 challenge, or None for one that is not an error.

    ``empty`` is true for a ``334`` without text, which after AUTH XOAUTH2 or OAUTHBEARER
    means the server waits for the token. ``payload`` is the decoded JSON object of an error
    challenge, or None when there is none. Google's "400" means a missing scope only when the
    challenge names one. An unknown or missing status still means the server rejected the
    token, so it gives ``auth.token_rejected`` with the status shown in its title.
    """
    if empty:
        return client.TOKEN_MISSING
    if payload is None:
        return None

    status = _status(payload)
    if status == "400":
        return client.INSUFFICIENT_SCOPE if _text(payload.get("scope")) else client.TOKEN_REJECTED
    return _STATUS_KINDS.get(status, client.TOKEN_REJECTED)


def details_for_challenge(payload: Mapping[str, Any] | None) -> dict[str, str]:
    """Return the ``{status}``, ``{scope}`` and ``{schemes}`` fields for a challenge's kind."""
    payload = payload or {}
    return {
        "status": _status(payload) or NOT_NAMED,
        "scope": _text(payload.get("scope")) or NOT_NAMED,
        "schemes": _text(payload.get("schemes")) or NOT_NAMED,
    }


def classify_challenge_response(mechanism: str, response: str) -> FindingKind | None:
    """Return ``auth.challenge_unanswered`` when the client's line after an error challenge
    is not a dummy response for ``mechanism``, else None.

    ``response`` is the client's line without its line ending. A mechanism other than XOAUTH2
    and OAUTHBEARER returns None, because only these two send error challenges.
    """
    expected = _DUMMY_RESPONSES.get(mechanism.strip().upper())
    if expected is None or response.strip() in expected:
        return None
    return client.CHALLENGE_UNANSWERED


def _status(payload: Mapping[str, Any]) -> str:
    """Return the status as text: Google sends the string "401", another server may send 401."""
    return _text(payload.get("status"))


def _text(value: Any) -> str:
    """Return a JSON scalar as stripped text, or an empty string for null and containers."""
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()
