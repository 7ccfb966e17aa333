"""Closed label sets of the log counters: failure reasons and providers.

Every label value that the log counters export comes from a fixed set, so that no log line can
add a series: a reason outside ``LOG_REASONS`` counts as ``other``, a host of no known provider
as ``generic``.
"""

from __future__ import annotations

from smtpdiag.clock.kinds import CLOCK_FINDINGS
from smtpdiag.clock.symptom_kinds import (
    ASSERTION_TIME_INVALID,
    ASSERTION_TIME_RANGE,
    SYMPTOM_FINDINGS,
)
from smtpdiag.decode.tls_messages import RULES as TLS_MESSAGE_RULES
from smtpdiag.knowledge.kinds import AUTH_FINDINGS
from smtpdiag.knowledge.providers import Provider, provider_from_host
from smtpdiag.logs.kinds import (
    AUTH_FAILURE_RATE_FINDINGS,
    LOG_UNREADABLE,
    RATE_CODES,
)
from smtpdiag.logs.model import LogEvent, Side
from smtpdiag.oauth.scope_kinds import USER_MISMATCH
from smtpdiag.oauth.token_kinds import TOKEN_FINDINGS
from smtpdiag.spec import FindingKind
from smtpdiag.tls.kinds import TLS_FINDINGS

OTHER_REASON = "other"
"""Reason label of a failure whose finding code is not in the closed set."""

UNKNOWN_REASON = "unknown"
"""Reason label of a failure that the parser gave no finding code."""

PROVIDERS: tuple[str, ...] = tuple(provider.value for provider in Provider)
"""Every value of the ``provider`` label, ``generic`` last."""

GENERIC_PROVIDER = Provider.GENERIC.value

FAILURE_KINDS: tuple[FindingKind, ...] = (
    *AUTH_FINDINGS,
    *TLS_FINDINGS,
    *TOKEN_FINDINGS,
    *CLOCK_FINDINGS,
    *SYMPTOM_FINDINGS,
    *AUTH_FAILURE_RATE_FINDINGS,
    USER_MISMATCH,
)
"""Finding kinds of every area whose codes a log parser can give a failure: SMTP replies
(``auth``), TLS errors (``tls``), identity provider error bodies (``token`` and ``clock``),
what only logs show (``auth_failure_rate``), and a server's own token check that names a
token of another user (Dovecot's ``Username 'A' did not match 'B'``, ``scope.user_mismatch``)."""

ASSERTION_CODES = frozenset({ASSERTION_TIME_RANGE.code, ASSERTION_TIME_INVALID.code})
"""clock codes that an identity provider's error body can give (AADSTS700024, AADSTS50012)."""

NOT_FAILURE_CODES = frozenset({*RATE_CODES, LOG_UNREADABLE.code, "auth.accepted"})
"""Codes of those areas that never name a failed attempt: the findings that judge the failure
rate, an unreadable log file, and the reply to a successful AUTH."""


def reason_name(code: str) -> str:
    """Return the name part of a finding code, ``credentials_rejected`` of
    ``auth.credentials_rejected``. A code without an area is returned whole."""
    return code.partition(".")[2] or code


# NOTE: ``invalid_request`` is the name part of both ``auth.invalid_request`` (a malformed AUTH
# command) and ``token.invalid_request`` (a malformed token request), so one label value
# counts both. The label carries the name part only, as the metric contract fixes it, and the
# failure's source and the check results tell the two apart.
LOG_REASONS: frozenset[str] = frozenset(
    {
        *(reason_name(kind.code) for kind in FAILURE_KINDS if kind.code not in NOT_FAILURE_CODES),
        OTHER_REASON,
        UNKNOWN_REASON,
    }
)
"""Every value of the ``reason`` label of ``smtpdiag_auth_failures_total``."""


_CHECK_ONLY_AUTH_CODES = frozenset(
    {
        "auth.token_missing",
        "auth.challenge_unanswered",
        "auth.challenge_damaged",
        "auth.no_final_reply",
        "auth.repeated_challenge",
        "auth.token_expires_soon",
    }
)
"""auth codes that only the auth check gives, from its own session or token: a log line shows
no 334 challenge, no client response and no token."""

_TOKEN_BODY_CODES = frozenset(
    kind.code
    for kind in TOKEN_FINDINGS
    if kind.code
    not in {
        "token.malformed_response",
        "token.endpoint_http_error",
        "token.endpoint_unreachable",
        "token.endpoint_tls",
        "token.command_failed",
        "token.command_output_invalid",
        "token.refresh_token_rotated",
        "token.cache_file_unsafe",
        "token.expires_soon",
    }
)
"""token codes of an identity provider's error body, which sasl-xoauth2 writes to the log."""

_TLS_MESSAGE_CODES = frozenset(rule.problem.value for rule in TLS_MESSAGE_RULES)
"""tls codes of the TLS error messages that ``smtpdiag logs`` recognises in a log line."""

PRESET_REASONS: frozenset[str] = frozenset(
    {
        *(
            reason_name(kind.code)
            for kind in AUTH_FINDINGS
            if kind.code not in NOT_FAILURE_CODES
            and kind.code not in _CHECK_ONLY_AUTH_CODES
            and not kind.code.startswith("auth.response_")
        ),
        *(reason_name(code) for code in _TOKEN_BODY_CODES | _TLS_MESSAGE_CODES),
        *(reason_name(code) for code in ASSERTION_CODES),
        *(
            reason_name(kind.code)
            for kind in AUTH_FAILURE_RATE_FINDINGS
            if kind.code not in NOT_FAILURE_CODES
        ),
        OTHER_REASON,
        UNKNOWN_REASON,
    }
)
"""Reasons whose failure counters start at 0: those the log parsers can give, from SMTP
replies, TLS error messages, identity provider error bodies and what only logs show. A failure
with another reason of ``LOG_REASONS`` (such as a clock symptom) creates its series at 1."""


def reason_label(code: str | None) -> str:
    """Return the ``reason`` label of a failure's finding code: its name part when that is in
    ``LOG_REASONS``, ``unknown`` for None, else ``other``."""
    if code is None:
        return UNKNOWN_REASON
    name = reason_name(code)
    return name if name in LOG_REASONS else OTHER_REASON


def provider_for_host(host: str | None) -> str:
    """Return the ``provider`` label of a submission server's host name.

    A host maps by its domain, as the knowledge base recognises providers. That covers the
    provider profiles' SMTP hosts (``smtp.gmail.com``, ``smtp.office365.com``,
    ``smtp.yandex.ru``, ``smtp.mail.ru``, ``smtp.mail.yahoo.com``) and the other documented
    submission hosts (``outlook.office365.com``, ``smtp-mail.outlook.com``,
    ``smtp.yandex.com``). A host outside those domains, an IP address and None give
    ``generic``.
    """
    if not host:
        return GENERIC_PROVIDER
    return provider_from_host(host).value


def provider_for_event(event: LogEvent) -> str:
    """Return the ``provider`` label of one log event.

    On the server side the host is the address of the client that logged in, which names no
    provider, so such events count under ``generic``.
    """
    if event.side is Side.SERVER:
        return GENERIC_PROVIDER
    return provider_for_host(event.host)
