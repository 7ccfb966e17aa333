"""Tests of secret-leak detection in log lines."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

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
# A form body that was URL-encoded a second time, as a query parameter or in a logged URL.
ENCODED_BODY = quote(
    f"client_secret={CLIENT_SECRET}&refresh_token={REFRESH_TOKEN}&access_token={ACCESS_TOKEN}",
    safe="",
)
XOAUTH2_HEAD, XOAUTH2_TAIL = XOAUTH2[:41], XOAUTH2[41:]
OAUTHBEARER_HEAD, OAUTHBEARER_TAIL = OAUTHBEARER[:70], OAUTHBEARER[70:]

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
    # NOTE: the key: value lines are examples of debug output and configuration echoes, not
    # copied from a particular program.
    pytest.param(
        f"oauth2 debug: refresh_token: {REFRESH_TOKEN}",
        [("refresh_token", REFRESH_TOKEN)],
        id="key-colon-space-value",
    ),
    pytest.param(
        f"config client_secret:{CLIENT_SECRET} loaded",
        [("client_secret", CLIENT_SECRET)],
        id="key-colon-value",
    ),
    pytest.param(
        f'refresh_token: "{REFRESH_TOKEN}"', [("refresh_token", REFRESH_TOKEN)], id="yaml-quoted"
    ),
    pytest.param(
        f"client_secret: '{CLIENT_SECRET}'",
        [("client_secret", CLIENT_SECRET)],
        id="yaml-single-quoted",
    ),
    pytest.param(
        f"token response: {{'access_token': '{ACCESS_TOKEN}', 'refresh_token': '{REFRESH_TOKEN}'}}",
        [("google_access_token", ACCESS_TOKEN), ("refresh_token", REFRESH_TOKEN)],
        id="python-dict-repr",
    ),
    pytest.param(
        f"GET /callback?body={ENCODED_BODY} HTTP/1.1",
        [
            ("client_secret", quote(CLIENT_SECRET, safe="")),
            ("refresh_token", quote(REFRESH_TOKEN, safe="")),
            ("google_access_token", ACCESS_TOKEN),
        ],
        id="url-encoded-fields",
    ),
    pytest.param(
        "request: url=https://mail.example.com/api?auth=Bearer%20abcdefABCDEF0123456789-_.~xyz",
        [("bearer_token", "abcdefABCDEF0123456789-_.~xyz")],
        id="url-encoded-bearer",
    ),
    pytest.param(
        "header=Authorization%3A%20Bearer%20abcdef%2FABCDEF0123456789%3D%3D&x=1",
        [("bearer_token", "abcdef%2FABCDEF0123456789%3D%3D")],
        id="url-encoded-bearer-with-escapes",
    ),
    pytest.param(
        f"--> AUTH XOAUTH2 {XOAUTH2_HEAD} {XOAUTH2_TAIL}",
        [("xoauth2_response", f"{XOAUTH2_HEAD} {XOAUTH2_TAIL}")],
        id="xoauth2-split-by-space",
    ),
    pytest.param(
        f"--> AUTH OAUTHBEARER {OAUTHBEARER_HEAD} {OAUTHBEARER_TAIL} exitcode=EX_OK",
        [("oauthbearer_response", f"{OAUTHBEARER_HEAD} {OAUTHBEARER_TAIL}")],
        id="oauthbearer-split-by-space",
    ),
    # Dovecot 2.3 with auth_debug = yes: the passdb reply carries the client's token, and
    # submission-login's smtp-server debug logs the whole AUTH command.
    pytest.param(
        "Dec 05 06:21:58 auth: Debug: client passdb out: OK\t1\tuser=alice@example.com"
        "\ttoken=opaque-Token.0123456789abcdef",
        [("bearer_token", "opaque-Token.0123456789abcdef")],
        id="dovecot-passdb-token",
    ),
    pytest.param(
        "Dec 05 06:21:58 auth: Debug: client passdb out: OK\t1\tuser=alice@example.com"
        f"\ttoken={ACCESS_TOKEN}\tfield=x",
        [("google_access_token", ACCESS_TOKEN)],
        id="dovecot-passdb-google-token",
    ),
    pytest.param(
        "Dec  5 06:21:58 mx1 dovecot[812]: auth: Debug: client passdb out: "
        "OK#0111#011user=bob@example.com#011token=opaque-Token.0123456789abcdef",
        [("bearer_token", "opaque-Token.0123456789abcdef")],
        id="dovecot-passdb-token-rsyslog-escaped",
    ),
    pytest.param(
        "Dec  5 06:21:58 mx1 dovecot[812]: auth: Debug: client passdb out: "
        "OK 1 user=bob@example.com token=opaque-Token.0123456789abcdef",
        [("bearer_token", "opaque-Token.0123456789abcdef")],
        id="dovecot-passdb-token-spaces",
    ),
    pytest.param(
        "Dec 05 06:21:30 submission-login: Debug: smtp-server: conn 127.0.0.1:48650 [1]: "
        f"Received new command: AUTH XOAUTH2 {XOAUTH2}",
        [("xoauth2_response", XOAUTH2)],
        id="dovecot-smtp-server-auth-command",
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
    pytest.param("refresh_token: invalid_grant", id="colon-error-code"),
    pytest.param('"grant_type": "refresh_token", "scope": "mail"', id="grant-type-value"),
    pytest.param("refresh_token%3D%3Credacted%3E", id="url-encoded-placeholder"),
    pytest.param(
        "Dec 05 06:21:30 auth: Debug: client passdb out: CONT\t1\t"
        "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=",
        id="dovecot-error-challenge",
    ),
    pytest.param("client passdb out: OK\t1\tuser=a\ttoken=<hidden>", id="dovecot-hidden-token"),
    pytest.param(
        "auth: Debug: client in: AUTH\t1\tXOAUTH2\tservice=submission\tresp=<hidden>",
        id="dovecot-hidden-response",
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


def test_complete_response_keeps_next_word() -> None:
    line = f"--> AUTH XOAUTH2 {XOAUTH2} dGFpbA=="
    leaks = find_leaks(line)
    assert [line[leak.start : leak.end] for leak in leaks] == [XOAUTH2]


def journal_line(message: object) -> str:
    """Return a ``journalctl -o json`` line with the given MESSAGE value."""
    # Field names and the byte-array form follow systemd's JSON export format; the values
    # are examples.
    entry = {
        "__REALTIME_TIMESTAMP": "1764756902000000",
        "_HOSTNAME": "mx",
        "SYSLOG_IDENTIFIER": "sasl-xoauth2",
        "MESSAGE": message,
        "_PID": "99",
    }
    return json.dumps(entry, separators=(",", ":"))


JOURNAL_CASES = [
    pytest.param(
        journal_line(list(f"refresh_token={REFRESH_TOKEN} \xff".encode("latin-1"))),
        ["refresh_token"],
        id="byte-array-message",
    ),
    pytest.param(
        journal_line(f'response={{"refresh_token": "{REFRESH_TOKEN}"}}'),
        ["refresh_token"],
        id="escaped-json-in-message",
    ),
    pytest.param(
        journal_line(list(f"--> AUTH XOAUTH2 {XOAUTH2}".encode())),
        ["xoauth2_response"],
        id="byte-array-sasl-response",
    ),
]


@pytest.mark.parametrize(("line", "kinds"), JOURNAL_CASES)
def test_journal_message_is_decoded(line: str, kinds: list[str]) -> None:
    leaks = find_leaks(line)
    message_start = line.index('"MESSAGE":') + len('"MESSAGE":')
    message_end = line.index(',"_PID"')
    assert [leak.kind for leak in leaks] == kinds
    assert [(leak.start, leak.end) for leak in leaks] == [(message_start, message_end)]
    assert CANDIDATE.search(line.encode()) is not None


def test_journal_masking_removes_message() -> None:
    line = journal_line(list(f"refresh_token={REFRESH_TOKEN} \xff".encode("latin-1")))
    masked = mask_leaks(line, find_leaks(line))
    assert masked.endswith('"MESSAGE":[secret],"_PID":"99"}')
    assert '"_HOSTNAME":"mx"' in masked


def test_journal_message_without_secret() -> None:
    assert find_leaks(journal_line(list(b"hello \xff world"))) == ()


XOAUTH2_RESPONSE = base64.b64encode(
    b"user=alice@example.com\x01auth=Bearer ya29.a0AfB_exampleTOKENvalue0123456789\x01\x01"
).decode()


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        pytest.param(
            "2026-12-04 10:20:06 dovecot_plain authenticator failed for (laptop) [192.0.2.7]: "
            f"535 Incorrect authentication data (set_id={XOAUTH2_RESPONSE})",
            XOAUTH2_RESPONSE,
            id="sasl-response-after-equals",
        ),
        pytest.param(
            'level=error msg="token refresh" refresh_token="1//0gREFRESHexampleTOKENvalue"',
            "1//0gREFRESHexampleTOKENvalue",
            id="logfmt-double-quoted",
        ),
        pytest.param(
            "client_secret='Qw8Q~exampleCLIENTsecretVALUE'",
            "Qw8Q~exampleCLIENTsecretVALUE",
            id="shell-single-quoted",
        ),
        # Shape of sasl-xoauth2's trace line after reading its token file.
        pytest.param(
            "Dec  4 10:20:00 mx sasl-xoauth2:   2026-12-04 10:20:00: TokenStore::Read: "
            "refresh=1//0gREFRESHexampleTOKENvalue-abcdef, access=opaqueACCESSexample0123456789",
            "1//0gREFRESHexampleTOKENvalue-abcdef",
            id="sasl-xoauth2-token-store-read",
        ),
    ],
)
def test_secret_is_found_and_masked(line: str, secret: str) -> None:
    leaks = find_leaks(line)
    assert leaks != ()
    assert secret not in mask_leaks(line, leaks)


# Bare Google secrets, found by their prefixes ---------------------------------------------

BARE_REFRESH_TOKEN = "1//0gAbCdEfGhIjKlMnOpQrStUvWxYz"
BARE_CLIENT_SECRET = "GOCSPX-AbCdEfGhIjKlMnOpQrStUvWx12"

BARE_SECRET_CASES = [
    # msmtp's log record keeps the server's reply text in smtpmsg=.
    pytest.param(
        "Dec  5 05:19:33 host msmtp: host=smtp.gmail.com tls=on auth=on user=u@example.com "
        "smtpstatus=535 smtpmsg='535-5.7.8 Username and Password not accepted. "
        f"{BARE_REFRESH_TOKEN}' errormsg='authentication failed (method XOAUTH2)' "
        "exitcode=EX_NOPERM",
        [("refresh_token", BARE_REFRESH_TOKEN)],
        id="msmtp-smtpmsg-refresh-token",
    ),
    pytest.param(
        "Dec  5 05:19:40 host postfix/smtp[126]: 5DEF: to=<r@example.com>, status=bounced "
        f"(host 127.0.0.1[127.0.0.1] said: 554 {BARE_CLIENT_SECRET} (in reply to end of "
        "DATA command))",
        [("client_secret", BARE_CLIENT_SECRET)],
        id="postfix-reply-client-secret",
    ),
    pytest.param(
        f"status=bounced token={quote(BARE_REFRESH_TOKEN, safe='')}&x=1",
        [("refresh_token", quote(BARE_REFRESH_TOKEN, safe=""))],
        id="url-encoded-refresh-token",
    ),
    pytest.param(
        f"status=bounced body=token%3D{quote(BARE_REFRESH_TOKEN, safe='')}%26x",
        [("refresh_token", quote(BARE_REFRESH_TOKEN, safe=""))],
        id="refresh-token-after-escape",
    ),
    pytest.param(
        f"msmtpd: Authorization: Bearer {BARE_REFRESH_TOKEN}",
        [("refresh_token", BARE_REFRESH_TOKEN)],
        id="refresh-token-over-bearer",
    ),
]

BARE_NO_LEAK_CASES = [
    pytest.param("status=sent GOCSPX-xxxxxxxxxxxxxxxxxxxxxxxxxxxx", id="repeated-character"),
    pytest.param("status=sent GOCSPX-your_client_secret_here", id="placeholder-words"),
    pytest.param("status=sent GOCSPX-AbCdEf123", id="short-client-secret"),
    pytest.param("status=sent 1//0gAbCdEf", id="short-refresh-token"),
    pytest.param("status=sent 1//CgAbCdEfGhIjKlMnOpQrStUvWxYz", id="refresh-token-without-0"),
    pytest.param("GET https://example.com/v1//0abcdefghijklmnopqrstuvwxyz", id="path-v1"),
    pytest.param("archived /srv/2021//0abcdefghijklmnopqrstuvwxyz", id="path-year"),
]


@pytest.mark.parametrize(("line", "expected"), BARE_SECRET_CASES)
def test_bare_google_secrets_found(line: str, expected: list[tuple[str, str]]) -> None:
    found = [(leak.kind, line[leak.start : leak.end]) for leak in find_leaks(line)]
    assert found == expected


@pytest.mark.parametrize(("line", "expected"), BARE_SECRET_CASES)
def test_bare_google_secrets_masked(line: str, expected: list[tuple[str, str]]) -> None:
    masked = mask_leaks(line, find_leaks(line))
    for _, secret in expected:
        assert secret not in masked
    assert masked.count("[secret]") == len(expected)


@pytest.mark.parametrize("line", BARE_NO_LEAK_CASES)
def test_bare_google_shapes_not_secrets(line: str) -> None:
    assert find_leaks(line) == ()
