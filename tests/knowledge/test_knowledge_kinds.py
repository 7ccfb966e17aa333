"""AUTH_FINDINGS: every required code exists once, with complete and fillable texts."""

from __future__ import annotations

import pytest

from smtpdiag.knowledge.kinds import AUTH_FINDINGS, DETAIL_FIELDS, KINDS_BY_CODE, placeholders
from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

REQUIRED = {
    "auth.accepted": Severity.INFO,
    "auth.token_missing": Severity.CRITICAL,
    "auth.token_rejected": Severity.CRITICAL,
    "auth.insufficient_scope": Severity.CRITICAL,
    "auth.invalid_request": Severity.CRITICAL,
    "auth.challenge_unanswered": Severity.WARNING,
    "auth.challenge_damaged": Severity.INFO,
    "auth.no_final_reply": Severity.CRITICAL,
    "auth.repeated_challenge": Severity.CRITICAL,
    "auth.response_missing_separators": Severity.CRITICAL,
    "auth.response_missing_bearer": Severity.CRITICAL,
    "auth.response_raw_token": Severity.CRITICAL,
    "auth.response_no_gs2_header": Severity.CRITICAL,
    "auth.response_user_instead_of_authzid": Severity.CRITICAL,
    "auth.response_whitespace_in_base64": Severity.WARNING,
    "auth.response_not_base64": Severity.CRITICAL,
    "auth.credentials_rejected": Severity.CRITICAL,
    "auth.app_password_required": Severity.CRITICAL,
    "auth.exchange_refused": Severity.CRITICAL,
    "auth.smtp_auth_disabled_tenant": Severity.CRITICAL,
    "auth.smtp_auth_disabled_mailbox": Severity.CRITICAL,
    "auth.security_defaults": Severity.CRITICAL,
    "auth.conditional_access": Severity.CRITICAL,
    "auth.basic_auth_disabled": Severity.CRITICAL,
    "auth.microsoft_auth_failed": Severity.CRITICAL,
    "auth.client_not_authenticated": Severity.CRITICAL,
    "auth.starttls_required": Severity.CRITICAL,
    "auth.authentication_required": Severity.CRITICAL,
    "auth.tls_required": Severity.CRITICAL,
    "auth.cannot_decode": Severity.CRITICAL,
    "auth.invalid_xoauth2_data": Severity.CRITICAL,
    "auth.token_expires_soon": Severity.CRITICAL,
    "auth.mechanism_unsupported": Severity.CRITICAL,
    "auth.temporary_failure": Severity.WARNING,
    "auth.local_error": Severity.WARNING,
    "auth.tls_version_refused": Severity.CRITICAL,
    "auth.line_too_long": Severity.CRITICAL,
    "auth.encryption_required": Severity.CRITICAL,
    "auth.send_as_denied": Severity.CRITICAL,
    "auth.unclassified": Severity.CRITICAL,
}

KIND_IDS = [kind.code for kind in AUTH_FINDINGS]


def test_codes_unique() -> None:
    assert len(KIND_IDS) == len(set(KIND_IDS))


def test_every_required_code_defined() -> None:
    assert sorted(set(REQUIRED) - set(KINDS_BY_CODE)) == []


def test_no_code_beyond_required() -> None:
    assert sorted(set(KINDS_BY_CODE) - set(REQUIRED)) == []


@pytest.mark.parametrize("code", sorted(REQUIRED))
def test_required_severity(code: str) -> None:
    assert KINDS_BY_CODE[code].severity is REQUIRED[code]


@pytest.mark.parametrize("kind", AUTH_FINDINGS, ids=KIND_IDS)
def test_code_in_auth_area(kind: FindingKind) -> None:
    assert kind.area == "auth"


@pytest.mark.parametrize("kind", AUTH_FINDINGS, ids=KIND_IDS)
def test_texts_not_empty(kind: FindingKind) -> None:
    assert kind.title.strip() != ""
    assert kind.cause.strip() != ""
    assert kind.fix.strip() != ""


@pytest.mark.parametrize("kind", AUTH_FINDINGS, ids=KIND_IDS)
def test_title_is_one_line(kind: FindingKind) -> None:
    assert "\n" not in kind.title


@pytest.mark.parametrize("kind", AUTH_FINDINGS, ids=KIND_IDS)
def test_placeholders_documented(kind: FindingKind) -> None:
    assert placeholders(kind) <= DETAIL_FIELDS


@pytest.mark.parametrize("kind", AUTH_FINDINGS, ids=KIND_IDS)
def test_kind_makes_finding_with_all_fields(kind: FindingKind) -> None:
    details = {name: f"<{name}>" for name in DETAIL_FIELDS}
    finding = kind.make(details=details)
    assert "{" not in finding.title + finding.cause + finding.fix


def test_order_is_stable() -> None:
    assert KIND_IDS[:3] == ["auth.token_missing", "auth.token_rejected", "auth.insufficient_scope"]


def test_placeholders_of_unclassified() -> None:
    assert placeholders(KINDS_BY_CODE["auth.unclassified"]) == {"reply"}
