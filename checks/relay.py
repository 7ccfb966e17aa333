"""The ``relay`` check: the local SMTP relay in front of the submission server.

In the usual deployment applications, Postfix or Exim hand mail to msmtpd on 127.0.0.1:2525,
which pipes each message to msmtp. The check finds the relay's address in the ``relay``
setting, Postfix's ``relayhost`` or Exim's smarthost, and talks SMTP to it up to EHLO. For a
relay on this machine it reads ``/proc/net/tcp`` and ``tcp6`` to see which addresses the
relay listens on. It also reads the mail logs for messages that msmtpd's permanent replies
turned into bounces.

msmtpd (``src/msmtpd.c`` of msmtp 1.8) replies ``451 Pipe command reported error N`` when
msmtp exits with EX_NOHOST 68, EX_UNAVAILABLE 69, EX_OSERR 71 or EX_TEMPFAIL 75, and ``554
Pipe command reported error N`` for every other non-zero status, EX_NOPERM 77 (AUTH failed)
and EX_CONFIG 78 (configuration or passwordeval failure) included. Older releases replied
554 for every status.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import socket
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from smtpdiag.context import CheckContext, RelaySettings, Target
from smtpdiag.errors import SmtpClosedError, SmtpReplyError, escape_bytes
from smtpdiag.local.bounces import (
    AUTH_EXIT_STATUSES,
    BounceKey,
    BounceSummary,
    BounceTally,
    read_bounce,
)
from smtpdiag.local.listeners import (
    Listener,
    format_endpoint,
    is_loopback,
    listeners_on_port,
    read_listeners,
    read_local_addresses,
)
from smtpdiag.local.relay_kinds import (
    ADDRESS_INVALID,
    AUTH_FAILURE_BOUNCES_MAIL,
    CONFIG_UNREADABLE,
    EHLO_REJECTED,
    EXIM_INCLUDE_NOT_READ,
    EXIM_SMARTHOST_EMPTY,
    EXPOSED,
    FINDINGS,
    GREETING_REJECTED,
    LOG_UNREADABLE,
    NETWORK_LISTENER,
    NOT_SMTP,
    PIPE_ERROR_BOUNCES_MAIL,
    POSTFIX_RELAYHOST_EMPTY,
    RELAYHOST_MX_LOOKUP,
    UNREACHABLE,
)
from smtpdiag.local.relayhost import (
    RelayAddress,
    RelayLookup,
    RelaySource,
    exim_smarthosts,
    is_ip_address,
    parse_option_address,
    postfix_relayhost,
)
from smtpdiag.models import CheckResult, Finding, Severity, Status, worst_first
from smtpdiag.redact import redact
from smtpdiag.smtp.session import SmtpSession
from smtpdiag.smtp.transport import Channel
from smtpdiag.spec import CheckSpec, FindingKind

CHECK_ID = "relay"

NOT_CONFIGURED = (
    "not run: no relay configured (--relay HOST:PORT or --relay postfix, "
    "--postfix-config-dir, or --exim-config)"
)

PROC_DIR = "/proc"

MAX_ADDRESSES = 8
"""Addresses probed at most, over all relay entries and their resolved addresses."""

RECENT_BOUNCE_SECONDS = 24 * 3600
"""Age up to which an AUTH failure bounce is critical. An older last bounce is a warning."""

OPTION_ORIGIN = "the relay setting (--relay)"

MAX_QUOTED_CHARACTERS = 80
"""Characters of a peer's bytes quoted in a finding, escapes included."""


