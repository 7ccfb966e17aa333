"""Server-side parsing of XOAUTH2 and OAUTHBEARER client responses."""

from __future__ import annotations

import pytest

from smtpdiag.lab.bearer_auth import (
    BearerResponse,
    MalformedResponseError,
    error_challenge,
    parse_oauthbearer,
    parse_xoauth2,
)
from smtpdiag.lab.options import ErrorChallenge


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            b"user=a@example.com\x01auth=Bearer tok\x01\x01",
            BearerResponse("a@example.com", "tok"),
            id="google-form",
        ),
        pytest.param(
            b"user=a@example.com\x01auth=bearer tok\x01\x01",
            BearerResponse("a@example.com", "tok"),
            id="lowercase-scheme",
        ),
    ],
)
def test_parse_xoauth2(payload: bytes, expected: BearerResponse) -> None:
    assert parse_xoauth2(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"user=a\x01auth=Bearer tok\x01", id="one-trailing-kvsep"),
        pytest.param(b"auth=Bearer tok\x01\x01", id="no-user"),
        pytest.param(b"user=a\x01\x01", id="no-auth"),
        pytest.param(b"user=a\x01auth=Basic tok\x01\x01", id="basic-scheme"),
        pytest.param(b"user=a\x01auth=Bearer\x01\x01", id="empty-token"),
        pytest.param(b"user=a\x01auth=Bearer \xff\x01\x01", id="not-utf8"),
        pytest.param(b"", id="empty"),
    ],
)
def test_parse_xoauth2_rejects(payload: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        parse_xoauth2(payload)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            b"n,a=a@example.com,\x01auth=Bearer tok\x01\x01",
            BearerResponse("a@example.com", "tok"),
            id="authzid",
        ),
        pytest.param(
            b"n,,\x01auth=Bearer tok\x01\x01", BearerResponse(None, "tok"), id="no-authzid"
        ),
        pytest.param(
            b"n,a=a@example.com,\x01host=smtp.example.com\x01port=587\x01auth=Bearer tok\x01\x01",
            BearerResponse("a@example.com", "tok"),
            id="host-and-port",
        ),
        pytest.param(
            b"y,a=a=2Cb=3Dc,\x01auth=Bearer tok\x01\x01",
            BearerResponse("a,b=c", "tok"),
            id="escaped-authzid",
        ),
        pytest.param(
            b"n,,\x01auth=Bearer tok\x01future=1\x01\x01",
            BearerResponse(None, "tok"),
            id="unknown-key-ignored",
        ),
    ],
)
def test_parse_oauthbearer(payload: bytes, expected: BearerResponse) -> None:
    assert parse_oauthbearer(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\x01", id="lone-kvsep"),
        pytest.param(b"n,,\x01\x01", id="no-auth"),
        pytest.param(b"n,user=a,\x01auth=Bearer tok\x01\x01", id="user-instead-of-authzid"),
        pytest.param(b"p=tls-unique,,\x01auth=Bearer tok\x01\x01", id="channel-binding"),
        pytest.param(b"n,,\x01auth=Bearer tok\x01", id="missing-final-kvsep"),
        pytest.param(b"n,,\x01auth=Bearer tok\x01\x01\x01", id="empty-pair"),
        pytest.param(b"n,,auth=Bearer tok", id="no-kvsep"),
    ],
)
def test_parse_oauthbearer_rejects(payload: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        parse_oauthbearer(payload)


def test_response_repr_hides_token() -> None:
    assert "secret-token" not in repr(BearerResponse("a", "secret-token"))


SCOPE = "https://mail.example.com/"


@pytest.mark.parametrize(
    ("shape", "mechanism", "expected"),
    [
        pytest.param(
            ErrorChallenge.BY_MECHANISM,
            "XOAUTH2",
            b'{"status":"401","schemes":"bearer","scope":"https://mail.example.com/"}',
            id="by-mechanism-xoauth2",
        ),
        pytest.param(
            ErrorChallenge.BY_MECHANISM,
            "OAUTHBEARER",
            b'{"status":"invalid_token","scope":"https://mail.example.com/"}',
            id="by-mechanism-oauthbearer",
        ),
        pytest.param(
            ErrorChallenge.GOOGLE_401,
            "OAUTHBEARER",
            b'{"status":"401","schemes":"bearer","scope":"https://mail.example.com/"}',
            id="google-401",
        ),
        pytest.param(
            ErrorChallenge.GOOGLE_400,
            "XOAUTH2",
            b'{"status":"400","schemes":"Bearer","scope":"https://mail.example.com/"}',
            id="google-400",
        ),
        pytest.param(
            ErrorChallenge.RFC7628,
            "XOAUTH2",
            b'{"status":"invalid_token","scope":"https://mail.example.com/"}',
            id="rfc7628",
        ),
        pytest.param(ErrorChallenge.NONE, "XOAUTH2", None, id="none"),
    ],
)
def test_error_challenge(shape: ErrorChallenge, mechanism: str, expected: bytes | None) -> None:
    assert error_challenge(shape, mechanism, SCOPE) == expected
