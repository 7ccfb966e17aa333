"""The ``clock`` check: measure the local clock's offset and relate it to token validity.

The most precise source wins. The configured NTP servers are queried in order until one
replies. The fallbacks are the token endpoint's HTTP ``Date`` header recorded by the token
check, and server times in SMTP replies recorded by the connect check (greeting) and the
auth check (final reply). There is no default NTP server, so without ``ntp_servers``
only the fallbacks count. A fallback that is off by a time zone offset is reported and left
out. All times are compared in UTC and read from ``ctx.now()``.
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
    SERVER_TIME_ZONE_SUSPECT,
    SKEW,
    SKEW_EXCEEDS_REFRESH_MARGIN,
    SYNC_FIX,
    SYNC_FIX_SEE_SKEW,
    TOKEN_EXPIRED_AT_SERVER,
    TOKEN_EXPIRED_LOCALLY,
    TOKEN_ISSUED_IN_FUTURE,
)
from smtpdiag.clock.ntp import NtpFailure, NtpResult, query_ntp, server_label
from smtpdiag.clock.sources import (
    MIN_PRECISION_SECONDS,
    ZONE_TOLERANCE_SECONDS,
    ClockSource,
    OffsetEstimate,
    best_estimate,
    http_date_estimate,
    ntp_estimate,
    smtp_reply_estimate,
    zone_shift_seconds,
)
from smtpdiag.clock.symptom_kinds import SYMPTOM_FINDINGS
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

_DISPLAY_DECIMALS = {ClockSource.NTP: 3, ClockSource.HTTP_DATE: 1, ClockSource.SMTP_REPLY: 1}
"""Decimals shown per source: NTP measures milliseconds, the others whole seconds at best."""

DISAGREEMENT_FACTOR = 3.0
"""A fallback disagrees with NTP when the offsets differ by more than this many times the sum
of both precisions."""

NTP_PORT = 123
"""Standard NTP port (RFC 5905), the default of ``ntp_port``."""

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
    token = _access_token(ctx)
    return evaluate(ntp_results, fallbacks, thresholds, ctx.now(), token, facts, settings.ntp_port)


def _query_servers(servers: Sequence[str], port: int, ctx: CheckContext) -> list[NtpResult]:
    """Query ``servers`` in order until one gives an offset; return every result."""
    results: list[NtpResult] = []
    for host in servers:
        if ctx.remaining() < MIN_QUERY_SECONDS:
            reason = "not queried: the check's deadline was reached"
            label = server_label(host, port)
            failure = NtpFailure.NO_REPLY
            results.append(NtpResult(label, ctx.now(), error=reason, failure=failure))
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
    ntp_port: int = NTP_PORT,
) -> CheckResult:
    """Turn measured offsets, thresholds and token claims into the check result.

    Pure: ``now`` is the local wall-clock time (UTC) at which token claims are judged, and
    ``ntp_port`` is the port that the NTP advice names.
    """
    answered = next((result for result in ntp_results if result.ok), None)
    ntp = ntp_estimate(answered) if answered is not None else None
    estimates = [*fallbacks] if ntp is None else [ntp, *fallbacks]
    suspects = _zone_suspects(fallbacks, ntp)
    best = best_estimate(estimate for estimate in estimates if estimate not in suspects)
    facts = _facts(ntp_results, answered, estimates, best, source_facts or {})
    facts.update(_comparison_facts(fallbacks, ntp, suspects))

    findings: list[Finding] = []
    if ntp_results and answered is None:
        findings.append(_ntp_unreachable(ntp_results, best, ntp_port, facts))
    for estimate, shift in suspects.items():
        findings.append(_zone_suspect(estimate, shift, ntp, bool(ntp_results), facts))
    if best is None:
        findings.append(_no_time_source(bool(ntp_results), bool(suspects), facts))
        return CheckResult.from_findings(
            CHECK_ID, "clock offset not measured: no time source", _ordered(findings), facts
        )
    if not ntp_results:
        findings.append(NTP_NOT_CONFIGURED.make(facts=facts, details=_details(best)))
    advice = _SyncAdvice()
    findings += _skew_findings(best, thresholds, facts, advice)
    if token is not None:
        findings += _token_findings(token, best, now, facts, advice)
    return CheckResult.from_findings(CHECK_ID, _summary(best), _ordered(findings), facts)


class _SyncAdvice:
    """The NTP advice: in full in the first finding that needs it, then a reference to it."""

    def __init__(self) -> None:
        self._first_code: str | None = None

    def text(self, code: str) -> str:
        if self._first_code is None:
            self._first_code = code
            return SYNC_FIX
        if self._first_code == SKEW.code:
            return SYNC_FIX_SEE_SKEW
        return f"Synchronise the clock with NTP as {self._first_code} describes."


def _zone_suspects(
    fallbacks: Sequence[OffsetEstimate], ntp: OffsetEstimate | None
) -> dict[OffsetEstimate, float]:
    """Return the fallbacks whose offset is a time zone offset, with that offset in seconds.

    A fallback that agrees with an NTP reply measures real skew and is no suspect.
    """
    suspects: dict[OffsetEstimate, float] = {}
    for estimate in fallbacks:
        shift = zone_shift_seconds(estimate)
        if shift is None:
            continue
        if ntp is not None and not _disagrees(estimate, ntp):
            continue
        suspects[estimate] = shift
    return suspects


def _disagrees(estimate: OffsetEstimate, ntp: OffsetEstimate) -> bool:
    difference = abs(estimate.offset_seconds - ntp.offset_seconds)
    return difference > DISAGREEMENT_FACTOR * (estimate.precision_seconds + ntp.precision_seconds)


def _comparison_facts(
    fallbacks: Sequence[OffsetEstimate],
    ntp: OffsetEstimate | None,
    suspects: Mapping[OffsetEstimate, float],
) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if suspects:
        facts["clock_zone_suspects"] = [estimate.origin for estimate in suspects]
    if ntp is None:
        return facts
    disagreements = [
        {
            "reference": estimate.origin,
            "difference_seconds": _rounded(estimate.offset_seconds - ntp.offset_seconds, 1),
            "ntp_reference": ntp.origin,
        }
        for estimate in fallbacks
        if _disagrees(estimate, ntp)
    ]
    if disagreements:
        facts["clock_source_disagreements"] = disagreements
    return facts


def _facts(
    ntp_results: Sequence[NtpResult],
    answered: NtpResult | None,
    estimates: Sequence[OffsetEstimate],
    best: OffsetEstimate | None,
    source_facts: Mapping[str, Any],
) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if best is not None:
        decimals = _DISPLAY_DECIMALS[best.source]
        facts["clock_offset_seconds"] = _rounded(best.offset_seconds, decimals)
        facts["clock_source"] = best.source.value
        facts["clock_precision_seconds"] = _precision_value(best.precision_seconds)
        facts["clock_offset_lower_bound_seconds"] = _rounded(_lower_bound(best), decimals)
        facts["clock_reference"] = best.origin
    facts["clock_sources"] = [
        {
            "source": estimate.source.value,
            "offset_seconds": _rounded(estimate.offset_seconds, _DISPLAY_DECIMALS[estimate.source]),
            "precision_seconds": _precision_value(estimate.precision_seconds),
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


def _rounded(value: float, decimals: int) -> float:
    """Round ``value``; adding 0.0 turns ``-0.0`` into ``0.0``."""
    return round(value, decimals) + 0.0


def _precision_value(value: float) -> float:
    return max(round(value, 3), MIN_PRECISION_SECONDS)


def _lower_bound(estimate: OffsetEstimate) -> float:
    """Return the smallest absolute offset that the estimate and its precision allow."""
    return max(0.0, abs(estimate.offset_seconds) - estimate.precision_seconds)


def _number_text(value: float, decimals: int) -> str:
    """Format a number with at most ``decimals`` decimals, no trailing zeros and no ``-0``."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _duration(seconds: float, decimals: int) -> str:
    """Format a duration as ``25199.3 s (7 h)``: seconds, and a larger unit from 2 minutes."""
    text = f"{_number_text(seconds, decimals)} s"
    amount = abs(seconds)
    for unit_seconds, unit in ((86400.0, "d"), (3600.0, "h"), (60.0, "min")):
        if amount >= 2 * unit_seconds:
            return f"{text} ({_number_text(seconds / unit_seconds, 1)} {unit})"
    return text


