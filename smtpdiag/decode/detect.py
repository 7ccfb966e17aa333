"""Recognise what a pasted input is and route it to the matching decoder.

Order matters: mail log lines come first, but only those with an unmistakable shape (a
syslog header, an msmtp record, a journald JSON object) that the log parsers understand.
JSON bodies and JWTs also have unmistakable shapes and are tried next, then
anything that contains an SMTP reply line or a direction marker is a transcript, and a lone
base64 word is a SASL challenge or client response. A known TLS or certificate error message
comes last, so a transcript that quotes one stays a transcript.
"""

from __future__ import annotations

import ast
import base64
import json
import math
import re
import warnings
from collections.abc import Mapping
from typing import Any

from smtpdiag.clock.symptoms import decode_clock_symptom
from smtpdiag.context import utc_now
from smtpdiag.decode.lines import Direction, is_reply_line, split_lines
from smtpdiag.decode.log_line import decode_log_lines, looks_like_log
from smtpdiag.decode.result import DecodeResult, InputKind
from smtpdiag.decode.tls_error import decode_tls_error
from smtpdiag.decode.transcript import analyse, group_steps
from smtpdiag.knowledge.providers import Provider
from smtpdiag.models import Finding
from smtpdiag.oauth.claims import decode_findings
from smtpdiag.oauth.model import register_secret_fields
from smtpdiag.oauth.token_errors import (
    finding_for_error_body,
    parse_error_body,
    provider_of_error_body,
)
from smtpdiag.oauth.token_kinds import REFRESH_TOKEN_ROTATED
from smtpdiag.redact import REDACTOR
from smtpdiag.sasl import jwt_claims, parse_challenge, parse_client_response

MAX_INPUT_CHARACTERS = 1_000_000
"""Maximum input length decoded; a pasted transcript is far shorter, so more is not a paste."""

_JWT = re.compile(r"^[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*$")
_BEARER = re.compile(r"^(?:authorization:\s*)?bearer\s+(\S+)$", re.IGNORECASE)
_STATUS_LINE = re.compile(r"^HTTP/\d(?:\.\d)? (\d{3})\b")
_HTML = re.compile(r"^(?:<!doctype html|<html)", re.IGNORECASE)
_BASE64_WORD = re.compile(r"^[A-Za-z0-9+/=_-]+$")


def decode_text(text: str, host: str | None = None) -> DecodeResult:
    """Decode one pasted input; never raises for any text."""
    try:
        return _decode(text, host)
    except RecursionError:
        return DecodeResult(InputKind.UNKNOWN, {"reason": "input nested too deeply to read"})


def _decode(text: str, host: str | None) -> DecodeResult:
    if len(text) > MAX_INPUT_CHARACTERS:
        return DecodeResult(
            InputKind.UNKNOWN, {"reason": f"input over {MAX_INPUT_CHARACTERS} characters"}
        )
    stripped = text.strip()
    if not stripped:
        return DecodeResult(InputKind.UNKNOWN, {"reason": "empty input"})
    # Before JSON (a journalctl -o json object) and transcripts (a reply quoted in a log).
    log = decode_log_lines(stripped) if looks_like_log(stripped) else None
    if log is not None:
        return log
    body = _json_body(stripped)
    if body is not None:
        return _token_response(body)
    http = _http_response(stripped)
    if http is not None:
        return http
    bearer = _BEARER.match(stripped)
    if bearer is not None:
        return _bearer(bearer.group(1))
    if _JWT.match(stripped):
        return _jwt(stripped)
    if _HTML.match(stripped):
        return DecodeResult(
            InputKind.UNKNOWN,
            {
                "reason": "an HTML page, such as a proxy's error or sign-in page, in place of "
                "the JSON a token endpoint sends"
            },
        )
    lines = split_lines(stripped)
    if any(is_reply_line(line.text) for line in lines if line.direction is Direction.SERVER):
        return _transcript(lines, host)
    if len(stripped.split()) == 1 and _BASE64_WORD.match(stripped):
        return _base64_word(stripped)
    tls_error = decode_tls_error(stripped)
    if tls_error is not None:
        return tls_error
    clock_symptom = decode_clock_symptom(stripped)
    if clock_symptom is not None:
        return clock_symptom
    return DecodeResult(
        InputKind.UNKNOWN,
        {"reason": "not a reply, transcript, SASL blob, JWT, token response or TLS error"},
    )


def _json_body(text: str) -> Mapping[str, Any] | None:
    """Parse a JSON object, or a Python dict dump as logged by some OAuth proxies."""
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        try:
            # The compiler prints a SyntaxWarning for odd literals such as "1and". Such text
            # is no literal at all, so it is not a body, and stderr stays clean.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)
                value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


def _http_response(text: str) -> DecodeResult | None:
    """Decode ``curl -i`` output: a status line, headers, and a JSON body after a blank line."""
    status = _STATUS_LINE.match(text)
    if status is None:
        return None
    _head, _, body_text = text.replace("\r\n", "\n").partition("\n\n")
    body = _json_body(body_text.strip())
    if body is None:
        return None
    result = _token_response(body)
    facts = {"http_status": int(status.group(1)), **result.facts}
    return DecodeResult(result.input_kind, facts, result.findings)


