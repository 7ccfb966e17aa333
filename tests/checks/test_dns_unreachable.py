"""The ``dns`` check on a host that cannot send a query: no network, no route to the resolver.

The unit tests make dnspython's UDP query raise the OSError that a failed ``sendto`` raises.
The namespace tests run ``smtpdiag check`` under ``unshare -n``, in a network namespace whose
only interface is a loopback that is down, so the query leaves nothing behind the namespace.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from system_programs import require_program

from checks import dns as dns_check
from smtpdiag.context import CheckContext, Settings, Target, TlsMode
from smtpdiag.models import Severity, Status

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

DOCUMENTATION_RESOLVER = "192.0.2.53"
"""A resolver address from TEST-NET-1 (RFC 5737), which no real resolver uses."""

NAMESPACE_TIMEOUT = 60
"""Seconds after which a ``smtpdiag check`` in a namespace is killed, so a hang fails."""


def unreachable_udp(*args: Any, **kwargs: Any) -> Any:
    """Stand in for ``dns.query.udp`` on a host without a route: ``sendto`` fails at once."""
    raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))


def firewall_rejected_udp(*args: Any, **kwargs: Any) -> Any:
    """Stand in for ``dns.query.udp`` when an iptables REJECT rule fails ``sendto``."""
    raise OSError(errno.EPERM, os.strerror(errno.EPERM))


def run_with_udp(monkeypatch: pytest.MonkeyPatch, udp: Any, nameservers: tuple[str, ...]) -> Any:
    import dns.query

    monkeypatch.setattr(dns.query, "udp", udp)
    target = Target(host="smtp.example.com", port=587, tls_mode=TlsMode.STARTTLS)
    settings = Settings(timeout=2.0, dns_nameservers=nameservers)
    return dns_check.run(target, CheckContext(settings=settings))


def test_unreachable_lookup_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_with_udp(monkeypatch, unreachable_udp, (DOCUMENTATION_RESOLVER,))
    lookup = result.facts["lookups"][0]

    assert lookup["outcome"] == "unreachable"
    assert lookup["unreachable_nameservers"] == [DOCUMENTATION_RESOLVER]
    assert lookup["os_errors"] == ["ENETUNREACH"]


def test_unreachable_sends_no_aaaa_query(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_with_udp(monkeypatch, unreachable_udp, (DOCUMENTATION_RESOLVER,))

    assert [lookup["type"] for lookup in result.facts["lookups"]] == ["A"]


def test_unreachable_finding_code(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_with_udp(monkeypatch, unreachable_udp, (DOCUMENTATION_RESOLVER,))

    assert [finding.code for finding in result.findings] == ["dns.resolver_unreachable"]
    assert result.status is Status.CRITICAL


def test_unreachable_cause_names_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_with_udp(monkeypatch, unreachable_udp, (DOCUMENTATION_RESOLVER,))
    finding = result.findings[0]

    assert finding.cause.startswith(f"Nameserver {DOCUMENTATION_RESOLVER} could not be reached")
    assert "network is unreachable" in finding.cause
    assert "SERVFAIL" not in finding.cause


def test_unreachable_fix_names_route_and_resolv_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_with_udp(monkeypatch, unreachable_udp, (DOCUMENTATION_RESOLVER,))
    fix = result.findings[0].fix

    assert f"ip route get {DOCUMENTATION_RESOLVER}" in fix
    assert "/etc/resolv.conf" in fix
    assert "--dns-server" in fix


def test_unreachable_names_every_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    nameservers = (DOCUMENTATION_RESOLVER, "2001:db8::53")
    result = run_with_udp(monkeypatch, unreachable_udp, nameservers)

    assert result.findings[0].cause.startswith(
        f"Nameservers {DOCUMENTATION_RESOLVER}, 2001:db8::53 could not be reached"
    )


def test_firewall_rejection_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_with_udp(monkeypatch, firewall_rejected_udp, (DOCUMENTATION_RESOLVER,))
    finding = result.findings[0]

    assert finding.code == "dns.resolver_unreachable"
    assert "firewall" in finding.cause


def evaluate_unreachable(**overrides: Any) -> list[Any]:
    lookup = {
        "name": "smtp.example.com",
        "type": "A",
        "outcome": "unreachable",
        "canonical_name": None,
        "error": "All nameservers failed to answer the query smtp.example.com. IN A: Server "
        "Do53:10.0.0.53@53 answered [Errno 101] Network is unreachable",
        "timeout_seconds": None,
        "unreachable_nameservers": ["10.0.0.53"],
        "os_errors": ["ENETUNREACH"],
    }
    facts = {
        "host": "smtp.example.com",
        "addresses": [],
        "nameservers": ["system"],
        "dns_port": 53,
        "timeout_seconds": 10.0,
        "address_literal": False,
        "lookups": [lookup],
        **overrides,
    }
    return dns_check.evaluate(facts)


def test_evaluate_unreachable_system_resolver() -> None:
    finding = evaluate_unreachable()[0]

    assert finding.cause.startswith(
        "The system resolver 10.0.0.53 (from /etc/resolv.conf) could not be reached"
    )
    assert finding.evidence[0].endswith("Network is unreachable")


def test_evaluate_unreachable_with_address_is_warning() -> None:
    findings = evaluate_unreachable(addresses=["192.0.2.10"])

    assert [(finding.code, finding.severity) for finding in findings] == [
        ("dns.resolver_unreachable", Severity.WARNING)
    ]


def test_evaluate_unreachable_fills_placeholders() -> None:
    finding = evaluate_unreachable()[0]

    for text in (finding.title, finding.cause, finding.fix):
        assert "{" not in text, text


# Under unshare -n ---------------------------------------------------------------------------


def run_in_empty_namespace(*arguments: str) -> dict[str, Any]:
    """Run ``smtpdiag check ... --format json`` in a new network namespace; return the report."""
    unshare = require_program("unshare")
    command = [unshare, "--net", sys.executable, "-m", "smtpdiag", "check", *arguments]
    completed = subprocess.run(
        [*command, "--only", "dns", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=NAMESPACE_TIMEOUT,
        cwd=REPOSITORY_ROOT,
        check=False,
    )
    if "unshare" in completed.stderr and not completed.stdout:
        # An unprivileged user may not create a network namespace. CI runs as root.
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"unshare --net failed under CI: {completed.stderr.strip()}")
        pytest.skip(f"no permission for a network namespace: {completed.stderr.strip()}")
    assert completed.stdout, completed.stderr
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def dns_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    check = next(check for check in report["checks"] if check["id"] == "dns")
    findings: list[dict[str, Any]] = check["findings"]
    return findings


@pytest.mark.parametrize(
    ("resolver", "reason"),
    [
        pytest.param(DOCUMENTATION_RESOLVER, "the network is unreachable", id="ipv4"),
        pytest.param("127.0.0.1", "the network is unreachable", id="loopback-down"),
        # Without any IPv6 address, Linux fails the send with EADDRNOTAVAIL.
        pytest.param("2001:db8::53", "no local address to send from", id="ipv6"),
    ],
)
def test_namespace_resolver_unreachable(resolver: str, reason: str) -> None:
    report = run_in_empty_namespace("smtp.example.com", "--dns-server", resolver)
    findings = dns_findings(report)

    assert [finding["code"] for finding in findings] == ["dns.resolver_unreachable"]
    assert findings[0]["cause"].startswith(f"Nameserver {resolver} could not be reached")
    assert reason in findings[0]["cause"]


def test_namespace_system_resolver_unreachable() -> None:
    import dns.resolver

    try:
        configured = [str(address) for address in dns.resolver.Resolver().nameservers]
    except dns.resolver.NoResolverConfiguration:
        pytest.skip("/etc/resolv.conf names no nameserver")
    report = run_in_empty_namespace("smtp.example.com")
    finding = dns_findings(report)[0]

    assert finding["code"] == "dns.resolver_unreachable"
    assert finding["cause"].startswith(f"The system resolver {', '.join(configured)}")
    assert report["status"] == "critical"


def test_namespace_provider_target_unreachable() -> None:
    report = run_in_empty_namespace("--provider", "google", "--dns-server", DOCUMENTATION_RESOLVER)

    assert [finding["code"] for finding in dns_findings(report)] == ["dns.resolver_unreachable"]
