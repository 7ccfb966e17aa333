"""Detection of OAuth2 secrets written to log lines: SASL responses, tokens, client secrets.

``find_leaks`` runs on every candidate line, so it first checks with ``in`` for the words a
secret needs and runs a regex only for lines that contain one. Secrets are found in plain
text (Google's refresh tokens and client secrets by their prefixes ``1//0`` and ``GOCSPX-``),
in ``key=value``, ``key: value`` and JSON fields, in URL-encoded form bodies
(``refresh_token%3D…``, ``Bearer%20…``) and in the decoded ``MESSAGE`` of a
``journalctl -o json`` line.
"""

from __future__ import annotations

import binascii
import json
import re
from base64 import b64decode
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

MASK = "[secret]"
"""Text that ``mask_leaks`` puts in place of a secret."""

MIN_SECRET_LENGTH = 8
"""Shorter values of ``refresh_token=`` and similar fields are taken as placeholders."""


@dataclass(frozen=True, slots=True)
class Leak:
    """A secret found in a line; the line itself is not kept."""

    kind: str
    """``xoauth2_response``, ``oauthbearer_response``, ``bearer_token``, ``jwt``,
    ``google_access_token``, ``refresh_token`` (a field value, or a bare Google refresh token
    ``1//0…``) or ``client_secret`` (a field value, or a bare Google client secret
    ``GOCSPX-…``)."""
    start: int
    """Offset of the secret's first character in the line."""
    end: int
    """Offset after the secret's last character."""


_SASL_MARKS = ("XOAUTH2", "OAUTHBEARER", "dXNlcj", "bixh", "biws")
"""Words of lines that may hold a SASL response: the mechanism names, and the base64 forms
of ``user`` (XOAUTH2), ``n,a`` and ``n,,`` (OAUTHBEARER GS2 headers). The base64 character
after them depends on the next byte: ``user=alice`` is ``dXNlcj1h``, ``user=1`` is
``dXNlcj0x``."""
_BASE64_WORD = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{20,}={0,2}(?![A-Za-z0-9+/=])")
"""A base64 word of at least 20 characters; it may follow ``=`` (``set_id=dXNl…``)."""
_NEXT_BASE64_WORD = re.compile(r" ([A-Za-z0-9+/]+={0,2})(?![A-Za-z0-9+/=])")
"""A base64 word after one space: the rest of a SASL response that a log line split."""
MAX_SPLIT_WORDS = 4
"""Words after the first that one SASL response is joined from at most."""
_RESPONSE_STARTS = (b"user=", b"n,")
"""Beginnings of a decoded XOAUTH2 (``user=``) or OAUTHBEARER (GS2 header ``n,``) response."""

_FIELD = re.compile(
    r"""(?P<name>refresh_token|client_secret|access_token)"""
    r"""(?:="(?P<double>[^"]*)"|='(?P<quoted>[^']*)'"""  # logfmt or shell: key="value"
    r"""|=(?P<form>[^&\s"',;]*)"""  # URL-encoded form body or key=value
    r"""|%3[Dd](?P<encoded>(?:[^%&\s"',;]|%(?!26)[0-9A-Fa-f]{2})*)"""  # form body, encoded again
    r'|["\']?\s*:\s*(?:"(?P<json>(?:[^"\\]|\\.)*)"'  # JSON member, quoted YAML value
    r"""|'(?P<single>[^']*)'"""  # single-quoted YAML value or Python dict
    r"""|(?P<plain>[^\s"',;&}\]]+)))"""  # key: value
)
_FIELD_GROUPS = ("double", "quoted", "form", "encoded", "json", "single", "plain")
_FIELD_KINDS = {
    "refresh_token": "refresh_token",
    "client_secret": "client_secret",
    "access_token": "bearer_token",
}
_TOKEN_CHARS = r"[A-Za-z0-9\-._~+/]"  # noqa: S105 - a character class, not a password
_BEARER = re.compile(
    rf"(?i:bearer)(?:[ \t]+(?P<token>{_TOKEN_CHARS}{{16,}}=*)"
    rf"|%20(?P<encoded>(?:{_TOKEN_CHARS}|%(?!26)[0-9A-Fa-f]{{2}}){{16,}}))"
)
_TOKEN_STORE = re.compile(
    r"TokenStore::Read: refresh=(?P<refresh>[^,\s]+)(?:, access=(?P<access>\S+))?"
)
"""sasl-xoauth2's trace line of the token file it read, with both tokens in clear."""
_PASSDB_TOKEN = re.compile(r"(?:\t|#011| )token=(?P<token>[^\t\r\n #]+)")
"""The ``token`` field of a passdb reply that Dovecot's ``auth_debug`` logs, such as
``client passdb out: OK<TAB>1<TAB>user=alice<TAB>token=<token>``: the client's access token as
the oauth2 passdb received it (Dovecot 2.3). rsyslog writes each TAB as ``#011`` unless
``$EscapeControlCharactersOnReceive`` is off, and other relays turn it into a space."""
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_GOOGLE_ACCESS_TOKEN = re.compile(r"ya29\.[A-Za-z0-9_\-]{20,}")
_GOOGLE_REFRESH_TOKEN = re.compile(
    r"(?:(?<![A-Za-z0-9_\-./%])|(?<=%[0-9A-Fa-f]{2}))"
    r"1(?://|%2[Ff]%2[Ff])0(?P<rest>[A-Za-z0-9_\-]{20,})"
)
"""A bare Google refresh token, ``1//0`` and at least 20 more characters, also URL-encoded
(``1%2F%2F0…``). It starts a word or follows a ``%XX`` escape (``token%3D1%2F%2F0…``), so
``v1//0…`` and ``2021//0…`` in paths are not taken for one."""
_GOOGLE_CLIENT_SECRET = re.compile(r"(?<![A-Za-z0-9_\-])GOCSPX-(?P<rest>[A-Za-z0-9_\-]{20,})")
"""A bare Google client secret: ``GOCSPX-`` and at least 20 more characters."""
_PLACEHOLDERS = frozenset({"redacted", "removed", "hidden", "secret", "changeme", "undefined"})
_WORD_VALUE = re.compile(r"[a-z_]+")
"""A value of lower-case letters and underscores only, such as ``invalid_grant``: an OAuth2
error code or a word, not a secret."""
_JOURNAL_MESSAGE = re.compile(r'"MESSAGE"\s*:\s*(?P<value>"(?:[^"\\]|\\.)*"|\[[0-9,\s]*\])')
"""The MESSAGE member of a ``journalctl -o json`` line: a string, or an array of byte values
when the message is not valid UTF-8."""


