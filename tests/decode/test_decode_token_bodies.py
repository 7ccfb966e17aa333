"""decode: token endpoint bodies, pasted as JSON or as a Python dict dump."""

from __future__ import annotations

import json

import pytest

from smtpdiag.cli import main
from smtpdiag.decode.detect import decode_text
from smtpdiag.decode.result import InputKind
from smtpdiag.models import Severity

# An Azure CLI bug report of 2020.
MICROSOFT_IDLE = json.dumps(
    {
        "error": "invalid_grant",
        "error_description": "AADSTS700082: The refresh token has expired due to inactivity. "
        "The token was issued on 2020-02-26T21:52:54.2810613Z and was inactive for "
        "90.00:00:00.\r\nTrace ID: 6e94ade5-10de-4d67-909a-14d845813500\r\n"
        "Correlation ID: 0e87b495-1e24-4882-be85-d012c216f4f6\r\nTimestamp: 2020-07-06 22:31:52Z",
        "error_codes": [700082],
        "timestamp": "2020-07-06 22:31:52Z",
        "trace_id": "6e94ade5-10de-4d67-909a-14d845813500",
        "correlation_id": "0e87b495-1e24-4882-be85-d012c216f4f6",
        "error_uri": "https://login.microsoftonline.com/error?code=700082",
    }
)

# An email-oauth2-proxy bug report of 2023 logged the body as a Python dict (ids redacted
# there).
MICROSOFT_SIGNIN_FREQUENCY_DUMP = (
    "{'error': 'invalid_grant', 'error_description': 'AADSTS70043: The refresh token has "
    "expired or is invalid due to sign-in frequency checks by conditional access. The token "
    "was issued on 2023-06-02T14:27:05.8405153Z and the maximum allowed lifetime for this "
    "request is 86400.\\r\\nTrace ID: [redacted]\\r\\nCorrelation ID: [redacted]\\r\\n"
    "Timestamp: 2023-07-06 13:35:42Z', 'error_codes': [70043], 'timestamp': "
    "'2023-07-06 13:35:42Z', 'trace_id': '[redacted]', 'correlation_id': '[redacted]', "
    "'suberror': 'token_expired'}"
)

# Google's reply, pretty-printed as Google sends it.
GOOGLE_REVOKED = (
    '{\n  "error": "invalid_grant",\n  "error_description": "Token has been expired or revoked."\n}'
)

# A public CI log of 2022; the app id is replaced.
MICROSOFT_SECRET_ID = json.dumps(
    {
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret "
        "being sent in the request is the client secret value, not the client secret ID, for a "
        "secret added to app '00000000-0000-0000-0000-000000000001'.\r\n"
        "Trace ID: 3ce379e4-441f-4eae-9730-fc0220183001\r\n"
        "Correlation ID: 54752956-bf4f-48f1-b808-6ecae2522f59\r\nTimestamp: 2022-06-18 03:16:39Z",
        "error_codes": [7000215],
    }
)

# Google's documented success reply (example token values).
GOOGLE_SUCCESS = json.dumps(
    {
        "access_token": "ya29.success-canary-0123456789abcdef",
        "expires_in": 3599,
        "scope": "https://mail.google.com/",
        "token_type": "Bearer",
    }
)
ROTATED_SUCCESS = json.dumps(
    {
        "token_type": "Bearer",
        "scope": "https://outlook.office.com/SMTP.Send",
        "expires_in": 4976,
        "ext_expires_in": 4976,
        "access_token": "EwBoA8l6BAAU-opaque-access-canary-0123456789",
        "refresh_token": "M.C507_BAY.0.U.-refresh-canary-0123456789abcdef",
    }
)

ERROR_CASES = {
    "microsoft_json": (MICROSOFT_IDLE, "token.refresh_token_expired", "microsoft"),
    "microsoft_python_dump": (
        MICROSOFT_SIGNIN_FREQUENCY_DUMP,
        "token.signin_frequency",
        "microsoft",
    ),
    "microsoft_secret_id": (MICROSOFT_SECRET_ID, "token.invalid_client", "microsoft"),
    "google_pretty_json": (GOOGLE_REVOKED, "token.grant_revoked", "google"),
    "rfc_example": ('{"error":"invalid_request"}', "token.invalid_request", None),
    "unknown_error": (
        '{"error": "temporarily_unavailable", "error_description": "Try again later"}',
        "token.error",
        None,
    ),
}


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_error_body_finding(name: str) -> None:
    text, code, _ = ERROR_CASES[name]
    assert [finding.code for finding in decode_text(text).findings] == [code]


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_error_body_input_kind(name: str) -> None:
    text, _, _ = ERROR_CASES[name]
    assert decode_text(text).input_kind is InputKind.TOKEN_RESPONSE


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_error_body_provider_fact(name: str) -> None:
    text, _, provider = ERROR_CASES[name]
    assert decode_text(text).facts.get("provider") == provider


def test_error_body_facts() -> None:
    facts = decode_text(MICROSOFT_IDLE).facts
    assert (facts["oauth_error"], facts["provider_error_code"], facts["error_codes"]) == (
        "invalid_grant",
        "AADSTS700082",
        [700082],
    )


def test_error_body_description_fact() -> None:
    facts = decode_text(GOOGLE_REVOKED).facts
    assert facts["oauth_error_description"] == "Token has been expired or revoked."