def _amount(estimate: OffsetEstimate) -> str:
    return _duration(abs(estimate.offset_seconds), _DISPLAY_DECIMALS[estimate.source])


def _precision(value: float) -> str:
    return _number_text(max(value, MIN_PRECISION_SECONDS), 3)


def _details(estimate: OffsetEstimate) -> dict[str, str]:
    return {
        "amount": _amount(estimate),
        "direction": "ahead of" if estimate.offset_seconds > 0 else "behind",
        "origin": estimate.origin,
        "source_name": _SOURCE_NAMES[estimate.source],
        "precision": _precision(estimate.precision_seconds),
        "lower_bound": _number_text(_lower_bound(estimate), _DISPLAY_DECIMALS[estimate.source]),
    }


def _zone_suspect(
    estimate: OffsetEstimate,
    shift: float,
    ntp: OffsetEstimate | None,
    ntp_configured: bool,
    facts: Mapping[str, Any],
) -> Finding:
    if ntp is not None:
        difference = _duration(estimate.offset_seconds - ntp.offset_seconds, 1)
        verdict = (
            f"{ntp.origin} measures the local clock at {_signed(ntp)}, so {estimate.origin} "
            f"is {difference} away from NTP time, far beyond both precisions: the server's "
            "time zone is wrong, not this machine's clock."
        )
        ntp_hint = ""
    elif ntp_configured:
        verdict = (
            "No NTP server gave a usable reply (clock.ntp_unreachable), so smtpdiag cannot "
            "tell which clock is wrong."
        )
        ntp_hint = "An NTP reply tells which clock is wrong."
    else:
        verdict = "Without an NTP reply smtpdiag cannot tell which clock is wrong."
        ntp_hint = "Pass --ntp-server HOST to tell which clock is wrong."
    details = {
        "origin": estimate.origin,
        "amount": _amount(estimate),
        "tolerance": _number_text(ZONE_TOLERANCE_SECONDS + estimate.precision_seconds, 1),
        "shift": _zone_text(shift),
        "verdict": verdict,
        "ntp_hint": ntp_hint,
    }
    return SERVER_TIME_ZONE_SUSPECT.make(facts=facts, details=details)


