"""Pure evaluation of TLS measurements: findings and facts without network."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from smtpdiag.models import Severity, Status
from smtpdiag.smtp.probe import Stage
from smtpdiag.smtp.reply import Reply
from smtpdiag.tls.certificate import CertificateInfo
from smtpdiag.tls.evaluate import Thresholds, evaluate, openssl_command
from smtpdiag.tls.model import Handshake, Problem, TlsMeasurement, VerifyError
from smtpdiag.tls.verify_errors import (
    DEPTH_ZERO_SELF_SIGNED_CERT,
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
    UNABLE_TO_VERIFY_LEAF_SIGNATURE,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
HOST = "smtp.example.com"
INTERMEDIATE = "CN=Example Intermediate,O=Example"
LEAF = CertificateInfo(
    subject=f"CN={HOST}",
    issuer=INTERMEDIATE,
    dns_names=(HOST,),
    ip_addresses=(),
    not_before=NOW - timedelta(days=30),
    not_after=NOW + timedelta(days=60),
    fingerprint="aa" * 32,
)
INTERMEDIATE_CERT = replace(
    LEAF,
    subject=INTERMEDIATE,
    issuer="CN=Example Root,O=Example",
    dns_names=(),
    fingerprint="bb" * 32,
)
OTHER_LEAF = replace(
    LEAF,
    subject="CN=default.example.net",
    dns_names=("default.example.net",),
    fingerprint="cc" * 32,
)


def handshake(
    leaf: CertificateInfo = LEAF,
    *,
    chain: tuple[CertificateInfo, ...] | None = None,
    errors: tuple[VerifyError, ...] = (),
    version: str = "TLSv1.3",
    sni: str | None = HOST,
) -> Handshake:
    return Handshake(
        sni=sni,
        version=version,
        cipher="TLS_AES_256_GCM_SHA384",
        leaf=leaf,
        chain=chain if chain is not None else (leaf, INTERMEDIATE_CERT),
        verify_errors=errors,
    )


def measured(first: Handshake | None = None, alternate: Handshake | None = None) -> TlsMeasurement:
    return TlsMeasurement(
        address="192.0.2.10",
        port=587,
        implicit_tls=False,
        expected_name=HOST,
        handshake=first or handshake(),
        alternate=alternate,
    )


def error(code: int, depth: int, message: str = "error") -> VerifyError:
    return VerifyError(code, message, depth, "CN=x")


def expiring(days: float) -> Handshake:
    return handshake(replace(LEAF, not_after=NOW + timedelta(days=days)))


CASES = [
    pytest.param(measured(), [], id="healthy"),
    pytest.param(measured(handshake(version="TLSv1.1")), ["tls.protocol_outdated"], id="tls11"),
    pytest.param(measured(handshake(version="TLSv1")), ["tls.protocol_outdated"], id="tls10"),
    pytest.param(measured(expiring(-1)), ["tls.cert_expired"], id="expired"),
    pytest.param(measured(expiring(20)), ["tls.cert_expiring_soon"], id="20-days"),
    pytest.param(measured(expiring(22)), [], id="22-days"),
    pytest.param(
        measured(handshake(replace(LEAF, not_before=NOW + timedelta(hours=1)))),
        ["tls.cert_not_yet_valid"],
        id="not-yet-valid",
    ),
    pytest.param(
        measured(handshake(OTHER_LEAF)), ["tls.hostname_mismatch"], id="hostname-mismatch"
    ),
    pytest.param(
        measured(handshake(sni=None, leaf=OTHER_LEAF), alternate=handshake()),
        ["tls.sni_required"],
        id="sni-required-without-sni",
    ),
    pytest.param(
        measured(handshake(), alternate=handshake(OTHER_LEAF, sni=None)),
        ["tls.sni_required"],
        id="sni-required-with-sni",
    ),
    pytest.param(
        measured(handshake(), alternate=handshake(replace(LEAF, fingerprint="dd" * 32), sni=None)),
        [],
        id="other-leaf-same-names",
    ),
    pytest.param(
        measured(
            handshake(
                chain=(LEAF,),
                errors=(
                    error(UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0),
                    error(UNABLE_TO_VERIFY_LEAF_SIGNATURE, 0),
                ),
            )
        ),
        ["tls.missing_intermediate"],
        id="missing-intermediate",
    ),
    pytest.param(
        measured(handshake(errors=(error(UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 1),))),
        ["tls.untrusted"],
        id="unknown-root",
    ),
    pytest.param(
        measured(
            handshake(
                replace(LEAF, issuer=LEAF.subject),
                chain=(replace(LEAF, issuer=LEAF.subject),),
                errors=(error(DEPTH_ZERO_SELF_SIGNED_CERT, 0),),
            )
        ),
        ["tls.untrusted"],
        id="self-signed",
    ),
    pytest.param(
        measured(handshake(expiring(-1).leaf, errors=(error(10, 0),))),
        ["tls.cert_expired"],
        id="expired-leaf-not-untrusted",
    ),
    pytest.param(
        measured(handshake(errors=(error(10, 1),))),
        ["tls.untrusted"],
        id="expired-intermediate",
    ),
]


@pytest.mark.parametrize(("measurement", "expected"), CASES)
def test_evaluate_codes(measurement: TlsMeasurement, expected: list[str]) -> None:
    result = evaluate(measurement, NOW, Thresholds())
    assert [finding.code for finding in result.findings] == expected


SEVERITY_CASES = [
    pytest.param(20, Severity.WARNING, id="20-days-warning"),
    pytest.param(6.5, Severity.CRITICAL, id="6-days-critical"),
]


@pytest.mark.parametrize(("days", "severity"), SEVERITY_CASES)
def test_expiring_soon_severity(days: float, severity: Severity) -> None:
    result = evaluate(measured(expiring(days)), NOW, Thresholds())
    assert result.findings[0].severity is severity


def test_thresholds_are_configurable() -> None:
    result = evaluate(measured(expiring(40)), NOW, Thresholds(warning_days=45, critical_days=10))
    assert [finding.code for finding in result.findings] == ["tls.cert_expiring_soon"]


def test_insecure_adds_warning_and_keeps_severity() -> None:
    measurement = measured(handshake(errors=(error(UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 1),)))
    result = evaluate(measurement, NOW, Thresholds(), insecure=True)
    assert [finding.code for finding in result.findings] == [
        "tls.untrusted",
        "tls.verification_disabled",
    ]
    assert result.status is Status.CRITICAL


def test_hostname_mismatch_lists_names() -> None:
    result = evaluate(measured(handshake(OTHER_LEAF)), NOW, Thresholds())
    assert "default.example.net" in result.findings[0].cause


def test_facts_use_documented_names() -> None:
    facts = evaluate(measured(), NOW, Thresholds()).facts
    assert facts["cert_not_after"] == "2027-02-02T12:00:00Z"
    assert facts["days_left"] == 60
    assert facts["chain"] == [
        {"subject": LEAF.subject, "issuer": INTERMEDIATE},
        {"subject": INTERMEDIATE, "issuer": "CN=Example Root,O=Example"},
    ]
    assert facts["sni_changes_certificate"] is None


def test_missing_issuer_fact() -> None:
    measurement = measured(
        handshake(chain=(LEAF,), errors=(error(UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0),))
    )
    facts = evaluate(measurement, NOW, Thresholds()).facts
    assert facts["missing_issuer"] == INTERMEDIATE


FAILURE_CASES = [
    pytest.param(Problem.STARTTLS_REFUSED, "tls.starttls_refused", id="starttls-refused"),
    pytest.param(Problem.STARTTLS_NOT_OFFERED, "tls.starttls_refused", id="not-offered"),
    pytest.param(Problem.WRONG_MODE, "tls.wrong_mode", id="wrong-mode"),
    pytest.param(Problem.HANDSHAKE_FAILED, "tls.handshake_failed", id="handshake-failed"),
]


@pytest.mark.parametrize(("problem", "expected"), FAILURE_CASES)
def test_failure_codes(problem: Problem, expected: str) -> None:
    measurement = replace(
        measured(), handshake=None, problem=problem, stage=Stage.TLS_HANDSHAKE, error="x"
    )
    result = evaluate(measurement, NOW, Thresholds())
    assert [finding.code for finding in result.findings] == [expected]


def test_not_reached_is_unknown() -> None:
    reply = Reply(554, ("5.7.1 go away",), b"554 5.7.1 go away\r\n")
    measurement = replace(
        measured(), handshake=None, problem=Problem.NOT_REACHED, stage=Stage.GREETING, reply=reply
    )
    result = evaluate(measurement, NOW, Thresholds())
    assert result.status is Status.UNKNOWN


def test_handshake_failure_names_state() -> None:
    measurement = replace(
        measured(),
        handshake=None,
        problem=Problem.HANDSHAKE_FAILED,
        stage=Stage.TLS_HANDSHAKE,
        error="no response within 1 s",
        handshake_state="SSLv3/TLS write client hello",
    )
    result = evaluate(measurement, NOW, Thresholds())
    assert "SSLv3/TLS write client hello" in result.findings[0].title


OPENSSL_CASES = [
    pytest.param(
        measured(),
        "openssl s_client -starttls smtp -connect 192.0.2.10:587 -servername "
        "smtp.example.com -showcerts",
        id="starttls",
    ),
    pytest.param(
        replace(
            measured(),
            implicit_tls=True,
            port=465,
            address="2001:db8::1",
            expected_name="2001:db8::1",
            handshake=handshake(sni=None),
        ),
        "openssl s_client -connect [2001:db8::1]:465 -showcerts",
        id="implicit-ipv6",
    ),
]


@pytest.mark.parametrize(("measurement", "expected"), OPENSSL_CASES)
def test_openssl_command(measurement: TlsMeasurement, expected: str) -> None:
    assert openssl_command(measurement) == expected


def test_not_reached_names_stage_in_words() -> None:
    measurement = TlsMeasurement(
        "192.0.2.10",
        587,
        False,
        "smtp.example.com",
        problem=Problem.NOT_REACHED,
        stage=Stage.EHLO_AFTER_TLS,
        error="the server closed the connection",
    )
    result = evaluate(measurement, NOW, Thresholds())
    assert result.status is Status.UNKNOWN
    assert "during the EHLO after TLS;" in result.summary
    assert "ehlo_after_tls" not in result.summary
