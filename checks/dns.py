"""The ``dns`` check: find the submission host and the addresses a client connects to.

With a mail domain it reads the SRV records ``_submissions._tcp`` (implicit TLS, RFC 8314)
and ``_submission._tcp`` (STARTTLS, RFC 6186) and picks the submission host, port and TLS
mode. It then resolves the host's A and AAAA records. The facts ``host``, ``port``,
``tls_mode`` and ``addresses`` are what the ``connect`` check uses.

dnspython is imported inside the functions that resolve, so loading this module (as the
CLI's ``--help`` does) does not load it.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from smtpdiag.context import CheckContext, Settings, Target, TlsMode
from smtpdiag.local.listeners import is_loopback
from smtpdiag.models import CheckResult, Finding, Severity
from smtpdiag.spec import CheckSpec, FindingKind

if TYPE_CHECKING:
    import dns.resolver

logger = logging.getLogger(__name__)

CHECK_ID = "dns"

SYSTEM_RESOLVER = "system"
"""Value of the ``nameservers`` fact when the system resolver configuration is used."""

DEFAULT_DNS_PORT = 53


class Outcome(StrEnum):
    """Result of one DNS query, as stored in the ``lookups`` fact."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    """The name exists but has no records of the requested type (NOERROR, empty answer)."""
    NXDOMAIN = "nxdomain"
    TIMEOUT = "timeout"
    SERVFAIL = "servfail"
    """Every nameserver returned SERVFAIL or another error rcode, or the query to it failed."""
    UNREACHABLE = "unreachable"
    """The query could not be sent to any nameserver: each send failed with an OS error such
    as "Network is unreachable", so no nameserver was asked."""
    INVALID_NAME = "invalid_name"
    """The name cannot be a DNS name (empty label, label over 63 bytes, bad IDNA, ...)."""


@dataclass(frozen=True)
class Lookup:
    """One DNS query and what came back."""

    name: str
    """Query name without the final dot."""
    type: str
    """Record type mnemonic: ``A``, ``AAAA`` or ``SRV``."""
    outcome: Outcome
    records: tuple[str, ...] = ()
    """Record data in presentation format, empty unless the outcome is ANSWERED."""
    canonical_name: str | None = None
    """Name at the end of the CNAME chain (also after NXDOMAIN), or None when no reply arrived."""
    error: str | None = None
    """dnspython's message for a failed query, or None."""
    timeout_seconds: float | None = None
    """Time the query was allowed to take, or None. Set only for a query that timed out."""
    unreachable_nameservers: tuple[str, ...] = ()
    """Nameservers the query could not be sent to. Set only for the UNREACHABLE outcome."""
    os_errors: tuple[str, ...] = ()
    """Symbolic errno names of those failures (``ENETUNREACH``), each once, in order of
    occurrence. Set only for the UNREACHABLE outcome."""

    def to_fact(self) -> dict[str, Any]:
        """Return the JSON form stored in the ``lookups`` fact."""
        fact: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "outcome": self.outcome.value,
            "canonical_name": self.canonical_name,
            "error": self.error,
            "timeout_seconds": self.timeout_seconds,
        }
        if self.outcome is Outcome.UNREACHABLE:
            fact["unreachable_nameservers"] = list(self.unreachable_nameservers)
            fact["os_errors"] = list(self.os_errors)
        return fact


@dataclass(frozen=True)
class SubmissionService:
    """One SRV service label for mail submission and the TLS mode it implies."""

    name: str
    """Service name without the leading underscore, e.g. ``submissions``."""
    tls_mode: TlsMode

    def owner(self, domain: str) -> str:
        """Return the SRV owner name of this service for ``domain``."""
        return f"_{self.name}._tcp.{domain.rstrip('.')}"


# In order of preference: RFC 8314 recommends implicit TLS over STARTTLS for submission.
SERVICES = (
    SubmissionService("submissions", TlsMode.IMPLICIT),
    SubmissionService("submission", TlsMode.STARTTLS),
)

_TLS_MODES = {service.name: service.tls_mode for service in SERVICES}

# An SRV target of "." means that the service is decidedly not offered at the domain (RFC 2782).
_NO_SERVICE_TARGET = "."


