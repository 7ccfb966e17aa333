"""Token scenarios of the lab: table, written configuration, SMTP validation, and diagnosis."""

from __future__ import annotations

import base64
import http.client
import json
import smtplib
import ssl
import stat
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from smtpdiag.lab.lab_account import IssuedToken, LabAccount, exchange_accepts, token_accepted
from smtpdiag.lab.options import ServerOptions
from smtpdiag.lab.runner import LAB_USER, LabInfo, start_lab
from smtpdiag.lab.scenarios import (
    ENDPOINT_FAULT_SCENARIOS,
    EXCHANGE_TOKEN_SERVER,
    SCENARIOS,
    Scenario,
    get_scenario,
)
from smtpdiag.lab.token_server import LAB_TENANT_ID
from smtpdiag.oauth.profiles import EXCHANGE_AUDIENCES
from smtpdiag.secrets import Secret

EXPECTED_CODES = {
    "token-healthy": (),
    "aadsts700082": ("token.refresh_token_expired",),
    "google-invalid-grant": ("token.grant_revoked",),
    "invalid-client": ("token.invalid_client",),
    "invalid-scope": ("token.invalid_scope",),
    "graph-audience": ("scope.wrong_audience", "auth.exchange_refused"),
    "user-mismatch": ("scope.user_mismatch",),
    "html-error-page": ("token.malformed_response",),
    "slow-endpoint": ("token.endpoint_unreachable",),
    "rotating-refresh-token": ("token.refresh_token_rotated",),
}
TOKEN_SCENARIOS = list(EXPECTED_CODES)

# The clock scenarios follow the token scenarios and use the token endpoint as well.
CLOCK_SCENARIOS = ["clock-skew-90s", "clock-skew-minus-90s", "clock-skew-3s", "ntp-unreachable"]

EXCHANGE_5_7_3 = (
    "5.7.3 Authentication unsuccessful "
    "[XX0PR00CA0000.namprd00.prod.outlook.com 2026-12-04T10:00:00.000Z 08DD0000000000]"
)

TOKEN_KEYS = {
    "host",
    "port",
    "tls_mode",
    "ca_file",
    "user",
    "provider",
    "token_endpoint",
    "client_id",
    "client_secret_file",
    "refresh_token_file",
    "token_ca_file",
    "scope",
}


# --- scenario table ---


def test_token_scenarios_follow_the_others() -> None:
    names = list(SCENARIOS)
    assert names[-len(TOKEN_SCENARIOS) - len(CLOCK_SCENARIOS) : -len(CLOCK_SCENARIOS)] == (
        TOKEN_SCENARIOS
    )


@pytest.mark.parametrize("name", TOKEN_SCENARIOS)
def test_token_scenario_expected_codes(name: str) -> None:
    assert SCENARIOS[name].expected_codes == EXPECTED_CODES[name]


@pytest.mark.parametrize("name", TOKEN_SCENARIOS)
def test_token_scenario_has_endpoint_options(name: str) -> None:
    assert SCENARIOS[name].token_endpoint is not None


def test_only_token_scenarios_have_endpoint_options() -> None:
    names = [name for name, scenario in SCENARIOS.items() if scenario.token_endpoint]
    faults = [scenario.name for scenario in ENDPOINT_FAULT_SCENARIOS]
    assert names == faults + TOKEN_SCENARIOS + CLOCK_SCENARIOS


def test_requested_scope_needs_endpoint_options() -> None:
    with pytest.raises(ValueError, match="requested_scope"):
        Scenario(name="x", description="x", requested_scope="x")


# --- written configuration ---


@pytest.fixture(scope="module")
def lab_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("token-labs")


@pytest.fixture(scope="module", params=TOKEN_SCENARIOS)
def token_lab(request: pytest.FixtureRequest, lab_parent: Path) -> Iterator[LabInfo]:
    with start_lab(get_scenario(request.param), workdir=lab_parent) as info:
        yield info


