"""decode: TLS and certificate error messages of the common TLS libraries and clients."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from smtpdiag.cli import main
from smtpdiag.decode.detect import decode_text
from smtpdiag.decode.result import InputKind
from smtpdiag.models import Finding, Status

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "smtpdiag.decode-1.schema.json").read_text())

# OpenSSL 3 when the peer replies to a ClientHello with plaintext, e.g. an SMTP greeting.
OPENSSL_WRONG_VERSION = "error:0A00010B:SSL routines::wrong version number"
PYTHON_HOSTNAME = (
    "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
    "Hostname mismatch, certificate is not valid for 'smtp.example.com'. (_ssl.c:1006)"
)
# The same message as Python 3.11 prints it for the other verification errors.
PYTHON_EXPIRED = (
    "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
    "certificate has expired (_ssl.c:1006)"
)
MAILGUN_HOSTNAME = "Hostname mismatch, certificate is not valid for 'smtp.mailgun.com'"
GO_HOSTNAME = "x509: certificate is valid for a.example.com, not b.example.com"
GO_VALIDITY = "x509: certificate has expired or is not yet valid"
GO_UNKNOWN_AUTHORITY = "x509: certificate signed by unknown authority"
GNUTLS_UNTRUSTED = "The certificate is NOT trusted. The certificate issuer is unknown."
GNUTLS_UNEXPECTED_PACKET = "An unexpected TLS packet was received."
DOTNET_NAME_MISMATCH = (
    "The remote certificate is invalid according to the validation procedure: "
    "RemoteCertificateNameMismatch"
)
DOTNET_PACKET_FORMAT = "The handshake failed due to an unexpected packet format."
MSMTP_WRONG_VERSION = (
    "msmtp: TLS handshake failed: error:0A00010B:SSL routines::wrong version number"
)
MSMTP_EXPIRED = "TLS certificate verification failed: the certificate has expired"


def only_finding(text: str) -> Finding:
    findings = decode_text(text).findings
    assert len(findings) == 1
    return findings[0]


@pytest.mark.parametrize(
    ("text", "code", "library"),
    [
        pytest.param(OPENSSL_WRONG_VERSION, "tls.wrong_mode", "openssl", id="openssl-version"),
        pytest.param(PYTHON_HOSTNAME, "tls.hostname_mismatch", "python", id="python-hostname"),
        pytest.param(PYTHON_EXPIRED, "tls.cert_expired", "python", id="python-expired"),
        pytest.param("certificate has expired", "tls.cert_expired", "openssl", id="expired"),
        pytest.param(
            "certificate is not yet valid",
            "tls.cert_not_yet_valid",
            "openssl",
            id="not-yet-valid",
        ),
        pytest.param("self-signed certificate", "tls.untrusted", "openssl", id="self-signed"),
        pytest.param(
            "unable to get local issuer certificate",
            "tls.untrusted",
            "openssl",
            id="local-issuer",
        ),
        pytest.param(MAILGUN_HOSTNAME, "tls.hostname_mismatch", "python", id="mailgun"),
        pytest.param(GO_HOSTNAME, "tls.hostname_mismatch", "go", id="go-hostname"),
        pytest.param(GO_VALIDITY, "tls.cert_expired", "go", id="go-validity"),
        pytest.param(GO_UNKNOWN_AUTHORITY, "tls.untrusted", "go", id="go-unknown-authority"),
        pytest.param(GNUTLS_UNTRUSTED, "tls.untrusted", "gnutls", id="gnutls-untrusted"),
        pytest.param(GNUTLS_UNEXPECTED_PACKET, "tls.wrong_mode", "gnutls", id="gnutls-packet"),
        pytest.param(DOTNET_NAME_MISMATCH, "tls.hostname_mismatch", "dotnet", id="dotnet-name"),
        pytest.param(DOTNET_PACKET_FORMAT, "tls.wrong_mode", "dotnet", id="dotnet-packet"),
        pytest.param(MSMTP_WRONG_VERSION, "tls.wrong_mode", "msmtp", id="msmtp-version"),
        pytest.param(MSMTP_EXPIRED, "tls.cert_expired", "msmtp", id="msmtp-expired"),
        pytest.param(
            "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure (_ssl.c:1006)",
            "tls.handshake_failed",
            "python",
            id="python-handshake-failure",
        ),
        pytest.param(
            "error:0A000410:SSL routines::sslv3 alert handshake failure",
            "tls.handshake_failed",
            "openssl",
            id="openssl-handshake-failure",
        ),
    ],
)
class TestMessage:
    """Each known message: its input kind, finding code, library and quoted text."""

    def test_input_kind(self, text: str, code: str, library: str) -> None:
        assert decode_text(text).input_kind is InputKind.TLS_ERROR

    def test_code(self, text: str, code: str, library: str) -> None:
        assert only_finding(text).code == code

    def test_library(self, text: str, code: str, library: str) -> None:
        assert decode_text(text).facts["library"] == library

    def test_error_text(self, text: str, code: str, library: str) -> None:
        assert decode_text(text).facts["error_text"] == text

    def test_evidence(self, text: str, code: str, library: str) -> None:
        assert only_finding(text).evidence == (text,)

    def test_finding_facts_match(self, text: str, code: str, library: str) -> None:
        result = decode_text(text)
        assert dict(result.findings[0].facts) == dict(result.facts)


def test_python_hostname_requested_name() -> None:
    assert decode_text(PYTHON_HOSTNAME).facts["hostname"] == "smtp.example.com"


def test_mailgun_hostname_requested_name() -> None:
    assert decode_text(MAILGUN_HOSTNAME).facts["hostname"] == "smtp.mailgun.com"


@pytest.mark.parametrize(
    "text",
    [PYTHON_HOSTNAME, MAILGUN_HOSTNAME, GO_HOSTNAME, DOTNET_NAME_MISMATCH],
    ids=["python", "mailgun", "go", "dotnet"],
)
def test_hostname_mismatch_sni_hint_fact(text: str) -> None:
    assert decode_text(text).facts["sni_hint"] is True


@pytest.mark.parametrize(
    "text",
    [PYTHON_HOSTNAME, MAILGUN_HOSTNAME, GO_HOSTNAME, DOTNET_NAME_MISMATCH],
    ids=["python", "mailgun", "go", "dotnet"],
)
def test_hostname_mismatch_fix_names_sni(text: str) -> None:
    assert "SNI" in only_finding(text).fix


def test_mailgun_title_names_host() -> None:
    assert only_finding(MAILGUN_HOSTNAME).title == "Certificate does not cover smtp.mailgun.com"


def test_go_hostname_certificate_names() -> None:
    assert decode_text(GO_HOSTNAME).facts["certificate_names"] == ["a.example.com"]


def test_go_hostname_requested_name() -> None:
    assert decode_text(GO_HOSTNAME).facts["hostname"] == "b.example.com"


def test_go_hostname_several_names() -> None:
    text = "x509: certificate is valid for a.example.com, mx.example.com, not b.example.com"
    assert decode_text(text).facts["certificate_names"] == ["a.example.com", "mx.example.com"]


def test_go_hostname_cause_lists_names() -> None:
    assert "a.example.com" in only_finding(GO_HOSTNAME).cause


def test_python_hostname_has_no_certificate_names() -> None:
    assert "certificate_names" not in decode_text(PYTHON_HOSTNAME).facts


def test_dotnet_mismatch_has_no_hostname() -> None:
    assert "hostname" not in decode_text(DOTNET_NAME_MISMATCH).facts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("unable to get local issuer certificate", True, id="local-issuer"),
        pytest.param("unable to verify the first certificate", True, id="first-certificate"),
        pytest.param(GO_UNKNOWN_AUTHORITY, True, id="go-unknown-authority"),
        pytest.param(GNUTLS_UNTRUSTED, True, id="gnutls-issuer-unknown"),
        pytest.param("self-signed certificate", False, id="self-signed"),
    ],
)
def test_possible_missing_intermediate(text: str, expected: bool) -> None:
    assert decode_text(text).facts.get("possible_missing_intermediate", False) is expected


def test_local_issuer_cause_names_intermediate() -> None:
    cause = only_finding("unable to get local issuer certificate").cause
    assert "intermediate CA certificate" in cause


def test_untrusted_title_names_error() -> None:
    title = only_finding("self-signed certificate").title
    assert title == "Certificate not trusted: self-signed certificate"


# NOTE: constructed message: msmtp's own wording around the OpenSSL text may differ, but the
# port is read from "port N" or "host:N" wherever it appears.
MSMTP_WRONG_VERSION_587 = (
    "msmtp: cannot connect to smtp.example.com, port 587: TLS handshake failed: "
    "error:0A00010B:SSL routines::wrong version number"
)


@pytest.mark.parametrize(
    ("text", "port"),
    [
        pytest.param(MSMTP_WRONG_VERSION_587, 587, id="port-word"),
        pytest.param(
            "smtp.example.com:465: tls: first record does not look like a TLS handshake",
            465,
            id="host-colon-port",
        ),
    ],
)
def test_wrong_mode_port_fact(text: str, port: int) -> None:
    assert decode_text(text).facts["port"] == port


def test_wrong_mode_without_port() -> None:
    assert "port" not in decode_text(MSMTP_WRONG_VERSION).facts


def test_python_line_number_is_not_port() -> None:
    text = "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"
    assert "port" not in decode_text(text).facts


def test_wrong_mode_587_fix_names_starttls() -> None:
    assert only_finding(MSMTP_WRONG_VERSION_587).fix.startswith("Port 587 expects STARTTLS.")


@pytest.mark.parametrize(
    "phrase",
    ["starttls on port 587", "implicit on port 465"],
)
def test_wrong_mode_fix_names_both_modes(phrase: str) -> None:
    assert phrase in only_finding(MSMTP_WRONG_VERSION).fix


def test_wrong_mode_title_names_port() -> None:
    assert only_finding(MSMTP_WRONG_VERSION_587).title.startswith("Port 587 did not answer")


@pytest.mark.parametrize(
    ("text", "fact", "value"),
    [
        pytest.param(
            "x509: certificate has expired or is not yet valid: current time "
            "2026-12-04T10:00:00Z is after 2026-11-30T23:59:59Z",
            "cert_not_after",
            "2026-11-30T23:59:59Z",
            id="go-after",
        ),
        pytest.param(
            "x509: certificate has expired or is not yet valid: current time "
            "2026-12-04T10:00:00Z is before 2026-12-05T00:00:00Z",
            "cert_not_before",
            "2026-12-05T00:00:00Z",
            id="go-before",
        ),
    ],
)
def test_go_validity_detail_fact(text: str, fact: str, value: str) -> None:
    assert decode_text(text).facts[fact] == value


def test_go_validity_before_is_not_yet_valid() -> None:
    text = (
        "x509: certificate has expired or is not yet valid: current time "
        "2026-12-04T10:00:00Z is before 2026-12-05T00:00:00Z"
    )
    assert only_finding(text).code == "tls.cert_not_yet_valid"


def test_go_validity_without_detail_is_ambiguous() -> None:
    assert decode_text(GO_VALIDITY).facts["not_yet_valid_possible"] is True


def test_expired_title_without_date() -> None:
    assert only_finding("certificate has expired").title == "Certificate has expired"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "S: 220 smtp.example.com ESMTP\nC: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n"
            "TLS handshake failed: error:0A00010B:SSL routines::wrong version number",
            id="transcript-quoting-tls-error",
        ),
    ],
)
def test_transcript_with_replies_stays_transcript(text: str) -> None:
    assert decode_text(text).input_kind is InputKind.SMTP_TRANSCRIPT


@pytest.mark.parametrize(
    "text",
    ["TLS is great", "handshake", "certificate", "the version number is wrong"],
)
def test_near_misses_stay_unknown(text: str) -> None:
    assert decode_text(text).input_kind is InputKind.UNKNOWN


def test_tls_error_status_critical() -> None:
    assert decode_text(PYTHON_HOSTNAME).status is Status.CRITICAL


def test_tls_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", MSMTP_WRONG_VERSION]) == 2


@pytest.mark.parametrize(
    "text",
    [PYTHON_HOSTNAME, GO_VALIDITY, MSMTP_WRONG_VERSION_587, GNUTLS_UNTRUSTED],
    ids=["python-hostname", "go-validity", "msmtp-587", "gnutls-untrusted"],
)
def test_json_output_matches_schema(capsys: pytest.CaptureFixture[str], text: str) -> None:
    main(["decode", text, "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    jsonschema.validate(document, SCHEMA)
    assert document["input_kind"] == "tls_error"


def test_tls_error_inside_transcript_is_finding() -> None:
    from smtpdiag.decode.detect import decode_text

    transcript = (
        "S: 220 mx.example.com ESMTP\nC: STARTTLS\nS: 220 Ready to start TLS\n"
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
        "failed: certificate has expired (_ssl.c:1006)\n"
    )
    assert [finding.code for finding in decode_text(transcript).findings] == ["tls.cert_expired"]


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(
            "ssl.SSLError: [SSL: UNSUPPORTED_PROTOCOL] unsupported protocol (_ssl.c:1006)",
            id="python-unsupported-protocol",
        ),
        pytest.param("error:0A000102:SSL routines::unsupported protocol", id="openssl-3"),
        pytest.param(
            "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version (_ssl.c:1006)",
            id="protocol-version-alert",
        ),
    ],
)
def test_no_common_version_is_outdated_protocol(message: str) -> None:
    from smtpdiag.decode.detect import decode_text

    assert [finding.code for finding in decode_text(message).findings] == ["tls.protocol_outdated"]