@dataclass(frozen=True)
class SrvRecord:
    """One SRV record of a submission service."""

    service: str
    priority: int
    weight: int
    port: int
    target: str
    """Host name without the final dot, or ``.`` for "service not offered"."""

    @property
    def usable(self) -> bool:
        """Whether the record names a host, as opposed to the "not offered" target ``.``."""
        return self.target != _NO_SERVICE_TARGET

    def to_fact(self) -> dict[str, Any]:
        """Return the JSON form stored in the ``srv`` fact."""
        return {
            "service": self.service,
            "priority": self.priority,
            "weight": self.weight,
            "port": self.port,
            "target": self.target,
        }


@dataclass(frozen=True)
class Endpoint:
    """Host, port and TLS mode that a client would use."""

    host: str
    """Host name or address literal, or an empty string when none could be determined."""
    port: int
    tls_mode: TlsMode
    service: str | None = None
    """SRV service the endpoint came from, or None when the target named the host."""


NO_ADDRESS = FindingKind(
    code="dns.no_address",
    severity=Severity.CRITICAL,
    title="{host} has no IPv4 or IPv6 address",
    cause="{reason}, so a client has no address to connect to.",
    fix=(
        "Check the spelling of the host name. If it is right, publish A or AAAA records "
        "for {name} at the DNS provider of its zone."
    ),
)

SRV_NOT_FOUND = FindingKind(
    code="dns.srv_not_found",
    severity=Severity.CRITICAL,
    title="{domain} publishes no SRV records for mail submission",
    cause=(
        "Neither _submissions._tcp.{domain} nor _submission._tcp.{domain} exists, so the "
        "submission host of {domain} cannot be discovered from DNS."
    ),
    fix=(
        "Set the submission host of the target explicitly, or publish "
        '"_submissions._tcp.{domain}. SRV 0 1 465 <host>." (implicit TLS, RFC 8314) and, '
        'for STARTTLS, "_submission._tcp.{domain}. SRV 0 1 587 <host>." (RFC 6186).'
    ),
)

SRV_SERVICE_DISABLED = FindingKind(
    code="dns.srv_service_disabled",
    severity=Severity.CRITICAL,
    title="{domain} marks {service} as not offered",
    cause=(
        'The SRV record {owner} has the target ".", which means that {domain} does not offer '
        "{description} (RFC 2782, RFC 6186)."
    ),
    fix=(
        "Use the other submission service of {domain} if it has one, or ask the mail "
        "provider of {domain} which host and port to use for submission."
    ),
)

TIMEOUT = FindingKind(
    code="dns.timeout",
    severity=Severity.CRITICAL,
    title="DNS lookup of {queries} timed out",
    cause="{nameserver} did not answer within {timeout_seconds:g} seconds.",
    fix=(
        "{local_resolver}Check that {nameserver_lower} is reachable from this machine "
        "(firewall, VPN, resolver service) and that the zone's authoritative servers answer. "
        "Compare with another resolver, or raise the timeout if the network is slow."
    ),
)

SERVFAIL = FindingKind(
    code="dns.servfail",
    severity=Severity.CRITICAL,
    title="DNS lookup of {queries} failed (SERVFAIL)",
    cause=(
        "{nameserver} answered SERVFAIL or refused the query. A resolver does this when it "
        "cannot reach the zone's authoritative servers or when DNSSEC validation fails."
    ),
    fix=(
        "Retry. If it persists, query the zone's authoritative servers directly "
        "(dig +norecurse) and test DNSSEC (dig +cd returns the answer without validation), "
        "or compare with another resolver."
    ),
)

RESOLVER_UNREACHABLE = FindingKind(
    code="dns.resolver_unreachable",
    severity=Severity.CRITICAL,
    title="DNS lookup of {queries} failed: no nameserver could be reached",
    cause=(
        "{resolver} could not be reached, because {reason}. The query never left this host, "
        "so no nameserver was asked and nothing is known about the name yet."
    ),
    fix=(
        "Check that this host is connected and has a route to the resolver: ip route get "
        "{address} shows the route it would take (an error means that no route or default "
        "gateway exists), and ip link shows whether the interface is up. If the address is "
        "wrong or only reachable from another network (a VPN, a container's host), correct "
        "the nameserver lines of /etc/resolv.conf, or --dns-server (dns_nameservers), so "
        "that they name a resolver this host can reach."
    ),
)

