"""Lab token endpoint over real HTTPS on loopback: grants, errors, tokeninfo, introspection."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from smtpdiag.lab.certs import CertificateFiles
from smtpdiag.lab.lab_account import LabAccount
from smtpdiag.lab.options import (
    GOOGLE_MAIL_SCOPE,
    HUGE_BODY_OCTETS,
    RecordedReply,
    TokenEndpointOptions,
    TokenFault,
    TokenFormat,
    TokenProvider,
)
from smtpdiag.lab.scenarios import SCENARIOS
from smtpdiag.lab.token_server import (
    ACCESS_TOKEN_LIFETIME,
    HUGE_BODY_START,
    LAB_TENANT_ID,
    MAX_REQUEST_BODY_OCTETS,
    ClientCredentials,
    FormError,
    TokenServer,
    new_client_credentials,
    parse_form,
)
from smtpdiag.redact import MASK, REDACTOR
from smtpdiag.secrets import Secret

LAB_USER = "tester@example.com"
FORM = "application/x-www-form-urlencoded"
MICROSOFT_ERROR_KEYS = {
    "error",
    "error_description",
    "error_codes",
    "timestamp",
    "trace_id",
    "correlation_id",
    "error_uri",
}


@dataclass
class Lab:
    """A running token server with the account and credentials it checks."""

    server: TokenServer
    account: LabAccount
    credentials: ClientCredentials
    ca_file: str

    def refresh_fields(self, **overrides: str) -> dict[str, str]:
        fields = {
            "grant_type": "refresh_token",
            "client_id": self.credentials.client_id,
            "client_secret": self.credentials.client_secret.reveal(),
            "refresh_token": self.credentials.refresh_token.reveal(),
            "scope": "https://outlook.office.com/SMTP.Send offline_access",
        }
        fields.update(overrides)
        return fields

    def client_credentials_fields(self, **overrides: str) -> dict[str, str]:
        fields = {
            "grant_type": "client_credentials",
            "client_id": self.credentials.client_id,
            "client_secret": self.credentials.client_secret.reveal(),
            "scope": "https://outlook.office365.com/.default",
        }
        fields.update(overrides)
        return fields


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


LabFactory = Callable[..., AbstractContextManager[Lab]]


@pytest.fixture(scope="module")
def start_lab(certificates: CertificateFiles) -> LabFactory:
    @contextmanager
    def start(options: TokenEndpointOptions | None = None) -> Iterator[Lab]:
        options = options or TokenEndpointOptions()
        account = LabAccount(LAB_USER, Secret("ya29.file-token-0123456789", "test"))
        credentials = new_client_credentials(options.provider)
        with TokenServer(options, account, credentials, certificates) as server:
            yield Lab(server, account, credentials, str(certificates.ca_file))

    return start


@pytest.fixture(scope="module")
def microsoft(start_lab: LabFactory) -> Iterator[Lab]:
    with start_lab() as lab:
        yield lab


@pytest.fixture(scope="module")
def google(start_lab: LabFactory) -> Iterator[Lab]:
    options = TokenEndpointOptions(provider=TokenProvider.GOOGLE, token_format=TokenFormat.OPAQUE)
    with start_lab(options) as lab:
        yield lab


def connect(lab: Lab, timeout: float = 5) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=lab.ca_file)
    return http.client.HTTPSConnection(
        "127.0.0.1", lab.server.port, timeout=timeout, context=context
    )


def request(
    lab: Lab,
    path: str,
    body: bytes | str = b"",
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    timeout: float = 5,
) -> Response:
    connection = connect(lab, timeout)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        data = response.read()
        return Response(response.status, dict(response.getheaders()), data)
    finally:
        connection.close()


def post_form(lab: Lab, path: str, fields: Mapping[str, str], timeout: float = 5) -> Response:
    return request(lab, path, urlencode(fields), headers={"Content-Type": FORM}, timeout=timeout)


def jwt_part(token: str, index: int) -> Any:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture(scope="module")
def refresh_reply(microsoft: Lab) -> Response:
    return post_form(microsoft, "/token", microsoft.refresh_fields())


@pytest.fixture(scope="module")
def access_token(refresh_reply: Response) -> str:
    token = refresh_reply.json()["access_token"]
    assert isinstance(token, str)
    return token


# --- refresh-token grant (Microsoft) ---


def test_refresh_grant_status(refresh_reply: Response) -> None:
    assert refresh_reply.status == 200


def test_refresh_grant_content_type(refresh_reply: Response) -> None:
    assert refresh_reply.headers["Content-Type"] == "application/json; charset=utf-8"


def test_refresh_grant_keys_in_order(refresh_reply: Response) -> None:
    assert list(refresh_reply.json()) == [
        "token_type",
        "scope",
        "expires_in",
        "ext_expires_in",
        "access_token",
    ]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("token_type", "Bearer"),
        ("scope", "https://outlook.office.com/SMTP.Send"),
        ("expires_in", ACCESS_TOKEN_LIFETIME),
        ("ext_expires_in", ACCESS_TOKEN_LIFETIME),
    ],
)
def test_refresh_grant_field(refresh_reply: Response, key: str, expected: object) -> None:
    assert refresh_reply.json()[key] == expected


def test_refresh_grant_registers_token(microsoft: Lab, access_token: str) -> None:
    issued = microsoft.account.issued_tokens.find(access_token)
    assert issued is not None
    assert issued.user == LAB_USER


def test_issued_token_is_redacted(microsoft: Lab) -> None:
    # The redactor is cleared after each test, so the token is issued here.
    token = post_form(microsoft, "/token", microsoft.refresh_fields()).json()["access_token"]
    assert REDACTOR.redact(token) == MASK


def test_jwt_header(access_token: str) -> None:
    assert jwt_part(access_token, 0) == {"typ": "JWT", "alg": "RS256", "kid": "lab"}


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        ("aud", "https://outlook.office.com"),
        ("iss", f"https://sts.windows.net/{LAB_TENANT_ID}/"),
        ("scp", "SMTP.Send"),
        ("upn", LAB_USER),
        ("unique_name", LAB_USER),
        ("tid", LAB_TENANT_ID),
        ("ver", "1.0"),
    ],
)
def test_jwt_claim(access_token: str, claim: str, expected: str) -> None:
    assert jwt_part(access_token, 1)[claim] == expected


def test_jwt_appid_is_client_id(microsoft: Lab, access_token: str) -> None:
    assert jwt_part(access_token, 1)["appid"] == microsoft.credentials.client_id


def test_jwt_times_ordered(access_token: str) -> None:
    claims = jwt_part(access_token, 1)
    assert claims["iat"] == claims["nbf"]
    assert claims["nbf"] < claims["exp"]


def test_jwt_signature_is_rs256_sized(access_token: str) -> None:
    signature = access_token.split(".")[2]
    assert len(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))) == 256


def test_refresh_grant_without_rotation_has_no_refresh_token(refresh_reply: Response) -> None:
    assert "refresh_token" not in refresh_reply.json()


def test_reply_server_header(refresh_reply: Response) -> None:
    assert refresh_reply.headers["Server"] == "smtpdiag-lab"


# --- client-credentials grant (Microsoft) ---


@pytest.fixture(scope="module")
def app_reply(microsoft: Lab) -> Response:
    return post_form(microsoft, "/token", microsoft.client_credentials_fields())


def test_client_credentials_status(app_reply: Response) -> None:
    assert app_reply.status == 200


def test_client_credentials_reply_has_no_scope(app_reply: Response) -> None:
    assert list(app_reply.json()) == ["token_type", "expires_in", "ext_expires_in", "access_token"]


def test_client_credentials_token_roles(app_reply: Response) -> None:
    assert jwt_part(app_reply.json()["access_token"], 1)["roles"] == ["SMTP.SendAsApp"]


def test_client_credentials_token_names_no_user(app_reply: Response) -> None:
    claims = jwt_part(app_reply.json()["access_token"], 1)
    assert "upn" not in claims
    assert claims["idtyp"] == "app"


# --- Microsoft errors ---


@pytest.mark.parametrize(
    ("overrides", "status", "error", "code"),
    [
        pytest.param({"client_secret": "wrong"}, 401, "invalid_client", 7000215, id="secret"),
        pytest.param({"client_secret": ""}, 401, "invalid_client", 7000218, id="no-secret"),
        pytest.param({"refresh_token": "0.wrong"}, 400, "invalid_grant", 9002313, id="refresh"),
        pytest.param({"refresh_token": ""}, 400, "invalid_request", 900144, id="no-refresh"),
        pytest.param(
            {"client_id": "00000000-0000-0000-0000-000000000001"},
            400,
            "unauthorized_client",
            700016,
            id="client-id",
        ),
        pytest.param({"client_id": ""}, 400, "invalid_request", 900144, id="no-client-id"),
        pytest.param({"scope": ""}, 400, "invalid_request", 900144, id="no-scope"),
        pytest.param({"grant_type": ""}, 400, "invalid_request", 900144, id="no-grant"),
        pytest.param(
            {"grant_type": "password"}, 400, "unsupported_grant_type", 70003, id="password-grant"
        ),
    ],
)
def test_microsoft_error(
    microsoft: Lab, overrides: dict[str, str], status: int, error: str, code: int
) -> None:
    reply = post_form(microsoft, "/token", microsoft.refresh_fields(**overrides))
    body = reply.json()
    assert reply.status == status
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")


@pytest.fixture(scope="module")
def wrong_secret_body(microsoft: Lab) -> dict[str, Any]:
    reply = post_form(microsoft, "/token", microsoft.refresh_fields(client_secret="wrong"))
    body = reply.json()
    assert isinstance(body, dict)
    return body


def test_microsoft_error_keys(wrong_secret_body: dict[str, Any]) -> None:
    assert set(wrong_secret_body) == MICROSOFT_ERROR_KEYS


def test_microsoft_error_uri(wrong_secret_body: dict[str, Any]) -> None:
    assert wrong_secret_body["error_uri"] == "https://login.microsoftonline.com/error?code=7000215"


def test_microsoft_error_description_repeats_ids(wrong_secret_body: dict[str, Any]) -> None:
    description = wrong_secret_body["error_description"]
    assert f"\r\nTrace ID: {wrong_secret_body['trace_id']}\r\n" in description
    assert f"\r\nCorrelation ID: {wrong_secret_body['correlation_id']}\r\n" in description
    assert description.endswith(f"\r\nTimestamp: {wrong_secret_body['timestamp']}")


def test_microsoft_error_names_app(microsoft: Lab, wrong_secret_body: dict[str, Any]) -> None:
    assert f"app '{microsoft.credentials.client_id}'" in wrong_secret_body["error_description"]


def test_wrong_secret_registers_no_token(start_lab: LabFactory) -> None:
    with start_lab() as lab:
        post_form(lab, "/token", lab.refresh_fields(client_secret="wrong"))
        assert len(lab.account.issued_tokens) == 0


# --- rotation ---


@pytest.fixture(scope="module")
def rotating(start_lab: LabFactory) -> Iterator[Lab]:
    with start_lab(TokenEndpointOptions(rotate_refresh_token=True)) as lab:
        yield lab


def test_rotation_returns_new_refresh_token(rotating: Lab) -> None:
    body = post_form(rotating, "/token", rotating.refresh_fields()).json()
    assert body["refresh_token"] != rotating.credentials.refresh_token.reveal()


def test_rotation_refresh_token_is_last_key(rotating: Lab) -> None:
    body = post_form(rotating, "/token", rotating.refresh_fields()).json()
    assert list(body)[-1] == "refresh_token"


def test_rotation_new_refresh_token_accepted(rotating: Lab) -> None:
    first = post_form(rotating, "/token", rotating.refresh_fields()).json()
    second = post_form(
        rotating, "/token", rotating.refresh_fields(refresh_token=first["refresh_token"])
    )
    assert second.status == 200
    assert second.json()["refresh_token"] not in (
        first["refresh_token"],
        rotating.credentials.refresh_token.reveal(),
    )


def test_rotation_old_refresh_token_still_accepted(rotating: Lab) -> None:
    post_form(rotating, "/token", rotating.refresh_fields())
    assert post_form(rotating, "/token", rotating.refresh_fields()).status == 200


def test_rotation_new_refresh_token_redacted(rotating: Lab) -> None:
    body = post_form(rotating, "/token", rotating.refresh_fields()).json()
    assert REDACTOR.redact(body["refresh_token"]) == MASK


def test_rotation_not_in_client_credentials_reply(rotating: Lab) -> None:
    body = post_form(rotating, "/token", rotating.client_credentials_fields()).json()
    assert "refresh_token" not in body


# --- token options ---


@pytest.mark.parametrize(
    ("options", "claim", "expected"),
    [
        pytest.param(
            TokenEndpointOptions(audience="https://graph.microsoft.com"),
            "aud",
            "https://graph.microsoft.com",
            id="audience",
        ),
        pytest.param(
            TokenEndpointOptions(scp="Mail.Send SMTP.Send User.Read"),
            "scp",
            "Mail.Send SMTP.Send User.Read",
            id="scp",
        ),
        pytest.param(
            TokenEndpointOptions(upn="other.user@example.com"),
            "upn",
            "other.user@example.com",
            id="upn",
        ),
    ],
)
def test_jwt_override(
    start_lab: LabFactory, options: TokenEndpointOptions, claim: str, expected: str
) -> None:
    with start_lab(options) as lab:
        body = post_form(lab, "/token", lab.refresh_fields()).json()
    assert jwt_part(body["access_token"], 1)[claim] == expected


def test_graph_token_scope_names_graph(start_lab: LabFactory) -> None:
    options = TokenEndpointOptions(
        audience="https://graph.microsoft.com", scp="Mail.Send SMTP.Send User.Read"
    )
    with start_lab(options) as lab:
        body = post_form(lab, "/token", lab.refresh_fields()).json()
    assert body["scope"] == (
        "https://graph.microsoft.com/Mail.Send https://graph.microsoft.com/SMTP.Send "
        "https://graph.microsoft.com/User.Read"
    )


def test_opaque_microsoft_token(start_lab: LabFactory) -> None:
    with start_lab(TokenEndpointOptions(token_format=TokenFormat.OPAQUE)) as lab:
        body = post_form(lab, "/token", lab.refresh_fields()).json()
    assert body["access_token"].startswith("ya29.lab-")


# --- Google ---


@pytest.fixture(scope="module")
def google_reply(google: Lab) -> Response:
    return post_form(google, "/token", google.refresh_fields(scope=""))


def test_google_refresh_grant_status(google_reply: Response) -> None:
    assert google_reply.status == 200


def test_google_refresh_grant_keys(google_reply: Response) -> None:
    assert list(google_reply.json()) == ["access_token", "expires_in", "scope", "token_type"]


def test_google_refresh_grant_scope(google_reply: Response) -> None:
    assert google_reply.json()["scope"] == GOOGLE_MAIL_SCOPE


def test_google_reply_is_indented(google_reply: Response) -> None:
    assert google_reply.body.startswith(b'{\n  "access_token": "ya29.lab-')


def test_google_token_registered_without_claims(google: Lab, google_reply: Response) -> None:
    issued = google.account.issued_tokens.find(google_reply.json()["access_token"])
    assert issued is not None
    assert issued.claims is None


def test_google_client_id_shape(google: Lab) -> None:
    assert google.credentials.client_id.endswith(".apps.googleusercontent.com")


@pytest.mark.parametrize(
    ("overrides", "status", "body"),
    [
        pytest.param(
            {"client_secret": "wrong"},
            401,
            {"error": "invalid_client", "error_description": "Unauthorized"},
            id="secret",
        ),
        pytest.param(
            {"client_id": "1-x.apps.googleusercontent.com"},
            401,
            {"error": "invalid_client", "error_description": "The OAuth client was not found."},
            id="client-id",
        ),
        pytest.param(
            {"refresh_token": "1//wrong"},
            400,
            {"error": "invalid_grant", "error_description": "Bad Request"},
            id="refresh",
        ),
        pytest.param(
            {"grant_type": "client_credentials"},
            400,
            {
                "error": "unsupported_grant_type",
                "error_description": "Invalid grant_type: client_credentials",
            },
            id="client-credentials",
        ),
    ],
)
def test_google_error(
    google: Lab, overrides: dict[str, str], status: int, body: dict[str, str]
) -> None:
    reply = post_form(google, "/token", google.refresh_fields(**overrides))
    assert (reply.status, reply.json()) == (status, body)


# --- tokeninfo ---


def test_tokeninfo_valid(microsoft: Lab, access_token: str) -> None:
    reply = post_form(microsoft, "/tokeninfo", {"access_token": access_token})
    body = reply.json()
    assert reply.status == 200
    assert body["aud"] == microsoft.credentials.client_id
    assert body["azp"] == microsoft.credentials.client_id
    assert body["scope"] == "https://outlook.office.com/SMTP.Send"
    assert body["access_type"] == "offline"


def test_tokeninfo_times_are_strings(microsoft: Lab, access_token: str) -> None:
    body = post_form(microsoft, "/tokeninfo", {"access_token": access_token}).json()
    assert 0 < int(body["expires_in"]) <= ACCESS_TOKEN_LIFETIME
    assert isinstance(body["exp"], str)


def test_tokeninfo_google_token(google: Lab, google_reply: Response) -> None:
    token = google_reply.json()["access_token"]
    body = post_form(google, "/tokeninfo", {"access_token": token}).json()
    assert body["scope"] == GOOGLE_MAIL_SCOPE


def test_tokeninfo_unknown_token(microsoft: Lab) -> None:
    reply = post_form(microsoft, "/tokeninfo", {"access_token": "ya29.unknown-token"})
    assert (reply.status, reply.json()) == (
        400,
        {"error": "invalid_token", "error_description": "Invalid Value"},
    )


def test_tokeninfo_missing_token(microsoft: Lab) -> None:
    reply = post_form(microsoft, "/tokeninfo", {})
    assert (reply.status, reply.json()["error"]) == (400, "invalid_request")


# --- introspection ---


def test_introspect_active(microsoft: Lab, access_token: str) -> None:
    body = post_form(microsoft, "/introspect", {"token": access_token}).json()
    assert body["active"] is True
    assert body["username"] == LAB_USER
    assert body["client_id"] == microsoft.credentials.client_id
    assert body["scope"] == "https://outlook.office.com/SMTP.Send"
    assert body["token_type"] == "Bearer"


def test_introspect_exp_matches_jwt(microsoft: Lab, access_token: str) -> None:
    body = post_form(microsoft, "/introspect", {"token": access_token}).json()
    assert body["exp"] == jwt_part(access_token, 1)["exp"]


def test_introspect_app_token_has_no_username(microsoft: Lab, app_reply: Response) -> None:
    token = app_reply.json()["access_token"]
    body = post_form(microsoft, "/introspect", {"token": token}).json()
    assert body["active"] is True
    assert "username" not in body


def test_introspect_opaque_token_names_lab_user(google: Lab, google_reply: Response) -> None:
    token = google_reply.json()["access_token"]
    body = post_form(google, "/introspect", {"token": token}).json()
    assert body["username"] == LAB_USER


def test_introspect_unknown_token(microsoft: Lab) -> None:
    reply = post_form(microsoft, "/introspect", {"token": "ya29.unknown-token"})
    assert (reply.status, reply.json()) == (200, {"active": False})


def test_introspect_missing_token(microsoft: Lab) -> None:
    reply = post_form(microsoft, "/introspect", {})
    assert (reply.status, reply.json()["error"]) == (400, "invalid_request")


# --- recorded replies of the scenarios ---

RECORDED_SCENARIOS = [
    name
    for name, scenario in SCENARIOS.items()
    if scenario.token_endpoint is not None and scenario.token_endpoint.error_reply is not None
]


def test_recorded_scenarios_listed() -> None:
    assert RECORDED_SCENARIOS == [
        "token-500",
        "token-html-200",
        "aadsts700082",
        "google-invalid-grant",
        "invalid-client",
        "invalid-scope",
        "html-error-page",
    ]


@pytest.fixture(scope="module", params=RECORDED_SCENARIOS)
def recorded(request: pytest.FixtureRequest, start_lab: LabFactory) -> Iterator[tuple[str, Lab]]:
    options = SCENARIOS[request.param].token_endpoint
    assert options is not None
    with start_lab(options) as lab:
        yield request.param, lab


def recorded_reply(name: str) -> RecordedReply:
    options = SCENARIOS[name].token_endpoint
    assert options is not None
    assert options.error_reply is not None
    return options.error_reply


def test_recorded_reply_status(recorded: tuple[str, Lab]) -> None:
    name, lab = recorded
    reply = post_form(lab, "/token", lab.refresh_fields())
    assert reply.status == recorded_reply(name).status


def test_recorded_reply_body(recorded: tuple[str, Lab]) -> None:
    name, lab = recorded
    reply = post_form(lab, "/token", lab.refresh_fields())
    assert reply.body == recorded_reply(name).body.encode()


def test_recorded_reply_content_type(recorded: tuple[str, Lab]) -> None:
    name, lab = recorded
    reply = post_form(lab, "/token", lab.refresh_fields())
    assert reply.headers["Content-Type"] == recorded_reply(name).content_type


def test_recorded_reply_issues_no_token(recorded: tuple[str, Lab]) -> None:
    _, lab = recorded
    post_form(lab, "/token", lab.refresh_fields())
    assert len(lab.account.issued_tokens) == 0


@pytest.mark.parametrize(
    ("name", "status", "error", "code"),
    [
        pytest.param("aadsts700082", 400, "invalid_grant", 700082, id="aadsts700082"),
        pytest.param("invalid-client", 401, "invalid_client", 7000215, id="invalid-client"),
        pytest.param("invalid-scope", 400, "invalid_scope", 70011, id="invalid-scope"),
    ],
)
def test_recorded_microsoft_body(name: str, status: int, error: str, code: int) -> None:
    reply = recorded_reply(name)
    body = json.loads(reply.body)
    assert reply.status == status
    assert set(body) == MICROSOFT_ERROR_KEYS
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")


def test_recorded_aadsts700082_description() -> None:
    description = json.loads(recorded_reply("aadsts700082").body)["error_description"]
    assert description.startswith(
        "AADSTS700082: The refresh token has expired due to inactivity. The token was issued "
        "on 2022-01-03T09:39:41.5631952Z and was inactive for 90.00:00:00.\r\nTrace ID: "
    )


def test_recorded_google_body() -> None:
    reply = recorded_reply("google-invalid-grant")
    assert (reply.status, json.loads(reply.body)) == (
        400,
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    )


def test_recorded_html_page() -> None:
    reply = recorded_reply("html-error-page")
    assert (reply.status, reply.content_type) == (502, "text/html")
    assert "<title>502 Bad Gateway</title>" in reply.body


def test_recorded_google_internal_failure() -> None:
    reply = recorded_reply("token-500")
    assert (reply.status, json.loads(reply.body)) == (
        500,
        {"error": "internal_failure", "error_description": "Backend Error"},
    )


def test_recorded_sign_in_page() -> None:
    reply = recorded_reply("token-html-200")
    assert (reply.status, reply.content_type) == (200, "text/html; charset=utf-8")
    assert "<title>Sign in to continue</title>" in reply.body


@pytest.mark.parametrize("status", [200, 302, 599])
def test_recorded_reply_status_accepted(status: int) -> None:
    assert RecordedReply(status=status, body="").status == status


@pytest.mark.parametrize("status", [100, 199, 600])
def test_recorded_reply_status_rejected(status: int) -> None:
    with pytest.raises(ValueError, match=f"status {status} is not an HTTP status from 200"):
        RecordedReply(status=status, body="")


# --- faults ---


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"error_reply": RecordedReply(status=500, body="{}")}, id="error-reply"),
        pytest.param({"delay_seconds": 1.0}, id="delay"),
    ],
)
def test_fault_excludes_other_replies(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="fault 'hang' replaces error_reply and delay_seconds"):
        TokenEndpointOptions(fault=TokenFault.HANG, **changes)


def test_hang_completes_tls_and_reads_request(start_lab: LabFactory) -> None:
    with start_lab(TokenEndpointOptions(fault=TokenFault.HANG)) as lab:
        connection = connect(lab, timeout=0.5)
        try:
            # connect() returns after the TLS handshake; the request is sent in full.
            connection.connect()
            connection.request(
                "POST",
                "/token",
                body=urlencode(lab.refresh_fields()),
                headers={"Content-Type": FORM},
            )
            wait_for_token_request(lab)
            with pytest.raises(TimeoutError):
                connection.getresponse()
        finally:
            connection.close()


def test_hang_applies_to_token_only(start_lab: LabFactory) -> None:
    with start_lab(TokenEndpointOptions(fault=TokenFault.HANG)) as lab:
        reply = post_form(lab, "/introspect", {"token": "unknown"}, timeout=5)
    assert reply.json() == {"active": False}


def test_stop_ends_hang_without_reply(start_lab: LabFactory) -> None:
    outcome: list[BaseException] = []

    with start_lab(TokenEndpointOptions(fault=TokenFault.HANG)) as lab:

        def client() -> None:
            try:
                post_form(lab, "/token", lab.refresh_fields(), timeout=20)
            except (http.client.HTTPException, OSError) as error:
                outcome.append(error)

        thread = threading.Thread(target=client)
        thread.start()
        wait_for_token_request(lab)
    thread.join(timeout=20)

    assert not thread.is_alive()
    assert len(outcome) == 1
    # A closed connection, not a client timeout: the stop ended the hang.
    assert isinstance(outcome[0], http.client.RemoteDisconnected)


@pytest.fixture(scope="module")
def huge_reply(start_lab: LabFactory) -> Response:
    with start_lab(TokenEndpointOptions(fault=TokenFault.HUGE_BODY)) as lab:
        return post_form(lab, "/token", lab.refresh_fields())


def test_huge_body_status(huge_reply: Response) -> None:
    assert huge_reply.status == 200


def test_huge_body_length(huge_reply: Response) -> None:
    assert len(huge_reply.body) == HUGE_BODY_OCTETS
    assert huge_reply.headers["Content-Length"] == str(HUGE_BODY_OCTETS)


def test_huge_body_is_json_that_never_closes(huge_reply: Response) -> None:
    assert huge_reply.body.startswith(HUGE_BODY_START)
    assert huge_reply.body[len(HUGE_BODY_START) :] == b"A" * (
        HUGE_BODY_OCTETS - len(HUGE_BODY_START)
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(huge_reply.body)


def test_huge_body_is_10_mib() -> None:
    assert HUGE_BODY_OCTETS == 10 * 1024 * 1024


def test_client_closing_mid_body_does_not_break_server(start_lab: LabFactory) -> None:
    with start_lab(TokenEndpointOptions(fault=TokenFault.HUGE_BODY)) as lab:
        connection = connect(lab)
        try:
            connection.request(
                "POST",
                "/token",
                body=urlencode(lab.refresh_fields()),
                headers={"Content-Type": FORM},
            )
            first = connection.getresponse().read(1024 * 1024)
        finally:
            connection.close()
        reply = post_form(lab, "/introspect", {"token": "unknown"})
    assert len(first) == 1024 * 1024
    assert reply.json() == {"active": False}


def test_stop_with_client_that_stopped_reading(start_lab: LabFactory) -> None:
    with start_lab(TokenEndpointOptions(fault=TokenFault.HUGE_BODY)) as lab:
        port = lab.server.port
        connection = connect(lab)
        connection.request(
            "POST", "/token", body=urlencode(lab.refresh_fields()), headers={"Content-Type": FORM}
        )
        # The client reads the status line and the first bytes, then nothing more, while
        # the server's writes fill the socket buffers.
        response = connection.getresponse()
        first = response.read(65536)
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
    finally:
        connection.close()
    assert response.status == 200
    assert first.startswith(HUGE_BODY_START)


# --- delay and shutdown ---


def test_delay_exceeds_client_timeout(start_lab: LabFactory) -> None:
    with start_lab(TokenEndpointOptions(delay_seconds=3)) as lab, pytest.raises(TimeoutError):
        post_form(lab, "/token", lab.refresh_fields(), timeout=0.5)


def test_delay_applies_to_token_only(start_lab: LabFactory) -> None:
    with start_lab(TokenEndpointOptions(delay_seconds=30)) as lab:
        reply = post_form(lab, "/introspect", {"token": "unknown"}, timeout=5)
    assert reply.json() == {"active": False}


def wait_for_token_request(lab: Lab) -> None:
    for _ in range(500):
        if lab.server.endpoint.token_requests:
            return
        time.sleep(0.01)
    raise AssertionError("the token endpoint received no request")


def test_stop_drops_delayed_reply(start_lab: LabFactory) -> None:
    outcome: list[BaseException] = []

    with start_lab(TokenEndpointOptions(delay_seconds=30)) as lab:

        def client() -> None:
            try:
                post_form(lab, "/token", lab.refresh_fields(), timeout=20)
            except (http.client.HTTPException, OSError) as error:
                outcome.append(error)

        thread = threading.Thread(target=client)
        thread.start()
        wait_for_token_request(lab)
    thread.join(timeout=20)

    assert not thread.is_alive()
    assert len(outcome) == 1
    # A closed connection, not a client timeout: the stop ended the delay.
    assert isinstance(outcome[0], http.client.RemoteDisconnected)


def test_port_closed_after_stop(start_lab: LabFactory) -> None:
    with start_lab() as lab:
        port = lab.server.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


# --- malformed requests and silent clients ---


def test_get_not_allowed(microsoft: Lab) -> None:
    reply = request(microsoft, "/token", method="GET")
    assert (reply.status, reply.headers["Allow"]) == (405, "POST")


def test_unknown_path(microsoft: Lab) -> None:
    reply = post_form(microsoft, "/oauth2/v2.0/token", microsoft.refresh_fields())
    assert (reply.status, reply.json()["error"]) == (404, "invalid_request")


def test_repeated_field_rejected(microsoft: Lab) -> None:
    body = urlencode(microsoft.refresh_fields()) + "&client_id=again"
    reply = request(microsoft, "/token", body, headers={"Content-Type": FORM})
    assert (reply.status, reply.json()["error"]) == (400, "invalid_request")


def test_json_body_has_no_grant_type(microsoft: Lab) -> None:
    body = json.dumps(microsoft.refresh_fields())
    reply = request(microsoft, "/token", body, headers={"Content-Type": "application/json"})
    assert (reply.status, reply.json()["error_codes"]) == (400, [900144])


def test_body_over_limit(microsoft: Lab) -> None:
    connection = connect(microsoft)
    try:
        # Only the headers are sent: the server replies before it reads the body.
        connection.putrequest("POST", "/token")
        connection.putheader("Content-Type", FORM)
        connection.putheader("Content-Length", str(MAX_REQUEST_BODY_OCTETS + 1))
        connection.endheaders()
        status = connection.getresponse().status
    finally:
        connection.close()
    assert status == 413


def test_invalid_content_length(microsoft: Lab) -> None:
    connection = connect(microsoft)
    try:
        connection.putrequest("POST", "/token")
        connection.putheader("Content-Length", "many")
        connection.endheaders()
        status = connection.getresponse().status
    finally:
        connection.close()
    assert status == 400


def test_chunked_body_rejected(microsoft: Lab) -> None:
    connection = connect(microsoft)
    try:
        # Only the headers are sent: the server replies before it reads any chunk.
        connection.putrequest("POST", "/token")
        connection.putheader("Content-Type", FORM)
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        status = connection.getresponse().status
    finally:
        connection.close()
    assert status == 411


def test_non_utf8_form_rejected(microsoft: Lab) -> None:
    reply = request(microsoft, "/token", b"grant_type=\xff%ff", headers={"Content-Type": FORM})
    assert reply.status == 400


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        pytest.param(b"a=1&b=", FORM, {"a": "1", "b": ""}, id="blank-value"),
        pytest.param(b"a=x%20y+z", FORM + "; charset=UTF-8", {"a": "x y z"}, id="encoded"),
        pytest.param(b"a=1", "text/plain", {}, id="not-a-form"),
    ],
)
def test_parse_form(body: bytes, content_type: str, expected: dict[str, str]) -> None:
    assert parse_form(body, content_type) == expected


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"a=1&a=2", id="repeated"),
        pytest.param(b"\xff=1", id="not-utf8"),
        pytest.param(b"&".join(b"f%d=1" % i for i in range(101)), id="too-many"),
    ],
)
def test_parse_form_rejects(body: bytes) -> None:
    with pytest.raises(FormError):
        parse_form(body, FORM)


def test_silent_client_does_not_block_others(microsoft: Lab) -> None:
    with socket.create_connection(("127.0.0.1", microsoft.server.port), timeout=5):
        reply = post_form(microsoft, "/introspect", {"token": "unknown"})
    assert reply.status == 200


def test_plain_http_client_does_not_break_server(microsoft: Lab) -> None:
    with socket.create_connection(("127.0.0.1", microsoft.server.port), timeout=5) as raw:
        raw.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.recv(1024)
    assert post_form(microsoft, "/introspect", {"token": "unknown"}).status == 200


def test_untrusting_client_does_not_break_server(microsoft: Lab) -> None:
    context = ssl.create_default_context()
    with (
        socket.create_connection(("127.0.0.1", microsoft.server.port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")
    assert post_form(microsoft, "/introspect", {"token": "unknown"}).status == 200


# --- logging ---


def test_request_logged_at_debug(start_lab: LabFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="smtpdiag.lab.token_server")
    with start_lab() as lab:
        post_form(lab, "/token", lab.refresh_fields())
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(line.endswith("POST /token -> 200") for line in lines)


def test_log_contains_no_secret(start_lab: LabFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with start_lab(TokenEndpointOptions(rotate_refresh_token=True)) as lab:
        body = post_form(lab, "/token", lab.refresh_fields()).json()
        post_form(lab, "/token", lab.refresh_fields(client_secret="wrong"))
        post_form(lab, "/introspect", {"token": body["access_token"]})
        secrets = [
            lab.credentials.client_secret.reveal(),
            lab.credentials.refresh_token.reveal(),
            body["access_token"],
            body["refresh_token"],
        ]
    text = "\n".join(record.getMessage() for record in caplog.records)
    for secret in secrets:
        assert secret not in text


def test_nothing_written_to_stderr(
    start_lab: LabFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    with start_lab() as lab:
        post_form(lab, "/token", lab.refresh_fields())
        request(lab, "/token", method="GET")
        with socket.create_connection(("127.0.0.1", lab.server.port), timeout=5) as raw:
            raw.sendall(b"not TLS\r\n")
    assert capfd.readouterr().err == ""


# --- credentials ---


@pytest.mark.parametrize("provider", list(TokenProvider))
def test_new_credentials_registered(provider: TokenProvider) -> None:
    credentials = new_client_credentials(provider)
    assert REDACTOR.redact(credentials.client_secret.reveal()) == MASK
    assert REDACTOR.redact(credentials.refresh_token.reveal()) == MASK


def test_new_credentials_differ() -> None:
    first = new_client_credentials(TokenProvider.MICROSOFT)
    second = new_client_credentials(TokenProvider.MICROSOFT)
    assert first.client_secret != second.client_secret
    assert first.client_id != second.client_id


# --- the account's own token, revocation and a failing introspection service ---

ACCOUNT_TOKEN = "ya29.file-token-0123456789"


def test_introspect_account_token(microsoft: Lab) -> None:
    body = post_form(microsoft, "/introspect", {"token": ACCOUNT_TOKEN}).json()
    assert body == {
        "active": True,
        "scope": GOOGLE_MAIL_SCOPE,
        "username": LAB_USER,
        "token_type": "Bearer",
    }


def test_introspect_expired_account_token(certificates: CertificateFiles) -> None:
    expires_at = time.time() - 60
    account = LabAccount(LAB_USER, Secret(ACCOUNT_TOKEN, "test"), token_expires_at=expires_at)
    options = TokenEndpointOptions()
    credentials = new_client_credentials(options.provider)
    with TokenServer(options, account, credentials, certificates) as server:
        lab = Lab(server, account, credentials, str(certificates.ca_file))
        body = post_form(lab, "/introspect", {"token": ACCOUNT_TOKEN}).json()
    assert body == {"active": False}


def test_introspect_account_token_with_expiry(certificates: CertificateFiles) -> None:
    expires_at = time.time() + 600
    account = LabAccount(LAB_USER, Secret(ACCOUNT_TOKEN, "test"), token_expires_at=expires_at)
    options = TokenEndpointOptions()
    credentials = new_client_credentials(options.provider)
    with TokenServer(options, account, credentials, certificates) as server:
        lab = Lab(server, account, credentials, str(certificates.ca_file))
        body = post_form(lab, "/introspect", {"token": ACCOUNT_TOKEN}).json()
    assert body["exp"] == int(expires_at)


def test_introspect_account_token_of_other_user(certificates: CertificateFiles) -> None:
    account = LabAccount(LAB_USER, Secret(ACCOUNT_TOKEN, "test"), token_user="x@example.com")
    options = TokenEndpointOptions()
    credentials = new_client_credentials(options.provider)
    with TokenServer(options, account, credentials, certificates) as server:
        lab = Lab(server, account, credentials, str(certificates.ca_file))
        body = post_form(lab, "/introspect", {"token": ACCOUNT_TOKEN}).json()
    assert body["username"] == "x@example.com"


@pytest.mark.parametrize(
    ("user", "accepted"),
    [
        pytest.param("x@example.com", True, id="token-owner"),
        pytest.param(LAB_USER, False, id="account-user"),
    ],
)
def test_account_accepts_token_owner_only(user: str, accepted: bool) -> None:
    account = LabAccount(LAB_USER, Secret(ACCOUNT_TOKEN, "test"), token_user="x@example.com")
    assert account.accepts(user, ACCOUNT_TOKEN) is accepted


@pytest.fixture(scope="module")
def revoked_microsoft(start_lab: LabFactory) -> Iterator[tuple[Lab, str]]:
    """A Microsoft-like lab that issued one access token and then revoked the grant."""
    with start_lab() as lab:
        issued = post_form(lab, "/token", lab.refresh_fields()).json()["access_token"]
        lab.server.revoke_grant()
        yield lab, issued


def test_revoke_grant_refresh_status(revoked_microsoft: tuple[Lab, str]) -> None:
    lab, _ = revoked_microsoft
    reply = post_form(lab, "/token", lab.refresh_fields())
    assert reply.status == 400


def test_revoke_grant_refresh_error(revoked_microsoft: tuple[Lab, str]) -> None:
    lab, _ = revoked_microsoft
    body = post_form(lab, "/token", lab.refresh_fields()).json()
    assert (body["error"], body["error_codes"]) == ("invalid_grant", [50173])


def test_revoke_grant_microsoft_description(revoked_microsoft: tuple[Lab, str]) -> None:
    lab, _ = revoked_microsoft
    body = post_form(lab, "/token", lab.refresh_fields()).json()
    assert body["error_description"].startswith(
        "AADSTS50173: The provided grant has expired due to it being revoked"
    )


def test_revoke_grant_issued_token_inactive(revoked_microsoft: tuple[Lab, str]) -> None:
    lab, issued = revoked_microsoft
    assert post_form(lab, "/introspect", {"token": issued}).json() == {"active": False}


def test_revoke_grant_account_token_inactive(revoked_microsoft: tuple[Lab, str]) -> None:
    lab, _ = revoked_microsoft
    assert post_form(lab, "/introspect", {"token": ACCOUNT_TOKEN}).json() == {"active": False}


def test_revoke_grant_tokeninfo_invalid(revoked_microsoft: tuple[Lab, str]) -> None:
    lab, issued = revoked_microsoft
    body = post_form(lab, "/tokeninfo", {"access_token": issued}).json()
    assert body["error"] == "invalid_token"


def test_revoke_grant_flag(revoked_microsoft: tuple[Lab, str]) -> None:
    lab, _ = revoked_microsoft
    assert lab.server.endpoint.grant_revoked is True


def test_revoke_grant_account_rejects_own_token(revoked_microsoft: tuple[Lab, str]) -> None:
    lab, _ = revoked_microsoft
    assert lab.account.accepts(LAB_USER, ACCOUNT_TOKEN) is False


def test_revoke_grant_client_credentials_still_issue(
    revoked_microsoft: tuple[Lab, str],
) -> None:
    # Revoking a user's grant leaves the application's own credentials valid.
    lab, _ = revoked_microsoft
    assert post_form(lab, "/token", lab.client_credentials_fields()).status == 200


def test_revoke_grant_google_reply(start_lab: LabFactory) -> None:
    options = TokenEndpointOptions(provider=TokenProvider.GOOGLE, token_format=TokenFormat.OPAQUE)
    with start_lab(options) as lab:
        lab.server.revoke_grant()
        reply = post_form(lab, "/token", lab.refresh_fields())
    assert (reply.status, reply.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    )


def test_account_accepts_before_revocation(microsoft: Lab) -> None:
    assert microsoft.account.accepts(LAB_USER, ACCOUNT_TOKEN) is True


INTROSPECTION_DOWN = RecordedReply(status=500, body='{"error": "server_error"}')


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(ACCOUNT_TOKEN, id="account-token"),
        pytest.param("ya29.unknown-token", id="unknown-token"),
    ],
)
def test_introspection_reply_replaces_every_answer(start_lab: LabFactory, token: str) -> None:
    with start_lab(TokenEndpointOptions(introspection_reply=INTROSPECTION_DOWN)) as lab:
        reply = post_form(lab, "/introspect", {"token": token})
    assert (reply.status, reply.json()) == (500, {"error": "server_error"})


def test_introspection_reply_leaves_token_route(start_lab: LabFactory) -> None:
    with start_lab(TokenEndpointOptions(introspection_reply=INTROSPECTION_DOWN)) as lab:
        reply = post_form(lab, "/token", lab.refresh_fields())
    assert reply.status == 200


def test_introspect_dovecot_form(microsoft: Lab) -> None:
    # Dovecot 2.3's oauth2 passdb posts the token with empty client fields.
    fields = {"token": ACCOUNT_TOKEN, "client_id": "", "client_secret": ""}
    body = post_form(microsoft, "/introspect", fields).json()
    assert (body["active"], body["username"]) == (True, LAB_USER)