def find_leaks(text: str) -> tuple[Leak, ...]:
    """Return the secrets in ``text``, ordered by position, without overlaps.

    Where spans overlap, the more specific kind wins: a SASL response over the token inside
    it, a named field (``refresh_token=``) or a JWT over a ``Bearer`` token.

    A ``journalctl -o json`` line whose MESSAGE is an array of byte values or a string with
    escapes is also searched in its decoded MESSAGE, because the raw line does not show
    those secrets. Each kind found there gives one leak that spans the whole MESSAGE value
    in ``text``, so these leaks have the same span: ``mask_leaks`` masks the value once.
    """
    leaks: list[Leak] = []
    # Chained ``in`` checks instead of any() over _SASL_MARKS: no generator per line.
    if (
        "XOAUTH2" in text
        or "OAUTHBEARER" in text
        or "dXNlcj" in text
        or "bixh" in text
        or "biws" in text
    ):
        leaks += _sasl_responses(text)
    if "refresh_token" in text or "client_secret" in text or "access_token" in text:
        leaks += _fields(text)
    if "TokenStore::Read: refresh=" in text:
        leaks += _token_store(text)
    if "\ttoken=" in text or "#011token=" in text or "passdb out: " in text:
        leaks += _bare_secrets(_PASSDB_TOKEN, text, "bearer_token", "token")
    if "eyJ" in text:
        leaks += _matches(_JWT, text, "jwt")
    if "ya29." in text:
        leaks += _matches(_GOOGLE_ACCESS_TOKEN, text, "google_access_token")
    if "1//0" in text or "%2F%2F0" in text or "%2f%2f0" in text:
        leaks += _bare_secrets(_GOOGLE_REFRESH_TOKEN, text, "refresh_token")
    if "GOCSPX-" in text:
        leaks += _bare_secrets(_GOOGLE_CLIENT_SECRET, text, "client_secret")
    if "earer" in text or "EARER" in text:
        leaks += _bearer_tokens(text)
    found = _without_overlaps(leaks) if len(leaks) > 1 else tuple(leaks)
    if text.startswith("{") and '"MESSAGE"' in text:
        return _with_journal_message(text, found)
    return found


def _with_journal_message(text: str, leaks: tuple[Leak, ...]) -> tuple[Leak, ...]:
    """Add the secrets of a journal line's decoded MESSAGE as leaks spanning its value."""
    found = _JOURNAL_MESSAGE.search(text)
    if found is None:
        return leaks
    value = found["value"]
    if value.startswith('"') and "\\" not in value:
        return leaks  # the decoded text is the raw text, already searched
    message = _decode_journal_value(value)
    if message is None:
        return leaks
    # The decoded MESSAGE is shorter than its escaped or byte-array form, so this recursion
    # into a MESSAGE that is itself a journal line ends.
    kinds = dict.fromkeys(leak.kind for leak in find_leaks(message))
    if not kinds:
        return leaks
    start, end = found.span("value")
    outside = [leak for leak in leaks if leak.end <= start or leak.start >= end]
    inside = [Leak(kind, start, end) for kind in kinds]
    return tuple(sorted([*outside, *inside], key=lambda leak: leak.start))