INVALID_NAME = FindingKind(
    code="dns.invalid_name",
    severity=Severity.CRITICAL,
    title="{name} is not a valid DNS name",
    cause="dnspython rejected the name: {error}",
    fix="Correct the host name or mail domain of the target.",
)

IPV6_ONLY = FindingKind(
    code="dns.ipv6_only",
    severity=Severity.WARNING,
    title="{host} has only IPv6 addresses",
    cause=(
        "{host} has AAAA records but no A record, so a client without IPv6 connectivity "
        "cannot reach it."
    ),
    fix=(
        "Make sure that this machine and its network route IPv6, or use a host name of the "
        "provider that also has an IPv4 address."
    ),
)

SRV_HOST_MISMATCH = FindingKind(
    code="dns.srv_host_mismatch",
    severity=Severity.WARNING,
    title="{host} is not the submission host that {domain} publishes",
    cause=(
        "The SRV records of {domain} name {srv_hosts}, but the target uses {host}. Either the "
        "target's host or the SRV records are out of date."
    ),
    fix=(
        "Use a host that the SRV records publish ({srv_hosts}) unless {host} is deliberate, "
        "or update the SRV records of {domain}."
    ),
)

SRV_PREFERS_STARTTLS = FindingKind(
    code="dns.srv_prefers_starttls",
    severity=Severity.INFO,
    title="{domain} publishes only STARTTLS submission (_submission._tcp)",
    cause=(
        "{domain} has a usable _submission._tcp record but no usable _submissions._tcp "
        "record. RFC 8314 recommends implicit TLS for submission, because STARTTLS starts "
        "in clear text and a client may be tricked into skipping it."
    ),
    fix=(
        "If the provider offers implicit TLS (usually on port 465), publish "
        "_submissions._tcp.{domain} pointing at it."
    ),
)

FINDINGS = (
    NO_ADDRESS,
    SRV_NOT_FOUND,
    SRV_SERVICE_DISABLED,
    TIMEOUT,
    SERVFAIL,
    RESOLVER_UNREACHABLE,
    INVALID_NAME,
    IPV6_ONLY,
    SRV_HOST_MISMATCH,
    SRV_PREFERS_STARTTLS,
)


def run(target: Target, ctx: CheckContext) -> CheckResult:
    """Resolve the target's submission host, through SRV records when a domain is set."""
    if is_address_literal(target.host):
        facts = _literal_facts(target, ctx.settings)
        summary = f"{target.host} is an IP address literal; no DNS lookup is needed"
        return CheckResult.from_findings(CHECK_ID, summary, (), facts)
    if not target.host and not target.domain:
        return CheckResult.skipped(CHECK_ID, "the target has neither a host nor a mail domain")
    hosts_addresses = local_addresses(target.host, use_hosts_file=not ctx.settings.dns_nameservers)
    if hosts_addresses and not target.domain:
        hosts_facts: dict[str, Any] = {
            "host": target.host,
            "port": target.port,
            "tls_mode": target.tls_mode.value,
            "addresses": hosts_addresses,
            "canonical_name": None,
            "nameservers": [HOSTS_FILE],
            "address_literal": False,
        }
        hosts_summary = f"{target.host} is listed in {HOSTS_FILE}: {', '.join(hosts_addresses)}"
        return CheckResult.from_findings(CHECK_ID, hosts_summary, (), hosts_facts)

    # Imported here so that loading the check registry does not load dnspython.
    import dns.resolver

    try:
        resolver = _make_resolver(ctx.settings)
    except (dns.resolver.NoResolverConfiguration, ValueError) as error:
        return CheckResult.unknown(
            CHECK_ID,
            f"no usable DNS resolver configuration: {error}. Set the nameserver addresses "
            "in the settings or fix /etc/resolv.conf",
            facts={"nameservers": _nameserver_fact(ctx.settings)},
        )

    facts = measure(target, ctx, resolver)
    findings = evaluate(facts)
    return CheckResult.from_findings(CHECK_ID, summarize(facts, findings), findings, facts)


HOSTS_FILE = "/etc/hosts"


