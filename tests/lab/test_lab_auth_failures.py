"""AUTH failure scenarios of the lab, driven over STARTTLS by a raw-socket client."""

from __future__ import annotations

import base64
import json
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import pytest
from lab_line_client import (
    LineClient,
    Reply,
    oauthbearer_response,
    starttls_client,
    xoauth2_response,
)

from smtpdiag.lab.options import GOOGLE_MAIL_SCOPE
from smtpdiag.lab.runner import LAB_USER, LabInfo, start_lab
from smtpdiag.lab.scenarios import (
    GMAIL_BAD_CREDENTIALS,
    GMAIL_MECHANISMS,
    LONG_TOKEN_LENGTH,
    SCENARIOS,
)

pytestmark = pytest.mark.lab

STARTED = (
    "healthy",
    "google-bad-token",
    "google-wrong-scope",
    "microsoft-5.7.3",
    "microsoft-auth-disabled",
    "rfc7628-invalid-token",
    "token-expires-soon",
    "line-too-long",
    "temporary-454",
)

# Seconds a client waits to see that the server sends nothing more; replies on loopback
# arrive within milliseconds.
SILENCE_SECONDS = 0.3

EXCHANGE_SERVER = (
    "[XX0PR00CA0000.namprd00.prod.outlook.com 2026-12-04T10:00:00.000Z 08DD0000000000]"
)


@pytest.fixture(scope="module")
def labs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LabInfo]]:
    parent = tmp_path_factory.mktemp("auth-labs")
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(start_lab(SCENARIOS[name], workdir=parent))
            for name in STARTED
        }


def connect(lab: LabInfo) -> AbstractContextManager[LineClient]:
    """Return a client on the lab's STARTTLS server, after STARTTLS and the second EHLO."""
    host, port = lab.smtp_starttls.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(lab.ca_file))
    return starttls_client(host, int(port), context)


def lab_token(lab: LabInfo) -> str:
    return Path(lab.access_token_file).read_text(encoding="utf-8").rstrip("\n")


def initial_response(mechanism: str, token: str) -> str:
    if mechanism == "XOAUTH2":
        return xoauth2_response(LAB_USER, token)
    return oauthbearer_response(LAB_USER, token)


def line_of(reply: Reply) -> str:
    """Return the last line of ``reply`` as sent: code, space and text."""
    return f"{reply.code} {reply.text}"


# --- EHLO -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        pytest.param("google-bad-token", list(GMAIL_MECHANISMS), id="google-bad-token"),
        pytest.param("google-wrong-scope", list(GMAIL_MECHANISMS), id="google-wrong-scope"),
        pytest.param("microsoft-5.7.3", ["LOGIN", "XOAUTH2"], id="microsoft-5.7.3"),
        pytest.param("microsoft-auth-disabled", ["LOGIN", "XOAUTH2"], id="microsoft-disabled"),
        pytest.param("rfc7628-invalid-token", ["OAUTHBEARER"], id="rfc7628"),
        pytest.param("token-expires-soon", ["LOGIN", "XOAUTH2"], id="token-expires-soon"),
        pytest.param("line-too-long", ["PLAIN", "XOAUTH2", "OAUTHBEARER"], id="line-too-long"),
        pytest.param("temporary-454", ["PLAIN", "XOAUTH2", "OAUTHBEARER"], id="temporary-454"),
    ],
)
def test_ehlo_after_starttls_mechanisms(
    labs: dict[str, LabInfo], scenario: str, expected: list[str]
) -> None:
    with connect(labs[scenario]) as client:
        assert client.auth_mechanisms() == expected


def test_gmail_mechanisms_order() -> None:
    assert GMAIL_MECHANISMS == (
        "LOGIN",
        "PLAIN",
        "XOAUTH2",
        "PLAIN-CLIENTTOKEN",
        "OAUTHBEARER",
        "XOAUTH",
    )


def test_exchange_plain_ehlo_hides_auth(labs: dict[str, LabInfo]) -> None:
    host, port = labs["microsoft-5.7.3"].smtp_starttls.rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("auth")


