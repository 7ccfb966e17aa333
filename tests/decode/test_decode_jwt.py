"""decode: claim judgement of pasted JWTs and of JWTs inside XOAUTH2 and OAUTHBEARER responses."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from smtpdiag.cli import main
from smtpdiag.decode.detect import decode_text
from smtpdiag.decode.result import InputKind
from smtpdiag.models import Severity, Status

TENANT = "3f2b8c4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f"
FAR_FUTURE = 4102444800  # 2100-01-01
PAST = 1700000000  # 2023-11-14
# Exchange Online's server id carries the reply time; ids are made up, the shape is real.
SERVER_ID = "[SN4PR0501CA0054.namprd05.prod.outlook.com 2026-03-01T12:00:00.000Z 08DC3A1B2C3D4E5F]"

EXCHANGE: dict[str, Any] = {
    "aud": "https://outlook.office.com",
    "iss": f"https://sts.windows.net/{TENANT}/",
    "exp": FAR_FUTURE,
    "appid": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
    "scp": "SMTP.Send",
    "tid": TENANT,
    "unique_name": "alice@contoso.com",
    "upn": "alice@contoso.com",
    "ver": "1.0",
}
GRAPH: dict[str, Any] = {
    **EXCHANGE,
    "aud": "https://graph.microsoft.com",
    "scp": "Mail.Send SMTP.Send User.Read",
}


def make_jwt(payload: dict[str, Any]) -> str:
    """Build a JWT with base64url JSON parts and a dummy signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.ZHVtbXktc2lnbmF0dXJl"


def xoauth2(user: str, token: str) -> str:
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()


def oauthbearer(user: str, token: str) -> str:
    raw = f"n,a={user},\x01host=smtp.example.com\x01port=587\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(raw.encode()).decode()


def codes(text: str) -> list[str]:
    return [finding.code for finding in decode_text(text).findings]


PASTED_CASES = [
    ("exchange token", EXCHANGE, []),
    ("graph token", GRAPH, ["scope.wrong_audience"]),
    ("expired token", {**EXCHANGE, "exp": PAST}, ["scope.token_expired"]),
    (
        "app-only without role",
        {**EXCHANGE, "scp": None, "roles": [], "idtyp": "app"},
        ["scope.missing"],
    ),
    ("generic token", {"iss": "https://idp.example.com/", "exp": FAR_FUTURE}, []),
]


@pytest.mark.parametrize(
    ("payload", "expected"), [c[1:] for c in PASTED_CASES], ids=[c[0] for c in PASTED_CASES]
)
def test_pasted_jwt(payload: dict[str, Any], expected: list[str]) -> None:
    result = decode_text(make_jwt(payload))
    assert (result.input_kind, codes(make_jwt(payload))) == (InputKind.JWT, expected)


def test_pasted_jwt_facts() -> None:
    result = decode_text(make_jwt(GRAPH))
    assert result.facts["signature_verified"] is False
    assert result.facts["jwt"]["payload"]["aud"] == "https://graph.microsoft.com"
    assert result.findings[0].facts["signature_verified"] is False
    assert result.status is Status.CRITICAL


def test_correct_jwt_is_ok() -> None:
    assert decode_text(make_jwt(EXCHANGE)).status is Status.OK


def test_jwe_not_judged() -> None:
    jwe = ".".join(["eyJhbGciOiJSU0EtT0FFUCJ9", "a2V5", "aXY", "Y2lwaGVydGV4dA", "dGFn"])
    result = decode_text(jwe)
    assert result.input_kind is not InputKind.JWT
    assert result.findings == ()


def test_three_parts_not_json() -> None:
    result = decode_text("abcd.efgh.ijkl")
    assert result.input_kind is InputKind.UNKNOWN


def test_graph_token_root_cause() -> None:
    token = make_jwt(GRAPH)
    transcript = (
        f"C: AUTH XOAUTH2 {xoauth2('alice@contoso.com', token)}\n"
        "S: 535 5.7.3 Authentication unsuccessful\n"
    )
    result = decode_text(transcript)
    assert [finding.code for finding in result.findings] == [
        "scope.wrong_audience",
        "auth.exchange_refused",
    ]


