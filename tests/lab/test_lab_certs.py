"""Lab certificates: the chain verifies with the stdlib ``ssl`` module against ca.pem only."""

from __future__ import annotations

import contextlib
import ssl
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from smtpdiag.lab.certs import CertificateFiles, write_certificates
from smtpdiag.lab.options import LeafOptions


def handshake(files: CertificateFiles, server_hostname: str) -> None:
    """Run a TLS handshake in memory; raise ``ssl.SSLCertVerificationError`` on a bad chain."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(files.chain_file, files.key_file)
    client_context = ssl.create_default_context(cafile=str(files.ca_file))

    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(client_in, client_out, server_hostname=server_hostname)
    server = server_context.wrap_bio(server_in, server_out, server_side=True)

    # Pump bytes between the two ends until the client has finished its handshake.
    for _ in range(10):
        try:
            client.do_handshake()
            return
        except ssl.SSLWantReadError:
            pass
        server_in.write(client_out.read())
        with contextlib.suppress(ssl.SSLWantReadError):
            server.do_handshake()
        client_in.write(server_out.read())
    raise AssertionError("handshake did not finish")


def pem_count(path: Path) -> int:
    return path.read_text().count("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1", "::1"])
def test_chain_verifies_for(certificates: CertificateFiles, server_hostname: str) -> None:
    handshake(certificates, server_hostname)


def test_chain_fails_for_other_name(certificates: CertificateFiles) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(certificates, "smtp.example.com")


def test_ca_file_holds_root_only(certificates: CertificateFiles) -> None:
    assert pem_count(certificates.ca_file) == 1


def test_chain_file_holds_leaf_and_intermediate(certificates: CertificateFiles) -> None:
    assert pem_count(certificates.chain_file) == 2


def test_key_file_is_private(certificates: CertificateFiles) -> None:
    assert stat.S_IMODE(certificates.key_file.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("leaf", "error"),
    [
        pytest.param(
            LeafOptions(include_intermediate=False),
            "unable to get local issuer",
            id="missing-intermediate",
        ),
        pytest.param(
            LeafOptions(not_before_offset=timedelta(days=-30), not_after_offset=timedelta(days=-1)),
            "certificate has expired",
            id="expired",
        ),
        pytest.param(
            LeafOptions(not_before_offset=timedelta(days=1), not_after_offset=timedelta(days=30)),
            "certificate is not yet valid",
            id="not-yet-valid",
        ),
        pytest.param(
            LeafOptions(dns_names=("mail.example.com",), ip_addresses=()),
            "Hostname mismatch",
            id="wrong-name",
        ),
    ],
)
def test_leaf_variant_fails_verification(tmp_path: Path, leaf: LeafOptions, error: str) -> None:
    files = write_certificates(tmp_path, leaf)
    with pytest.raises(ssl.SSLCertVerificationError, match=error):
        handshake(files, "localhost")


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return write_certificates(tmp_path_factory.mktemp("self-signed"), LeafOptions(self_signed=True))


@pytest.fixture(scope="module")
def with_fallback(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    leaf = LeafOptions(sni_fallback_dns_names=("mail.other.example",))
    return write_certificates(tmp_path_factory.mktemp("fallback"), leaf)


def first_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def test_self_signed_chain_holds_leaf_only(self_signed: CertificateFiles) -> None:
    assert pem_count(self_signed.chain_file) == 1


def test_self_signed_issuer_is_subject(self_signed: CertificateFiles) -> None:
    leaf = first_certificate(self_signed.chain_file)
    assert leaf.issuer == leaf.subject


def test_self_signed_signature_verifies_with_own_key(self_signed: CertificateFiles) -> None:
    leaf = first_certificate(self_signed.chain_file)
    leaf.verify_directly_issued_by(leaf)


def test_self_signed_fails_verification(self_signed: CertificateFiles) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="self-signed certificate"):
        handshake(self_signed, "localhost")


def test_no_fallback_by_default(certificates: CertificateFiles) -> None:
    assert (certificates.fallback_chain_file, certificates.fallback_key_file) == (None, None)


def test_fallback_names(with_fallback: CertificateFiles) -> None:
    assert with_fallback.fallback_chain_file is not None
    leaf = first_certificate(with_fallback.fallback_chain_file)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mail.other.example"]


def test_fallback_has_no_ip_addresses(with_fallback: CertificateFiles) -> None:
    assert with_fallback.fallback_chain_file is not None
    leaf = first_certificate(with_fallback.fallback_chain_file)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == []


def test_fallback_chain_holds_leaf_and_intermediate(with_fallback: CertificateFiles) -> None:
    assert with_fallback.fallback_chain_file is not None
    assert pem_count(with_fallback.fallback_chain_file) == 2


def test_fallback_key_is_private(with_fallback: CertificateFiles) -> None:
    assert with_fallback.fallback_key_file is not None
    assert stat.S_IMODE(with_fallback.fallback_key_file.stat().st_mode) == 0o600


def test_fallback_sni_names_are_leaf_names(with_fallback: CertificateFiles) -> None:
    assert with_fallback.sni_names == ("localhost",)


def test_fallback_keeps_main_chain(with_fallback: CertificateFiles) -> None:
    handshake(with_fallback, "localhost")