def hosts_file_addresses(host: str, path: str = HOSTS_FILE) -> list[str]:
    """Return the addresses that the hosts file gives ``host``, as the system resolver would.

    DNS servers do not know names such as ``localhost`` that only the hosts file defines, and
    a local relay is usually addressed by such a name.
    """
    wanted = host.rstrip(".").lower()
    addresses: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2 and wanted in (name.lower() for name in fields[1:]):
                    addresses.append(fields[0])
    except OSError:
        return []
    valid = [address for address in addresses if is_address_literal(address)]
    return sort_addresses(dict.fromkeys(valid))


def local_addresses(host: str, *, use_hosts_file: bool) -> list[str]:
    """Return the addresses that need no DNS: ``localhost`` names, then the hosts file.

    RFC 6761 §6.3 reserves ``localhost`` and names below it for loopback, whatever the
    resolver, so they resolve even when custom nameservers are set.
    """
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return hosts_file_addresses(host) or ["127.0.0.1", "::1"]
    return hosts_file_addresses(host) if use_hosts_file else []


def is_address_literal(host: str) -> bool:
    """Check whether ``host`` is an IPv4 or IPv6 address rather than a name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _literal_facts(target: Target, settings: Settings) -> dict[str, Any]:
    address = str(ipaddress.ip_address(target.host.strip("[]")))
    return {
        "host": target.host,
        "port": target.port,
        "tls_mode": target.tls_mode.value,
        "addresses": [address],
        "canonical_name": None,
        "nameservers": _nameserver_fact(settings),
        "address_literal": True,
    }


def _nameserver_fact(settings: Settings) -> list[str]:
    return list(settings.dns_nameservers) or [SYSTEM_RESOLVER]


def _make_resolver(settings: Settings) -> dns.resolver.Resolver:
    """Build a resolver from the settings. Raises ValueError for an invalid nameserver."""
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=not settings.dns_nameservers)
    # The port must be set before the nameservers, which take it as their default.
    resolver.port = settings.dns_port
    if settings.dns_nameservers:
        resolver.nameservers = list(settings.dns_nameservers)
    return resolver


def measure(target: Target, ctx: CheckContext, resolver: dns.resolver.Resolver) -> dict[str, Any]:
    """Query the SRV records (when a domain is set) and the host's addresses into facts."""
    lookups: list[Lookup] = []
    srv: list[SrvRecord] = []
    if target.domain:
        for service in SERVICES:
            lookup = query(resolver, service.owner(target.domain), "SRV", ctx.io_timeout())
            lookups.append(lookup)
            srv.extend(parse_srv(service.name, lookup.records))

    endpoint = choose_endpoint(target, srv)
    address_lookups = resolve_host(resolver, endpoint.host, ctx) if endpoint.host else []
    lookups.extend(address_lookups)

    facts: dict[str, Any] = {
        "host": endpoint.host,
        "port": endpoint.port,
        "tls_mode": endpoint.tls_mode.value,
        "addresses": sort_addresses(
            record for lookup in address_lookups for record in lookup.records
        ),
        "canonical_name": _canonical_name(address_lookups),
        "nameservers": _nameserver_fact(ctx.settings),
        "dns_port": ctx.settings.dns_port,
        "timeout_seconds": ctx.settings.timeout,
        "address_literal": False,
        "target_host": target.host or None,
        "srv_service": endpoint.service,
        "lookups": [lookup.to_fact() for lookup in lookups],
    }
    if target.domain:
        facts["domain"] = target.domain.rstrip(".")
        facts["srv"] = [record.to_fact() for record in srv]
    return facts


def query(resolver: dns.resolver.Resolver, name: str, rdtype: str, lifetime: float) -> Lookup:
    """Send one query and translate every dnspython outcome into a ``Lookup``."""
    import dns.exception
    import dns.name
    import dns.resolver

    name = name.rstrip(".")
    logger.debug("DNS query %s %s (lifetime %.2f s)", name, rdtype, lifetime)
    try:
        # raise_on_no_answer=False turns NoAnswer into an answer without an RRset.
        answer = resolver.resolve(
            name, rdtype, lifetime=lifetime, raise_on_no_answer=False, search=False
        )
    except dns.resolver.NXDOMAIN as error:
        canonical = _name_text(error.canonical_name)
        return Lookup(name, rdtype, Outcome.NXDOMAIN, canonical_name=canonical)
    except dns.exception.Timeout as error:
        return Lookup(
            name, rdtype, Outcome.TIMEOUT, error=str(error), timeout_seconds=round(lifetime, 3)
        )
    except dns.resolver.NoNameservers as error:
        return _no_nameservers_lookup(name, rdtype, resolver, error)
    except (dns.name.EmptyLabel, dns.name.LabelTooLong, dns.name.NameTooLong) as error:
        return Lookup(name, rdtype, Outcome.INVALID_NAME, error=str(error))
    except (dns.name.BadEscape, dns.name.IDNAException, dns.resolver.YXDOMAIN) as error:
        return Lookup(name, rdtype, Outcome.INVALID_NAME, error=str(error))

    records = tuple(rdata.to_text() for rdata in answer.rrset or ())
    outcome = Outcome.ANSWERED if records else Outcome.NO_ANSWER
    canonical = _name_text(answer.canonical_name)
    return Lookup(name, rdtype, outcome, records, canonical)


