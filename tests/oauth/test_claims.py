"""Claim judgement of access tokens: Microsoft v1, v2, app-only and Graph tokens, and junk."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from smtpdiag.knowledge.providers import Provider
from smtpdiag.models import Severity
from smtpdiag.oauth.claims import (
    Expectations,
    decode_findings,
    evaluate_claims,
    evaluate_scopes,
    infer_profile,
    iso_time,
    numeric_date,
    scope_matches,
)
from smtpdiag.oauth.model import Grant
from smtpdiag.oauth.profiles import get_profile
from smtpdiag.sasl import jwt_claims

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
TENANT = "3f2b8c4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f"
OTHER_TENANT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
CLIENT_ID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

# Shapes follow Microsoft's documented v1.0 and v2.0 access token claims; values are made up.
MS_V1_DELEGATED: dict[str, Any] = {
    "aud": "https://outlook.office.com",
    "iss": f"https://sts.windows.net/{TENANT}/",
    "iat": T - 600,
    "nbf": T - 600,
    "exp": T + 3000,
    "acr": "1",
    "amr": ["pwd"],
    "app_displayname": "msmtp relay",
    "appid": CLIENT_ID,
    "appidacr": "0",
    "name": "Alice Example",
    "oid": "5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f",
    "scp": "SMTP.Send",
    "sub": "k2VtYWlsLXN1YmplY3Q",
    "tid": TENANT,
    "unique_name": "alice@contoso.com",
    "upn": "alice@contoso.com",
    "ver": "1.0",
}
MS_APP_ONLY: dict[str, Any] = {
    "aud": "https://outlook.office365.com",
    "iss": f"https://sts.windows.net/{TENANT}/",
    "iat": T - 60,
    "nbf": T - 60,
    "exp": T + 3540,
    "app_displayname": "relay daemon",
    "appid": CLIENT_ID,
    "appidacr": "1",
    "idtyp": "app",
    "oid": "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
    "roles": ["SMTP.SendAsApp"],
    "sub": "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
    "tid": TENANT,
    "ver": "1.0",
}
GRAPH_V1: dict[str, Any] = {
    **MS_V1_DELEGATED,
    "aud": GRAPH_APP_ID,
    "scp": "Mail.Send SMTP.Send User.Read profile openid email",
}
GRAPH_URL: dict[str, Any] = {**GRAPH_V1, "aud": "https://graph.microsoft.com"}
MS_V2_DELEGATED: dict[str, Any] = {
    "aud": "https://outlook.office.com",
    "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
    "iat": T - 60,
    "nbf": T - 60,
    "exp": T + 3600,
    "azp": CLIENT_ID,
    "name": "Alice Example",
    "preferred_username": "alice@contoso.com",
    "scp": "SMTP.Send IMAP.AccessAsUser.All",
    "tid": TENANT,
    "ver": "2.0",
}
# An ID token sent in place of the access token: its audience is the client itself.
MS_ID_TOKEN: dict[str, Any] = {
    "aud": CLIENT_ID,
    "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
    "exp": T + 3600,
    "azp": CLIENT_ID,
    "preferred_username": "alice@contoso.com",
    "tid": TENANT,
    "ver": "2.0",
}
MICROSOFT = get_profile("microsoft")


def make_jwt(payload: dict[str, Any]) -> str:
    """Build a JWT with base64url JSON parts and a dummy signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT', 'kid': 'test'})}.{part(payload)}.ZHVtbXktc2ln"


def claims_of(payload: dict[str, Any]) -> dict[str, Any]:
    return {"header": {"alg": "RS256", "typ": "JWT"}, "payload": payload}


def expect(
    grant: Grant | None = Grant.REFRESH_TOKEN,
    user: str | None = "alice@contoso.com",
    tenant: str | None = TENANT,
    requested: tuple[str, ...] = (),
) -> Expectations:
    return Expectations(MICROSOFT, grant, user, tenant, requested)


