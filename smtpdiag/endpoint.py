"""The submission endpoint a check connects to: host, port, TLS mode and addresses.

The ``dns`` check may have found the host through SRV records, so checks prefer its facts
over the target's own values and resolve the host themselves only when it did not run.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from smtpdiag.context import CheckContext, Target, TlsMode


@dataclass(frozen=True)
class Endpoint:
    """Where a check connects."""

    host: str
    """Host name or IP literal; empty when neither the target nor the dns check named one."""
    port: int
    tls_mode: TlsMode
    addresses: tuple[str, ...]
    """IP addresses to connect to, IPv4 first when the dns check sorted them."""


def resolve_endpoint(target: Target, ctx: CheckContext) -> Endpoint:
    """Return the endpoint, preferring what the dns check discovered."""
    dns = ctx.upstream.get("dns")
    facts = dns.facts if dns is not None else {}
    host = str(facts.get("host") or target.host)
    port = int(facts.get("port") or target.port)
    tls_mode = TlsMode(facts["tls_mode"]) if facts.get("tls_mode") else target.tls_mode
    addresses = [str(address) for address in facts.get("addresses", ())]
    if not addresses and host:
        addresses = system_addresses(host, port)
    return Endpoint(host, port, tls_mode, tuple(addresses))


def system_addresses(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver, for runs without the dns check."""
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