@pytest.mark.parametrize("mechanism", ["XOAUTH", "PLAIN-CLIENTTOKEN"])
def test_advertised_only_mechanism_504(labs: dict[str, LabInfo], mechanism: str) -> None:
    with connect(labs["google-bad-token"]) as client:
        assert client.command(f"AUTH {mechanism}").code == 504


# --- Error challenge, then the final reply ----------------------------------------------------

GOOGLE_401 = {"status": "401", "schemes": "bearer", "scope": GOOGLE_MAIL_SCOPE}
GOOGLE_400 = {"status": "400", "schemes": "Bearer", "scope": GOOGLE_MAIL_SCOPE}
RFC7628_INVALID = {"status": "invalid_token", "scope": "https://mail.example.com/"}

CHALLENGE_CASES = [
    pytest.param(
        "google-bad-token", "XOAUTH2", GOOGLE_401, GMAIL_BAD_CREDENTIALS, id="google-401-xoauth2"
    ),
    pytest.param(
        "google-bad-token",
        "OAUTHBEARER",
        GOOGLE_401,
        GMAIL_BAD_CREDENTIALS,
        id="google-401-oauthbearer",
    ),
    pytest.param(
        "google-wrong-scope", "XOAUTH2", GOOGLE_400, GMAIL_BAD_CREDENTIALS, id="google-400"
    ),
    pytest.param(
        "rfc7628-invalid-token",
        "OAUTHBEARER",
        RFC7628_INVALID,
        "535 5.7.1 Authentication failed",
        id="rfc7628",
    ),
]


def start_auth(client: LineClient, lab: LabInfo, mechanism: str) -> Reply:
    """Send AUTH with the lab token as initial response; return the first reply."""
    return client.command(f"AUTH {mechanism} {initial_response(mechanism, lab_token(lab))}")


@pytest.mark.parametrize(("scenario", "mechanism", "challenge", "final"), CHALLENGE_CASES)
def test_rejection_starts_with_334(
    labs: dict[str, LabInfo], scenario: str, mechanism: str, challenge: object, final: str
) -> None:
    with connect(labs[scenario]) as client:
        assert start_auth(client, labs[scenario], mechanism).code == 334


@pytest.mark.parametrize(("scenario", "mechanism", "challenge", "final"), CHALLENGE_CASES)
def test_challenge_json(
    labs: dict[str, LabInfo], scenario: str, mechanism: str, challenge: object, final: str
) -> None:
    with connect(labs[scenario]) as client:
        reply = start_auth(client, labs[scenario], mechanism)
        assert json.loads(base64.b64decode(reply.text, validate=True)) == challenge


@pytest.mark.parametrize(("scenario", "mechanism", "challenge", "final"), CHALLENGE_CASES)
def test_final_reply_waits_for_client(
    labs: dict[str, LabInfo], scenario: str, mechanism: str, challenge: object, final: str
) -> None:
    with connect(labs[scenario]) as client:
        start_auth(client, labs[scenario], mechanism)
        assert client.is_silent(SILENCE_SECONDS)


@pytest.mark.parametrize(
    "dummy", [pytest.param("", id="empty-line"), pytest.param("AQ==", id="kvsep")]
)
@pytest.mark.parametrize(("scenario", "mechanism", "challenge", "final"), CHALLENGE_CASES)
def test_final_reply_after_dummy(
    labs: dict[str, LabInfo],
    scenario: str,
    mechanism: str,
    challenge: object,
    final: str,
    dummy: str,
) -> None:
    with connect(labs[scenario]) as client:
        start_auth(client, labs[scenario], mechanism)
        assert line_of(client.command(dummy)) == final


