"""Explain an SMTP transcript or a single reply: AUTH responses, challenges and final replies.

The analysis follows the AUTH exchange from the server's side. After ``AUTH MECH`` without
an initial response, an empty ``334`` asks for the token. After a ``334`` with a base64 JSON
error, the client owes one dummy response (an empty line for XOAUTH2, ``AQ==`` for
OAUTHBEARER) before the server sends its final reply. When the client broke that protocol,
the broken step is the root cause, and the final reply stays in the facts only.

A JWT inside a client response is judged by its claims (signature not verified). Its findings
go before the server's reply, because a wrong audience or a missing scope explains a bare 535;
the reply's finding stays. Expiry is judged at the server time in the transcript, if any.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from smtpdiag.decode.lines import Direction, Line
from smtpdiag.errors import SmtpDiagError
from smtpdiag.knowledge import (
    AUTH_FINDINGS,
    Provider,
    classify_challenge,
    classify_reply,
    details_for_challenge,
    detect_provider,
    server_timestamp,
)
from smtpdiag.knowledge.kinds_microsoft import MICROSOFT_FINDINGS
from smtpdiag.models import Finding, Severity
from smtpdiag.oauth.claims import Expectations, evaluate_claims, infer_profile
from smtpdiag.oauth.profiles import get_profile
from smtpdiag.sasl import (
    Challenge,
    Mechanism,
    TokenKind,
    jwt_claims,
    parse_challenge,
    parse_client_response,
    reportable_damage,
)
from smtpdiag.sasl.lenient_base64 import decode_lenient
from smtpdiag.sasl.payloads import parse_payload
from smtpdiag.smtp.reply import Reply, parse_reply_line
from smtpdiag.spec import FindingKind

KINDS = {kind.code: kind for kind in AUTH_FINDINGS}

_DUMMY_ANSWERS = {"", "AQ==", "*"}

# smtpdiag's own transcripts show the response and an empty line this way; a pasted
# smtpdiag transcript must not read as a client mistake.
_SHOWN_EMPTY = "(empty line)"
_SHOWN_RESPONSE = re.compile(r"^<\w+ response for .*>$")


@dataclass(frozen=True)
class Step:
    """One client command or one complete server reply."""

    direction: Direction
    text: str
    reply: Reply | None = None


def group_steps(lines: Sequence[Line]) -> list[Step]:
    """Join multi-line replies (``250-`` continuations) into one step each."""
    steps: list[Step] = []
    pending: list[str] = []
    for line in lines:
        if line.direction is Direction.CLIENT:
            steps += _flush(pending)
            steps.append(Step(Direction.CLIENT, line.text))
            continue
        pending.append(line.text)
        if len(line.text) < 4 or line.text[3] != "-":
            steps += _flush(pending)
    steps += _flush(pending)
    return steps


def _flush(pending: list[str]) -> Iterator[Step]:
    if not pending:
        return
    texts = list(pending)
    pending.clear()
    try:
        parsed = [parse_reply_line(text.encode("utf-8", "backslashreplace")) for text in texts]
    except SmtpDiagError:
        parsed = []  # not a reply after all, such as a banner or a client's own log text
    if parsed and len(parsed) == len(texts):
        reply = Reply(parsed[0][0], tuple(item[2] for item in parsed), "\r\n".join(texts).encode())
        yield Step(Direction.SERVER, "\n".join(texts), reply)
    else:
        yield from (Step(Direction.SERVER, text) for text in texts)


@dataclass
class Analysis:
    """State and results while walking through the steps."""

    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    mechanism: Mechanism | None = None
    awaiting: str | None = None
    """Next line the client owes: ``token`` after an empty 334, ``dummy`` after an error."""
    protocol_broken: bool = False
    """The client broke the AUTH exchange, so later failure replies are consequences."""
    error_challenge: bool = False
    """The server sent an error challenge, which names the cause better than the final 535."""
    provider: Provider = Provider.GENERIC
    token_claims: list[TokenClaims] = field(default_factory=list)
    """JWTs sent by the client, judged once the whole transcript is read."""


@dataclass(frozen=True)
class TokenClaims:
    """Claims of a JWT in a client response and where its findings belong."""

    index: int
    """Position in ``Analysis.findings`` at which the claim findings are inserted."""
    claims: Mapping[str, Any]
    user: str | None
    """XOAUTH2 ``user=`` or OAUTHBEARER authzid of the response, or None."""


def analyse(steps: Sequence[Step], host: str | None = None) -> tuple[dict[str, Any], list[Finding]]:
    """Return the facts and findings of a transcript's steps."""
    server_text = " ".join(step.text for step in steps if step.direction is Direction.SERVER)
    state = Analysis(provider=detect_provider(host, server_text))
    state.facts["provider"] = state.provider.value
    for step in steps:
        if step.direction is Direction.CLIENT:
            _client_step(state, step.text)
        elif step.reply is not None:
            _server_step(state, step.reply)
    if state.mechanism is not None:
        state.facts["mechanism"] = state.mechanism.value
    _judge_claims(state)
    return state.facts, state.findings


def _client_step(state: Analysis, text: str) -> None:
    words = text.split(maxsplit=2)
    if state.awaiting == "dummy":
        state.awaiting = None
        if text.strip() not in _DUMMY_ANSWERS and text.strip() != _SHOWN_EMPTY:
            state.protocol_broken = True
            state.findings.append(_make("auth.challenge_unanswered", state, answer=text.strip()))
        return
    if state.awaiting == "token":
        state.awaiting = None
        if not text.strip() or words[0].upper() in {"QUIT", "RSET", "*", "NOOP"}:
            state.protocol_broken = True
            state.findings.append(_make("auth.token_missing", state, answer=text.strip()))
        else:
            _check_response(state, text.strip())
        return
    if words and words[0].upper() == "AUTH" and len(words) >= 2:
        state.mechanism = _mechanism(words[1])
        if len(words) == 3 and words[2].strip() != "=":
            _check_response(state, words[2].strip())


