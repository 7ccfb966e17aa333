"""Properties of the SMTP reply reader: any bytes fail only with smtpdiag's errors, and valid
replies round-trip however the stream splits them."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from smtpdiag.errors import SmtpClosedError, SmtpDiagError, SmtpReplyError
from smtpdiag.smtp.reply import MAX_REPLY_LINES, ReplyReader, parse_reply_line

# Printable text as `str.isprintable` defines it, so the reader neither escapes nor flags it:
# letters, marks, numbers, punctuation, symbols and the plain space.
REPLY_TEXT = st.text(
    st.characters(categories=("L", "M", "N", "P", "S"), include_characters=" "),
    max_size=100,
)
# RFC 5321 reply codes: first digit 2-5, second 0-5, third 0-9.
REPLY_CODE = st.builds(
    lambda first, second, third: first * 100 + second * 10 + third,
    st.integers(2, 5),
    st.integers(0, 5),
    st.integers(0, 9),
)


def chunked_receive(data: bytes, cuts: list[int]) -> Callable[[int], bytes]:
    """Return a ``receive`` that hands out ``data`` in pieces ending at ``cuts``, then ``b""``."""
    bounds = sorted({cut % (len(data) + 1) for cut in cuts} | {len(data)})
    pieces = [data[start:end] for start, end in zip([0, *bounds[:-1]], bounds, strict=True)]
    pieces = [piece for piece in pieces if piece]

    def receive(size: int) -> bytes:
        if not pieces:
            return b""
        piece = pieces.pop(0)
        if len(piece) > size:
            pieces.insert(0, piece[size:])
            piece = piece[:size]
        return piece

    return receive


def wire_reply(code: int, texts: list[str]) -> bytes:
    """Encode a reply as a server sends it: ``code-text`` lines, then ``code text``."""
    last = len(texts) - 1
    lines = [f"{code}{'-' if index < last else ' '}{text}\r\n" for index, text in enumerate(texts)]
    return "".join(lines).encode("utf-8")


@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=8))
def test_reader_raises_only_own_errors(data: bytes, cuts: list[int]) -> None:
    reader = ReplyReader(chunked_receive(data, cuts))
    replies = 0
    try:
        while True:
            reply = reader.read_reply()
            replies += 1
            assert reply.raw
    except SmtpDiagError as error:
        assert isinstance(error, SmtpReplyError | SmtpClosedError)
    assert replies <= data.count(b"\n")


@given(st.binary(max_size=300))
def test_line_parser_raises_only_reply_error(line: bytes) -> None:
    try:
        code, _, text, _ = parse_reply_line(line)
    except SmtpReplyError:
        return
    assert 200 <= code <= 559
    assert text.isprintable()


@given(
    REPLY_CODE,
    st.lists(REPLY_TEXT, min_size=1, max_size=20),
    st.lists(st.integers(0, 3000), max_size=8),
)
def test_multiline_reply_round_trips(code: int, texts: list[str], cuts: list[int]) -> None:
    wire = wire_reply(code, texts)
    reader = ReplyReader(chunked_receive(wire + wire, cuts))
    for _ in range(2):
        reply = reader.read_reply()
        assert reply.code == code
        assert reply.lines == tuple(texts)
        assert reply.raw == wire
        assert reply.oddities == ()
    assert reader.pending == b""


@given(REPLY_CODE, st.lists(REPLY_TEXT, min_size=1, max_size=5))
def test_bare_lf_reply_keeps_text(code: int, texts: list[str]) -> None:
    wire = wire_reply(code, texts).replace(b"\r\n", b"\n")
    reply = ReplyReader(chunked_receive(wire, [])).read_reply()
    assert reply.lines == tuple(texts)
    assert reply.oddities == ("line ends with a bare LF instead of CRLF",)


@given(REPLY_CODE)
def test_overlong_reply_rejected(code: int) -> None:
    wire = wire_reply(code, ["x"] * (MAX_REPLY_LINES + 1))
    reader = ReplyReader(chunked_receive(wire, []))
    try:
        reader.read_reply()
    except SmtpReplyError as error:
        assert error.problem == f"reply longer than {MAX_REPLY_LINES} lines"
    else:
        raise AssertionError("a reply of more lines than MAX_REPLY_LINES was accepted")
