"""Open a submission session up to the post-TLS EHLO and record every step.

The probe never raises for network or protocol trouble: it returns a ``ProbeOutcome`` that
names the stage and kind of failure, so checks can turn it into findings. On success the
outcome keeps the session open for callers that go on (AUTH); they close it.
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from smtpdiag.errors import SmtpClosedError, SmtpReplyError
from smtpdiag.smtp.capabilities import Capabilities
from smtpdiag.smtp.reply import (
    Reply,
    ReplyLimit,
    ReplyLimitError,
    describe_partial_reply,
    format_excerpt,
    parse_reply_line,
)
from smtpdiag.smtp.session import SmtpSession
from smtpdiag.smtp.transport import (
    Channel,
    TlsHandshakeError,
    TlsInfo,
    looks_like_tls,
    unverified_context,
)

logger = logging.getLogger(__name__)

SILENT_GREETING_SHARE = 0.5
"""Share of the timeout after which a silent STARTTLS port is probed with a TLS ClientHello.

SMTP servers greet at once; a port that stays silent is most often an implicit-TLS port
waiting for the client's ClientHello. Probing on the same connection keeps the whole check
within one timeout, so a black-hole port still ends after ``timeout`` seconds.
"""


class Stage(StrEnum):
    """Step of the session at which a probe stopped."""

    TCP = "tcp"
    GREETING = "greeting"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    TLS_HANDSHAKE = "tls_handshake"
    EHLO_AFTER_TLS = "ehlo_after_tls"
    DONE = "done"

    @property
    def phrase(self) -> str:
        """The stage in words for a sentence, such as ``the EHLO after TLS``."""
        return _STAGE_PHRASES[self]


_STAGE_PHRASES = {
    Stage.TCP: "the TCP handshake",
    Stage.GREETING: "the greeting",
    Stage.EHLO: "EHLO",
    Stage.STARTTLS: "STARTTLS",
    Stage.TLS_HANDSHAKE: "the TLS handshake",
    Stage.EHLO_AFTER_TLS: "the EHLO after TLS",
    Stage.DONE: "the end of the session",
}


class Failure(StrEnum):
    """Kind of failure that ended a probe."""

    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    CLOSED = "closed"
    NOT_SMTP = "not_smtp"
    REJECTED = "rejected"
    STARTTLS_NOT_OFFERED = "starttls_not_offered"
    TLS_FAILED = "tls_failed"
    EXPECTS_IMPLICIT_TLS = "expects_implicit_tls"
    EXPECTS_STARTTLS = "expects_starttls"
    GREETING_LATE = "greeting_late"


@dataclass
class ProbeOutcome:
    """Everything one probe saw; ``failure`` is None when the session reached ``Stage.DONE``."""

    address: str
    port: int
    implicit_tls: bool
    stage: Stage = Stage.TCP
    failure: Failure | None = None
    error: str | None = None
    """Library or parser message for the failure, redacted, or None."""
    reply: Reply | None = None
    """The reply that ended the probe, or None when no reply was involved."""
    raw: bytes = b""
    """Offending bytes for NOT_SMTP and TLS mismatches."""
    reply_limit: ReplyLimit | None = None
    """Reader limit that a reply went past, for NOT_SMTP. ``raw`` is then an excerpt."""
    greeting: Reply | None = None
    capabilities_before_tls: Capabilities | None = None
    capabilities_after_tls: Capabilities | None = None
    tls: TlsInfo | None = None
    oddities: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    session: SmtpSession | None = None
    """Open session after a successful probe; None after a failure."""
    server_hostname: str | None = None
    """The request's host name, sent as SNI unless it is an IP address; None when absent."""

    def raw_excerpt(self, limit: int) -> str:
        """Return ``raw`` escaped, in at most ``limit`` bytes, with its cuts marked."""
        return format_excerpt(self.raw, limit, self.reply_limit)

    @property
    def capabilities(self) -> Capabilities | None:
        """Capabilities that apply to AUTH: post-TLS ones when TLS was reached."""
        return self.capabilities_after_tls or self.capabilities_before_tls

    def to_facts(self) -> dict[str, Any]:
        """Return the outcome as JSON facts."""
        facts: dict[str, Any] = {
            "address": self.address,
            "port": self.port,
            "tls_mode": "implicit" if self.implicit_tls else "starttls",
            "stage": self.stage.value,
            "failure": self.failure.value if self.failure else None,
            "elapsed_seconds": round(self.elapsed_seconds, 6),
            "greeting": self.greeting.text if self.greeting else None,
        }
        if self.capabilities_before_tls is not None:
            facts["capabilities_before_tls"] = self.capabilities_before_tls.to_facts()
        if self.capabilities_after_tls is not None:
            facts["capabilities_after_tls"] = self.capabilities_after_tls.to_facts()
        if self.tls is not None:
            facts["tls_version"] = self.tls.version
            facts["tls_cipher"] = self.tls.cipher
            facts["sni"] = self.tls.server_hostname
        if self.reply is not None:
            facts.update(self.reply.facts())
        if self.error:
            facts["error"] = self.error
        return facts