def _no_nameservers_lookup(
    name: str, rdtype: str, resolver: dns.resolver.Resolver, error: dns.resolver.NoNameservers
) -> Lookup:
    """Classify a NoNameservers error: UNREACHABLE when no query was sent, else SERVFAIL.

    dnspython's ``errors`` keyword contains one ``(nameserver, tcp, port, exception, response)``
    tuple per failed attempt, and it drops a nameserver from the query after an OSError.
    So when every attempt failed with an OSError, every configured nameserver was
    unreachable and none of them returned anything.
    """
    exceptions = [attempt[3] for attempt in error.kwargs.get("errors") or ()]
    if not exceptions or not all(isinstance(exception, OSError) for exception in exceptions):
        return Lookup(name, rdtype, Outcome.SERVFAIL, error=str(error))

    nameservers = tuple(
        nameserver if isinstance(nameserver, str) else str(nameserver)
        for nameserver in resolver.nameservers
    )
    os_errors = dict.fromkeys(_errno_name(exception) for exception in exceptions)
    logger.debug("DNS query %s %s: no nameserver reachable: %s", name, rdtype, error)
    return Lookup(
        name,
        rdtype,
        Outcome.UNREACHABLE,
        error=str(error),
        unreachable_nameservers=nameservers,
        os_errors=tuple(os_errors),
    )


def _errno_name(error: OSError) -> str:
    """Return the symbolic name of an OSError's errno, or its class name when it has none."""
    if error.errno is None:
        return error.__class__.__name__
    return errno.errorcode.get(error.errno, str(error.errno))


def _name_text(name: dns.name.Name) -> str:
    # DNS names compare without regard to case (RFC 4343), so facts use lower case.
    return name.to_text(omit_final_dot=True).lower()


def parse_srv(service: str, records: Iterable[str]) -> list[SrvRecord]:
    """Parse SRV data ("priority weight port target"), lowest priority then highest weight first.

    Weight is meant for a random choice among equal priorities (RFC 2782). Sorting by
    descending weight makes the choice repeatable, so two runs report the same host.
    """
    parsed = []
    for record in records:
        priority, weight, port, target = record.split()
        host = target if target == _NO_SERVICE_TARGET else target.rstrip(".")
        parsed.append(SrvRecord(service, int(priority), int(weight), int(port), host))
    return sorted(parsed, key=lambda record: (record.priority, -record.weight))


def choose_endpoint(target: Target, srv: Sequence[SrvRecord]) -> Endpoint:
    """Pick the endpoint: the target's own host when set, else the best usable SRV record.

    ``srv`` lists the services in order of preference, each sorted by ``parse_srv``, so the
    first usable record is the best one.
    """
    if target.host:
        return Endpoint(target.host, target.port, target.tls_mode)
    for record in srv:
        if record.usable:
            return Endpoint(record.target, record.port, _TLS_MODES[record.service], record.service)
    return Endpoint("", target.port, target.tls_mode)


def resolve_host(resolver: dns.resolver.Resolver, host: str, ctx: CheckContext) -> list[Lookup]:
    """Query A, then AAAA unless the A query showed that the name cannot resolve."""
    ipv4 = query(resolver, host, "A", ctx.io_timeout())
    if ipv4.outcome not in (Outcome.ANSWERED, Outcome.NO_ANSWER):
        return [ipv4]
    ipv6 = query(resolver, host, "AAAA", ctx.io_timeout())
    return [ipv4, ipv6]


