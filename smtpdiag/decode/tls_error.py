"""Explain a pasted TLS or certificate error message with a finding of the tls check.

The message names the problem but rarely the server, the certificate or its dates. The
finding texts fill their placeholders from what the message gives, and leave out the parts
that need what it does not give. Facts always contain ``library`` and ``error_text``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from smtpdiag.decode.result import DecodeResult, InputKind
from smtpdiag.decode.tls_messages import MessageMatch, TlsLibrary, TlsProblem, find_message
from smtpdiag.models import Finding
from smtpdiag.tls.kinds import TLS_FINDINGS

KINDS = {kind.code: kind for kind in TLS_FINDINGS}

# Python: "Hostname mismatch, certificate is not valid for 'smtp.example.com'."
_PYTHON_HOST = re.compile(r"mismatch, certificate is not valid for '([^']+)'")
# Go: "x509: certificate is valid for a.example.com, b.example.com, not c.example.com"
_GO_NAMES = re.compile(r"x509: certificate is valid for (.+?), not (\S+)")
# Go: "x509: certificate is not valid for any names, but wanted to match c.example.com"
_GO_NO_NAMES = re.compile(r"wanted to match (\S+)")
# Go: "x509: cannot validate certificate for 10.0.0.1 because it doesn't contain any IP SANs"
_GO_NO_IP = re.compile(r"x509: cannot validate certificate for (\S+)")
# Go adds "current time T is after NOT_AFTER" (expired) or "is before NOT_BEFORE".
_GO_VALIDITY = re.compile(r"current time \S+ is (after|before) (\S+)")
# "port 587", "port=587" (msmtp log lines) or "smtp.example.com:587".
_PORT = re.compile(r"\bport[ =:]+(\d{1,5})\b|(?:^|\s)[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}:(\d{1,5})\b")

_PORT_MODE = {587: "Port 587 expects STARTTLS.", 465: "Port 465 expects implicit TLS."}

SNI_HINT = (
    "If the certificate is right for another name the server also serves, check that the "
    "client sends the host name as SNI: a server that picks its certificate by SNI sends its "
    "default certificate to a client that sends none."
)
MISSING_INTERMEDIATE_HINT = (
    "The same error appears when the server sends its certificate without the intermediate "
    "CA certificate; if other clients trust the server, configure it with the full chain file."
)


def decode_tls_error(text: str) -> DecodeResult | None:
    """Return the facts and finding of the first TLS error message in ``text``, or None."""
    match = find_message(text)
    if match is None:
        return None
    facts: dict[str, Any] = {"library": match.library.value, "error_text": match.line}
    finding = _BUILDERS[match.rule.problem](match, facts)
    return DecodeResult(InputKind.TLS_ERROR, dict(finding.facts), (finding,))


def _make(
    problem: TlsProblem, match: MessageMatch, facts: dict[str, Any], details: dict[str, Any]
) -> Finding:
    return KINDS[problem.value].make(facts=facts, evidence=(match.line,), details=details)


def _hostname_mismatch(match: MessageMatch, facts: dict[str, Any]) -> Finding:
    names, hostname = _mismatch_names(match.line)
    if names:
        facts["certificate_names"] = names
    if hostname is not None:
        facts["hostname"] = hostname
    facts["sni_hint"] = True

    details = {"host": hostname or "the requested host name", "names": ", ".join(names)}
    finding = _make(TlsProblem.HOSTNAME_MISMATCH, match, facts, details)
    if not names:
        finding = replace(
            finding,
            cause="Clients check that the certificate names the host they connect to, and "
            "this one does not name it.",
        )
    return replace(finding, fix=f"{finding.fix} {SNI_HINT}")


def _mismatch_names(line: str) -> tuple[list[str], str | None]:
    """Return the certificate's names and the requested name, as far as ``line`` gives them."""
    go_names = _GO_NAMES.search(line)
    if go_names:
        return [name.strip() for name in go_names[1].split(",")], go_names[2]
    for pattern in (_PYTHON_HOST, _GO_NO_NAMES, _GO_NO_IP):
        found = pattern.search(line)
        if found:
            return [], found[1]
    return [], None


