"""The ``clock`` check: measure the local clock's offset and relate it to token validity.

Sources, the most precise one wins: the configured NTP servers (queried in order until one
replies), the token endpoint's HTTP ``Date`` header recorded by the token check, and server
times in SMTP replies recorded by the connect check (greeting) and the auth check (final
reply). There is no default NTP server, so without ``ntp_servers`` only the fallbacks count.
All times are compared in UTC and read from ``ctx.now()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from smtpdiag.clock.kinds import (
    CLOCK_FINDINGS,
    NO_TIME_SOURCE,
    NTP_NOT_CONFIGURED,
    NTP_UNREACHABLE,
    SKEW,
    SKEW_EXCEEDS_REFRESH_MARGIN,
    TOKEN_EXPIRED_AT_SERVER,
    TOKEN_EXPIRED_LOCALLY,
    TOKEN_ISSUED_IN_FUTURE,
)
from smtpdiag.clock.ntp import NtpResult, query_ntp, server_label
from smtpdiag.clock.sources import (
    ClockSource,
    OffsetEstimate,
    best_estimate,
    http_date_estimate,
    ntp_estimate,
    smtp_reply_estimate,
)
from smtpdiag.clock.symptoms import SYMPTOM_FINDINGS
from smtpdiag.context import CheckContext, Target
from smtpdiag.models import CheckResult, Finding, Severity
from smtpdiag.oauth.model import ACCESS_TOKEN_OUTPUT, AccessToken
from smtpdiag.spec import CheckSpec

CHECK_ID = "clock"

TOKEN_CLAIM_TOLERANCE_SECONDS = 1.0
"""Gap between a token's ``iat``/``nbf`` and the local time that is not reported: JWT times
are whole seconds, so a synchronised clock can be up to one second behind them."""

MIN_QUERY_SECONDS = 0.1
"""Time left before the check's deadline below which no further NTP server is queried."""

_SOURCE_NAMES = {
    ClockSource.NTP: "NTP",
    ClockSource.HTTP_DATE: "the token endpoint's HTTP Date header",
    ClockSource.SMTP_REPLY: "a server time in an SMTP reply",
}

# Origins of SMTP server times: (upstream check id, the reply in words).
_SMTP_TIME_SOURCES = (("auth", "the AUTH reply"), ("connect", "the greeting"))


@dataclass(frozen=True)
class Thresholds:
    """Offsets at which the check warns or reports critical, and the token refresh margin."""

    warning_seconds: float = 5.0
    critical_seconds: float = 60.0
    refresh_margin_seconds: float = 300.0


def run(target: Target, ctx: CheckContext) -> CheckResult:
    """Query the NTP servers, collect the fallback sources and evaluate them."""
    settings = ctx.settings
    ntp_results = _query_servers(settings.ntp_servers, settings.ntp_port, ctx)
    fallbacks, facts = fallback_estimates(ctx.upstream)
    thresholds = Thresholds(
        settings.clock_warning_seconds,
        settings.clock_critical_seconds,
        target.oauth.refresh_margin,
    )
    return evaluate(ntp_results, fallbacks, thresholds, ctx.now(), _access_token(ctx), facts)


def _query_servers(servers: Sequence[str], port: int, ctx: CheckContext) -> list[NtpResult]:
    """Query ``servers`` in order until one gives an offset; return every result."""
    results: list[NtpResult] = []
    for host in servers:
        if ctx.remaining() < MIN_QUERY_SECONDS:
            reason = "not queried: the check's deadline was reached"
            results.append(NtpResult(server_label(host, port), ctx.now(), error=reason))
            continue
        result = query_ntp(host, port, ctx.io_timeout(), ctx.now)
        results.append(result)
        if result.ok:
            break
    return results


def _access_token(ctx: CheckContext) -> AccessToken | None:
    upstream = ctx.upstream.get("token")
    token = upstream.outputs.get(ACCESS_TOKEN_OUTPUT) if upstream is not None else None
    return token if isinstance(token, AccessToken) else None