def read_config(info: LabInfo) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the ``[defaults]`` and ``[targets.lab]`` tables of the written configuration."""
    document = tomllib.loads(info.config_file.read_text(encoding="utf-8"))
    return document["defaults"], document["targets"]["lab"]


def expected_token_keys(name: str) -> set[str]:
    microsoft = name != "google-invalid-grant"
    return TOKEN_KEYS | {"tenant"} if microsoft else TOKEN_KEYS


def test_config_token_keys(token_lab: LabInfo) -> None:
    _, target = read_config(token_lab)
    assert set(target) == expected_token_keys(token_lab.scenario)


def test_config_token_endpoint(token_lab: LabInfo) -> None:
    _, target = read_config(token_lab)
    assert target["token_endpoint"] == token_lab.token_endpoint
    assert urlsplit(target["token_endpoint"]).path == "/token"


def test_config_token_ca_is_lab_ca(token_lab: LabInfo) -> None:
    _, target = read_config(token_lab)
    assert target["token_ca_file"] == str(token_lab.ca_file)


def test_config_client(token_lab: LabInfo) -> None:
    _, target = read_config(token_lab)
    assert target["client_id"] == token_lab.client_id
    assert target["client_secret_file"] == str(token_lab.client_secret_file)
    assert target["refresh_token_file"] == str(token_lab.refresh_token_file)


@pytest.mark.parametrize(
    ("name", "provider", "tenant", "scope"),
    [
        pytest.param(
            "token-healthy",
            "microsoft",
            LAB_TENANT_ID,
            "https://outlook.office.com/SMTP.Send offline_access",
            id="microsoft",
        ),
        pytest.param(
            "google-invalid-grant", "google", None, "https://mail.google.com/", id="google"
        ),
        pytest.param(
            "invalid-scope",
            "microsoft",
            LAB_TENANT_ID,
            "https://outlook.office.com/SMTP.Sned offline_access",
            id="misspelled-scope",
        ),
        pytest.param(
            "graph-audience",
            "microsoft",
            LAB_TENANT_ID,
            "Mail.Send SMTP.Send User.Read offline_access",
            id="graph-scope",
        ),
    ],
)
def test_config_provider_values(
    lab_parent: Path, name: str, provider: str, tenant: str | None, scope: str
) -> None:
    with start_lab(get_scenario(name), workdir=lab_parent) as info:
        _, target = read_config(info)
    assert (target["provider"], target.get("tenant"), target["scope"]) == (provider, tenant, scope)


def test_config_timeout(token_lab: LabInfo) -> None:
    defaults, _ = read_config(token_lab)
    assert defaults["timeout"] == (1 if token_lab.scenario == "slow-endpoint" else 5)


def test_config_host_is_lab(token_lab: LabInfo) -> None:
    _, target = read_config(token_lab)
    assert (target["host"], target["port"]) == (
        "127.0.0.1",
        int(token_lab.smtp_starttls.rsplit(":", 1)[1]),
    )


def test_plain_scenario_keeps_access_token_file(lab_parent: Path) -> None:
    with start_lab(get_scenario("healthy"), workdir=lab_parent) as info:
        _, target = read_config(info)
    assert target["access_token_file"] == str(info.access_token_file)
    assert "token_endpoint" not in target


@pytest.mark.parametrize("attribute", ["client_secret_file", "refresh_token_file"])
def test_secret_file_is_private(token_lab: LabInfo, attribute: str) -> None:
    path: Path = getattr(token_lab, attribute)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_json_line_omits_secrets(token_lab: LabInfo) -> None:
    line = token_lab.to_json_line()
    assert token_lab.client_secret_file.read_text().strip() not in line
    assert token_lab.refresh_token_file.read_text().strip() not in line


def test_json_line_names_endpoints(token_lab: LabInfo) -> None:
    document = json.loads(token_lab.to_json_line())
    base = token_lab.token_endpoint.removesuffix("/token")
    assert document["tokeninfo_endpoint"] == base + "/tokeninfo"
    assert document["introspection_endpoint"] == base + "/introspect"


# --- the lab SMTP server and the tokens the endpoint issued ---


def fetch_token(info: LabInfo) -> dict[str, Any]:
    """Run the refresh-token grant with the lab's files, as a client configured by it does."""
    endpoint = urlsplit(info.token_endpoint)
    context = ssl.create_default_context(cafile=str(info.ca_file))
    fields = {
        "grant_type": "refresh_token",
        "client_id": info.client_id,
        "client_secret": info.client_secret_file.read_text().strip(),
        "refresh_token": info.refresh_token_file.read_text().strip(),
        "scope": "https://outlook.office.com/SMTP.Send offline_access",
    }
    assert endpoint.hostname is not None
    connection = http.client.HTTPSConnection(
        endpoint.hostname, endpoint.port, timeout=5, context=context
    )
    try:
        connection.request(
            "POST",
            endpoint.path,
            body=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        assert response.status == 200
        document = json.loads(response.read())
    finally:
        connection.close()
    assert isinstance(document, dict)
    return document


def xoauth2(
    info: LabInfo, token: str, user: str = LAB_USER, *, two_step: bool = False
) -> tuple[int, str]:
    """Return the reply to ``AUTH XOAUTH2`` with ``token`` on the lab's STARTTLS server.

    The response goes in the AUTH line, or with ``two_step`` after an empty ``334``, which
    keeps the AUTH line under a 512-octet limit.
    """
    host, port = info.smtp_starttls.rsplit(":", 1)
    response = base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()
    context = ssl.create_default_context(cafile=str(info.ca_file))
    with smtplib.SMTP(host, int(port), timeout=5) as client:
        client.starttls(context=context)
        client.ehlo()
        if two_step:
            code, _ = client.docmd("AUTH", "XOAUTH2")
            assert code == 334
            code, text = client.docmd(response)
        else:
            code, text = client.docmd("AUTH", "XOAUTH2 " + response)
    return code, text.decode()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("token-healthy", (235, "2.7.0 Accepted"), id="token-healthy"),
        pytest.param("graph-audience", (535, EXCHANGE_5_7_3), id="graph-audience"),
        pytest.param("user-mismatch", (535, EXCHANGE_5_7_3), id="user-mismatch"),
        pytest.param("rotating-refresh-token", (235, "2.7.0 Accepted"), id="rotating"),
    ],
)
def test_issued_token_at_smtp(lab_parent: Path, name: str, expected: tuple[int, str]) -> None:
    with start_lab(get_scenario(name), workdir=lab_parent) as info:
        token = fetch_token(info)["access_token"]
        reply = xoauth2(info, token)
    assert reply == expected