# Observations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionOutcome:
    """Outcome of one SMTP session with one relay address."""

    relay: RelayAddress
    address: str | None
    """IP address connected to; None when the host name did not resolve."""
    failure: str | None = None
    """``unresolved``, ``refused``, ``timeout``, ``unreachable``, ``not_smtp``,
    ``greeting_rejected`` or ``ehlo_rejected``; None when EHLO got 250."""
    error: str | None = None
    greeting: str | None = None
    """Greeting lines joined by spaces, or None when none was read."""
    reply_code: int | None = None
    """Code of the reply that ended the session early, or None."""
    reply_text: str | None = None
    transcript: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        """``address:port`` connected to, or the relay entry when nothing resolved."""
        if self.address is None:
            return self.relay.endpoint
        return format_endpoint(self.address, self.relay.port)

    def to_facts(self) -> dict[str, Any]:
        """Return the session as JSON facts."""
        facts: dict[str, Any] = {
            "relay": self.relay.text,
            "host": self.relay.host,
            "address": self.address,
            "port": self.relay.port,
            "failure": self.failure,
            "greeting": self.greeting,
        }
        if self.reply_code is not None:
            facts["reply_code"] = self.reply_code
            facts["reply_text"] = self.reply_text
        if self.error:
            facts["error"] = self.error
        return facts


@dataclass(frozen=True)
class RelayObservation:
    """Everything the check gathered; ``evaluate`` turns it into findings."""

    lookup: RelayLookup
    sessions: tuple[SessionOutcome, ...] = ()
    listeners: Mapping[int, tuple[Listener, ...]] | None = None
    """LISTEN sockets per port of a relay on this machine; None when /proc could not be read."""
    local_ports: tuple[int, ...] = ()
    """Ports of the relay addresses that belong to this machine."""
    bounces: BounceSummary | None = None
    """None when no log file is configured."""
    postfix_requested: bool = False


# Gathering ------------------------------------------------------------------------------


def run(target: Target, ctx: CheckContext) -> CheckResult:
    """Find the relay, talk SMTP to it, look at its listeners and read the mail logs."""
    if not target.relay.configured:
        return CheckResult.skipped(CHECK_ID, NOT_CONFIGURED)
    lookup = find_relay(target.relay, ctx.io_timeout())
    if lookup.error is not None and not lookup.addresses:
        return _unreadable_config(lookup)
    return evaluate(observe(target, ctx, lookup))


def _unreadable_config(lookup: RelayLookup) -> CheckResult:
    """Report a configuration that gave no relay address: unknown, with a finding that names
    the options to pass."""
    facts = _lookup_facts(lookup)
    details = {"origin": lookup.origin, "error": lookup.error or ""}
    finding = CONFIG_UNREADABLE.make(facts=facts, details=details)
    return CheckResult(CHECK_ID, Status.UNKNOWN, lookup.error or "", (finding,), facts)


def find_relay(relay: RelaySettings, timeout: float) -> RelayLookup:
    """Read the relay's address from the first configured source."""
    if relay.address:
        address = parse_option_address(relay.address)
        return RelayLookup(RelaySource.OPTION, OPTION_ORIGIN, relay.address, (address,))
    if relay.postfix or relay.postfix_config_dir:
        lookup = postfix_relayhost(relay.postfix_config_dir, timeout)
        if relay.exim_config is None:
            return lookup
        # One MTA hands mail to the relay on a machine; reading both would mix their relays.
        note = (
            f"--exim-config {relay.exim_config} was not read, because Postfix's relayhost "
            "comes first. Run the check with --exim-config alone to check Exim's smarthost"
        )
        return dataclasses.replace(lookup, notes=(*lookup.notes, note))
    assert relay.exim_config is not None  # configured, and no other source set
    return exim_smarthosts(relay.exim_config)


