"""SMTP reply parsing (RFC 5321 §4.2), one line at a time, trusting nothing the peer sends.

Grammar: ``*( code "-" [text] CRLF ) code [ SP text ] CRLF``; the first digit is 2-5, the second
0-5, the third 0-9. Tolerated oddities are recorded on the reply: bare LF, lines over the
512-octet limit, non-UTF-8 bytes, a bare code without text, differing codes across lines.
Anything that cannot be an SMTP reply raises ``SmtpReplyError`` with the offending bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from smtpdiag.errors import SmtpClosedError, SmtpReplyError, escape_bytes
from smtpdiag.render.text import escape_control

REPLY_LINE_LIMIT = 512
"""Maximum reply line length in octets including CRLF (RFC 5321 §4.5.3.1.5)."""

HARD_LINE_LIMIT = 4096
"""Maximum line length, in octets, before the peer is declared not to speak SMTP."""

MAX_REPLY_LINES = 256
"""Most lines accepted in one multi-line reply; real EHLO replies have fewer than 30."""

EXCERPT_OCTETS = 200
"""Length of the excerpt that a ``ReplyLimitError`` keeps of the reply."""

_LINE = re.compile(rb"([2-5][0-5][0-9])(?:([ -])(.*))?")
_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")


class ReplyLimit(StrEnum):
    """Limit of ``ReplyReader`` that a reply went past."""

    LINE_COUNT = "line_count"
    """More than ``MAX_REPLY_LINES`` lines in one reply."""
    LINE_LENGTH = "line_length"
    """A line of more than ``HARD_LINE_LIMIT`` octets."""


class ReplyLimitError(SmtpReplyError):
    """A reply went past a limit of ``ReplyReader``.

    ``raw`` is an excerpt of at most ``EXCERPT_OCTETS``: the last whole lines of the reply
    for ``LINE_COUNT``, and the first bytes of the long line for ``LINE_LENGTH``.
    """

    def __init__(self, problem: str, raw: bytes, limit: ReplyLimit) -> None:
        super().__init__(problem, raw)
        self.limit = limit


def format_excerpt(raw: bytes, limit: int, reply_limit: ReplyLimit | None = None) -> str:
    """Escape at most ``limit`` bytes of ``raw`` and mark where bytes were left out.

    ``reply_limit`` names the ``ReplyLimitError`` that ``raw`` comes from. Its excerpt is
    already cut, so "…" marks the cut: at the start for ``LINE_COUNT`` and at the end for
    ``LINE_LENGTH``. Other bytes get ``escape_bytes``' mark and length when they are cut.
    """
    if reply_limit is ReplyLimit.LINE_COUNT:
        return f"…{escape_bytes(_last_lines(raw, limit), limit)}"
    if reply_limit is ReplyLimit.LINE_LENGTH:
        return f"{escape_bytes(raw[:limit], limit)}…"
    return escape_bytes(raw, limit)


def describe_partial_reply(partial: bytes) -> str:
    """Count what arrived of an unfinished reply: ``7 bytes of a reply (part of its first line)``.

    Every complete line of an unfinished reply is a continuation line, because a line
    without the ``-`` separator would have ended the reply.
    """
    if not partial:
        return "0 bytes of a reply"
    complete = partial.count(b"\n")
    unfinished = len(partial) - (partial.rfind(b"\n") + 1)
    if complete == 0:
        lines = "part of its first line"
    else:
        plural = "s" if complete > 1 else ""
        rest = "and part of the next line" if unfinished else "without the last line"
        lines = f"{complete} continuation line{plural} {rest}"
    return f"{len(partial)} bytes of a reply ({lines})"


@dataclass(frozen=True)
class Reply:
    """One complete SMTP reply."""

    code: int
    lines: tuple[str, ...]
    """Text of each line after the code and separator, decoded; may be empty strings."""
    raw: bytes
    """The reply exactly as received, for evidence."""
    oddities: tuple[str, ...] = ()
    """Deviations from RFC 5321 that were tolerated."""

    @property
    def text(self) -> str:
        """All lines' text joined by a space."""
        return " ".join(line for line in self.lines if line)

    @property
    def enhanced_code(self) -> str | None:
        """Enhanced status code (RFC 3463) at the start of the first line, or None."""
        if not self.lines:
            return None
        match = _ENHANCED.match(self.lines[0])
        if match is None or match.group(1) != str(self.code)[0]:
            return None
        return match.group(0)

    @property
    def is_positive(self) -> bool:
        """Whether the code is 2xx or 3xx."""
        return self.code < 400

    def transcript(self, prefix: str = "S: ") -> list[str]:
        """Return the reply as display lines, one per wire line."""
        return [
            f"{prefix}{self.code}{'-' if index < len(self.lines) - 1 else ' '}{line}".rstrip()
            for index, line in enumerate(self.lines)
        ]

    def facts(self) -> dict[str, object]:
        """Return the documented fact names for this reply."""
        return {
            "reply_code": self.code,
            "enhanced_code": self.enhanced_code,
            "reply_text": self.text,
        }


