"""Reasons for failures read from logs, taken from the knowledge base.

Every parser names a failure by a finding code, so that the logs, the checks and the
``reason`` metric label share one vocabulary. An SMTP reply is classified by its codes, so a
translated text classifies too. A TLS error text is matched against the messages that
``decode`` recognises, and an identity provider's error body goes through the token check's
rules.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from smtpdiag.knowledge import classify_reply, detect_provider
from smtpdiag.spec import FindingKind

_REPLY = re.compile(r"^\s*(?P<code>[2-5]\d\d)(?:[ -](?P<enhanced>[245]\.\d{1,3}\.\d{1,3}))?")
_BODY = re.compile(r"\{.*\}", re.DOTALL)


def reply_reason(
    code: int, enhanced_code: str | None, text: str, host: str | None = None
) -> str | None:
    """Return the finding code for a server's reply during or after AUTH.

    None for positive replies other than 235 (which is ``auth.accepted``). The provider comes
    from ``host`` and marks in ``text``, because Microsoft reuses 5.7.3 for a failed AUTH.
    """
    return _reply_reason(code, enhanced_code or "", " ".join(text.split()), host or "")


@lru_cache(maxsize=4096)
def _reply_reason(code: int, enhanced_code: str, text: str, host: str) -> str | None:
    provider = detect_provider(host or None, text)
    kind = classify_reply(code, enhanced_code or None, text, provider)
    return kind.code if kind is not None else None


def split_reply(text: str) -> tuple[int, str | None, str] | None:
    """Split ``535 5.7.8 text`` into its basic code, enhanced code and text; None if no code."""
    found = _REPLY.match(text)
    if found is None:
        return None
    return int(found["code"]), found["enhanced"], text[found.end() :].strip()


def tls_reason(text: str) -> str | None:
    """Return the ``tls.*`` finding code of a TLS error message in ``text``, or None."""
    from smtpdiag.decode.tls_messages import find_message

    found = find_message(text)
    return found.rule.problem.value if found is not None else None


def token_body_reason(text: str) -> str | None:
    """Return the ``token.*`` (or ``clock.*``) finding code of an identity provider's JSON
    error body found in ``text``, or None when the text contains no readable error body."""
    from smtpdiag.oauth.token_errors import (
        finding_for_error_body,
        parse_error_body,
        provider_of_error_body,
    )

    found = _BODY.search(text)
    if found is None:
        return None
    try:
        data = json.loads(found[0])
    except ValueError:
        return None
    body = parse_error_body(data) if isinstance(data, dict) else None
    if body is None:
        return None
    return finding_for_error_body(body, provider_of_error_body(body)).code


def kind_for_reason(code: str) -> FindingKind | None:
    """Return the finding kind behind a reason code, from every area logs can report."""
    return _all_kinds().get(code)


@lru_cache(maxsize=1)
def _all_kinds() -> dict[str, FindingKind]:
    from smtpdiag.clock.kinds import CLOCK_FINDINGS
    from smtpdiag.clock.symptom_kinds import SYMPTOM_FINDINGS
    from smtpdiag.knowledge.kinds import AUTH_FINDINGS
    from smtpdiag.logs.kinds import AUTH_FAILURE_RATE_FINDINGS, SECRETS_FINDINGS
    from smtpdiag.oauth.scope_kinds import USER_MISMATCH
    from smtpdiag.oauth.token_kinds import TOKEN_FINDINGS
    from smtpdiag.tls.kinds import TLS_FINDINGS

    every = (
        *AUTH_FINDINGS,
        *TLS_FINDINGS,
        *TOKEN_FINDINGS,
        *CLOCK_FINDINGS,
        *SYMPTOM_FINDINGS,
        *AUTH_FAILURE_RATE_FINDINGS,
        *SECRETS_FINDINGS,
        USER_MISMATCH,
    )
    return {kind.code: kind for kind in every}