CASES = [
    ("v1 delegated correct", MS_V1_DELEGATED, expect(), []),
    ("v1 user differs", MS_V1_DELEGATED, expect(user="bob@contoso.com"), ["scope.user_mismatch"]),
    ("v1 user case differs", MS_V1_DELEGATED, expect(user="Alice@CONTOSO.com"), []),
    ("v1 no user configured", MS_V1_DELEGATED, expect(user=None), []),
    ("graph app id audience", GRAPH_V1, expect(), ["scope.wrong_audience"]),
    ("graph url audience", GRAPH_URL, expect(), ["scope.wrong_audience"]),
    (
        "delegated without SMTP.Send",
        {**MS_V1_DELEGATED, "scp": "IMAP.AccessAsUser.All POP.AccessAsUser.All"},
        expect(),
        ["scope.missing"],
    ),
    ("delegated scp absent", {**MS_V1_DELEGATED, "scp": None}, expect(), ["scope.missing"]),
    ("app-only correct", MS_APP_ONLY, expect(grant=Grant.CLIENT_CREDENTIALS), []),
    ("app-only inferred", MS_APP_ONLY, expect(grant=None), []),
    (
        "app-only without role",
        {**MS_APP_ONLY, "roles": ["Mail.Send"]},
        expect(grant=Grant.CLIENT_CREDENTIALS),
        ["scope.missing"],
    ),
    (
        "app-only role as string",
        {**MS_APP_ONLY, "roles": "SMTP.SendAsApp"},
        expect(grant=Grant.CLIENT_CREDENTIALS),
        [],
    ),
    ("tenant id differs", MS_V1_DELEGATED, expect(tenant=OTHER_TENANT), ["scope.wrong_tenant"]),
    ("tenant id upper case", MS_V1_DELEGATED, expect(tenant=TENANT.upper()), []),
    ("tenant domain", MS_V1_DELEGATED, expect(tenant="contoso.onmicrosoft.com"), []),
    ("tenant alias", MS_V1_DELEGATED, expect(tenant="organizations"), []),
    ("expired", {**MS_V1_DELEGATED, "exp": T - 10}, expect(), ["scope.token_expired"]),
    ("expires now", {**MS_V1_DELEGATED, "exp": T}, expect(), ["scope.token_expired"]),
    ("not yet valid", {**MS_V1_DELEGATED, "nbf": T + 900}, expect(), ["scope.token_not_yet_valid"]),
    ("v2 correct", MS_V2_DELEGATED, expect(), []),
    ("v2 user differs", MS_V2_DELEGATED, expect(user="carol@contoso.com"), ["scope.user_mismatch"]),
    (
        "guest unique name",
        {**MS_V1_DELEGATED, "upn": None, "unique_name": "live.com#alice@outlook.com"},
        expect(user="alice@outlook.com"),
        [],
    ),
    (
        "audience list",
        {**MS_V1_DELEGATED, "aud": ["https://outlook.office.com", "api://other"]},
        expect(),
        [],
    ),
    (
        "audience trailing slash",
        {**MS_V1_DELEGATED, "aud": "https://outlook.office.com/"},
        expect(),
        [],
    ),
    (
        "exchange app id audience",
        {**MS_V1_DELEGATED, "aud": "00000002-0000-0ff1-ce00-000000000000"},
        expect(),
        [],
    ),
    ("id token", MS_ID_TOKEN, expect(), ["scope.wrong_audience", "scope.missing"]),
    (
        "graph and expired and other user",
        {**GRAPH_V1, "exp": T - 5},
        expect(user="bob@contoso.com", tenant=OTHER_TENANT),
        [
            "scope.wrong_audience",
            "scope.user_mismatch",
            "scope.wrong_tenant",
            "scope.token_expired",
        ],
    ),
]


