"""Clock symptoms in pasted text and identity provider errors.

Microsoft Entra rejects a client assertion (the signed JWT that replaces a client secret)
outside its validity window with AADSTS700024, and older replies report it with AADSTS50012
inside AADSTS70002. Google rejects a service account's JWT with "Invalid JWT: Token must be a
short-lived token". JWT libraries reject a token whose ``iat`` or ``nbf`` lies ahead of their
own clock with texts such as "Token used before issued" (Go) or "The Token can't be used
before …" (Java).

An AADSTS700024 text gives the server's time and the assertion's window, so the gap can be
computed. A gap the size of a timezone offset means that the assertion was built from local
time taken for UTC, or from UTC taken for local time. Offsets in use are whole multiples of
15 minutes from 1 to 14 hours (UTC+05:30 India, UTC+05:45 Nepal, UTC+14 Line Islands), so such
a multiple, within a minute, counts as a timezone offset. Without the assertion's nbf only whole
hours count. Any other gap is a stale assertion or a clock that is off.

Placeholders of the finding kinds (a placeholder left out renders as empty text):

- ``{error_label}``: the ``error`` code and the AADSTS code, e.g. ``invalid_client,
  AADSTS700024``, or only the code in pasted text.
- ``{provider_message}``: one sentence quoting the provider's description, starting with a
  space.
- ``{window}``: the server's time and the assertion's validity window, as a sentence that
  starts with a space.
- ``{diagnosis}``, ``{fix_hint}``: what the gap means and what to check first, starting with a
  space.
- ``{gap}``: sentences on the gap between the token's time and the validating machine's time,
  or on why it is unknown, starting with a space.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smtpdiag.clock.time_text import (
    ParsedTime,
    format_duration,
    offset_text,
    parse_iso,
    parse_time,
    round_gap,
    seconds_between,
    to_utc_text,
    wall_clock_seconds_between,
)
from smtpdiag.decode.result import DecodeResult, InputKind
from smtpdiag.models import Finding
from smtpdiag.oauth.model import TokenErrorBody
from smtpdiag.redact import REDACTOR

ASSERTION_LIFETIME_SECONDS = 600
"""Maximum usual client assertion lifetime: Microsoft recommends 5 to 10 minutes, and MSAL
builds assertions valid for 10 minutes."""

ZONE_OFFSET_TOLERANCE_SECONDS = 60
"""Slack around a timezone offset for network delay and a small clock error."""

ZONE_OFFSET_STEP_MINUTES = 15
"""UTC offsets in use are whole multiples of 15 minutes (UTC+05:45 Nepal, UTC+08:45 Eucla)."""

MIN_ZONE_OFFSET_MINUTES = 60
"""Smallest non-zero UTC offset in use (UTC+1, UTC-1); a smaller gap is no timezone mistake."""

MAX_ZONE_OFFSET_MINUTES = 14 * 60
"""Largest UTC offset in use (UTC+14, Line Islands); a larger gap is no timezone mistake."""

MAX_QUOTED_CHARACTERS = 300
"""Maximum length of a message quoted in a finding's cause."""

from smtpdiag.clock.symptom_kinds import (  # noqa: E402 (after the constants above)
    ASSERTION_TIME_INVALID,
    ASSERTION_TIME_RANGE,
    JWT_TIME_INVALID,
    TOKEN_USED_BEFORE_ISSUED,
)

