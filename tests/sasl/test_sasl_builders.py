"""Building XOAUTH2, OAUTHBEARER and PLAIN client responses and the dummy reply line."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from smtpdiag.redact import MASK, redact
from smtpdiag.sasl import (
    Mechanism,
    dummy_response,
    encode,
    oauthbearer_response,
    plain_response,
    xoauth2_response,
)

# Google's XOAUTH2 protocol page: user, sample token and the base64 of the initial response.
GOOGLE_USER = "someuser@example.com"
GOOGLE_TOKEN = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
GOOGLE_BASE64 = (
    "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNr"
    "QmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
)

# RFC 7628 section 4.1 (IMAP, port 143): user, token and the base64 initial response.
RFC_USER = "user@example.com"
RFC_TOKEN = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
RFC_BASE64 = (
    "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVy"
    "IHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
)

# Microsoft's Exchange OAuth page: XOAUTH2 example user and token.
MICROSOFT_USER = "test@contoso.onmicrosoft.com"
MICROSOFT_TOKEN = "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA"


def test_xoauth2_matches_google_example() -> None:
    assert encode(xoauth2_response(GOOGLE_USER, GOOGLE_TOKEN)) == GOOGLE_BASE64


def test_xoauth2_raw_bytes() -> None:
    raw = xoauth2_response(MICROSOFT_USER, MICROSOFT_TOKEN)
    assert raw == f"user={MICROSOFT_USER}\x01auth=Bearer {MICROSOFT_TOKEN}\x01\x01".encode()


def test_oauthbearer_matches_rfc_example() -> None:
    raw = oauthbearer_response(RFC_USER, RFC_TOKEN, "server.example.com", 143)
    assert encode(raw) == RFC_BASE64


@pytest.mark.parametrize(
    ("user", "host", "port", "expected"),
    [
        pytest.param(None, None, None, b"n,,\x01auth=Bearer tok\x01\x01", id="no-user"),
        pytest.param(
            "u@example.com", None, None, b"n,a=u@example.com,\x01auth=Bearer tok\x01\x01", id="user"
        ),
        pytest.param(
            None,
            "smtp.example.com",
            None,
            b"n,,\x01host=smtp.example.com\x01auth=Bearer tok\x01\x01",
            id="host-only",
        ),
        pytest.param(None, None, 587, b"n,,\x01port=587\x01auth=Bearer tok\x01\x01", id="port"),
        # RFC 5801 saslname escapes "," as "=2C" and "=" as "=3D".
        pytest.param(
            "a,b=c@example.com",
            None,
            None,
            b"n,a=a=2Cb=3Dc@example.com,\x01auth=Bearer tok\x01\x01",
            id="escaped-user",
        ),
    ],
)
def test_oauthbearer_layout(
    user: str | None, host: str | None, port: int | None, expected: bytes
) -> None:
    assert oauthbearer_response(user, "tok", host, port) == expected


def test_plain_layout() -> None:
    assert plain_response("user@example.com", "s3cret-pass") == b"\0user@example.com\0s3cret-pass"


def test_encode_is_one_line() -> None:
    encoded = encode(xoauth2_response(GOOGLE_USER, "x" * 500))
    assert "\n" not in encoded


@pytest.mark.parametrize(
    ("mechanism", "expected"),
    [
        pytest.param(Mechanism.XOAUTH2, "", id="xoauth2-empty-line"),
        pytest.param(Mechanism.OAUTHBEARER, "AQ==", id="oauthbearer-kvsep"),
    ],
)
def test_dummy_response(mechanism: Mechanism, expected: str) -> None:
    assert dummy_response(mechanism) == expected


@pytest.mark.parametrize("mechanism", [Mechanism.PLAIN, Mechanism.LOGIN], ids=str)
def test_dummy_response_rejects_password_mechanisms(mechanism: Mechanism) -> None:
    with pytest.raises(ValueError, match="no error challenge"):
        dummy_response(mechanism)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda: xoauth2_response("a\x01b", "tok"), "0x01", id="user-separator"),
        pytest.param(lambda: xoauth2_response("a", ""), "empty", id="empty-token"),
        pytest.param(lambda: xoauth2_response("a", "to ken1"), "whitespace", id="token-space"),
        pytest.param(lambda: oauthbearer_response("", "tok"), "empty", id="empty-user"),
        pytest.param(lambda: oauthbearer_response(None, "tok", port=0), "outside", id="port-0"),
        pytest.param(
            lambda: oauthbearer_response(None, "tok", port=65536), "outside", id="port-65536"
        ),
        pytest.param(lambda: plain_response("a\0b", "pw"), "NUL", id="plain-nul"),
    ],
)
def test_builder_rejects_invalid_values(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_builder_error_omits_token() -> None:
    token = "ya29.secret part"
    with pytest.raises(ValueError) as caught:
        xoauth2_response("a@example.com", token)
    assert token not in str(caught.value)


def test_builder_registers_token() -> None:
    token = "ya29.builder-registered-token"
    xoauth2_response("a@example.com", token)
    assert redact(f"token {token}") == f"token {MASK}"