def _cert_expired(match: MessageMatch, facts: dict[str, Any]) -> Finding:
    validity = _GO_VALIDITY.search(match.line)
    if validity and validity[1] == "before":
        return _cert_not_yet_valid(match, facts, not_before=validity[2])
    if validity:
        facts["cert_not_after"] = validity[2]
        return _make(TlsProblem.CERT_EXPIRED, match, facts, {"not_after": validity[2]})
    if match.rule.library is TlsLibrary.GO:
        # Without the detail, Go's message does not say which end of the window was crossed.
        facts["not_yet_valid_possible"] = True
    finding = _make(TlsProblem.CERT_EXPIRED, match, facts, {})
    return replace(finding, title="Certificate has expired")


def _cert_not_yet_valid(
    match: MessageMatch, facts: dict[str, Any], not_before: str | None = None
) -> Finding:
    if not_before is None:
        finding = _make(TlsProblem.CERT_NOT_YET_VALID, match, facts, {})
        return replace(finding, title="Certificate is not valid yet")
    facts["cert_not_before"] = not_before
    return _make(TlsProblem.CERT_NOT_YET_VALID, match, facts, {"not_before": not_before})


def _untrusted(match: MessageMatch, facts: dict[str, Any]) -> Finding:
    cause = (
        f"The client could not build a chain to a trusted root ({match.phrase}). The "
        "certificate is self-signed or issued by a private or unknown CA."
    )
    if match.rule.issuer_unknown:
        facts["possible_missing_intermediate"] = True
        cause = f"{cause} {MISSING_INTERMEDIATE_HINT}"
    finding = _make(TlsProblem.UNTRUSTED, match, facts, {"verify_error": match.phrase})
    return replace(finding, cause=cause)


def _wrong_mode(match: MessageMatch, facts: dict[str, Any]) -> Finding:
    port = _port(match.line)
    details = {"endpoint": "Server", "error": match.phrase}
    if port is not None:
        facts["port"] = port
        details["endpoint"] = f"Port {port}"
    finding = _make(TlsProblem.WRONG_MODE, match, facts, details)
    if port in _PORT_MODE:
        return replace(finding, fix=f"{_PORT_MODE[port]} {finding.fix}")
    return finding


def _port(line: str) -> int | None:
    found = _PORT.search(line)
    if found is None:
        return None
    port = int(found[1] or found[2])
    return port if 0 < port < 65536 else None


def _handshake_failed(match: MessageMatch, facts: dict[str, Any]) -> Finding:
    finding = _make(TlsProblem.HANDSHAKE_FAILED, match, facts, {"error": match.phrase})
    return replace(
        finding,
        title=f"TLS handshake failed: {match.phrase}",
        cause="The TLS session could not be established, so AUTH and mail cannot follow. "
        f"The client reported: {match.line}",
    )


def _protocol_outdated(match: MessageMatch, facts: dict[str, Any]) -> Finding:
    finding = _make(TlsProblem.PROTOCOL_OUTDATED, match, facts, {"tls_version": "no common"})
    # A pasted message names no negotiated version, only that none was agreed.
    return replace(
        finding,
        title=f"No TLS version in common: {match.phrase}",
    )


_BUILDERS: dict[TlsProblem, Callable[[MessageMatch, dict[str, Any]], Finding]] = {
    TlsProblem.HOSTNAME_MISMATCH: _hostname_mismatch,
    TlsProblem.CERT_EXPIRED: _cert_expired,
    TlsProblem.CERT_NOT_YET_VALID: _cert_not_yet_valid,
    TlsProblem.UNTRUSTED: _untrusted,
    TlsProblem.WRONG_MODE: _wrong_mode,
    TlsProblem.HANDSHAKE_FAILED: _handshake_failed,
    TlsProblem.PROTOCOL_OUTDATED: _protocol_outdated,
}