_AADSTS = re.compile(r"AADSTS(\d{1,10})")
_ASSERTION_CODES = frozenset({50012, 70002})
# AADSTS50012 also reports bad signatures, expired keys or certificates and wrong secrets. Only
# a text about the assertion's validity window (nbf to exp) is a clock symptom. A text that
# names a signature, key, certificate or secret is not one, even when it contains "expired".
_ASSERTION_WINDOW_TEXT = re.compile(
    r"valid time range|not yet valid|\bnbf\b|\bexp\b"
    r"|\b(?:assertion|token)\b[^.]{0,80}?\bexpired\b|\bexpired (?:client )?(?:assertion|token)\b",
    re.IGNORECASE,
)
_CREDENTIAL_TEXT = re.compile(
    r"\b(?:signature|signing|keys?|certificates?|secrets?|thumbprint)\b", re.IGNORECASE
)
_URL = re.compile(r"https?://\S+")
_CURRENT_TIME = re.compile(r"Current time:\s*([^,]+)", re.IGNORECASE)
_VALID_FROM = re.compile(r"valid from\s*([^,]+)", re.IGNORECASE)
_EXPIRY = re.compile(r"expiry time of assertion\s*(\S+?)\.?(?:\s|$|\"|\\)", re.IGNORECASE)
_UNIX_EPOCH_YEAR = 1970
_GOOGLE_INVALID_JWT = re.compile(r"Invalid JWT: Token must be a short-lived token", re.IGNORECASE)
_LOG_TIMESTAMP = re.compile(
    r"^\s*\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\s?(?:Z|[+-]\d{2}:?\d{2})?)"
)


@dataclass(frozen=True)
class _EarlyTokenRule:
    """A JWT library's message for a token whose iat or nbf lies ahead of the validator's clock.

    ``token_time`` and ``now`` name the pattern's groups with the token's time and the
    validator's current time, when the message prints them.
    """

    library: str
    pattern: re.Pattern[str]
    token_time: str | None = None
    now: str | None = None


def _early(
    library: str, pattern: str, token_time: str | None = None, now: str | None = None
) -> _EarlyTokenRule:
    return _EarlyTokenRule(library, re.compile(pattern, re.IGNORECASE), token_time, now)


_EARLY_TOKEN_RULES: tuple[_EarlyTokenRule, ...] = (
    # auth0 java-jwt 3.x prints Date.toString() ("Tue Apr 17 11:32:42 WIB 2018"); 4.x prints
    # an ISO instant.
    _early(
        "java-jwt",
        r"(?m)The Token can(?:\u2019|')t be used before (?P<token>.+?)\.?[ \t]*$",
        "token",
    ),
    # jjwt: "JWT must not be accepted before 2019-08-25T15:33:52Z. Current time:
    # 2019-08-25T15:33:49Z, a difference of 2378 milliseconds."
    _early(
        "jjwt",
        r"JWT must not be accepted before (?P<token>\S+?)\.\s*Current time: (?P<now>\S+?),",
        "token",
        "now",
    ),
    # Google's auth libraries for Python and PHP: "Token used too early, <now> < <iat>".
    _early(
        "google-auth",
        r"Token used too early, (?P<now>\d{9,11}) < (?P<token>\d{9,11})",
        "token",
        "now",
    ),
    # firebase/php-jwt: "Cannot handle token prior to 2015-06-04T06:05:30+0000".
    _early("php-jwt", r"Cannot handle token prior to (?P<token>\S+)", "token"),
    # Go: dgrijalva/jwt-go and golang-jwt/jwt, for iat and for nbf.
    _early("go-jwt", r"\btoken used before issued\b"),
    _early("go-jwt", r"\btoken is not valid yet\b"),
    # PyJWT's ImmatureSignatureError.
    _early("pyjwt", r"The token is not yet valid \((?:iat|nbf)\)"),
)


def finding_for_clock_error(
    body: TokenErrorBody,
    facts: Mapping[str, Any],
    details: Mapping[str, Any],
    evidence: Sequence[str] = (),
) -> Finding | None:
    """Return the clock finding for a token endpoint error body, or None when it is no clock
    symptom.

    ``facts`` and ``details`` are those the token check's finding would have (the body's facts,
    ``error_label``, ``provider_message``); the clock finding keeps them and adds its own.
    """
    description = body.description or ""
    codes = set(body.error_codes) | {int(code) for code in _AADSTS.findall(description)}
    if 700024 in codes:
        return _assertion_time_range(description, facts, details, evidence)
    if codes & _ASSERTION_CODES and _is_assertion_time_text(description):
        return ASSERTION_TIME_INVALID.make(facts=facts, evidence=evidence, details=details)
    if _GOOGLE_INVALID_JWT.search(description):
        return JWT_TIME_INVALID.make(facts=facts, evidence=evidence, details=details)
    return None


