"""Cause and fix sentences of ``token.endpoint_unreachable``, one pair per way a request fails.

A request that failed before the connection was established needs network advice: name
resolution, ports, routes, firewalls, web proxies. A request that was sent and got no reply
needs none of it, because the connection worked. There the endpoint, or a proxy in front of
it, took the request and stalled or dropped it.
"""

from __future__ import annotations

import ipaddress

from smtpdiag.oauth.http import EndpointError, EndpointFailure, parse_endpoint_url

_CONNECTION_WORKED = (
    " The connection{handshake} completed and the request was sent, so this host reaches "
    "{host} on port {port}."
)

_PROVIDER_OR_PROXY_FIX = (
    " Check the provider's service status, and the logs of any proxy or TLS-inspecting "
    "firewall between this host and {host}."
)

_HINTS: dict[EndpointFailure, tuple[str, str]] = {
    EndpointFailure.NAME_NOT_RESOLVED: (
        " The host name {host} does not resolve on this host, so no connection was made and "
        "the request was not sent.",
        " Check name resolution of {host} (getent hosts {host}) and the nameservers in "
        "/etc/resolv.conf.",
    ),
    EndpointFailure.REFUSED: (
        " {host} rejected the connection before the request was sent: nothing listens on "
        "port {port} there, or a firewall rejects the connection.",
        " Check the port in the token endpoint URL, and the firewall rules for outbound "
        "connections to {host} port {port}.",
    ),
    EndpointFailure.CONNECT_TIMEOUT: (
        " The connection{handshake} did not complete, so the request was not sent. The usual "
        "causes are a firewall that drops outbound HTTPS, a network that allows the web only "
        "through a proxy, or a slow network.",
        " Check the firewall rules for outbound connections to {host} port {port}, and "
        "whether this network requires a web proxy. A larger --timeout helps only on a slow "
        "network.",
    ),
    EndpointFailure.NETWORK: (
        " The connection failed before the request was sent. The usual causes are a host "
        "without a network connection or without a route to {host}, or a firewall.",
        " Check the network connection, the route to {host} (ip route get <address>), and "
        "the firewall rules for outbound connections to {host} port {port}.",
    ),
    EndpointFailure.STALLED: (
        _CONNECTION_WORKED + " The endpoint, or a proxy in front of it, {stall}. The usual "
        "causes are an incident at the provider, an intercepting proxy that holds the "
        "request, or a timeout that is too short for this endpoint.",
        _PROVIDER_OR_PROXY_FIX + " If the endpoint is only slow, raise the timeout (--timeout, "
        "or timeout in the configuration file). A larger timeout does not help an endpoint "
        "that never replies.",
    ),
    EndpointFailure.CLOSED: (
        _CONNECTION_WORKED + " The endpoint, or a proxy in front of it, then closed the "
        "connection without a complete reply. The usual causes are an intercepting proxy or "
        "firewall that drops the request, or an incident at the provider.",
        _PROVIDER_OR_PROXY_FIX,
    ),
    # TLS failures are reported as token.endpoint_tls, whose own text covers them.
    EndpointFailure.TLS: ("", ""),
}


def endpoint_failure_details(error: EndpointError, endpoint: str) -> dict[str, str]:
    """Return the placeholders of ``token.endpoint_unreachable`` and ``token.endpoint_tls``.

    ``endpoint`` is a URL that ``parse_endpoint_url`` accepted before the request.
    """
    parsed = parse_endpoint_url(endpoint)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    failure = error.failure
    if failure is EndpointFailure.NAME_NOT_RESOLVED and _is_address_literal(parsed.host):
        # An IP literal needs no name resolution, so resolution advice would mislead.
        failure = EndpointFailure.NETWORK

    if error.http_status is None:
        stall = "accepted the request and did not reply in time"
    else:
        stall = (
            f"accepted the request and started an HTTP {error.http_status} reply, but did "
            "not finish the reply in time"
        )
    values = {
        "host": host,
        "port": str(parsed.port),
        "handshake": " and TLS handshake" if parsed.scheme == "https" else "",
        "stall": stall,
    }
    cause_hint, fix_hint = _HINTS[failure]
    return {
        "endpoint": endpoint,
        "reason": error.reason,
        "host": host,
        "port": str(parsed.port),
        "cause_hint": cause_hint.format_map(values),
        "fix_hint": fix_hint.format_map(values),
    }


def _is_address_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