def _bearer(token: str) -> DecodeResult:
    """Decode the token of an ``Authorization: Bearer`` header; only a JWT can be read."""
    REDACTOR.register(token)
    if _JWT.match(token):
        return _jwt(token)
    return DecodeResult(
        InputKind.UNKNOWN,
        {"reason": "an opaque bearer token: only its issuer can tell what it grants"},
    )


def _token_response(body: Mapping[str, Any]) -> DecodeResult:
    """Decode a token endpoint body: an OAuth error body or a successful token response."""
    # Secrets first, so that no fact or finding built below can show them.
    register_secret_fields(body)

    facts: dict[str, Any] = {}
    findings: list[Finding] = []
    error_body = parse_error_body(body)
    if error_body is not None:
        provider = provider_of_error_body(error_body)
        facts.update(error_body.facts())
        if provider is not Provider.GENERIC:
            facts["provider"] = provider.value
        findings.append(finding_for_error_body(error_body, provider))

    for name in ("scope", "expires_in", "token_type"):
        value = body.get(name)
        if isinstance(value, str | int) or (isinstance(value, float) and math.isfinite(value)):
            facts[name] = value
    if isinstance(body.get("access_token"), str):
        facts["jwt"] = jwt_claims(body["access_token"])
    if error_body is None:
        findings.extend(_token_success_findings(body, facts.get("jwt")))

    if not facts and not findings:
        return DecodeResult(InputKind.UNKNOWN, {"reason": "a JSON object without OAuth fields"})
    return DecodeResult(InputKind.TOKEN_RESPONSE, facts, tuple(findings))


def _token_success_findings(
    body: Mapping[str, Any], claims: Mapping[str, Any] | None
) -> list[Finding]:
    """Return the findings of a token response without an error: a rotated refresh token, and
    what the claims of a JWT access token show."""
    findings: list[Finding] = []
    refresh_token = body.get("refresh_token")
    if isinstance(refresh_token, str) and refresh_token.strip():
        findings.append(REFRESH_TOKEN_ROTATED.make())
    if claims is not None:
        findings.extend(decode_findings(claims, utc_now()))
    return findings


def _jwt(token: str) -> DecodeResult:
    REDACTOR.register(token)
    claims = jwt_claims(token)
    if claims is None:
        return DecodeResult(
            InputKind.UNKNOWN, {"reason": "three dot-separated parts, but not a JWT"}
        )
    # A pasted token is judged now, by the local clock, against the provider it names.
    findings = decode_findings(claims, utc_now())
    facts = {"jwt": dict(claims), "signature_verified": False}
    return DecodeResult(InputKind.JWT, facts, tuple(findings))


def _transcript(lines: list[Any], host: str | None) -> DecodeResult:
    steps = group_steps(lines)
    facts, findings = analyse(steps, host)
    if not findings:
        # A client's TLS error quoted inside a transcript is the finding when AUTH gave none.
        for line in lines:
            tls_error = decode_tls_error(line.text)
            if tls_error is not None:
                facts = {**facts, **tls_error.facts}
                findings = list(tls_error.findings)
                break
    replies = [step for step in steps if step.reply is not None]
    clients = [step for step in steps if step.direction is Direction.CLIENT]
    kind = InputKind.SMTP_REPLY if len(replies) == 1 and not clients else InputKind.SMTP_TRANSCRIPT
    return DecodeResult(kind, facts, tuple(findings))


def _looks_like_sasl_response(word: str) -> bool:
    """Return whether ``word`` decodes to bytes with the markers of a SASL client response."""
    padded = word + "=" * (-len(word) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError:
        return False
    return b"\x01" in raw or b"\x00" in raw or raw.startswith((b"user=", b"n,", b"y,", b"p="))


def _base64_word(word: str) -> DecodeResult:
    challenge = parse_challenge(word)
    if challenge.payload is not None:
        steps = group_steps(split_lines(f"S: 334 {word}"))
        facts, findings = analyse(steps)
        return DecodeResult(InputKind.SASL_CHALLENGE, facts, tuple(findings))
    if not _looks_like_sasl_response(word):
        # Parsing would register the word as a possible password and mask it from then on.
        return DecodeResult(
            InputKind.UNKNOWN,
            {"reason": "base64 that is neither a SASL challenge nor a client response"},
        )
    response = parse_client_response(word)
    if response.mechanism is not None:
        steps = group_steps(split_lines(f"C: AUTH {response.mechanism.value} {word}"))
        facts, findings = analyse(steps)
        return DecodeResult(InputKind.SASL_CLIENT_RESPONSE, facts, tuple(findings))
    return DecodeResult(
        InputKind.UNKNOWN,
        {"reason": "base64 that is neither a SASL challenge nor a client response"},
    )
