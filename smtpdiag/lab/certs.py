"""Throw-away certificate authority and server certificate for the lab.

One call writes a root CA, an intermediate CA signed by the root and a server (leaf)
certificate signed by the intermediate. Keys are EC P-256, which keeps a lab start fast.
The files are:

- ``ca.pem``: the root certificate only, the file clients trust;
- ``server-chain.pem``: the leaf, then the intermediate (unless the leaf options leave it out);
- ``server-key.pem``: the leaf's private key, mode 0600;
- ``fallback-chain.pem`` and ``fallback-key.pem``: only when the leaf options ask for an SNI
  fallback, a second leaf and the intermediate, and its key.

A self-signed leaf signs itself with its own key; ``server-chain.pem`` then contains that leaf
alone, and the root in ``ca.pem`` does not verify it.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace
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
FALLBACK_CHAIN_FILE_NAME = "fallback-chain.pem"
FALLBACK_KEY_FILE_NAME = "fallback-key.pem"

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
    sni_names: tuple[str, ...] = ()
    """SNI names for which the server presents ``chain_file`` when a fallback exists."""
    fallback_chain_file: Path | None = None
    """Second leaf and the intermediate (PEM), presented to clients whose SNI is not in
    ``sni_names``; None when the server has one certificate."""
    fallback_key_file: Path | None = None
    """Private key of the fallback leaf; None when there is no fallback."""


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
    files = CertificateFiles(
        ca_file=directory / CA_FILE_NAME,
        chain_file=directory / CHAIN_FILE_NAME,
        key_file=directory / KEY_FILE_NAME,
    )
    files.ca_file.write_bytes(_pem(root.certificate))

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    if leaf.self_signed:
        chain = [_make_self_signed_leaf(leaf_key, leaf, now)]
    else:
        chain = [_make_leaf(intermediate, leaf_key, leaf, now)]
        if leaf.include_intermediate:
            chain.append(intermediate.certificate)
    _write_chain(files.chain_file, files.key_file, chain, leaf_key)

    if not leaf.sni_fallback_dns_names:
        return files
    return _write_fallback(directory, files, intermediate, leaf, now)


def _write_fallback(
    directory: Path,
    files: CertificateFiles,
    intermediate: _Issuer,
    leaf: LeafOptions,
    now: datetime,
) -> CertificateFiles:
    """Write the SNI fallback leaf, valid for its own names only, with the intermediate."""
    options = replace(leaf, dns_names=leaf.sni_fallback_dns_names, ip_addresses=())
    key = ec.generate_private_key(ec.SECP256R1())
    chain = [_make_leaf(intermediate, key, options, now), intermediate.certificate]
    chain_file = directory / FALLBACK_CHAIN_FILE_NAME
    key_file = directory / FALLBACK_KEY_FILE_NAME
    _write_chain(chain_file, key_file, chain, key)
    return replace(
        files,
        sni_names=leaf.dns_names,
        fallback_chain_file=chain_file,
        fallback_key_file=key_file,
    )


def _write_chain(
    chain_file: Path,
    key_file: Path,
    chain: list[x509.Certificate],
    key: ec.EllipticCurvePrivateKey,
) -> None:
    chain_file.write_bytes(b"".join(_pem(certificate) for certificate in chain))
    _write_private(key_file, _private_pem(key))


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
    builder = _leaf_builder(issuer.certificate.subject, key, options, now)
    builder = builder.add_extension(_authority_key_id(issuer), critical=False)
    return builder.sign(issuer.key, hashes.SHA256())


def _make_self_signed_leaf(
    key: ec.EllipticCurvePrivateKey, options: LeafOptions, now: datetime
) -> x509.Certificate:
    builder = _leaf_builder(_leaf_name(options), key, options, now)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
    )
    return builder.sign(key, hashes.SHA256())


def _leaf_name(options: LeafOptions) -> x509.Name:
    return _name(options.dns_names[0] if options.dns_names else "smtpdiag lab server")


def _leaf_builder(
    issuer_name: x509.Name, key: ec.EllipticCurvePrivateKey, options: LeafOptions, now: datetime
) -> x509.CertificateBuilder:
    """Return a leaf builder with every extension but the authority key identifier."""
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
        .subject_name(_leaf_name(options))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + options.not_before_offset)
        .not_valid_after(now + options.not_after_offset)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    alternative_names = _alternative_names(options)
    if alternative_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alternative_names), critical=False
        )
    return builder


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