def _decode_journal_value(value: str) -> str | None:
    """Decode a journal field value: a JSON string or an array of byte values."""
    try:
        decoded = json.loads(value)
        if isinstance(decoded, list):
            return bytes(decoded).decode("utf-8", errors="replace")
    except (ValueError, TypeError):
        return None
    return decoded if isinstance(decoded, str) else None


def _token_store(text: str) -> list[Leak]:
    """Find the refresh and access tokens of sasl-xoauth2's ``TokenStore::Read`` line."""
    found = _TOKEN_STORE.search(text)
    if found is None:
        return []
    leaks = [Leak("refresh_token", found.start("refresh"), found.end("refresh"))]
    if found["access"] is not None:
        leaks.append(Leak("bearer_token", found.start("access"), found.end("access")))
    return leaks


def _bearer_tokens(text: str) -> list[Leak]:
    """Find tokens after ``Bearer`` and a space, or ``Bearer%20`` in URL-encoded text."""
    leaks: list[Leak] = []
    for found in _BEARER.finditer(text):
        group = "token" if found["token"] is not None else "encoded"
        leaks.append(Leak("bearer_token", found.start(group), found.end(group)))
    return leaks


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
    covered = 0
    for found in _BASE64_WORD.finditer(text):
        if found.start() < covered:
            continue
        word = found[0].rstrip("=")
        try:
            decoded = b64decode(word[: len(word) // 4 * 4])
        except (binascii.Error, ValueError):
            continue
        if b"=" not in decoded:
            # Responses contain "auth=", and a cut one starts with "user=", "n,a=" or
            # "n,," and a short key with "=", within the 15 bytes of 20 base64 characters.
            continue
        end = found.end()
        if decoded.startswith(_RESPONSE_STARTS) and not decoded.endswith(b"\x01\x01"):
            decoded, end = _join_split_response(text, found[0], decoded, end)
        if b"auth=bearer" not in decoded.lower():
            continue
        kind = "oauthbearer_response" if decoded.startswith(b"n,") else "xoauth2_response"
        leaks.append(Leak(kind, found.start(), end))
        covered = end
    return leaks


def _join_split_response(text: str, word: str, decoded: bytes, end: int) -> tuple[bytes, int]:
    """Join a response that looks cut with the base64 words after it, one space apart.

    A response looks cut when it starts like one but lacks the closing ``^A^A``, because
    some programs wrap long words. Returns the decoded joined response and its end in
    ``text``.
    """
    for _ in range(MAX_SPLIT_WORDS):
        following = _NEXT_BASE64_WORD.match(text, end)
        if following is None:
            break
        joined = _decode_base64(word + following[1])
        if joined is None:
            break
        word, end, decoded = word + following[1], following.end(), joined
        if decoded.endswith(b"\x01\x01"):
            break
    return decoded, end


def _decode_base64(word: str) -> bytes | None:
    """Decode the whole 4-character groups of a base64 word; None when that fails."""
    word = word.rstrip("=")
    try:
        return b64decode(word[: len(word) // 4 * 4])
    except (binascii.Error, ValueError):
        return None


def _fields(text: str) -> list[Leak]:
    """Find non-empty values of ``refresh_token``, ``client_secret`` and ``access_token``."""
    leaks: list[Leak] = []
    for found in _FIELD.finditer(text):
        group = next(name for name in _FIELD_GROUPS if found[name] is not None)
        value = unquote(found[group]) if group == "encoded" else found[group]
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
    if _WORD_VALUE.fullmatch(value) is not None:
        return True
    return value.strip("[]<>()").lower() in _PLACEHOLDERS


def _bare_secrets(
    pattern: re.Pattern[str], text: str, kind: str, group: str = "rest"
) -> list[Leak]:
    """Find secrets by their prefix, leaving out placeholders such as ``GOCSPX-xxxx…``.

    A match's ``group`` is the part that is checked for a placeholder. The leak spans the
    whole match for the default ``rest`` group, else only that group.
    """
    leaks: list[Leak] = []
    for found in pattern.finditer(text):
        if _is_placeholder(found[group]):
            continue
        start, end = found.span() if group == "rest" else found.span(group)
        leaks.append(Leak(kind, start, end))
    return leaks


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
