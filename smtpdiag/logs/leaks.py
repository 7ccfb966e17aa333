"""Detection of OAuth2 secrets written to log lines: SASL responses, tokens, client secrets.

``find_leaks`` runs on every candidate line, so it first checks with ``in`` for the words a
secret needs and runs a regex only for lines that contain one.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from collections.abc import Sequence
from dataclasses import dataclass

MASK = "[secret]"
"""What ``mask_leaks`` puts in place of a secret."""

MIN_SECRET_LENGTH = 8
"""Shorter values of ``refresh_token=`` and similar fields are taken as placeholders."""


@dataclass(frozen=True, slots=True)
class Leak:
    """A secret found in a line; the line itself is not kept."""

    kind: str
    """``xoauth2_response``, ``oauthbearer_response``, ``bearer_token``, ``jwt``,
    ``google_access_token``, ``refresh_token`` or ``client_secret``."""
    start: int
    """Offset of the secret's first character in the line."""
    end: int
    """Offset after the secret's last character."""


_SASL_MARKS = ("XOAUTH2", "OAUTHBEARER", "dXNlcj", "bixh", "biws")
"""Words of lines that may hold a SASL response: the mechanism names, and the base64 forms
of ``user`` (XOAUTH2), ``n,a`` and ``n,,`` (OAUTHBEARER GS2 headers). The base64 character
after them depends on the next byte: ``user=alice`` is ``dXNlcj1h``, ``user=1`` is
``dXNlcj0x``."""
_BASE64_WORD = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{20,}={0,2}(?![A-Za-z0-9+/=])")

_FIELD = re.compile(
    r"""(?P<name>refresh_token|client_secret|access_token)"""
    r"""(?:=(?P<form>[^&\s"',;]*)"""  # URL-encoded form body or key=value
    r"""|"?\s*:\s*"(?P<json>(?:[^"\\]|\\.)*)")"""  # JSON member
)
_FIELD_KINDS = {
    "refresh_token": "refresh_token",
    "client_secret": "client_secret",
    "access_token": "bearer_token",
}
_TOKEN_CHARS = r"[A-Za-z0-9\-._~+/]"  # noqa: S105 - a character class, not a password
_BEARER = re.compile(rf"(?i:bearer)[ \t]+(?P<token>{_TOKEN_CHARS}{{16,}}=*)")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_GOOGLE_ACCESS_TOKEN = re.compile(r"ya29\.[A-Za-z0-9_\-]{20,}")
_PLACEHOLDERS = frozenset({"redacted", "removed", "hidden", "secret", "changeme", "undefined"})


def find_leaks(text: str) -> tuple[Leak, ...]:
    """Return the secrets in ``text``, ordered by position, without overlaps.

    Where spans overlap, the more specific kind wins: a SASL response over the token inside
    it, a named field (``refresh_token=``) or a JWT over a ``Bearer`` token.
    """
    leaks: list[Leak] = []
    if any(mark in text for mark in _SASL_MARKS):
        leaks += _sasl_responses(text)
    if "refresh_token" in text or "client_secret" in text or "access_token" in text:
        leaks += _fields(text)
    if "eyJ" in text:
        leaks += _matches(_JWT, text, "jwt")
    if "ya29." in text:
        leaks += _matches(_GOOGLE_ACCESS_TOKEN, text, "google_access_token")
    if "earer" in text or "EARER" in text:
        leaks += [
            Leak("bearer_token", found.start("token"), found.end("token"))
            for found in _BEARER.finditer(text)
        ]
    return _without_overlaps(leaks) if len(leaks) > 1 else tuple(leaks)


def mask_leaks(text: str, leaks: Sequence[Leak]) -> str:
    """Return ``text`` with the span of every leak replaced by ``[secret]``."""
    parts: list[str] = []
    position = 0
    for leak in sorted(leaks, key=lambda leak: leak.start):
        if leak.start < position:
            continue
        parts += (text[position : leak.start], MASK)
        position = leak.end
    parts.append(text[position:])
    return "".join(parts)


def _sasl_responses(text: str) -> list[Leak]:
    """Find base64 words that decode to an XOAUTH2 or OAUTHBEARER client response."""
    leaks: list[Leak] = []
    for found in _BASE64_WORD.finditer(text):
        word = found[0].rstrip("=")
        try:
            decoded = b64decode(word[: len(word) // 4 * 4])
        except (binascii.Error, ValueError):
            continue
        if b"auth=bearer" not in decoded.lower():
            continue
        kind = "oauthbearer_response" if decoded.startswith(b"n,") else "xoauth2_response"
        leaks.append(Leak(kind, found.start(), found.end()))
    return leaks


def _fields(text: str) -> list[Leak]:
    """Find non-empty values of ``refresh_token``, ``client_secret`` and ``access_token``."""
    leaks: list[Leak] = []
    for found in _FIELD.finditer(text):
        group = "form" if found["form"] is not None else "json"
        value = found[group]
        if _is_placeholder(value):
            continue
        leaks.append(Leak(_FIELD_KINDS[found["name"]], found.start(group), found.end(group)))
    return leaks


def _is_placeholder(value: str) -> bool:
    """Tell whether a field value is empty, a short example or a mask, not a secret."""
    if len(value) < MIN_SECRET_LENGTH:
        return True
    if value[0] in "[<*({%$" or len(set(value)) == 1:
        return True
    return value.strip("[]<>()").lower() in _PLACEHOLDERS


def _matches(pattern: re.Pattern[str], text: str, kind: str) -> list[Leak]:
    return [Leak(kind, found.start(), found.end()) for found in pattern.finditer(text)]


_PRIORITY = {
    "xoauth2_response": 0,
    "oauthbearer_response": 0,
    "refresh_token": 1,
    "client_secret": 1,
    "jwt": 2,
    "google_access_token": 3,
    "bearer_token": 4,
}


def _without_overlaps(leaks: list[Leak]) -> tuple[Leak, ...]:
    """Keep the higher-priority leak of each overlapping pair, ordered by position."""
    kept: list[Leak] = []
    for leak in sorted(leaks, key=lambda leak: (_PRIORITY[leak.kind], leak.start)):
        if all(leak.end <= other.start or leak.start >= other.end for other in kept):
            kept.append(leak)
    return tuple(sorted(kept, key=lambda leak: leak.start))
