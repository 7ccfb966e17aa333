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
and EX_CONFIG 78 (configuration or passwordeval failure) included. Older releases answered
554 for every status.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from smtpdiag.context import CheckContext, RelaySettings, Target
from smtpdiag.errors import SmtpClosedError, SmtpReplyError
from smtpdiag.local.listeners import (
    Listener,
    format_endpoint,
    is_loopback,
    listeners_on_port,
    read_listeners,
    read_local_addresses,
)
from smtpdiag.local.relayhost import (
    RelayAddress,
    RelayLookup,
    RelaySource,
    exim_smarthosts,
    parse_option_address,
    postfix_relayhost,
)
from smtpdiag.models import CheckResult, Finding, Severity, Status
from smtpdiag.redact import redact
from smtpdiag.smtp.session import SmtpSession
from smtpdiag.smtp.transport import Channel
from smtpdiag.spec import CheckSpec, FindingKind

# The log parsers load when the check reads logs, not when ``smtpdiag check`` starts.
if TYPE_CHECKING:
    from smtpdiag.logs.timestamps import TimeReader

CHECK_ID = "relay"

NOT_CONFIGURED = (
    "not run: no relay configured (--relay HOST:PORT or --relay postfix, "
    "--postfix-config-dir, or --exim-config)"
)

PROC_DIR = "/proc"

MAX_ADDRESSES = 8
"""Addresses probed at most, over all relay entries and their resolved addresses."""

AUTH_EXIT_STATUSES = frozenset({77, 78})
"""EX_NOPERM (the server rejected AUTH) and EX_CONFIG (configuration or passwordeval failed)."""

TEMPORARY_EXIT_STATUSES = frozenset({68, 69, 71, 75})
"""Statuses for which msmtpd replies 451: EX_NOHOST, EX_UNAVAILABLE, EX_OSERR, EX_TEMPFAIL."""

DEADLINE_CHECK_LINES = 4096
"""Candidate log lines read between two looks at the check's deadline."""

MIN_REMAINING_SECONDS = 0.05
"""Time left before the check's deadline at which log reading stops."""

EVIDENCE_LINES = 5
"""Log lines kept as evidence from the start and from the end of the bounces."""

_FIX_TEMPORARY = (
    "Make these failures temporary, so that the MTA retries instead of bouncing: run msmtp "
    "through a wrapper (msmtpd --command='/usr/local/bin/msmtp-tempfail -f %F') that exits 75 "
    "(EX_TEMPFAIL) when msmtp exits 77 or 78, so msmtpd replies 451; or let the MTA defer "
    "(Postfix: smtp_reply_filter rewriting '554 Pipe command' replies to 451, or "
    "soft_bounce = yes while the cause is fixed)."
)

