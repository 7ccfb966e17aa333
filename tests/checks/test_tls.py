"""tls check against loopback TLS servers with generated certificates."""

from __future__ import annotations

import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from scripted_peer import Step, scripted_peer

from checks import tls
from smtpdiag.context import CheckContext, Settings, Target, TlsMode
from smtpdiag.lab.certs import write_certificates
from smtpdiag.lab.options import LeafOptions
from smtpdiag.models import CheckResult, Severity, Status

GREETING = b"220 mx.example.test ESMTP ready\r\n"
EHLO_REPLY = b"250-mx.example.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
READY = b"220 2.0.0 Ready to start TLS\r\n"


@dataclass(frozen=True)
class ServerCertificate:
    """Files a test server presents and the CA file a client trusts."""

    chain_file: Path
    key_file: Path
    ca_file: Path


def lab_certificate(directory: Path, leaf: LeafOptions) -> ServerCertificate:
    directory.mkdir(parents=True, exist_ok=True)
    files = write_certificates(directory, leaf)
    return ServerCertificate(files.chain_file, files.key_file, files.ca_file)


def self_signed_certificate(directory: Path) -> ServerCertificate:
    """Write a self-signed leaf for localhost; it is its own CA file."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    chain_file = directory / "self-signed.pem"
    key_file = directory / "self-signed-key.pem"
    chain_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ServerCertificate(chain_file, key_file, chain_file)


def server_context(certificate: ServerCertificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.chain_file, certificate.key_file)
    return context


def _read_line(conn: socket.socket) -> bytes:
    """Read one line byte by byte, so no byte of the ClientHello is consumed."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = conn.recv(1)
        if not byte:
            break
        line += byte
    return bytes(line)


def _serve_one(conn: socket.socket, context: ssl.SSLContext, starttls: bool) -> None:
    conn.settimeout(5)
    try:
        if starttls:
            conn.sendall(GREETING)
            _read_line(conn)
            conn.sendall(EHLO_REPLY)
            _read_line(conn)
            conn.sendall(READY)
        with context.wrap_socket(conn, server_side=True) as secure:
            secure.recv(1)  # the client closes after the handshake
    except (ssl.SSLError, OSError):
        pass
    finally:
        conn.close()


