"""Hand-built reports for the renderer tests, one per mix of check statuses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from smtpdiag.models import CheckResult, Finding, Report, Severity, Status

OUTLOOK_REJECTION = (
    "535 5.7.3 Authentication unsuccessful [BN0PR04CA0123.namprd04.prod.outlook.com]"
)

TARGET: dict[str, Any] = {
    "name": "relay",
    "host": "127.0.0.1",
    "port": 2525,
    "tls_mode": "starttls",
    "domain": None,
    "ca_file": None,
    "insecure": False,
    "user": "alerts@example.test",
    "access_token": "file:/run/credentials/smtpdiag/token",
}

STARTTLS_MISSING = Finding(
    code="connect.starttls_not_offered",
    severity=Severity.CRITICAL,
    title="STARTTLS not offered",
    cause="The server's EHLO reply lists no STARTTLS extension, so the client cannot encrypt.",
    fix="Enable STARTTLS on the submission port or connect to the implicit TLS port 465.",
    facts={"reply_code": 250, "tls_mode": "starttls"},
    evidence=(
        "S: 220 relay.example.test ESMTP",
        "C: EHLO localhost",
        "S: 250-relay.example.test",
        "S: 250 AUTH PLAIN LOGIN",
    ),
    docs="docs/checks/connect.md",
)

AUTH_REJECTED = Finding(
    code="auth.rejected",
    severity=Severity.CRITICAL,
    title="Server rejected the access token",
    cause="Exchange Online refused XOAUTH2 [auth] because SMTP AUTH is disabled for the mailbox.",
    fix=(
        "Enable authenticated SMTP for the mailbox "
        "[Set-CASMailbox -SmtpClientAuthenticationDisabled $false]."
    ),
    facts={
        "reply_code": 535,
        "enhanced_code": "5.7.3",
        "reply_text": "Authentication unsuccessful [BN0PR04CA0123.namprd04.prod.outlook.com]",
        "provider": "microsoft",
        "mechanism": "XOAUTH2",
    },
    evidence=("C: AUTH XOAUTH2 [REDACTED]", f"S: {OUTLOOK_REJECTION}"),
    docs="docs/checks/auth.md",
)

CERT_EXPIRING = Finding(
    code="tls.cert_expires_soon",
    severity=Severity.WARNING,
    title="Certificate expires in 9 days",
    cause="The server certificate is valid until 2026-05-01, within the 14-day warning window.",
    fix="Renew the certificate and reload the server before it expires.",
    facts={"cert_not_after": "2026-05-01T00:00:00Z", "tls_version": "TLSv1.3", "sni": "relay"},
)

TLS_VERSION = Finding(
    code="tls.version",
    severity=Severity.INFO,
    title="TLS 1.3 negotiated",
    cause="The server supports the current TLS version.",
    fix="Nothing to do.",
    facts={"tls_version": "TLSv1.3"},
)


def ok_check(check_id: str, findings: tuple[Finding, ...] = ()) -> CheckResult:
    """Build a passing check that took 12 ms."""
    return CheckResult(check_id, Status.OK, f"{check_id} passed", findings, {}, 0.012)


def make_report(*checks: CheckResult, target: Mapping[str, Any] | None = None) -> Report:
    """Build a report of ``checks`` against the loopback relay target."""
    return Report(
        version="0.1.0",
        target=dict(TARGET if target is None else target),
        started_at="2026-04-22T08:15:00Z",
        duration_seconds=1.25,
        checks=checks,
    )


TLS_WARNING = CheckResult(
    "tls", Status.WARNING, "certificate expires in 9 days", (CERT_EXPIRING, TLS_VERSION), {}, 0.2
)
CONNECT_CRITICAL = CheckResult(
    "connect",
    Status.CRITICAL,
    "STARTTLS not offered by 127.0.0.1:2525",
    (STARTTLS_MISSING,),
    {"reply_code": 250},
    0.034,
)
AUTH_CRITICAL = CheckResult(
    "auth", Status.CRITICAL, OUTLOOK_REJECTION, (AUTH_REJECTED,), {"reply_code": 535}, 0.5
)
CLOCK_UNKNOWN = CheckResult.unknown(
    "clock", "TimeoutError: no NTP reply within 10 s", {"error": "TimeoutError"}
)
TOKEN_SKIPPED = CheckResult.skipped("token", "no refresh token configured")
SCOPE_SKIPPED = CheckResult.skipped("scope", "no access token to inspect")


@dataclass(frozen=True)
class StatusMix:
    """A report with a given mix of check statuses and the run status it must have."""

    report: Report
    status: Status


STATUS_MIXES: dict[str, StatusMix] = {
    "all_ok": StatusMix(
        make_report(ok_check("dns"), ok_check("connect"), ok_check("tls", (TLS_VERSION,))),
        Status.OK,
    ),
    "warning": StatusMix(
        make_report(ok_check("dns"), TLS_WARNING, TOKEN_SKIPPED),
        Status.WARNING,
    ),
    "critical": StatusMix(
        make_report(ok_check("dns"), CONNECT_CRITICAL, TLS_WARNING, TOKEN_SKIPPED),
        Status.CRITICAL,
    ),
    "unknown": StatusMix(
        make_report(ok_check("dns"), TLS_WARNING, CLOCK_UNKNOWN),
        Status.UNKNOWN,
    ),
    "critical_and_unknown": StatusMix(
        make_report(CLOCK_UNKNOWN, AUTH_CRITICAL, CONNECT_CRITICAL),
        Status.CRITICAL,
    ),
    "skipped_only": StatusMix(make_report(TOKEN_SKIPPED, SCOPE_SKIPPED), Status.SKIPPED),
    "no_checks": StatusMix(make_report(), Status.SKIPPED),
}


@pytest.fixture(params=sorted(STATUS_MIXES), ids=str)
def status_mix(request: pytest.FixtureRequest) -> StatusMix:
    """Each status mix in turn."""
    return STATUS_MIXES[request.param]


@pytest.fixture
def critical_report() -> Report:
    """A report with critical, warning, ok and skipped checks and findings of every severity."""
    return STATUS_MIXES["critical"].report


@pytest.fixture
def report_factory() -> Callable[..., Report]:
    """The function that builds a report of given checks against the relay target."""
    return make_report


@pytest.fixture
def auth_report() -> Report:
    """A report whose AUTH check failed with a Microsoft 535 reply that contains brackets."""
    return make_report(ok_check("connect"), AUTH_CRITICAL)


@pytest.fixture
def outlook_rejection() -> str:
    """The Microsoft 535 reply text used by ``auth_report``."""
    return OUTLOOK_REJECTION


@pytest.fixture
def status_mixes() -> dict[str, StatusMix]:
    """Every status mix by name."""
    return STATUS_MIXES