def test_graph_token_after_334() -> None:
    token = make_jwt(GRAPH)
    transcript = (
        "C: AUTH XOAUTH2\n"
        "S: 334 \n"
        f"C: {xoauth2('alice@contoso.com', token)}\n"
        f"S: 535 5.7.3 Authentication unsuccessful {SERVER_ID}\n"
    )
    assert codes(transcript) == ["scope.wrong_audience", "auth.exchange_refused"]


def test_oauthbearer_user_mismatch() -> None:
    token = make_jwt(EXCHANGE)
    transcript = (
        f"C: AUTH OAUTHBEARER {oauthbearer('shared@contoso.com', token)}\n"
        f"S: 535 5.7.3 Authentication unsuccessful {SERVER_ID}\n"
    )
    result = decode_text(transcript)
    assert [finding.code for finding in result.findings] == [
        "scope.user_mismatch",
        "auth.exchange_refused",
    ]
    assert result.findings[0].facts["user"] == "shared@contoso.com"


def test_expiry_judged_at_server_time() -> None:
    # The token expired a minute before the reply time in SERVER_ID (1772366400).
    token = make_jwt({**EXCHANGE, "exp": 1772366400 - 60})
    transcript = (
        f"C: AUTH XOAUTH2 {xoauth2('alice@contoso.com', token)}\n"
        f"S: 535 5.7.3 Authentication unsuccessful {SERVER_ID}\n"
    )
    result = decode_text(transcript)
    assert [finding.code for finding in result.findings] == [
        "scope.token_expired",
        "auth.exchange_refused",
    ]
    assert result.findings[0].facts["exp_in_seconds"] == -60.0
    assert "server's time" in result.findings[0].cause


def test_expiry_not_judged_without_server_time() -> None:
    token = make_jwt({**EXCHANGE, "exp": PAST})
    transcript = (
        f"C: AUTH XOAUTH2 {xoauth2('alice@contoso.com', token)}\n"
        "S: 535 5.7.8 Username and Password not accepted\n"
    )
    assert codes(transcript) == ["auth.credentials_rejected"]


def test_accepted_token_claims_are_info() -> None:
    token = make_jwt(GRAPH)
    transcript = (
        f"C: AUTH XOAUTH2 {xoauth2('alice@contoso.com', token)}\n"
        "S: 235 2.7.0 Authentication successful\n"
    )
    result = decode_text(transcript)
    assert [(f.code, f.severity) for f in result.findings] == [
        ("scope.wrong_audience", Severity.INFO),
        ("auth.accepted", Severity.INFO),
    ]


def test_opaque_token_not_judged() -> None:
    transcript = (
        f"C: AUTH XOAUTH2 {xoauth2('alice@gmail.com', 'ya29.a0AfB_opaque-token-value-1234567')}\n"
        "S: 535 5.7.8 Username and Password not accepted\n"
    )
    result = decode_text(transcript)
    assert codes(transcript) == ["auth.credentials_rejected"]
    assert "signature_verified" not in result.facts


@pytest.mark.parametrize("output_format", ["json", "table"])
def test_token_never_printed(output_format: str, capsys: pytest.CaptureFixture[str]) -> None:
    token = make_jwt(GRAPH)
    response = xoauth2("alice@contoso.com", token)
    transcript = f"C: AUTH XOAUTH2 {response}\nS: 535 5.7.3 Authentication unsuccessful\n"
    main(["decode", transcript, "-f", output_format])
    out = capsys.readouterr().out
    assert "scope.wrong_audience" in out
    assert token not in out
    assert token.split(".")[1] not in out
    assert token.split(".")[2] not in out
    assert response[12:40] not in out


def test_pasted_token_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    token = make_jwt({**GRAPH, "exp": PAST})
    main(["decode", token, "-f", "json"])
    out = capsys.readouterr().out
    assert "scope.token_expired" in out
    assert token not in out
    assert token.split(".")[2] not in out
