"""Clock symptoms: assertion time errors, tokens from the future and Google's Invalid JWT."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import pytest

from smtpdiag.clock.symptom_kinds import SYMPTOM_FINDINGS
from smtpdiag.clock.symptoms import (
    decode_clock_symptom,
    finding_for_clock_error,
)
from smtpdiag.clock.time_text import (
    format_duration,
    parse_iso,
    parse_java_date,
    round_gap,
    seconds_between,
    zone_of,
)
from smtpdiag.knowledge.providers import Provider
from smtpdiag.models import Finding, Severity
from smtpdiag.oauth.token_errors import finding_for_error_body, parse_error_body


def aadsts700024(current: str, valid_from: str, expiry: str) -> str:
    """Return Microsoft's AADSTS700024 description with the given times."""
    return (
        "AADSTS700024: Client assertion is not within its valid time range. Current time: "
        f"{current}, assertion valid from {valid_from}, expiry time of assertion {expiry}. "
        "Review the documentation at "
        "https://learn.microsoft.com/entra/identity-platform/certificate-credentials ."
    )


EPOCH = "1970-01-01T00:00:00.0000000Z"

# A PowerShell tool's bug report of 2024: the assertion was built with local time taken for
# UTC; the reporter fixed it by changing how the time was read.
LOCAL_AS_UTC_BODY = {
    "error": "invalid_client",
    "error_description": "AADSTS700024: Client assertion is not within its valid time range. "
    "Current time: 2024-12-07T12:09:18.3149355Z, assertion valid from "
    "1970-01-01T00:00:00.0000000Z, expiry time of assertion 2024-12-07T11:14:18.0000000Z.",
}


def body_finding(body: dict[str, Any]) -> Finding:
    parsed = parse_error_body(body)
    assert parsed is not None
    return finding_for_error_body(parsed, Provider.MICROSOFT, 401)


def test_symptom_codes_in_clock_area() -> None:
    codes = [kind.code for kind in SYMPTOM_FINDINGS]
    assert codes == [
        "clock.assertion_time_range",
        "clock.assertion_time_invalid",
        "clock.token_used_before_issued",
        "clock.jwt_time_invalid",
    ]
    assert all(kind.severity is Severity.CRITICAL for kind in SYMPTOM_FINDINGS)


def test_local_as_utc_is_timezone_bug() -> None:
    finding = body_finding(LOCAL_AS_UTC_BODY)
    assert finding.code == "clock.assertion_time_range"
    assert finding.facts["gap_seconds"] == 3300
    assert finding.facts["timezone_suspected"] is True
    assert finding.facts["timezone_offset_hours_suspected"] == 1
    assert finding.facts["server_time"] == "2024-12-07T12:09:18.314935Z"
    assert finding.facts["assertion_expiry"] == "2024-12-07T11:14:18Z"
    assert "assertion_valid_from" not in finding.facts
    assert "55 minutes" in finding.cause
    assert "local time taken for UTC" in finding.cause
    assert "timezone" in finding.fix


def test_local_as_utc_keeps_token_facts() -> None:
    finding = body_finding(LOCAL_AS_UTC_BODY)
    assert finding.facts["oauth_error"] == "invalid_client"
    assert finding.facts["provider_error_code"] == "AADSTS700024"
    assert finding.facts["provider"] == "microsoft"
    assert finding.facts["http_status"] == 401
    assert finding.title.endswith("(invalid_client, AADSTS700024)")