UNREACHABLE = FindingKind(
    "relay.unreachable",
    Severity.CRITICAL,
    "Relay {endpoint} unreachable: {error}",
    "No connection could be opened to {endpoint} ({failure}), so mail handed to the relay "
    "stays in the MTA's queue or is rejected. The relay is not running, listens on another "
    "address or port, or a firewall rejects the connection.",
    "Start the relay and compare the address it listens on with {origin} (msmtpd: "
    "--interface and --port; ss -ltn 'sport = :{port}' lists the listeners).",
)
NOT_SMTP = FindingKind(
    "relay.not_smtp",
    Severity.CRITICAL,
    "Relay {endpoint} does not answer as an SMTP server",
    "The connection opened, but {error}. Another service listens on this port, or the relay "
    "hangs or closes connections it cannot serve.",
    "Check which program listens on port {port} (ss -ltnp 'sport = :{port}') and read the "
    "relay's log.",
)
GREETING_REJECTED = FindingKind(
    "relay.greeting_rejected",
    Severity.CRITICAL,
    "Relay {endpoint} refused the session: {reply}",
    "The relay greeted with {reply_code} instead of 220, so it accepts no mail from this "
    "client: a 4xx greeting is temporary (overload, connection limit), a 5xx one permanent.",
    "Read the relay's log for the reason; for a Postfix relay service check its client "
    "restrictions and connection limits.",
)
EHLO_REJECTED = FindingKind(
    "relay.ehlo_rejected",
    Severity.CRITICAL,
    "Relay {endpoint} rejected EHLO: {reply}",
    "The relay greeted with 220 but refused the EHLO command, so clients cannot start a "
    "mail transaction.",
    "Read the relay's log; msmtpd accepts any 'EHLO name' or 'HELO name' line.",
)
EXPOSED = FindingKind(
    "relay.exposed",
    Severity.CRITICAL,
    "Relay port {port} listens on every address of this machine ({listeners})",
    "A socket bound to 0.0.0.0 or :: accepts connections on every interface, so any host "
    "that can reach this machine can hand mail to the relay, which sends it with this "
    "site's provider account. msmtpd checks no client address, and only --auth adds a "
    "password.",
    "Bind the relay to loopback: msmtpd --interface=127.0.0.1 (its default) or ::1; for a "
    "Postfix relay service write 127.0.0.1:{port} in master.cf. Block the port in the "
    "firewall until then.",
)
NETWORK_LISTENER = FindingKind(
    "relay.network_listener",
    Severity.WARNING,
    "Relay port {port} listens on a network address ({listeners})",
    "Hosts on that network can connect to the relay and send mail with this site's provider "
    "account unless a firewall blocks them.",
    "Bind the relay to 127.0.0.1 or ::1 unless other hosts are meant to use it; if they are, "
    "require msmtpd --auth and allow only those hosts in the firewall.",
)
POSTFIX_RELAYHOST_EMPTY = FindingKind(
    "relay.postfix_relayhost_empty",
    Severity.WARNING,
    "Postfix relayhost is empty ({origin})",
    "Without relayhost, Postfix delivers remote mail itself: it looks up the MX records of "
    "each recipient domain and connects to them on port 25, so the mail bypasses the relay "
    "and its OAuth2 submission, and many networks block outbound port 25.",
    "Set relayhost = [127.0.0.1]:2525 (the relay's address in brackets) in main.cf and run "
    "postfix reload. When a transport map routes the mail instead, pass --relay HOST:PORT.",
)
EXIM_SMARTHOST_EMPTY = FindingKind(
    "relay.exim_smarthost_empty",
    Severity.WARNING,
    "No smarthost found in {origin}",
    "The file names no manualroute host and no dc_smarthost, so Exim routes remote mail by "
    "MX records and connects on port 25 itself, bypassing the relay.",
    "Debian: set dc_eximconfig_configtype='smarthost' and dc_smarthost='127.0.0.1::2525', "
    "then run update-exim4.conf and restart exim4. Other Exim configurations: add a "
    "manualroute router with route_list = * 127.0.0.1::2525 byname. Or pass --relay.",
)
RELAYHOST_MX_LOOKUP = FindingKind(
    "relay.relayhost_mx_lookup",
    Severity.WARNING,
    "Relay {entry} is looked up as a mail domain (MX records)",
    "Postfix treats a relayhost name without brackets, and Exim a host with /MX, as a mail "
    "domain: it delivers to the MX hosts of {host} and falls back to its address records "
    "only when there is no MX record, so a DNS change can send the mail elsewhere.",
    "Postfix: write relayhost = [{host}]:{port}. Exim: remove /MX from the host.",
)
ADDRESS_INVALID = FindingKind(
    "relay.address_invalid",
    Severity.WARNING,
    "Relay entries in {origin} could not be read",
    "smtpdiag could not read these entries, so they were not checked: {problems}.",
    "Correct the entries, or pass the relay's address with --relay HOST:PORT.",
)
AUTH_FAILURE_BOUNCES_MAIL = FindingKind(
    "relay.auth_failure_bounces_mail",
    Severity.CRITICAL,
    "Mail bounced {bounces} times because msmtp exited with status 77 or 78 behind the relay",
    "msmtpd replies '554 Pipe command reported error N' when msmtp exits with 77 "
    "(EX_NOPERM: the server rejected AUTH, such as an expired or revoked token) or 78 "
    "(EX_CONFIG: a configuration error or a failed passwordeval command), so the sending "
    "MTA takes a token problem for a permanent failure and returns the message to its "
    "sender instead of retrying. Seen from {first_seen} to {last_seen} in {log_sources}.",
    f"{_FIX_TEMPORARY} Then fix the token itself (smtpdiag check --msmtprc auto names the "
    "failing step) and resend the bounced messages.",
)
PIPE_ERROR_BOUNCES_MAIL = FindingKind(
    "relay.pipe_error_bounces_mail",
    Severity.WARNING,
    "Mail bounced {bounces} times because msmtp failed behind the relay (exit status "
    "{exit_statuses})",
    "msmtpd replies 554 for every msmtp exit status except 68, 69, 71 and 75, so the MTA "
    "returned these messages: 64 to 67 and 70 mean a wrong call, message or address, 72 to "
    "74 a local file or I/O error, 76 a protocol error of the submission server. Seen from "
    "{first_seen} to {last_seen} in {log_sources}.",
    "Read msmtp's log at those times for the exact error. A wrapper that exits 75 for "
    "failures that are not the message's own makes them temporary.",
)