@dataclass(frozen=True)
class ProbeRequest:
    """Address, TLS mode and limits of one probe."""

    address: str
    port: int
    implicit_tls: bool
    server_hostname: str | None
    """Name for SNI and certificate checks; None sends no SNI and skips the name check."""
    ehlo_name: str
    tls_context: ssl.SSLContext
    timeout: float


def probe(request: ProbeRequest) -> ProbeOutcome:
    """Run the session steps for ``request`` and return what happened."""
    outcome = ProbeOutcome(
        request.address, request.port, request.implicit_tls, server_hostname=request.server_hostname
    )
    started = time.monotonic()
    channel: Channel | None = None
    session: SmtpSession | None = None
    try:
        channel = Channel.connect(request.address, request.port, request.timeout)
        session = SmtpSession(channel, request.timeout)
        _run_steps(request, outcome, session, started)
    except ConnectionRefusedError as error:
        _fail(outcome, Failure.REFUSED, error.strerror or str(error))
    except TimeoutError:
        _fail(outcome, Failure.TIMEOUT, _timeout_text(outcome.stage, session, request.timeout))
    except SmtpClosedError as error:
        # The session's transcript already shows the bytes as "S (incomplete)".
        _fail(outcome, Failure.CLOSED, _closed_text(error.raw))
    except ReplyLimitError as error:
        outcome.reply_limit = error.limit
        _fail(outcome, Failure.NOT_SMTP, error.problem, raw=error.raw)
    except SmtpReplyError as error:
        _fail(outcome, Failure.NOT_SMTP, error.problem, raw=error.raw)
    except ConnectionResetError as error:
        if session is None:
            _fail(outcome, Failure.UNREACHABLE, error.strerror or str(error))
        else:
            session.note("a TCP reset ended the connection")
            _fail(outcome, Failure.CLOSED, "a TCP reset ended the connection")
    except OSError as error:
        _fail(outcome, Failure.UNREACHABLE, error.strerror or str(error))
    finally:
        outcome.elapsed_seconds = time.monotonic() - started
        if channel is not None and outcome.session is None:
            channel.close()
    return outcome


def _timeout_text(stage: Stage, session: SmtpSession | None, timeout: float) -> str:
    """Describe a timeout at ``stage``, counting the bytes of an unfinished reply."""
    if stage is Stage.TCP or session is None:
        return f"no TCP connection within {timeout:g} s"
    if stage is Stage.TLS_HANDSHAKE:
        return f"the TLS handshake did not complete within {timeout:g} s"
    return session.timeout_text()


def _closed_text(partial: bytes) -> str:
    if not partial:
        return "the connection closed before any byte of a reply arrived"
    return f"the connection closed after {describe_partial_reply(partial)}"


def _fail(outcome: ProbeOutcome, failure: Failure, error: str, *, raw: bytes = b"") -> None:
    outcome.failure = failure
    outcome.error = error
    outcome.raw = raw
    if raw:
        outcome.transcript.append(f"S: {outcome.raw_excerpt(200)}")


def _run_steps(
    request: ProbeRequest, outcome: ProbeOutcome, session: SmtpSession, started: float
) -> None:
    outcome.transcript = session.transcript
    if request.implicit_tls:
        outcome.stage = Stage.TLS_HANDSHAKE
        if not _handshake(request, outcome, session):
            return
        outcome.stage = Stage.GREETING
        if not _greeting(request, outcome, session, started, allow_tls_probe=False):
            return
        outcome.stage = Stage.EHLO_AFTER_TLS
        outcome.capabilities_after_tls = _ehlo(request, outcome, session)
    else:
        outcome.stage = Stage.GREETING
        if not _greeting(request, outcome, session, started, allow_tls_probe=True):
            return
        outcome.stage = Stage.EHLO
        outcome.capabilities_before_tls = _ehlo(request, outcome, session)
        if outcome.capabilities_before_tls is None or not _starttls(request, outcome, session):
            return
        outcome.stage = Stage.EHLO_AFTER_TLS
        outcome.capabilities_after_tls = _ehlo(request, outcome, session)
    if outcome.failure is None:
        outcome.stage = Stage.DONE
        outcome.session = session


def _greeting(
    request: ProbeRequest,
    outcome: ProbeOutcome,
    session: SmtpSession,
    started: float,
    *,
    allow_tls_probe: bool,
) -> bool:
    """Read the 220 greeting; on a silent plaintext port, test whether it speaks implicit TLS."""
    silence = request.timeout * SILENT_GREETING_SHARE
    if allow_tls_probe and not session.channel.wait_readable(silence):
        remaining = request.timeout - (time.monotonic() - started)
        _probe_silent_port(request, outcome, session, remaining)
        return False
    # The greeting has begun (or TLS is up): the rest of it gets the whole remaining timeout.
    session.timeout = max(0.05, request.timeout - (time.monotonic() - started))
    try:
        reply = session.read_reply()
    finally:
        session.timeout = request.timeout
    outcome.greeting = reply
    outcome.oddities += reply.oddities
    if reply.code != 220:
        outcome.failure = Failure.REJECTED
        outcome.reply = reply
        return False
    return True