# (current time, valid from, expiry, gap seconds, hours suspected or None, offset text or None)
ASSERTION_CASES = [
    # A whole hour exactly, and two hours less a 10-minute lifetime.
    pytest.param(
        "2024-01-10T10:00:00.0000000Z",
        EPOCH,
        "2024-01-10T09:00:00.0000000Z",
        3600,
        1,
        "+01:00",
        id="one-hour-exact",
    ),
    pytest.param(
        "2024-01-10T10:00:00.0000000Z",
        EPOCH,
        "2024-01-10T08:10:00.0000000Z",
        6600,
        2,
        "+02:00",
        id="two-hours-less-lifetime",
    ),
    # A .NET library's report of 2024: 34 minutes past expiry, a stale assertion.
    pytest.param(
        "2024-10-02T22:05:03.6755165Z",
        EPOCH,
        "2024-10-02T21:30:53.0000000Z",
        2051,
        None,
        None,
        id="dotnet-stale",
    ),
    # MSAL for Java's regression report of 2025: 5 h 17 min, a cached assertion.
    pytest.param(
        "2025-08-29T05:47:32.1501147Z",
        EPOCH,
        "2025-08-29T00:30:05.0000000Z",
        19047,
        None,
        None,
        id="java-cached",
    ),
    # A CI pipeline's report of 2024 with nbf set: built 3 h 42 min before use, no whole hour.
    pytest.param(
        "2024-05-28T06:01:42.5853621Z",
        "2024-05-28T02:19:01.0000000Z",
        "2024-05-28T02:29:01.0000000Z",
        12762,
        None,
        None,
        id="nbf-known-stale",
    ),
    # With nbf known, the age (server time minus nbf) decides: 3 h exactly is a timezone.
    pytest.param(
        "2024-05-28T05:19:30.0000000Z",
        "2024-05-28T02:19:01.0000000Z",
        "2024-05-28T02:29:01.0000000Z",
        10229,
        3,
        "+03:00",
        id="nbf-known-three-hours",
    ),
    # A small gap: the host clock is behind or the assertion waited.
    pytest.param(
        "2024-01-10T10:00:45.0000000Z",
        EPOCH,
        "2024-01-10T10:00:00.0000000Z",
        45,
        None,
        None,
        id="small-gap",
    ),
    # 61 minutes past expiry: outside the window of a whole hour less 0 to 11 minutes.
    pytest.param(
        "2024-01-10T11:01:01.0000000Z",
        EPOCH,
        "2024-01-10T10:00:00.0000000Z",
        3661,
        None,
        None,
        id="just-over-an-hour",
    ),
    # Not valid yet, 7 hours ahead: an east-of-UTC host writing local time as UTC.
    pytest.param(
        "2024-01-10T03:00:00.0000000Z",
        "2024-01-10T10:00:00.0000000Z",
        "2024-01-10T10:10:00.0000000Z",
        -25200,
        7,
        "+07:00",
        id="not-yet-valid-seven-hours",
    ),
    pytest.param(
        "2024-01-10T09:59:30.0000000Z",
        "2024-01-10T10:00:00.0000000Z",
        "2024-01-10T10:10:00.0000000Z",
        -30,
        None,
        None,
        id="not-yet-valid-small",
    ),
    # India, UTC+05:30, with nbf known: built 5 h 30 min before the server's time.
    pytest.param(
        "2024-01-10T10:00:00.0000000Z",
        "2024-01-10T04:30:00.0000000Z",
        "2024-01-10T04:40:00.0000000Z",
        19200,
        5.5,
        "+05:30",
        id="nbf-known-india",
    ),
    # Nepal, UTC+05:45, not valid yet.
    pytest.param(
        "2024-01-10T04:15:00.0000000Z",
        "2024-01-10T10:00:00.0000000Z",
        "2024-01-10T10:10:00.0000000Z",
        -20700,
        5.75,
        "+05:45",
        id="not-yet-valid-nepal",
    ),
    # 30 minutes old with nbf known: a multiple of 15 minutes, but below the smallest offset.
    pytest.param(
        "2024-01-10T10:00:00.0000000Z",
        "2024-01-10T09:30:00.0000000Z",
        "2024-01-10T09:40:00.0000000Z",
        1200,
        None,
        None,
        id="nbf-known-half-hour-stale",
    ),
    # 5 h 37 min old with nbf known: no multiple of 15 minutes.
    pytest.param(
        "2024-01-10T10:07:00.0000000Z",
        "2024-01-10T04:30:00.0000000Z",
        "2024-01-10T04:40:00.0000000Z",
        19620,
        None,
        None,
        id="nbf-known-no-quarter-hour",
    ),
    # Both times with a fraction: the gap keeps milliseconds.
    pytest.param(
        "2024-10-02T22:05:03.6755165Z",
        EPOCH,
        "2024-10-02T21:30:53.1234567Z",
        2050.552,
        None,
        None,
        id="fractions-on-both",
    ),
]