FINDINGS = (
    UNREACHABLE,
    NOT_SMTP,
    GREETING_REJECTED,
    EHLO_REJECTED,
    EXPOSED,
    NETWORK_LISTENER,
    POSTFIX_RELAYHOST_EMPTY,
    EXIM_SMARTHOST_EMPTY,
    RELAYHOST_MX_LOOKUP,
    ADDRESS_INVALID,
    AUTH_FAILURE_BOUNCES_MAIL,
    PIPE_ERROR_BOUNCES_MAIL,
)


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
class Bounce:
    """One log line that records a message lost to a failed pipe command."""

    source: str
    """``postfix``, ``exim`` or ``msmtpd``."""
    exit_status: int
    timestamp: float | None
    line: str
    """The log line, redacted."""


@dataclass(frozen=True)
class BounceSummary:
    """Bounces read from the mail logs."""

    bounces: tuple[Bounce, ...] = ()
    """Kept lines: the first and last ``EVIDENCE_LINES`` of each kind, for the evidence."""
    counts: Mapping[tuple[str, int], int] = field(default_factory=dict)
    """Number of lines per ``(source, exit status)``."""
    first_seen: Mapping[bool, float] = field(default_factory=dict)
    """Earliest time per kind: True for exit statuses 77 and 78, False for the others."""
    last_seen: Mapping[bool, float] = field(default_factory=dict)
    lines_read: int = 0
    complete: bool = True
    """Whether every file was read to its end before the check's deadline."""
    read_errors: tuple[tuple[str, str], ...] = ()


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
        return CheckResult.unknown(CHECK_ID, lookup.error, _lookup_facts(lookup))
    return evaluate(observe(target, ctx, lookup))


def find_relay(relay: RelaySettings, timeout: float) -> RelayLookup:
    """Read the relay's address from the first configured source."""
    if relay.address:
        address = parse_option_address(relay.address)
        return RelayLookup(RelaySource.OPTION, "relay setting", relay.address, (address,))
    if relay.postfix or relay.postfix_config_dir:
        return postfix_relayhost(relay.postfix_config_dir, timeout)
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
    """Connect to ``address``, read the greeting, send EHLO and QUIT; never raises."""
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
        return _failed(relay, address, session, "not_smtp", str(error))
    except SmtpReplyError as error:
        return _failed(relay, address, session, "not_smtp", f"it sent {error}")
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


