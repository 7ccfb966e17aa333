"""decode of Dovecot 2.3 log lines: titles without values the line lacks, and texts that fit.

Unless marked, the lines are real lines of Dovecot 2.3.19.1's log_path file, written on
loopback with an oauth2 passdb that queries an RFC 7662 introspection endpoint.
"""

from __future__ import annotations

import json

import pytest

from smtpdiag.cli import main
from smtpdiag.decode.detect import decode_text
from smtpdiag.models import Finding

_PREFIX = "Dec 05 06:21:30 auth: Info: oauth2(lab.user@example.com,127.0.0.1,<gt7ZAN1hCr5/AAAB>): "
NOT_VALID = _PREFIX + "oauth2 failed: Introspection failed: Provided token is not valid"
USER_MISMATCH = (
    _PREFIX + "oauth2 failed: Introspection failed: Username 'lab.user@example.com' did not "
    "match 'someone.else@example.com'"
)
ENDPOINT_500 = (
    "Dec 05 06:22:11 auth: Error: oauth2(lab.user@example.com,127.0.0.1,<CP9WA91h+IB/AAAB>): "
    "oauth2 failed: Introspection failed: 500 Internal Server Error"
)
# NOTE: constructed from the format string of Dovecot 2.3's db-oauth2.c, not seen in a run.
SCOPE = _PREFIX + "oauth2 failed: Introspection failed: Token is not valid for scope 'mail'"
# NOTE: constructed: the real submission-login line with imap-login and method=PLAIN.
PLAIN_FAILED = (
    "Dec 05 06:22:40 imap-login: Info: Disconnected: Aborted login by logging out (auth "
    "failed, 1 attempts in 2 secs): user=<bob@example.com>, method=PLAIN, rip=127.0.0.1, "
    "lip=127.0.0.1, TLS, session=<YYiNAt1hUId/AAAB>"
)
# NOTE: the token is made up. The real line carries the lab's access token.
DEBUG_TOKEN = (
    "Dec 05 06:21:58 auth: Debug: client passdb out: OK\t1\tuser=lab.user@example.com\t"
    "token=ya29.lab-xmT3Qk9vZ1RzYm5lcnRfdG9rZW5fZm9yX3Rlc3Rz"
)


def only_finding(text: str) -> Finding:
    findings = decode_text(text).findings
    assert len(findings) == 1
    return findings[0]


@pytest.mark.parametrize(
    ("text", "code", "title"),
    [
        pytest.param(
            NOT_VALID, "auth.token_rejected", "Server rejected the OAuth2 token", id="not-valid"
        ),
        pytest.param(
            USER_MISMATCH,
            "scope.user_mismatch",
            "Access token belongs to someone.else@example.com, not to the SMTP user "
            "lab.user@example.com",
            id="user-mismatch",
        ),
        pytest.param(
            SCOPE, "auth.insufficient_scope", "OAuth2 token lacks the scope mail", id="scope"
        ),
        pytest.param(
            ENDPOINT_500,
            "auth.temporary_failure",
            "Server reported a temporary authentication failure (454)",
            id="endpoint-500",
        ),
    ],
)
def test_dovecot_finding_title(text: str, code: str, title: str) -> None:
    finding = only_finding(text)
    assert finding.code == code
    assert finding.title == title


@pytest.mark.parametrize(
    "text",
    [NOT_VALID, USER_MISMATCH, SCOPE, ENDPOINT_500, PLAIN_FAILED],
    ids=["not-valid", "user-mismatch", "scope", "endpoint-500", "plain"],
)
def test_dovecot_texts_have_no_gaps(text: str) -> None:
    finding = only_finding(text)
    for part in (finding.title, finding.cause, finding.fix):
        assert "not in the log" not in part
        assert "{" not in part
        assert "  " not in part
        assert " ," not in part


def test_token_rejected_cause_fits_log() -> None:
    cause = only_finding(NOT_VALID).cause
    assert cause.startswith("The server could not use the access token:")
    assert "Dovecot's 'oauth2 failed: Introspection failed'" in cause


def test_user_mismatch_names_both_servers() -> None:
    cause = only_finding(USER_MISMATCH).cause
    assert "Exchange Online rejects it with 535 5.7.3." in cause
    assert "334 error challenge with the status 401, then 535 5.7.8" in cause


def test_user_mismatch_names_users() -> None:
    cause = only_finding(USER_MISMATCH).cause
    assert cause.startswith(
        "The token names someone.else@example.com, and the SMTP login uses lab.user@example.com."
    )


def test_temporary_failure_names_introspection() -> None:
    finding = only_finding(ENDPOINT_500)
    assert "introspection_url" in finding.fix
    assert "tls_ca_cert_file" in finding.fix


def test_credentials_rejected_opens_generally() -> None:
    fix = only_finding(PLAIN_FAILED).fix
    assert fix.startswith("Check the user name and the password or token that the client sends.")
    assert "Gmail, Yahoo and Mail.ru accept only app passwords" in fix


def test_debug_token_fix_names_auth_debug() -> None:
    finding = only_finding(DEBUG_TOKEN)
    assert finding.code == "secrets.token_in_log"
    assert finding.fix.startswith("First turn off the debug or trace option that wrote it:")
    assert "auth_debug and auth_debug_passwords" in finding.fix


def test_json_title_without_placeholder(capsys: pytest.CaptureFixture[str]) -> None:
    main(["decode", NOT_VALID, "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert [finding["title"] for finding in document["findings"]] == [
        "Server rejected the OAuth2 token"
    ]


def test_table_title_without_placeholder(capsys: pytest.CaptureFixture[str]) -> None:
    main(["decode", NOT_VALID])
    output = capsys.readouterr().out
    assert "auth.token_rejected — Server rejected the OAuth2 token\n" in output
    assert "not in the log" not in output