def observe(
    target: Target, ctx: CheckContext, lookup: RelayLookup, proc_dir: str = PROC_DIR
) -> RelayObservation:
    """Gather the sessions, listeners and bounces for the relay addresses of ``lookup``."""
    sessions = tuple(_talk_to_all(lookup.addresses, target.ehlo_name, ctx))
    local_addresses = read_local_addresses(proc_dir) or set()
    local_ports = tuple(
        dict.fromkeys(
            session.relay.port
            for session in sessions
            if session.address is not None
            and (is_loopback(session.address) or session.address in local_addresses)
        )
    )
    listeners: dict[int, tuple[Listener, ...]] | None = {}
    if local_ports:
        table = read_listeners(proc_dir)
        if table is None:
            listeners = None
        else:
            listeners = {port: listeners_on_port(table, port) for port in local_ports}
    bounces = scan_logs(target, ctx) if target.logs.files else None
    return RelayObservation(
        lookup,
        sessions,
        listeners,
        local_ports,
        bounces,
        postfix_requested=lookup.source in (RelaySource.POSTCONF, RelaySource.MAIN_CF),
    )


def _talk_to_all(
    addresses: Sequence[RelayAddress], ehlo_name: str, ctx: CheckContext
) -> list[SessionOutcome]:
    outcomes: list[SessionOutcome] = []
    for relay in addresses:
        resolved = _resolve(relay)
        if isinstance(resolved, str):
            outcomes.append(SessionOutcome(relay, None, "unresolved", resolved))
            continue
        for address in resolved:
            if len(outcomes) >= MAX_ADDRESSES:
                return outcomes
            outcomes.append(talk_smtp(relay, address, ehlo_name, ctx.io_timeout()))
    return outcomes