def decode_clock_symptom(text: str) -> DecodeResult | None:
    """Recognise a clock symptom in pasted text, such as a log line or an exception message.

    Returns a result of input kind ``log`` with one finding, or None when the text shows none.
    """
    codes = [int(code) for code in _AADSTS.findall(text)]
    if 700024 in codes:
        return _pasted_microsoft(text, "AADSTS700024", _assertion_time_range)
    if _ASSERTION_CODES & set(codes) and _is_assertion_time_text(text):
        code = next(f"AADSTS{code}" for code in codes if code in _ASSERTION_CODES)
        return _pasted_microsoft(text, code, _assertion_time_invalid)

    google = _GOOGLE_INVALID_JWT.search(text)
    if google is not None:
        line = _line_at(text, google.start())
        facts = {"provider": "google", "error_text": REDACTOR.redact(line)}
        details = {"error_label": "Invalid JWT", "provider_message": _quote(line)}
        finding = JWT_TIME_INVALID.make(
            facts=facts, evidence=(facts["error_text"],), details=details
        )
        return DecodeResult(InputKind.LOG, finding.facts, (finding,))

    for rule in _EARLY_TOKEN_RULES:
        found = rule.pattern.search(text)
        if found is not None:
            finding = _token_used_before_issued(text, rule, found)
            return DecodeResult(InputKind.LOG, finding.facts, (finding,))
    return None


# Microsoft client assertions.


def _is_assertion_time_text(text: str) -> bool:
    """Tell whether an AADSTS50012 or AADSTS70002 text is about the assertion's validity window.

    URLs are left out first: Microsoft's texts link pages such as ``…/certificate-credentials``.
    """
    words = _URL.sub(" ", text)
    return bool(_ASSERTION_WINDOW_TEXT.search(words)) and not _CREDENTIAL_TEXT.search(words)


_AssertionBuilder = Callable[[str, Mapping[str, Any], Mapping[str, Any], Sequence[str]], Finding]


def _pasted_microsoft(text: str, code: str, build: _AssertionBuilder) -> DecodeResult:
    line = _line_at(text, text.find(code))
    facts = {
        "provider": "microsoft",
        "provider_error_code": code,
        "error_text": REDACTOR.redact(line[:2000]),
    }
    details = {"error_label": code, "provider_message": _quote(line)}
    evidence = _shorten(facts["error_text"])
    finding: Finding = build(text, facts, details, (evidence,))
    return DecodeResult(InputKind.LOG, finding.facts, (finding,))


def _assertion_time_invalid(
    text: str, facts: Mapping[str, Any], details: Mapping[str, Any], evidence: Sequence[str]
) -> Finding:
    return ASSERTION_TIME_INVALID.make(facts=facts, evidence=evidence, details=details)


_FIX_TIMEZONE = (
    " Check first how the code that builds the assertion reads the time: it must use UTC and "
    "must not convert a UTC time as if it were local (the host's timezone setting shows which "
    "offset)."
)
_STALE = (
    ", so the assertion was built long before it was sent (a cached or reused assertion), or "
    "this host's clock is behind."
)


