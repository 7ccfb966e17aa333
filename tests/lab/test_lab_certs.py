"""Lab certificates: the chain verifies with the stdlib ``ssl`` module against ca.pem only."""

from __future__ import annotations

import contextlib
import ssl
import stat
from datetime import timedelta
from pathlib import Path

import pytest

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
