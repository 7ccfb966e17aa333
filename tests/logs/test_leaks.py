"""Tests of secret-leak detection in log lines."""

from __future__ import annotations

import base64

import pytest

from smtpdiag.logs.keywords import CANDIDATE
from smtpdiag.logs.leaks import Leak, find_leaks, mask_leaks

ACCESS_TOKEN = "ya29.a0AfB_byC3example0000000000000000000000000000"
XOAUTH2 = base64.b64encode(
    f"user=alice@example.com\x01auth=Bearer {ACCESS_TOKEN}\x01\x01".encode()
).decode()
OAUTHBEARER = base64.b64encode(
    f"n,a=alice@example.com,\x01host=smtp.example.com\x01port=587\x01"
    f"auth=Bearer {ACCESS_TOKEN}\x01\x01".encode()
).decode()
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJhdWQiOiJodHRwczovL291dGxvb2sub2ZmaWNlLmNvbSJ9."
    "c2lnbmF0dXJlLWV4YW1wbGU"
)
REFRESH_TOKEN = "1//0gExampleRefreshToken-abcdefghijklmnop"
CLIENT_SECRET = "GOCSPX-ExampleSecret123456"

LEAK_CASES = [
    # msmtp --debug prints the client's commands after "--> ".
    pytest.param(
        f"--> AUTH XOAUTH2 {XOAUTH2}", [("xoauth2_response", XOAUTH2)], id="msmtp-debug-xoauth2"
    ),
    pytest.param(f"--> {XOAUTH2}", [("xoauth2_response", XOAUTH2)], id="bare-xoauth2-after-334"),
    pytest.param(
        f"--> AUTH OAUTHBEARER {OAUTHBEARER}",
        [("oauthbearer_response", OAUTHBEARER)],
        id="msmtp-debug-oauthbearer",
    ),
    # NOTE: the exact shape of a Postfix line with a token is an example: Postfix logs the
    # SASL exchange only with smtp_sasl debugging or a plugin that writes to stderr.
    pytest.param(
        f"Dec  3 10:15:02 mx postfix/smtp[4211]: sasl-xoauth2: token: Bearer {ACCESS_TOKEN}",
        [("google_access_token", ACCESS_TOKEN)],
        id="postfix-bearer-google-token",
    ),
    pytest.param(
        "Dec  3 10:15:02 mx app[77]: Authorization: Bearer abcdefABCDEF0123456789-_.~xyz",
        [("bearer_token", "abcdefABCDEF0123456789-_.~xyz")],
        id="authorization-header",
    ),
    pytest.param(f"Authorization: Bearer {JWT}", [("jwt", JWT)], id="bearer-jwt"),
    pytest.param(
        "Dec  3 10:15:02 mx sasl-xoauth2[99]:   TokenStore::Refresh: request: "
        f"client_id=123.apps.googleusercontent.com&client_secret={CLIENT_SECRET}"
        f"&grant_type=refresh_token&refresh_token={REFRESH_TOKEN}",
        [("client_secret", CLIENT_SECRET), ("refresh_token", REFRESH_TOKEN)],
        id="sasl-xoauth2-refresh-request",
    ),
    pytest.param(
        'TokenStore::Refresh: code=200, response={"access_token": "'
        f'{ACCESS_TOKEN}", "expires_in": 3599, "refresh_token": "{REFRESH_TOKEN}", '
        '"token_type": "Bearer"}',
        [("google_access_token", ACCESS_TOKEN), ("refresh_token", REFRESH_TOKEN)],
        id="json-token-body",
    ),
]

NO_LEAK_CASES = [
    pytest.param(
        'Client::TokenSentStep: from server: {"status":"400","schemes":"bearer",'
        '"scope":"https://mail.google.com/"}',
        id="schemes-bearer-in-challenge",
    ),
    pytest.param("<-- 334 eyJzdGF0dXMiOiI0MDAifQ==", id="challenge-base64-json"),
    pytest.param("--> AUTH XOAUTH2 dXNlcj1h", id="short-base64-word"),
    pytest.param("request: grant_type=refresh_token&refresh_token=", id="empty-refresh-token"),
    pytest.param("refresh_token=... client_secret=xxx", id="short-placeholders"),
    pytest.param("refresh_token=[secret] client_secret=[REDACTED]", id="masked-values"),
    pytest.param('"refresh_token": ""', id="empty-json-value"),
    pytest.param(
        "Dec  3 10:15:02 mx msmtp: host=smtp.gmail.com tls=on auth=on user=alice@example.com "
        "from=alice@example.com recipients=bob@example.net errormsg='authentication failed "
        "(method XOAUTH2)' exitcode=EX_NOPERM",
        id="msmtp-failure-record",
    ),
    pytest.param(
        'WWW-Authenticate: Bearer realm="example", error="invalid_token"', id="bearer-challenge"
    ),
]


@pytest.mark.parametrize(("line", "expected"), LEAK_CASES)
def test_find_leaks_reports_secret_spans(line: str, expected: list[tuple[str, str]]) -> None:
    leaks = find_leaks(line)
    found = [(leak.kind, line[leak.start : leak.end]) for leak in leaks]
    assert found == expected


@pytest.mark.parametrize("line", NO_LEAK_CASES)
def test_find_leaks_ignores_non_secrets(line: str) -> None:
    assert find_leaks(line) == ()


@pytest.mark.parametrize(("line", "expected"), LEAK_CASES)
def test_leak_lines_are_candidates(line: str, expected: list[tuple[str, str]]) -> None:
    assert CANDIDATE.search(line.encode()) is not None


@pytest.mark.parametrize(("line", "expected"), LEAK_CASES)
def test_mask_leaks_removes_every_secret(line: str, expected: list[tuple[str, str]]) -> None:
    masked = mask_leaks(line, find_leaks(line))
    for _, secret in expected:
        assert secret not in masked
    assert masked.count("[secret]") == len(expected)


def test_mask_leaks_keeps_text_around() -> None:
    line = "before refresh_token=abcdefghijkl after"
    assert (
        mask_leaks(line, [Leak("refresh_token", 21, 33)]) == "before refresh_token=[secret] after"
    )


def test_overlapping_bearer_and_google_token() -> None:
    line = f"Bearer {ACCESS_TOKEN}"
    assert [leak.kind for leak in find_leaks(line)] == ["google_access_token"]


def test_upper_case_bearer_scheme_is_found() -> None:
    # The auth scheme name is case-insensitive (RFC 7235), so BEARER is a Bearer token too.
    line = "proxy: authorization: BEARER ya29.a0AfB_byC7exampletokenvalue1234"
    kinds = {leak.kind for leak in find_leaks(line)}
    assert kinds & {"bearer_token", "google_access_token"}