def _assertion_time_range(
    description: str,
    facts: Mapping[str, Any],
    details: Mapping[str, Any],
    evidence: Sequence[str],
) -> Finding:
    """Build ``clock.assertion_time_range`` with the gap between the server's time and the
    assertion's window, and what the gap's size means."""
    facts = dict(facts)
    details = dict(details)
    server = _time_after(_CURRENT_TIME, description)
    valid_from = _time_after(_VALID_FROM, description)
    expiry = _time_after(_EXPIRY, description)
    if valid_from is not None and valid_from.value.year == _UNIX_EPOCH_YEAR:
        # Microsoft prints the Unix epoch as the start when the assertion has no nbf.
        valid_from = None

    facts["timezone_suspected"] = False
    if server is None or expiry is None:
        details["window"] = (
            " The message does not give the server's time and the assertion's expiry in a "
            "readable form, so the gap is unknown."
        )
        return ASSERTION_TIME_RANGE.make(facts=facts, evidence=evidence, details=details)

    facts["server_time"] = to_utc_text(server) or server.text
    facts["assertion_expiry"] = to_utc_text(expiry) or expiry.text
    if valid_from is not None:
        facts["assertion_valid_from"] = to_utc_text(valid_from) or valid_from.text
    window = (
        f" Server time: {facts['server_time']}; assertion valid until {facts['assertion_expiry']}"
    )
    if valid_from is not None:
        window += f", from {facts['assertion_valid_from']}"
    details["window"] = f"{window}."

    window_length = seconds_between(valid_from, expiry) if valid_from is not None else None
    if window_length is not None and window_length <= 0:
        facts["assertion_window_empty"] = True
        details.update(_empty_window_diagnosis(-window_length, valid_from, expiry))
        return ASSERTION_TIME_RANGE.make(facts=facts, evidence=evidence, details=details)

    measured = _assertion_gap(server, valid_from, expiry)
    if measured is None:
        details["window"] += " The times cannot be compared, so the gap is unknown."
        return ASSERTION_TIME_RANGE.make(facts=facts, evidence=evidence, details=details)
    gap = round_gap(measured[0], server, measured[1])
    facts["gap_seconds"] = gap
    offset_minutes = _assertion_diagnosis(server, valid_from, gap, details)
    if offset_minutes is not None:
        _add_offset_facts(facts, offset_minutes)
    return ASSERTION_TIME_RANGE.make(facts=facts, evidence=evidence, details=details)


def _time_after(pattern: re.Pattern[str], text: str) -> ParsedTime | None:
    found = pattern.search(text)
    return parse_iso(found[1]) if found else None


def _assertion_gap(
    server: ParsedTime, valid_from: ParsedTime | None, expiry: ParsedTime
) -> tuple[float, ParsedTime] | None:
    """Return how far the server's time lies outside the window, in seconds, and the window's
    end that it was measured from. The gap is positive when the assertion had expired, negative
    when it was not valid yet and 0 inside the window."""
    expired_by = seconds_between(expiry, server)
    if expired_by is None:
        return None
    if expired_by > 0:
        return expired_by, expiry
    if valid_from is not None:
        early_by = seconds_between(server, valid_from)
        if early_by is not None and early_by > 0:
            return -early_by, valid_from
    return 0.0, expiry


def _zone_offset_near(seconds: float, low: float, high: float, step_minutes: int) -> int | None:
    """Return the timezone offset in minutes that ``seconds`` matches, or None.

    The offset is a multiple of ``step_minutes`` from 1 to 14 hours, and ``offset * 60 -
    seconds`` must lie in ``[low, high]``.
    """
    for minutes in range(MIN_ZONE_OFFSET_MINUTES, MAX_ZONE_OFFSET_MINUTES + 1, step_minutes):
        if low <= minutes * 60 - seconds <= high:
            return minutes
    return None


