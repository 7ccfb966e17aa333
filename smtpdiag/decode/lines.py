"""Split a pasted transcript into client and server lines, whatever the client printed.

Clients and libraries mark directions differently: ``S:``/``C:`` (RFC examples),
``SERVER -> CLIENT:`` (PHPMailer), ``<<<``/``>>>``, swaks's ``<-``/``->`` and ``<~``/``~>``
(after TLS), ``send: b'...'``/``reply: b'...'`` (Python ``smtplib`` debug output), often after
a timestamp. Unmarked lines count as server lines when they look like a reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    """Sender of a transcript line."""

    CLIENT = "client"
    SERVER = "server"


@dataclass(frozen=True)
class Line:
    """One transcript line without its prefix."""

    direction: Direction
    text: str


_TIMESTAMP = re.compile(
    r"^\s*(?:"
    r"\[?\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\]?"
    r"|[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}"
    r"|\[?\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\]?"
    r")[:\s]*"
)

# Longer markers come first so that ``<--`` is not read as ``<-`` followed by ``-``. swaks
# adds ``*`` to the markers of error replies (``<~*``) and pads markers with two spaces;
# msmtp's --debug output uses ``<--`` and ``-->``.
_SERVER_WORDS = re.compile(r"^(?:SERVER\s*->\s*CLIENT|S(?:ERVER)?)\s*[:>]\s*", re.IGNORECASE)
_CLIENT_WORDS = re.compile(r"^(?:CLIENT\s*->\s*SERVER|C(?:LIENT)?)\s*[:>]\s*", re.IGNORECASE)
_MARKERS: tuple[tuple[re.Pattern[str], Direction], ...] = (
    (_SERVER_WORDS, Direction.SERVER),
    (_CLIENT_WORDS, Direction.CLIENT),
    (re.compile(r"^(?:<<<|<--|<-|<~|<<|<)\*?\s*"), Direction.SERVER),
    (re.compile(r"^(?:>>>|-->|->|~>|>>|>)\*?\s*"), Direction.CLIENT),
    (re.compile(r"^reply:\s*", re.IGNORECASE), Direction.SERVER),
    (re.compile(r"^send:\s*", re.IGNORECASE), Direction.CLIENT),
)

# Python smtplib's debug output also prints a parsed summary of each reply, which repeats
# the reply lines before it, so it is dropped.
_SMTPLIB_SUMMARY = re.compile(r"^reply:\s*retcode\s*\(\d+\);\s*Msg:", re.IGNORECASE)

_REPLY = re.compile(r"^[2-5][0-5][0-9](?:[ -]|$)")
_BYTES_REPR = re.compile(r"^b?(['\"])(.*)\1$")


def _unwrap_bytes_repr(text: str) -> list[str]:
    """Turn ``b'250-a\\r\\n250 b\\r\\n'`` (smtplib debug output) into its lines."""
    match = _BYTES_REPR.match(text)
    if match is None:
        return [text]
    body = match.group(2).replace("\\r", "").replace("\\t", "\t")
    return [part for part in body.split("\\n") if part]


def split_lines(text: str) -> list[Line]:
    """Return the transcript's lines with their direction, dropping empty unmarked lines."""
    lines: list[Line] = []
    for raw in text.splitlines():
        if _SMTPLIB_SUMMARY.match(raw.strip()):
            continue
        stripped = _TIMESTAMP.sub("", raw, count=1) if _TIMESTAMP.match(raw) else raw
        stripped = stripped.strip("\r")
        direction, rest = _marker(stripped.lstrip())
        rest = rest.rstrip("\r\n") if direction else rest.strip()
        for part in _unwrap_bytes_repr(rest):
            if direction is None:
                if not part.strip():
                    continue
                guessed = Direction.SERVER if _REPLY.match(part.strip()) else Direction.CLIENT
                lines.append(Line(guessed, part.strip()))
            else:
                lines.append(Line(direction, part))
    return lines


def _marker(text: str) -> tuple[Direction | None, str]:
    for pattern, direction in _MARKERS:
        match = pattern.match(text)
        if match:
            return direction, text[match.end() :]
    return None, text


def is_reply_line(text: str) -> bool:
    """Return whether ``text`` starts like an SMTP reply line."""
    return bool(_REPLY.match(text.strip()))
