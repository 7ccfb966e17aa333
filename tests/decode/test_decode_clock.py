"""decode: clock symptoms in token endpoint bodies, exception messages and log lines."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from smtpdiag.cli import main
from smtpdiag.decode.detect import decode_text
from smtpdiag.decode.result import InputKind
from smtpdiag.models import Status

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "smtpdiag.decode-1.schema.json").read_text())

# A PowerShell tool's bug report of 2024, with the description that Microsoft sent.
AADSTS700024_BODY = json.dumps(
    {
        "error": "invalid_client",
        "error_description": "AADSTS700024: Client assertion is not within its valid time "
        "range. Current time: 2024-12-07T12:09:18.3149355Z, assertion valid from "
        "1970-01-01T00:00:00.0000000Z, expiry time of assertion 2024-12-07T11:14:18.0000000Z.",
    }
)
# The same reply as curl -i prints it.
AADSTS700024_CURL = (
    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json; charset=utf-8\r\n\r\n"
    + AADSTS700024_BODY
)
# The line-login starter's report of 2018 (auth0 java-jwt 3.x).
JAVA_JWT = "The token can't be used before Tue Apr 17 11:32:42 WIB 2018"
# The same message in an application log around it; the log lines are made up.
JAVA_JWT_LOG = (
    "2018-04-17 11:32:39.100 INFO  c.e.LoginController - exchanging code\n"
    "2018-04-17 11:32:39.512 ERROR c.e.LoginController - login failed\n"
    "com.auth0.jwt.exceptions.InvalidClaimException: The Token can't be used before "
    "Tue Apr 17 11:32:42 WIB 2018.\n"
    "\tat com.auth0.jwt.JWTVerifier.assertDateIsPast(JWTVerifier.java:123)\n"
)
GOOGLE_INVALID_JWT = (
    '{"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a short-lived '
    "token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the "
    'JWT claim."}'
)
# ADAL for Java's test run of 2015, whose host clock was wrong.
ADAL_50012 = (
    '{"error_description":"AADSTS70002: Error validating credentials. AADSTS50012: Client '
    "assertion is not within its valid time range.\\r\\nTrace ID: "
    "80ad7758-a570-42f0-97b7-ae2dded006c7\\r\\nCorrelation ID: "
    '986a6c2c-a596-4189-b5b5-3a1b1a9a17e2\\r\\nTimestamp: 2015-07-30 17:18:47Z",'
    '"error":"invalid_client"}'
)
GO_JWT = "Error: Token used before issued (*jwt.ValidationError)"


@pytest.mark.parametrize(
    ("text", "kind", "code"),
    [
        pytest.param(
            AADSTS700024_BODY,
            InputKind.TOKEN_RESPONSE,
            "clock.assertion_time_range",
            id="aadsts700024-json",
        ),
        pytest.param(
            AADSTS700024_CURL,
            InputKind.TOKEN_RESPONSE,
            "clock.assertion_time_range",
            id="aadsts700024-curl",
        ),
        pytest.param(
            ADAL_50012,
            InputKind.TOKEN_RESPONSE,
            "clock.assertion_time_invalid",
            id="aadsts50012-json",
        ),
        pytest.param(
            GOOGLE_INVALID_JWT,
            InputKind.TOKEN_RESPONSE,
            "clock.jwt_time_invalid",
            id="google-invalid-jwt",
        ),
        pytest.param(JAVA_JWT, InputKind.LOG, "clock.token_used_before_issued", id="java-jwt"),
        pytest.param(
            JAVA_JWT_LOG, InputKind.LOG, "clock.token_used_before_issued", id="java-jwt-log"
        ),
        pytest.param(GO_JWT, InputKind.LOG, "clock.token_used_before_issued", id="go-jwt"),
    ],
)
def test_decode_clock_symptom(text: str, kind: InputKind, code: str) -> None:
    result = decode_text(text)
    assert result.input_kind is kind
    assert [finding.code for finding in result.findings] == [code]
    assert result.status is Status.CRITICAL


def test_curl_reply_keeps_http_status() -> None:
    result = decode_text(AADSTS700024_CURL)
    assert result.facts["http_status"] == 401
    assert result.findings[0].facts["gap_seconds"] == 3300
    assert result.findings[0].facts["timezone_suspected"] is True


def test_log_gap_from_line_before() -> None:
    result = decode_text(JAVA_JWT_LOG)
    assert result.facts["validator_time"] == "2018-04-17 11:32:39.512"
    assert result.facts["gap_seconds"] == 2
    assert result.facts["gap_assumes_same_timezone"] is True
    assert "by 2 seconds" in result.findings[0].cause


def test_cli_json_gap_in_plain_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    body = json.dumps(
        {
            "error": "invalid_client",
            "error_description": "AADSTS700024: Client assertion is not within its valid time "
            "range. Current time: 2024-10-02T22:05:03.6755165Z, assertion valid from "
            "1970-01-01T00:00:00.0000000Z, expiry time of assertion "
            "2024-10-02T21:30:53.1234567Z.",
        }
    )
    main(["decode", body, "--format", "json"])
    output = capsys.readouterr().out
    assert '"gap_seconds": 2050.552' in output
    assert "34 minutes 10.552 seconds" in output


def test_cli_json_key_expired_is_not_clock(capsys: pytest.CaptureFixture[str]) -> None:
    body = json.dumps(
        {
            "error": "invalid_client",
            "error_description": "AADSTS50012: Client assertion contains an invalid signature. "
            "[Reason - The key used is expired.]",
        }
    )
    main(["decode", body, "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert [finding["code"] for finding in document["findings"]] == ["token.invalid_client"]


def test_cli_ambiguous_zone_gap_reason(capsys: pytest.CaptureFixture[str]) -> None:
    text = "2018-04-17T11:30:00Z The Token can't be used before Tue Apr 17 11:32:42 IST 2018."
    main(["decode", text, "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    cause = document["findings"][0]["cause"]
    assert document["facts"]["validator_time"] == "2018-04-17T11:30:00Z"
    assert "no known UTC offset" in cause
    assert "does not give the validating machine's time" not in cause


def test_certificate_not_yet_valid_stays_tls() -> None:
    result = decode_text("certificate is not yet valid")
    assert result.input_kind is InputKind.TLS_ERROR
    assert [finding.code for finding in result.findings] == ["tls.cert_not_yet_valid"]


@pytest.mark.parametrize(
    "text",
    [AADSTS700024_BODY, JAVA_JWT, GO_JWT, GOOGLE_INVALID_JWT],
    ids=["json", "java", "go", "google"],
)
def test_cli_exit_code_critical(text: str) -> None:
    assert main(["decode", text]) == 2


@pytest.mark.parametrize("text", [AADSTS700024_BODY, JAVA_JWT_LOG], ids=["json", "log"])
def test_cli_json_matches_schema(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["decode", text, "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    jsonschema.validate(document, SCHEMA)
    assert document["findings"][0]["code"].startswith("clock.")


def test_cli_table_shows_gap(capsys: pytest.CaptureFixture[str]) -> None:
    main(["decode", AADSTS700024_BODY])
    output = capsys.readouterr().out
    assert "clock.assertion_time_range" in output
    assert "expired 55 minutes before" in " ".join(output.split())