@pytest.mark.parametrize(
    ("current", "valid_from", "expiry", "gap", "hours", "offset"), ASSERTION_CASES
)
def test_assertion_gap_rule(
    current: str,
    valid_from: str,
    expiry: str,
    gap: float,
    hours: float | None,
    offset: str | None,
) -> None:
    finding = body_finding(
        {"error": "invalid_client", "error_description": aadsts700024(current, valid_from, expiry)}
    )
    assert finding.code == "clock.assertion_time_range"
    assert finding.facts["gap_seconds"] == gap
    assert type(finding.facts["gap_seconds"]) is type(gap)
    assert finding.facts["timezone_suspected"] is (hours is not None)
    assert finding.facts.get("timezone_offset_hours_suspected") == hours
    assert finding.facts.get("timezone_offset_suspected") == offset


@pytest.mark.parametrize(
    ("current", "valid_from", "expiry", "gap", "hours", "offset"), ASSERTION_CASES
)
def test_assertion_fix_says_each_step_once(
    current: str,
    valid_from: str,
    expiry: str,
    gap: float,
    hours: float | None,
    offset: str | None,
) -> None:
    finding = body_finding(
        {"error": "invalid_client", "error_description": aadsts700024(current, valid_from, expiry)}
    )
    assert finding.fix.count("token request") == 1
    assert finding.fix.count("NTP") == 1
    assert finding.fix.count("Build") == 1


def test_india_offset_cause_names_both_zones() -> None:
    description = aadsts700024(
        "2024-01-10T10:00:00.0000000Z",
        "2024-01-10T04:30:00.0000000Z",
        "2024-01-10T04:40:00.0000000Z",
    )
    finding = body_finding({"error": "invalid_client", "error_description": description})
    assert "built 5 hours 30 minutes before that time (server time minus nbf)" in finding.cause
    assert "UTC taken for local time on a host at UTC+05:30" in finding.cause
    assert "local time taken for UTC on a host at UTC-05:30" in finding.cause
    assert "cached" not in finding.cause
    assert "UTC" in finding.fix


def test_exact_offset_cause_mentions_no_lifetime() -> None:
    description = aadsts700024(
        "2024-01-10T03:00:00.0000000Z",
        "2024-01-10T10:00:00.0000000Z",
        "2024-01-10T10:10:00.0000000Z",
    )
    finding = body_finding({"error": "invalid_client", "error_description": description})
    assert "started 7 hours after the server's current time" in finding.cause
    assert "within a minute of 7 hours" in finding.cause
    assert "lifetime" not in finding.cause


def test_offset_without_nbf_names_lifetime() -> None:
    finding = body_finding(LOCAL_AS_UTC_BODY)
    assert "gives no nbf" in finding.cause
    assert "lifetime of up to 10 minutes comes within a minute of 1 hour" in finding.cause


def test_empty_window_is_no_gap() -> None:
    description = aadsts700024(
        "2024-01-10T10:00:00.0000000Z",
        "2024-01-10T11:00:00.0000000Z",
        "2024-01-10T09:00:00.0000000Z",
    )
    finding = body_finding({"error": "invalid_client", "error_description": description})
    assert finding.facts["assertion_window_empty"] is True
    assert finding.facts["timezone_suspected"] is False
    assert "gap_seconds" not in finding.facts
    assert "nbf lies 2 hours after its exp" in finding.cause
    assert "expired" not in finding.cause
    assert "whole number of hours" not in finding.cause
    assert "exp must lie after nbf" in finding.fix


