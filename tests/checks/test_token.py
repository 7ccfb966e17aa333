"""token check: every source, the endpoint's replies, the cache, and that no secret leaks."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from checks import REGISTRY
from checks import auth as auth_check
from checks import token as token_check
from smtpdiag.context import CheckContext, OAuthSettings, Settings, Target, TlsMode
from smtpdiag.models import CheckResult, Report, Severity, Status
from smtpdiag.oauth.cache import TokenCache
from smtpdiag.oauth.model import ACCESS_TOKEN_OUTPUT, AccessToken, Grant
from smtpdiag.redact import redact_data, redact_report
from smtpdiag.render.json_report import render_json
from smtpdiag.secrets import Secret

REFRESH = "0.AXoA-refresh-token-canary-1234567890"
CLIENT_SECRET = "client~secret~canary~1234567890"
ACCESS = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJodHRwczovL291dGxvb2sub2ZmaWNlLmNvbSJ9.c2lnbmF0dXJl"
NEW_REFRESH = "0.AXoA-rotated-refresh-canary-0987654321"

Respond = Callable[[dict[str, list[str]]], tuple[int, str, bytes]]


@dataclass
class Endpoint:
    url: str
    requests: list[dict[str, list[str]]] = field(default_factory=list)


@contextmanager
def token_endpoint(respond: Respond) -> Iterator[Endpoint]:
    """Serve a token endpoint on http://127.0.0.1 that replies with ``respond(form)``."""
    endpoint = Endpoint("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            endpoint.requests.append(form)
            status, content_type, body = respond(form)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/oauth2/v2.0/token"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


def success(**extra: object) -> Respond:
    body = {
        "token_type": "Bearer",
        "scope": "https://outlook.office.com/SMTP.Send",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": ACCESS,
        **extra,
    }
    return lambda form: (200, "application/json; charset=utf-8", json.dumps(body).encode())


def fixed(status: int, body: bytes, content_type: str = "application/json") -> Respond:
    return lambda form: (status, content_type, body)


def target(url: str | None = None, **oauth: object) -> Target:
    settings: dict[str, object] = {
        "provider": "microsoft",
        "client_id": "00000000-0000-0000-0000-00000000c1d0",
        "client_secret": Secret(CLIENT_SECRET, "test"),
        "refresh_token": Secret(REFRESH, "test"),
        "token_endpoint": url,
        **oauth,
    }
    return Target(
        host="127.0.0.1",
        port=587,
        tls_mode=TlsMode.STARTTLS,
        user="lab.user@example.com",
        oauth=OAuthSettings(**settings),  # type: ignore[arg-type]
    )


def run(target: Target, cache: TokenCache | None = None) -> CheckResult:
    ctx = CheckContext(settings=Settings(timeout=2), token_cache=cache)
    return token_check.run(target, ctx)


def codes(result: CheckResult) -> list[str]:
    return [finding.code for finding in result.findings]


def assert_no_secret(result: CheckResult) -> None:
    text = json.dumps(redact_data(result.to_dict()))
    for secret in (REFRESH, CLIENT_SECRET, ACCESS, NEW_REFRESH):
        assert secret not in text


def test_registered_between_tls_and_auth() -> None:
    ids = [spec.id for spec in REGISTRY]
    assert ids.index("token") < ids.index("auth")
    assert "token" in auth_check.SPEC.requires


def test_skipped_without_any_source() -> None:
    result = run(Target(host="x", port=587, tls_mode=TlsMode.STARTTLS))
    assert result.status is Status.SKIPPED
    assert "--refresh-token-file" in result.summary
    assert "--token-command" in result.summary


def test_refresh_grant_form_and_output() -> None:
    with token_endpoint(success()) as endpoint:
        result = run(target(endpoint.url))
    assert result.status is Status.OK, result.findings
    assert endpoint.requests == [
        {
            "grant_type": ["refresh_token"],
            "client_id": ["00000000-0000-0000-0000-00000000c1d0"],
            "client_secret": [CLIENT_SECRET],
            "refresh_token": [REFRESH],
            "scope": ["https://outlook.office.com/SMTP.Send offline_access"],
        }
    ]
    token = result.outputs[ACCESS_TOKEN_OUTPUT]
    assert isinstance(token, AccessToken)
    assert token.value.reveal() == ACCESS
    assert token.grant is Grant.REFRESH_TOKEN
    assert token.scopes == ("https://outlook.office.com/SMTP.Send",)
    assert result.facts["http_status"] == 200
    assert result.facts["expires_in"] == 3599
    assert result.facts["scopes"] == ["https://outlook.office.com/SMTP.Send"]
    assert result.facts["token_kind"] == "jwt"
    assert result.facts["jwt"]["payload"] == {"aud": "https://outlook.office.com"}
    assert result.facts["refresh_token_rotated"] is False
    assert "server_date" in result.facts
    assert abs(result.facts["server_date_offset_seconds"]) < 5
    assert_no_secret(result)


def test_client_credentials_use_the_app_scope() -> None:
    with token_endpoint(success()) as endpoint:
        result = run(target(endpoint.url, refresh_token=None))
    assert result.status is Status.OK
    assert endpoint.requests[0]["grant_type"] == ["client_credentials"]
    assert endpoint.requests[0]["scope"] == ["https://outlook.office365.com/.default"]
    assert "refresh_token" not in endpoint.requests[0]


def test_rotated_refresh_token_is_reported_and_hidden() -> None:
    with token_endpoint(success(refresh_token=NEW_REFRESH)) as endpoint:
        result = run(target(endpoint.url))
    assert codes(result) == ["token.refresh_token_rotated"]
    assert result.findings[0].severity is Severity.INFO
    assert result.status is Status.OK
    assert result.facts["refresh_token_rotated"] is True
    assert_no_secret(result)


def test_same_refresh_token_back_is_no_rotation() -> None:
    with token_endpoint(success(refresh_token=REFRESH)) as endpoint:
        result = run(target(endpoint.url))
    assert codes(result) == []
    assert result.facts["refresh_token_rotated"] is False


def test_short_lifetime_warns() -> None:
    respond = success()

    def short(form: dict[str, list[str]]) -> tuple[int, str, bytes]:
        status, content_type, body = respond(form)
        data = json.loads(body)
        data["expires_in"] = 120
        return status, content_type, json.dumps(data).encode()

    with token_endpoint(short) as endpoint:
        result = run(target(endpoint.url))
    assert codes(result) == ["token.expires_soon"]
    assert "120" in result.findings[0].title + result.findings[0].cause


# Shape of Microsoft identity platform error replies; ids and times are placeholders.
AADSTS700082 = json.dumps(
    {
        "error": "invalid_grant",
        "error_description": (
            "AADSTS700082: The refresh token has expired due to inactivity. The token was "
            "issued on 2022-01-03T09:39:41.5631952Z and was inactive for 90.00:00:00. "
            "Trace ID: 00000000-0000-0000-0000-000000000001 Correlation ID: "
            "00000000-0000-0000-0000-000000000002 Timestamp: 2026-12-04 10:00:00Z"
        ),
        "error_codes": [700082],
        "timestamp": "2026-12-04 10:00:00Z",
        "trace_id": "00000000-0000-0000-0000-000000000001",
        "correlation_id": "00000000-0000-0000-0000-000000000002",
        "error_uri": "https://login.microsoftonline.com/error?code=700082",
    }
).encode()


@pytest.mark.parametrize(
    ("provider", "status", "content_type", "body", "code"),
    [
        ("microsoft", 400, "application/json", AADSTS700082, "token.refresh_token_expired"),
        (
            "google",
            400,
            "application/json",
            b'{"error": "invalid_grant", '
            b'"error_description": "Token has been expired or revoked."}',
            "token.grant_revoked",
        ),
        (
            "microsoft",
            502,
            "text/html",
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            "token.malformed_response",
        ),
        (
            "generic",
            200,
            "application/json",
            b'{"token_type": "Bearer"}',
            "token.malformed_response",
        ),
        ("generic", 404, "text/html", b"<html>Not Found</html>", "token.endpoint_http_error"),
    ],
)
def test_endpoint_refusals(
    provider: str, status: int, content_type: str, body: bytes, code: str
) -> None:
    with token_endpoint(fixed(status, body, content_type)) as endpoint:
        result = run(target(endpoint.url, provider=provider))
    assert codes(result)[0] == code
    assert result.status is Status.CRITICAL
    assert result.findings[0].facts["http_status"] == status
    assert ACCESS_TOKEN_OUTPUT not in result.outputs
    assert_no_secret(result)


def test_aadsts_facts() -> None:
    with token_endpoint(fixed(400, AADSTS700082)) as endpoint:
        result = run(target(endpoint.url))
    facts = result.findings[0].facts
    assert facts["oauth_error"] == "invalid_grant"
    assert facts["provider_error_code"] == "AADSTS700082"
    assert facts["trace_id"] == "00000000-0000-0000-0000-000000000001"
    assert facts["token_endpoint"] == endpoint.url


def test_unreachable_endpoint() -> None:
    with token_endpoint(success()) as endpoint:
        url = endpoint.url
    result = run(target(url))
    assert codes(result) == ["token.endpoint_unreachable"]
    assert "refused" in result.findings[0].title + result.findings[0].cause


def test_untrusted_certificate_is_a_tls_finding(tmp_path: Path) -> None:
    from smtpdiag.lab.runner import start_lab
    from smtpdiag.lab.scenarios import get_scenario

    with start_lab(get_scenario("token-healthy")) as info:
        other = tmp_path / "ca"
        other.mkdir()
        from smtpdiag.lab.certs import write_certificates

        write_certificates(other)
        result = run(target(info.token_endpoint, token_ca_file=str(other / "ca.pem")))
    assert codes(result) == ["token.endpoint_tls"]
    assert "certificate verification failed" in result.findings[0].facts.get(
        "reason", result.findings[0].cause + result.findings[0].title
    )


def test_memory_cache_saves_the_second_request() -> None:
    cache = TokenCache()
    with token_endpoint(success()) as endpoint:
        first = run(target(endpoint.url), cache)
        second = run(target(endpoint.url), cache)
    assert len(endpoint.requests) == 1
    assert first.facts.get("cached") is None
    assert second.facts["cached"] is True
    assert second.outputs[ACCESS_TOKEN_OUTPUT].value.reveal() == ACCESS


def test_cache_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "token-cache.json"
    with token_endpoint(success()) as endpoint:
        run(target(endpoint.url, token_cache_file=str(path)))
        second = run(target(endpoint.url, token_cache_file=str(path)))
    assert len(endpoint.requests) == 1
    assert second.facts["cached"] is True
    assert path.stat().st_mode & 0o777 == 0o600


def test_unsafe_cache_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "token-cache.json"
    path.write_text("{}")
    path.chmod(0o644)
    with token_endpoint(success()) as endpoint:
        result = run(target(endpoint.url, token_cache_file=str(path)))
    # Reading and writing the file are both refused; the finding is reported once.
    assert codes(result) == ["token.cache_file_unsafe"]
    assert result.status is Status.WARNING
    assert path.read_text() == "{}"
    assert ACCESS_TOKEN_OUTPUT in result.outputs


def command_target(command: str) -> Target:
    return Target(
        host="x",
        port=587,
        tls_mode=TlsMode.STARTTLS,
        oauth=OAuthSettings(token_command=command),
    )


def test_token_command_good() -> None:
    result = run(command_target(f"printf '%s\\n' '{ACCESS}'"))
    assert result.status is Status.OK
    assert result.outputs[ACCESS_TOKEN_OUTPUT].value.reveal() == ACCESS
    assert result.facts["source"] == "token command"
    assert result.facts["token_kind"] == "jwt"


def test_token_command_bearer_prefix_is_critical() -> None:
    result = run(command_target(f"echo 'Bearer {ACCESS}'"))
    assert codes(result) == ["token.command_output_invalid"]
    assert result.status is Status.CRITICAL
    assert "Bearer" in result.findings[0].title + result.findings[0].cause
    assert_no_secret(result)


def test_token_command_printing_the_idp_error() -> None:
    result = run(command_target(f"echo '{AADSTS700082.decode()}'"))
    assert codes(result) == ["token.refresh_token_expired", "token.command_output_invalid"]


def test_token_command_second_line_warns_but_token_passes() -> None:
    result = run(command_target(f"echo {ACCESS}; echo done"))
    assert codes(result) == ["token.command_output_invalid"]
    assert result.status is Status.WARNING
    assert ACCESS_TOKEN_OUTPUT in result.outputs


def test_token_command_stderr_is_redacted() -> None:
    # Configuration loads the client secret before any check runs, which registers it.
    Secret(CLIENT_SECRET, "test")
    result = run(command_target(f"echo 'using {CLIENT_SECRET}' >&2; exit 2"))
    assert CLIENT_SECRET not in json.dumps(result.to_dict())
    assert codes(result) == ["token.command_failed"]
    assert_no_secret(result)


def command_report(command: str) -> str:
    """Run the token check with ``command`` and return its redacted JSON report."""
    report = Report(
        "0.1.0",
        {"host": "x", "access_token": "none"},
        "2026-12-04T10:00:00Z",
        0.0,
        (run(command_target(command)),),
    )
    return render_json(redact_report(report))


# An error body as Google's token endpoint returns it for a revoked refresh token. Its
# access_token member is a canary, which no real error body carries.
GOOGLE_ERROR_WITH_CANARY = json.dumps(
    {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
        "access_token": "ya29.canary-in-error-body-0123456789abcdef",
    }
)


def test_token_command_error_body_keeps_words_readable() -> None:
    text = command_report(f"echo '{GOOGLE_ERROR_WITH_CANARY}'; exit 1")
    assert "ya29.canary-in-error-body-0123456789abcdef" not in text
    assert '"oauth_error": "invalid_grant"' in text
    assert '"oauth_error_description": "Token has been expired or revoked."' in text
    assert "jq -r .access_token" in text
    assert '"access_token": "none"' in text
    assert "(invalid_grant)" in text


def test_token_command_canary_on_first_line_is_masked() -> None:
    canary = "opaque-canary-token-value"
    text = command_report(f"echo '\"{canary}\"'; echo '{GOOGLE_ERROR_WITH_CANARY}' >&2")
    assert canary not in text
    assert "jq -r .access_token" in text
    assert "invalid_grant" in text


def test_token_command_error_body_then_log_line() -> None:
    result = run(command_target(f"echo '{AADSTS700082.decode()}'; echo 'refresh failed'; exit 1"))
    assert codes(result) == [
        "token.refresh_token_expired",
        "token.command_failed",
        "token.command_output_invalid",
    ]
    assert result.summary == (
        "the token command printed the identity provider's error invalid_grant"
    )


def test_token_command_error_code_in_stderr_text() -> None:
    stderr = "HTTP 400 invalid_grant: AADSTS50173: The provided grant has expired due to it"
    result = run(command_target(f"echo '{stderr} being revoked.' >&2; exit 1"))
    assert codes(result) == ["token.grant_revoked", "token.command_failed"]
    assert result.findings[0].facts["provider_error_code"] == "AADSTS50173"


def test_token_command_error_body_on_stderr() -> None:
    result = run(command_target(f"echo '{AADSTS700082.decode()}' >&2; exit 1"))
    assert codes(result) == ["token.refresh_token_expired", "token.command_failed"]
    assert result.status is Status.CRITICAL
    assert result.findings[0].facts["provider_error_code"] == "AADSTS700082"
    assert result.summary == (
        "the token command wrote the identity provider's error invalid_grant to stderr"
    )


def test_token_command_stderr_error_body_secret_is_masked() -> None:
    refresh = "1//0gStderrRefreshCanary"
    body = json.dumps({"error": "invalid_grant", "refresh_token": refresh})
    text = command_report(f"echo 'refresh: {body}' >&2; exit 1")
    assert refresh not in text
    assert '"oauth_error": "invalid_grant"' in text


def test_token_command_stderr_error_after_token_warns() -> None:
    result = run(command_target(f"echo {ACCESS}; echo '{AADSTS700082.decode()}' >&2"))
    assert codes(result) == ["token.refresh_token_expired"]
    assert result.findings[0].severity is Severity.WARNING
    assert ACCESS_TOKEN_OUTPUT in result.outputs


def test_token_command_double_quotes_is_critical() -> None:
    result = run(command_target(f"echo '\"{ACCESS}\"'"))
    assert codes(result) == ["token.command_output_invalid"]
    assert result.status is Status.CRITICAL
    assert result.findings[0].title.endswith("it printed the token in double quotes")
    assert "jq -r .access_token, not jq .access_token" in result.findings[0].fix
    assert_no_secret(result)


def test_token_command_huge_output_is_critical() -> None:
    result = run(command_target("head -c 100000 /dev/zero | tr '\\0' a"))
    assert codes(result) == ["token.command_output_invalid"]
    assert result.status is Status.CRITICAL
    assert "printed more than 64 KiB" in result.findings[0].title
    assert ACCESS_TOKEN_OUTPUT not in result.outputs


@pytest.mark.parametrize(
    ("command", "severity", "expected", "unexpected"),
    [
        ("exit 3", Severity.CRITICAL, 'fails too, with "cannot read output of"', "anyway"),
        (f"echo {ACCESS}; exit 1", Severity.WARNING, "sends the token it printed anyway", "fails"),
        ("sleep 30", Severity.CRITICAL, "without a time limit, so the mail hangs", "fails"),
    ],
    ids=["no-output", "token-printed", "timeout"],
)
def test_token_command_failed_cause_states_msmtp(
    command: str, severity: Severity, expected: str, unexpected: str
) -> None:
    ctx = CheckContext(settings=Settings(timeout=0.5))
    result = token_check.run(command_target(command), ctx)
    finding = result.findings[0]
    assert finding.code == "token.command_failed"
    assert finding.severity is severity
    assert expected in finding.cause
    assert unexpected not in finding.cause
    assert "Without its token there is nothing to send" not in finding.cause
    assert "sudo -u <user> <command>" in finding.fix


def test_access_token_file_source() -> None:
    plain = Target(
        host="x",
        port=587,
        tls_mode=TlsMode.STARTTLS,
        access_token=Secret("ya29.plain-access-token-value", "file /run/token"),
    )
    result = run(plain)
    assert result.status is Status.OK
    assert result.summary == "access token from file /run/token"
    assert result.facts["token_kind"] == "opaque"
    assert result.outputs[ACCESS_TOKEN_OUTPUT].value.reveal() == "ya29.plain-access-token-value"


def test_jwt_file_token_expiry_from_exp() -> None:
    # {"alg":"none"} . {"exp": 1796378400} (2026-12-04T10:00:00Z)
    jwt = "eyJhbGciOiJub25lIn0.eyJleHAiOiAxNzk2Mzc4NDAwfQ.c2ln"
    plain = Target(host="x", port=587, tls_mode=TlsMode.STARTTLS, access_token=Secret(jwt, "t"))
    result = run(plain)
    assert result.outputs[ACCESS_TOKEN_OUTPUT].expires_at == datetime(
        2026, 12, 4, 10, 0, tzinfo=UTC
    )
    assert result.facts["expires_at"] == "2026-12-04T10:00:00Z"


def test_auth_takes_the_token_from_the_token_check() -> None:
    token = AccessToken(value=Secret("ya29.from-token-check-value", "t"), source="t")
    upstream = CheckResult.from_findings("token", "ok", outputs={ACCESS_TOKEN_OUTPUT: token})
    ctx = CheckContext(settings=Settings(), upstream={"token": upstream})
    plain = Target(host="x", port=587, tls_mode=TlsMode.STARTTLS, access_token=None)
    assert auth_check._access_token(plain, ctx) == token.value
    failed = CheckResult.from_findings("token", "refused")
    assert auth_check._access_token(plain, CheckContext(Settings(), {"token": failed})) is None
    own = Secret("ya29.target-own-token-value", "t")
    with_own = Target(host="x", port=587, tls_mode=TlsMode.STARTTLS, access_token=own)
    assert auth_check._access_token(with_own, CheckContext(Settings())) == own


def test_rotated_refresh_token_written_back(tmp_path: Path) -> None:
    path = tmp_path / "refresh-token"
    path.write_text(REFRESH + "\n")
    path.chmod(0o600)
    with token_endpoint(success(refresh_token=NEW_REFRESH)) as endpoint:
        result = run(
            target(endpoint.url, refresh_token_file=str(path), write_back_refresh_token=True)
        )
    assert path.read_text() == NEW_REFRESH + "\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert result.facts["refresh_token_written"] is True
    assert f"stored the new one in {path}" in result.findings[0].cause
    assert_no_secret(result)


def test_rotated_refresh_token_kept_without_write_back(tmp_path: Path) -> None:
    path = tmp_path / "refresh-token"
    path.write_text(REFRESH + "\n")
    with token_endpoint(success(refresh_token=NEW_REFRESH)) as endpoint:
        result = run(target(endpoint.url, refresh_token_file=str(path)))
    assert path.read_text() == REFRESH + "\n"
    assert "did not store the new one" in result.findings[0].cause
    assert "refresh_token_written" not in result.facts


def test_write_back_failure_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "refresh-token"
    with token_endpoint(success(refresh_token=NEW_REFRESH)) as endpoint:
        result = run(
            target(endpoint.url, refresh_token_file=str(missing), write_back_refresh_token=True)
        )
    assert result.facts["refresh_token_written"] is False
    assert "could not store the new one" in result.findings[0].cause
