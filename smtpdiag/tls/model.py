"""Measurements of the tls check: handshakes, verification errors and how a session ended."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from smtpdiag.smtp.probe import Stage
from smtpdiag.smtp.reply import Reply
from smtpdiag.tls.certificate import CertificateInfo


class Problem(StrEnum):
    """Reason a measurement ended without a completed TLS handshake."""

    NOT_REACHED = "not_reached"
    """TCP, greeting or EHLO failed; the connect check reports those."""
    STARTTLS_NOT_OFFERED = "starttls_not_offered"
    STARTTLS_REFUSED = "starttls_refused"
    WRONG_MODE = "wrong_mode"
    HANDSHAKE_FAILED = "handshake_failed"


@dataclass(frozen=True)
class VerifyError:
    """One certificate verification error that OpenSSL reported during the handshake."""

    code: int
    """OpenSSL ``X509_V_ERR_*`` value."""
    message: str
    depth: int
    """Position in the chain: 0 is the leaf."""
    subject: str
    """Subject of the certificate at ``depth``, in RFC 4514 form."""


@dataclass(frozen=True)
class Handshake:
    """A completed TLS handshake and the certificates the server sent."""

    sni: str | None
    """Server name sent in the ClientHello, or None when none was sent."""
    version: str
    """Protocol name as OpenSSL gives it, such as ``TLSv1.3``."""
    cipher: str
    leaf: CertificateInfo
    chain: tuple[CertificateInfo, ...]
    """Certificates as the server sent them, leaf first."""
    verify_errors: tuple[VerifyError, ...] = ()


@dataclass(frozen=True)
class TlsMeasurement:
    """Outcome of the tls check's network steps against one address."""

    address: str
    port: int
    implicit_tls: bool
    expected_name: str
    """Host name or IP literal that clients connect to; the certificate must cover it."""
    handshake: Handshake | None = None
    """The handshake as configured (SNI, trust store), or None when it did not complete."""
    alternate: Handshake | None = None
    """A second handshake with no SNI or with the expected name, or None when not run."""
    problem: Problem | None = None
    stage: Stage = Stage.DONE
    error: str = ""
    """Library or parser message for ``problem``, or empty."""
    reply: Reply | None = None
    """Reply that refused STARTTLS, or None."""
    received: bytes = b""
    """First bytes the server sent during a failed handshake."""
    handshake_state: str = ""
    """OpenSSL state at a failed handshake, such as ``SSLv3/TLS write client hello``."""
    transcript: tuple[str, ...] = ()