def test_stale_assertion_cause_names_cache() -> None:
    description = aadsts700024(
        "2024-10-02T22:05:03.6755165Z", EPOCH, "2024-10-02T21:30:53.0000000Z"
    )
    finding = body_finding({"error": "invalid_client", "error_description": description})
    assert "34 minutes 11 seconds" in finding.cause
    assert "still no whole number of hours" in finding.cause
    assert "cached or reused assertion" in finding.cause
    assert "caches or reuses an assertion" in finding.fix


def test_not_yet_valid_cause_names_clock_ahead() -> None:
    description = aadsts700024(
        "2024-01-10T09:59:30.0000000Z",
        "2024-01-10T10:00:00.0000000Z",
        "2024-01-10T10:10:00.0000000Z",
    )
    finding = body_finding({"error": "invalid_client", "error_description": description})
    assert "30 seconds after" in finding.cause
    assert "ahead" in finding.cause
    assert finding.facts["assertion_valid_from"] == "2024-01-10T10:00:00Z"


@pytest.mark.parametrize(
    "description",
    [
        aadsts700024("2024-13-45T99:00:00.0000000Z", EPOCH, "2024-12-07T11:14:18.0000000Z"),
        aadsts700024("yesterday", EPOCH, "soon"),
        "AADSTS700024: Client assertion is not within its valid time range.",
    ],
    ids=["impossible-date", "words", "no-times"],
)
def test_assertion_malformed_times(description: str) -> None:
    finding = body_finding({"error": "invalid_client", "error_description": description})
    assert finding.code == "clock.assertion_time_range"
    assert "gap_seconds" not in finding.facts
    assert finding.facts["timezone_suspected"] is False
    assert "gap is unknown" in finding.cause


# ADAL for Java's test run of 2015 (the system clock was wrong) and a sample's report of 2018.
ADAL_2015 = (
    '{"error_description":"AADSTS70002: Error validating credentials. AADSTS50012: Client '
    "assertion is not within its valid time range.\\r\\nTrace ID: "
    "80ad7758-a570-42f0-97b7-ae2dded006c7\\r\\nCorrelation ID: "
    '986a6c2c-a596-4189-b5b5-3a1b1a9a17e2\\r\\nTimestamp: 2015-07-30 17:18:47Z",'
    '"error":"invalid_client"}'
)


def test_aadsts50012_time_text() -> None:
    finding = body_finding(json.loads(ADAL_2015))
    assert finding.code == "clock.assertion_time_invalid"
    assert finding.facts["provider_error_code"] == "AADSTS70002"
    assert finding.facts["oauth_error"] == "invalid_client"
    assert "gap between this host's clock and the server's is unknown" in finding.cause


@pytest.mark.parametrize(
    ("description", "code"),
    [
        # NOTE: shapes of AADSTS50012's other texts as seen in bug reports; wording may vary.
        ("AADSTS50012: Client assertion contains an invalid signature.", "token.invalid_client"),
        ("AADSTS50012: Invalid client secret is provided.", "token.invalid_client"),
        (
            "AADSTS70002: Error validating credentials. AADSTS50012: The certificate used to "
            "sign the client assertion has expired.",
            "token.invalid_client",
        ),
        (
            "AADSTS50012: Client assertion is expired. Check the exp claim.",
            "clock.assertion_time_invalid",
        ),
        ("AADSTS50012: nbf is in the future.", "clock.assertion_time_invalid"),
        (
            "AADSTS50012: Client assertion contains an invalid signature. [Reason - The key "
            "used is expired.]",
            "token.invalid_client",
        ),
        (
            "AADSTS50012: Client assertion contains an invalid signature. [Reason - The "
            "provided signature value did not match the expected signature value., Thumbprint "
            "of key used by client: 'C0FFEE']",
            "token.invalid_client",
        ),
        ("AADSTS50012: The signing key has expired.", "token.invalid_client"),
        (
            "AADSTS50012: Client assertion is not within its valid time range. Review "
            "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
            "clock.assertion_time_invalid",
        ),
        ("AADSTS50012: The token is not yet valid.", "clock.assertion_time_invalid"),
    ],
    ids=[
        "signature",
        "secret",
        "certificate-expired",
        "expired",
        "nbf",
        "key-expired",
        "thumbprint",
        "signing-key-expired",
        "time-range-with-certificate-url",
        "not-yet-valid",
    ],
)
def test_aadsts50012_only_time_texts(description: str, code: str) -> None:
    finding = body_finding({"error": "invalid_client", "error_description": description})
    assert finding.code == code