@pytest.mark.parametrize(
    ("scenario", "enhanced_code"),
    [
        pytest.param("google-bad-token", "5.7.8", id="google-bad-token"),
        pytest.param("rfc7628-invalid-token", "5.7.1", id="rfc7628"),
    ],
)
def test_final_enhanced_code(labs: dict[str, LabInfo], scenario: str, enhanced_code: str) -> None:
    mechanism = "OAUTHBEARER"
    with connect(labs[scenario]) as client:
        start_auth(client, labs[scenario], mechanism)
        assert client.command("AQ==").enhanced_code == enhanced_code


# --- Final reply without a challenge ----------------------------------------------------------

DIRECT_CASES = [
    pytest.param(
        "microsoft-5.7.3",
        f"535 5.7.3 Authentication unsuccessful {EXCHANGE_SERVER}",
        id="microsoft-5.7.3",
    ),
    pytest.param(
        "microsoft-auth-disabled",
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
        "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. " + EXCHANGE_SERVER,
        id="microsoft-auth-disabled",
    ),
    pytest.param(
        "token-expires-soon",
        "501 5.5.127 Invalid XOAUTH2 auth data - Token will expire soon",
        id="token-expires-soon",
    ),
    pytest.param("temporary-454", "454 4.7.0 Temporary authentication failure", id="temporary-454"),
]


@pytest.mark.parametrize(("scenario", "final"), DIRECT_CASES)
def test_direct_reply_to_initial_response(
    labs: dict[str, LabInfo], scenario: str, final: str
) -> None:
    with connect(labs[scenario]) as client:
        reply = start_auth(client, labs[scenario], "XOAUTH2")
        assert line_of(reply) == final


@pytest.mark.parametrize(("scenario", "final"), DIRECT_CASES)
def test_direct_reply_two_step(labs: dict[str, LabInfo], scenario: str, final: str) -> None:
    with connect(labs[scenario]) as client:
        client.command("AUTH XOAUTH2")
        reply = client.command(xoauth2_response(LAB_USER, lab_token(labs[scenario])))
        assert line_of(reply) == final


@pytest.mark.parametrize(("scenario", "final"), DIRECT_CASES)
def test_direct_reply_ends_exchange(labs: dict[str, LabInfo], scenario: str, final: str) -> None:
    with connect(labs[scenario]) as client:
        start_auth(client, labs[scenario], "XOAUTH2")
        assert client.is_silent(SILENCE_SECONDS)


def test_reject_all_tokens_covers_plain(labs: dict[str, LabInfo]) -> None:
    lab = labs["temporary-454"]
    credentials = base64.b64encode(f"\0{LAB_USER}\0{lab_token(lab)}".encode()).decode()
    with connect(lab) as client:
        assert client.command(f"AUTH PLAIN {credentials}").code == 535


# --- Over-long AUTH line, then the two-step form ----------------------------------------------


def test_long_token_length(labs: dict[str, LabInfo]) -> None:
    assert len(lab_token(labs["line-too-long"])) == LONG_TOKEN_LENGTH


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_long_initial_response_rejected(labs: dict[str, LabInfo], mechanism: str) -> None:
    with connect(labs["line-too-long"]) as client:
        reply = start_auth(client, labs["line-too-long"], mechanism)
        assert line_of(reply) == "500 5.5.2 Line too long"


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_two_step_after_long_line_accepted(labs: dict[str, LabInfo], mechanism: str) -> None:
    lab = labs["line-too-long"]
    with connect(lab) as client:
        start_auth(client, lab, mechanism)
        client.command(f"AUTH {mechanism}")
        reply = client.command(initial_response(mechanism, lab_token(lab)))
        assert line_of(reply) == "235 2.7.0 Accepted"


def test_two_step_prompt_is_empty_334(labs: dict[str, LabInfo]) -> None:
    with connect(labs["line-too-long"]) as client:
        assert line_of(client.command("AUTH XOAUTH2")) == "334 "


def test_healthy_accepts_lab_token(labs: dict[str, LabInfo]) -> None:
    lab = labs["healthy"]
    with connect(lab) as client:
        assert line_of(start_auth(client, lab, "XOAUTH2")) == "235 2.7.0 Accepted"
