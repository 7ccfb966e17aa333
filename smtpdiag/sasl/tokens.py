"""Describe OAuth access tokens without showing them: kind, length and readable JWT parts.

A JWT (RFC 7519) is three base64url parts joined by dots, and its header and payload are
JSON objects. Microsoft access tokens are often JWTs but not always, and Google's ``ya29.``
tokens are opaque.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from smtpdiag.redact import REDACTOR

_BASE64URL = re.compile(r"[A-Za-z0-9_\-]*")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

# Prefixes of documented sample tokens: Google's XOAUTH2 page shows an access token starting
# "ya29.", and Microsoft's Exchange OAuth page shows one starting "EwB".
_KNOWN_TOKEN_PREFIXES = ("ya29.", "EwB")

GENERIC_TOKEN_MIN_LENGTH = 40
"""Shorter single words without a known prefix are not taken for tokens (user names, words)."""


class TokenKind(StrEnum):
    """Format of an access token as far as it can be seen from outside."""

    JWT = "jwt"
    OPAQUE = "opaque"


@dataclass(frozen=True)
class TokenDescription:
    """Public facts about a token: its kind and its length in characters."""

    kind: TokenKind
    length: int


def describe_token(token: str) -> TokenDescription:
    """Describe ``token`` by kind and length, and register it with the redactor."""
    REDACTOR.register(token)
    kind = TokenKind.JWT if _jwt_header(token) is not None else TokenKind.OPAQUE
    return TokenDescription(kind, len(token))


def jwt_claims(token: str) -> Mapping[str, Any] | None:
    """Decode the header and payload of a JWT, never its signature.

    Returns ``{"header": {...}, "payload": {...}}``, or None when ``token`` is not a JWT whose
    header and payload are both JSON objects. The signature is not verified.
    """
    REDACTOR.register(token)
    header = _jwt_header(token)
    if header is None:
        return None
    payload = _json_object(token.split(".")[1])
    if payload is None:
        return None
    return {"header": header, "payload": payload}


def looks_like_token(text: str) -> bool:
    """Tell whether ``text`` is shaped like a bare bearer token rather than a word or a name."""
    if _TOKEN68.fullmatch(text) is None:
        return False
    if text.startswith(_KNOWN_TOKEN_PREFIXES) or len(text) >= GENERIC_TOKEN_MIN_LENGTH:
        return True
    return _jwt_header(text) is not None


def _jwt_header(token: str) -> dict[str, Any] | None:
    """Return the decoded JOSE header when ``token`` has the three-part JWT shape."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        return None
    if not all(_BASE64URL.fullmatch(part) for part in parts):
        return None
    return _json_object(parts[0])


def _json_object(part: str) -> dict[str, Any] | None:
    """Decode one unpadded base64url JWT part that contains a JSON object."""
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    # RFC 7515 headers and RFC 7519 claim sets are JSON objects: the text starts with '{"'.
    if not text.lstrip().startswith('{"'):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