def fallback_estimates(
    upstream: Mapping[str, CheckResult],
) -> tuple[list[OffsetEstimate], dict[str, Any]]:
    """Return the estimates from the token, auth and connect checks' facts, and the facts
    that name their raw values (``server_date``, ``server_timestamp``)."""
    estimates: list[OffsetEstimate] = []
    facts: dict[str, Any] = {}
    token = upstream.get("token")
    if token is not None:
        date_offset = _number(token.facts.get("server_date_offset_seconds"))
        latency = _number(token.facts.get("latency_seconds"))
        if date_offset is not None and latency is not None:
            endpoint = token.facts.get("token_endpoint", "the token endpoint")
            origin = f"the Date header of {endpoint}"
            estimates.append(http_date_estimate(date_offset, latency, origin))
            facts["server_date"] = token.facts.get("server_date")
    for check_id, reply in _SMTP_TIME_SOURCES:
        result = upstream.get(check_id)
        if result is None:
            continue
        timestamp = result.facts.get("server_timestamp")
        received_at = _datetime(result.facts.get("server_timestamp_received_at"))
        if not isinstance(timestamp, str) or received_at is None:
            continue
        estimate = smtp_reply_estimate(timestamp, received_at, f"{reply} of the SMTP server")
        if estimate is not None:
            estimates.append(estimate)
            facts.setdefault("server_timestamp", timestamp)
    return estimates, facts


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def evaluate(
    ntp_results: Sequence[NtpResult],
    fallbacks: Sequence[OffsetEstimate],
    thresholds: Thresholds,
    now: datetime,
    token: AccessToken | None = None,
    source_facts: Mapping[str, Any] | None = None,
) -> CheckResult:
    """Turn measured offsets, thresholds and token claims into the check result.

    Pure: ``now`` is the local wall-clock time (UTC) at which token claims are judged.
    """
    answered = next((result for result in ntp_results if result.ok), None)
    estimates = [*fallbacks]
    if answered is not None:
        ntp = ntp_estimate(answered)
        assert ntp is not None
        estimates.insert(0, ntp)
    best = best_estimate(estimates)
    facts = _facts(ntp_results, answered, estimates, best, source_facts or {})

    findings: list[Finding] = []
    if ntp_results and answered is None:
        findings.append(_ntp_unreachable(ntp_results, best, facts))
    if best is None:
        findings.append(_no_time_source(bool(ntp_results), facts))
        return CheckResult.from_findings(
            CHECK_ID, "clock offset not measured: no time source", _ordered(findings), facts
        )
    if not ntp_results:
        findings.append(NTP_NOT_CONFIGURED.make(facts=facts, details=_details(best)))
    findings += _skew_findings(best, thresholds, facts)
    if token is not None:
        findings += _token_findings(token, best, now, facts)
    return CheckResult.from_findings(CHECK_ID, _summary(best), _ordered(findings), facts)


def _facts(
    ntp_results: Sequence[NtpResult],
    answered: NtpResult | None,
    estimates: Sequence[OffsetEstimate],
    best: OffsetEstimate | None,
    source_facts: Mapping[str, Any],
) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if best is not None:
        facts["clock_offset_seconds"] = round(best.offset_seconds, 3)
        facts["clock_source"] = best.source.value
        facts["clock_precision_seconds"] = round(best.precision_seconds, 3)
        facts["clock_reference"] = best.origin
    facts["clock_sources"] = [
        {
            "source": estimate.source.value,
            "offset_seconds": round(estimate.offset_seconds, 3),
            "precision_seconds": round(estimate.precision_seconds, 3),
            "reference": estimate.origin,
        }
        for estimate in estimates
    ]
    if answered is not None:
        facts["ntp_server"] = answered.server
        facts["ntp_delay_seconds"] = round(answered.delay_seconds or 0.0, 6)
        facts["ntp_stratum"] = answered.stratum
    errors = [f"{result.server}: {result.error}" for result in ntp_results if result.error]
    if errors:
        facts["ntp_error"] = "; ".join(errors)
    facts.update({key: value for key, value in source_facts.items() if value is not None})
    return facts


def _seconds(value: float) -> str:
    """Format seconds for a message: at most three decimals, no trailing zeros, no ``-0``."""
    return f"{round(value, 3) + 0.0:g}"


def _precision(value: float) -> str:
    """Format a precision, keeping one significant digit below a millisecond."""
    return f"{value:.1g}" if 0 < value < 0.0005 else _seconds(value)


def _details(estimate: OffsetEstimate) -> dict[str, str]:
    return {
        "amount": _seconds(abs(estimate.offset_seconds)),
        "direction": "ahead of" if estimate.offset_seconds > 0 else "behind",
        "origin": estimate.origin,
        "source_name": _SOURCE_NAMES[estimate.source],
        "precision": _precision(estimate.precision_seconds),
    }


def _ntp_unreachable(
    ntp_results: Sequence[NtpResult], best: OffsetEstimate | None, facts: Mapping[str, Any]
) -> Finding:
    if best is None:
        fallback = "No other time source was available either, so the offset is unknown."
    else:
        fallback = (
            f"smtpdiag fell back to {best.origin} ({_SOURCE_NAMES[best.source]}, "
            f"precision ±{_precision(best.precision_seconds)} s)."
        )
    details = {
        "servers": ", ".join(result.server for result in ntp_results),
        "reasons": "; ".join(f"{result.server}: {result.error}" for result in ntp_results),
        "fallback": fallback,
    }
    return NTP_UNREACHABLE.make(facts=facts, details=details)