GOOGLE_INVALID_JWT = {
    "error": "invalid_grant",
    "error_description": "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
    "reasonable timeframe. Check your iat and exp values in the JWT claim.",
}
# The wording of 2018, from a PHP client's bug report.
GOOGLE_INVALID_JWT_2018 = {
    "error": "invalid_grant",
    "error_description": "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
    "reasonable timeframe. Check your iat and exp values and use a clock with skew to account "
    "for clock differences between systems.",
}


@pytest.mark.parametrize("body", [GOOGLE_INVALID_JWT, GOOGLE_INVALID_JWT_2018])
def test_google_invalid_jwt(body: dict[str, str]) -> None:
    parsed = parse_error_body(body)
    assert parsed is not None
    finding = finding_for_error_body(parsed, Provider.GOOGLE, 400)
    assert finding.code == "clock.jwt_time_invalid"
    assert finding.facts["oauth_error"] == "invalid_grant"
    assert "iat" in finding.fix


def test_other_errors_stay_token_findings() -> None:
    parsed = parse_error_body({"error": "invalid_grant", "error_description": "AADSTS700082: x"})
    assert parsed is not None
    assert finding_for_clock_error(parsed, {}, {}) is None
    finding = finding_for_error_body(parsed, Provider.MICROSOFT)
    assert finding.code == "token.refresh_token_expired"


