"""The ``auth`` check: log in with the OAuth2 access token and explain every reply.

It opens its own session (greeting, EHLO, TLS, EHLO) and sends AUTH with XOAUTH2 or
OAUTHBEARER. After an error challenge it sends the dummy response the mechanism requires,
so the server's final reply is always read. It then quits, and it sends MAIL only with
``--send-test``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from smtpdiag.context import CheckContext, Target, TlsMode
from smtpdiag.endpoint import Endpoint, resolve_endpoint
from smtpdiag.errors import SmtpClosedError, SmtpDiagError, SmtpReplyError
from smtpdiag.knowledge import (
    AUTH_FINDINGS,
    Provider,
    classify_challenge,
    classify_reply,
    details_for_challenge,
    detect_provider,
    no_final_reply_details,
    server_timestamp,
)
from smtpdiag.models import CheckResult, Finding, Severity
from smtpdiag.oauth.model import ACCESS_TOKEN_OUTPUT, AccessToken
from smtpdiag.sasl import (
    Challenge,
    Mechanism,
    describe_token,
    dummy_response,
    encode,
    oauthbearer_response,
    parse_challenge,
    reportable_damage,
    xoauth2_response,
)
from smtpdiag.secrets import Secret
from smtpdiag.smtp.probe import Failure, ProbeOutcome, ProbeRequest, probe
from smtpdiag.smtp.reply import Reply, describe_partial_reply
from smtpdiag.smtp.session import SmtpSession
from smtpdiag.smtp.transport import client_context
from smtpdiag.spec import CheckSpec, FindingKind

CHECK_ID = "auth"
KINDS: Mapping[str, FindingKind] = {kind.code: kind for kind in AUTH_FINDINGS}

# Mechanisms in the order the check prefers them when none is configured.
PREFERRED = (Mechanism.XOAUTH2, Mechanism.OAUTHBEARER)


class Ending(StrEnum):
    """Way in which an AUTH exchange ended without a final reply."""

    TIMEOUT = "timeout"
    CLOSED = "closed"
    RESET = "reset"
    """The server or a middlebox reset the connection (TCP RST)."""
    NOT_SMTP = "not_smtp"
    NETWORK_ERROR = "network_error"


@dataclass
class Exchange:
    """Record of one AUTH exchange: the replies, the challenge and the fallbacks taken."""

    mechanism: Mechanism
    replies: list[Reply] = field(default_factory=list)
    challenge: Challenge | None = None
    line_too_long: Reply | None = None
    """The refusal of the initial response when the two-step form was tried after it."""
    two_step_reply: Reply | None = None
    """Server's reply to the response sent on its own line after ``line_too_long``, or None
    when the two-step form never sent the response or got no reply to it."""
    error: str | None = None
    """Reason the exchange ended without a final reply, or None when one arrived."""
    ending: Ending | None = None
    """Kind of ``error``, or None when a final reply arrived or the kind is not known."""
    repeated_challenge: bool = False
    """Whether the server asked for the response again after receiving it."""
    message_reply: Reply | None = None
    """Final reply to the test message (MAIL, RCPT or the end of DATA), or None when none
    was sent."""
    final_received_at: datetime | None = None
    """Local UTC time at which the AUTH exchange ended, for the clock check."""

    @property
    def final(self) -> Reply | None:
        """The last reply of the exchange, or None when none arrived."""
        return self.replies[-1] if self.replies else None

    @property
    def connection_lost(self) -> bool:
        """Whether the server closed or reset the connection, so nothing more can be sent."""
        return self.ending in (Ending.CLOSED, Ending.RESET)


def run(target: Target, ctx: CheckContext) -> CheckResult:
    """Open a session, authenticate with the access token and evaluate the replies."""
    token = _access_token(target, ctx)
    target = replace(target, access_token=token)
    missing = []
    if not target.user:
        missing.append("no user is configured (--user)")
    if token is None:
        missing.append(
            "no access token is available (configure a token source, such as "
            "--access-token-file, --token-command or --refresh-token-file)"
        )
    if missing:
        return CheckResult.skipped(CHECK_ID, f"not run: {' and '.join(missing)}")

    endpoint = resolve_endpoint(target, ctx)
    outcome = probe(_probe_request(target, endpoint, ctx))
    if outcome.session is None and outcome.failure is Failure.TLS_FAILED:
        return CheckResult.unknown(
            CHECK_ID,
            "the TLS handshake or the certificate verification failed; "
            "the tls check has the details",
        )
    if outcome.session is None:
        failure = outcome.failure.value.replace("_", " ") if outcome.failure else "unknown"
        return CheckResult.unknown(
            CHECK_ID,
            f"the session did not reach AUTH ({failure} during {outcome.stage.phrase}; "
            "the connect check has the details)",
        )
    session = outcome.session
    try:
        mechanism = _choose_mechanism(target, outcome)
        if mechanism is None:
            offered = " ".join(outcome.capabilities.auth_mechanisms) if outcome.capabilities else ""
            return CheckResult.unknown(
                CHECK_ID, f"the server offers no OAuth2 mechanism (AUTH {offered or 'none'})"
            )
        exchange = _authenticate(session, target, mechanism)
        exchange.final_received_at = ctx.now()
        final = exchange.final
        if target.send_test and final is not None and final.code == 235:
            exchange.message_reply = _send_test_message(session, target)
        if not exchange.connection_lost:
            _quit(session)
    finally:
        session.channel.close()
    provider = (
        Provider(target.oauth.provider)
        if target.oauth.provider
        else detect_provider(endpoint.host, _all_text(exchange))
    )
    return evaluate(exchange, provider, target, session.transcript)


def _access_token(target: Target, ctx: CheckContext) -> Secret | None:
    """Return the token the token check obtained, or the target's own when it did not run."""
    upstream = ctx.upstream.get("token")
    if upstream is None:
        return target.access_token
    token = upstream.outputs.get(ACCESS_TOKEN_OUTPUT)
    return token.value if isinstance(token, AccessToken) else None