def sort_addresses(addresses: Iterable[str]) -> list[str]:
    """Return ``addresses`` without duplicates, IPv4 first, then IPv6, each in numeric order."""
    parsed = {ipaddress.ip_address(address) for address in addresses}
    ordered = sorted(parsed, key=lambda address: (address.version, int(address)))
    return [str(address) for address in ordered]


def _canonical_name(lookups: Sequence[Lookup]) -> str | None:
    return next((lookup.canonical_name for lookup in lookups if lookup.canonical_name), None)


def evaluate(facts: Mapping[str, Any]) -> list[Finding]:
    """Turn the facts of ``measure`` into findings without any I/O, so tables can test it."""
    if facts.get("address_literal"):
        return []
    lookups = facts.get("lookups", [])
    findings = _failure_findings(facts, lookups)
    if "domain" in facts:
        findings.extend(_srv_findings(facts, lookups))
    findings.extend(_address_findings(facts, lookups))
    return findings


def _failure_findings(
    facts: Mapping[str, Any], lookups: Sequence[Mapping[str, Any]]
) -> list[Finding]:
    """Report timeouts, SERVFAIL replies and invalid names, one finding per kind.

    They are critical when they left the check without an address, else warnings.
    """
    severity = Severity.WARNING if facts.get("addresses") else Severity.CRITICAL
    findings = []
    kinds = (
        (TIMEOUT, Outcome.TIMEOUT),
        (SERVFAIL, Outcome.SERVFAIL),
        (RESOLVER_UNREACHABLE, Outcome.UNREACHABLE),
    )
    for kind, outcome in kinds:
        failed = [lookup for lookup in lookups if lookup["outcome"] == outcome]
        if failed:
            findings.append(_failure_finding(kind, facts, failed, severity))
    for lookup in lookups:
        if lookup["outcome"] == Outcome.INVALID_NAME:
            findings.append(
                INVALID_NAME.make(
                    facts={"host": facts.get("host"), "lookups": [dict(lookup)]},
                    details={"name": lookup["name"], "error": lookup["error"]},
                )
            )
            break  # the queries of one bad name fail alike, so one finding is enough
    return findings


def _failure_finding(
    kind: FindingKind,
    facts: Mapping[str, Any],
    failed: Sequence[Mapping[str, Any]],
    severity: Severity,
) -> Finding:
    queries = ", ".join(f"{lookup['name']} {lookup['type']}" for lookup in failed)
    unreachable = list(
        dict.fromkeys(
            nameserver
            for lookup in failed
            for nameserver in lookup.get("unreachable_nameservers") or ()
        )
    )
    os_errors = list(
        dict.fromkeys(name for lookup in failed for name in lookup.get("os_errors") or ())
    )
    return kind.make(
        facts={
            "host": facts.get("host"),
            "nameservers": facts.get("nameservers"),
            "dns_port": facts.get("dns_port"),
            "lookups": [dict(lookup) for lookup in failed],
        },
        evidence=[lookup["error"] for lookup in failed if lookup.get("error")],
        details={
            "queries": queries,
            "nameserver": describe_nameservers(facts),
            "nameserver_lower": _lower_first(describe_nameservers(facts)),
            "local_resolver": _local_resolver_hint(facts),
            "timeout_seconds": _longest_timeout(facts, failed),
            "resolver": _describe_unreachable(facts, unreachable),
            "address": unreachable[0] if unreachable else "<nameserver address>",
            "reason": _unreachable_reason(os_errors),
        },
        severity=severity,
    )


_UNREACHABLE_REASONS = {
    "ENETUNREACH": "the network is unreachable: this host has no route to that address",
    "EHOSTUNREACH": "there is no route to the host: the address is not reachable from the "
    "local network",
    "ENETDOWN": "the network interface that leads to it is down",
    "EADDRNOTAVAIL": "this host has no local address to send from, as on a host without an "
    "IPv6 address when the resolver's address is IPv6",
    "EAFNOSUPPORT": "this host has that address family (IPv4 or IPv6) disabled",
    "EPERM": "a local firewall rule rejected the query packet",
    "EACCES": "a local firewall rule rejected the query packet",
    "ECONNREFUSED": "the connection was refused, so no DNS server listens at that address and port",
}
"""Explanation of each errno that a failed send to a nameserver gives (Linux errno names)."""