def _probe_silent_port(
    request: ProbeRequest, outcome: ProbeOutcome, session: SmtpSession, remaining: float
) -> None:
    """Send a ClientHello on a port that sent no greeting and classify what comes back."""
    silence = request.timeout * SILENT_GREETING_SHARE
    session.note(f"no greeting after {silence:g} s; trying a TLS handshake")
    remaining = max(0.05, remaining)
    try:
        session.channel.start_tls(_probe_context(), request.server_hostname, remaining)
    except TlsHandshakeError as error:
        _classify_probe_bytes(outcome, session, error.received, error.reason)
        return
    except TimeoutError:
        session.note(f"no answer to the TLS ClientHello within {remaining:.1f} s either")
        _fail(
            outcome,
            Failure.TIMEOUT,
            f"no greeting and no answer to a TLS ClientHello within {request.timeout:g} s",
        )
        return
    session.note("the TLS handshake completed")
    outcome.failure = Failure.EXPECTS_IMPLICIT_TLS
    outcome.error = "the port completed a TLS handshake instead of sending an SMTP greeting"


def _classify_probe_bytes(
    outcome: ProbeOutcome, session: SmtpSession, received: bytes, reason: str
) -> None:
    if looks_like_tls(received):
        session.note(f"the server answered with TLS ({reason})")
        _fail(outcome, Failure.EXPECTS_IMPLICIT_TLS, f"the port answered with TLS ({reason})")
    elif received[:1].isdigit():
        session.note("the greeting arrived after the ClientHello")
        _fail(
            outcome,
            Failure.GREETING_LATE,
            "the greeting arrived only after the silence probe",
            raw=received,
        )
    elif received:
        session.note("the server answered with bytes that are neither SMTP nor TLS")
        _fail(outcome, Failure.NOT_SMTP, "neither an SMTP greeting nor TLS", raw=received)
    else:
        session.note(f"the server closed the connection ({reason})")
        _fail(
            outcome,
            Failure.CLOSED,
            f"the server closed the connection without a greeting ({reason})",
        )


def _probe_context() -> ssl.SSLContext:
    """Build the silence probe's TLS context; only the first bytes matter, not the certificate."""
    return unverified_context()


def _ehlo(
    request: ProbeRequest, outcome: ProbeOutcome, session: SmtpSession
) -> Capabilities | None:
    reply = session.command(f"EHLO {request.ehlo_name}")
    outcome.oddities += reply.oddities
    if reply.code != 250:
        outcome.failure = Failure.REJECTED
        outcome.reply = reply
        return None
    return Capabilities.from_reply(reply)


def _starttls(request: ProbeRequest, outcome: ProbeOutcome, session: SmtpSession) -> bool:
    capabilities = outcome.capabilities_before_tls
    if capabilities is None or not capabilities.has("STARTTLS"):
        outcome.failure = Failure.STARTTLS_NOT_OFFERED
        return False
    outcome.stage = Stage.STARTTLS
    reply = session.command("STARTTLS")
    if reply.code != 220:
        outcome.failure = Failure.REJECTED
        outcome.reply = reply
        return False
    if session.pending:
        outcome.oddities.append("data after the STARTTLS reply was discarded before TLS")
    session.reset_reader()
    outcome.stage = Stage.TLS_HANDSHAKE
    return _handshake(request, outcome, session)


def _handshake(request: ProbeRequest, outcome: ProbeOutcome, session: SmtpSession) -> bool:
    try:
        outcome.tls = session.channel.start_tls(
            request.tls_context, request.server_hostname, request.timeout
        )
    except TlsHandshakeError as error:
        _handshake_failed(request, outcome, error)
        return False
    session.note(f"TLS established: {outcome.tls.version} {outcome.tls.cipher}")
    return True


def _handshake_failed(
    request: ProbeRequest, outcome: ProbeOutcome, error: TlsHandshakeError
) -> None:
    received = error.received
    if request.implicit_tls and _is_smtp_greeting(received):
        _fail(
            outcome,
            Failure.EXPECTS_STARTTLS,
            "the port sent a plaintext SMTP greeting",
            raw=received,
        )
    elif received and not looks_like_tls(received) and request.implicit_tls:
        _fail(
            outcome,
            Failure.NOT_SMTP,
            f"the peer answered the TLS handshake with non-TLS bytes ({error.reason})",
            raw=received,
        )
    elif received and not looks_like_tls(received):
        # The session spoke SMTP, so the server or a middlebox broke TLS after STARTTLS.
        reason = f"the server accepted STARTTLS, then sent plaintext ({error.reason})"
        _fail(outcome, Failure.TLS_FAILED, reason, raw=received)
    else:
        _fail(outcome, Failure.TLS_FAILED, error.reason)


def _is_smtp_greeting(data: bytes) -> bool:
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        parse_reply_line(line)
    except SmtpReplyError:
        return False
    return True
