"""Parsing client responses: round trips, each problem code from a realistic input, redaction."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Callable
from typing import cast

import pytest

from smtpdiag.redact import MASK, redact
from smtpdiag.sasl import (
    ClientResponse,
    Mechanism,
    ResponseProblemCode,
    TokenKind,
    encode,
    oauthbearer_response,
    parse_client_response,
    plain_response,
    xoauth2_response,
)

GOOGLE_USER = "someuser@example.com"
GOOGLE_TOKEN = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
MICROSOFT_TOKEN = "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA"
RFC_TOKEN = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="

# RFC 7628 section 4.1 initial response, wrapped as the RFC prints it.
RFC_WRAPPED = """bixhPXVzZXJAZXhhbXBsZS5jb20sAWhv
      c3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyI
      HZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQ
      EB"""


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def codes(response: ClientResponse) -> list[ResponseProblemCode]:
    return list(response.problem_codes)


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "mechanism", "user", "host", "port"),
    [
        pytest.param(
            xoauth2_response(GOOGLE_USER, GOOGLE_TOKEN),
            Mechanism.XOAUTH2,
            GOOGLE_USER,
            None,
            None,
            id="xoauth2",
        ),
        pytest.param(
            oauthbearer_response(None, RFC_TOKEN), Mechanism.OAUTHBEARER, None, None, None, id="ob"
        ),
        pytest.param(
            oauthbearer_response("user@example.com", RFC_TOKEN),
            Mechanism.OAUTHBEARER,
            "user@example.com",
            None,
            None,
            id="ob-user",
        ),
        pytest.param(
            oauthbearer_response("user@example.com", RFC_TOKEN, "server.example.com", 587),
            Mechanism.OAUTHBEARER,
            "user@example.com",
            "server.example.com",
            587,
            id="ob-user-host-port",
        ),
        pytest.param(
            oauthbearer_response("a,b=c@example.com", RFC_TOKEN),
            Mechanism.OAUTHBEARER,
            "a,b=c@example.com",
            None,
            None,
            id="ob-escaped-user",
        ),
    ],
)
def test_round_trip(
    raw: bytes, mechanism: Mechanism, user: str | None, host: str | None, port: int | None
) -> None:
    response = parse_client_response(encode(raw))
    assert response.mechanism is mechanism
    assert response.user == user
    assert response.host == host
    assert response.port == port
    assert response.problems == ()


@pytest.mark.parametrize(
    ("raw", "length"),
    [
        pytest.param(xoauth2_response(GOOGLE_USER, GOOGLE_TOKEN), len(GOOGLE_TOKEN), id="xoauth2"),
        pytest.param(oauthbearer_response(None, RFC_TOKEN), len(RFC_TOKEN), id="oauthbearer"),
    ],
)
def test_round_trip_token_description(raw: bytes, length: int) -> None:
    response = parse_client_response(encode(raw))
    assert response.token_kind is TokenKind.OPAQUE
    assert response.token_length == length


def test_decoded_bytes_input() -> None:
    response = parse_client_response(xoauth2_response(GOOGLE_USER, GOOGLE_TOKEN))
    assert response.mechanism is Mechanism.XOAUTH2
    assert response.problems == ()


def test_surrounding_whitespace_ignored() -> None:
    text = "  " + encode(xoauth2_response(GOOGLE_USER, GOOGLE_TOKEN)) + "\r\n"
    assert parse_client_response(text).problems == ()


def test_bearer_scheme_case_insensitive() -> None:
    # RFC 7628 section 3.1 takes the HTTP scheme name case-insensitively.
    raw = f"user={GOOGLE_USER}\x01auth=BEARER {GOOGLE_TOKEN}\x01\x01".encode()
    assert parse_client_response(b64(raw)).problems == ()


def test_plain_response() -> None:
    response = parse_client_response(encode(plain_response("user@example.com", "hunter2-pw")))
    assert response.mechanism is Mechanism.PLAIN
    assert response.user == "user@example.com"
    assert response.problems == ()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty-line"),
        pytest.param("AQ==", id="kvsep"),
        pytest.param("=", id="zero-length"),
    ],
)
def test_dummy_detected(text: str) -> None:
    assert parse_client_response(text).is_dummy is True


def test_dummy_bytes_detected() -> None:
    assert parse_client_response(b"\x01").is_dummy is True


def test_cancel_detected() -> None:
    assert parse_client_response("*").is_cancel is True


def test_initial_response_not_dummy() -> None:
    text = encode(xoauth2_response(GOOGLE_USER, GOOGLE_TOKEN))
    assert parse_client_response(text).is_dummy is False


# --- problem codes ---------------------------------------------------------------------------

PROBLEM_CASES = [
    # Only one 0x01 at the end: a hand-written printf that dropped the last ^A.
    pytest.param(
        b64(f"user={GOOGLE_USER}\x01auth=Bearer {GOOGLE_TOKEN}\x01".encode()),
        None,
        [ResponseProblemCode.MISSING_SEPARATORS],
        id="one-final-kvsep",
    ),
    # echo without -n appends a line break after the two 0x01 bytes.
    pytest.param(
        b64(f"user={GOOGLE_USER}\x01auth=Bearer {GOOGLE_TOKEN}\x01\x01\n".encode()),
        None,
        [ResponseProblemCode.MISSING_SEPARATORS],
        id="echo-line-break",
    ),
    # "^A" copied from the documentation instead of the byte.
    pytest.param(
        b64(f"user={GOOGLE_USER}^Aauth=Bearer {GOOGLE_TOKEN}^A^A".encode()),
        None,
        [ResponseProblemCode.MISSING_SEPARATORS],
        id="caret-a-text",
    ),
    # Spaces where the first 0x01 belongs.
    pytest.param(
        b64(f"user={GOOGLE_USER} auth=Bearer {GOOGLE_TOKEN}\x01\x01".encode()),
        None,
        [ResponseProblemCode.MISSING_SEPARATORS],
        id="space-between-pairs",
    ),
    # A raw token where "Bearer <token>" belongs.
    pytest.param(
        b64(f"user={GOOGLE_USER}\x01auth={GOOGLE_TOKEN}\x01\x01".encode()),
        None,
        [ResponseProblemCode.MISSING_BEARER],
        id="auth-without-bearer",
    ),
    pytest.param(
        b64(f"n,,\x01auth=Bearer{RFC_TOKEN}\x01\x01".encode()),
        None,
        [ResponseProblemCode.MISSING_BEARER],
        id="bearer-without-space",
    ),
    # msmtp users who set "password" or "passwordeval" to an access token with auth plain.
    pytest.param(
        encode(plain_response(GOOGLE_USER, GOOGLE_TOKEN)),
        Mechanism.PLAIN,
        [ResponseProblemCode.RAW_TOKEN],
        id="plain-password-is-token",
    ),
    # A raw ya29 token pasted in place of the base64 response.
    pytest.param(GOOGLE_TOKEN, Mechanism.XOAUTH2, [ResponseProblemCode.RAW_TOKEN], id="raw-ya29"),
    # Microsoft's sample token is itself valid base64 but decodes to binary bytes.
    pytest.param(MICROSOFT_TOKEN, None, [ResponseProblemCode.RAW_TOKEN], id="raw-ewb"),
    # The token alone, base64-encoded, without the XOAUTH2 wrapping.
    pytest.param(
        b64(GOOGLE_TOKEN.encode()),
        Mechanism.XOAUTH2,
        [ResponseProblemCode.RAW_TOKEN],
        id="base64-of-token",
    ),
    pytest.param("hunter2!", None, [ResponseProblemCode.RAW_TOKEN], id="raw-password"),
    # An old curl build sent OAUTHBEARER without the GS2 header.
    pytest.param(
        b64(f"auth=Bearer {RFC_TOKEN}\x01\x01".encode()),
        Mechanism.OAUTHBEARER,
        [ResponseProblemCode.NO_GS2_HEADER],
        id="oauthbearer-no-header",
    ),
    pytest.param(
        encode(xoauth2_response(GOOGLE_USER, GOOGLE_TOKEN)),
        Mechanism.OAUTHBEARER,
        [ResponseProblemCode.NO_GS2_HEADER],
        id="xoauth2-sent-as-oauthbearer",
    ),
    # RFC 7628 section 4.4 shows "n,user=" in its SMTP example. NOTE: only the "n,user=" form
    # is taken from the RFC here; the remaining fields follow its section 4.1 example.
    pytest.param(
        b64(f"n,user=someuser@example.com,\x01auth=Bearer {RFC_TOKEN}\x01\x01".encode()),
        None,
        [ResponseProblemCode.USER_INSTEAD_OF_AUTHZID],
        id="rfc7628-4.4-user",
    ),
    pytest.param(RFC_WRAPPED, None, [ResponseProblemCode.WHITESPACE_IN_BASE64], id="rfc-wrapped"),
    # base64(1) without -w 0 wraps at 76 columns.
    pytest.param(
        "\n".join(textwrap.wrap(encode(xoauth2_response(GOOGLE_USER, GOOGLE_TOKEN)), 76)),
        None,
        [ResponseProblemCode.WHITESPACE_IN_BASE64],
        id="wrapped-at-76",
    ),
    pytest.param(
        "hello world, this is not base64", None, [ResponseProblemCode.NOT_BASE64], id="prose"
    ),
    pytest.param("QUJD\x07", None, [ResponseProblemCode.NOT_BASE64], id="control-byte"),
    # Decoded text pasted or sent where base64 belongs.
    pytest.param(
        f"user={GOOGLE_USER}\x01auth=Bearer {GOOGLE_TOKEN}\x01\x01",
        None,
        [ResponseProblemCode.NOT_BASE64],
        id="decoded-text-sent",
    ),
]


@pytest.mark.parametrize(("text", "mechanism", "expected"), PROBLEM_CASES)
def test_problem_codes(
    text: str, mechanism: Mechanism | None, expected: list[ResponseProblemCode]
) -> None:
    assert codes(parse_client_response(text, mechanism)) == expected


def test_each_problem_code_covered() -> None:
    expected_lists = [cast(list[ResponseProblemCode], case.values[2]) for case in PROBLEM_CASES]
    covered = {code for expected in expected_lists for code in expected}
    assert covered == set(ResponseProblemCode)


def test_missing_bearer_still_finds_token() -> None:
    text = b64(f"user={GOOGLE_USER}\x01auth={GOOGLE_TOKEN}\x01\x01".encode())
    assert parse_client_response(text).token_length == len(GOOGLE_TOKEN)


def test_rfc7628_user_quirk_keeps_user() -> None:
    text = b64(f"n,user=someuser@example.com,\x01auth=Bearer {RFC_TOKEN}\x01\x01".encode())
    assert parse_client_response(text).user == "someuser@example.com"


def test_caret_a_detail_names_cause() -> None:
    text = b64(f"user={GOOGLE_USER}^Aauth=Bearer {GOOGLE_TOKEN}^A^A".encode())
    assert "^A" in parse_client_response(text).problems[0].detail


def test_wrapped_detail_names_line_count() -> None:
    response = parse_client_response(RFC_WRAPPED)
    assert "4 lines" in response.problems[0].detail


def test_wrapped_response_still_parsed() -> None:
    response = parse_client_response(RFC_WRAPPED)
    assert response.host == "server.example.com"
    assert response.port == 143


def test_raw_jwt_described() -> None:
    header = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"RS256"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(b'{"aud":"https://outlook.office.com"}').rstrip(b"=")
    jwt = f"{header}.{payload.decode()}.c2lnbmF0dXJlLWJ5dGVz"
    response = parse_client_response(jwt, Mechanism.XOAUTH2)
    assert response.token_kind is TokenKind.JWT
    assert codes(response) == [ResponseProblemCode.RAW_TOKEN]


# --- redaction -------------------------------------------------------------------------------

REDACTION_CASES = [
    pytest.param(
        "ya29.redact-xoauth2-token-1",
        lambda token: b64(f"user=a@example.com\x01auth=Bearer {token}\x01\x01".encode()),
        id="xoauth2",
    ),
    pytest.param(
        "ya29.redact-missing-bearer-2",
        lambda token: b64(f"user=a@example.com\x01auth={token}\x01\x01".encode()),
        id="missing-bearer",
    ),
    pytest.param(
        "redact-oauthbearer-token-3",
        lambda token: b64(f"n,,\x01auth=Bearer {token}\x01\x01".encode()),
        id="oauthbearer",
    ),
    pytest.param("ya29.redact-raw-token-4", lambda token: token, id="raw-token"),
    pytest.param(
        "redact-password-5!",
        lambda token: encode(plain_response("a@example.com", token)),
        id="plain",
    ),
    pytest.param("redact-password-6!", lambda token: token, id="raw-password"),
    pytest.param(
        "ya29.redact-no-separators-7",
        lambda token: b64(f"user=a@example.com auth=Bearer {token}".encode()),
        id="no-separators",
    ),
    pytest.param(
        "tok-upper-case-keys-8",
        lambda token: b64(f"User=a@example.com\x01Auth=Bearer {token}\x01\x01".encode()),
        id="upper-case-keys",
    ),
    pytest.param(
        "tok-bearer-in-noise-9",
        lambda token: b64(f"sent by mail@example.com: Bearer {token} (failed)".encode()),
        id="bearer-in-noise",
    ),
]


@pytest.mark.parametrize(("token", "make_text"), REDACTION_CASES)
def test_parsed_token_redacted(token: str, make_text: Callable[[str], str]) -> None:
    # Inputs are built by hand, so that no builder registers the token before the parser does.
    parse_client_response(make_text(token))
    assert redact(f"token={token}") == f"token={MASK}"


def test_problem_details_omit_token() -> None:
    token = "ya29.detail-must-not-show-this"
    response = parse_client_response(b64(f"user=a@example.com\x01auth={token}\x01\x01".encode()))
    assert all(token not in problem.detail for problem in response.problems)


def test_repr_omits_token() -> None:
    token = "ya29.repr-must-not-show-this"
    response = parse_client_response(
        b64(f"user=a@example.com\x01auth=Bearer {token}\x01\x01".encode())
    )
    assert token not in repr(response)