def _unreachable_reason(os_errors: Sequence[str]) -> str:
    """Explain the OS errors of unreachable nameservers, joined with "and"."""
    reasons = dict.fromkeys(
        _UNREACHABLE_REASONS.get(name, f"sending the query failed ({name})") for name in os_errors
    )
    return " and ".join(reasons) or "sending the query failed"


def _describe_unreachable(facts: Mapping[str, Any], unreachable: Sequence[str]) -> str:
    """Name the unreachable nameservers with their addresses, for finding texts."""
    nameservers = list(facts.get("nameservers") or [SYSTEM_RESOLVER])
    if nameservers != [SYSTEM_RESOLVER] or not unreachable:
        return describe_nameservers(facts)
    port = facts.get("dns_port", DEFAULT_DNS_PORT)
    suffix = "" if port == DEFAULT_DNS_PORT else f" on port {port}"
    return f"The system resolver {', '.join(unreachable)}{suffix} (from /etc/resolv.conf)"


def _longest_timeout(facts: Mapping[str, Any], failed: Sequence[Mapping[str, Any]]) -> float:
    """Return the longest time a failed query was allowed, else the configured timeout.

    The check's deadline can cut a query's time below the configured timeout.
    """
    allowed = [
        float(lookup["timeout_seconds"]) for lookup in failed if lookup.get("timeout_seconds")
    ]
    return max(allowed, default=float(facts.get("timeout_seconds", 0)))


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _local_resolver_hint(facts: Mapping[str, Any]) -> str:
    """Return a first fix sentence for nameservers that are all loopback addresses."""
    nameservers = [name for name in facts.get("nameservers") or [] if name != SYSTEM_RESOLVER]
    if not nameservers or not all(is_loopback(name) for name in nameservers):
        return ""
    port = facts.get("dns_port", DEFAULT_DNS_PORT)
    return (
        f"A loopback resolver that does not answer usually means that nothing listens on port "
        f"{port} there: start the local resolver service (systemd-resolved, dnsmasq, unbound) "
        f"or check its log (ss -ulpn 'sport = :{port}' lists the listener). "
    )


def describe_nameservers(facts: Mapping[str, Any]) -> str:
    """Name the nameservers used, for finding texts: addresses and port, or the system resolver."""
    nameservers = list(facts.get("nameservers") or [SYSTEM_RESOLVER])
    if nameservers == [SYSTEM_RESOLVER]:
        return "The system resolver (see /etc/resolv.conf)"
    port = facts.get("dns_port", DEFAULT_DNS_PORT)
    suffix = "" if port == DEFAULT_DNS_PORT else f" on port {port}"
    label = "Nameserver" if len(nameservers) == 1 else "Nameservers"
    return f"{label} {', '.join(nameservers)}{suffix}"


def _srv_findings(facts: Mapping[str, Any], lookups: Sequence[Mapping[str, Any]]) -> list[Finding]:
    domain = facts["domain"]
    srv = facts.get("srv", [])
    srv_lookups = [lookup for lookup in lookups if lookup["type"] == "SRV"]
    # Without a host to connect to, a missing or disabled service is the reason the check fails.
    severity = Severity.CRITICAL if not facts.get("host") else Severity.INFO
    common = {"domain": domain, "srv": list(srv)}

    findings = []
    not_found = (Outcome.NXDOMAIN, Outcome.NO_ANSWER)
    if srv_lookups and all(lookup["outcome"] in not_found for lookup in srv_lookups):
        findings.append(
            SRV_NOT_FOUND.make(facts=common, details={"domain": domain}, severity=severity)
        )
    for service in SERVICES:
        records = [record for record in srv if record["service"] == service.name]
        if records and all(record["target"] == _NO_SERVICE_TARGET for record in records):
            findings.append(_disabled_finding(service, domain, common, severity))
    findings.extend(_srv_choice_findings(facts, srv_lookups, common))
    return findings


def _disabled_finding(
    service: SubmissionService, domain: str, common: Mapping[str, Any], severity: Severity
) -> Finding:
    description = {
        TlsMode.IMPLICIT: "submission over implicit TLS",
        TlsMode.STARTTLS: "submission with STARTTLS",
    }[service.tls_mode]
    return SRV_SERVICE_DISABLED.make(
        facts=common,
        details={
            "domain": domain,
            "service": service.name,
            "owner": service.owner(domain),
            "description": description,
        },
        severity=severity,
    )