def _signed(estimate: OffsetEstimate) -> str:
    decimals = _DISPLAY_DECIMALS[estimate.source]
    sign = "-" if _rounded(estimate.offset_seconds, decimals) < 0 else "+"
    return f"{sign}{_amount(estimate)}"


def _zone_text(shift: float) -> str:
    """Format a zone-sized difference in seconds as ``7 h`` or ``5 h 45 min``."""
    minutes = round(abs(shift) / 60)
    hours, rest = divmod(minutes, 60)
    if hours == 0:
        return f"{rest} min"
    return f"{hours} h" if rest == 0 else f"{hours} h {rest} min"


# Title, cause and fix of clock.ntp_unreachable for each kind of failure.
_NTP_FAILURE_TEXT: Mapping[NtpFailure, tuple[str, str, str]] = {
    NtpFailure.NO_REPLY: (
        "no reply",
        "Firewalls often block outgoing UDP port {port}.",
        "Open UDP port {port} towards the NTP server, or configure one that this host can "
        "reach (--ntp-server, ntp_servers); the host's NTP client needs the same path.",
    ),
    NtpFailure.UNRESOLVED: (
        "name not resolved",
        "The NTP server's host name has no address in DNS.",
        "Check the spelling of the NTP server's name, or configure its IP address.",
    ),
    NtpFailure.KISS_OF_DEATH: (
        "kiss-o'-death reply",
        "A kiss-o'-death reply (stratum 0) is the server's request to back off: code RATE "
        "means this host queries too often, DENY and RSTR mean the server denies it access.",
        "Back off: query that server less often (the host's NTP client and smtpdiag share "
        "its rate limit), or configure another NTP server.",
    ),
    NtpFailure.UNSYNCHRONISED: (
        "server not synchronised",
        "A server that sends leap indicator 3 or stratum 16 does not know the time itself, so "
        "its time cannot be used.",
        "Choose another NTP server, or fix the synchronisation of that server first.",
    ),
    NtpFailure.INVALID_REPLY: (
        "invalid reply",
        "The reply on UDP port {port} is not an NTP server reply to this request, so the "
        "service on that port is probably not an NTP server.",
        "Check the NTP server's address and ntp_port ({port}), and that an NTP server "
        "listens there.",
    ),
}


