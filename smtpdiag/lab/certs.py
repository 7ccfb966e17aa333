"""Throw-away certificate authority and server certificate for the lab.

One call writes a root CA, an intermediate CA signed by the root and a server (leaf)
certificate signed by the intermediate. Keys are EC P-256, which keeps a lab start fast.
The files are:

- ``ca.pem``: the root certificate only, the file clients trust;
- ``server-chain.pem``: the leaf, then the intermediate (unless the leaf options leave it out);
- ``server-key.pem``: the leaf's private key, mode 0600.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smtpdiag.lab.options import LeafOptions

CA_FILE_NAME = "ca.pem"
CHAIN_FILE_NAME = "server-chain.pem"
KEY_FILE_NAME = "server-key.pem"

_CA_VALIDITY = timedelta(days=365)
_CA_BACKDATE = timedelta(days=2)


@dataclass(frozen=True)
class CertificateFiles:
    """Paths of the files that ``write_certificates`` wrote."""

    ca_file: Path
    """Root CA certificate (PEM), the trust anchor for clients."""
    chain_file: Path
    """Leaf certificate followed by the intermediate (PEM), as the server presents them."""
    key_file: Path
    """Private key of the leaf certificate (PEM, unencrypted)."""


@dataclass(frozen=True)
class _Issuer:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def write_certificates(
    directory: Path, leaf: LeafOptions | None = None, now: datetime | None = None
) -> CertificateFiles:
    """Create a root CA, an intermediate CA and a leaf, and write them into ``directory``."""
    leaf = leaf or LeafOptions()
    now = now or datetime.now(UTC)

    root = _make_root(now)
    intermediate = _make_intermediate(root, now)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_certificate = _make_leaf(intermediate, leaf_key, leaf, now)

    files = CertificateFiles(
        ca_file=directory / CA_FILE_NAME,
        chain_file=directory / CHAIN_FILE_NAME,
        key_file=directory / KEY_FILE_NAME,
    )
    chain = [leaf_certificate]
    if leaf.include_intermediate:
        chain.append(intermediate.certificate)
    files.ca_file.write_bytes(_pem(root.certificate))
    files.chain_file.write_bytes(b"".join(_pem(certificate) for certificate in chain))
    _write_private(files.key_file, _private_pem(leaf_key))
    return files


def _make_root(now: datetime) -> _Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("smtpdiag lab root CA")
    builder = _ca_builder(name, name, key.public_key(), now, path_length=1)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
    )
    return _Issuer(builder.sign(key, hashes.SHA256()), key)


def _make_intermediate(root: _Issuer, now: datetime) -> _Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _ca_builder(
        _name("smtpdiag lab intermediate CA"),
        root.certificate.subject,
        key.public_key(),
        now,
        path_length=0,
    )
    builder = builder.add_extension(_authority_key_id(root), critical=False)
    return _Issuer(builder.sign(root.key, hashes.SHA256()), key)


def _ca_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime,
    path_length: int,
) -> x509.CertificateBuilder:
    key_usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CA_BACKDATE)
        .not_valid_after(now + _CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _make_leaf(
    issuer: _Issuer, key: ec.EllipticCurvePrivateKey, options: LeafOptions, now: datetime
) -> x509.Certificate:
    common_name = options.dns_names[0] if options.dns_names else "smtpdiag lab server"
    key_usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + options.not_before_offset)
        .not_valid_after(now + options.not_after_offset)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(issuer), critical=False)
    )
    alternative_names = _alternative_names(options)
    if alternative_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alternative_names), critical=False
        )
    return builder.sign(issuer.key, hashes.SHA256())


def _alternative_names(options: LeafOptions) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in options.dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in options.ip_addresses]
    return names


def _authority_key_id(issuer: _Issuer) -> x509.AuthorityKeyIdentifier:
    subject_key_id = issuer.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(subject_key_id)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smtpdiag lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file that only the owner can read (mode 0600)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)
