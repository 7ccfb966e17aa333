"""Properties of the SASL builders and parsers: XOAUTH2 and OAUTHBEARER responses round-trip,
and no client response or challenge text makes the parsers raise: they report malformed
input as data, not as exceptions."""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from smtpdiag.sasl import (
    Mechanism,
    encode,
    oauthbearer_response,
    parse_challenge,
    parse_client_response,
    xoauth2_response,
)

# RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
B64TOKEN = st.builds(
    lambda body, padding: body + "=" * padding,
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/", min_size=1),
    st.integers(0, 2),
)
# Any user or host name without control characters other than tab. The builders reject only
# 0x01, but the XOAUTH2 parser strips CR and LF from the ends of each pair, because pasted
# responses often carry a line ending.
NAME_CHARACTERS = st.characters(categories=("L", "M", "N", "P", "S", "Zs"), include_characters="\t")
USER = st.text(NAME_CHARACTERS, min_size=1)
HOST = st.text(NAME_CHARACTERS, min_size=1)
PORT = st.integers(1, 65535)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
# Decoded responses that start like each mechanism, so the parsers get past the first check.
RESPONSE_BYTES = st.builds(
    bytes.__add__,
    st.sampled_from([b"", b"user=", b"n,a=", b"n,,\x01", b"y,,", b"\0", b"\x01"]),
    st.binary(),
)
RESPONSE_TEXT = st.text() | RESPONSE_BYTES.map(encode)
CHALLENGE_TEXT = (
    st.text()
    | st.binary().map(encode)
    | JSON_VALUE.map(lambda value: encode(json.dumps(value).encode()))
)


@given(USER, B64TOKEN)
# "USER=" is a valid b64token that looks like a key run together with "auth=".
@example(user="0", token="USER=")
def test_xoauth2_round_trips(user: str, token: str) -> None:
    parsed = parse_client_response(encode(xoauth2_response(user, token)), Mechanism.XOAUTH2)
    assert parsed.mechanism is Mechanism.XOAUTH2
    assert parsed.user == user
    assert parsed.token_length == len(token)
    assert parsed.problems == ()


@given(st.none() | USER, B64TOKEN, st.none() | HOST, st.none() | PORT)
@example(user=None, token="host=", host="h", port=None)
def test_oauthbearer_round_trips(
    user: str | None, token: str, host: str | None, port: int | None
) -> None:
    response = encode(oauthbearer_response(user, token, host, port))
    parsed = parse_client_response(response, Mechanism.OAUTHBEARER)
    assert parsed.mechanism is Mechanism.OAUTHBEARER
    assert parsed.user == user
    assert parsed.host == host
    assert parsed.port == port
    assert parsed.token_length == len(token)
    assert parsed.problems == ()


@given(RESPONSE_TEXT, st.none() | st.sampled_from(Mechanism))
def test_response_text_parses_without_raising(text: str, hint: Mechanism | None) -> None:
    parsed = parse_client_response(text, hint)
    assert parsed.token_length is None or parsed.token_length > 0


@given(RESPONSE_BYTES, st.none() | st.sampled_from(Mechanism))
def test_response_bytes_parse_without_raising(data: bytes, hint: Mechanism | None) -> None:
    parsed = parse_client_response(data, hint)
    assert parsed.token_length is None or parsed.token_length > 0


@given(CHALLENGE_TEXT)
def test_challenge_text_parses_without_raising(text: str) -> None:
    challenge = parse_challenge(text)
    assert (
        challenge.empty
        or challenge.payload is not None
        or challenge.text is not None
        or challenge.problem is not None
    )