def _mechanism(name: str) -> Mechanism | None:
    try:
        return Mechanism(name.upper())
    except ValueError:
        return None


def _check_response(state: Analysis, text: str) -> None:
    if state.mechanism not in {Mechanism.XOAUTH2, Mechanism.OAUTHBEARER}:
        return
    if _SHOWN_RESPONSE.match(text):
        return
    response = parse_client_response(text, state.mechanism)
    if response.token_kind:
        state.facts["token_kind"] = response.token_kind
        state.facts["token_length"] = response.token_length
    for problem in response.problems:
        kind = KINDS.get(f"auth.response_{problem.code.value}")
        if kind is not None:
            state.findings.append(_make(kind, state, detail=problem.detail))
            if kind.severity is Severity.CRITICAL:
                # The server's reaction to a malformed response only restates it.
                state.protocol_broken = True
    if response.token_kind is TokenKind.JWT:
        claims = _response_claims(text, state.mechanism)
        if claims is not None:
            state.token_claims.append(TokenClaims(len(state.findings), claims, response.user))


def _response_claims(text: str, mechanism: Mechanism | None) -> Mapping[str, Any] | None:
    """Return the claims of the JWT in a client response: base64, decoded or a bare token."""
    decoding = decode_lenient(text)
    candidates = [text]
    if decoding.data is not None:
        candidates.insert(0, decoding.data.decode("utf-8", errors="replace"))
    for candidate in candidates:
        fields = parse_payload(candidate, mechanism)
        token = fields.token if fields is not None else candidate.strip()
        claims = jwt_claims(token) if token else None
        if claims is not None:
            return claims
    return None


def _judge_claims(state: Analysis) -> None:
    """Insert the claim findings of each JWT before the replies that followed it."""
    if not state.token_claims:
        return
    state.facts["signature_verified"] = False
    server_time = _server_time(state.facts.get("server_timestamp"))
    accepted = any(finding.code == "auth.accepted" for finding in state.findings)
    # From the last to the first, so that earlier insertion points stay valid.
    for sent in reversed(state.token_claims):
        findings = _claim_findings(state, sent, server_time)
        if accepted:
            # The server took the token, so the claims did not stop it.
            findings = [replace(finding, severity=Severity.INFO) for finding in findings]
        state.findings[sent.index : sent.index] = findings


def _claim_findings(state: Analysis, sent: TokenClaims, now: datetime | None) -> list[Finding]:
    profile = infer_profile(sent.claims)
    if profile.provider is Provider.GENERIC:
        profile = get_profile(state.provider.value)
    expectations = Expectations(profile=profile, grant=None, user=sent.user, tenant=None)
    clock = "the server's time in the transcript"
    return evaluate_claims(sent.claims, expectations, now, clock=clock)


def _server_time(timestamp: Any) -> datetime | None:
    """Parse the server's reply time; a pasted transcript is judged at it, not at the present."""
    if not isinstance(timestamp, str):
        return None
    try:
        parsed = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _server_step(state: Analysis, reply: Reply) -> None:
    if reply.code == 334:
        _challenge_step(state, parse_challenge(reply.text))
        return
    if state.mechanism is None and reply.code < 400:
        return  # greeting, EHLO and other replies before AUTH explain nothing here
    state.facts.update(reply.facts())
    timestamp = server_timestamp(reply.text)
    if timestamp:
        state.facts["server_timestamp"] = timestamp
    kind = classify_reply(reply.code, reply.enhanced_code, reply.text, state.provider)
    if kind is None:
        return
    if kind in MICROSOFT_FINDINGS and state.provider is Provider.GENERIC:
        state.provider = Provider.MICROSOFT
        state.facts["provider"] = state.provider.value
    if (state.protocol_broken or state.error_challenge) and kind.code != "auth.accepted":
        return  # a consequence of an earlier step, which is already the finding
    reply_text = " ".join(reply.transcript(prefix=""))
    state.findings.append(_make(kind, state, reply=reply_text, reply_code=reply.code))


def _challenge_step(state: Analysis, challenge: Challenge) -> None:
    if challenge.empty:
        state.awaiting = "token"
        return
    if challenge.payload is None:
        state.awaiting = "token"  # a LOGIN prompt or other text challenge
        return
    state.awaiting = "dummy"
    if state.protocol_broken:
        state.facts["challenge"] = dict(challenge.payload)
        return
    state.error_challenge = True
    state.facts["challenge"] = dict(challenge.payload)
    if state.provider is Provider.GENERIC and challenge.scope:
        state.provider = detect_provider(None, challenge.scope)
        state.facts["provider"] = state.provider.value
    kind = classify_challenge(challenge.payload, empty=False)
    if kind is not None:
        state.findings.append(_make(kind, state, **details_for_challenge(challenge.payload)))
    damage = reportable_damage(challenge)
    if damage:
        state.findings.append(
            _make(KINDS["auth.challenge_damaged"], state, damage=", ".join(damage))
        )


def _make(kind: FindingKind | str, state: Analysis, **details: Any) -> Finding:
    if isinstance(kind, str):
        kind = KINDS[kind]
    # Placeholders without a value render as empty text (FindingKind.make).
    mechanism = state.mechanism.value if state.mechanism else ""
    return kind.make(facts=dict(state.facts), details={"mechanism": mechanism, **details})