def _no_time_source(ntp_configured: bool, facts: Mapping[str, Any]) -> Finding:
    ntp = "No NTP server answered" if ntp_configured else "No NTP server is configured"
    return NO_TIME_SOURCE.make(facts=facts, details={"ntp": ntp})


def _skew_findings(
    best: OffsetEstimate, thresholds: Thresholds, facts: Mapping[str, Any]
) -> list[Finding]:
    findings: list[Finding] = []
    amount = abs(best.offset_seconds)
    details = _details(best)
    if amount >= thresholds.critical_seconds:
        limit = _seconds(thresholds.critical_seconds)
        threshold = {"threshold_name": "critical", "threshold": limit}
        findings.append(
            SKEW.make(facts=facts, details={**details, **threshold}, severity=Severity.CRITICAL)
        )
    elif amount >= thresholds.warning_seconds:
        limit = _seconds(thresholds.warning_seconds)
        threshold = {"threshold_name": "warning", "threshold": limit}
        findings.append(SKEW.make(facts=facts, details={**details, **threshold}))
    if amount > thresholds.refresh_margin_seconds:
        findings.append(_margin_finding(best, thresholds, details, facts))
    return findings


def _margin_finding(
    best: OffsetEstimate,
    thresholds: Thresholds,
    details: Mapping[str, str],
    facts: Mapping[str, Any],
) -> Finding:
    amount = details["amount"]
    if best.offset_seconds < 0:
        # Behind: the local clock reaches "expiry minus margin" after the real expiry.
        effect = (
            f"By the local clock a token still has time left when it has already expired, "
            f"so clients keep sending expired tokens for up to {amount} s minus the margin "
            "and AUTH fails until they refresh."
        )
        severity = Severity.CRITICAL
    else:
        effect = (
            f"Clients believe tokens expire {amount} s earlier than they do and refresh them "
            "early; once the offset exceeds a token's lifetime every new token looks expired, "
            "and assertions signed here are not yet valid at the server."
        )
        severity = Severity.WARNING
    margin = {"margin": _seconds(thresholds.refresh_margin_seconds), "effect": effect}
    return SKEW_EXCEEDS_REFRESH_MARGIN.make(
        facts=facts, details={**details, **margin}, severity=severity
    )


def _token_findings(
    token: AccessToken, best: OffsetEstimate | None, now: datetime, facts: Mapping[str, Any]
) -> list[Finding]:
    payload = token.claims.get("payload", {}) if token.claims is not None else {}
    if not isinstance(payload, Mapping):
        payload = {}
    findings: list[Finding] = []
    local_time = _iso(now)
    for claim in ("nbf", "iat"):
        claim_time = _claim_time(payload.get(claim))
        if claim_time is None:
            continue
        ahead = (claim_time - now).total_seconds()
        if ahead > TOKEN_CLAIM_TOLERANCE_SECONDS:
            details = {
                "claim": claim,
                "amount": _seconds(ahead),
                "claim_time": _iso(claim_time),
                "local_time": local_time,
            }
            findings.append(TOKEN_ISSUED_IN_FUTURE.make(facts=facts, details=details))
            break  # nbf and iat are usually equal; one finding names the gap

    exp = _claim_time(payload.get("exp"))
    if exp is not None and token.grant is not None and exp < now:
        # A grant's token was issued moments ago, so a past expiry means the clock is ahead.
        details = {
            "expires_at": _iso(exp),
            "amount": _seconds((now - exp).total_seconds()),
            "local_time": local_time,
        }
        findings.append(TOKEN_EXPIRED_LOCALLY.make(facts=facts, details=details))

    expires_at = exp or token.expires_at
    if best is not None and best.offset_seconds < 0 and expires_at is not None:
        remaining = (expires_at - now).total_seconds()
        if 0 < remaining < -best.offset_seconds:
            details = {**_details(best), "remaining": _seconds(remaining)}
            findings.append(TOKEN_EXPIRED_AT_SERVER.make(facts=facts, details=details))
    return findings


def _claim_time(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=value)
    except OverflowError:
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ordered(findings: list[Finding]) -> list[Finding]:
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(findings, key=lambda finding: order[finding.severity])


def _summary(best: OffsetEstimate) -> str:
    sign = "-" if round(best.offset_seconds, 3) < 0 else "+"
    return (
        f"local clock {sign}{_seconds(abs(best.offset_seconds))} s against {best.origin} "
        f"(±{_precision(best.precision_seconds)} s)"
    )


SPEC = CheckSpec(
    id=CHECK_ID,
    title="Local clock offset",
    run=run,
    findings=(*CLOCK_FINDINGS, *SYMPTOM_FINDINGS),
    follows=("connect", "token", "auth"),
)