def _failed(
    relay: RelayAddress, address: str, session: SmtpSession, failure: str, error: str
) -> SessionOutcome:
    return SessionOutcome(
        relay, address, failure, redact(error), transcript=tuple(session.transcript)
    )


# Logs -----------------------------------------------------------------------------------

_MSMTPD_PIPE_ERROR = re.compile(r"pipe command reported error (\d+), session aborted")
_REPLY_PIPE_ERROR = re.compile(
    r"\b5\d\d[ -](?:\d\.\d{1,3}\.\d{1,3} )?Pipe command reported error (\d+)"
)
_EXIM_MESSAGE_ID = re.compile(r"\S+ \*\* ")


def classify_bounce(program: str | None, message: str) -> tuple[str, int] | None:
    """Return ``(source, exit status)`` of a log message that records a lost message.

    Recognised (the line formats of the logs package): msmtpd's own ``pipe command reported
    error N, session aborted`` for a status that msmtpd replies to with 554; a Postfix smtp
    delivery line with ``status=bounced`` and a 5xx ``Pipe command reported error N`` reply;
    an Exim ``**`` (bounce) line with such a reply. Deferrals are not bounces.
    """
    from smtpdiag.logs.exim import is_exim
    from smtpdiag.logs.postfix import is_postfix

    if program == "msmtpd":
        found = _MSMTPD_PIPE_ERROR.search(message)
        if found is None or int(found[1]) in TEMPORARY_EXIT_STATUSES:
            return None
        return "msmtpd", int(found[1])
    found = _REPLY_PIPE_ERROR.search(message)
    if found is None or program is None:
        return None
    if is_postfix(program) and "status=bounced" in message:
        return "postfix", int(found[1])
    if is_exim(program) and _EXIM_MESSAGE_ID.match(message):
        return "exim", int(found[1])
    return None