def _ntp_unreachable(
    ntp_results: Sequence[NtpResult],
    best: OffsetEstimate | None,
    port: int,
    facts: Mapping[str, Any],
) -> Finding:
    if best is None:
        fallback = "No other time source was available either, so the offset is unknown."
    else:
        fallback = (
            f"smtpdiag fell back to {best.origin} ({_SOURCE_NAMES[best.source]}, "
            f"precision ±{_precision(best.precision_seconds)} s)."
        )
    failures = list(dict.fromkeys(result.failure or NtpFailure.NO_REPLY for result in ntp_results))
    texts = [_NTP_FAILURE_TEXT[failure] for failure in failures]
    failure = texts[0][0] if len(texts) == 1 else "several reasons"
    details = {
        "failure": failure,
        "servers": ", ".join(result.server for result in ntp_results),
        "reasons": "; ".join(f"{result.server}: {result.error}" for result in ntp_results),
        "explanation": " ".join(text[1] for text in texts).format(port=port),
        "fix": " ".join(text[2] for text in texts).format(port=port),
        "fallback": fallback,
    }
    return NTP_UNREACHABLE.make(facts=facts, details=details)


def _no_time_source(ntp_configured: bool, zone_suspects: bool, facts: Mapping[str, Any]) -> Finding:
    if ntp_configured:
        ntp = "No NTP server gave a usable reply"
        ntp_fix = "Make a configured NTP server usable (see clock.ntp_unreachable)."
    else:
        ntp = "No NTP server is configured"
        ntp_fix = "Pass --ntp-server HOST (or set ntp_servers)."
    if zone_suspects:
        fallbacks = (
            "the server times found are off by a time zone offset (clock.server_time_zone_suspect)"
        )
    else:
        fallbacks = (
            "the token check recorded no HTTP Date header and no SMTP reply carried a server time"
        )
    details = {"ntp": ntp, "ntp_fix": ntp_fix, "fallbacks": fallbacks}
    return NO_TIME_SOURCE.make(facts=facts, details=details)


