"""Lenient base64 decoding of text pasted from transcripts, with a record of what was repaired."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

_WHITESPACE = re.compile(r"\s+")
_ALPHABET = re.compile(r"[A-Za-z0-9+/\-_]*=*")
_URL_SAFE_CHARACTERS = re.compile(r"[\-_]")
_URL_SAFE_TO_STANDARD = str.maketrans("-_", "+/")


@dataclass(frozen=True)
class Base64Decoding:
    """Result of decoding one base64 text, repaired where possible."""

    data: bytes | None
    """Decoded bytes, or None when the text cannot be decoded."""
    problem: str | None = None
    """Reason the text cannot be decoded, or None when ``data`` is set."""
    whitespace_inside: bool = False
    """Spaces or line breaks were removed from between the base64 characters."""
    padding_added: bool = False
    """The text lacked ``=`` padding and it was added."""
    url_safe: bool = False
    """The text used the URL-safe alphabet (``-`` and ``_``) of RFC 4648 section 5."""


def decode_lenient(text: str) -> Base64Decoding:
    """Decode ``text`` as base64, removing whitespace and adding padding where it is missing.

    Both the standard and the URL-safe alphabet are accepted. Whitespace between characters is
    reported, but surrounding whitespace is not.
    """
    stripped = text.strip()
    compact = _WHITESPACE.sub("", stripped)
    whitespace_inside = compact != stripped

    if not _ALPHABET.fullmatch(compact):
        return Base64Decoding(
            None, "it contains characters outside the base64 alphabet", whitespace_inside
        )

    body = compact.rstrip("=")
    if "=" in body:
        return Base64Decoding(
            None, "an '=' padding character stands before the end", whitespace_inside
        )
    if len(body) % 4 == 1:
        return Base64Decoding(
            None,
            f"its length of {len(body)} characters is impossible for base64; "
            "a character is missing or extra",
            whitespace_inside,
        )

    url_safe = _URL_SAFE_CHARACTERS.search(body) is not None
    standard = body.translate(_URL_SAFE_TO_STANDARD)
    padded = standard + "=" * (-len(standard) % 4)
    # Surplus "=" characters are dropped without a note: only missing padding is damage.
    padding_added = len(padded) > len(compact)
    try:
        data = base64.b64decode(padded, validate=True)
    except binascii.Error as error:
        return Base64Decoding(None, f"base64 decoding failed: {error}", whitespace_inside)
    return Base64Decoding(data, None, whitespace_inside, padding_added, url_safe)