def _assertion_diagnosis(
    server: ParsedTime, valid_from: ParsedTime | None, gap: float, details: dict[str, Any]
) -> int | None:
    """Set the ``diagnosis`` and ``fix_hint`` details for an assertion's gap.

    Returns the timezone offset in minutes that the gap matches, or None. The rule has three
    forms. Not yet valid: nbf minus the server's time is within a minute of an offset. Expired
    with nbf known: nbf is when the assertion was built, so its age (the server's time minus
    nbf) is within a minute of an offset. Expired without nbf: the gap plus the assertion's
    lifetime of up to 10 minutes is within a minute of a whole number of hours.
    """
    tolerance = ZONE_OFFSET_TOLERANCE_SECONDS
    if gap == 0:
        details["diagnosis"] = (
            " The times shown put the server's time inside the window, so the assertion's "
            "claims may differ from what the message shows."
        )
        details["fix_hint"] = " Decode the assertion and compare its nbf and exp with the UTC time."
        return None

    if gap < 0:
        sentence = (
            f" The assertion was not valid yet: its window started {format_duration(-gap)} after "
            "the server's current time"
        )
        minutes = _zone_offset_near(-gap, -tolerance, tolerance, ZONE_OFFSET_STEP_MINUTES)
        if minutes is None:
            details["diagnosis"] = (
                f"{sentence}, which is no timezone offset. This host's clock is most likely "
                "ahead of the server's."
            )
            details["fix_hint"] = " Check first whether this host's clock is ahead of UTC."
            return None
        details["diagnosis"] = (
            f"{sentence}, within a minute of {_offset_words(minutes)}, the size of a timezone "
            f"offset:{_zone_mistake(minutes, assertion_ahead=True)}"
        )
        details["fix_hint"] = _FIX_TIMEZONE
        return minutes

    sentence = f" The assertion expired {format_duration(gap)} before the server's current time."
    age = seconds_between(valid_from, server) if valid_from is not None else None
    if age is not None:
        built = f" It was built {format_duration(age)} before that time (server time minus nbf)"
        minutes = _zone_offset_near(age, -tolerance, tolerance, ZONE_OFFSET_STEP_MINUTES)
    else:
        # NOTE: without nbf only whole hours count. With a lifetime anywhere from 0 to 10
        # minutes, 12 of every 15 minutes of gap would match some multiple of 15 minutes, so a
        # half-hour zone such as UTC+05:30 is not recognised here.
        built = (
            " The message gives no nbf, and that gap plus the assertion's lifetime of up to "
            "10 minutes"
        )
        minutes = _zone_offset_near(gap, -tolerance, ASSERTION_LIFETIME_SECONDS + tolerance, 60)
    if minutes is None:
        no_offset = (
            ", which is no timezone offset"
            if age is not None
            else " is still no whole number of hours"
        )
        details["diagnosis"] = f"{sentence}{built}{no_offset}{_STALE}"
        details["fix_hint"] = " Look first for code that caches or reuses an assertion."
        return None
    reaches = ", within a minute of" if age is not None else " comes within a minute of"
    details["diagnosis"] = (
        f"{sentence}{built}{reaches} {_offset_words(minutes)}, the size of a timezone offset:"
        f"{_zone_mistake(minutes, assertion_ahead=False)}"
    )
    details["fix_hint"] = _FIX_TIMEZONE
    return minutes


def _empty_window_diagnosis(
    nbf_after_exp: float, valid_from: ParsedTime | None, expiry: ParsedTime
) -> dict[str, str]:
    """Return the ``diagnosis`` and ``fix_hint`` details for an nbf that is not before exp."""
    if nbf_after_exp == 0:
        where = "its nbf equals its exp"
    else:
        rounded = round_gap(nbf_after_exp, valid_from or expiry, expiry)
        where = f"its nbf lies {format_duration(rounded)} after its exp"
    return {
        "diagnosis": f" The assertion's window is empty because {where}, so no server time "
        "lies inside it. The code that builds the assertion computes nbf or exp wrongly, and "
        "the gap to the server's time shows nothing about a timezone.",
        "fix_hint": " Check first how the code computes nbf and exp: exp must lie after nbf.",
    }


def _zone_mistake(minutes: int, assertion_ahead: bool) -> str:
    """Name the two timezone mistakes that put an assertion's times ``minutes`` off UTC."""
    east = f"UTC{offset_text(minutes)}"
    west = f"UTC{offset_text(-minutes)}"
    if assertion_ahead:
        first, second = "local time taken for UTC", "UTC taken for local time"
    else:
        first, second = "UTC taken for local time", "local time taken for UTC"
    return (
        f" the assertion was most likely built from {first} on a host at {east}, or from "
        f"{second} on a host at {west}."
    )


