"""Pure judgement of a ``TlsMeasurement``: facts, findings and the check result."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smtpdiag.errors import escape_bytes
from smtpdiag.models import CheckResult, Finding, Severity
from smtpdiag.tls import kinds
from smtpdiag.tls.certificate import CertificateInfo, iso_utc
from smtpdiag.tls.model import Handshake, Problem, TlsMeasurement, VerifyError
from smtpdiag.tls.verify_errors import DATE_CODES, MISSING_ISSUER_CODES

CHECK_ID = "tls"
OUTDATED_VERSIONS = frozenset({"SSLv3", "TLSv1", "TLSv1.1"})
"""Protocol names, as OpenSSL gives them, that RFC 8996 deprecates."""


@dataclass(frozen=True)
class Thresholds:
    """Days before a certificate's notAfter at which the check warns and turns critical."""

    warning_days: int = 21
    critical_days: int = 7


def evaluate(
    measurement: TlsMeasurement,
    now: datetime,
    thresholds: Thresholds,
    *,
    insecure: bool = False,
) -> CheckResult:
    """Turn a measurement into the check result; no I/O, so tests feed measurements."""
    base = _base_facts(measurement, insecure)
    disabled = [kinds.VERIFICATION_DISABLED.make(facts=base)] if insecure else []
    handshake = measurement.handshake
    if handshake is None:
        return _failed(measurement, base, disabled)
    facts = {**base, **handshake_facts(handshake, now)}
    facts.update(_comparison_facts(measurement))
    evidence = measurement.transcript[-20:]
    details = _details(measurement, handshake, facts, thresholds)
    findings = [
        kind.make(facts=facts, evidence=evidence, details=details, severity=severity)
        for kind, severity in _judge(measurement, handshake, now, thresholds)
    ] + disabled
    findings.sort(key=lambda finding: finding.severity is not Severity.CRITICAL)
    return CheckResult.from_findings(CHECK_ID, _summary(handshake, findings), findings, facts)


def handshake_facts(handshake: Handshake, now: datetime) -> dict[str, Any]:
    """Return the documented facts of one handshake."""
    leaf = handshake.leaf
    first_error = _chain_errors(handshake)[:1] or list(handshake.verify_errors[:1])
    return {
        "tls_version": handshake.version,
        "tls_cipher": handshake.cipher,
        "sni": handshake.sni,
        "subject": leaf.subject,
        "sans": leaf.sans,
        "issuer": leaf.issuer,
        "cert_not_before": iso_utc(leaf.not_before),
        "cert_not_after": iso_utc(leaf.not_after),
        # Truncated toward zero: a certificate that ended 25 hours ago is -1 day, not -2.
        "days_left": int((leaf.not_after - now).total_seconds() / 86400),
        "chain": [certificate.chain_entry() for certificate in handshake.chain],
        "verify_error": first_error[0].message if first_error else None,
        "verify_error_code": first_error[0].code if first_error else None,
        "verify_error_depth": first_error[0].depth if first_error else None,
        "missing_issuer": leaf.issuer if _missing_intermediate(handshake) else None,
        "leaf_fingerprint_sha256": leaf.fingerprint,
    }


def _base_facts(measurement: TlsMeasurement, insecure: bool) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "address": measurement.address,
        "port": measurement.port,
        "tls_mode": "implicit" if measurement.implicit_tls else "starttls",
        "host": measurement.expected_name,
        "insecure": insecure,
        "openssl_command": openssl_command(measurement),
    }
    if measurement.problem is not None:
        facts["stage"] = measurement.stage.value
        facts["error"] = measurement.error
        facts["handshake_state"] = measurement.handshake_state or None
    if measurement.reply is not None:
        facts.update(measurement.reply.facts())
    return facts


def openssl_command(measurement: TlsMeasurement) -> str:
    """Return the ``openssl s_client`` command that repeats the handshake by hand."""
    parts = ["openssl s_client"]
    if not measurement.implicit_tls:
        parts.append("-starttls smtp")
    parts.append(f"-connect {_endpoint(measurement)}")
    no_sni = measurement.handshake is not None and measurement.handshake.sni is None
    if no_sni and not _looks_like_ip(measurement.expected_name):
        # s_client would send the host name; the checked handshake sent none (OpenSSL 1.1.1+).
        parts.append("-noservername")
    else:
        sni = measurement.handshake.sni if measurement.handshake else None
        name = sni or measurement.expected_name
        if not _looks_like_ip(name):
            parts.append(f"-servername {name}")
    parts.append("-showcerts")
    return " ".join(parts)


def _failed(
    measurement: TlsMeasurement, facts: dict[str, Any], disabled: list[Finding]
) -> CheckResult:
    """Build the result of a measurement without a completed handshake."""
    if measurement.problem is Problem.NOT_REACHED or measurement.problem is None:
        return CheckResult.unknown(
            CHECK_ID,
            f"the session did not reach TLS ({measurement.error} during "
            f"{measurement.stage.phrase}; the connect check has the details)",
            facts,
        )
    kind = {
        Problem.STARTTLS_NOT_OFFERED: kinds.STARTTLS_REFUSED,
        Problem.STARTTLS_REFUSED: kinds.STARTTLS_REFUSED,
        Problem.WRONG_MODE: kinds.WRONG_MODE,
        Problem.HANDSHAKE_FAILED: kinds.HANDSHAKE_FAILED,
    }[measurement.problem]
    evidence = list(measurement.transcript[-20:])
    if measurement.received:
        evidence.append(f"S (instead of TLS): {escape_bytes(measurement.received, 120)}")
    details = {
        "endpoint": _endpoint(measurement),
        "error": measurement.error,
        "state": measurement.handshake_state or measurement.stage.phrase,
    }
    finding = kind.make(facts=facts, evidence=evidence, details=details)
    return CheckResult.from_findings(CHECK_ID, finding.title, [finding, *disabled], facts)