def test_issued_token_for_other_user_rejected(lab_parent: Path) -> None:
    with start_lab(get_scenario("token-healthy"), workdir=lab_parent) as info:
        token = fetch_token(info)["access_token"]
        code, _ = xoauth2(info, token, user="other.user@example.com")
    assert code == 535


def test_file_token_still_accepted_in_token_scenario(lab_parent: Path) -> None:
    with start_lab(get_scenario("token-healthy"), workdir=lab_parent) as info:
        code, _ = xoauth2(info, info.access_token_file.read_text().strip())
    assert code == 235


def test_issued_token_accepted_in_plain_scenario(lab_parent: Path) -> None:
    with start_lab(get_scenario("healthy"), workdir=lab_parent) as info:
        token = fetch_token(info)["access_token"]
        code, _ = xoauth2(info, token, two_step=True)
    assert code == 235


def test_issued_token_rejected_where_all_are(lab_parent: Path) -> None:
    with start_lab(get_scenario("microsoft-5.7.3"), workdir=lab_parent) as info:
        token = fetch_token(info)["access_token"]
        code, _ = xoauth2(info, token, two_step=True)
    assert code == 535


def claims(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "aud": "https://outlook.office.com",
        "scp": "SMTP.Send",
        "upn": LAB_USER,
        "unique_name": LAB_USER,
    }
    document.update(overrides)
    return {name: value for name, value in document.items() if value is not None}


@pytest.mark.parametrize(
    ("token_claims", "accepted"),
    [
        pytest.param(claims(), True, id="exchange"),
        pytest.param(claims(aud="https://outlook.office365.com"), True, id="office365-aud"),
        pytest.param(claims(aud="00000002-0000-0ff1-ce00-000000000000"), True, id="app-id-aud"),
        pytest.param(claims(aud="https://graph.microsoft.com"), False, id="graph-aud"),
        pytest.param(claims(upn="other.user@example.com"), False, id="other-upn"),
        pytest.param(claims(upn=LAB_USER.upper()), True, id="upn-case"),
        pytest.param(claims(upn=None), True, id="unique-name-only"),
        pytest.param(claims(upn=None, unique_name=None), False, id="no-user"),
        pytest.param(claims(scp="User.Read"), False, id="no-smtp-send"),
        pytest.param(claims(scp="Mail.Send SMTP.Send"), True, id="smtp-send-among-others"),
        pytest.param(
            claims(scp=None, upn=None, unique_name=None, roles=["SMTP.SendAsApp"]),
            True,
            id="app-only",
        ),
        pytest.param(
            claims(scp=None, upn=None, unique_name=None, roles=["Mail.Send"]),
            False,
            id="app-without-role",
        ),
    ],
)
def test_exchange_accepts(token_claims: dict[str, Any], accepted: bool) -> None:
    assert exchange_accepts(token_claims, EXCHANGE_AUDIENCES, LAB_USER) is accepted


