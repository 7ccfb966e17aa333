"""The ``tls`` check: handshake with pyOpenSSL and judge the protocol and the certificate.

It reaches TLS the way a client does (STARTTLS or implicit TLS), records every certificate
verification error without aborting, and runs a second handshake with another SNI to tell
an SNI-dependent certificate from a wrong one. It sends no credentials. OpenSSL is imported
only when the check runs.
"""

from __future__ import annotations

import ipaddress
import socket

from smtpdiag.context import CheckContext, Target, TlsMode
from smtpdiag.models import CheckResult
from smtpdiag.spec import CheckSpec
from smtpdiag.tls.evaluate import Thresholds, evaluate
from smtpdiag.tls.kinds import TLS_FINDINGS

CHECK_ID = "tls"


def run(target: Target, ctx: CheckContext) -> CheckResult:
    """Measure the first address of the target and evaluate the handshakes."""
    from smtpdiag.tls.measure import TlsRequest, measure

    host, port, tls_mode, addresses = _endpoint(target, ctx)
    if not addresses:
        where = host or target.domain
        return CheckResult.unknown(CHECK_ID, f"no address to connect to for {where}")
    request = TlsRequest(
        address=addresses[0],
        port=port,
        implicit_tls=tls_mode is TlsMode.IMPLICIT,
        expected_name=host,
        sni=server_name(target, host),
        ca_file=target.ca_file,
        ehlo_name=target.ehlo_name,
        timeout=ctx.io_timeout(),
    )
    thresholds = Thresholds(ctx.settings.cert_warning_days, ctx.settings.cert_critical_days)
    return evaluate(measure(request), ctx.now(), thresholds, insecure=target.insecure)


def server_name(target: Target, host: str) -> str | None:
    """Return the SNI to send: ``--sni``, none with ``--no-sni`` or an IP host, else the host."""
    if target.no_sni:
        return None
    if target.sni:
        return target.sni
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host.rstrip(".") or None
    return None


def _endpoint(target: Target, ctx: CheckContext) -> tuple[str, int, TlsMode, list[str]]:
    """Return host, port, TLS mode and addresses, preferring what the dns check discovered."""
    dns = ctx.upstream.get("dns")
    facts = dns.facts if dns is not None else {}
    host = str(facts.get("host") or target.host)
    port = int(facts.get("port") or target.port)
    tls_mode = TlsMode(facts["tls_mode"]) if facts.get("tls_mode") else target.tls_mode
    addresses = [str(address) for address in facts.get("addresses", ())]
    if not addresses and host:
        addresses = _resolve(host, port)
    return host, port, tls_mode, addresses


def _resolve(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver when the dns check did not run."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    # NOTE: getaddrinfo has no timeout of its own; the engine's check deadline bounds it.
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


SPEC = CheckSpec(
    id=CHECK_ID,
    title="TLS protocol, certificate, chain and SNI",
    run=run,
    findings=TLS_FINDINGS,
    # After connect, so that a session that cannot reach TLS is reported once, by connect.
    requires=("dns", "connect"),
)