def _srv_choice_findings(
    facts: Mapping[str, Any],
    srv_lookups: Sequence[Mapping[str, Any]],
    common: Mapping[str, Any],
) -> list[Finding]:
    """Report a target host that differs from the SRV hosts, and STARTTLS-only publication."""
    domain = facts["domain"]
    usable = [record for record in facts.get("srv", []) if record["target"] != _NO_SERVICE_TARGET]
    findings = []

    target_host = facts.get("target_host")
    srv_hosts = list(dict.fromkeys(record["target"].lower() for record in usable))
    if target_host and srv_hosts and _normalize(target_host) not in srv_hosts:
        findings.append(
            SRV_HOST_MISMATCH.make(
                facts={**common, "host": target_host},
                details={"host": target_host, "domain": domain, "srv_hosts": ", ".join(srv_hosts)},
            )
        )

    # Report only when the _submissions query got a reply, because after a timeout nothing is known.
    implicit_lookup_failed = any(
        lookup["outcome"] not in (Outcome.ANSWERED, Outcome.NXDOMAIN, Outcome.NO_ANSWER)
        for lookup in srv_lookups
        if lookup["name"].lower().startswith("_submissions.")
    )
    services = {record["service"] for record in usable}
    if services == {"submission"} and not implicit_lookup_failed:
        findings.append(SRV_PREFERS_STARTTLS.make(facts=common, details={"domain": domain}))
    return findings


def _normalize(host: str) -> str:
    return host.rstrip(".").lower()


def _address_findings(
    facts: Mapping[str, Any], lookups: Sequence[Mapping[str, Any]]
) -> list[Finding]:
    """Report a host without addresses (NXDOMAIN or no records) and an IPv6-only host."""
    host = facts.get("host")
    if not host:
        return []
    host_lookups = [lookup for lookup in lookups if lookup["type"] in ("A", "AAAA")]
    addresses = list(facts.get("addresses", []))
    finding_facts = {
        "host": host,
        "addresses": addresses,
        "canonical_name": facts.get("canonical_name"),
    }

    reason = _no_address_reason(host, host_lookups) if not addresses else None
    if reason is not None:
        name = facts.get("canonical_name") or host
        return [
            NO_ADDRESS.make(
                facts=finding_facts,
                details={"host": host, "name": name, "reason": reason},
            )
        ]
    if addresses and all(ipaddress.ip_address(address).version == 6 for address in addresses):
        return [IPV6_ONLY.make(facts=finding_facts, details={"host": host})]
    return []


def _no_address_reason(host: str, lookups: Sequence[Mapping[str, Any]]) -> str | None:
    """Explain why ``host`` has no address, or return None when a failed query is to blame."""
    outcomes = {lookup["outcome"] for lookup in lookups}
    if Outcome.NXDOMAIN in outcomes:
        canonical = next(
            (lookup.get("canonical_name") for lookup in lookups if lookup.get("canonical_name")),
            None,
        )
        if canonical and _normalize(canonical) != _normalize(host):
            return f"{host} is an alias (CNAME) of {canonical}, which does not exist (NXDOMAIN)"
        return f"The name {host} does not exist in DNS (NXDOMAIN)"
    if outcomes == {Outcome.NO_ANSWER}:
        return f"The name {host} exists in DNS but has no A or AAAA records"
    return None


def summarize(facts: Mapping[str, Any], findings: Sequence[Finding]) -> str:
    """Return the one-line summary: the addresses found, or the worst problem."""
    addresses = list(facts.get("addresses", []))
    if addresses:
        count = "1 address" if len(addresses) == 1 else f"{len(addresses)} addresses"
        summary = f"{facts['host']} resolves to {count} ({', '.join(addresses)})"
        if facts.get("srv_service"):
            summary += (
                f"; found via _{facts['srv_service']}._tcp.{facts['domain']}, "
                f"port {facts['port']}, {facts['tls_mode']}"
            )
        return summary
    worst = max(findings, key=lambda finding: finding.severity.status.rank, default=None)
    if worst is not None:
        return worst.title
    return f"{facts.get('host') or facts.get('domain')} has no address"


SPEC = CheckSpec(
    id=CHECK_ID,
    title="DNS: submission host and addresses",
    run=run,
    findings=FINDINGS,
)