# Pasted texts: (text, code, facts that must match)
PASTED_CASES = [
    pytest.param(
        "The token can't be used before Tue Apr 17 11:32:42 WIB 2018",
        "clock.token_used_before_issued",
        {
            "library": "java-jwt",
            "token_not_before_utc": "2018-04-17T04:32:42Z",
            "timezone": "WIB",
            "timezone_offset": "+07:00",
            "timezone_suspected": False,
        },
        id="java-jwt-wib",
    ),
    pytest.param(
        "2018-04-17 11:32:39.512 ERROR c.e.LoginController - "
        "com.auth0.jwt.exceptions.InvalidClaimException: "
        "The Token can't be used before Tue Apr 17 11:32:42 WIB 2018.\n"
        "\tat com.auth0.jwt.JWTVerifier.assertDateIsPast(JWTVerifier.java:1)",
        "clock.token_used_before_issued",
        {
            "gap_seconds": 2,
            "gap_source": "log_timestamp",
            "gap_assumes_same_timezone": True,
            "validator_time": "2018-04-17 11:32:39.512",
        },
        id="java-jwt-log-line",
    ),
    pytest.param(
        "2018-04-17T04:32:40Z INFO start\n"
        "com.auth0.jwt.exceptions.InvalidClaimException: "
        "The Token can't be used before Tue Apr 17 11:32:42 WIB 2018",
        "clock.token_used_before_issued",
        {"gap_seconds": 2, "gap_source": "log_timestamp", "timezone_suspected": False},
        id="log-timestamp-utc-line-before",
    ),
    pytest.param(
        "2018-04-17T04:32:42Z ERROR The Token can't be used before Tue Apr 17 11:32:42 UTC 2018",
        "clock.token_used_before_issued",
        {
            "gap_seconds": 25200,
            "timezone_suspected": True,
            "timezone_offset_hours_suspected": 7,
            "timezone_offset_suspected": "+07:00",
        },
        id="seven-hours-ahead",
    ),
    pytest.param(
        "2018-04-17T04:32:40Z ERROR The Token can't be used before Tue Apr 17 11:32:42 IST 2018",
        "clock.token_used_before_issued",
        {"timezone": "IST", "timezone_suspected": False},
        id="ambiguous-zone",
    ),
    pytest.param(
        "The Token can't be used before Tue Apr 17 11:32:42 XYZT 2018",
        "clock.token_used_before_issued",
        {"timezone": "XYZT", "timezone_suspected": False},
        id="unknown-zone",
    ),
    pytest.param(
        "The Token can't be used before Tue Foo 99 11:32:42 WIB 2018",
        "clock.token_used_before_issued",
        {"token_time_unreadable": "Tue Foo 99 11:32:42 WIB 2018", "timezone_suspected": False},
        id="malformed-date",
    ),
    # A Go service's log of 2021 (minio).
    pytest.param(
        "Error: Token used before issued (*jwt.ValidationError)",
        "clock.token_used_before_issued",
        {"library": "go-jwt", "timezone_suspected": False},
        id="go-jwt",
    ),
    pytest.param(
        "JWT validation error: Token is not valid yet",
        "clock.token_used_before_issued",
        {"library": "go-jwt"},
        id="go-jwt-nbf",
    ),
    # A React Native module's report of 2019 (jjwt).
    pytest.param(
        "Error: JWT must not be accepted before 2019-08-25T15:33:52Z. Current time: "
        "2019-08-25T15:33:49Z, a difference of 2378 milliseconds.  Allowed clock skew: 0 "
        "milliseconds.",
        "clock.token_used_before_issued",
        {"library": "jjwt", "gap_seconds": 3, "gap_source": "message"},
        id="jjwt",
    ),
    pytest.param(
        "Error: JWT must not be accepted before 2019-08-25T15:33:52.700Z. Current time: "
        "2019-08-25T15:33:49.312Z, a difference of 3388 milliseconds.",
        "clock.token_used_before_issued",
        {"library": "jjwt", "gap_seconds": 3.388, "gap_source": "message"},
        id="jjwt-milliseconds",
    ),
    # The issuer in India wrote local time as UTC; the log is in UTC.
    pytest.param(
        "2018-04-17T06:02:42Z ERROR The Token can't be used before Tue Apr 17 11:32:42 UTC 2018",
        "clock.token_used_before_issued",
        {
            "gap_seconds": 19800,
            "timezone_suspected": True,
            "timezone_offset_suspected": "+05:30",
            "timezone_offset_hours_suspected": 5.5,
        },
        id="india-ahead",
    ),
    pytest.param(
        "2018-04-17T11:32:00Z ERROR The Token can't be used before Tue Apr 17 11:32:42 WIB 2018.",
        "clock.token_used_before_issued",
        {
            "gap_seconds": -25158,
            "validator_time": "2018-04-17T11:32:00Z",
            "timezone_offset_suspected": "+07:00",
        },
        id="negative-gap",
    ),
    # A Google Workspace tool's report of 2023 (google-auth for Python).
    pytest.param(
        "Token used too early, 1691058380 < 1691058403. Check that your computer's clock is "
        "set correctly.",
        "clock.token_used_before_issued",
        {
            "library": "google-auth",
            "gap_seconds": 23,
            "token_not_before_utc": "2023-08-03T10:26:43Z",
        },
        id="google-auth",
    ),
    pytest.param(
        "Cannot handle token prior to 2015-06-04T06:05:30+0000",
        "clock.token_used_before_issued",
        {"library": "php-jwt", "token_not_before_utc": "2015-06-04T06:05:30Z"},
        id="php-jwt",
    ),
    pytest.param(
        "jwt.exceptions.ImmatureSignatureError: The token is not yet valid (iat)",
        "clock.token_used_before_issued",
        {"library": "pyjwt"},
        id="pyjwt",
    ),
    pytest.param(
        "Caused by: com.microsoft.aad.msal4j.MsalServiceException: "
        + aadsts700024("2024-12-07T12:09:18.3149355Z", EPOCH, "2024-12-07T11:14:18.0000000Z")
        + " Trace ID: 7a84b74b-1889-494f-b408-66e8b36c7400",
        "clock.assertion_time_range",
        {
            "provider": "microsoft",
            "provider_error_code": "AADSTS700024",
            "gap_seconds": 3300,
            "timezone_suspected": True,
        },
        id="msal-exception",
    ),
    pytest.param(
        "AADSTS70002: Error validating credentials. AADSTS50012: Client assertion is not "
        "within its valid time range.",
        "clock.assertion_time_invalid",
        {"provider_error_code": "AADSTS70002"},
        id="aadsts50012-text",
    ),
    pytest.param(
        "Google_Auth_Exception: Error refreshing the OAuth2 token, message: "
        "'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
        "timeframe. Check your iat and exp values in the JWT claim.'",
        "clock.jwt_time_invalid",
        {"provider": "google"},
        id="google-invalid-jwt",
    ),
]


