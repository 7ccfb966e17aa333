"""Finding kinds of the token check: codes, severities and placeholders."""

from __future__ import annotations

import string

import pytest

from smtpdiag.models import Severity
from smtpdiag.oauth.token_kinds import TOKEN_FINDINGS, TOKEN_KINDS
from smtpdiag.spec import FindingKind

EXPECTED_CODES = [
    "token.invalid_grant",
    "token.refresh_token_expired",
    "token.grant_revoked",
    "token.wrong_tenant",
    "token.consent_required",
    "token.signin_frequency",
    "token.code_reused",
    "token.not_a_refresh_token",
    "token.invalid_client",
    "token.client_secret_expired",
    "token.client_secret_missing",
    "token.unauthorized_client",
    "token.unsupported_grant_type",
    "token.invalid_request",
    "token.invalid_scope",
    "token.scope_multiple_resources",
    "token.scope_needs_default",
    "token.scope_missing_in_request",
    "token.error",
    "token.malformed_response",
    "token.endpoint_http_error",
    "token.endpoint_unreachable",
    "token.endpoint_tls",
    "token.command_failed",
    "token.command_output_invalid",
    "token.refresh_token_rotated",
    "token.cache_file_unsafe",
    "token.expires_soon",
]

# The placeholder names that the module docstring documents.
DOCUMENTED_PLACEHOLDERS = {
    "error_label",
    "provider_message",
    "cause_hint",
    "fix_hint",
    "http_status",
    "content_type",
    "problem",
    "endpoint",
    "host",
    "port",
    "reason",
    "stderr",
    "msmtp_outcome",
    "stored",
    "path",
    "mode",
    "expires_in",
    "margin",
}

# Kinds that the token check raises itself, with the exact placeholders its code fills.
CHECK_PLACEHOLDERS = {
    "token.endpoint_unreachable": {"endpoint", "reason", "cause_hint", "fix_hint"},
    "token.endpoint_tls": {"endpoint", "host", "port", "reason"},
    "token.command_failed": {"reason", "stderr", "msmtp_outcome", "fix_hint"},
    "token.command_output_invalid": {"problem", "fix_hint"},
    "token.refresh_token_rotated": {"stored"},
    "token.cache_file_unsafe": {"path", "mode"},
    "token.expires_soon": {"expires_in", "margin"},
}

SEVERITIES = {
    "token.refresh_token_rotated": Severity.INFO,
    "token.cache_file_unsafe": Severity.WARNING,
    "token.expires_soon": Severity.WARNING,
}


def placeholders(kind: FindingKind) -> set[str]:
    names: set[str] = set()
    for text in (kind.title, kind.cause, kind.fix):
        names |= {name for _, name, _, _ in string.Formatter().parse(text) if name}
    return names


def test_codes_in_catalog_order() -> None:
    assert [kind.code for kind in TOKEN_FINDINGS] == EXPECTED_CODES


def test_kinds_by_code() -> None:
    assert {kind.code: kind for kind in TOKEN_FINDINGS} == TOKEN_KINDS


@pytest.mark.parametrize("code", EXPECTED_CODES)
def test_severity(code: str) -> None:
    assert TOKEN_KINDS[code].severity is SEVERITIES.get(code, Severity.CRITICAL)


@pytest.mark.parametrize("code", EXPECTED_CODES)
def test_placeholders_documented(code: str) -> None:
    assert placeholders(TOKEN_KINDS[code]) - DOCUMENTED_PLACEHOLDERS == set()


@pytest.mark.parametrize("code", sorted(CHECK_PLACEHOLDERS))
def test_check_kind_placeholders(code: str) -> None:
    assert placeholders(TOKEN_KINDS[code]) == CHECK_PLACEHOLDERS[code]


@pytest.mark.parametrize("code", EXPECTED_CODES)
def test_title_one_short_line(code: str) -> None:
    title = TOKEN_KINDS[code].title
    assert "\n" not in title
    assert len(title) <= 100


@pytest.mark.parametrize("code", EXPECTED_CODES)
def test_filled_text_has_no_braces(code: str) -> None:
    details = {name: f"<{name}>" for name in DOCUMENTED_PLACEHOLDERS}
    finding = TOKEN_KINDS[code].make(details=details)
    for text in (finding.title, finding.cause, finding.fix):
        assert "{" not in text
        assert "}" not in text


@pytest.mark.parametrize("code", EXPECTED_CODES)
def test_docs_page(code: str) -> None:
    assert TOKEN_KINDS[code].make().docs == "docs/checks/token.md"


def test_command_failed_filled() -> None:
    finding = TOKEN_KINDS["token.command_failed"].make(
        details={
            "reason": "exited with status 1",
            "stderr": "; it wrote to stderr: invalid_grant",
            "msmtp_outcome": "msmtp would fail too.",
        }
    )
    assert finding.title == "The token command failed: exited with status 1"
    assert (
        "exited with status 1; it wrote to stderr: invalid_grant. msmtp would fail too."
        in finding.cause
    )


def test_command_failed_without_stderr() -> None:
    finding = TOKEN_KINDS["token.command_failed"].make(
        details={"reason": "timed out after 10 s", "msmtp_outcome": "msmtp would hang."}
    )
    assert finding.cause.startswith(
        "The command that prints the access token timed out after 10 s. msmtp would hang."
    )


def test_command_output_invalid_filled() -> None:
    finding = TOKEN_KINDS["token.command_output_invalid"].make(
        details={"problem": "printed 3 lines"}
    )
    assert finding.title == "The token command's output is not a bare token: it printed 3 lines"


def test_cache_file_unsafe_filled() -> None:
    finding = TOKEN_KINDS["token.cache_file_unsafe"].make(
        details={"path": "/var/cache/smtpdiag/token", "mode": "0644"}
    )
    assert "chmod 600 /var/cache/smtpdiag/token" in finding.fix


def test_expires_soon_filled() -> None:
    finding = TOKEN_KINDS["token.expires_soon"].make(details={"expires_in": 120, "margin": 300})
    assert finding.title == "The new access token expires in 120 s"


def test_rotated_says_persist() -> None:
    fix = TOKEN_KINDS["token.refresh_token_rotated"].fix
    assert "write it back to the refresh-token file" in fix


def test_grant_revoked_cause_names_reasons() -> None:
    cause = TOKEN_KINDS["token.grant_revoked"].cause
    for reason in ("password", "revoked", "6 months", "100", "Testing status"):
        assert reason in cause


def test_refresh_token_expired_fix_says_reauthorize() -> None:
    fix = TOKEN_KINDS["token.refresh_token_expired"].fix
    assert "Re-authorize once" in fix
    assert "write back every new refresh token" in fix
