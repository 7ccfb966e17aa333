"""Known TLS and certificate error messages of OpenSSL, GnuTLS, Python, Go, .NET and msmtp.

Each rule maps a message to a finding code of the tls check. The rules are tried in order,
so a specific message wins over a generic one in the same text: msmtp's
``TLS handshake failed: ...wrong version number`` is a wrong TLS mode, not a failed handshake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class TlsLibrary(StrEnum):
    """Library or program whose wording a TLS error message has."""

    OPENSSL = "openssl"
    GNUTLS = "gnutls"
    PYTHON = "python"
    GO = "go"
    DOTNET = "dotnet"
    MSMTP = "msmtp"


class TlsProblem(StrEnum):
    """Finding code of the tls check that a message maps to."""

    HOSTNAME_MISMATCH = "tls.hostname_mismatch"
    CERT_EXPIRED = "tls.cert_expired"
    CERT_NOT_YET_VALID = "tls.cert_not_yet_valid"
    UNTRUSTED = "tls.untrusted"
    WRONG_MODE = "tls.wrong_mode"
    PROTOCOL_OUTDATED = "tls.protocol_outdated"
    HANDSHAKE_FAILED = "tls.handshake_failed"


@dataclass(frozen=True)
class MessageRule:
    """One known message: its pattern, the problem and the library that prints it."""

    pattern: re.Pattern[str]
    problem: TlsProblem
    library: TlsLibrary
    """Library the wording comes from, unless a wrapper such as msmtp or Python names another."""
    issuer_unknown: bool = False
    """Whether the message means no issuer was found, which a missing intermediate also causes."""


def _rule(
    pattern: str, problem: TlsProblem, library: TlsLibrary, *, issuer_unknown: bool = False
) -> MessageRule:
    return MessageRule(re.compile(pattern, re.IGNORECASE), problem, library, issuer_unknown)


_P = TlsProblem
_L = TlsLibrary

RULES: tuple[MessageRule, ...] = (
    # Name mismatches. Python 3.7+: "Hostname mismatch, certificate is not valid for 'x'." and
    # "IP address mismatch, ..."; OpenSSL's verify error 62 is "hostname mismatch".
    _rule(r"(?:hostname|ip address) mismatch", _P.HOSTNAME_MISMATCH, _L.OPENSSL),
    _rule(r"x509: certificate is valid for .+?, not \S+", _P.HOSTNAME_MISMATCH, _L.GO),
    _rule(r"x509: certificate is not valid for any names", _P.HOSTNAME_MISMATCH, _L.GO),
    _rule(r"x509: cannot validate certificate for \S+", _P.HOSTNAME_MISMATCH, _L.GO),
    _rule(r"RemoteCertificateNameMismatch", _P.HOSTNAME_MISMATCH, _L.DOTNET),
    # NOTE: GnuTLS wording from gnutls-cli's certificate status text; not checked against a
    # live session.
    _rule(
        r"The name in the certificate does not match|does not match (?:the )?(?:expected|host)",
        _P.HOSTNAME_MISMATCH,
        _L.GNUTLS,
    ),
    # Go reports both date problems with one message; the detail after it distinguishes them.
    _rule(r"x509: certificate has expired or is not yet valid", _P.CERT_EXPIRED, _L.GO),
    _rule(r"certificate has expired", _P.CERT_EXPIRED, _L.OPENSSL),
    _rule(r"certificate chain uses expired certificate", _P.CERT_EXPIRED, _L.GNUTLS),
    _rule(r"certificate is not yet valid", _P.CERT_NOT_YET_VALID, _L.OPENSSL),
    _rule(r"certificate chain uses not yet valid", _P.CERT_NOT_YET_VALID, _L.GNUTLS),
    # Plaintext where TLS was expected: an SMTP greeting read as a TLS record.
    _rule(r"wrong version number", _P.WRONG_MODE, _L.OPENSSL),
    _rule(r"unexpected TLS packet was received", _P.WRONG_MODE, _L.GNUTLS),
    _rule(r"unexpected packet format", _P.WRONG_MODE, _L.DOTNET),
    _rule(r"first record does not look like a TLS handshake", _P.WRONG_MODE, _L.GO),
    # Chains that end at no trusted root.
    _rule(r"self[- ]signed certificate", _P.UNTRUSTED, _L.OPENSSL),
    _rule(r"unable to get local issuer certificate", _P.UNTRUSTED, _L.OPENSSL, issuer_unknown=True),
    _rule(r"unable to verify the first certificate", _P.UNTRUSTED, _L.OPENSSL, issuer_unknown=True),
    _rule(r"certificate signed by unknown authority", _P.UNTRUSTED, _L.GO, issuer_unknown=True),
    _rule(r"certificate issuer is unknown", _P.UNTRUSTED, _L.GNUTLS, issuer_unknown=True),
    _rule(r"certificate is NOT trusted", _P.UNTRUSTED, _L.GNUTLS),
    _rule(r"RemoteCertificateChainErrors", _P.UNTRUSTED, _L.DOTNET, issuer_unknown=True),
    _rule(r"certificate verify failed", _P.UNTRUSTED, _L.OPENSSL),
    # No TLS version in common: OpenSSL 3's "unsupported protocol" and the peer's
    # "protocol version" alert, typical of a server that offers only TLS 1.0 or 1.1.
    _rule(r"unsupported protocol", _P.PROTOCOL_OUTDATED, _L.OPENSSL),
    _rule(r"alert protocol version", _P.PROTOCOL_OUTDATED, _L.OPENSSL),
    _rule(r"tls: protocol version not supported", _P.PROTOCOL_OUTDATED, _L.GO),
    # Any other handshake failure.
    _rule(r"(?:sslv3|tlsv1) alert \w+(?: \w+)*", _P.HANDSHAKE_FAILED, _L.OPENSSL),
    _rule(r"remote error: tls: [\w ]+", _P.HANDSHAKE_FAILED, _L.GO),
    _rule(r"The handshake failed[^.\n]*", _P.HANDSHAKE_FAILED, _L.DOTNET),
    _rule(r"handshake fail\w*[^\n]*", _P.HANDSHAKE_FAILED, _L.OPENSSL),
)
"""Every known message, specific ones first."""

# A wrapper quotes another library's message: msmtp quotes OpenSSL or GnuTLS, and Python's
# ssl module quotes OpenSSL. The wrapper names the library, because it is what the user ran.
_WRAPPERS: tuple[tuple[re.Pattern[str], TlsLibrary], ...] = (
    (re.compile(r"\bmsmtp:|TLS (?:handshake|certificate verification) failed:"), _L.MSMTP),
    (re.compile(r"System\.Security\.Authentication|\bRemoteCertificate"), _L.DOTNET),
    (
        re.compile(r"\bssl\.SSL\w*Error|\[SSL: \w+\]|\(_ssl\.c:\d+\)|mismatch, certificate is"),
        _L.PYTHON,
    ),
    (re.compile(r"\bx509: |\btls: "), _L.GO),
    (re.compile(r"GnuTLS|gnutls_\w+", re.IGNORECASE), _L.GNUTLS),
)


@dataclass(frozen=True)
class MessageMatch:
    """The first known message in a text."""

    rule: MessageRule
    library: TlsLibrary
    line: str
    """Whole line that contains the message, without surrounding white space."""
    phrase: str
    """Part of the line that the rule matched."""


def find_message(text: str) -> MessageMatch | None:
    """Return the first known TLS error message in ``text``, or None."""
    for rule in RULES:
        found = rule.pattern.search(text)
        if found is None:
            continue
        return MessageMatch(rule, _library(text, rule), _line_at(text, found.start()), found[0])
    return None


def _library(text: str, rule: MessageRule) -> TlsLibrary:
    for pattern, library in _WRAPPERS:
        if pattern.search(text):
            return library
    return rule.library


def _line_at(text: str, position: int) -> str:
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return text[start : end if end >= 0 else len(text)].strip()
