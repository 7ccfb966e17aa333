"""decode: the transcripts and replies an on-call engineer pastes, and hostile input."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import jsonschema
import pytest

from smtpdiag.cli import main
from smtpdiag.decode.detect import decode_text
from smtpdiag.decode.result import InputKind
from smtpdiag.models import Status

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "smtpdiag.decode-1.schema.json").read_text())

# Public report of a Gmail client that answered the error challenge with QUIT; the user and
# token inside the XOAUTH2 response are placeholders.
GOOGLE_SCOPE_TRANSCRIPT = (
    "C: AUTH XOAUTH2 dXNlcj11c2VyQGV4YW1wbGUuY29tAWF1dGg9QmVhcmVyIGR1bW15LXRva2VuAQE=\n"
    "S: 334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwu"
    "Z29vZ2xlLmNvbS8ifQ==\n"
    "C: QUIT\n"
)

# Exchange Online's reply when SMTP AUTH is off for the tenant; server id and time redacted.
MICROSOFT_TENANT_DISABLED = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. "
    "[XX0PR00CA0000.namprd00.prod.outlook.com 2023-09-12T20:59:57.214Z 08DB0000000000]"
)

# The trailing spaces after "XOAUTH2" and "334" are as the client logged them.
NO_TOKEN_TRANSCRIPT = "C: AUTH XOAUTH2 \nS: 334 \nC: QUIT\nS: 501 5.5.2 Cannot Decode response\n"


def rfc7628_transcript() -> str:
    """Build the RFC 7628 §4.4 flow with a correct GS2 header."""
    response = base64.b64encode(
        b"n,a=user@example.com,\x01host=server.example.com\x01port=587\x01"
        b"auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
    ).decode()
    challenge = base64.b64encode(
        b'{"status":"invalid_token","schemes":"bearer mac","scope":"https://mail.example.com/"}'
    ).decode()
    return (
        f"C: AUTH OAUTHBEARER {response}\n"
        f"S: 334 {challenge}\n"
        "C: AQ==\n"
        "S: 535-5.7.1 Username and Password not accepted. Learn more at\n"
        "S: 535 5.7.1 http://support.example.com/mail/oauth\n"
    )


def codes(text: str) -> list[str]:
    return [finding.code for finding in decode_text(text).findings]


def test_google_scope_challenge_decoded() -> None:
    result = decode_text(GOOGLE_SCOPE_TRANSCRIPT)
    assert result.facts["challenge"] == {
        "status": "400",
        "schemes": "Bearer",
        "scope": "https://mail.google.com/",
    }


def test_google_scope_provider_named() -> None:
    assert decode_text(GOOGLE_SCOPE_TRANSCRIPT).facts["provider"] == "google"


def test_google_scope_findings() -> None:
    assert codes(GOOGLE_SCOPE_TRANSCRIPT) == [
        "auth.insufficient_scope",
        "auth.challenge_unanswered",
    ]


def test_google_scope_finding_names_scope() -> None:
    finding = decode_text(GOOGLE_SCOPE_TRANSCRIPT).findings[0]
    assert "https://mail.google.com/" in finding.title + finding.cause + finding.fix


def test_microsoft_tenant_disabled() -> None:
    result = decode_text(MICROSOFT_TENANT_DISABLED)
    assert (result.input_kind, codes(MICROSOFT_TENANT_DISABLED)) == (
        InputKind.SMTP_REPLY,
        ["auth.smtp_auth_disabled_tenant"],
    )


def test_microsoft_server_timestamp_fact() -> None:
    result = decode_text(MICROSOFT_TENANT_DISABLED)
    assert result.facts["server_timestamp"] == "2023-09-12T20:59:57.214Z"


def test_microsoft_provider_named() -> None:
    assert decode_text(MICROSOFT_TENANT_DISABLED).facts["provider"] == "microsoft"


def test_bare_334_means_missing_token() -> None:
    assert codes(NO_TOKEN_TRANSCRIPT) == ["auth.token_missing"]


def test_rfc7628_flow_token_rejected() -> None:
    assert codes(rfc7628_transcript()) == ["auth.token_rejected"]


def test_rfc7628_client_followed_protocol() -> None:
    assert "auth.challenge_unanswered" not in codes(rfc7628_transcript())


@pytest.mark.parametrize(
    "prefix_style",
    ["plain", "server-client", "arrows", "timestamps"],
)
def test_transcript_prefix_styles(prefix_style: str) -> None:
    lines = GOOGLE_SCOPE_TRANSCRIPT.splitlines()
    styled = {
        "plain": lines,
        "server-client": [
            line.replace("C: ", "CLIENT -> SERVER: ").replace("S: ", "SERVER -> CLIENT: ")
            for line in lines
        ],
        "arrows": [line.replace("C: ", ">>> ").replace("S: ", "<<< ") for line in lines],
        "timestamps": [f"2026-12-04 10:00:0{index} {line}" for index, line in enumerate(lines)],
    }[prefix_style]
    assert codes("\n".join(styled))[0] == "auth.insufficient_scope"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(os.urandom(4096).decode("latin-1"), id="random-bytes"),
        pytest.param(base64.b64encode(os.urandom(750_000)).decode(), id="one-megabyte-base64"),
        pytest.param("{" * 5000, id="unbalanced-braces"),
        pytest.param("hello world", id="prose"),
    ],
)
def test_garbage_is_unknown(text: str) -> None:
    assert decode_text(text).input_kind is InputKind.UNKNOWN


def test_unknown_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "hello world"]) == 3


@pytest.mark.parametrize(
    ("text", "status"),
    [
        pytest.param(GOOGLE_SCOPE_TRANSCRIPT, Status.CRITICAL, id="google-scope"),
        pytest.param("235 2.7.0 Accepted", Status.OK, id="accepted"),
    ],
)
def test_exit_code_follows_worst_finding(
    capsys: pytest.CaptureFixture[str], text: str, status: Status
) -> None:
    assert main(["decode", text]) == status.exit_code


@pytest.mark.parametrize(
    "text",
    [GOOGLE_SCOPE_TRANSCRIPT, MICROSOFT_TENANT_DISABLED, NO_TOKEN_TRANSCRIPT, rfc7628_transcript()],
    ids=["google-scope", "microsoft-tenant", "no-token", "rfc7628"],
)
def test_json_output_matches_schema(capsys: pytest.CaptureFixture[str], text: str) -> None:
    main(["decode", text, "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    jsonschema.validate(document, SCHEMA)
    assert document["schema"] == "smtpdiag.decode/1"


def test_stdin_input(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(MICROSOFT_TENANT_DISABLED))
    main(["decode", "-", "-f", "json"])
    document = json.loads(capsys.readouterr().out)
    assert document["findings"][0]["code"] == "auth.smtp_auth_disabled_tenant"


def test_table_output_names_fix(capsys: pytest.CaptureFixture[str]) -> None:
    main(["decode", MICROSOFT_TENANT_DISABLED])
    out = capsys.readouterr().out
    assert "fix:" in out


CANARY = "ya29.decode-canary-Token_0123456789"


@pytest.mark.parametrize("output_format", ["table", "json"])
def test_canary_token_never_printed(capsys: pytest.CaptureFixture[str], output_format: str) -> None:
    raw = f"user=a@example.com\x01auth=Bearer {CANARY}\x01\x01".encode()
    response = base64.b64encode(raw).decode()
    transcript = f"C: AUTH XOAUTH2 {response}\nS: 535 5.7.8 Username and Password not accepted\n"
    main(["decode", transcript, "-f", output_format])
    out = capsys.readouterr().out
    assert CANARY not in out
    assert response[12:40] not in out


def make_jwt(payload: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


def test_jwt_claims_decoded() -> None:
    token = make_jwt({"aud": "https://outlook.office.com", "scp": "SMTP.Send"})
    result = decode_text(token)
    assert (result.input_kind, result.facts["jwt"]["payload"]["scp"]) == (
        InputKind.JWT,
        "SMTP.Send",
    )


def test_jwt_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    token = make_jwt({"aud": "https://outlook.office.com", "upn": "a@example.com"})
    main(["decode", token, "-f", "json"])
    assert token not in capsys.readouterr().out


# Microsoft's body for a refresh token unused for 90 days; trace and correlation ids redacted.
AADSTS_BODY = json.dumps(
    {
        "error": "invalid_grant",
        "error_description": "AADSTS700082: The refresh token has expired due to inactivity. "
        "The token was issued on 2026-08-01T10:00:00Z and was inactive for 90.00:00:00.",
        "error_codes": [700082],
    }
)


def test_token_response_facts() -> None:
    result = decode_text(AADSTS_BODY)
    assert (result.facts["oauth_error"], result.facts["provider_error_code"]) == (
        "invalid_grant",
        "AADSTS700082",
    )


def test_token_response_hides_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    body = json.dumps(
        {"access_token": "ya29.body-canary-0123456789", "refresh_token": "1//refresh-canary-0123"}
    )
    main(["decode", body, "-f", "json"])
    out = capsys.readouterr().out
    assert "ya29.body-canary-0123456789" not in out
    assert "1//refresh-canary-0123" not in out


REAL_CLIENT_TRANSCRIPTS = {
    # swaks pads its markers with two spaces and stars error replies.
    "swaks": (
        "<-  220 smtp.example.com ESMTP\n"
        " -> AUTH XOAUTH2 dXNlcj11c2VyQGV4YW1wbGUuY29tAWF1dGg9QmVhcmVyIGR1bW15LXRva2VuAQE=\n"
        "<~* 535 5.7.8 Username and Password not accepted\n"
    ),
    # msmtp --debug output.
    "msmtp": (
        "<-- 220 smtp.example.com ESMTP\n"
        "--> AUTH XOAUTH2 dXNlcj11c2VyQGV4YW1wbGUuY29tAWF1dGg9QmVhcmVyIGR1bW15LXRva2VuAQE=\n"
        "<-- 535 5.7.8 Username and Password not accepted\n"
    ),
    # Python smtplib with set_debuglevel(1), including its parsed summary lines.
    "smtplib": (
        "send: 'AUTH XOAUTH2 "
        "dXNlcj11c2VyQGV4YW1wbGUuY29tAWF1dGg9QmVhcmVyIGR1bW15LXRva2VuAQE=\\r\\n'\n"
        "reply: b'535 5.7.8 Username and Password not accepted\\r\\n'\n"
        "reply: retcode (535); Msg: b'5.7.8 Username and Password not accepted'\n"
    ),
}


@pytest.mark.parametrize("client", sorted(REAL_CLIENT_TRANSCRIPTS))
def test_real_client_transcript(client: str) -> None:
    assert codes(REAL_CLIENT_TRANSCRIPTS[client]) == ["auth.credentials_rejected"]


def test_latin1_stdin_decodes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    raw = b"535 5.7.139 Authentifizierung fehlgeschlagen \xe4\xf6\xfc\n"
    stdin = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    main(["decode", "-", "-f", "json"])
    document = json.loads(capsys.readouterr().out)
    assert document["findings"][0]["code"] == "auth.microsoft_auth_failed"


def test_deeply_nested_json_is_unknown() -> None:
    text = '{"error":' * 3000 + '"x"' + "}" * 3000
    assert decode_text(text).input_kind in {InputKind.UNKNOWN, InputKind.TOKEN_RESPONSE}


def test_long_reply_line_is_fast() -> None:
    result = decode_text("535 5.7.3 " + "[a" * 20000)
    assert result.input_kind is InputKind.SMTP_REPLY


def test_idp_error_body_exits_critical(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", AADSTS_BODY]) == 2
    assert "token.refresh_token_expired" in capsys.readouterr().out


def test_google_documented_challenge_not_damaged() -> None:
    # Google's documented challenge; its JSON ends with a newline.
    google_doc = (
        "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWls"
        "Lmdvb2dsZS5jb20vIn0K"
    )
    assert codes(google_doc) == ["auth.token_rejected"]


def test_response_problem_is_root_cause() -> None:
    raw_token = base64.b64encode(b"ya29.a0AfB_raw-token-pasted-as-password-0123456789").decode()
    challenge = base64.b64encode(
        b'{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}'
    ).decode()
    transcript = (
        f"C: AUTH XOAUTH2 {raw_token}\nS: 334 {challenge}\nC: \n"
        "S: 535 5.7.8 Username and Password not accepted\n"
    )
    assert codes(transcript) == ["auth.response_raw_token"]


def test_odd_literal_text_prints_no_compiler_warning() -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = decode_text("{'a': 1and 2}")
    assert result.input_kind is InputKind.UNKNOWN
    assert [str(item.message) for item in caught] == []