class _BounceTally:
    """Mutable counts while the logs are read; ``summary`` freezes them."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, int]] = Counter()
        self.first: dict[bool, list[Bounce]] = {True: [], False: []}
        self.last: dict[bool, list[Bounce]] = {True: [], False: []}
        self.first_seen: dict[bool, float] = {}
        self.last_seen: dict[bool, float] = {}

    def add(self, bounce: Bounce) -> None:
        self.counts[bounce.source, bounce.exit_status] += 1
        kind = bounce.exit_status in AUTH_EXIT_STATUSES
        if len(self.first[kind]) < EVIDENCE_LINES:
            self.first[kind].append(bounce)
        else:
            self.last[kind] = [*self.last[kind][-(EVIDENCE_LINES - 1) :], bounce]
        if bounce.timestamp is not None:
            self.first_seen[kind] = min(
                self.first_seen.get(kind, bounce.timestamp), bounce.timestamp
            )
            self.last_seen[kind] = max(self.last_seen.get(kind, bounce.timestamp), bounce.timestamp)

    def summary(
        self, lines_read: int, complete: bool, errors: Sequence[tuple[str, str]]
    ) -> BounceSummary:
        kept = [*self.first[True], *self.last[True], *self.first[False], *self.last[False]]
        return BounceSummary(
            tuple(kept),
            dict(self.counts),
            dict(self.first_seen),
            dict(self.last_seen),
            lines_read,
            complete,
            tuple(errors),
        )


def scan_logs(target: Target, ctx: CheckContext) -> BounceSummary:
    """Read ``target.logs.files`` for messages lost to a failed pipe command behind the relay.

    Files are streamed (gzip included) by the logs reader and read until the check's deadline;
    the summary says whether every file was read to its end.
    """
    from smtpdiag.logs.reader import LogReader
    from smtpdiag.logs.timestamps import TimeReader

    times = TimeReader(_zone(target.logs.timezone), lambda: ctx.now().timestamp())
    tally = _BounceTally()
    reader = LogReader(target.logs.files)
    lines = iter(reader)
    complete = True
    try:
        for count, line in enumerate(lines, start=1):
            bounce = read_bounce(line.text, times)
            if bounce is not None:
                tally.add(bounce)
            if count % DEADLINE_CHECK_LINES == 0 and ctx.remaining() < MIN_REMAINING_SECONDS:
                complete = False
                break
    finally:
        # Closing the generator closes the file it stopped in.
        close = getattr(lines, "close", None)
        if close is not None:
            close()
    return tally.summary(reader.lines_read, complete, reader.errors)


def read_bounce(text: str, times: TimeReader) -> Bounce | None:
    """Return the bounce that one log line records, or None."""
    from smtpdiag.logs import exim, journal, msmtpd, syslog

    if text.startswith("{"):
        record = journal.record_from_json(text)
    else:
        record = (
            msmtpd.split_logfile(text, times)
            or syslog.split_header(text, times)
            or exim.split_mainlog(text, times)
        )
    if record is None:
        return None
    found = classify_bounce(record.program, record.message)
    if found is None:
        return None
    source, exit_status = found
    return Bounce(source, exit_status, record.timestamp, redact(text))


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
    ]
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    findings.sort(key=lambda finding: order[finding.severity])
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
        if address.mx_lookup and not _is_ip(address.host):
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
    findings: list[Finding] = []
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
        }
        kind = _SESSION_KINDS[session.failure]
        findings.append(
            kind.make(facts=session.to_facts(), evidence=session.transcript[-20:], details=details)
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
        counts = {
            key: count
            for key, count in summary.counts.items()
            if (key[1] in AUTH_EXIT_STATUSES) == auth
        }
        if counts:
            findings.append(_bounce_finding(kind, summary, auth, counts))
    return findings


def _bounce_finding(
    kind: FindingKind, summary: BounceSummary, auth: bool, counts: Mapping[tuple[str, int], int]
) -> Finding:
    from smtpdiag.logs.summary import iso_time

    by_source: Counter[str] = Counter()
    by_status: Counter[int] = Counter()
    for (source, status), count in counts.items():
        by_source[source] += count
        by_status[status] += count
    # The MTA logs one line per bounced recipient. msmtpd logs one line per message, which
    # repeats the MTA's bounces when both logs are read, so its lines count only alone.
    mta = {source: count for source, count in by_source.items() if source != "msmtpd"}
    bounces = sum(mta.values()) if mta else by_source["msmtpd"]
    first_seen = summary.first_seen.get(auth)
    last_seen = summary.last_seen.get(auth)
    facts = {
        "bounces": bounces,
        "by_source": dict(by_source),
        "exit_statuses": {str(status): by_status[status] for status in sorted(by_status)},
        "first_seen": iso_time(first_seen) if first_seen is not None else None,
        "last_seen": iso_time(last_seen) if last_seen is not None else None,
        "log_source": sorted(by_source),
    }
    details = {
        **facts,
        "first_seen": facts["first_seen"] or "an unknown time",
        "last_seen": facts["last_seen"] or "an unknown time",
        "log_sources": ", ".join(sorted(by_source)),
        "exit_statuses": ", ".join(str(status) for status in sorted(by_status)),
    }
    evidence = [
        bounce.line
        for bounce in summary.bounces
        if (bounce.exit_status in AUTH_EXIT_STATUSES) == auth
    ]
    return kind.make(facts=facts, evidence=evidence, details=details)


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
        return f"no relay address found in {observation.lookup.origin}"
    first = answered[0]
    text = f"relay {first.endpoint} answers ({first.greeting})"
    if observation.listeners is None and observation.local_ports:
        text += "; its listeners could not be determined"
    elif observation.local_ports:
        text += ", listening on loopback only"
    if observation.bounces is not None and not observation.bounces.complete:
        text += "; the logs were not read to the end before the check's deadline"
    return text


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


SPEC = CheckSpec(
    id=CHECK_ID,
    title="local relay (msmtpd, Postfix or Exim smarthost)",
    run=run,
    findings=FINDINGS,
)