@pytest.mark.parametrize(("text", "code", "facts"), PASTED_CASES)
def test_pasted_symptom(text: str, code: str, facts: dict[str, Any]) -> None:
    result = decode_clock_symptom(text)
    assert result is not None
    assert [finding.code for finding in result.findings] == [code]
    for name, value in facts.items():
        assert result.facts[name] == value, name


def test_zone_notes_for_unknown_zones() -> None:
    ambiguous = decode_clock_symptom("The Token can't be used before Tue Apr 17 11:32:42 IST 2018")
    unknown = decode_clock_symptom("The Token can't be used before Tue Apr 17 11:32:42 XYZT 2018")
    assert ambiguous is not None
    assert unknown is not None
    assert "ambiguous" in ambiguous.facts["timezone_note"]
    assert "token_not_before_utc" not in ambiguous.facts
    assert "not a timezone abbreviation" in unknown.facts["timezone_note"]


def test_ambiguous_zone_with_utc_log_has_no_gap() -> None:
    result = decode_clock_symptom(
        "2018-04-17T04:32:40Z ERROR The Token can't be used before Tue Apr 17 11:32:42 IST 2018"
    )
    assert result is not None
    assert "gap_seconds" not in result.facts


def test_unrelated_text_is_no_symptom() -> None:
    assert decode_clock_symptom("hello world") is None
    assert decode_clock_symptom("AADSTS50012: Invalid client secret is provided.") is None


def test_pasted_key_expired_is_no_symptom() -> None:
    text = (
        "MsalServiceException: AADSTS50012: Client assertion contains an invalid signature. "
        "[Reason - The key used is expired.]"
    )
    assert decode_clock_symptom(text) is None


@pytest.mark.parametrize(
    ("zone", "note"),
    [("IST", "IST is ambiguous"), ("XYZ", "XYZ is not a timezone abbreviation")],
)
def test_unknown_offset_with_log_time_says_why(zone: str, note: str) -> None:
    result = decode_clock_symptom(
        f"2018-04-17T11:30:00Z The Token can't be used before Tue Apr 17 11:32:42 {zone} 2018."
    )
    assert result is not None
    cause = result.findings[0].cause
    assert result.facts["validator_time"] == "2018-04-17T11:30:00Z"
    assert "gap_seconds" not in result.facts
    assert "log line gives the validating machine's time (2018-04-17T11:30:00Z)" in cause
    assert "the token's time has no known UTC offset" in cause
    assert note in cause
    assert "does not give the validating machine's time" not in cause