def _resolve(relay: RelayAddress) -> list[str] | str:
    """Return the IP addresses of the relay's host, or the reason none was found.

    NOTE: the system resolver has no timeout of its own here; relay hosts are addresses or
    names from /etc/hosts in the usual deployment.
    """
    try:
        ipaddress.ip_address(relay.host)
    except ValueError:
        pass
    else:
        return [relay.host]
    try:
        infos = socket.getaddrinfo(relay.host, relay.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        return f"{relay.host} does not resolve: {error}"
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def talk_smtp(relay: RelayAddress, address: str, ehlo_name: str, timeout: float) -> SessionOutcome:
    """Connect to ``address``, read the greeting, send EHLO and QUIT.

    Connection, timeout and protocol errors become the outcome's failure, so a dead or hostile
    relay ends as a finding.
    """
    try:
        channel = Channel.connect(address, relay.port, timeout)
    except ConnectionRefusedError as error:
        return SessionOutcome(relay, address, "refused", error.strerror or "connection refused")
    except TimeoutError:
        return SessionOutcome(relay, address, "timeout", f"no connection within {timeout:g} s")
    except OSError as error:
        return SessionOutcome(relay, address, "unreachable", error.strerror or str(error))
    session = SmtpSession(channel, timeout)
    try:
        return _converse(relay, address, session, ehlo_name)
    except TimeoutError:
        error_text = f"no complete reply within {timeout:g} s"
        return _failed(relay, address, session, "not_smtp", error_text)
    except SmtpClosedError as error:
        return _failed(relay, address, session, "not_smtp", _closed_text(error))
    except SmtpReplyError as error:
        return _failed(relay, address, session, "not_smtp", _reply_error_text(error))
    except OSError as error:
        return _failed(relay, address, session, "not_smtp", error.strerror or str(error))
    finally:
        channel.close()


def _converse(
    relay: RelayAddress, address: str, session: SmtpSession, ehlo_name: str
) -> SessionOutcome:
    greeting = session.read_reply()
    greeting_text = f"{greeting.code} {greeting.text}".rstrip()
    if greeting.code != 220:
        return SessionOutcome(
            relay,
            address,
            "greeting_rejected",
            greeting=greeting_text,
            reply_code=greeting.code,
            reply_text=greeting.text,
            transcript=tuple(session.transcript),
        )
    reply = session.command(f"EHLO {ehlo_name}")
    failure = None if reply.code == 250 else "ehlo_rejected"
    # The session is over either way; QUIT is a courtesy.
    with contextlib.suppress(OSError, SmtpClosedError, SmtpReplyError):
        session.command("QUIT")
    return SessionOutcome(
        relay,
        address,
        failure,
        greeting=greeting_text,
        reply_code=reply.code if failure else None,
        reply_text=reply.text if failure else None,
        transcript=tuple(session.transcript),
    )


def _reply_error_text(error: SmtpReplyError) -> str:
    """Describe why the peer's bytes are not an SMTP reply, as a clause of the cause text.

    ``error.problem`` is one of the fixed texts of ``smtpdiag.smtp.reply``. An unknown one is
    quoted as it is.
    """
    problem, quoted = error.problem, quote_bytes(error.raw)
    if problem == "not an SMTP reply line":
        return f"it sent a line that is not an SMTP reply: {quoted}"
    if problem.startswith("reply longer than "):
        # The raw bytes are the end of the reply, so its last line is quoted.
        last_line = error.raw.rstrip(b"\r\n").rsplit(b"\n", 1)[-1].rstrip(b"\r")
        limit = problem.removeprefix("reply longer than ")
        return f"it sent a reply of more than {limit}, the last of them {quote_bytes(last_line)}"
    if problem.startswith("no end of line within "):
        limit = problem.removeprefix("no end of line within ")
        return f"it sent more than {limit} without an end of line, starting with {quoted}"
    if problem.startswith("line longer than "):
        return f"it sent a {problem}, starting with {quoted}"
    return f"it sent bytes that are not an SMTP reply: {problem}, starting with {quoted}"


def _closed_text(error: SmtpClosedError) -> str:
    if not error.raw:
        return "it closed the connection without sending anything"
    return f"it closed the connection after sending {quote_bytes(error.raw)}"


def quote_bytes(raw: bytes, limit: int = MAX_QUOTED_CHARACTERS) -> str:
    """Quote the start of ``raw`` with escapes, in at most ``limit`` characters and ``…``."""
    count = min(len(raw), limit)
    escaped = escape_bytes(raw[:count], count)
    # An escape such as \xff takes four characters for one byte.
    while len(escaped) > limit:
        count -= 1
        escaped = escape_bytes(raw[:count], count)
    return f'"{escaped}…"' if count < len(raw) else f'"{escaped}"'


def _failed(
    relay: RelayAddress, address: str, session: SmtpSession, failure: str, error: str
) -> SessionOutcome:
    return SessionOutcome(
        relay, address, failure, redact(error), transcript=tuple(session.transcript)
    )


# Logs -----------------------------------------------------------------------------------


def scan_logs(target: Target, ctx: CheckContext) -> BounceSummary:
    """Read ``target.logs.files`` for messages lost to a failed pipe command behind the relay.

    Files are streamed (gzip included) by the logs reader and read until the check's deadline.
    The summary records whether every file was read to its end.
    """
    from smtpdiag.logs.reader import LogLine, LogReader, feed_lines
    from smtpdiag.logs.timestamps import TimeReader

    times = TimeReader(_zone(target.logs.timezone), lambda: ctx.now().timestamp())
    tally = BounceTally()

    def feed(line: LogLine) -> None:
        bounce = read_bounce(line.text, times)
        if bounce is not None:
            tally.add(bounce)

    reader = LogReader(target.logs.files)
    complete, _ = feed_lines(reader, feed, ctx.remaining)
    return tally.summary(reader.lines_read, complete, reader.errors, ctx.now().timestamp())


def _zone(name: str | None) -> tzinfo | None:
    if name is None:
        return None
    from zoneinfo import ZoneInfo  # the name was validated when the configuration was read

    return ZoneInfo(name)


# Evaluation -----------------------------------------------------------------------------


def evaluate(observation: RelayObservation) -> CheckResult:
    """Turn what the check gathered into its result; pure, so tests feed observations."""
    findings = [
        *_lookup_findings(observation),
        *_session_findings(observation.sessions, observation.lookup),
        *_listener_findings(observation),
        *_bounce_findings(observation.bounces),
        *_log_findings(observation.bounces),
    ]
    findings = worst_first(findings)
    facts = _facts(observation)
    summary = _summary(observation, findings)
    result = CheckResult.from_findings(CHECK_ID, summary, findings, facts)
    unread = observation.bounces is not None and not observation.bounces.complete
    if unread and result.status in (Status.OK, Status.WARNING):
        # Bounces in the unread part could hide a critical verdict.
        return CheckResult(CHECK_ID, Status.UNKNOWN, summary, result.findings, facts)
    return result


def _lookup_findings(observation: RelayObservation) -> list[Finding]:
    lookup = observation.lookup
    details = {"origin": lookup.origin}
    findings: list[Finding] = []
    if not lookup.addresses and not lookup.problems and lookup.error is None:
        if observation.postfix_requested:
            findings.append(
                POSTFIX_RELAYHOST_EMPTY.make(facts=_lookup_facts(lookup), details=details)
            )
        elif lookup.unread_includes:
            includes = ", ".join(lookup.unread_includes)
            findings.append(
                EXIM_INCLUDE_NOT_READ.make(
                    facts=_lookup_facts(lookup), details={**details, "includes": includes}
                )
            )
        elif lookup.source in (RelaySource.EXIM, RelaySource.DEBIAN_EXIM):
            findings.append(EXIM_SMARTHOST_EMPTY.make(facts=_lookup_facts(lookup), details=details))
    if lookup.problems:
        findings.append(
            ADDRESS_INVALID.make(
                facts={"relay_origin": lookup.origin, "problems": list(lookup.problems)},
                details={**details, "problems": "; ".join(lookup.problems)},
            )
        )
    for address in lookup.addresses:
        if address.mx_lookup and not is_ip_address(address.host):
            findings.append(
                RELAYHOST_MX_LOOKUP.make(
                    facts={"relay": address.text, "host": address.host, "port": address.port},
                    details={"entry": address.text, "host": address.host, "port": address.port},
                )
            )
    return findings


_SESSION_KINDS = {
    "unresolved": UNREACHABLE,
    "refused": UNREACHABLE,
    "timeout": UNREACHABLE,
    "unreachable": UNREACHABLE,
    "not_smtp": NOT_SMTP,
    "greeting_rejected": GREETING_REJECTED,
    "ehlo_rejected": EHLO_REJECTED,
}


def _session_findings(sessions: Sequence[SessionOutcome], lookup: RelayLookup) -> list[Finding]:
    """Report every address that failed: critical when none replied, else a warning.

    The MTA tries its destinations in order, so mail still flows while one of them replies,
    but a dead destination is no fallback.
    """
    findings: list[Finding] = []
    answered = [session for session in sessions if session.failure is None]
    severity = Severity.WARNING if answered else None
    fallback_note = ""
    if answered:
        fallback_note = (
            f" {answered[0].endpoint} answered, so the MTA still delivers to the relay, but "
            "this destination fails when it is needed as a fallback."
        )
    for session in sessions:
        if session.failure is None:
            continue
        reply = f"{session.reply_code} {session.reply_text or ''}".rstrip()
        details = {
            "endpoint": session.endpoint,
            "port": session.relay.port,
            "failure": session.failure.replace("_", " "),
            "error": session.error or "",
            "origin": lookup.origin,
            "reply": reply,
            "reply_code": session.reply_code or "",
            "fallback_note": fallback_note,
        }
        kind = _SESSION_KINDS[session.failure]
        findings.append(
            kind.make(
                facts=session.to_facts(),
                evidence=session.transcript[-20:],
                details=details,
                severity=severity,
            )
        )
    return findings


def _listener_findings(observation: RelayObservation) -> list[Finding]:
    if observation.listeners is None:
        return []
    findings: list[Finding] = []
    for port, listeners in observation.listeners.items():
        wildcard = [listener for listener in listeners if listener.is_wildcard]
        network = [
            listener
            for listener in listeners
            if not listener.is_wildcard and not listener.is_loopback
        ]
        facts = {"port": port, "listeners": [listener.to_facts() for listener in listeners]}
        details = {
            "port": port,
            "listeners": ", ".join(listener.endpoint for listener in listeners),
            "wildcard_listeners": ", ".join(listener.endpoint for listener in wildcard),
            "network_listeners": ", ".join(listener.endpoint for listener in network),
        }
        if wildcard:
            findings.append(EXPOSED.make(facts=facts, details=details))
        elif network:
            findings.append(NETWORK_LISTENER.make(facts=facts, details=details))
    return findings


def _bounce_findings(summary: BounceSummary | None) -> list[Finding]:
    if summary is None:
        return []
    findings: list[Finding] = []
    for auth, kind in ((True, AUTH_FAILURE_BOUNCES_MAIL), (False, PIPE_ERROR_BOUNCES_MAIL)):
        keys = [key for key in summary.counts if (key[1] in AUTH_EXIT_STATUSES) == auth]
        if keys:
            findings.append(_bounce_finding(kind, summary, auth, keys))
    return findings


def _bounce_finding(
    kind: FindingKind, summary: BounceSummary, auth: bool, keys: Sequence[BounceKey]
) -> Finding:
    from smtpdiag.logs.summary import iso_time

    messages_by_source: Counter[str] = Counter()
    for source, status in keys:
        messages_by_source[source] += summary.messages.get((source, status), 0)
    # msmtpd logs one line per message, which repeats the MTA's bounces when both logs are
    # read, so its lines count only when no MTA bounce line was found.
    counted = [source for source in messages_by_source if source != "msmtpd"] or ["msmtpd"]
    by_status: Counter[int | None] = Counter()
    recipient_lines = 0
    for source, status in keys:
        if source in counted:
            by_status[status] += summary.messages.get((source, status), 0)
            recipient_lines += summary.counts[source, status] if source != "msmtpd" else 0
    bounces = sum(by_status.values())
    first_seen = summary.first_seen.get(auth)
    last_seen = summary.last_seen.get(auth)
    age = _age_seconds(summary.now, last_seen)
    statuses = sorted(by_status, key=lambda status: -1 if status is None else status)
    facts = {
        "bounces": bounces,
        "recipient_lines": recipient_lines,
        "by_source": dict(messages_by_source),
        "counted_sources": sorted(counted),
        "exit_statuses": {_status_text(status): by_status[status] for status in statuses},
        "first_seen": iso_time(first_seen) if first_seen is not None else None,
        "last_seen": iso_time(last_seen) if last_seen is not None else None,
        "last_age_seconds": age,
        "log_source": sorted(messages_by_source),
    }
    details = {
        **facts,
        "messages": _count_text(bounces, "message"),
        "recipient_lines": _recipient_text(recipient_lines),
        "first_seen": facts["first_seen"] or "an unknown time",
        "last_seen": facts["last_seen"] or "an unknown time",
        "last_age": _age_text(age),
        "log_sources": ", ".join(sorted(messages_by_source)),
        "failures": _failures_text(statuses),
        # 77, or "77 and 78"; None (msmtpd's 554 without a status) is never an AUTH failure.
        "statuses": " and ".join(str(status) for status in statuses if status is not None),
    }
    severity = None
    if auth and age is not None and age > RECENT_BOUNCE_SECONDS:
        severity = Severity.WARNING
    evidence = [bounce.line for bounce in summary.bounces if bounce.is_auth_failure == auth]
    return kind.make(facts=facts, evidence=evidence, details=details, severity=severity)


def _age_seconds(now: float | None, last_seen: float | None) -> float | None:
    if now is None or last_seen is None:
        return None
    return max(0.0, round(now - last_seen, 3))


def _age_text(age: float | None) -> str:
    """Write an age for a title: ``less than a minute ago``, ``5 min ago``, ``3 h ago``."""
    if age is None:
        return "at an unknown time"
    if age < 60:
        return "less than a minute ago"
    if age < 3600:
        return f"{int(age // 60)} min ago"
    if age < 2 * 86400:
        return f"{int(age // 3600)} h ago"
    return f"{int(age // 86400)} days ago"


def _status_text(status: int | None) -> str:
    return "none" if status is None else str(status)


def _failures_text(statuses: Sequence[int | None]) -> str:
    numbers = [str(status) for status in statuses if status is not None]
    parts = [f"exit status {', '.join(numbers)}"] if numbers else []
    if None in statuses:
        parts.append("pipe command without exit status")
    return ", ".join(parts)


def _recipient_text(lines: int) -> str:
    if lines == 0:
        return "msmtpd's own log, one line per message"
    return f"{_count_text(lines, 'recipient line')} in the MTA's log"


def _count_text(number: int, noun: str) -> str:
    text = f"{number} {noun}" if number == 1 else f"{number} {noun}s"
    return text[:1].upper() + text[1:]


def _log_findings(summary: BounceSummary | None) -> list[Finding]:
    """Report each log file that could not be read to its end."""
    if summary is None:
        return []
    return [
        LOG_UNREADABLE.make(
            facts={"path": path, "error": error}, details={"path": path, "error": error}
        )
        for path, error in summary.read_errors
    ]


# Facts and summary ------------------------------------------------------------------------


def _lookup_facts(lookup: RelayLookup) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "relay_source": lookup.source.value,
        "relay_origin": lookup.origin,
        "relay_value": lookup.value,
        "relay_addresses": [
            {
                "relay": address.text,
                "host": address.host,
                "port": address.port,
                "mx_lookup": address.mx_lookup,
            }
            for address in lookup.addresses
        ],
    }
    if lookup.notes:
        facts["relay_notes"] = list(lookup.notes)
    if lookup.error:
        facts["relay_error"] = lookup.error
    return facts


