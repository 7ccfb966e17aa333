"""Token description and JWT decoding without the signature."""

from __future__ import annotations

import base64
import json

import pytest

from smtpdiag.redact import MASK, redact
from smtpdiag.sasl import TokenKind, describe_token, jwt_claims


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(header: object, payload: object, signature: bytes = b"\x8f" * 32) -> str:
    parts = (json.dumps(header).encode(), json.dumps(payload).encode(), signature)
    return ".".join(base64url(part) for part in parts)


# Claim names follow Microsoft identity platform access tokens (aud, scp, exp); the values
# are invented, since a real token would carry a real tenant.
MICROSOFT_CLAIMS = {
    "aud": "https://outlook.office.com",
    "scp": "SMTP.Send",
    "exp": 1767225600,
    "upn": "test@contoso.onmicrosoft.com",
}
JWT = make_jwt({"typ": "JWT", "alg": "RS256"}, MICROSOFT_CLAIMS)


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        pytest.param(JWT, TokenKind.JWT, id="jwt"),
        # Google's XOAUTH2 page sample; Microsoft's Exchange OAuth page sample.
        pytest.param("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg", TokenKind.OPAQUE, id="ya29"),
        pytest.param("EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA", TokenKind.OPAQUE, id="ewb"),
        pytest.param("aaa.bbb.ccc", TokenKind.OPAQUE, id="three-parts-not-json"),
        pytest.param(
            base64url(b"[1]") + "." + base64url(b"{}") + ".", TokenKind.OPAQUE, id="header-array"
        ),
    ],
)
def test_describe_token_kind(token: str, kind: TokenKind) -> None:
    assert describe_token(token).kind is kind


def test_describe_token_length() -> None:
    assert describe_token(JWT).length == len(JWT)


def test_describe_token_registers() -> None:
    token = "ya29.describe-registers-this"
    describe_token(token)
    assert redact(token) == MASK


def test_jwt_claims_header() -> None:
    claims = jwt_claims(JWT)
    assert claims is not None
    assert claims["header"] == {"typ": "JWT", "alg": "RS256"}


def test_jwt_claims_payload() -> None:
    claims = jwt_claims(JWT)
    assert claims is not None
    assert claims["payload"] == MICROSOFT_CLAIMS


def test_jwt_claims_omit_signature() -> None:
    claims = jwt_claims(JWT)
    assert set(claims or {}) == {"header", "payload"}


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg", id="opaque"),
        pytest.param(JWT.split(".")[0] + ".!!!." + JWT.split(".")[2], id="payload-not-base64url"),
        pytest.param(JWT.split(".")[0] + "." + base64url(b"null") + ".", id="payload-not-object"),
        pytest.param(JWT + ".extra", id="four-parts"),
        pytest.param("", id="empty"),
    ],
)
def test_jwt_claims_none(token: str) -> None:
    assert jwt_claims(token) is None
