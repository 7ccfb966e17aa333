"""Parse the base64 text of a ``334`` server challenge, above all the JSON error of a failed AUTH.

Google's XOAUTH2 sends ``{"status":"401","schemes":"bearer mac","scope":"..."}`` with an
HTTP-like status. RFC 7628 section 3.2.2 defines ``status`` as an OAuth error code such as
``invalid_token``, with optional ``scope`` and ``openid-configuration``. Servers and proxies
damage the base64 in small ways, so decoding is lenient and records each repair.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from smtpdiag.sasl.lenient_base64 import Base64Decoding, decode_lenient

_HTTP_STATUS = re.compile(r"[1-5][0-9][0-9]")
# OAuth error codes in the IANA registry are lower-case words joined by "_".
_OAUTH_ERROR_CODE = re.compile(r"[a-z]+(?:_[a-z]+)*")


class ChallengeShape(StrEnum):
    """Dialect of a JSON error challenge, recognized by its ``status`` value."""

    GOOGLE = "google"
    """``status`` is an HTTP-like number as a string, e.g. "400" or "401"."""
    RFC7628 = "rfc7628"
    """``status`` is an OAuth error code, e.g. "invalid_token"."""


class ChallengeDamage(StrEnum):
    """Deviation from clean base64 JSON that the parser repaired."""

    MISSING_PADDING = "missing padding"
    TRAILING_NEWLINE = "trailing newline in JSON"
    WHITESPACE = "whitespace inside base64"
    URL_SAFE = "URL-safe alphabet"


@dataclass(frozen=True)
class Challenge:
    """Decoded content of one server challenge."""

    empty: bool
    """The challenge is ``334 `` with nothing after it: the server waits for the response."""
    payload: Mapping[str, Any] | None = field(default=None, hash=False)
    """Decoded JSON object, or None when the challenge is not JSON."""
    shape: ChallengeShape | None = None
    """Dialect of the JSON error, or None when ``status`` fits neither."""
    status: str | None = None
    """``status`` member, as a string, or None when absent."""
    scope: str | None = None
    """``scope`` member: the scope the token needs, or None when absent."""
    schemes: str | None = None
    """``schemes`` member (Google, and the RFC 7628 section 4.4 example), or None when absent."""
    openid_configuration: str | None = None
    """``openid-configuration`` member: URL of the discovery document, or None when absent."""
    damage: tuple[ChallengeDamage, ...] = ()
    text: str | None = None
    """Decoded text when it is not JSON, e.g. the LOGIN prompt ``Username:``."""
    problem: str | None = None
    """Reason the challenge could not be decoded, or None when it was."""


def parse_challenge(text: str) -> Challenge:
    """Parse the base64 text after ``334 `` (possibly empty) of a server challenge."""
    if not text.strip():
        return Challenge(empty=True)

    decoding = decode_lenient(text)
    damage = _base64_damage(decoding)
    if decoding.data is None:
        return Challenge(
            False, damage=damage, problem=f"The challenge is not base64: {decoding.problem}."
        )
    if not decoding.data:
        return Challenge(True, damage=damage)

    try:
        decoded = decoding.data.decode("utf-8")
    except UnicodeDecodeError:
        return Challenge(False, damage=damage, problem="The decoded challenge is not UTF-8 text.")
    if decoded.lstrip().startswith(("{", "[")):
        return _from_json(decoded, damage)
    if not all(char.isprintable() or char in "\t\r\n" for char in decoded):
        return Challenge(
            False, damage=damage, problem="The decoded challenge contains control characters."
        )
    return Challenge(False, damage=damage, text=decoded)


def _from_json(decoded: str, damage: tuple[ChallengeDamage, ...]) -> Challenge:
    if decoded.endswith("\n"):
        # Google's documented example carries this newline inside the base64.
        damage = (*damage, ChallengeDamage.TRAILING_NEWLINE)
    try:
        payload = json.loads(decoded)
    except (ValueError, RecursionError) as error:
        return Challenge(
            False, damage=damage, text=decoded, problem=f"The challenge is not valid JSON: {error}."
        )
    if not isinstance(payload, dict):
        return Challenge(
            False, damage=damage, text=decoded, problem="The challenge is JSON but not an object."
        )

    status = _status(payload.get("status"))
    return Challenge(
        False,
        payload=payload,
        shape=_shape(status),
        status=status,
        scope=_string(payload.get("scope")),
        schemes=_string(payload.get("schemes")),
        openid_configuration=_string(payload.get("openid-configuration")),
        damage=damage,
    )


def _base64_damage(decoding: Base64Decoding) -> tuple[ChallengeDamage, ...]:
    flags = (
        (decoding.whitespace_inside, ChallengeDamage.WHITESPACE),
        (decoding.padding_added, ChallengeDamage.MISSING_PADDING),
        (decoding.url_safe, ChallengeDamage.URL_SAFE),
    )
    return tuple(damage for present, damage in flags if present)


def _status(value: object) -> str | None:
    """Return ``status`` as a string, also when it is a JSON number such as 401."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return _string(value)


def _shape(status: str | None) -> ChallengeShape | None:
    if status is None:
        return None
    if _HTTP_STATUS.fullmatch(status):
        return ChallengeShape.GOOGLE
    if _OAUTH_ERROR_CODE.fullmatch(status):
        return ChallengeShape.RFC7628
    return None


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def reportable_damage(challenge: Challenge) -> list[str]:
    """Return the challenge's damage worth a finding.

    A newline after the JSON is left out: Google's own documented challenge ends with one,
    so clients must tolerate it and it points at no fault.
    """
    return [
        str(damage) for damage in challenge.damage if damage != ChallengeDamage.TRAILING_NEWLINE
    ]