def parse_reply_line(line: bytes) -> tuple[int, bool, str, list[str]]:
    """Parse one reply line without its end-of-line.

    Returns the code, whether more lines follow, the decoded text and the oddities seen.
    """
    oddities: list[str] = []
    match = _LINE.fullmatch(line)
    if match is None:
        raise SmtpReplyError("not an SMTP reply line", line)
    separator = match.group(2)
    body = match.group(3) or b""
    if separator is None:
        oddities.append("reply line without text")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="backslashreplace")
        oddities.append("non-UTF-8 bytes in reply text")
    if not text.isprintable():
        # Escaped at the source, so no output, log or JSON consumer meets a raw ESC or NUL.
        text = escape_control(text.replace("\t", " "))
        oddities.append("control characters in reply text")
    return int(match.group(1)), separator == b"-", text, oddities


class ReplyReader:
    """Read replies from a byte stream, buffering across reads."""

    def __init__(self, receive: Callable[[int], bytes]) -> None:
        """``receive(n)`` returns up to n bytes, ``b""`` at end of stream, or raises on timeout."""
        self._receive = receive
        self._buffer = bytearray()
        self._current = bytearray()
        self.received_bytes = 0
        """Total bytes received; the buffer keeps at most one over-long line."""

    def read_line(self) -> tuple[bytes, list[str]]:
        """Return the next line without its end-of-line, and the oddities of its framing."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                return self._take_line(end)
            if len(self._buffer) > HARD_LINE_LIMIT:
                raise ReplyLimitError(
                    f"no end of line within {HARD_LINE_LIMIT} octets",
                    bytes(self._buffer[:EXCERPT_OCTETS]),
                    ReplyLimit.LINE_LENGTH,
                )
            chunk = self._receive(4096)
            if not chunk:
                raise SmtpClosedError(self.partial)
            self.received_bytes += len(chunk)
            self._buffer += chunk

    def _take_line(self, end: int) -> tuple[bytes, list[str]]:
        oddities: list[str] = []
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        if line.endswith(b"\r"):
            line = line[:-1]
        else:
            oddities.append("line ends with a bare LF instead of CRLF")
        if len(line) + 2 > REPLY_LINE_LIMIT:
            oddities.append(
                f"line of {len(line) + 2} octets exceeds the {REPLY_LINE_LIMIT}-octet limit"
            )
        if len(line) > HARD_LINE_LIMIT:
            raise ReplyLimitError(
                f"line longer than {HARD_LINE_LIMIT} octets",
                line[:EXCERPT_OCTETS],
                ReplyLimit.LINE_LENGTH,
            )
        return line, oddities

    def read_reply(self) -> Reply:
        """Read one complete, possibly multi-line, reply."""
        raw = self._current = bytearray()
        lines: list[str] = []
        oddities: list[str] = []
        code: int | None = None
        while True:
            line, framing = self.read_line()
            raw += line + b"\r\n"
            line_code, more, text, found = parse_reply_line(line)
            oddities += framing + found
            if code is None:
                code = line_code
            elif line_code != code:
                oddities.append(f"line code {line_code} differs from first code {code}")
            lines.append(text)
            if not more:
                self._current = bytearray()
                return Reply(code, tuple(lines), bytes(raw), tuple(dict.fromkeys(oddities)))
            if len(lines) >= MAX_REPLY_LINES:
                raise ReplyLimitError(
                    f"reply longer than {MAX_REPLY_LINES} lines",
                    _last_lines(raw, EXCERPT_OCTETS),
                    ReplyLimit.LINE_COUNT,
                )

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet consumed."""
        return bytes(self._buffer)

    @property
    def partial(self) -> bytes:
        """Bytes of the reply being read: its complete lines, then the unfinished one."""
        return bytes(self._current) + bytes(self._buffer)


def _last_lines(raw: bytes | bytearray, limit: int) -> bytes:
    """Return the end of ``raw`` in at most ``limit`` bytes, from the start of a line.

    A single line longer than ``limit`` is returned cut, from the middle of that line.
    """
    if len(raw) <= limit or raw[-limit - 1 : -limit] == b"\n":
        return bytes(raw[-limit:])
    tail = bytes(raw[-limit:])
    start = tail.find(b"\n") + 1
    return tail[start:] if 0 < start < len(tail) else tail