def test_exchange_accepts_opaque_token() -> None:
    assert exchange_accepts(None, EXCHANGE_AUDIENCES, LAB_USER) is True


ISSUED_VALUE = "eyJ.issued-token-for-tests.sig"


def account_with(token_claims: dict[str, Any] | None, *, expires_in: float = 3599) -> LabAccount:
    account = LabAccount(LAB_USER, Secret("ya29.file-token-0123456789", "test"))
    now = time.time()
    account.issued_tokens.add(
        IssuedToken(
            token=Secret(ISSUED_VALUE, "test"),
            client_id="client",
            scope="https://outlook.office.com/SMTP.Send",
            issued_at=now,
            expires_at=now + expires_in,
            claims=token_claims,
        )
    )
    return account


@pytest.mark.parametrize(
    ("options", "token_claims", "expires_in", "user", "accepted"),
    [
        pytest.param(EXCHANGE_TOKEN_SERVER, claims(), 3599, LAB_USER, True, id="exchange"),
        pytest.param(EXCHANGE_TOKEN_SERVER, claims(), 3599, None, True, id="no-auth-user"),
        pytest.param(EXCHANGE_TOKEN_SERVER, claims(), -1, LAB_USER, False, id="expired"),
        pytest.param(
            EXCHANGE_TOKEN_SERVER, claims(), 3599, "other.user@example.com", False, id="other"
        ),
        pytest.param(
            EXCHANGE_TOKEN_SERVER,
            claims(aud="https://graph.microsoft.com"),
            3599,
            LAB_USER,
            False,
            id="graph",
        ),
        pytest.param(
            ServerOptions(),
            claims(aud="https://graph.microsoft.com"),
            3599,
            LAB_USER,
            True,
            id="graph-without-validation",
        ),
        pytest.param(
            ServerOptions(reject_all_tokens=True), claims(), 3599, LAB_USER, False, id="reject-all"
        ),
        pytest.param(EXCHANGE_TOKEN_SERVER, None, 3599, LAB_USER, True, id="opaque"),
    ],
)
def test_token_accepted_issued(
    options: ServerOptions,
    token_claims: dict[str, Any] | None,
    expires_in: float,
    user: str | None,
    accepted: bool,
) -> None:
    account = account_with(token_claims, expires_in=expires_in)
    assert token_accepted(options, account, user, ISSUED_VALUE) is accepted


def test_token_accepted_unknown_token() -> None:
    account = account_with(claims())
    assert token_accepted(EXCHANGE_TOKEN_SERVER, account, LAB_USER, "eyJ.unknown") is False


def test_token_accepted_file_token_skips_validation() -> None:
    account = account_with(claims())
    assert token_accepted(EXCHANGE_TOKEN_SERVER, account, LAB_USER, "ya29.file-token-0123456789")


# --- diagnosis end to end ---


@pytest.fixture(scope="module")
def token_check() -> None:
    """Nothing to prepare: the token check is registered."""


def run_check(config_file: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    from smtpdiag.cli import main

    main(["check", "--config", config_file, "--target", "lab", "-f", "json"])
    report = json.loads(capsys.readouterr().out)
    assert isinstance(report, dict)
    return report


def finding_codes(report: dict[str, Any]) -> set[str]:
    return {finding["code"] for check in report["checks"] for finding in check["findings"]}


@pytest.mark.parametrize("name", TOKEN_SCENARIOS)
def test_diagnosis_contains_expected_codes(
    token_check: None, lab_parent: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_lab(get_scenario(name), workdir=lab_parent) as info:
        report = run_check(str(info.config_file), capsys)
    assert set(EXPECTED_CODES[name]) <= finding_codes(report)


def test_healthy_token_diagnosis_is_ok(
    token_check: None, lab_parent: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_lab(get_scenario("token-healthy"), workdir=lab_parent) as info:
        report = run_check(str(info.config_file), capsys)
    assert report["status"] == "ok"