def test_message_without_validator_time_says_so() -> None:
    result = decode_clock_symptom("The Token can't be used before Tue Apr 17 11:32:42 WIB 2018")
    assert result is not None
    assert "does not give the validating machine's time" in result.findings[0].cause


def test_negative_gap_blames_zones_not_issuer() -> None:
    result = decode_clock_symptom(
        "2018-04-17T11:32:00Z ERROR The Token can't be used before Tue Apr 17 11:32:42 WIB 2018."
    )
    assert result is not None
    finding = result.findings[0]
    assert "already 6 hours 59 minutes past" in finding.cause
    assert "different zones" in finding.cause
    assert "not written by the validating machine" in finding.cause
    assert "within a minute of 7 hours" in finding.cause
    assert "issuer's clock is ahead" not in finding.cause
    assert "issuer computes iat" not in finding.fix


def test_positive_gap_blames_issuer_clock() -> None:
    result = decode_clock_symptom(
        "2018-04-17T04:32:40Z ERROR The Token can't be used before Tue Apr 17 11:32:42 WIB 2018"
    )
    assert result is not None
    assert "issuer's clock is ahead of the validating machine's clock by 2 seconds" in (
        result.findings[0].cause
    )


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2024-12-07T12:09:18.3149355Z", "2024-12-07 12:09:18.314935+00:00"),
        ("2015-06-04T06:05:30+0000", "2015-06-04 06:05:30+00:00"),
        ("2018-04-17 11:32:42+07:00", "2018-04-17 04:32:42+00:00"),
    ],
)
def test_parse_iso_utc(text: str, utc: str) -> None:
    parsed = parse_iso(text)
    assert parsed is not None
    assert str(parsed.value.astimezone(UTC)) == utc


@pytest.mark.parametrize(
    ("name", "offset"),
    [("WIB", "+07:00"), ("PST", "-08:00"), ("ACST", "+09:30"), ("GMT+05:45", "+05:45")],
)
def test_zone_offsets(name: str, offset: str) -> None:
    assert zone_of(name).offset_text == offset


@pytest.mark.parametrize("name", ["CST", "IST", "BST", "XYZT", "+1500"])
def test_zone_without_offset(name: str) -> None:
    zone = zone_of(name)
    assert zone.offset is None
    assert name in zone.note


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("2024-01-10T10:00:00Z", "2024-01-10T10:00:02.488Z", 2),
        ("2024-01-10T10:00:00.5Z", "2024-01-10T10:00:02.0000000Z", 2),
        ("2024-01-10T10:00:00.25Z", "2024-01-10T10:00:02.4884Z", 2.238),
        ("2024-01-10T10:00:00.000001Z", "2024-01-10T10:00:00.000002Z", 0.0),
    ],
    ids=["one-fraction", "zero-fraction", "both-fractions", "tiny"],
)
def test_round_gap(first: str, second: str, expected: float) -> None:
    earlier = parse_iso(first)
    later = parse_iso(second)
    assert earlier is not None
    assert later is not None
    difference = seconds_between(earlier, later)
    assert difference is not None
    rounded = round_gap(difference, earlier, later)
    assert rounded == expected
    assert type(rounded) is type(expected)
    assert "e" not in repr(rounded)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "1 second"),
        (2.488, "2.488 seconds"),
        (0.001, "0.001 seconds"),
        (2050.552, "34 minutes 10.552 seconds"),
        (3300, "55 minutes"),
        (19200, "5 hours 20 minutes"),
    ],
)
def test_format_duration(seconds: float, words: str) -> None:
    assert format_duration(seconds) == words


def test_utc_and_local_differing_by_zone_are_equal() -> None:
    utc = parse_iso("2018-04-17T04:32:42Z")
    local = parse_java_date("Tue Apr 17 11:32:42 WIB 2018")
    assert utc is not None
    assert local is not None
    assert seconds_between(utc, local) == 0.0