def test_error_finding_without_http_status() -> None:
    finding = decode_text(MICROSOFT_IDLE).findings[0]
    assert "http_status" not in finding.facts


def test_python_dump_trace_id() -> None:
    facts = decode_text(MICROSOFT_SIGNIN_FREQUENCY_DUMP).facts
    assert facts["suberror"] == "token_expired"


def test_google_error_object_fact() -> None:
    text = '{"error": {"code": 401, "message": "Invalid Credentials", "status": "UNAUTHENTICATED"}}'
    result = decode_text(text)
    assert (result.facts["oauth_error"], result.findings[0].code) == (
        "UNAUTHENTICATED",
        "token.error",
    )


def test_success_body_facts() -> None:
    facts = decode_text(GOOGLE_SUCCESS).facts
    assert (facts["scope"], facts["expires_in"], facts["token_type"]) == (
        "https://mail.google.com/",
        3599,
        "Bearer",
    )


def test_success_body_opaque_token_no_findings() -> None:
    result = decode_text(GOOGLE_SUCCESS)
    assert (result.findings, result.facts["jwt"]) == ((), None)


def test_refresh_token_rotated() -> None:
    findings = decode_text(ROTATED_SUCCESS).findings
    assert [(finding.code, finding.severity) for finding in findings] == [
        ("token.refresh_token_rotated", Severity.INFO)
    ]


def test_empty_refresh_token_not_rotated() -> None:
    text = '{"access_token": "ya29.empty-refresh-0123456789", "refresh_token": ""}'
    assert decode_text(text).findings == ()


def test_error_body_never_rotated() -> None:
    text = '{"error": "invalid_grant", "refresh_token": "1//0g-refresh-0123456789abcdef"}'
    assert [finding.code for finding in decode_text(text).findings] == ["token.invalid_grant"]


@pytest.mark.parametrize(
    "text",
    [
        '{"error": null}',
        '{"error": []}',
        '{"error": {}}',
        '{"name": "value"}',
        "{}",
    ],
)
def test_object_without_oauth_error_unknown(text: str) -> None:
    assert decode_text(text).input_kind is InputKind.UNKNOWN


def test_error_as_number_decoded() -> None:
    result = decode_text('{"error": 400, "error_description": "Bad Request"}')
    assert (result.facts["oauth_error"], result.findings[0].code) == ("400", "token.error")


def test_huge_description_decoded() -> None:
    text = json.dumps({"error": "invalid_grant", "error_description": "z" * 200_000})
    result = decode_text(text)
    assert len(result.facts["oauth_error_description"]) == 2000


@pytest.mark.parametrize("output_format", ["json", "table"])
def test_tokens_hidden_in_output(output_format: str, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "1//0g-quoted-refresh-canary-0123456789"
    body = json.dumps(
        {
            "error": "invalid_grant",
            "error_description": f"Refresh token {secret} has been revoked.",
            "refresh_token": secret,
            "client_secret": "client-secret-canary-0123456789",
        }
    )
    main(["decode", body, "-f", output_format])
    out = capsys.readouterr().out
    assert "token.invalid_grant" in out
    assert secret not in out
    assert "client-secret-canary-0123456789" not in out


def test_rotated_tokens_hidden(capsys: pytest.CaptureFixture[str]) -> None:
    main(["decode", ROTATED_SUCCESS, "-f", "json"])
    out = capsys.readouterr().out
    document = json.loads(out)
    assert document["findings"][0]["code"] == "token.refresh_token_rotated"
    assert "refresh-canary-0123456789abcdef" not in out
    assert "opaque-access-canary-0123456789" not in out


def test_curl_output_reads_status_and_body() -> None:
    text = (
        "HTTP/2 400 \r\ncontent-type: application/json; charset=utf-8\r\n"
        "date: Fri, 04 Dec 2026 10:00:00 GMT\r\n\r\n"
        '{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has '
        'expired due to inactivity.","error_codes":[700082]}'
    )
    result = decode_text(text)
    assert result.input_kind.value == "token_response"
    assert result.facts["http_status"] == 400
    assert [finding.code for finding in result.findings] == ["token.refresh_token_expired"]


def test_bearer_header_with_jwt_is_judged() -> None:
    # {"alg":"none"} . {"aud":"https://graph.microsoft.com","scp":"SMTP.Send"}
    jwt = (
        "eyJhbGciOiJub25lIn0."
        "eyJhdWQiOiJodHRwczovL2dyYXBoLm1pY3Jvc29mdC5jb20iLCJzY3AiOiJTTVRQLlNlbmQifQ.c2ln"
    )
    result = decode_text(f"Authorization: Bearer {jwt}")
    assert result.input_kind.value == "jwt"
    assert "scope.wrong_audience" in [finding.code for finding in result.findings]


def test_opaque_bearer_token_is_unknown_and_masked() -> None:
    from smtpdiag.redact import REDACTOR

    result = decode_text("Bearer ya29.opaque-bearer-token-value-0123456789")
    assert result.input_kind.value == "unknown"
    assert "opaque bearer token" in result.facts["reason"]
    assert "ya29.opaque" not in REDACTOR.redact("ya29.opaque-bearer-token-value-0123456789")


def test_html_page_is_named() -> None:
    result = decode_text("<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>")
    assert result.input_kind.value == "unknown"
    assert result.facts["reason"].startswith("an HTML page")
