"""Reply parser: RFC 5321 replies, tolerated deviations and input that is not SMTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from smtpdiag.errors import SmtpClosedError, SmtpReplyError
from smtpdiag.smtp.reply import (
    ReplyLimit,
    ReplyLimitError,
    ReplyReader,
    describe_partial_reply,
    format_excerpt,
)


def reader_for(*chunks: bytes) -> ReplyReader:
    """Return a reader that receives ``chunks`` one per read, then end of stream."""
    pending = list(chunks)

    def receive(_size: int) -> bytes:
        return pending.pop(0) if pending else b""

    return ReplyReader(receive)


VALID = [
    pytest.param(
        [b"220 mx.example.com ESMTP ready\r\n"],
        220,
        ("mx.example.com ESMTP ready",),
        id="single-line",
    ),
    pytest.param(
        [
            b"250-smtp.example.com at your service\r\n"
            b"250-SIZE 35882577\r\n"
            b"250 AUTH LOGIN XOAUTH2\r\n"
        ],
        250,
        ("smtp.example.com at your service", "SIZE 35882577", "AUTH LOGIN XOAUTH2"),
        id="multi-line",
    ),
    pytest.param([b"250\r\n"], 250, ("",), id="code-without-text"),
    pytest.param([b"250-\r\n250 OK\r\n"], 250, ("", "OK"), id="empty-continuation"),
    pytest.param(
        [b"22", b"0 split ", b"greeting\r", b"\n"],
        220,
        ("split greeting",),
        id="split-across-reads",
    ),
    pytest.param(
        [b"220-first\r\n", b"220 second\r\n"],
        220,
        ("first", "second"),
        id="lines-in-separate-reads",
    ),
]


@pytest.mark.parametrize(("chunks", "code", "lines"), VALID)
def test_valid_reply_code(chunks: list[bytes], code: int, lines: tuple[str, ...]) -> None:
    assert reader_for(*chunks).read_reply().code == code


@pytest.mark.parametrize(("chunks", "code", "lines"), VALID)
def test_valid_reply_lines(chunks: list[bytes], code: int, lines: tuple[str, ...]) -> None:
    assert reader_for(*chunks).read_reply().lines == lines


ODDITIES = [
    pytest.param(b"220 bare line feed\n", "bare LF", id="bare-lf"),
    pytest.param(
        b"220 " + b"x" * 600 + b"\r\n", "exceeds the 512-octet limit", id="over-512-octets"
    ),
    pytest.param(b"220 caf\xe9 latin-1\r\n", "non-UTF-8", id="non-utf8"),
    pytest.param(b"250\r\n", "without text", id="no-text"),
    pytest.param(b"250-a\r\n251 b\r\n", "differs from first code", id="mixed-codes"),
]


@pytest.mark.parametrize(("data", "expected"), ODDITIES)
def test_tolerated_oddity_recorded(data: bytes, expected: str) -> None:
    reply = reader_for(data).read_reply()
    assert any(expected in oddity for oddity in reply.oddities), reply.oddities


def test_non_utf8_bytes_escaped() -> None:
    reply = reader_for(b"220 caf\xe9\r\n").read_reply()
    assert reply.lines == ("caf\\xe9",)


INVALID: list[object] = [
    pytest.param(b"HTTP/1.1 400 Bad Request\r\n", SmtpReplyError, id="http-server"),
    pytest.param(b"SSH-2.0-OpenSSH_9.2\r\n", SmtpReplyError, id="ssh-server"),
    pytest.param(b"620 bad first digit\r\n", SmtpReplyError, id="first-digit-out-of-range"),
    pytest.param(b"260 bad second digit\r\n", SmtpReplyError, id="second-digit-out-of-range"),
    pytest.param(b"250x no separator\r\n", SmtpReplyError, id="bad-separator"),
    pytest.param(b"\x16\x03\x01\x00\x2a\x02\x00\r\n", SmtpReplyError, id="tls-record"),
    pytest.param(b"A" * 5000, SmtpReplyError, id="no-end-of-line"),
    pytest.param(b"250-first line\r\n", SmtpClosedError, id="closed-mid-reply"),
    pytest.param(b"220 partial", SmtpClosedError, id="closed-mid-line"),
    pytest.param(b"", SmtpClosedError, id="closed-before-reply"),
]


@pytest.mark.parametrize(("data", "error"), INVALID)
def test_invalid_input_raises(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        reader_for(data).read_reply()


def test_endless_continuation_rejected() -> None:
    data = b"250-more\r\n" * 300
    with pytest.raises(SmtpReplyError, match="longer than 256 lines"):
        reader_for(data).read_reply()


def test_error_message_escapes_bytes() -> None:
    with pytest.raises(SmtpReplyError) as caught:
        reader_for(b"\x00\x01binary\r\n").read_reply()
    assert "\\x00\\x01binary" in str(caught.value)


def test_reader_stops_reading_garbage_early() -> None:
    received: list[int] = []
    chunk = b"\xff" * 4096

    def receive(size: int) -> bytes:
        received.append(size)
        return chunk

    with pytest.raises(SmtpReplyError):
        ReplyReader(receive).read_reply()
    assert len(received) <= 3


ENHANCED = [
    pytest.param(b"535 5.7.8 Username and Password not accepted\r\n", "5.7.8", id="google-535"),
    pytest.param(
        b"535 5.7.3 Authentication unsuccessful [BN0PR04CA0123]\r\n", "5.7.3", id="microsoft-535"
    ),
    pytest.param(b"250-2.0.0 first\r\n250 2.0.0 last\r\n", "2.0.0", id="multi-line"),
    pytest.param(b"535 Incorrect authentication data\r\n", None, id="no-enhanced-code"),
    pytest.param(b"535 4.7.0 class does not match\r\n", None, id="class-mismatch"),
]


@pytest.mark.parametrize(("data", "expected"), ENHANCED)
def test_enhanced_code(data: bytes, expected: str | None) -> None:
    assert reader_for(data).read_reply().enhanced_code == expected


def test_two_replies_in_one_read() -> None:
    reader = reader_for(b"250 first\r\n354 second\r\n")
    codes = [reader.read_reply().code, reader.read_reply().code]
    assert codes == [250, 354]


def test_transcript_marks_continuation() -> None:
    reply = reader_for(b"250-a\r\n250 b\r\n").read_reply()
    assert reply.transcript() == ["S: 250-a", "S: 250 b"]


def test_timeout_propagates() -> None:
    def receive(_size: int) -> bytes:
        raise TimeoutError

    failing: Callable[[int], bytes] = receive
    with pytest.raises(TimeoutError):
        ReplyReader(failing).read_reply()


def test_terminal_escape_sequences_escaped() -> None:
    reply = reader_for(b"220 evil\x1b[31mRED\x1b]0;TITLE\x07\x00\r\n").read_reply()
    assert "\x1b" not in reply.text
    assert "\x00" not in reply.text
    assert "control characters in reply text" in reply.oddities


CLOSED_RAW = [
    pytest.param([b"250-first\r\n250-second\r\n"], id="complete-lines"),
    pytest.param([b"250-first\r\n", b"250-sec"], id="complete-and-unfinished-line"),
    pytest.param([b"220 partial"], id="unfinished-line"),
]


@pytest.mark.parametrize("chunks", CLOSED_RAW)
def test_closed_error_keeps_partial_reply(chunks: list[bytes]) -> None:
    with pytest.raises(SmtpClosedError) as caught:
        reader_for(*chunks).read_reply()
    assert caught.value.raw == b"".join(chunks)


def test_closed_error_after_complete_reply() -> None:
    reader = reader_for(b"250 done\r\n250-next")
    reader.read_reply()
    with pytest.raises(SmtpClosedError) as caught:
        reader.read_reply()
    assert caught.value.raw == b"250-next"


PARTIAL_DESCRIPTIONS = [
    pytest.param(b"", "0 bytes of a reply", id="empty"),
    pytest.param(b"220", "3 bytes of a reply (part of its first line)", id="first-line"),
    pytest.param(
        b"250-localhost\r\n",
        "15 bytes of a reply (1 continuation line without the last line)",
        id="one-line",
    ),
    pytest.param(
        b"250-localhost\r\n250-PIPELINING\r\n",
        "31 bytes of a reply (2 continuation lines without the last line)",
        id="two-lines",
    ),
    pytest.param(
        b"250-localhost\r\n250-PIPE",
        "23 bytes of a reply (1 continuation line and part of the next line)",
        id="line-and-part",
    ),
]


@pytest.mark.parametrize(("partial", "expected"), PARTIAL_DESCRIPTIONS)
def test_describe_partial_reply(partial: bytes, expected: str) -> None:
    assert describe_partial_reply(partial) == expected


def endless_reply_error() -> ReplyLimitError:
    data = b"".join(b"250-X-LINE-%d\r\n" % number for number in range(1, 301))
    with pytest.raises(ReplyLimitError) as caught:
        reader_for(data).read_reply()
    return caught.value


def test_endless_reply_limit_is_line_count() -> None:
    assert endless_reply_error().limit is ReplyLimit.LINE_COUNT


def test_endless_reply_excerpt_starts_at_line() -> None:
    assert endless_reply_error().raw.startswith(b"250-X-LINE-")


def test_endless_reply_excerpt_ends_at_last_line() -> None:
    assert endless_reply_error().raw.endswith(b"250-X-LINE-256\r\n")


def test_long_line_limit_is_line_length() -> None:
    with pytest.raises(ReplyLimitError) as caught:
        reader_for(b"250-" + b"x" * 5000).read_reply()
    assert caught.value.limit is ReplyLimit.LINE_LENGTH


def test_long_line_in_one_read_is_line_length() -> None:
    with pytest.raises(ReplyLimitError) as caught:
        reader_for(b"250-" + b"x" * 5000 + b"\r\n").read_reply()
    assert caught.value.limit is ReplyLimit.LINE_LENGTH


def test_excerpt_of_line_count_marks_start() -> None:
    raw = b"250-X-LINE-255\r\n250-X-LINE-256\r\n"
    assert format_excerpt(raw, 80, ReplyLimit.LINE_COUNT) == (
        "…250-X-LINE-255\\r\\n250-X-LINE-256\\r\\n"
    )


def test_excerpt_of_line_count_cut_at_line_start() -> None:
    raw = b"250-X-LINE-255\r\n250-X-LINE-256\r\n"
    assert format_excerpt(raw, 20, ReplyLimit.LINE_COUNT) == "…250-X-LINE-256\\r\\n"


def test_excerpt_of_line_length_marks_end() -> None:
    assert format_excerpt(b"250-" + b"x" * 10, 6, ReplyLimit.LINE_LENGTH) == "250-xx…"


def test_excerpt_of_other_bytes_is_unmarked() -> None:
    assert format_excerpt(b"SSH-2.0-OpenSSH\r\n", 80) == "SSH-2.0-OpenSSH\\r\\n"