def _probe_request(target: Target, endpoint: Endpoint, ctx: CheckContext) -> ProbeRequest:
    return ProbeRequest(
        address=endpoint.addresses[0] if endpoint.addresses else endpoint.host,
        port=endpoint.port,
        implicit_tls=endpoint.tls_mode is TlsMode.IMPLICIT,
        server_hostname=endpoint.host or None,
        ehlo_name=target.ehlo_name,
        # auth sends the token, so it verifies the certificate unless --insecure is given.
        tls_context=client_context(target.ca_file, target.insecure),
        timeout=ctx.io_timeout(),
    )


def _choose_mechanism(target: Target, outcome: ProbeOutcome) -> Mechanism | None:
    """Return the configured mechanism, else the first preferred one the server offers."""
    if target.auth_mechanism:
        return Mechanism(target.auth_mechanism.upper())
    offered = outcome.capabilities.auth_mechanisms if outcome.capabilities else ()
    return next((mechanism for mechanism in PREFERRED if mechanism.value in offered), None)


def _client_response(target: Target, mechanism: Mechanism) -> str:
    assert target.access_token is not None and target.user is not None
    token = target.access_token.reveal()
    if mechanism is Mechanism.OAUTHBEARER:
        return encode(oauthbearer_response(target.user, token))
    return encode(xoauth2_response(target.user, token))


def _shown(mechanism: Mechanism, target: Target) -> str:
    """Describe the client response for the transcript: user and token kind, never the token."""
    assert target.access_token is not None
    token = describe_token(target.access_token.reveal())
    token_text = f"{token.kind} token of {token.length} bytes"
    return f"<{mechanism.value} response for {target.user}, {token_text}>"


def _authenticate(session: SmtpSession, target: Target, mechanism: Mechanism) -> Exchange:
    """Run the AUTH exchange; a silent, closing or garbled server ends it with ``error``."""
    exchange = Exchange(mechanism)
    try:
        _exchange(session, target, exchange)
    except TimeoutError:
        _end(session, exchange, Ending.TIMEOUT, session.timeout_text())
    except SmtpClosedError as error:
        text = "the server closed the connection"
        if error.raw:
            text = f"{text} after {describe_partial_reply(error.raw)}"
        _end(session, exchange, Ending.CLOSED, text)
    except BrokenPipeError:
        closed = "the server had closed the connection before the next command"
        _end(session, exchange, Ending.CLOSED, closed)
    except ConnectionResetError:
        _end(session, exchange, Ending.RESET, "a TCP reset ended the connection")
    except SmtpReplyError as error:
        _end(session, exchange, Ending.NOT_SMTP, f"not an SMTP reply: {error.problem}")
    except OSError as error:
        _end(session, exchange, Ending.NETWORK_ERROR, f"network error: {error.strerror or error}")
    return exchange


def _end(session: SmtpSession, exchange: Exchange, ending: Ending, error: str) -> None:
    """Record why the exchange ended without a final reply, in the exchange and transcript."""
    exchange.ending = ending
    exchange.error = error
    session.note(error)