def _judge(
    measurement: TlsMeasurement, handshake: Handshake, now: datetime, thresholds: Thresholds
) -> list[tuple[Any, Severity | None]]:
    """Return the kinds that apply, each with a severity override or None."""
    found: list[tuple[Any, Severity | None]] = []
    if handshake.version in OUTDATED_VERSIONS:
        found.append((kinds.PROTOCOL_OUTDATED, None))
    found += _judge_dates(handshake.leaf, now, thresholds)
    found += _judge_name(measurement, handshake)
    if _missing_intermediate(handshake):
        found.append((kinds.MISSING_INTERMEDIATE, None))
    elif _chain_errors(handshake):
        found.append((kinds.UNTRUSTED, None))
    return found


def _judge_dates(
    leaf: CertificateInfo, now: datetime, thresholds: Thresholds
) -> list[tuple[Any, Severity | None]]:
    if now >= leaf.not_after:
        return [(kinds.CERT_EXPIRED, None)]
    if now < leaf.not_before:
        return [(kinds.CERT_NOT_YET_VALID, None)]
    days_left = (leaf.not_after - now).total_seconds() / 86400
    if days_left < thresholds.critical_days:
        return [(kinds.CERT_EXPIRING_SOON, Severity.CRITICAL)]
    if days_left < thresholds.warning_days:
        return [(kinds.CERT_EXPIRING_SOON, None)]
    return []


def _judge_name(
    measurement: TlsMeasurement, handshake: Handshake
) -> list[tuple[Any, Severity | None]]:
    """Judge the host name, using the comparison handshake to tell an SNI problem apart."""
    host = measurement.expected_name
    alternate = measurement.alternate
    changed = alternate is not None and alternate.leaf.fingerprint != handshake.leaf.fingerprint
    if handshake.leaf.covers(host):
        if alternate is not None and changed and not alternate.leaf.covers(host):
            # The configured SNI works, but clients that send none (or another name) fail.
            return [(kinds.SNI_REQUIRED, None)]
        return []
    if alternate is not None and changed and alternate.leaf.covers(host):
        return [(kinds.SNI_REQUIRED, None)]
    return [(kinds.HOSTNAME_MISMATCH, None)]


def _chain_errors(handshake: Handshake) -> list[VerifyError]:
    """Verify errors about trust; the leaf's own dates are judged against the clock."""
    return [
        error
        for error in handshake.verify_errors
        if not (error.code in DATE_CODES and error.depth == 0)
    ]


def _missing_intermediate(handshake: Handshake) -> bool:
    """Return whether the server left out the certificate that issued its leaf.

    It is left out when the leaf is not self-issued, no certificate sent has the leaf's issuer as
    subject, and OpenSSL found no issuer for the leaf in its trust store either.
    """
    leaf = handshake.leaf
    if leaf.self_issued:
        return False
    if any(certificate.subject == leaf.issuer for certificate in handshake.chain[1:]):
        return False
    return any(
        error.code in MISSING_ISSUER_CODES and error.depth == 0 for error in handshake.verify_errors
    )


def _comparison_facts(measurement: TlsMeasurement) -> dict[str, Any]:
    alternate = measurement.alternate
    handshake = measurement.handshake
    if alternate is None or handshake is None:
        return {"sni_changes_certificate": None}
    return {
        "sni_changes_certificate": alternate.leaf.fingerprint != handshake.leaf.fingerprint,
        "comparison_sni": alternate.sni,
        "comparison_sans": alternate.leaf.sans,
    }


def _details(
    measurement: TlsMeasurement,
    handshake: Handshake,
    facts: dict[str, Any],
    thresholds: Thresholds,
) -> dict[str, Any]:
    errors = _chain_errors(handshake)
    alternate = measurement.alternate
    names = ", ".join(handshake.leaf.sans) or f"no subject alternative names ({facts['subject']})"
    return {
        "endpoint": _endpoint(measurement),
        "host": measurement.expected_name,
        "names": names,
        "tls_version": handshake.version,
        "not_after": facts["cert_not_after"],
        "not_before": facts["cert_not_before"],
        "days_left": facts["days_left"],
        "threshold": (
            thresholds.critical_days
            if facts["days_left"] < thresholds.critical_days
            else thresholds.warning_days
        ),
        "verify_error": errors[0].message if errors else "",
        "depth": errors[0].depth if errors else "",
        "subject": errors[0].subject if errors else "",
        "missing_issuer": handshake.leaf.issuer,
        "other_sni": f"SNI {alternate.sni}" if alternate and alternate.sni else "no SNI",
        "other_names": ", ".join(alternate.leaf.sans) if alternate else "",
    }


def _summary(handshake: Handshake, findings: list[Finding]) -> str:
    serious = [finding for finding in findings if finding.severity is not Severity.INFO]
    if serious:
        return serious[0].title
    names = ", ".join(handshake.leaf.sans)
    return f"{handshake.version} {handshake.cipher}, certificate for {names}"


def _endpoint(measurement: TlsMeasurement) -> str:
    address = measurement.address
    return f"[{address}]:{measurement.port}" if ":" in address else f"{address}:{measurement.port}"


def _looks_like_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