def _facts(observation: RelayObservation) -> dict[str, Any]:
    facts = _lookup_facts(observation.lookup)
    facts["sessions"] = [session.to_facts() for session in observation.sessions]
    greeting = next((s.greeting for s in observation.sessions if s.greeting), None)
    if greeting is not None:
        facts["greeting"] = greeting
    if observation.local_ports:
        if observation.listeners is None:
            facts["listeners"] = None
            facts["listeners_note"] = "could not determine: /proc/net/tcp is not readable"
        else:
            facts["listeners"] = [
                listener.to_facts()
                for listeners in observation.listeners.values()
                for listener in listeners
            ]
    bounces = observation.bounces
    if bounces is not None:
        facts["log_lines"] = bounces.lines_read
        facts["log_read_complete"] = bounces.complete
        if bounces.read_errors:
            facts["log_read_errors"] = [
                {"path": path, "error": error} for path, error in bounces.read_errors
            ]
    return facts


def _summary(observation: RelayObservation, findings: Sequence[Finding]) -> str:
    serious = [finding for finding in findings if finding.severity is not Severity.INFO]
    if serious:
        return serious[0].title
    answered = [session for session in observation.sessions if session.failure is None]
    if not answered:
        return f"No relay address found in {observation.lookup.origin}"
    first = answered[0]
    text = f"Relay {first.endpoint} answers ({first.greeting})"
    if observation.listeners is None and observation.local_ports:
        text += "; its listeners could not be determined"
    elif observation.local_ports:
        text += ", listening on loopback only"
    bounces = observation.bounces
    if bounces is not None and not bounces.complete:
        text += "; the logs were not read to the end before the check's deadline"
    elif bounces is not None:
        text += f"; no bounce in {_count_text(bounces.lines_read, 'log line').lower()}"
    if any(note.startswith("--exim-config") for note in observation.lookup.notes):
        text += "; --exim-config was not read"
    return text


SPEC = CheckSpec(
    id=CHECK_ID,
    title="local relay (msmtpd, Postfix or Exim smarthost)",
    run=run,
    findings=FINDINGS,
)
