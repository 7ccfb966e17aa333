"""Network steps of the tls check: connect, STARTTLS if needed, handshake, and a second one.

``measure`` raises no exception for network or protocol failures. It returns a ``TlsMeasurement``
whose ``problem`` names what stopped it.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, replace

from smtpdiag.errors import SmtpClosedError, SmtpReplyError
from smtpdiag.smtp.capabilities import Capabilities
from smtpdiag.smtp.probe import Stage
from smtpdiag.smtp.reply import Reply
from smtpdiag.smtp.session import SmtpSession
from smtpdiag.smtp.transport import Channel
from smtpdiag.tls.handshake import HandshakeError, run_handshake
from smtpdiag.tls.model import Handshake, Problem, TlsMeasurement

logger = logging.getLogger(__name__)

WRONG_MODE_REASONS = ("wrong version number", "unexpected packet", "unexpected packet format")
"""OpenSSL reasons for a peer that replies to the ClientHello with something other than TLS."""


@dataclass(frozen=True)
class TlsRequest:
    """Address, TLS mode, SNI and trust store of the handshakes."""

    address: str
    port: int
    implicit_tls: bool
    expected_name: str
    """Host name or IP literal that clients connect to."""
    sni: str | None
    """Server name to send, or None to send none."""
    ca_file: str | None
    ehlo_name: str
    timeout: float
    """Seconds for each network step."""


class _StepFailure(Exception):
    """Internal: one session ended early; carries the fields of the measurement."""

    def __init__(self, measurement: TlsMeasurement) -> None:
        self.measurement = measurement
        super().__init__(measurement.error)


def alternate_sni(expected_name: str, sni: str | None) -> tuple[bool, str | None]:
    """Return whether to run a second handshake and the SNI it sends.

    With the expected name sent, the second handshake sends none; otherwise it sends the
    expected name. An IP literal target has no name to compare with, so there is none.
    """
    if _is_ip(expected_name):
        return (sni is not None, None)
    name = expected_name.rstrip(".")
    return (True, None) if sni == name else (True, name)


def measure(request: TlsRequest) -> TlsMeasurement:
    """Run the configured handshake, then the comparison handshake when it applies."""
    base = TlsMeasurement(
        request.address, request.port, request.implicit_tls, request.expected_name
    )
    transcript: list[str] = []
    try:
        handshake = _session(request, request.sni, transcript)
    except _StepFailure as failure:
        return replace(failure.measurement, transcript=tuple(transcript))
    run_second, sni = alternate_sni(request.expected_name, request.sni)
    alternate = None
    if run_second:
        try:
            alternate = _session(request, sni, [])
        except _StepFailure as failure:
            logger.debug("comparison handshake failed: %s", failure.measurement.error)
    return replace(base, handshake=handshake, alternate=alternate, transcript=tuple(transcript))


def _session(request: TlsRequest, sni: str | None, transcript: list[str]) -> Handshake:
    """Connect, run the plaintext steps in STARTTLS mode, and run one handshake."""
    base = TlsMeasurement(
        request.address, request.port, request.implicit_tls, request.expected_name
    )
    stage = Stage.TCP
    try:
        channel = Channel.connect(request.address, request.port, request.timeout)
    except OSError as error:
        raise _StepFailure(_not_reached(base, stage, error)) from None
    with channel:
        session = SmtpSession(channel, request.timeout)
        try:
            if not request.implicit_tls:
                # NOTE: a failure before STARTTLS is reported at the greeting stage; the
                # connect check names the exact step.
                stage = Stage.GREETING
                stage = _starttls(base, session, request.ehlo_name)
            transcript.extend(session.transcript)
            stage = Stage.TLS_HANDSHAKE
            handshake = _handshake(base, channel, request, sni)
        except (TimeoutError, SmtpClosedError, SmtpReplyError, OSError) as error:
            transcript.extend(session.transcript)
            raise _StepFailure(_not_reached(base, stage, error)) from None
        except _StepFailure:
            transcript.extend(session.transcript)
            raise
    transcript.append(f"-- TLS established: {handshake.version} {handshake.cipher}")
    return handshake


def _starttls(base: TlsMeasurement, session: SmtpSession, ehlo_name: str) -> Stage:
    """Read the greeting, send EHLO and STARTTLS; returns the stage reached."""
    greeting = session.read_reply()
    if greeting.code != 220:
        raise _StepFailure(_refused_before_tls(base, Stage.GREETING, greeting))
    ehlo = session.command(f"EHLO {ehlo_name}")
    if ehlo.code != 250:
        raise _StepFailure(_refused_before_tls(base, Stage.EHLO, ehlo))
    if not Capabilities.from_reply(ehlo).has("STARTTLS"):
        raise _StepFailure(
            replace(
                base,
                problem=Problem.STARTTLS_NOT_OFFERED,
                stage=Stage.EHLO,
                error="the EHLO reply lists no STARTTLS",
                reply=ehlo,
            )
        )
    reply = session.command("STARTTLS")
    if reply.code != 220:
        raise _StepFailure(
            replace(
                base,
                problem=Problem.STARTTLS_REFUSED,
                stage=Stage.STARTTLS,
                error=" ".join(reply.transcript(prefix="")),
                reply=reply,
            )
        )
    return Stage.STARTTLS


def _handshake(
    base: TlsMeasurement, channel: Channel, request: TlsRequest, sni: str | None
) -> Handshake:
    try:
        return run_handshake(
            channel.plain_socket(), request.ca_file, sni, request.timeout, farewell=b"QUIT\r\n"
        )
    except HandshakeError as error:
        problem = Problem.WRONG_MODE if _wrong_mode(error) else Problem.HANDSHAKE_FAILED
        raise _StepFailure(
            replace(
                base,
                problem=problem,
                stage=Stage.TLS_HANDSHAKE,
                error=error.reason,
                received=error.received,
                handshake_state=error.state,
            )
        ) from None


def _wrong_mode(error: HandshakeError) -> bool:
    """Return whether the peer sent plaintext SMTP or another non-TLS protocol."""
    if error.received[:3].isdigit():
        return True
    return error.reason.lower() in WRONG_MODE_REASONS


def _not_reached(base: TlsMeasurement, stage: Stage, error: Exception) -> TlsMeasurement:
    if isinstance(error, TimeoutError):
        text = "no complete reply in time"
    elif isinstance(error, OSError):
        text = error.strerror or str(error)
    else:
        text = str(error)
    return replace(base, problem=Problem.NOT_REACHED, stage=stage, error=text)


def _refused_before_tls(base: TlsMeasurement, stage: Stage, reply: Reply) -> TlsMeasurement:
    text = " ".join(reply.transcript(prefix=""))
    return replace(base, problem=Problem.NOT_REACHED, stage=stage, error=text, reply=reply)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
