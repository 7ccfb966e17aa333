"""The ``connect`` check: TCP, greeting, EHLO, STARTTLS or implicit TLS, EHLO again.

It records capabilities before and after TLS, stops at the first refusal, and recognises a
port that speaks the other TLS mode. Certificate details belong to the ``tls`` check; this
check only reports that the handshake failed and why.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from smtpdiag.clock.sources import find_server_time
from smtpdiag.context import CheckContext, Target, TlsMode
from smtpdiag.endpoint import resolve_endpoint
from smtpdiag.models import CheckResult, Finding, Severity
from smtpdiag.smtp.probe import Failure, ProbeOutcome, ProbeRequest, Stage, probe
from smtpdiag.smtp.reply import HARD_LINE_LIMIT, MAX_REPLY_LINES, REPLY_LINE_LIMIT, ReplyLimit
from smtpdiag.smtp.transport import unverified_context
from smtpdiag.spec import CheckSpec, FindingKind

_FIX_PORTS = "Submission uses port 587 with STARTTLS or port 465 with implicit TLS."

REFUSED = FindingKind(
    "connect.refused",
    Severity.CRITICAL,
    "Connection to {endpoint} refused",
    "Nothing listens on port {port} at {address}, or a firewall rejects the connection.",
    f"Check the host and port and that the server runs. {_FIX_PORTS}",
)
TIMEOUT = FindingKind(
    "connect.timeout",
    Severity.CRITICAL,
    "No complete reply from {endpoint} within {timeout} s during {stage}",
    "The session stopped during {stage}: {error}. {explanation}",
    "{next_step} Raise --timeout only if the link or the server is known to be slow.",
)
UNREACHABLE = FindingKind(
    "connect.unreachable",
    Severity.CRITICAL,
    "Cannot reach {endpoint}: {error}",
    "The operating system could not open a connection: no route, no network, or an address "
    "family this host does not have (IPv6 without an IPv6 route).",
    "Check this host's network and routes; for an IPv6-only result, check IPv6 connectivity.",
)
CLOSED = FindingKind(
    "connect.closed",
    Severity.CRITICAL,
    "{endpoint} closed the connection during {stage}",
    "The server or a middlebox ended the session without a complete reply: {error}.",
    "Check the server's logs for this client's address; a connection limit, a block list "
    "or a TLS-terminating proxy in front of the server can cause this.",
)
GREETING_REJECTED = FindingKind(
    "connect.greeting_rejected",
    Severity.CRITICAL,
    "Server refused the session: {reply}",
    "The server greeted with {reply_code} instead of 220: it is overloaded or in maintenance, "
    "or it rejects this client's address (connection limit, block list).",
    "Retry later; if it persists, check the provider's status page or the server's logs for "
    "this client's IP address.",
)
NOT_SMTP = FindingKind(
    "connect.not_smtp",
    Severity.CRITICAL,
    "{endpoint} does not speak SMTP",
    "The peer sent bytes that are not an SMTP reply ({error}). {explanation}",
    f"{{next_step}} {_FIX_PORTS}",
)
EHLO_REJECTED = FindingKind(
    "connect.ehlo_rejected",
    Severity.CRITICAL,
    "Server rejected EHLO: {reply}",
    "The server refused the EHLO command, often because of the EHLO name or this client's address.",
    "Send a fully qualified EHLO name with --ehlo-name (or the client's helo/domain setting) "
    "and check the server's policy for this client.",
)
STARTTLS_REJECTED = FindingKind(
    "connect.starttls_rejected",
    Severity.CRITICAL,
    "Server rejected STARTTLS: {reply}",
    "The server advertised STARTTLS but refused the command; 454 means TLS is temporarily "
    "unavailable on the server (RFC 3207), often a certificate or key it cannot load.",
    "Retry later and tell the server's operator; meanwhile implicit TLS on port 465 may work.",
)
STARTTLS_NOT_OFFERED = FindingKind(
    "connect.starttls_not_offered",
    Severity.CRITICAL,
    "STARTTLS not offered by {endpoint}",
    "The EHLO reply lists no STARTTLS, so the session cannot be encrypted and providers "
    "refuse AUTH without TLS. Either the server expects implicit TLS, or a firewall or "
    "antivirus proxy strips STARTTLS from the EHLO reply.",
    "Try --tls-mode implicit on port 465; otherwise look for a middlebox that rewrites SMTP "
    "between this host and the server.",
)
TLS_HANDSHAKE_FAILED = FindingKind(
    "connect.tls_handshake_failed",
    Severity.CRITICAL,
    "TLS handshake with {endpoint} failed: {error}",
    "The TLS session could not be established, so nothing after it (AUTH, mail) can work. "
    "This check does not verify the certificate, so the cause is not the certificate: no "
    "common protocol version or cipher, a server that closes the connection, or a middlebox "
    "that breaks TLS.",
    "Repeat the handshake with {openssl_command} and add -msg to see where it stops and "
    "which alert is sent. Compare the TLS versions and ciphers that the server accepts with "
    "this client's, and check the server's TLS logs. The tls check does not run after this "
    "failure.",
)
PORT_EXPECTS_IMPLICIT_TLS = FindingKind(
    "connect.port_expects_implicit_tls",
    Severity.CRITICAL,
    "Port {port} expects implicit TLS, not STARTTLS",
    "The server sent no SMTP greeting but answered a TLS ClientHello: this port speaks TLS "
    "from the first byte (RFC 8314), so a client set up for STARTTLS waits for a greeting "
    "that never comes.",
    "Use --tls-mode implicit for port {port} (msmtp: tls_starttls off), or port 587 with STARTTLS.",
)
PORT_EXPECTS_STARTTLS = FindingKind(
    "connect.port_expects_starttls",
    Severity.CRITICAL,
    "Port {port} expects STARTTLS, not implicit TLS",
    "The server answered the TLS ClientHello with a plaintext SMTP greeting: this port starts "
    "in plaintext and upgrades with STARTTLS (RFC 3207).",
    "Use --tls-mode starttls for port {port} (msmtp: tls_starttls on), or port 465 with "
    "implicit TLS.",
)
GREETING_LATE = FindingKind(
    "connect.greeting_late",
    Severity.WARNING,
    "Greeting from {endpoint} came later than {seconds} s",
    "SMTP servers greet at once; this one stayed silent, which looks like a tarpit, a "
    "greeting delay against spam bots, or an overloaded server.",
    "Check the server's greeting delay settings and load; raise --timeout to measure the delay.",
)
AUTH_NOT_OFFERED = FindingKind(
    "connect.auth_not_offered",
    Severity.CRITICAL,
    "No AUTH offered by {endpoint} after TLS",
    "The EHLO reply has no AUTH keyword, so the server accepts no authenticated submission "
    "on this port. MX servers on port 25 never offer it.",
    "Use the provider's submission host on port 587 or 465; for Microsoft 365 check that "
    "SMTP AUTH is enabled for the mailbox.",
)
OAUTH_NOT_OFFERED = FindingKind(
    "connect.oauth_not_offered",
    Severity.CRITICAL,
    "Neither XOAUTH2 nor OAUTHBEARER offered (AUTH {mechanisms})",
    "OAuth2 submission needs one of these SASL mechanisms, and this server advertises only "
    "{mechanisms}. It is not the provider's OAuth2 submission host, or OAuth2 is disabled "
    "for this tenant or account.",
    "Use the provider's submission host (for example smtp.gmail.com or smtp.office365.com); "
    "for Microsoft 365 enable SMTP AUTH for the mailbox.",
)
AUTH_BEFORE_TLS = FindingKind(
    "connect.auth_before_tls",
    Severity.WARNING,
    "AUTH offered before TLS (AUTH {mechanisms})",
    "The server accepts AUTH on the plaintext session, so a client with TLS switched off "
    "sends its token or password in clear text.",
    "Offer AUTH only after STARTTLS (Postfix: smtpd_tls_auth_only = yes) and keep clients on "
    "STARTTLS or implicit TLS.",
)
ADDRESS_FAILED = FindingKind(
    "connect.address_failed",
    Severity.WARNING,
    "{endpoint} fails ({failure}) while other addresses of the host work",
    "Clients try the host's addresses in turn, so those that pick this one first see a delay "
    "or an error before they fall back to a working address.",
    "Fix the service on this address, or remove the address from DNS; for a local relay, "
    "make it listen on both 127.0.0.1 and ::1 or connect to the address it listens on.",
)
PROTOCOL_ODDITIES = FindingKind(
    "connect.protocol_oddities",
    Severity.INFO,
    "Server replies deviate from RFC 5321",
    "smtpdiag tolerated these deviations, but strict clients may not: {oddities}.",
    "Nothing to do on the client; report them to the server's operator if clients misbehave.",
)

FINDINGS = (
    REFUSED,
    TIMEOUT,
    UNREACHABLE,
    CLOSED,
    GREETING_REJECTED,
    NOT_SMTP,
    EHLO_REJECTED,
    STARTTLS_REJECTED,
    STARTTLS_NOT_OFFERED,
    TLS_HANDSHAKE_FAILED,
    PORT_EXPECTS_IMPLICIT_TLS,
    PORT_EXPECTS_STARTTLS,
    GREETING_LATE,
    AUTH_NOT_OFFERED,
    OAUTH_NOT_OFFERED,
    AUTH_BEFORE_TLS,
    ADDRESS_FAILED,
    PROTOCOL_ODDITIES,
)

_FAILURE_KINDS = {
    Failure.REFUSED: REFUSED,
    Failure.TIMEOUT: TIMEOUT,
    Failure.UNREACHABLE: UNREACHABLE,
    Failure.CLOSED: CLOSED,
    Failure.NOT_SMTP: NOT_SMTP,
    Failure.STARTTLS_NOT_OFFERED: STARTTLS_NOT_OFFERED,
    Failure.TLS_FAILED: TLS_HANDSHAKE_FAILED,
    Failure.EXPECTS_IMPLICIT_TLS: PORT_EXPECTS_IMPLICIT_TLS,
    Failure.EXPECTS_STARTTLS: PORT_EXPECTS_STARTTLS,
    Failure.GREETING_LATE: GREETING_LATE,
}

_REJECTED_KINDS = {
    Stage.GREETING: GREETING_REJECTED,
    Stage.EHLO: EHLO_REJECTED,
    Stage.EHLO_AFTER_TLS: EHLO_REJECTED,
    Stage.STARTTLS: STARTTLS_REJECTED,
}


def run(target: Target, ctx: CheckContext) -> CheckResult:
    """Probe every address of the target concurrently and evaluate the outcomes."""
    endpoint = resolve_endpoint(target, ctx)
    host, port, tls_mode, addresses = (
        endpoint.host,
        endpoint.port,
        endpoint.tls_mode,
        endpoint.addresses,
    )
    if not addresses:
        return CheckResult.unknown(
            "connect", f"no address to connect to for {host or target.domain}"
        )
    timeout = ctx.io_timeout()
    requests = [
        ProbeRequest(
            address=address,
            port=port,
            implicit_tls=tls_mode is TlsMode.IMPLICIT,
            server_hostname=host or None,
            ehlo_name=target.ehlo_name,
            # connect sends no credentials; the tls check judges the certificate.
            tls_context=unverified_context(),
            timeout=timeout,
        )
        for address in addresses
    ]
    started_at = ctx.now()
    outcomes = _probe_concurrently(requests)
    return evaluate(outcomes, timeout, started_at)


def _probe_concurrently(requests: Sequence[ProbeRequest]) -> list[ProbeOutcome]:
    """Probe every address at once, in daemon threads.

    Daemon threads, unlike a thread pool's workers, never keep the process alive at exit, so
    Ctrl-C and the engine's deadlines end the run even while a probe still waits on a socket.
    """
    outcomes: list[ProbeOutcome | None] = [None] * len(requests)

    def work(index: int) -> None:
        outcomes[index] = _probe_and_quit(requests[index])

    workers = [
        threading.Thread(target=work, args=(index,), name=f"connect-{index}", daemon=True)
        for index in range(len(requests))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [outcome for outcome in outcomes if outcome is not None]


def _probe_and_quit(request: ProbeRequest) -> ProbeOutcome:
    outcome = probe(request)
    if outcome.session is not None:
        try:
            outcome.session.command("QUIT")
        except (OSError, ValueError):
            pass  # the session is over either way; QUIT is a courtesy
        finally:
            outcome.session.channel.close()
            outcome.session = None
    return outcome


def evaluate(
    outcomes: Sequence[ProbeOutcome], timeout: float, started_at: datetime | None = None
) -> CheckResult:
    """Turn probe outcomes into the check result; pure, so tests can feed outcomes directly.

    ``started_at`` is the local UTC time at which the probes started; with it, a server time
    in a greeting becomes the ``server_timestamp`` fact for the clock check.
    """
    findings: dict[str, Finding] = {}
    any_completed = any(outcome.failure is None for outcome in outcomes)
    for outcome in outcomes:
        for found in _findings_for(outcome, timeout):
            # Clients fall back to the next address, so one bad address delays mail
            # instead of stopping it.
            demote = any_completed and outcome.failure is not None
            demote = demote and found.severity is Severity.CRITICAL
            finding = _address_failed(found) if demote else found
            if finding.code in findings:
                _add_address(findings, finding.code, outcome.address)
            else:
                findings[finding.code] = finding
    facts = {
        "addresses": [outcome.to_facts() for outcome in outcomes],
        "port": outcomes[0].port,
        "tls_mode": "implicit" if outcomes[0].implicit_tls else "starttls",
    }
    best = next((outcome for outcome in outcomes if outcome.failure is None), None)
    if best is not None and best.capabilities is not None:
        facts["auth_mechanisms"] = list(best.capabilities.auth_mechanisms)
        if best.tls is not None:
            facts["tls_version"] = best.tls.version
    if started_at is not None:
        facts.update(_greeting_time(outcomes, started_at))
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    ordered = sorted(findings.values(), key=lambda finding: order[finding.severity])
    return CheckResult.from_findings("connect", _summary(outcomes, ordered), ordered, facts)


def _greeting_time(outcomes: Sequence[ProbeOutcome], started_at: datetime) -> dict[str, str]:
    """Return the first server time found in a greeting, with the time it was received by.

    The probe records no time per reply, so the end of the probe is used in place of the greeting's
    arrival: an upper bound, later than the arrival by the EHLO and TLS round trips.
    """
    for outcome in outcomes:
        if outcome.greeting is None:
            continue
        timestamp = find_server_time(outcome.greeting.text)
        if timestamp is not None:
            received_by = started_at + timedelta(seconds=outcome.elapsed_seconds)
            return {
                "server_timestamp": timestamp,
                "server_timestamp_received_at": received_by.isoformat(),
            }
    return {}


def _address_failed(finding: Finding) -> Finding:
    """Restate a failure of one address as ``connect.address_failed``, keeping its facts."""
    facts = finding.facts
    address = str(facts.get("address", ""))
    port = facts.get("port")
    endpoint = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return ADDRESS_FAILED.make(
        facts={**facts, "failure_code": finding.code},
        evidence=finding.evidence,
        details={"endpoint": endpoint, "failure": finding.code},
    )


def _add_address(findings: dict[str, Finding], code: str, address: str) -> None:
    finding = findings[code]
    addresses = [*finding.facts.get("addresses", [finding.facts.get("address")]), address]
    findings[code] = Finding(
        finding.code,
        finding.severity,
        finding.title,
        finding.cause,
        finding.fix,
        {**finding.facts, "addresses": addresses},
        finding.evidence,
        finding.docs,
    )


def _summary(outcomes: Sequence[ProbeOutcome], findings: Sequence[Finding]) -> str:
    serious = [f for f in findings if f.severity is not Severity.INFO]
    if serious:
        return serious[0].title
    outcome = outcomes[0]
    mode = "implicit TLS" if outcome.implicit_tls else "STARTTLS"
    tls = f", {outcome.tls.version}" if outcome.tls else ""
    mechanisms = " ".join(outcome.capabilities.auth_mechanisms) if outcome.capabilities else ""
    count = f" ({len(outcomes)} addresses)" if len(outcomes) > 1 else ""
    return f"{_endpoint_text(outcome)} {mode}{tls}, AUTH {mechanisms}{count}"


def _endpoint_text(outcome: ProbeOutcome) -> str:
    if ":" in outcome.address:
        return f"[{outcome.address}]:{outcome.port}"
    return f"{outcome.address}:{outcome.port}"


_OTHER_SERVICE = (
    "Another service listens on this port (the evidence shows its first bytes), or a proxy "
    "interferes."
)
_BROKEN_FRAMING = {
    ReplyLimit.LINE_COUNT: (
        "The server sent SMTP reply lines during {stage}, but the reply went on past "
        f"{MAX_REPLY_LINES} lines without a last line. A real EHLO reply has a few dozen "
        f"lines, so smtpdiag stops reading at {MAX_REPLY_LINES}. A tarpit that holds clients "
        "with endless replies, a faulty server or content filter, or a proxy that corrupts "
        "the stream sends such replies."
    ),
    ReplyLimit.LINE_LENGTH: (
        "The server greeted as SMTP and then sent a line of more than "
        f"{HARD_LINE_LIMIT} octets during {{stage}}. RFC 5321 (section 4.5.3.1.5) limits a "
        f"reply line to {REPLY_LINE_LIMIT} octets including CRLF, and smtpdiag stops reading "
        f"a line at {HARD_LINE_LIMIT}. A faulty server or content filter, or a proxy that "
        "corrupts the stream, sends such lines."
    ),
    None: (
        "The server greeted as SMTP and then sent a line during {stage} that is not an SMTP "
        "reply line. A faulty server or content filter, or a proxy that corrupts the stream, "
        "sends such lines."
    ),
}
"""Explanations of a NOT_SMTP failure of a peer that spoke SMTP, by the limit it went past."""
_FIX_BROKEN_FRAMING = (
    "Send the evidence to the server's operator: it shows the command and the reply that "
    "broke. Meanwhile try the provider's other submission port, or another network if a "
    "proxy sits in between."
)
_TCP_TIMEOUT = (
    "The TCP connection did not open: a firewall drops the traffic, or the host is down. "
    "Many networks and cloud providers block outbound SMTP ports."
)
_FIX_TCP_TIMEOUT = (
    "Check firewall rules and security groups for outbound TCP {port}, and try from another "
    "network."
)
_SILENT_SERVER = (
    "The server accepted the TCP connection and then sent no complete reply in time (the "
    "evidence shows any bytes that arrived). A tarpit that slows clients down, a hung or "
    "overloaded mail daemon, a service that waits for the client to speak first, or a proxy "
    "or load balancer that accepts connections for a server it cannot reach behaves like this."
)
_FIX_SILENT_SERVER = (
    "Check the server's load and its log for this client's address, and that the port "
    "belongs to the mail server, not to a proxy or another service."
)


def _explanation_details(outcome: ProbeOutcome) -> dict[str, str]:
    """Return the ``explanation`` and ``next_step`` texts of a TIMEOUT or NOT_SMTP failure."""
    if outcome.failure is Failure.TIMEOUT:
        if outcome.stage is Stage.TCP:
            return {
                "explanation": _TCP_TIMEOUT,
                "next_step": _FIX_TCP_TIMEOUT.format(port=outcome.port),
            }
        return {"explanation": _SILENT_SERVER, "next_step": _FIX_SILENT_SERVER}
    # A reply that went past the line count limit consisted of SMTP reply lines, even when
    # it was the greeting.
    spoke_smtp = outcome.greeting is not None or outcome.reply_limit is ReplyLimit.LINE_COUNT
    if not spoke_smtp:
        return {
            "explanation": _OTHER_SERVICE,
            "next_step": "Check the host and port.",
        }
    explanation = _BROKEN_FRAMING[outcome.reply_limit].format(stage=outcome.stage.phrase)
    return {"explanation": explanation, "next_step": _FIX_BROKEN_FRAMING}


def _openssl_command(outcome: ProbeOutcome) -> str:
    """Return the ``openssl s_client`` command that repeats this probe's TLS handshake."""
    parts = ["openssl s_client"]
    if not outcome.implicit_tls:
        parts.append("-starttls smtp")
    parts.append(f"-connect {_endpoint_text(outcome)}")
    if outcome.server_hostname and not _is_ip_address(outcome.server_hostname):
        parts.append(f"-servername {outcome.server_hostname}")
    return " ".join(parts)


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _details(outcome: ProbeOutcome, timeout: float) -> dict[str, Any]:
    reply = outcome.reply
    return {
        **_explanation_details(outcome),
        "openssl_command": _openssl_command(outcome),
        "endpoint": _endpoint_text(outcome),
        "address": outcome.address,
        "port": outcome.port,
        "stage": outcome.stage.phrase,
        "timeout": f"{timeout:g}",
        "seconds": f"{timeout / 2:g}",
        "error": outcome.error or "",
        "reply": " ".join(reply.transcript(prefix="")) if reply else "",
        "reply_code": reply.code if reply else "",
    }