def _skew_findings(
    best: OffsetEstimate,
    thresholds: Thresholds,
    facts: Mapping[str, Any],
    advice: _SyncAdvice,
) -> list[Finding]:
    """Compare the smallest offset that the precision allows with the thresholds."""
    findings: list[Finding] = []
    # Rounded so that 5.001 ± 0.001 reaches a 5 s threshold despite binary floating point.
    lower_bound = round(_lower_bound(best), 6)
    details = _details(best)
    if lower_bound >= thresholds.critical_seconds:
        limit = _number_text(thresholds.critical_seconds, 3)
        threshold = {"threshold_name": "critical", "threshold": limit}
        finding = SKEW.make(
            facts=facts, details={**details, **threshold}, severity=Severity.CRITICAL
        )
        advice.text(SKEW.code)
        findings.append(finding)
    elif lower_bound >= thresholds.warning_seconds:
        limit = _number_text(thresholds.warning_seconds, 3)
        threshold = {"threshold_name": "warning", "threshold": limit}
        advice.text(SKEW.code)
        findings.append(SKEW.make(facts=facts, details={**details, **threshold}))
    if lower_bound > thresholds.refresh_margin_seconds:
        findings.append(_margin_finding(best, thresholds, details, facts, advice))
    return findings


def _margin_finding(
    best: OffsetEstimate,
    thresholds: Thresholds,
    details: Mapping[str, str],
    facts: Mapping[str, Any],
    advice: _SyncAdvice,
) -> Finding:
    amount = details["amount"]
    if best.offset_seconds < 0:
        # Behind: the local clock reaches "expiry minus margin" after the real expiry.
        effect = (
            f"By the local clock a token still has time left when it has already expired, "
            f"so clients keep sending expired tokens for up to {amount} minus the margin "
            "and AUTH fails until they refresh."
        )
        severity = Severity.CRITICAL
    else:
        effect = (
            f"Clients believe tokens expire {amount} earlier than they do and refresh them "
            "early; once the offset exceeds a token's lifetime every new token looks expired, "
            "and assertions signed here are not yet valid at the server."
        )
        severity = Severity.WARNING
    extra = {
        "margin": _number_text(thresholds.refresh_margin_seconds, 3),
        "effect": effect,
        "sync_fix": advice.text(SKEW_EXCEEDS_REFRESH_MARGIN.code),
    }
    return SKEW_EXCEEDS_REFRESH_MARGIN.make(
        facts=facts, details={**details, **extra}, severity=severity
    )


def _token_findings(
    token: AccessToken,
    best: OffsetEstimate | None,
    now: datetime,
    facts: Mapping[str, Any],
    advice: _SyncAdvice,
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
                # JWT times have one-second resolution, so decimals would only vary run to run.
                "amount": _duration(ahead, 0),
                "claim_time": _iso(claim_time),
                "local_time": local_time,
                "sync_fix": advice.text(TOKEN_ISSUED_IN_FUTURE.code),
            }
            findings.append(TOKEN_ISSUED_IN_FUTURE.make(facts=facts, details=details))
            break  # nbf and iat are usually equal; one finding names the gap

    exp = _claim_time(payload.get("exp"))
    if exp is not None and token.grant is not None and exp < now:
        # A grant's token was issued moments ago, so a past expiry means the clock is ahead.
        details = {
            "expires_at": _iso(exp),
            "amount": _duration((now - exp).total_seconds(), 0),
            "local_time": local_time,
            "sync_fix": advice.text(TOKEN_EXPIRED_LOCALLY.code),
        }
        findings.append(TOKEN_EXPIRED_LOCALLY.make(facts=facts, details=details))

    expires_at = exp or token.expires_at
    if best is not None and best.offset_seconds < 0 and expires_at is not None:
        remaining = (expires_at - now).total_seconds()
        if 0 < remaining < -best.offset_seconds:
            details = {
                **_details(best),
                "remaining": _duration(remaining, 0),
                "sync_fix": advice.text(TOKEN_EXPIRED_AT_SERVER.code),
            }
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
    return (
        f"local clock {_signed(best)} against {best.origin} "
        f"(±{_precision(best.precision_seconds)} s)"
    )


SPEC = CheckSpec(
    id=CHECK_ID,
    title="Local clock offset",
    run=run,
    findings=(*CLOCK_FINDINGS, *SYMPTOM_FINDINGS),
    follows=("connect", "token", "auth"),
)