@contextmanager
def tls_server(context: ssl.SSLContext, *, starttls: bool = True) -> Iterator[int]:
    """Serve TLS (after STARTTLS, or at once) on 127.0.0.1 and yield the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            worker = threading.Thread(target=_serve_one, args=(conn, context, starttls))
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join()
        for worker in workers:
            worker.join()
        listener.close()


def run_tls(
    port: int,
    *,
    host: str = "localhost",
    mode: TlsMode = TlsMode.STARTTLS,
    ca_file: Path | None = None,
    timeout: float = 3.0,
    **target_fields: object,
) -> CheckResult:
    """Run the check against 127.0.0.1:port as if the dns check had resolved ``host``."""
    target = Target(
        host=host,
        port=port,
        tls_mode=mode,
        ca_file=str(ca_file) if ca_file else None,
        **target_fields,  # type: ignore[arg-type]
    )
    dns = CheckResult("dns", Status.OK, "resolved", facts={"addresses": ["127.0.0.1"]})
    ctx = CheckContext(settings=Settings(timeout=timeout), upstream={"dns": dns})
    return tls.run(target, ctx)


def codes(result: CheckResult) -> list[str]:
    return [finding.code for finding in result.findings]


DAY = timedelta(days=1)

CERTIFICATE_CASES = [
    pytest.param(LeafOptions(), [], id="healthy"),
    pytest.param(
        LeafOptions(not_before_offset=-30 * DAY, not_after_offset=-DAY),
        ["tls.cert_expired"],
        id="expired",
    ),
    pytest.param(
        LeafOptions(not_before_offset=2 * DAY, not_after_offset=90 * DAY),
        ["tls.cert_not_yet_valid"],
        id="not-yet-valid",
    ),
    pytest.param(LeafOptions(not_after_offset=10 * DAY), ["tls.cert_expiring_soon"], id="10-days"),
    pytest.param(LeafOptions(not_after_offset=3 * DAY), ["tls.cert_expiring_soon"], id="3-days"),
    pytest.param(
        LeafOptions(dns_names=("mail.example.net",), ip_addresses=()),
        ["tls.hostname_mismatch"],
        id="wrong-hostname",
    ),
    pytest.param(
        LeafOptions(include_intermediate=False),
        ["tls.missing_intermediate"],
        id="missing-intermediate",
    ),
]


@pytest.mark.parametrize(("leaf", "expected"), CERTIFICATE_CASES)
def test_certificate_findings(tmp_path: Path, leaf: LeafOptions, expected: list[str]) -> None:
    certificate = lab_certificate(tmp_path, leaf)
    with tls_server(server_context(certificate)) as port:
        result = run_tls(port, ca_file=certificate.ca_file)
    assert codes(result) == expected


@pytest.mark.parametrize(
    ("days", "severity"),
    [pytest.param(10, Severity.WARNING, id="10-days"), pytest.param(3, Severity.CRITICAL, id="3")],
)
def test_expiring_soon_severity(tmp_path: Path, days: int, severity: Severity) -> None:
    certificate = lab_certificate(tmp_path, LeafOptions(not_after_offset=days * DAY))
    with tls_server(server_context(certificate)) as port:
        result = run_tls(port, ca_file=certificate.ca_file)
    assert result.findings[0].severity is severity


def test_healthy_facts(tmp_path: Path) -> None:
    certificate = lab_certificate(tmp_path, LeafOptions())
    with tls_server(server_context(certificate)) as port:
        facts = run_tls(port, ca_file=certificate.ca_file).facts
    assert facts["sni"] == "localhost"
    assert facts["sans"] == ["localhost", "127.0.0.1", "::1"]
    assert facts["verify_error"] is None
    assert facts["sni_changes_certificate"] is False
    assert facts["cert_not_after"].endswith("Z")
    assert [entry["subject"] for entry in facts["chain"]] == [
        "CN=localhost,O=smtpdiag lab",
        "CN=smtpdiag lab intermediate CA,O=smtpdiag lab",
    ]


def test_implicit_mode_healthy(tmp_path: Path) -> None:
    certificate = lab_certificate(tmp_path, LeafOptions())
    with tls_server(server_context(certificate), starttls=False) as port:
        result = run_tls(port, mode=TlsMode.IMPLICIT, ca_file=certificate.ca_file)
    assert result.status is Status.OK


def test_ip_host_sends_no_sni(tmp_path: Path) -> None:
    certificate = lab_certificate(tmp_path, LeafOptions())
    with tls_server(server_context(certificate)) as port:
        facts = run_tls(port, host="127.0.0.1", ca_file=certificate.ca_file).facts
    assert facts["sni"] is None
    assert facts["sni_changes_certificate"] is None


def test_missing_intermediate_names_issuer(tmp_path: Path) -> None:
    certificate = lab_certificate(tmp_path, LeafOptions(include_intermediate=False))
    with tls_server(server_context(certificate)) as port:
        facts = run_tls(port, ca_file=certificate.ca_file).facts
    assert facts["missing_issuer"] == "CN=smtpdiag lab intermediate CA,O=smtpdiag lab"
    assert facts["verify_error_depth"] == 0


def test_self_signed_is_untrusted(tmp_path: Path) -> None:
    certificate = self_signed_certificate(tmp_path)
    with tls_server(server_context(certificate)) as port:
        result = run_tls(port)
    assert codes(result) == ["tls.untrusted"]
    assert result.facts["verify_error"] == "self-signed certificate"


def test_unknown_root_is_untrusted(tmp_path: Path) -> None:
    certificate = lab_certificate(tmp_path, LeafOptions())
    with tls_server(server_context(certificate)) as port:
        result = run_tls(port)
    assert codes(result) == ["tls.untrusted"]
    assert result.facts["verify_error_depth"] == 1


def test_insecure_reports_same_severity(tmp_path: Path) -> None:
    certificate = lab_certificate(tmp_path, LeafOptions())
    with tls_server(server_context(certificate)) as port:
        result = run_tls(port, insecure=True)
    assert codes(result) == ["tls.untrusted", "tls.verification_disabled"]
    assert result.status is Status.CRITICAL


def sni_context(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """Serve the localhost certificate for SNI localhost, another one otherwise."""
    right = lab_certificate(tmp_path / "right", LeafOptions(dns_names=("localhost",)))
    other = lab_certificate(
        tmp_path / "other", LeafOptions(dns_names=("default.example.net",), ip_addresses=())
    )
    default_context = server_context(other)
    right_context = server_context(right)

    def choose(connection: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        if name == "localhost":
            connection.context = right_context

    default_context.sni_callback = choose
    return default_context, right.ca_file


def test_sni_dependent_certificate(tmp_path: Path) -> None:
    context, ca_file = sni_context(tmp_path)
    with tls_server(context) as port:
        result = run_tls(port, ca_file=ca_file)
    assert codes(result) == ["tls.sni_required"]
    assert result.facts["sni_changes_certificate"] is True


def test_sni_dependent_without_sni_is_critical(tmp_path: Path) -> None:
    context, ca_file = sni_context(tmp_path)
    with tls_server(context) as port:
        result = run_tls(port, ca_file=ca_file, no_sni=True)
    assert codes(result)[0] == "tls.sni_required"
    assert result.findings[0].severity is Severity.CRITICAL
    assert "-noservername" in result.facts["openssl_command"]


def test_sni_override_is_sent(tmp_path: Path) -> None:
    context, ca_file = sni_context(tmp_path)
    with tls_server(context) as port:
        result = run_tls(port, ca_file=ca_file, sni="other.example.org")
    assert result.facts["sni"] == "other.example.org"
    assert codes(result)[0] == "tls.sni_required"


def starttls_script(after_ehlo: list[Step]) -> list[Step]:
    return [("send", GREETING), ("read_line", None), ("send", EHLO_REPLY), *after_ehlo]


SCRIPTED_CASES = [
    pytest.param(
        starttls_script(
            [("read_line", None), ("send", b"454 4.7.0 TLS not available due to local problem\r\n")]
        ),
        TlsMode.STARTTLS,
        "tls.starttls_refused",
        id="starttls-454",
    ),
    pytest.param(
        [
            ("send", GREETING),
            ("read_line", None),
            ("send", b"250-mx.example.test\r\n250 AUTH PLAIN\r\n"),
        ],
        TlsMode.STARTTLS,
        "tls.starttls_refused",
        id="starttls-not-offered",
    ),
    pytest.param(
        [("send", GREETING), ("hang", 5)], TlsMode.IMPLICIT, "tls.wrong_mode", id="plaintext-port"
    ),
    pytest.param(
        starttls_script([("read_line", None), ("send", READY), ("close", None)]),
        TlsMode.STARTTLS,
        "tls.handshake_failed",
        id="closed-after-ready",
    ),
    pytest.param(
        starttls_script([("read_line", None), ("send", READY), ("hang", 5)]),
        TlsMode.STARTTLS,
        "tls.handshake_failed",
        id="stalled-handshake",
    ),
]


@pytest.mark.parametrize(("script", "mode", "expected"), SCRIPTED_CASES)
def test_scripted_failure(script: list[Step], mode: TlsMode, expected: str) -> None:
    with scripted_peer(script) as port:
        result = run_tls(port, mode=mode, timeout=1.0)
    assert codes(result) == [expected]


def test_starttls_refusal_shows_reply() -> None:
    script = starttls_script([("read_line", None), ("send", b"454 4.7.0 TLS not available\r\n")])
    with scripted_peer(script) as port:
        result = run_tls(port, timeout=1.0)
    assert result.findings[0].facts["reply_code"] == 454


def test_stalled_handshake_ends_within_timeout() -> None:
    script = starttls_script([("read_line", None), ("send", READY), ("hang", 10)])
    with scripted_peer(script) as port:
        started = time.monotonic()
        result = run_tls(port, timeout=1.0)
        elapsed = time.monotonic() - started
    assert result.findings[0].facts["stage"] == "tls_handshake"
    assert elapsed < 5.0


def test_greeting_refused_is_unknown() -> None:
    with scripted_peer([("send", b"554 5.7.1 go away\r\n")]) as port:
        result = run_tls(port, timeout=1.0)
    assert result.status is Status.UNKNOWN


def tls11_context(certificate: ServerCertificate) -> ssl.SSLContext:
    context = server_context(certificate)
    with warnings.catch_warnings():
        # Python marks TLS 1.0 and 1.1 deprecated; the test needs an outdated server.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def test_tls11_is_outdated(tmp_path: Path) -> None:
    certificate = lab_certificate(tmp_path, LeafOptions())
    try:
        context = tls11_context(certificate)
    except (ValueError, ssl.SSLError) as error:
        pytest.skip(f"the local OpenSSL cannot serve TLS 1.1: {error}")
    with tls_server(context) as port:
        result = run_tls(port, ca_file=certificate.ca_file)
    if codes(result) == ["tls.handshake_failed"]:
        pytest.skip(f"the local OpenSSL refuses TLS 1.1: {result.facts['error']}")
    assert codes(result) == ["tls.protocol_outdated"]
    assert result.facts["tls_version"] == "TLSv1.1"