def _findings_for(outcome: ProbeOutcome, timeout: float) -> list[Finding]:
    details = _details(outcome, timeout)
    facts = outcome.to_facts()
    evidence = outcome.transcript[-20:]
    findings: list[Finding] = []
    if outcome.failure is Failure.REJECTED:
        kind = _REJECTED_KINDS.get(outcome.stage, EHLO_REJECTED)
        findings.append(kind.make(facts=facts, evidence=evidence, details=details))
    elif outcome.failure is not None:
        if outcome.raw:
            details["error"] = f"{details['error']}: {outcome.raw_excerpt(80)}"
        kind = _FAILURE_KINDS[outcome.failure]
        findings.append(kind.make(facts=facts, evidence=evidence, details=details))
    else:
        findings += _capability_findings(outcome, facts, evidence, details)
    if outcome.oddities:
        oddities = "; ".join(dict.fromkeys(outcome.oddities))
        findings.append(
            PROTOCOL_ODDITIES.make(
                facts={**facts, "oddities": list(dict.fromkeys(outcome.oddities))},
                evidence=evidence,
                details={**details, "oddities": oddities},
            )
        )
    return findings


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _capability_findings(
    outcome: ProbeOutcome, facts: dict[str, Any], evidence: list[str], details: dict[str, Any]
) -> list[Finding]:
    findings: list[Finding] = []
    before = outcome.capabilities_before_tls
    # Dovecot treats a client whose address equals its own as secured and offers AUTH before
    # TLS to it, so a loopback session shows nothing about what remote clients are offered.
    if before is not None and before.auth_mechanisms and not _is_loopback(outcome.address):
        mechanisms = " ".join(before.auth_mechanisms)
        findings.append(
            AUTH_BEFORE_TLS.make(
                facts=facts, evidence=evidence, details={**details, "mechanisms": mechanisms}
            )
        )
    after = outcome.capabilities_after_tls
    if after is None:
        return findings
    if not after.auth_mechanisms:
        findings.append(AUTH_NOT_OFFERED.make(facts=facts, evidence=evidence, details=details))
    elif not after.oauth_mechanisms:
        mechanisms = " ".join(after.auth_mechanisms)
        findings.append(
            OAUTH_NOT_OFFERED.make(
                facts=facts, evidence=evidence, details={**details, "mechanisms": mechanisms}
            )
        )
    return findings


SPEC = CheckSpec(
    id="connect",
    title="Connect, greeting, EHLO and TLS start",
    run=run,
    findings=FINDINGS,
    requires=("dns",),
)
