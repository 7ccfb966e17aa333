"""Token endpoint error bodies: parsing, classification and replies without a token.

The bodies are recorded from public bug reports, Microsoft's and Google's documentation and
RFC 6749. Trace ids, correlation ids and timestamps are kept as reported; application ids,
tenant names and user data are replaced. A body marked "reconstructed" was quoted in a report
as an error message only; its JSON fields are Microsoft's usual ones, not a verbatim copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from smtpdiag.knowledge.providers import Provider
from smtpdiag.models import Finding, Severity
from smtpdiag.oauth.model import HttpReply
from smtpdiag.oauth.token_errors import (
    MAX_DESCRIPTION_CHARACTERS,
    MAX_QUOTED_CHARACTERS,
    finding_for_error_body,
    finding_for_reply,
    parse_error_body,
    provider_of_error_body,
)
from smtpdiag.oauth.token_kinds import TOKEN_FINDINGS

MICROSOFT = Provider.MICROSOFT
GOOGLE = Provider.GOOGLE
YANDEX = Provider.YANDEX
GENERIC = Provider.GENERIC

APP_ID = "00000000-0000-0000-0000-000000000001"


@dataclass(frozen=True)
class Case:
    provider: Provider
    body: dict[str, Any]
    code: str
    provider_error_code: str | None = None


CASES: dict[str, Case] = {
    # An Azure CLI bug report of 2020 (HTTP 400 from the v1 token endpoint).
    "microsoft_refresh_token_idle": Case(
        MICROSOFT,
        {
            "error": "invalid_grant",
            "error_description": "AADSTS700082: The refresh token has expired due to "
            "inactivity. The token was issued on 2020-02-26T21:52:54.2810613Z and was inactive "
            "for 90.00:00:00.\r\nTrace ID: 6e94ade5-10de-4d67-909a-14d845813500\r\n"
            "Correlation ID: 0e87b495-1e24-4882-be85-d012c216f4f6\r\n"
            "Timestamp: 2020-07-06 22:31:52Z",
            "error_codes": [700082],
            "timestamp": "2020-07-06 22:31:52Z",
            "trace_id": "6e94ade5-10de-4d67-909a-14d845813500",
            "correlation_id": "0e87b495-1e24-4882-be85-d012c216f4f6",
            "error_uri": "https://login.microsoftonline.com/error?code=700082",
        },
        "token.refresh_token_expired",
        "AADSTS700082",
    ),
    # An Azure CLI bug report of 2021: the user's password was reset.
    "microsoft_grant_revoked": Case(
        MICROSOFT,
        {
            "error": "invalid_grant",
            "error_description": "AADSTS50173: The provided grant has expired due to it being "
            "revoked, a fresh auth token is needed. The user might have changed or reset their "
            "password. The grant was issued on '2021-01-05T05:09:31.5970000Z' and the "
            "TokensValidFrom date (before which tokens are not valid) for this user is "
            "'2021-01-14T06:26:06.0000000Z'.\r\nTrace ID: 0aaa7d90-73c6-46cc-9c9d-fc161b282000"
            "\r\nCorrelation ID: eb217b32-36ad-410b-9b1e-f71cd6947581\r\n"
            "Timestamp: 2021-01-31 05:56:19Z",
            "error_codes": [50173],
            "timestamp": "2021-01-31 05:56:19Z",
            "trace_id": "0aaa7d90-73c6-46cc-9c9d-fc161b282000",
            "correlation_id": "eb217b32-36ad-410b-9b1e-f71cd6947581",
            "error_uri": "https://login.microsoftonline.com/error?code=50173",
        },
        "token.grant_revoked",
        "AADSTS50173",
    ),
    # A public report against a Microsoft mail manager (2026); no error_uri in this body.
    "microsoft_wrong_tenant": Case(
        MICROSOFT,
        {
            "error": "invalid_grant",
            "error_description": "AADSTS7000012: The grant was obtained for a different tenant. "
            "Trace ID: 9e679d5d-438e-4c42-ad09-4feab508e700 Correlation ID: "
            "5acb41a3-b6f6-432d-9185-6ea2161394ad Timestamp: 2026-04-19 07:32:47Z",
            "error_codes": [7000012],
            "timestamp": "2026-04-19 07:32:47Z",
            "trace_id": "9e679d5d-438e-4c42-ad09-4feab508e700",
            "correlation_id": "5acb41a3-b6f6-432d-9185-6ea2161394ad",
        },
        "token.wrong_tenant",
        "AADSTS7000012",
    ),
    # A Microsoft docs feedback report of 2019, with Microsoft's suberror.
    "microsoft_consent_required": Case(
        MICROSOFT,
        {
            "error": "invalid_grant",
            "error_description": f"AADSTS65001: The user or administrator has not consented to "
            f"use the application with ID '{APP_ID}' named 'SmtpRelay'. Send an interactive "
            "authorization request for this user and resource.\r\n"
            "Trace ID: 7979ed8a-3959-4be5-9206-ce16f12a5900\r\n"
            "Correlation ID: 73d7243c-43ba-4d8a-865a-0b8957def6c6\r\n"
            "Timestamp: 2019-09-19 08:55:37Z",
            "error_codes": [65001],
            "timestamp": "2019-09-19 08:55:37Z",
            "trace_id": "7979ed8a-3959-4be5-9206-ce16f12a5900",
            "correlation_id": "73d7243c-43ba-4d8a-865a-0b8957def6c6",
            "suberror": "consent_required",
        },
        "token.consent_required",
        "AADSTS65001",
    ),
    # An email-oauth2-proxy bug report of 2023 (ids redacted in the report).
    "microsoft_signin_frequency": Case(
        MICROSOFT,
        {
            "error": "invalid_grant",
            "error_description": "AADSTS70043: The refresh token has expired or is invalid due "
            "to sign-in frequency checks by conditional access. The token was issued on "
            "2023-06-02T14:27:05.8405153Z and the maximum allowed lifetime for this request is "
            "86400.\r\nTrace ID: [redacted]\r\nCorrelation ID: [redacted]\r\n"
            "Timestamp: 2023-07-06 13:35:42Z",
            "error_codes": [70043],
            "timestamp": "2023-07-06 13:35:42Z",
            "trace_id": "[redacted]",
            "correlation_id": "[redacted]",
            "suberror": "token_expired",
        },
        "token.signin_frequency",
        "AADSTS70043",
    ),
    # A CIPP bug report of 2022: the OpenID error interaction_required, no error_codes.
    "microsoft_signin_frequency_interaction_required": Case(
        MICROSOFT,
        {
            "error": "interaction_required",
            "error_description": "AADSTS70043: The refresh token has expired or is invalid due "
            "to sign-in frequency checks by conditional access. The token was issued on "
            "2021-11-10T02:49:07.6225734Z and the maximum allowed lifetime for this request is "
            "3600.",
        },
        "token.signin_frequency",
        "AADSTS70043",
    ),
    # A DNN Azure AD provider log of 2018: two codes, and the second one is the specific one.
    "microsoft_code_reused": Case(
        MICROSOFT,
        {
            "error": "invalid_grant",
            "error_description": "AADSTS70002: Error validating credentials. AADSTS54005: "
            "OAuth2 Authorization code was already redeemed, please retry with a new valid "
            "code or use an existing refresh token.\r\n"
            "Trace ID: 9df0210d-bf9f-45d9-b19b-b326453e6400\r\n"
            "Correlation ID: 48ac1682-e414-42c2-9eac-f1d6114e8648\r\n"
            "Timestamp: 2018-11-19 17:52:50Z",
            "error_codes": [70002, 54005],
            "timestamp": "2018-11-19 17:52:50Z",
            "trace_id": "9df0210d-bf9f-45d9-b19b-b326453e6400",
            "correlation_id": "48ac1682-e414-42c2-9eac-f1d6114e8648",
        },
        "token.code_reused",
        "AADSTS54005",
    ),
    # A Microsoft docs feedback report of 2020: a refresh that had worked for years.
    "microsoft_malformed_request": Case(
        MICROSOFT,
        {
            "error": "invalid_grant",
            "error_description": "AADSTS9002313: Invalid request. Request is malformed or "
            "invalid.\r\nTrace ID: f3cac613-d5ed-454b-abd4-a487a7f28800\r\n"
            "Correlation ID: 1dae1d49-c950-4fad-9e97-62ae3d11ebf3\r\n"
            "Timestamp: 2020-10-05 13:08:18Z",
            "error_codes": [9002313],
            "timestamp": "2020-10-05 13:08:18Z",
            "trace_id": "f3cac613-d5ed-454b-abd4-a487a7f28800",
            "correlation_id": "1dae1d49-c950-4fad-9e97-62ae3d11ebf3",
            "error_uri": "https://login.microsoftonline.com/error?code=9002313",
        },
        "token.not_a_refresh_token",
        "AADSTS9002313",
    ),
    # A public CI log of 2022 (HTTP 401).
    "microsoft_secret_id_instead_of_value": Case(
        MICROSOFT,
        {
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the "
            "secret being sent in the request is the client secret value, not the client "
            f"secret ID, for a secret added to app '{APP_ID}'.\r\n"
            "Trace ID: 3ce379e4-441f-4eae-9730-fc0220183001\r\n"
            "Correlation ID: 54752956-bf4f-48f1-b808-6ecae2522f59\r\n"
            "Timestamp: 2022-06-18 03:16:39Z",
            "error_codes": [7000215],
            "timestamp": "2022-06-18 03:16:39Z",
            "trace_id": "3ce379e4-441f-4eae-9730-fc0220183001",
            "correlation_id": "54752956-bf4f-48f1-b808-6ecae2522f59",
            "error_uri": "https://login.microsoftonline.com/error?code=7000215",
        },
        "token.invalid_client",
        "AADSTS7000215",
    ),
    # A dotnet sign tool log of 2025 quotes the message; reconstructed.
    "microsoft_secret_expired": Case(
        MICROSOFT,
        {
            "error": "invalid_client",
            "error_description": f"AADSTS7000222: The provided client secret keys for app "
            f"'{APP_ID}' are expired. Visit the Azure portal to create new keys for your app: "
            "https://aka.ms/NewClientSecret, or consider using certificate credentials for "
            "added security: https://aka.ms/certCreds. Trace ID: "
            "de577a4f-a611-44e8-94e6-5ca7955a3800 Correlation ID: "
            "b1f881fe-810c-4731-a772-fa920ee90430 Timestamp: 2025-04-10 13:07:42Z",
            "error_codes": [7000222],
        },
        "token.client_secret_expired",
        "AADSTS7000222",
    ),
    # An editor CLI bug report of 2024.
    "microsoft_secret_missing": Case(
        MICROSOFT,
        {
            "error": "invalid_client",
            "error_description": "AADSTS7000218: The request body must contain the following "
            "parameter: 'client_assertion' or 'client_secret'. Trace ID: "
            "6ee9ec92-6726-422a-85ce-86a1a6502800 Correlation ID: "
            "521b9148-40bc-455a-ace1-c13802e053eb Timestamp: 2024-12-03 13:51:30Z",
            "error_codes": [7000218],
            "timestamp": "2024-12-03 13:51:30Z",
            "trace_id": "6ee9ec92-6726-422a-85ce-86a1a6502800",
            "correlation_id": "521b9148-40bc-455a-ace1-c13802e053eb",
            "error_uri": "https://login.microsoftonline.com/error?code=7000218",
        },
        "token.client_secret_missing",
        "AADSTS7000218",
    ),
    # A Flutter aad_oauth bug report of 2024 quotes the message; reconstructed, and the error
    # value invalid_scope is assumed, because the report does not show it.
    "microsoft_scope_two_resources": Case(
        MICROSOFT,
        {
            "error": "invalid_scope",
            "error_description": "AADSTS28000: Provided value for the input parameter scope is "
            "not valid because it contains more than one resource. Scope "
            "https://outlook.office.com/SMTP.Send https://graph.microsoft.com/User.Read "
            "openid profile offline_access is not valid. Trace ID: "
            "de2aa854-ac14-48f8-a9f0-5a910e931b00 Correlation ID: "
            "ae8814a9-8532-4174-9f4e-d29b318cda8f Timestamp: 2024-07-17 14:42:13Z",
            "error_codes": [28000],
        },
        "token.scope_multiple_resources",
        "AADSTS28000",
    ),
    # A Databricks SQL client bug report of 2024 shows error and description; reconstructed.
    "microsoft_client_credentials_scope": Case(
        MICROSOFT,
        {
            "error": "invalid_scope",
            "error_description": "AADSTS1002012: The provided value for scope "
            "https://outlook.office365.com/SMTP.SendAsApp is not valid. Client credential "
            "flows must have a scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
            "error_codes": [1002012],
        },
        "token.scope_needs_default",
        "AADSTS1002012",
    ),
    # An n8n bug report of 2026 quotes the message; reconstructed.
    "microsoft_scope_missing": Case(
        MICROSOFT,
        {
            "error": "invalid_request",
            "error_description": "AADSTS900144: The request body must contain the following "
            "parameter: 'scope'.",
            "error_codes": [900144],
        },
        "token.scope_missing_in_request",
        "AADSTS900144",
    ),
    # The same code for another field stays a plain invalid_request; reconstructed.
    "microsoft_client_id_missing": Case(
        MICROSOFT,
        {
            "error": "invalid_request",
            "error_description": "AADSTS900144: The request body must contain the following "
            "parameter: 'client_id'.",
            "error_codes": [900144],
        },
        "token.invalid_request",
        "AADSTS900144",
    ),
    # An MSAL for Python bug report of 2019: no AADSTS rule matches, but the text names the
    # scope.
    "microsoft_scope_empty": Case(
        MICROSOFT,
        {
            "error": "invalid_request",
            "error_description": "AADSTS28003: Provided value for the input parameter scope "
            "cannot be empty when requesting an access token using the provided authorization "
            "code. Please specify a valid scope.",
        },
        "token.scope_missing_in_request",
        "AADSTS28003",
    ),
    # A bug report of 2023 quotes the message; reconstructed, and the error value
    # unauthorized_client is assumed.
    "microsoft_app_not_in_tenant": Case(
        MICROSOFT,
        {
            "error": "unauthorized_client",
            "error_description": f"AADSTS700016: Application with identifier '{APP_ID}' was "
            "not found in the directory 'Contoso'. This can happen if the application has not "
            "been installed by the administrator of the tenant or consented to by any user in "
            "the tenant. You may have sent your authentication request to the wrong tenant.",
            "error_codes": [700016],
        },
        "token.unauthorized_client",
        "AADSTS700016",
    ),
    # Microsoft's UnsupportedGrantType error; reconstructed.
    "microsoft_unsupported_grant_type": Case(
        MICROSOFT,
        {
            "error": "unsupported_grant_type",
            "error_description": "AADSTS70003: The app requested an unsupported grant type "
            "'refresh'.",
            "error_codes": [70003],
        },
        "token.unsupported_grant_type",
        "AADSTS70003",
    ),
    # Exchange Online missing from the tenant; a code and error value without a rule.
    # Reconstructed.
    "microsoft_unknown_code": Case(
        MICROSOFT,
        {
            "error": "invalid_resource",
            "error_description": "AADSTS500011: The resource principal named "
            "https://outlook.office365.com was not found in the tenant named Contoso.",
            "error_codes": [500011],
        },
        "token.error",
        "AADSTS500011",
    ),
    # Google's documented reply; nango.dev's write-up and many reports show the same body.
    "google_expired_or_revoked": Case(
        GOOGLE,
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
        "token.grant_revoked",
    ),
    # A gmail-oauth2-tools bug report of 2020.
    "google_bad_request": Case(
        GOOGLE,
        {"error_description": "Bad Request", "error": "invalid_grant"},
        "token.invalid_grant",
    ),
    # A blobfile log of 2024 shows error and description; the error_uri and error_subtype
    # fields are as Google's client libraries read them, not verbatim.
    "google_reauth_required": Case(
        GOOGLE,
        {
            "error": "invalid_grant",
            "error_description": "reauth related error (invalid_rapt)",
            "error_uri": "https://support.google.com/a/answer/9368756",
            "error_subtype": "invalid_rapt",
        },
        "token.signin_frequency",
    ),
    # An email-oauth2-proxy bug report of 2025 (HTTP 401).
    "google_client_not_found": Case(
        GOOGLE,
        {"error": "invalid_client", "error_description": "The OAuth client was not found."},
        "token.invalid_client",
    ),
    # Google's reply for a wrong client secret; the exact text is from bug reports.
    "google_client_secret_wrong": Case(
        GOOGLE,
        {"error": "invalid_client", "error_description": "Unauthorized"},
        "token.invalid_client",
    ),
    # A refresh token used with another client id; the exact text is from bug reports.
    "google_other_client": Case(
        GOOGLE,
        {"error": "unauthorized_client", "error_description": "Unauthorized"},
        "token.unauthorized_client",
    ),
    # Reconstructed from Google's error texts.
    "google_invalid_scope": Case(
        GOOGLE,
        {
            "error": "invalid_scope",
            "error_description": "Some requested scopes were invalid. "
            "{invalid=[https://mail.google.com]}",
        },
        "token.invalid_scope",
    ),
    "google_unsupported_grant_type": Case(
        GOOGLE,
        {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: refresh"},
        "token.unsupported_grant_type",
    ),
    "google_missing_refresh_token": Case(
        GOOGLE,
        {
            "error": "invalid_request",
            "error_description": "Missing required parameter: refresh_token",
        },
        "token.invalid_request",
    ),
    "google_missing_scope": Case(
        GENERIC,
        {"error": "invalid_request", "error_description": "Missing required parameter: scope"},
        "token.scope_missing_in_request",
    ),
    # Google's older error object, as Google APIs return it.
    "google_error_object": Case(
        GOOGLE,
        {
            "error": {
                "code": 401,
                "message": "Request had invalid authentication credentials. Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential.",
                "status": "UNAUTHENTICATED",
            }
        },
        "token.error",
    ),
    "google_admin_policy": Case(
        GOOGLE,
        {"error": "admin_policy_enforced"},
        "token.error",
    ),
    # RFC 6749 section 5.2's example body.
    "rfc_example": Case(GENERIC, {"error": "invalid_request"}, "token.invalid_request"),
    "rfc_server_error": Case(
        GENERIC,
        {"error": "temporarily_unavailable", "error_description": "Try again later"},
        "token.error",
    ),
    # Yandex error codes from its OAuth documentation; the descriptions are not documented
    # and are examples.
    "yandex_bad_verification_code": Case(
        YANDEX,
        {"error_description": "Invalid code", "error": "bad_verification_code"},
        "token.invalid_grant",
    ),
    # A NextAuth.js bug report of 2024 shows "invalid_grant(code has expired)".
    "yandex_invalid_grant": Case(
        YANDEX,
        {"error_description": "Code has expired", "error": "invalid_grant"},
        "token.invalid_grant",
    ),
    "yandex_basic_auth_required": Case(
        YANDEX,
        {"error": "invalid_client", "error_description": "Basic auth required"},
        "token.invalid_client",
    ),
    "yandex_malformed_header": Case(
        YANDEX,
        {"error": "Malformed Authorization header"},
        "token.invalid_client",
    ),
    "yandex_unknown_client": Case(
        YANDEX,
        {"error": "invalid_client", "error_description": "Client not found"},
        "token.invalid_client",
    ),
    "yandex_app_suspended": Case(
        YANDEX,
        {"error": "unauthorized_client", "error_description": "Client is blocked"},
        "token.unauthorized_client",
    ),
}


def finding_for(case: Case, http_status: int | None = 400) -> Finding:
    body = parse_error_body(case.body)
    assert body is not None
    return finding_for_error_body(body, case.provider, http_status)


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_body_code(name: str) -> None:
    case = CASES[name]
    assert finding_for(case).code == case.code


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_body_provider_error_code(name: str) -> None:
    case = CASES[name]
    assert finding_for(case).facts.get("provider_error_code") == case.provider_error_code


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_body_facts(name: str) -> None:
    case = CASES[name]
    facts = finding_for(case).facts
    assert facts["http_status"] == 400
    assert facts["provider"] == case.provider.value
    assert isinstance(facts["oauth_error"], str)


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_body_text_filled(name: str) -> None:
    finding = finding_for(CASES[name])
    for text in (finding.title, finding.cause, finding.fix):
        assert "{" not in text.replace("{invalid=", "")
        assert text == text.strip()


def test_every_error_kind_has_a_body() -> None:
    codes = [kind.code for kind in TOKEN_FINDINGS]
    error_kinds = set(codes[: codes.index("token.error") + 1])
    assert error_kinds - {case.code for case in CASES.values()} == set()


def test_every_reply_kind_has_a_reply() -> None:
    produced = {code for _, code in REPLY_CASES.values()}
    assert {"token.malformed_response", "token.endpoint_http_error"} <= produced


def test_microsoft_facts_complete() -> None:
    facts = finding_for(CASES["microsoft_refresh_token_idle"]).facts
    assert facts["error_codes"] == [700082]
    assert facts["trace_id"] == "6e94ade5-10de-4d67-909a-14d845813500"
    assert facts["correlation_id"] == "0e87b495-1e24-4882-be85-d012c216f4f6"
    assert facts["error_timestamp"] == "2020-07-06 22:31:52Z"
    assert facts["oauth_error_uri"] == "https://login.microsoftonline.com/error?code=700082"


def test_suberror_kept() -> None:
    facts = finding_for(CASES["microsoft_consent_required"]).facts
    assert facts["suberror"] == "consent_required"


def test_title_names_error_and_aadsts() -> None:
    title = finding_for(CASES["microsoft_refresh_token_idle"]).title
    assert title == "The refresh token expired (invalid_grant, AADSTS700082)"


def test_cause_quotes_first_line_only() -> None:
    cause = finding_for(CASES["microsoft_refresh_token_idle"]).cause
    assert "inactive for 90.00:00:00." in cause
    assert "Trace ID" not in cause


def test_cause_cuts_trace_id_on_same_line() -> None:
    cause = finding_for(CASES["microsoft_secret_missing"]).cause
    assert "'client_assertion' or 'client_secret'." in cause
    assert "Trace ID" not in cause


def test_secret_id_hint() -> None:
    finding = finding_for(CASES["microsoft_secret_id_instead_of_value"])
    assert "secret's ID was configured instead of its value" in finding.cause
    assert "Value" in finding.fix


def test_google_bad_request_hint() -> None:
    cause = finding_for(CASES["google_bad_request"]).cause
    assert "Google answers 'Bad Request'" in cause


def test_google_reauth_hint() -> None:
    finding = finding_for(CASES["google_reauth_required"])
    assert "invalid_rapt" in finding.cause
    assert "Google Cloud session control" in finding.fix


def test_yandex_revocation_hint() -> None:
    cause = finding_for(CASES["yandex_invalid_grant"]).cause
    assert "two-factor authentication" in cause


def test_google_text_not_applied_to_microsoft() -> None:
    body = parse_error_body({"error": "invalid_grant", "error_description": "Bad Request"})
    assert body is not None
    cause = finding_for_error_body(body, MICROSOFT).cause
    assert "Google answers" not in cause


def test_google_error_object_fields() -> None:
    body = parse_error_body(CASES["google_error_object"].body)
    assert body is not None
    assert body.error == "UNAUTHENTICATED"
    assert (body.description or "").startswith("Request had invalid authentication credentials")


def test_no_http_status_without_reply() -> None:
    body = parse_error_body(CASES["rfc_example"].body)
    assert body is not None
    assert "http_status" not in finding_for_error_body(body, GENERIC).facts


def test_evidence_kept() -> None:
    body = parse_error_body(CASES["rfc_example"].body)
    assert body is not None
    finding = finding_for_error_body(body, GENERIC, 400, ["HTTP 400 Bad Request"])
    assert finding.evidence == ("HTTP 400 Bad Request",)


@pytest.mark.parametrize(
    ("name", "provider"),
    [
        ("microsoft_refresh_token_idle", MICROSOFT),
        ("microsoft_signin_frequency_interaction_required", MICROSOFT),
        ("google_expired_or_revoked", GOOGLE),
        ("google_reauth_required", GOOGLE),
        ("google_admin_policy", GOOGLE),
        ("yandex_invalid_grant", GENERIC),
        ("rfc_example", GENERIC),
    ],
)
def test_provider_of_error_body(name: str, provider: Provider) -> None:
    body = parse_error_body(CASES[name].body)
    assert body is not None
    assert provider_of_error_body(body) is provider


# Malformed and hostile bodies.

NO_ERROR_BODIES: dict[str, Any] = {
    "null_error": {"error": None, "error_description": "AADSTS700082: ..."},
    "bool_error": {"error": True},
    "empty_error": {"error": "  "},
    "empty_list_error": {"error": []},
    "list_of_numbers_error": {"error": [1, 2]},
    "empty_object_error": {"error": {}},
    "no_error": {"access_token": "ya29.x", "expires_in": 3599},
    "empty_body": {},
    "list_body": ["invalid_grant"],
    "string_body": "invalid_grant",
    "number_body": 400,
    "null_body": None,
}


@pytest.mark.parametrize("name", sorted(NO_ERROR_BODIES))
def test_body_without_error(name: str) -> None:
    assert parse_error_body(NO_ERROR_BODIES[name]) is None


def test_error_as_number() -> None:
    body = parse_error_body({"error": 400, "error_description": "Bad Request"})
    assert body is not None
    assert (body.error, finding_for_error_body(body, GENERIC).code) == ("400", "token.error")


def test_error_as_list() -> None:
    body = parse_error_body({"error": [7, "invalid_grant"]})
    assert body is not None
    assert body.error == "invalid_grant"


def test_fields_of_wrong_type_dropped() -> None:
    body = parse_error_body(
        {
            "error": "invalid_grant",
            "error_description": {"nested": ["x"]},
            "error_uri": 5,
            "trace_id": ["a"],
            "timestamp": None,
            "suberror": 1.5,
        }
    )
    assert body is not None
    assert body.facts() == {"oauth_error": "invalid_grant"}


def test_error_codes_filtered() -> None:
    body = parse_error_body(
        {"error": "invalid_grant", "error_codes": ["x", True, 3.5, "700082", -1, 10**12, 50173]}
    )
    assert body is not None
    assert body.error_codes == (700082, 50173)


def test_error_codes_not_a_list() -> None:
    body = parse_error_body({"error": "invalid_grant", "error_codes": "700082"})
    assert body is not None
    assert body.error_codes == ()


def test_code_from_error_codes_only() -> None:
    body = parse_error_body({"error": "invalid_grant", "error_codes": [700082]})
    assert body is not None
    assert finding_for_error_body(body, MICROSOFT).code == "token.refresh_token_expired"


def test_huge_description_cut() -> None:
    body = parse_error_body({"error": "invalid_grant", "error_description": "x" * 100_000})
    assert body is not None
    assert len(body.description or "") == MAX_DESCRIPTION_CHARACTERS


def test_huge_description_quote_cut() -> None:
    body = parse_error_body({"error": "invalid_grant", "error_description": "y" * 100_000})
    assert body is not None
    cause = finding_for_error_body(body, GENERIC).cause
    assert "y" * MAX_QUOTED_CHARACTERS not in cause
    assert "y" * (MAX_QUOTED_CHARACTERS - 1) in cause


def test_huge_error_code_cut() -> None:
    body = parse_error_body({"error": "e" * 10_000})
    assert body is not None
    assert len(body.error) == 200


def test_multiline_error_code_on_one_line() -> None:
    body = parse_error_body({"error": "invalid_grant\r\nX-Injected: 1"})
    assert body is not None
    assert "\n" not in finding_for_error_body(body, GENERIC).title


def test_lone_surrogate_encodable() -> None:
    body = parse_error_body(
        json.loads('{"error": "invalid_grant", "error_description": "a\\ud800b"}')
    )
    assert body is not None
    finding = finding_for_error_body(body, GENERIC)
    json.dumps(finding.to_dict(), ensure_ascii=False).encode("utf-8")
    assert finding.facts["oauth_error_description"] == "a?b"


def test_python_dict_keys_not_strings() -> None:
    # ast.literal_eval of a logged dict may give keys of any type.
    dump: dict[Any, Any] = {1: 2, (3,): "x", "error": "invalid_grant"}
    body = parse_error_body(dump)
    assert body is not None
    assert body.error == "invalid_grant"


def test_secret_in_description_redacted() -> None:
    from smtpdiag.redact import REDACTOR

    secret = "1//0g-refresh-canary-abcdefghijklmnop"
    REDACTOR.register(secret)
    body = parse_error_body(
        {"error": "invalid_grant", "error_description": f"Refresh token {secret} is revoked"}
    )
    assert body is not None
    text = json.dumps(finding_for_error_body(body, GENERIC).to_dict())
    assert secret not in text


# Replies that carry no token.

ENDPOINT = "https://login.microsoftonline.com/common/oauth2/v2.0/token"

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
CAPTIVE_PORTAL = (
    b"<!DOCTYPE html><html><head><title>Guest Wi-Fi Login</title></head>"
    b"<body><form action='/login'></form></body></html>"
)


# Google's token endpoint when its backend fails, as public bug reports quote it with HTTP 500.
GOOGLE_INTERNAL_FAILURE = {"error": "internal_failure", "error_description": "Backend Error"}

# Microsoft's transient failure, in the shape of a public report of an HTTP 503. The trace
# and correlation ids are made up.
MICROSOFT_TRANSIENT = {
    "error": "temporarily_unavailable",
    "error_description": "AADSTS90033: A transient error has occurred. Please try again.\r\n"
    "Trace ID: 5b2e7c10-0a9d-4c3e-8f61-2d4b6a8c0e00\r\n"
    "Correlation ID: 9c1d3e5f-7a9b-4c1d-8e3f-5a7b9c1d3e5f\r\nTimestamp: 2020-09-28 21:43:07Z",
    "error_codes": [90033],
    "timestamp": "2020-09-28 21:43:07Z",
    "trace_id": "5b2e7c10-0a9d-4c3e-8f61-2d4b6a8c0e00",
    "correlation_id": "9c1d3e5f-7a9b-4c1d-8e3f-5a7b9c1d3e5f",
}


def reply(
    status: int,
    body: bytes,
    content_type: str | None = "application/json; charset=utf-8",
    *,
    truncated: bool = False,
    reason: str = "",
    headers: dict[str, str] | None = None,
) -> HttpReply:
    all_headers = dict(headers or {})
    if content_type is not None:
        all_headers["content-type"] = content_type
    return HttpReply(status, reason, all_headers, body, truncated, 0.05)


def json_reply(status: int, body: Any) -> HttpReply:
    return reply(status, json.dumps(body).encode())


REPLY_CASES: dict[str, tuple[HttpReply, str]] = {
    "error_body_400": (
        json_reply(400, CASES["microsoft_refresh_token_idle"].body),
        "token.refresh_token_expired",
    ),
    "error_body_401": (
        json_reply(401, CASES["microsoft_secret_id_instead_of_value"].body),
        "token.invalid_client",
    ),
    "error_body_200": (json_reply(200, {"error": "invalid_grant"}), "token.invalid_grant"),
    "not_found_json": (json_reply(404, {"error": "invalid_request"}), "token.endpoint_http_error"),
    "not_found_html": (
        reply(404, b"<html><title>404 Not Found</title></html>", "text/html"),
        "token.endpoint_http_error",
    ),
    "method_not_allowed": (reply(405, b"", None), "token.endpoint_http_error"),
    "proxy_502_html": (
        reply(502, NGINX_502, "text/html", reason="Bad Gateway"),
        "token.malformed_response",
    ),
    "captive_portal_200": (
        reply(200, CAPTIVE_PORTAL, "text/html; charset=UTF-8"),
        "token.malformed_response",
    ),
    "empty_503": (reply(503, b"", None), "token.malformed_response"),
    "empty_200": (reply(200, b"", "application/json"), "token.malformed_response"),
    "not_utf8": (
        reply(400, b'{"error": "invalid_grant", "error_description": "\xff\xfe"}'),
        "token.malformed_response",
    ),
    "truncated_json": (
        reply(200, b'{"access_token": "ya29.' + b"a" * 100, truncated=True),
        "token.malformed_response",
    ),
    "plain_text_500": (
        reply(500, b"Internal Server Error", "text/plain"),
        "token.malformed_response",
    ),
    "rate_limited_json": (
        reply(429, b'{"message": "Too many requests"}', headers={"retry-after": "30"}),
        "token.endpoint_http_error",
    ),
    "server_error_json_list": (json_reply(500, []), "token.endpoint_http_error"),
    "forbidden_json": (
        json_reply(403, {"detail": "blocked by policy"}),
        "token.endpoint_http_error",
    ),
    "success_without_token": (
        json_reply(200, {"token_type": "Bearer"}),
        "token.malformed_response",
    ),
    "success_json_list": (json_reply(200, ["access_token"]), "token.malformed_response"),
    "deeply_nested": (reply(400, b"[" * 100_000), "token.malformed_response"),
    "google_internal_failure_500": (
        json_reply(500, GOOGLE_INTERNAL_FAILURE),
        "token.endpoint_http_error",
    ),
    "microsoft_transient_503": (
        json_reply(503, MICROSOFT_TRANSIENT),
        "token.endpoint_http_error",
    ),
    "unknown_error_400": (json_reply(400, GOOGLE_INTERNAL_FAILURE), "token.error"),
    "invalid_grant_500": (json_reply(500, {"error": "invalid_grant"}), "token.invalid_grant"),
}


@pytest.mark.parametrize("name", sorted(REPLY_CASES))
def test_reply_code(name: str) -> None:
    http_reply, code = REPLY_CASES[name]
    assert finding_for_reply(http_reply, MICROSOFT, ENDPOINT).code == code


@pytest.mark.parametrize("name", sorted(REPLY_CASES))
def test_reply_http_status_fact(name: str) -> None:
    http_reply, _ = REPLY_CASES[name]
    assert (
        finding_for_reply(http_reply, MICROSOFT, ENDPOINT).facts["http_status"] == http_reply.status
    )


@pytest.mark.parametrize("name", sorted(REPLY_CASES))
def test_reply_evidence_one_line_each(name: str) -> None:
    http_reply, _ = REPLY_CASES[name]
    evidence = finding_for_reply(http_reply, MICROSOFT, ENDPOINT).evidence
    assert evidence[0] == f"POST {ENDPOINT}"
    assert all("\n" not in line and "\r" not in line for line in evidence)


def test_proxy_page_title_named() -> None:
    http_reply, _ = REPLY_CASES["proxy_502_html"]
    finding = finding_for_reply(http_reply, MICROSOFT, ENDPOINT)
    assert finding.title == (
        'The token endpoint returned an HTML page titled "502 Bad Gateway" instead of a '
        "token response (HTTP 502)"
    )


def test_proxy_page_facts() -> None:
    http_reply, _ = REPLY_CASES["proxy_502_html"]
    facts = finding_for_reply(http_reply, MICROSOFT, ENDPOINT).facts
    assert (facts["content_type"], facts["endpoint"], facts["provider"]) == (
        "text/html",
        ENDPOINT,
        "microsoft",
    )


def test_proxy_page_status_hint() -> None:
    http_reply, _ = REPLY_CASES["proxy_502_html"]
    assert "5xx status" in finding_for_reply(http_reply, MICROSOFT, ENDPOINT).cause


def test_proxy_page_evidence() -> None:
    http_reply, _ = REPLY_CASES["proxy_502_html"]
    evidence = finding_for_reply(http_reply, MICROSOFT, ENDPOINT).evidence
    assert evidence[1:3] == ("HTTP 502 Bad Gateway", "Content-Type: text/html")
    assert evidence[3].startswith("body: <html>\\r\\n<head><title>502 Bad Gateway")


def test_not_found_says_wrong_url() -> None:
    http_reply, _ = REPLY_CASES["not_found_json"]
    finding = finding_for_reply(http_reply, MICROSOFT, ENDPOINT)
    assert "no token endpoint at this URL" in finding.cause


def test_empty_body_named() -> None:
    http_reply, _ = REPLY_CASES["empty_503"]
    finding = finding_for_reply(http_reply, MICROSOFT, ENDPOINT)
    assert finding.title.startswith("The token endpoint returned an empty body")
    assert finding.evidence[-1] == "body: (empty)"


def test_not_utf8_named_and_escaped() -> None:
    http_reply, _ = REPLY_CASES["not_utf8"]
    finding = finding_for_reply(http_reply, MICROSOFT, ENDPOINT)
    assert "not UTF-8 text" in finding.title
    assert "\\xff\\xfe" in finding.evidence[-1]


def test_truncated_fact() -> None:
    http_reply, _ = REPLY_CASES["truncated_json"]
    facts = finding_for_reply(http_reply, MICROSOFT, ENDPOINT).facts
    assert facts["body_truncated"] is True


def test_rate_limit_retry_after() -> None:
    http_reply, _ = REPLY_CASES["rate_limited_json"]
    finding = finding_for_reply(http_reply, MICROSOFT, ENDPOINT)
    assert (finding.facts["retry_after"], finding.title) == (
        "30",
        "The token endpoint returned HTTP 429",
    )


def test_success_without_token_named() -> None:
    http_reply, _ = REPLY_CASES["success_without_token"]
    title = finding_for_reply(http_reply, MICROSOFT, ENDPOINT).title
    assert "a JSON object without access_token" in title


def test_long_body_excerpt_cut() -> None:
    finding = finding_for_reply(reply(500, b"x" * 5000, "text/plain"), MICROSOFT, ENDPOINT)
    assert finding.evidence[-1] == "body: " + "x" * 300 + " …"


def test_server_failure_title() -> None:
    http_reply, _ = REPLY_CASES["google_internal_failure_500"]
    assert finding_for_reply(http_reply, GOOGLE, ENDPOINT).title == (
        "The token endpoint returned HTTP 500"
    )


def test_server_failure_names_error() -> None:
    http_reply, _ = REPLY_CASES["google_internal_failure_500"]
    cause = finding_for_reply(http_reply, GOOGLE, ENDPOINT).cause
    assert "The body names the error internal_failure." in cause
    assert 'The provider says: "Backend Error".' in cause
    assert "A 5xx status means that the identity provider" in cause


def test_server_failure_fix_says_retry() -> None:
    http_reply, _ = REPLY_CASES["microsoft_transient_503"]
    fix = finding_for_reply(http_reply, MICROSOFT, ENDPOINT).fix
    assert "not of this client's settings: retry in a few minutes" in fix


def test_server_failure_keeps_error_facts() -> None:
    http_reply, _ = REPLY_CASES["microsoft_transient_503"]
    facts = finding_for_reply(http_reply, MICROSOFT, ENDPOINT).facts
    assert facts["oauth_error"] == "temporarily_unavailable"
    assert facts["provider_error_code"] == "AADSTS90033"
    assert facts["http_status"] == 503


def test_truncated_title_names_limit() -> None:
    http_reply, _ = REPLY_CASES["truncated_json"]
    assert finding_for_reply(http_reply, MICROSOFT, ENDPOINT).title == (
        "The token endpoint returned a body over 1 MiB (read cut at 1 MiB) instead of a token "
        "response (HTTP 200)"
    )


def test_truncated_cause_names_limit() -> None:
    http_reply, _ = REPLY_CASES["truncated_json"]
    cause = finding_for_reply(http_reply, MICROSOFT, ENDPOINT).cause
    assert "smtpdiag stopped reading after 1 MiB (1048576 bytes), its limit for a reply." in cause


def test_unbroken_body_excerpt_cut() -> None:
    body = b'{"padding":"' + b"A" * 65536
    finding = finding_for_reply(reply(200, body, truncated=True), MICROSOFT, ENDPOINT)
    assert finding.evidence[-1] == 'body: {"padding":"' + "A" * 288 + " …"


def test_pair_longer_than_mask_window_masked() -> None:
    value = "lab-refresh-" + "Q" * 5000
    finding = finding_for_reply(reply(400, f"refresh_token={value}".encode()), GOOGLE, ENDPOINT)
    assert finding.evidence[-1] == "body: refresh_token=[REDACTED] …"


def test_error_reply_severity() -> None:
    http_reply, _ = REPLY_CASES["error_body_400"]
    assert finding_for_reply(http_reply, MICROSOFT, ENDPOINT).severity is Severity.CRITICAL


SECRET = "1//0g-refresh-canary-0123456789abcdef"
ACCESS = "ya29.access-canary-0123456789abcdef"


@pytest.mark.parametrize(
    "body",
    [
        {
            "error": "invalid_grant",
            "error_description": f"token {SECRET} revoked",
            "refresh_token": SECRET,
        },
        {"token_type": "Bearer", "refresh_token": SECRET, "id_token": ACCESS},
        {"error": f"x{SECRET}", "client_secret": SECRET},
    ],
    ids=["error_quotes_token", "success_without_access_token", "error_code_is_token"],
)
def test_reply_hides_secrets(body: dict[str, Any]) -> None:
    finding = finding_for_reply(json_reply(400, body), GOOGLE, ENDPOINT)
    text = json.dumps(finding.to_dict())
    assert SECRET not in text
    assert ACCESS not in text


def test_redirect_names_its_location() -> None:
    reply = HttpReply(
        302,
        "Found",
        {"location": "https://proxy.example.net/login?next=/token", "content-length": "0"},
        b"",
        False,
        0.01,
    )
    finding = finding_for_reply(reply, Provider.MICROSOFT, "https://login.example.com/token")
    assert finding.code == "token.endpoint_http_error"
    assert finding.facts["location"] == "https://proxy.example.net/login?next=/token"
    assert "redirects to https://proxy.example.net/login?next=/token" in finding.cause
    assert "HTTP 302" in finding.title
