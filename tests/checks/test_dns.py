"""Tests of the ``dns`` check against the local DNS responder, and of its pure ``evaluate``."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from checks import dns as dns_check
from smtpdiag.context import CheckContext, Settings, Target, TlsMode
from smtpdiag.lab.dns_server import LocalDnsServer, ReceivedQuery
from smtpdiag.models import CheckResult, Finding, Severity, Status

ZONE: dict[str, dict[str, list[str]]] = {
    "smtp.example.com": {"A": ["192.0.2.10"], "AAAA": ["2001:db8::10"]},
    "v4.example.com": {"A": ["192.0.2.21", "192.0.2.20"]},
    "v6.example.com": {"AAAA": ["2001:db8::30"]},
    "other.example.net": {"A": ["198.51.100.7"]},
    "alias.example.com": {"CNAME": ["alias2.example.com."]},
    "alias2.example.com": {"CNAME": ["smtp.example.com."]},
    "dangling.example.com": {"CNAME": ["gone.example.com."]},
    "empty.example.com": {},
    "big.example.com": {"A": [f"192.0.2.{index}" for index in range(100, 160)]},
    # Implicit TLS and STARTTLS both published: implicit TLS wins.
    "_submissions._tcp.both.example.org": {"SRV": ["0 1 465 smtp.example.com."]},
    "_submission._tcp.both.example.org": {"SRV": ["0 1 587 v4.example.com."]},
    # STARTTLS only, listed out of order: priority 10 before 20, weight 50 before 1.
    "_submission._tcp.starttls.example.org": {
        "SRV": [
            "20 5 587 v6.example.com.",
            "10 1 2587 v4.example.com.",
            "10 50 587 smtp.example.com.",
        ]
    },
    "_submissions._tcp.disabled.example.org": {"SRV": ["0 0 0 ."]},
    "_submission._tcp.disabled.example.org": {"SRV": ["0 1 587 smtp.example.com."]},
    "_submissions._tcp.off.example.org": {"SRV": ["0 0 0 ."]},
    "_submission._tcp.off.example.org": {"SRV": ["0 0 0 ."]},
    "_submissions._tcp.slowsrv.example.org": {"SRV": ["0 1 465 smtp.example.com."]},
    "_submission._tcp.slowsrv.example.org": {"SRV": ["0 1 587 v4.example.com."]},
    "_submissions._tcp.nohost.example.org": {"SRV": ["0 1 465 gone.example.com."]},
}

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

SILENT = ("slow.example.com", "_submissions._tcp.slowsrv.example.org")
FAILING = ("broken.example.com",)


@pytest.fixture
def server() -> Iterator[LocalDnsServer]:
    with LocalDnsServer(ZONE, silent=SILENT, servfail=FAILING) as running:
        yield running


def make_context(server: LocalDnsServer, timeout: float = 2.0) -> CheckContext:
    settings = Settings(timeout=timeout, dns_nameservers=("127.0.0.1",), dns_port=server.port)
    return CheckContext(settings=settings)


def make_target(host: str = "", domain: str | None = None, port: int = 587) -> Target:
    return Target(host=host, port=port, tls_mode=TlsMode.for_port(port), domain=domain)


def run_check(
    server: LocalDnsServer, host: str = "", domain: str | None = None, timeout: float = 2.0
) -> CheckResult:
    return dns_check.run(make_target(host, domain), make_context(server, timeout))


def codes(findings: tuple[Finding, ...] | list[Finding]) -> list[str]:
    return [finding.code for finding in findings]


def severity_of(findings: tuple[Finding, ...] | list[Finding], code: str) -> Severity:
    return next(finding.severity for finding in findings if finding.code == code)


@dataclass(frozen=True)
class HostCase:
    """One host name resolved against ``ZONE``."""

    id: str
    host: str
    addresses: list[str]
    codes: list[str]
    status: Status
    canonical_name: str | None = None


HOST_CASES = [
    HostCase(
        "a-only",
        "v4.example.com",
        ["192.0.2.20", "192.0.2.21"],
        [],
        Status.OK,
        "v4.example.com",
    ),
    HostCase(
        "a-and-aaaa",
        "smtp.example.com",
        ["192.0.2.10", "2001:db8::10"],
        [],
        Status.OK,
        "smtp.example.com",
    ),
    HostCase(
        "aaaa-only",
        "v6.example.com",
        ["2001:db8::30"],
        ["dns.ipv6_only"],
        Status.WARNING,
        "v6.example.com",
    ),
    HostCase(
        "cname-chain",
        "alias.example.com",
        ["192.0.2.10", "2001:db8::10"],
        [],
        Status.OK,
        "smtp.example.com",
    ),
    HostCase(
        "trailing-dot-and-case",
        "SMTP.Example.COM.",
        ["192.0.2.10", "2001:db8::10"],
        [],
        Status.OK,
        "smtp.example.com",
    ),
    HostCase(
        "nxdomain",
        "nope.example.com",
        [],
        ["dns.no_address"],
        Status.CRITICAL,
        "nope.example.com",
    ),
    HostCase(
        "cname-to-nxdomain",
        "dangling.example.com",
        [],
        ["dns.no_address"],
        Status.CRITICAL,
        "gone.example.com",
    ),
    HostCase(
        "no-address-records",
        "empty.example.com",
        [],
        ["dns.no_address"],
        Status.CRITICAL,
        "empty.example.com",
    ),
    HostCase("servfail", "broken.example.com", [], ["dns.servfail"], Status.CRITICAL),
    HostCase("invalid-name", "bad..example.com", [], ["dns.invalid_name"], Status.CRITICAL),
]


@pytest.mark.parametrize("case", HOST_CASES, ids=lambda case: case.id)
def test_host_lookup(server: LocalDnsServer, case: HostCase) -> None:
    result = run_check(server, host=case.host)

    assert result.facts["addresses"] == case.addresses
    assert codes(result.findings) == case.codes
    assert result.status == case.status
    assert result.facts["canonical_name"] == case.canonical_name
    assert result.facts["nameservers"] == ["127.0.0.1"]


def test_host_summary_lists_addresses(server: LocalDnsServer) -> None:
    result = run_check(server, host="smtp.example.com")

    assert result.summary == "smtp.example.com resolves to 2 addresses (192.0.2.10, 2001:db8::10)"


def test_host_facts_keep_target_port(server: LocalDnsServer) -> None:
    result = run_check(server, host="smtp.example.com")

    assert result.facts["host"] == "smtp.example.com"
    assert result.facts["port"] == 587
    assert result.facts["tls_mode"] == "starttls"
    assert "srv" not in result.facts


def test_nxdomain_cause_says_name_missing(server: LocalDnsServer) -> None:
    result = run_check(server, host="nope.example.com")

    assert result.findings[0].cause == (
        "The name nope.example.com does not exist in DNS (NXDOMAIN), "
        "so a client has no address to connect to."
    )


def test_dangling_cname_cause_names_alias_target(server: LocalDnsServer) -> None:
    result = run_check(server, host="dangling.example.com")

    assert "alias (CNAME) of gone.example.com" in result.findings[0].cause
    assert result.findings[0].facts["canonical_name"] == "gone.example.com"


def test_no_records_cause_says_name_exists(server: LocalDnsServer) -> None:
    result = run_check(server, host="empty.example.com")

    assert "exists in DNS but has no A or AAAA records" in result.findings[0].cause


def test_invalid_name_sends_no_query(server: LocalDnsServer) -> None:
    run_check(server, host="bad..example.com")

    assert server.queries == ()


def test_silent_nameserver_times_out(server: LocalDnsServer) -> None:
    result = run_check(server, host="slow.example.com", timeout=0.5)

    assert codes(result.findings) == ["dns.timeout"]
    assert result.status == Status.CRITICAL
    assert result.findings[0].cause == (
        f"Nameserver 127.0.0.1 on port {server.port} did not answer within 0.5 seconds."
    )
    assert result.findings[0].title == "DNS lookup of slow.example.com A timed out"


def test_timeout_skips_aaaa_query(server: LocalDnsServer) -> None:
    run_check(server, host="slow.example.com", timeout=0.5)

    assert [query.type for query in server.queries] == ["A"]


def test_large_answer_falls_back_to_tcp(server: LocalDnsServer) -> None:
    result = run_check(server, host="big.example.com")

    assert len(result.facts["addresses"]) == 60
    assert ReceivedQuery("big.example.com", "A", "tcp") in server.queries


@dataclass(frozen=True)
class DomainCase:
    """One mail domain whose SRV records are read from ``ZONE``."""

    id: str
    domain: str
    host: str
    port: int
    tls_mode: str
    codes: list[str]
    status: Status
    target_host: str = ""
    srv_targets: list[str] = field(default_factory=list)


DOMAIN_CASES = [
    DomainCase(
        "submissions-preferred",
        "both.example.org",
        "smtp.example.com",
        465,
        "implicit",
        [],
        Status.OK,
        srv_targets=["smtp.example.com", "v4.example.com"],
    ),
    DomainCase(
        "priority-then-weight",
        "starttls.example.org",
        "smtp.example.com",
        587,
        "starttls",
        ["dns.srv_prefers_starttls"],
        Status.OK,
        srv_targets=["smtp.example.com", "v4.example.com", "v6.example.com"],
    ),
    DomainCase(
        "submissions-disabled",
        "disabled.example.org",
        "smtp.example.com",
        587,
        "starttls",
        ["dns.srv_service_disabled", "dns.srv_prefers_starttls"],
        Status.OK,
        srv_targets=[".", "smtp.example.com"],
    ),
    DomainCase(
        "both-disabled",
        "off.example.org",
        "",
        587,
        "starttls",
        ["dns.srv_service_disabled", "dns.srv_service_disabled"],
        Status.CRITICAL,
        srv_targets=[".", "."],
    ),
    DomainCase(
        "no-srv",
        "nosrv.example.org",
        "",
        587,
        "starttls",
        ["dns.srv_not_found"],
        Status.CRITICAL,
    ),
    DomainCase(
        "no-srv-host-given",
        "nosrv.example.org",
        "smtp.example.com",
        587,
        "starttls",
        ["dns.srv_not_found"],
        Status.OK,
        target_host="smtp.example.com",
    ),
    DomainCase(
        "host-differs-from-srv",
        "both.example.org",
        "other.example.net",
        587,
        "starttls",
        ["dns.srv_host_mismatch"],
        Status.WARNING,
        target_host="other.example.net",
        srv_targets=["smtp.example.com", "v4.example.com"],
    ),
    DomainCase(
        "host-matches-second-srv",
        "both.example.org",
        "v4.example.com",
        587,
        "starttls",
        [],
        Status.OK,
        target_host="v4.example.com",
        srv_targets=["smtp.example.com", "v4.example.com"],
    ),
    DomainCase(
        "srv-timeout-falls-back",
        "slowsrv.example.org",
        "v4.example.com",
        587,
        "starttls",
        ["dns.timeout"],
        Status.WARNING,
        srv_targets=["v4.example.com"],
    ),
    DomainCase(
        "srv-target-missing",
        "nohost.example.org",
        "gone.example.com",
        465,
        "implicit",
        ["dns.no_address"],
        Status.CRITICAL,
        srv_targets=["gone.example.com"],
    ),
]


@pytest.mark.parametrize("case", DOMAIN_CASES, ids=lambda case: case.id)
def test_domain_discovery(server: LocalDnsServer, case: DomainCase) -> None:
    result = run_check(server, host=case.target_host, domain=case.domain, timeout=0.5)

    assert result.facts["host"] == case.host
    assert result.facts["port"] == case.port
    assert result.facts["tls_mode"] == case.tls_mode
    assert codes(result.findings) == case.codes
    assert result.status == case.status
    assert [record["target"] for record in result.facts["srv"]] == case.srv_targets


def test_srv_facts_hold_every_record(server: LocalDnsServer) -> None:
    result = run_check(server, domain="both.example.org")

    assert result.facts["srv"] == [
        {
            "service": "submissions",
            "priority": 0,
            "weight": 1,
            "port": 465,
            "target": "smtp.example.com",
        },
        {
            "service": "submission",
            "priority": 0,
            "weight": 1,
            "port": 587,
            "target": "v4.example.com",
        },
    ]


def test_srv_summary_names_service(server: LocalDnsServer) -> None:
    result = run_check(server, domain="both.example.org")

    assert result.summary == (
        "smtp.example.com resolves to 2 addresses (192.0.2.10, 2001:db8::10); "
        "found via _submissions._tcp.both.example.org, port 465, implicit"
    )


def test_srv_not_found_summary(server: LocalDnsServer) -> None:
    result = run_check(server, domain="nosrv.example.org")

    assert result.summary == "nosrv.example.org publishes no SRV records for mail submission"


def test_srv_not_found_with_host_is_info(server: LocalDnsServer) -> None:
    result = run_check(server, host="smtp.example.com", domain="nosrv.example.org")

    assert severity_of(result.findings, "dns.srv_not_found") == Severity.INFO


def test_disabled_with_other_service_is_info(server: LocalDnsServer) -> None:
    result = run_check(server, domain="disabled.example.org")

    assert severity_of(result.findings, "dns.srv_service_disabled") == Severity.INFO


def test_disabled_finding_names_service(server: LocalDnsServer) -> None:
    result = run_check(server, domain="disabled.example.org")

    assert result.findings[0].title == "disabled.example.org marks submissions as not offered"


def test_srv_timeout_with_fallback_is_warning(server: LocalDnsServer) -> None:
    result = run_check(server, domain="slowsrv.example.org", timeout=0.5)

    assert severity_of(result.findings, "dns.timeout") == Severity.WARNING


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("192.0.2.55", "192.0.2.55"),
        ("2001:db8::55", "2001:db8::55"),
        ("[2001:db8::55]", "2001:db8::55"),
    ],
    ids=["ipv4", "ipv6", "ipv6-bracketed"],
)
def test_address_literal_needs_no_query(server: LocalDnsServer, host: str, address: str) -> None:
    result = run_check(server, host=host, domain="both.example.org")

    assert result.facts["addresses"] == [address]
    assert result.status == Status.OK
    assert "IP address literal" in result.summary
    assert server.queries == ()


def test_target_without_host_or_domain_is_skipped(server: LocalDnsServer) -> None:
    result = run_check(server)

    assert result.status == Status.SKIPPED


def test_spec_lists_every_finding() -> None:
    codes_listed = [kind.code for kind in dns_check.SPEC.findings]

    assert dns_check.SPEC.id == "dns"
    assert dns_check.SPEC.requires == ()
    assert len(set(codes_listed)) == len(codes_listed)
    assert all(code.startswith("dns.") for code in codes_listed)


def test_module_import_does_not_load_dnspython() -> None:
    probe = (
        "import sys, checks.dns; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dns'))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPOSITORY_ROOT,
    )

    assert completed.stdout.strip() == "[]"


# Responder behaviour that the check tests do not cover.


def test_responder_rejects_unsupported_type() -> None:
    with pytest.raises(ValueError, match="MX"):
        LocalDnsServer({"example.com": {"MX": ["10 mail.example.com."]}})


def test_responder_rejects_cname_with_other_data() -> None:
    with pytest.raises(ValueError, match="CNAME"):
        LocalDnsServer({"a.example.com": {"CNAME": ["b.example.com."], "A": ["192.0.2.1"]}})


def test_responder_survives_malformed_datagram(server: LocalDnsServer) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.sendto(b"\x00not a DNS message", ("127.0.0.1", server.port))
    result = run_check(server, host="v4.example.com")

    assert result.facts["addresses"] == ["192.0.2.20", "192.0.2.21"]


def test_responder_port_needs_start() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = LocalDnsServer({}).port


# Pure evaluate: facts in, findings out, no network.


def base_facts(**overrides: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "host": "smtp.example.com",
        "port": 587,
        "tls_mode": "starttls",
        "addresses": ["192.0.2.10"],
        "canonical_name": "smtp.example.com",
        "nameservers": ["127.0.0.1"],
        "dns_port": 53,
        "timeout_seconds": 10.0,
        "address_literal": False,
        "target_host": "smtp.example.com",
        "srv_service": None,
        "lookups": [
            lookup("smtp.example.com", "A", "answered"),
            lookup("smtp.example.com", "AAAA", "no_answer"),
        ],
    }
    facts.update(overrides)
    return facts


def lookup(name: str, rdtype: str, outcome: str, **extra: Any) -> dict[str, Any]:
    fact = {"name": name, "type": rdtype, "outcome": outcome, "canonical_name": None}
    return {**fact, "error": None, **extra}


def srv(service: str, target: str, port: int = 587) -> dict[str, Any]:
    return {"service": service, "priority": 0, "weight": 1, "port": port, "target": target}


def domain_facts(
    srv_records: list[dict[str, Any]], outcomes: tuple[str, str], **overrides: Any
) -> dict[str, Any]:
    lookups = [
        lookup("_submissions._tcp.example.org", "SRV", outcomes[0]),
        lookup("_submission._tcp.example.org", "SRV", outcomes[1]),
        lookup("smtp.example.com", "A", "answered"),
    ]
    facts = base_facts(domain="example.org", srv=srv_records, target_host=None, lookups=lookups)
    facts.update(overrides)
    return facts


@dataclass(frozen=True)
class EvaluateCase:
    """Facts and the findings that ``evaluate`` must return for them."""

    id: str
    facts: dict[str, Any]
    expected: list[tuple[str, Severity]]


EVALUATE_CASES = [
    EvaluateCase("address-literal", {"address_literal": True, "addresses": ["192.0.2.1"]}, []),
    EvaluateCase("ipv4-resolved", base_facts(), []),
    EvaluateCase(
        "ipv6-only",
        base_facts(addresses=["2001:db8::1"]),
        [("dns.ipv6_only", Severity.WARNING)],
    ),
    EvaluateCase(
        "nxdomain",
        base_facts(addresses=[], lookups=[lookup("smtp.example.com", "A", "nxdomain")]),
        [("dns.no_address", Severity.CRITICAL)],
    ),
    EvaluateCase(
        "no-answer-both",
        base_facts(
            addresses=[],
            lookups=[
                lookup("smtp.example.com", "A", "no_answer"),
                lookup("smtp.example.com", "AAAA", "no_answer"),
            ],
        ),
        [("dns.no_address", Severity.CRITICAL)],
    ),
    EvaluateCase(
        "a-timeout",
        base_facts(addresses=[], lookups=[lookup("smtp.example.com", "A", "timeout")]),
        [("dns.timeout", Severity.CRITICAL)],
    ),
    EvaluateCase(
        "aaaa-timeout-with-ipv4",
        base_facts(
            lookups=[
                lookup("smtp.example.com", "A", "answered"),
                lookup("smtp.example.com", "AAAA", "timeout"),
            ]
        ),
        [("dns.timeout", Severity.WARNING)],
    ),
    EvaluateCase(
        "servfail",
        base_facts(addresses=[], lookups=[lookup("smtp.example.com", "A", "servfail")]),
        [("dns.servfail", Severity.CRITICAL)],
    ),
    EvaluateCase(
        "invalid-name",
        base_facts(
            host="bad..example.com",
            addresses=[],
            lookups=[lookup("bad..example.com", "A", "invalid_name", error="empty label")],
        ),
        [("dns.invalid_name", Severity.CRITICAL)],
    ),
    EvaluateCase(
        "srv-not-found",
        domain_facts(
            [],
            ("nxdomain", "no_answer"),
            host="",
            addresses=[],
            lookups=[
                lookup("_submissions._tcp.example.org", "SRV", "nxdomain"),
                lookup("_submission._tcp.example.org", "SRV", "no_answer"),
            ],
        ),
        [("dns.srv_not_found", Severity.CRITICAL)],
    ),
    EvaluateCase(
        "srv-not-found-host-given",
        domain_facts([], ("nxdomain", "nxdomain"), target_host="smtp.example.com"),
        [("dns.srv_not_found", Severity.INFO)],
    ),
    EvaluateCase(
        "implicit-tls-published",
        domain_facts([srv("submissions", "smtp.example.com", 465)], ("answered", "nxdomain")),
        [],
    ),
    EvaluateCase(
        "starttls-only",
        domain_facts([srv("submission", "smtp.example.com")], ("nxdomain", "answered")),
        [("dns.srv_prefers_starttls", Severity.INFO)],
    ),
    EvaluateCase(
        "starttls-after-srv-timeout",
        domain_facts([srv("submission", "smtp.example.com")], ("timeout", "answered")),
        [("dns.timeout", Severity.WARNING)],
    ),
    EvaluateCase(
        "implicit-disabled",
        domain_facts(
            [srv("submissions", ".", 0), srv("submission", "smtp.example.com")],
            ("answered", "answered"),
        ),
        [("dns.srv_service_disabled", Severity.INFO), ("dns.srv_prefers_starttls", Severity.INFO)],
    ),
    EvaluateCase(
        "all-disabled",
        domain_facts(
            [srv("submissions", ".", 0), srv("submission", ".", 0)],
            ("answered", "answered"),
            host="",
            addresses=[],
        ),
        [
            ("dns.srv_service_disabled", Severity.CRITICAL),
            ("dns.srv_service_disabled", Severity.CRITICAL),
        ],
    ),
    EvaluateCase(
        "host-mismatch",
        domain_facts(
            [srv("submissions", "smtp.example.com", 465)],
            ("answered", "nxdomain"),
            host="mail.example.net",
            target_host="mail.example.net",
        ),
        [("dns.srv_host_mismatch", Severity.WARNING)],
    ),
    EvaluateCase(
        "host-matches-ignoring-case",
        domain_facts(
            [srv("submissions", "smtp.example.com", 465)],
            ("answered", "nxdomain"),
            target_host="SMTP.Example.com.",
        ),
        [],
    ),
]


@pytest.mark.parametrize("case", EVALUATE_CASES, ids=lambda case: case.id)
def test_evaluate(case: EvaluateCase) -> None:
    findings = dns_check.evaluate(case.facts)

    assert [(finding.code, finding.severity) for finding in findings] == case.expected


def test_evaluate_fills_every_placeholder() -> None:
    facts = domain_facts([], ("timeout", "servfail"), host="", addresses=[])
    findings = dns_check.evaluate(facts)
    texts = [text for finding in findings for text in (finding.title, finding.cause, finding.fix)]

    assert codes(findings) == ["dns.timeout", "dns.servfail"]
    assert not [text for text in texts if "{" in text]


def test_evaluate_reports_query_timeout() -> None:
    facts = base_facts(
        addresses=[],
        lookups=[lookup("smtp.example.com", "A", "timeout", timeout_seconds=1.25)],
    )

    assert dns_check.evaluate(facts)[0].cause == (
        "Nameserver 127.0.0.1 did not answer within 1.25 seconds."
    )


def test_evaluate_names_system_resolver() -> None:
    facts = base_facts(
        nameservers=["system"],
        addresses=[],
        lookups=[lookup("smtp.example.com", "A", "timeout")],
    )

    assert dns_check.evaluate(facts)[0].cause.startswith("The system resolver")


def test_evaluate_mismatch_lists_srv_hosts() -> None:
    facts = domain_facts(
        [srv("submissions", "smtp.example.com", 465), srv("submission", "v4.example.com")],
        ("answered", "answered"),
        host="mail.example.net",
        target_host="mail.example.net",
    )

    assert dns_check.evaluate(facts)[0].fix == (
        "Use a host that the SRV records publish (smtp.example.com, v4.example.com) unless "
        "mail.example.net is deliberate, or update the SRV records of example.org."
    )


HOSTS_FILE_TEXT = """
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
# 192.0.2.9 commented.example
192.0.2.7 relay.internal relay
"""


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("localhost", ["127.0.0.1", "::1"], id="localhost-both-families"),
        pytest.param("RELAY", ["192.0.2.7"], id="alias-case-insensitive"),
        pytest.param("commented.example", [], id="commented-out"),
        pytest.param("absent.example", [], id="absent"),
    ],
)
def test_hosts_file_addresses(tmp_path: Path, host: str, expected: list[str]) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS_FILE_TEXT)
    assert dns_check.hosts_file_addresses(host, str(hosts)) == expected


def test_localhost_resolves_without_dns_query() -> None:
    target = Target(host="localhost", port=2525, tls_mode=TlsMode.STARTTLS)
    result = dns_check.run(target, CheckContext(settings=Settings()))
    assert "127.0.0.1" in result.facts["addresses"]


def test_localhost_ignores_custom_nameservers() -> None:
    target = Target(host="localhost", port=2525, tls_mode=TlsMode.STARTTLS)
    settings = Settings(dns_nameservers=("192.0.2.53",), timeout=0.5)
    result = dns_check.run(target, CheckContext(settings=settings))
    assert "127.0.0.1" in result.facts["addresses"]


def test_silent_loopback_nameserver_fix(server: LocalDnsServer) -> None:
    result = run_check(server, host="slow.example.com", timeout=0.5)
    fix = result.findings[0].fix

    assert fix.startswith("A loopback resolver that does not answer usually means that nothing")
    assert f"ss -ulpn 'sport = :{server.port}'" in fix
    assert f"Check that nameserver 127.0.0.1 on port {server.port} is reachable" in fix


def test_remote_nameserver_fix_has_no_loopback_hint() -> None:
    facts = base_facts(
        nameservers=["192.0.2.53"],
        addresses=[],
        lookups=[lookup("smtp.example.com", "A", "timeout")],
    )
    fix = dns_check.evaluate(facts)[0].fix

    assert fix.startswith("Check that nameserver 192.0.2.53 is reachable")
    assert "loopback" not in fix