def _exchange(session: SmtpSession, target: Target, exchange: Exchange) -> None:
    mechanism = exchange.mechanism
    response = _client_response(target, mechanism)
    shown = _shown(mechanism, target)
    if _like_msmtp_without_initial_response(target, mechanism):
        reply = session.command(f"AUTH {mechanism.value}")
    else:
        reply = session.command(
            f"AUTH {mechanism.value} {response}", shown=f"AUTH {mechanism.value} {shown}"
        )
    if _is_line_too_long(reply):
        # RFC 4954 §4: a client may send the response after an empty 334 instead.
        exchange.line_too_long = reply
        reply = session.command(f"AUTH {mechanism.value}")
    if reply.code == 334 and not reply.text:
        # An empty 334 requests the response: after a refused initial response, or from a
        # server that ignores initial responses.
        reply = session.command(response, shown=shown)
        if exchange.line_too_long is not None:
            exchange.two_step_reply = reply
        if reply.code == 334 and not reply.text:
            exchange.repeated_challenge = True
            reply = session.command("*")  # RFC 4954 §4: cancel the exchange
    exchange.replies.append(reply)
    # A 334 in reply to the cancel line is the same loop again, not an error challenge.
    if reply.code == 334 and not exchange.repeated_challenge:
        _answer_challenge(session, target, exchange, reply)


def _like_msmtp_without_initial_response(target: Target, mechanism: Mechanism) -> bool:
    """Tell whether the account's client, msmtp, sends this mechanism's response after a 334.

    msmtp 1.8.23 sends ``AUTH XOAUTH2`` alone and the response after the server's empty 334,
    but OAUTHBEARER with an initial response (both seen with ``msmtp --debug`` against the
    lab). A target read from an msmtprc is checked the way msmtp logs in, so a line length
    limit that msmtp never meets is not reported for it.
    """
    return target.msmtp.config_file is not None and mechanism is Mechanism.XOAUTH2


def _is_line_too_long(reply: Reply) -> bool:
    return reply.code in {500, 555} and "long" in reply.text.lower()


def _answer_challenge(
    session: SmtpSession, target: Target, exchange: Exchange, reply: Reply
) -> None:
    """Send the dummy response an error challenge requires, then read the final reply."""
    exchange.challenge = parse_challenge(reply.text)
    answer = _dummy_answer(target, exchange.mechanism)
    exchange.replies.append(session.command(answer, shown=answer or "(empty line)"))


def _dummy_answer(target: Target, mechanism: Mechanism) -> str:
    if target.challenge_answer == "empty":
        return ""
    if target.challenge_answer == "kvsep":
        return "AQ=="
    return dummy_response(mechanism)


def _send_test_message(session: SmtpSession, target: Target) -> Reply:
    """Send one small message and return the first refusal, or the reply to its end."""
    steps = (
        (f"MAIL FROM:<{target.mail_from}>", 250),
        (f"RCPT TO:<{target.rcpt_to}>", 250),
        ("DATA", 354),
    )
    for command, expected in steps:
        reply = session.command(command)
        if reply.code != expected:
            return reply
    message = (
        f"From: <{target.mail_from}>\r\nTo: <{target.rcpt_to}>\r\n"
        "Subject: smtpdiag test message\r\n\r\n"
        "Sent by smtpdiag check --send-test to prove that submission works.\r\n."
    )
    return session.command(message, shown="<test message headers and body> .")


def _quit(session: SmtpSession) -> None:
    # The session is over either way; QUIT is a courtesy, so its failure changes nothing.
    with contextlib.suppress(OSError, SmtpDiagError):
        session.command("QUIT")


def _all_text(exchange: Exchange) -> str:
    return " ".join(reply.text for reply in exchange.replies)


def evaluate(
    exchange: Exchange, provider: Provider, target: Target, transcript: list[str]
) -> CheckResult:
    """Turn the AUTH exchange into findings; pure apart from its inputs."""
    facts = _facts(exchange, provider, target)
    evidence = transcript[-20:]
    findings: list[Finding] = []
    if exchange.line_too_long is not None:
        findings.append(_line_too_long_finding(exchange, facts, evidence))
    final = exchange.final
    challenge_findings = (
        _challenge_findings(exchange.challenge, facts, evidence) if exchange.challenge else []
    )
    findings += challenge_findings
    details = {"mechanism": exchange.mechanism.value, "reply": exchange.error or ""}
    if exchange.repeated_challenge:
        repeated = KINDS["auth.repeated_challenge"]
        findings.append(repeated.make(facts=facts, evidence=evidence, details=details))
    elif exchange.error is not None:
        silent = KINDS["auth.no_final_reply"]
        explained = no_final_reply_details(
            exchange.mechanism.value,
            after_challenge=exchange.challenge is not None,
            connection_lost=exchange.connection_lost,
        )
        findings.append(
            silent.make(facts=facts, evidence=evidence, details={**details, **explained})
        )
    elif final is not None and final.code != 235 and not _names_cause(challenge_findings):
        # Without a JSON error challenge the final reply is the only statement of the cause.
        kind = classify_reply(final.code, final.enhanced_code, final.text, provider)
        findings.append(_reply_finding(kind or KINDS["auth.unclassified"], final, facts, evidence))
    message = exchange.message_reply
    if message is not None and message.code >= 400:
        kind = classify_reply(message.code, message.enhanced_code, message.text, provider)
        findings.append(
            _reply_finding(kind or KINDS["auth.unclassified"], message, facts, evidence)
        )
    return CheckResult.from_findings(
        CHECK_ID, _summary(exchange, target, findings), findings, facts
    )


