"""The ``tls`` check: handshake with pyOpenSSL and judge the protocol and the certificate.

It reaches TLS the way a client does (STARTTLS or implicit TLS), records every certificate
verification error without aborting, and runs a second handshake with another SNI to tell
an SNI-dependent certificate from a wrong one. It sends no credentials. OpenSSL is imported
only when the check runs.
"""

from __future__ import annotations

import ipaddress

from smtpdiag.context import CheckContext, Target, TlsMode
from smtpdiag.endpoint import resolve_endpoint
from smtpdiag.models import CheckResult
from smtpdiag.spec import CheckSpec
from smtpdiag.tls.evaluate import Thresholds, evaluate
from smtpdiag.tls.kinds import TLS_FINDINGS

CHECK_ID = "tls"


def run(target: Target, ctx: CheckContext) -> CheckResult:
    """Measure the first address of the target and evaluate the handshakes."""
    from smtpdiag.tls.measure import TlsRequest, measure

    endpoint = resolve_endpoint(target, ctx)
    host, port, tls_mode, addresses = (
        endpoint.host,
        endpoint.port,
        endpoint.tls_mode,
        endpoint.addresses,
    )
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


SPEC = CheckSpec(
    id=CHECK_ID,
    title="TLS protocol, certificate, chain and SNI",
    run=run,
    findings=TLS_FINDINGS,
    # After connect, so that a session that cannot reach TLS is reported once, by connect.
    requires=("dns", "connect"),
)