@pytest.mark.parametrize(
    ("payload", "expectations", "codes"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_claim_codes(payload: dict[str, Any], expectations: Expectations, codes: list[str]) -> None:
    findings = evaluate_claims(claims_of(payload), expectations, NOW)
    assert [finding.code for finding in findings] == codes


def test_graph_audience_facts() -> None:
    [finding] = evaluate_claims(claims_of(GRAPH_URL), expect(), NOW)
    assert finding.facts["audience"] == "https://graph.microsoft.com"
    assert finding.facts["scopes"] == [
        "Mail.Send",
        "SMTP.Send",
        "User.Read",
        "profile",
        "openid",
        "email",
    ]
    assert finding.facts["jwt"] == GRAPH_URL
    assert finding.facts["signature_verified"] is False
    assert finding.facts["provider"] == "microsoft"


def test_graph_audience_text() -> None:
    [finding] = evaluate_claims(claims_of(GRAPH_V1), expect(), NOW)
    assert "Graph" in finding.cause
    assert "https://outlook.office.com/SMTP.Send" in finding.fix
    assert "https://outlook.office365.com/.default" in finding.fix
    assert finding.severity is Severity.CRITICAL


def test_id_token_named() -> None:
    finding = evaluate_claims(claims_of(MS_ID_TOKEN), expect(), NOW)[0]
    assert "ID token" in finding.cause


def test_missing_delegated_facts() -> None:
    payload = {**MS_V1_DELEGATED, "scp": "IMAP.AccessAsUser.All"}
    [finding] = evaluate_claims(claims_of(payload), expect(), NOW)
    assert finding.facts["required_scope"] == "SMTP.Send"
    assert finding.facts["scopes"] == ["IMAP.AccessAsUser.All"]
    assert "SMTP.Send of Office 365 Exchange Online" in finding.fix


def test_missing_app_only_facts() -> None:
    payload = {**MS_APP_ONLY, "roles": ["Mail.Send"]}
    [finding] = evaluate_claims(claims_of(payload), expect(grant=Grant.CLIENT_CREDENTIALS), NOW)
    assert finding.facts["required_scope"] == "SMTP.SendAsApp"
    assert finding.facts["scopes"] == ["Mail.Send"]
    assert "application permission SMTP.SendAsApp" in finding.fix


def test_app_only_has_no_user_check() -> None:
    findings = evaluate_claims(
        claims_of(MS_APP_ONLY), expect(grant=Grant.CLIENT_CREDENTIALS, user="x@contoso.com"), NOW
    )
    assert findings == []


def test_requested_scope_not_granted() -> None:
    requested = (
        "https://outlook.office.com/SMTP.Send",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "offline_access",
    )
    [finding] = evaluate_claims(claims_of(MS_V1_DELEGATED), expect(requested=requested), NOW)
    assert finding.code == "scope.missing"
    assert finding.facts["required_scope"] == "https://outlook.office.com/IMAP.AccessAsUser.All"
    assert finding.severity is Severity.WARNING


def test_required_scope_reported_once() -> None:
    payload = {**MS_V1_DELEGATED, "scp": "User.Read"}
    requested = ("https://outlook.office.com/SMTP.Send", "offline_access")
    findings = evaluate_claims(claims_of(payload), expect(requested=requested), NOW)
    assert [(finding.code, finding.severity) for finding in findings] == [
        ("scope.missing", Severity.CRITICAL)
    ]


def test_user_mismatch_facts() -> None:
    [finding] = evaluate_claims(claims_of(MS_V1_DELEGATED), expect(user="bob@contoso.com"), NOW)
    assert finding.facts["token_user"] == "alice@contoso.com"
    assert finding.facts["user"] == "bob@contoso.com"
    assert finding.facts["user_claim"] == "upn"
    assert "alice@contoso.com" in finding.title


def test_wrong_tenant_facts() -> None:
    [finding] = evaluate_claims(claims_of(MS_V1_DELEGATED), expect(tenant=OTHER_TENANT), NOW)
    assert finding.facts["token_tenant"] == TENANT
    assert finding.facts["tenant"] == OTHER_TENANT


def test_expired_facts() -> None:
    payload = {**MS_V1_DELEGATED, "exp": T - 90}
    [finding] = evaluate_claims(claims_of(payload), expect(), NOW)
    assert finding.facts["exp"] == "2026-03-01T11:58:30+00:00"
    assert finding.facts["exp_in_seconds"] == -90.0
    assert "90 s" in finding.cause


def test_not_yet_valid_facts() -> None:
    payload = {**MS_V1_DELEGATED, "nbf": T + 600}
    [finding] = evaluate_claims(claims_of(payload), expect(), NOW)
    assert finding.facts["nbf"] == "2026-03-01T12:10:00+00:00"
    assert finding.facts["nbf_in_seconds"] == 600.0


def test_no_time_skips_validity() -> None:
    payload = {**MS_V1_DELEGATED, "exp": T - 90, "nbf": T + 90}
    assert evaluate_claims(claims_of(payload), expect(), None) == []


def test_every_finding_says_unverified() -> None:
    payload = {**GRAPH_V1, "exp": T - 5, "nbf": T + 65}
    findings = evaluate_claims(claims_of(payload), expect(user="b@c.d", tenant=OTHER_TENANT), NOW)
    assert len(findings) == 5
    assert all(finding.facts["signature_verified"] is False for finding in findings)


MALFORMED = [
    ("audience numbers", {"aud": [1, 2.5, None], "scp": "SMTP.Send"}),
    ("audience object", {"aud": {"x": 1}}),
    ("exp text", {**MS_V1_DELEGATED, "exp": "soon"}),
    ("exp boolean", {**MS_V1_DELEGATED, "exp": True}),
    ("exp huge int", {**MS_V1_DELEGATED, "exp": 10**400}),
    ("exp huge float", {**MS_V1_DELEGATED, "exp": 1e308}),
    ("exp infinite", {**MS_V1_DELEGATED, "exp": float("inf")}),
    ("exp nan", {**MS_V1_DELEGATED, "exp": float("nan")}),
    ("nbf huge", {**MS_V1_DELEGATED, "nbf": 10**400}),
    ("scp number", {**MS_V1_DELEGATED, "scp": 42}),
    ("scp list", {**MS_V1_DELEGATED, "scp": ["SMTP.Send", 3]}),
    ("roles nested", {**MS_APP_ONLY, "roles": [["SMTP.SendAsApp"]]}),
    ("upn number", {**MS_V1_DELEGATED, "upn": 7, "unique_name": ["a"]}),
    ("tid list", {**MS_V1_DELEGATED, "tid": [TENANT]}),
    ("iss number", {**MS_V1_DELEGATED, "iss": 5}),
    ("huge scope", {**MS_V1_DELEGATED, "scp": "x " * 100_000}),
    ("empty", {}),
]


@pytest.mark.parametrize("payload", [case[1] for case in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_claims_never_raise(payload: dict[str, Any]) -> None:
    findings = evaluate_claims(claims_of(payload), expect(user="bob@contoso.com"), NOW)
    decoded = decode_findings(claims_of(payload), NOW)
    assert all(finding.code.startswith("scope.") for finding in [*findings, *decoded])


@pytest.mark.parametrize("claims", [{}, {"payload": [1, 2]}, {"payload": "text"}, {"header": {}}])
def test_claims_without_payload(claims: dict[str, Any]) -> None:
    assert decode_findings(claims, NOW) == []


def test_huge_past_exp_is_expired() -> None:
    payload = {**MS_V1_DELEGATED, "exp": -(10**400)}
    [finding] = evaluate_claims(claims_of(payload), expect(), NOW)
    assert finding.code == "scope.token_expired"
    assert finding.facts["exp"] is None
    assert finding.facts["exp_in_seconds"] is None


def test_huge_future_exp_is_valid() -> None:
    payload = {**MS_V1_DELEGATED, "exp": 10**400}
    assert evaluate_claims(claims_of(payload), expect(), NOW) == []


def test_evidence_cut() -> None:
    payload = {**GRAPH_V1, "scp": "SMTP.Send " + "Mail.Read " * 1000}
    [finding] = evaluate_claims(claims_of(payload), expect(), NOW)
    assert max(len(line) for line in finding.evidence) < 220


def test_token_absent_from_findings() -> None:
    token = make_jwt({**GRAPH_V1, "exp": T - 5})
    claims = jwt_claims(token)
    assert claims is not None
    findings = evaluate_claims(claims, expect(user="bob@contoso.com", tenant=OTHER_TENANT), NOW)
    text = json.dumps([finding.to_dict() for finding in findings])
    assert token not in text
    assert token.split(".")[2] not in text
    assert token.split(".")[1] not in text


PROFILE_CASES = [
    ("v1 issuer", MS_V1_DELEGATED, Provider.MICROSOFT),
    ("v2 issuer", MS_V2_DELEGATED, Provider.MICROSOFT),
    ("graph audience only", {"aud": GRAPH_APP_ID}, Provider.MICROSOFT),
    ("google issuer", {"iss": "https://accounts.google.com", "aud": "x"}, Provider.GOOGLE),
    ("other issuer", {"iss": "https://idp.example.com/", "aud": "smtp"}, Provider.GENERIC),
    ("no claims", {}, Provider.GENERIC),
    ("bad issuer url", {"iss": "https://[::1"}, Provider.GENERIC),
]


@pytest.mark.parametrize(
    ("payload", "provider"), [c[1:] for c in PROFILE_CASES], ids=[c[0] for c in PROFILE_CASES]
)
def test_infer_profile(payload: dict[str, Any], provider: Provider) -> None:
    assert infer_profile(claims_of(payload)).provider is provider


DECODE_CASES = [
    ("graph token", GRAPH_URL, ["scope.wrong_audience"]),
    ("exchange token", MS_V1_DELEGATED, []),
    ("app-only token", MS_APP_ONLY, []),
    ("app-only without role", {**MS_APP_ONLY, "roles": []}, ["scope.missing"]),
    ("generic token", {"iss": "https://idp.example.com/", "aud": "smtp", "exp": T + 60}, []),
    (
        "expired generic",
        {"iss": "https://idp.example.com/", "exp": T - 60},
        ["scope.token_expired"],
    ),
]


@pytest.mark.parametrize(
    ("payload", "codes"), [c[1:] for c in DECODE_CASES], ids=[c[0] for c in DECODE_CASES]
)
def test_decode_findings(payload: dict[str, Any], codes: list[str]) -> None:
    assert [finding.code for finding in decode_findings(claims_of(payload), NOW)] == codes


GOOGLE = Expectations(get_profile("google"), Grant.REFRESH_TOKEN, "a@gmail.com", None)
YANDEX = Expectations(get_profile("yandex"), Grant.REFRESH_TOKEN, "a@yandex.ru", None)
MS_DELEGATED = Expectations(MICROSOFT, Grant.REFRESH_TOKEN, "alice@contoso.com", None)
MS_APP = Expectations(MICROSOFT, Grant.CLIENT_CREDENTIALS, "alice@contoso.com", None)

SCOPE_CASES = [
    ("google full mail", ("https://mail.google.com/",), GOOGLE, []),
    (
        "google gmail.send",
        ("https://www.googleapis.com/auth/gmail.send",),
        GOOGLE,
        ["scope.missing"],
    ),
    ("google none", (), GOOGLE, ["scope.missing"]),
    ("yandex smtp", ("mail:smtp", "login:email"), YANDEX, []),
    ("yandex imap only", ("mail:imap_full",), YANDEX, ["scope.missing"]),
    ("exchange scope", ("https://outlook.office.com/SMTP.Send",), MS_DELEGATED, []),
    (
        "graph scope",
        ("https://graph.microsoft.com/SMTP.Send",),
        MS_DELEGATED,
        ["scope.wrong_audience"],
    ),
    ("app default", ("https://outlook.office365.com/.default",), MS_APP, []),
]


@pytest.mark.parametrize(
    ("granted", "expectations", "codes"),
    [c[1:] for c in SCOPE_CASES],
    ids=[c[0] for c in SCOPE_CASES],
)
def test_response_scopes(
    granted: tuple[str, ...], expectations: Expectations, codes: list[str]
) -> None:
    findings = evaluate_scopes(granted, expectations, source="the token response's scope")
    assert [finding.code for finding in findings] == codes


def test_gmail_send_explained() -> None:
    granted = ("https://www.googleapis.com/auth/gmail.send",)
    [finding] = evaluate_scopes(granted, GOOGLE, source="the token response's scope")
    assert finding.facts["required_scope"] == "https://mail.google.com/"
    assert finding.facts["scopes"] == ["https://www.googleapis.com/auth/gmail.send"]
    assert "Gmail API only" in finding.cause


def test_graph_scope_audience() -> None:
    granted = ("https://graph.microsoft.com/SMTP.Send",)
    [finding] = evaluate_scopes(granted, MS_DELEGATED, source="the token response's scope")
    assert finding.facts["audience"] == "https://graph.microsoft.com"


MATCH_CASES = [
    ("SMTP.Send", "SMTP.Send", True),
    ("smtp.send", "SMTP.Send", True),
    ("https://outlook.office.com/SMTP.Send", "SMTP.Send", True),
    ("SMTP.Send", "https://outlook.office.com/SMTP.Send", True),
    ("https://graph.microsoft.com/SMTP.Send", "https://outlook.office.com/SMTP.Send", False),
    ("https://mail.google.com/", "https://mail.google.com/", True),
    ("https://mail.google.com", "https://mail.google.com/", True),
    ("https://www.googleapis.com/auth/gmail.send", "https://mail.google.com/", False),
    ("mail:smtp", "mail:smtp", True),
    ("mail:imap_full", "mail:smtp", False),
    ("", "SMTP.Send", False),
]


@pytest.mark.parametrize(("granted", "wanted", "expected"), MATCH_CASES)
def test_scope_matches(granted: str, wanted: str, expected: bool) -> None:
    assert scope_matches(granted, wanted) is expected


NUMERIC_CASES = [
    (1700000000, 1700000000.0),
    (1700000000.5, 1700000000.5),
    ("1700000000", 1700000000.0),
    (" 42 ", 42.0),
    ("soon", None),
    (True, None),
    (None, None),
    ([1], None),
    (float("nan"), None),
    (10**400, float("inf")),
    (-(10**400), float("-inf")),
]


@pytest.mark.parametrize(("value", "expected"), NUMERIC_CASES)
def test_numeric_date(value: Any, expected: float | None) -> None:
    assert numeric_date(value) == expected


def test_iso_time_out_of_range() -> None:
    assert iso_time(1e300) is None
    assert iso_time(0) == "1970-01-01T00:00:00+00:00"


def test_nbf_within_leeway_is_no_finding() -> None:
    from smtpdiag.oauth.claims import NOT_BEFORE_LEEWAY_SECONDS, validity_findings

    now = datetime.fromtimestamp(T, UTC)
    assert validity_findings(None, T + NOT_BEFORE_LEEWAY_SECONDS, now, {}) == []
    late = validity_findings(None, T + NOT_BEFORE_LEEWAY_SECONDS + 1, now, {})
    assert [finding.code for finding in late] == ["scope.token_not_yet_valid"]