def _names_cause(findings: list[Finding]) -> bool:
    """Return whether the challenge findings name the cause (more than damage notes)."""
    return any(finding.code != "auth.challenge_damaged" for finding in findings)


def _line_too_long_finding(
    exchange: Exchange, facts: Mapping[str, Any], evidence: list[str]
) -> Finding:
    """Build the line length finding, a warning when the two-step form passed the limit.

    The two-step form passed the limit when the server's reply to the response on its own
    line is anything but another line length error, whether it accepted the token or not.
    The check's other findings then name the outcome of the token itself.
    """
    assert exchange.line_too_long is not None
    finding = _reply_finding(KINDS["auth.line_too_long"], exchange.line_too_long, facts, evidence)
    two_step = exchange.two_step_reply
    if two_step is None:
        return finding
    finding_facts = {**finding.facts, "two_step_reply_code": two_step.code}
    if _is_line_too_long(two_step):
        return replace(finding, facts=finding_facts)
    return replace(finding, severity=Severity.WARNING, facts=finding_facts)


def _facts(exchange: Exchange, provider: Provider, target: Target) -> dict[str, Any]:
    assert target.access_token is not None
    token = describe_token(target.access_token.reveal())
    facts: dict[str, Any] = {
        "mechanism": exchange.mechanism.value,
        "provider": provider.value,
        "token_kind": token.kind,
        "token_length": token.length,
    }
    final = exchange.final
    if final is not None:
        facts.update(final.facts())
        timestamp = server_timestamp(final.text)
        if timestamp:
            facts["server_timestamp"] = timestamp
            if exchange.final_received_at is not None:
                facts["server_timestamp_received_at"] = exchange.final_received_at.isoformat()
    if exchange.challenge is not None and exchange.challenge.payload is not None:
        facts["challenge"] = dict(exchange.challenge.payload)
    if exchange.message_reply is not None:
        facts["test_message"] = "accepted" if exchange.message_reply.code < 400 else "refused"
    return facts


def _reply_finding(
    kind: FindingKind, reply: Reply, facts: Mapping[str, Any], evidence: list[str]
) -> Finding:
    details = {
        "reply": " ".join(reply.transcript(prefix="")),
        "reply_code": reply.code,
        "mechanism": facts.get("mechanism", ""),
    }
    return kind.make(facts={**facts, **reply.facts()}, evidence=evidence, details=details)


def _challenge_findings(
    challenge: Challenge, facts: Mapping[str, Any], evidence: list[str]
) -> list[Finding]:
    findings: list[Finding] = []
    kind = classify_challenge(challenge.payload, empty=challenge.empty)
    details = {"mechanism": facts.get("mechanism", ""), **details_for_challenge(challenge.payload)}
    if kind is not None:
        findings.append(kind.make(facts=dict(facts), evidence=evidence, details=details))
    damage_found = reportable_damage(challenge)
    if damage_found:
        damage = {**details, "damage": ", ".join(damage_found)}
        findings.append(
            KINDS["auth.challenge_damaged"].make(
                facts=dict(facts), evidence=evidence, details=damage
            )
        )
    return findings


def _summary(exchange: Exchange, target: Target, findings: list[Finding]) -> str:
    """Lead with the most important finding: the most severe, the first one among equals."""
    final = exchange.final
    serious = [finding for finding in findings if finding.severity is not Severity.INFO]
    if serious:
        return max(serious, key=_importance).title
    if final is not None and final.code == 235:
        return f"AUTH {exchange.mechanism.value} accepted for {target.user}"
    return "AUTH ended without a final reply"


def _importance(finding: Finding) -> tuple[int, bool]:
    """Rank a finding by severity, with the line length warning below others of its severity.

    A line length warning means the two-step form passed the limit, so the reply to the token
    itself, such as a rejection or a temporary failure, is what needs attention.
    """
    passed_limit = finding.code == "auth.line_too_long" and finding.severity is Severity.WARNING
    return finding.severity.status.rank, not passed_limit


SPEC = CheckSpec(
    id=CHECK_ID,
    title="AUTH with the OAuth2 access token",
    run=run,
    findings=AUTH_FINDINGS,
    requires=("dns", "connect", "token"),
)