def _offset_words(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    words = f"{hours} hour{'' if hours == 1 else 's'}"
    return f"{words} {rest} minutes" if rest else words


def _add_offset_facts(facts: dict[str, Any], minutes: int) -> None:
    """Add ``timezone_suspected``, ``timezone_offset_suspected`` (the zone east of UTC that
    explains the gap, such as ``+05:30``) and ``timezone_offset_hours_suspected``."""
    facts["timezone_suspected"] = True
    facts["timezone_offset_suspected"] = offset_text(minutes)
    facts["timezone_offset_hours_suspected"] = minutes // 60 if minutes % 60 == 0 else minutes / 60


# JWT libraries that reject a token from the future.


@dataclass(frozen=True)
class _Comparison:
    """The token's time compared with the validating machine's time."""

    gap: int | float | None
    """Token's time minus the validator's time in seconds, rounded; None when unknown."""
    source: str = ""
    """Source of the validator's time: ``message`` or ``log_timestamp``."""
    validator: ParsedTime | None = None
    unknown_reason: str = ""
    """Reason why the gap is unknown, as a sentence that starts with a space."""


def _token_used_before_issued(text: str, rule: _EarlyTokenRule, found: re.Match[str]) -> Finding:
    line = _line_at(text, found.start())
    error_text = REDACTOR.redact(line[:2000])
    facts: dict[str, Any] = {"library": rule.library, "error_text": error_text}
    details: dict[str, Any] = {"provider_message": _quote(line)}

    token_time = parse_time(found[rule.token_time]) if rule.token_time else None
    now = parse_time(found[rule.now]) if rule.now else None
    if rule.token_time and token_time is None:
        facts["token_time_unreadable"] = found[rule.token_time]
    if token_time is not None:
        facts["token_not_before"] = token_time.text
        utc = to_utc_text(token_time)
        if utc is not None:
            facts["token_not_before_utc"] = utc
        if token_time.zone is not None:
            facts["timezone"] = token_time.zone.name
            if token_time.zone.offset_text is not None:
                facts["timezone_offset"] = token_time.zone.offset_text
            else:
                facts["timezone_note"] = token_time.zone.note

    comparison = _compare_early_token(text, found.start(), rule, token_time, now)
    validator = comparison.validator
    if validator is not None:
        facts["validator_time"] = to_utc_text(validator) or validator.text
        if comparison.source == "log_timestamp" and validator.value.tzinfo is None:
            # The program is assumed to write its log timestamp and the message's time in the
            # same local zone, so both are compared as wall-clock times.
            facts["gap_assumes_same_timezone"] = True

    facts["timezone_suspected"] = False
    if comparison.gap is None:
        details["gap"] = (
            " The token issuer's clock is most likely ahead of the validating machine's clock, "
            f"usually by a few seconds.{comparison.unknown_reason}"
        )
    else:
        facts["gap_seconds"] = comparison.gap
        facts["gap_source"] = comparison.source
        minutes = _early_token_texts(comparison.gap, comparison.source, details)
        if minutes is not None:
            _add_offset_facts(facts, minutes)
    return TOKEN_USED_BEFORE_ISSUED.make(facts=facts, evidence=(error_text,), details=details)


def _compare_early_token(
    text: str,
    position: int,
    rule: _EarlyTokenRule,
    token_time: ParsedTime | None,
    now: ParsedTime | None,
) -> _Comparison:
    """Compare the token's time with the validator's time from the message or, when the
    message gives none, from the timestamp of the message's line or of a line before it."""
    if rule.token_time is None:
        return _Comparison(
            None, unknown_reason=" The message gives no times, so the exact gap is unknown."
        )
    if token_time is None:
        return _Comparison(
            None,
            unknown_reason=" The message's time cannot be read, so the exact gap is unknown.",
        )

    if now is not None:
        validator, source = now, "message"
    else:
        logged = _log_timestamp_before(text, position)
        if logged is None:
            return _Comparison(
                None,
                unknown_reason=" The message does not give the validating machine's time, so "
                "the exact gap is unknown.",
            )
        validator, source = logged, "log_timestamp"

    if source == "log_timestamp" and validator.value.tzinfo is None:
        measured: float | None = wall_clock_seconds_between(validator, token_time)
    else:
        measured = seconds_between(validator, token_time)
    if measured is None:
        reason = _incomparable_reason(validator, token_time, source)
        return _Comparison(None, source, validator, reason)
    return _Comparison(round_gap(measured, validator, token_time), source, validator)


def _incomparable_reason(validator: ParsedTime, token_time: ParsedTime, source: str) -> str:
    """Explain, as a sentence, why an aware and a naive time cannot be compared."""
    where = "log line" if source == "log_timestamp" else "message"
    opening = (
        f" The {where} gives the validating machine's time ({validator.text}), but the gap is "
        "unknown because"
    )
    if token_time.value.tzinfo is None:
        if token_time.zone is not None:
            return f"{opening} the token's time has no known UTC offset. {token_time.zone.note}."
        return f"{opening} the token's time gives no timezone."
    return f"{opening} the validating machine's time gives no timezone."


def _early_token_texts(gap: float, source: str, details: dict[str, Any]) -> int | None:
    """Set the ``gap``, ``diagnosis`` and ``fix_hint`` details for a known gap.

    Returns the timezone offset in minutes that the gap matches, or None. An offset counts when
    the gap is within a minute of a multiple of 15 minutes from 1 to 14 hours.
    """
    from_log = source == "log_timestamp"
    source_words = " given by the log line's timestamp" if from_log else " given in the message"
    tolerance = ZONE_OFFSET_TOLERANCE_SECONDS
    minutes = _zone_offset_near(abs(gap), -tolerance, tolerance, ZONE_OFFSET_STEP_MINUTES)

    if gap < 0:
        other_source = (
            "the log's timestamps and the message's time are in different zones, or the log "
            "line was not written by the validating machine"
            if from_log
            else "the message's two times are in different zones"
        )
        details["gap"] = (
            f" The token's time was already {format_duration(-gap)} past at the validating "
            f"machine's time{source_words}, so that time cannot be when the token was "
            f"rejected: {other_source}."
        )
        if minutes is not None:
            details["diagnosis"] = (
                f" The difference is within a minute of {_offset_words(minutes)}, the size of "
                "a timezone offset."
            )
        details["fix_hint"] = (
            " Take the validating machine's time at the rejection from its own log in UTC "
            "before comparing the two clocks."
        )
        return minutes

    if gap == 0:
        details["gap"] = (
            " The token's time is less than a second ahead of the validating machine's "
            f"time{source_words}."
        )
        return None
    if minutes is None:
        details["gap"] = (
            f" The token's time lies {format_duration(gap)} after the validating machine's "
            f"time{source_words}, so the token issuer's clock is ahead of the validating "
            f"machine's clock by {format_duration(gap)}."
        )
        return None
    details["gap"] = (
        f" The token's time lies {format_duration(gap)} after the validating machine's "
        f"time{source_words}."
    )
    other_zone = (
        ", or the log's timestamps are in another zone than the message's time."
        if from_log
        else "."
    )
    details["diagnosis"] = (
        f" That is within a minute of {_offset_words(minutes)}, the size of a timezone offset: "
        "the issuer most likely wrote local time as UTC on a host at "
        f"UTC{offset_text(minutes)}{other_zone}"
    )
    details["fix_hint"] = " Check first that the issuer computes iat and nbf from UTC."
    return minutes


def _log_timestamp_before(text: str, position: int) -> ParsedTime | None:
    """Return the timestamp that starts the message's line or the nearest line before it."""
    end = text.find("\n", position)
    lines = text[: end if end >= 0 else len(text)].splitlines()
    for line in reversed(lines):
        found = _LOG_TIMESTAMP.match(line)
        if found is not None:
            return parse_iso(found[1])
    return None


# Text helpers.


def _line_at(text: str, position: int) -> str:
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return text[start : end if end >= 0 else len(text)].strip()


def _shorten(text: str) -> str:
    if len(text) <= MAX_QUOTED_CHARACTERS:
        return text
    return text[: MAX_QUOTED_CHARACTERS - 1] + "…"


def _quote(line: str) -> str:
    """Quote a message line as one sentence that starts with a space."""
    quoted = _shorten(" ".join(line.split()))
    if not quoted:
        return ""
    end = "" if quoted.endswith((".", "!", "?", "…")) else "."
    return f' The message says: "{REDACTOR.redact(quoted)}"{end}'
