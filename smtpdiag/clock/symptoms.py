"""Clock symptoms in pasted text and identity provider errors.

Microsoft Entra rejects a client assertion (the signed JWT that replaces a client secret)
outside its validity window with AADSTS700024, and older replies report it with AADSTS50012
inside AADSTS70002. Google rejects a service account's JWT with "Invalid JWT: Token must be a
short-lived token". JWT libraries reject a token whose ``iat`` or ``nbf`` lies ahead of their
own clock with texts such as "Token used before issued" (Go) or "The Token can't be used
before …" (Java).

An AADSTS700024 text gives the server's time and the assertion's window, so the gap can be
computed. A gap of a whole number of hours, give or take the assertion's lifetime, is the
size of a timezone offset: the assertion was built from local time taken for UTC, or from UTC
taken for local time. Any other gap is a stale assertion or a clock that is off.

Placeholders of the finding kinds (a placeholder left out renders as empty text):

- ``{error_label}``: the ``error`` code and the AADSTS code, e.g. ``invalid_client,
  AADSTS700024``, or only the code in pasted text.
- ``{provider_message}``: one sentence quoting the provider's description, starting with a
  space.
- ``{window}``: the server's time and the assertion's validity window, as a sentence that
  starts with a space.
- ``{diagnosis}``, ``{fix_hint}``: what the gap means and what to check first, starting with a
  space.
- ``{gap}``: the gap as a phrase that completes "ahead by …", starting with a space.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smtpdiag.clock.time_text import (
    ParsedTime,
    parse_iso,
    parse_time,
    seconds_between,
    to_utc_text,
    wall_clock_seconds_between,
)
from smtpdiag.decode.result import DecodeResult, InputKind
from smtpdiag.models import Finding, Severity
from smtpdiag.oauth.model import TokenErrorBody
from smtpdiag.redact import REDACTOR
from smtpdiag.spec import FindingKind

ASSERTION_LIFETIME_SECONDS = 600
"""Longest usual client assertion lifetime: Microsoft recommends 5 to 10 minutes, and MSAL
builds assertions valid for 10 minutes."""

WHOLE_HOUR_TOLERANCE_SECONDS = 60
"""Slack around a whole-hour gap for network delay and a small clock error."""

MAX_ZONE_OFFSET_HOURS = 14
"""Largest UTC offset in use (UTC+14, Line Islands); a larger gap is no timezone mistake."""

MAX_QUOTED_CHARACTERS = 300
"""Maximum length of a message quoted in a finding's cause."""

_FIX_ASSERTION = (
    "Build a new assertion for every token request, with nbf and exp computed from the UTC "
    "clock in seconds since the Unix epoch, valid for 5 to 10 minutes, and keep this host's "
    "clock synchronised with NTP (the clock check compares it)."
)

ASSERTION_TIME_RANGE = FindingKind(
    "clock.assertion_time_range",
    Severity.CRITICAL,
    "The client assertion was outside its valid time range ({error_label})",
    "Microsoft Entra rejected the signed client assertion because its own current time was "
    "outside the assertion's nbf to exp window.{window}{diagnosis}{provider_message}",
    f"{_FIX_ASSERTION}{{fix_hint}}",
)
ASSERTION_TIME_INVALID = FindingKind(
    "clock.assertion_time_invalid",
    Severity.CRITICAL,
    "The client assertion's time claims were rejected ({error_label})",
    "Microsoft Entra rejected the signed client assertion because it had expired or was not "
    "yet valid by the server's clock. This message gives no times, so the gap between this "
    "host's clock and the server's is unknown.{provider_message}",
    f"{_FIX_ASSERTION} A reused (cached) assertion and a host clock that is minutes off are "
    "the common causes; a gap of whole hours means that the code takes local time for UTC.",
)
TOKEN_USED_BEFORE_ISSUED = FindingKind(
    "clock.token_used_before_issued",
    Severity.CRITICAL,
    "A token was rejected as issued in the future",
    "The machine that validated the token found its iat or nbf after its own current time: "
    "the token issuer's clock is ahead of the validating machine's clock{gap}, and the "
    "validating library allows no leeway, or less than the gap.{diagnosis}{provider_message}",
    "Synchronise the clocks of the issuer and of the validating machine with NTP. Where the "
    "validating library has a leeway (clock skew) option, allow 30 to 60 seconds for iat and "
    "nbf; RFC 7519 allows a leeway of a few minutes.{fix_hint}",
)
JWT_TIME_INVALID = FindingKind(
    "clock.jwt_time_invalid",
    Severity.CRITICAL,
    "Google rejected the JWT's iat and exp ({error_label})",
    "Google accepts a service account's signed JWT only when iat is close to Google's current "
    "time and exp is at most 60 minutes after iat. This host's clock is off by minutes or "
    "more, or the code sets iat and exp wrongly, for example from local time instead of UTC, "
    "or in milliseconds instead of seconds.{provider_message}",
    "Compare this host's clock with NTP and synchronise it. Then check that the JWT's iat is "
    "the current UTC time in seconds since the Unix epoch and exp at most 3600 seconds "
    "later.",
)

SYMPTOM_FINDINGS: tuple[FindingKind, ...] = (
    ASSERTION_TIME_RANGE,
    ASSERTION_TIME_INVALID,
    TOKEN_USED_BEFORE_ISSUED,
    JWT_TIME_INVALID,
)
"""Finding kinds of clock symptoms that decode and the token check report.

A "certificate is not yet valid" message is the tls check's ``tls.cert_not_yet_valid``, which
decode already reports."""

_AADSTS = re.compile(r"AADSTS(\d{1,10})")
_ASSERTION_CODES = frozenset({50012, 70002})
# AADSTS50012 also reports bad signatures and secrets; only its time texts are clock symptoms.
_ASSERTION_TIME_TEXT = re.compile(
    r"not within its valid time range|\bexpired\b|not yet valid|\bnbf\b|\bexp\b", re.IGNORECASE
)
_CERTIFICATE_EXPIRED = re.compile(r"certificate[^.]{0,120}\bexpired\b", re.IGNORECASE)
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
    return bool(_ASSERTION_TIME_TEXT.search(text)) and not _CERTIFICATE_EXPIRED.search(text)


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

    if server is None or expiry is None:
        facts["timezone_suspected"] = False
        details["window"] = (
            " The message does not give the server's time and the assertion's expiry in a "
            "readable form, so the gap is unknown."
        )
        details["fix_hint"] = " Compare this host's clock with NTP first."
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

    gap = _assertion_gap(server, valid_from, expiry)
    if gap is None:
        facts["timezone_suspected"] = False
        details["fix_hint"] = " Compare this host's clock with NTP first."
        return ASSERTION_TIME_RANGE.make(facts=facts, evidence=evidence, details=details)
    facts["gap_seconds"] = round(gap)
    hours = _whole_hours_of_assertion_gap(server, valid_from, expiry, gap)
    facts["timezone_suspected"] = hours is not None
    details.update(_assertion_diagnosis(gap, hours))
    if hours is not None:
        facts["timezone_offset_hours_suspected"] = hours
    return ASSERTION_TIME_RANGE.make(facts=facts, evidence=evidence, details=details)


def _time_after(pattern: re.Pattern[str], text: str) -> ParsedTime | None:
    found = pattern.search(text)
    return parse_iso(found[1]) if found else None


def _assertion_gap(
    server: ParsedTime, valid_from: ParsedTime | None, expiry: ParsedTime
) -> float | None:
    """Return how far the server's time lies outside the window, in seconds: positive when the
    assertion had expired, negative when it was not valid yet, 0 inside the window."""
    expired_by = seconds_between(expiry, server)
    if expired_by is None:
        return None
    if expired_by > 0:
        return expired_by
    if valid_from is not None:
        early_by = seconds_between(server, valid_from)
        if early_by is not None and early_by > 0:
            return -early_by
    return 0.0


def _whole_hours_of_assertion_gap(
    server: ParsedTime, valid_from: ParsedTime | None, expiry: ParsedTime, gap: float
) -> int | None:
    """Return the number of hours when the gap is the size of a timezone offset, else None.

    The rule: when the assertion has expired and its nbf is known, nbf is the time it was
    built, so its age at the server (server time minus nbf) must be within a minute of a whole
    number of hours. Otherwise only the gap is known, and the assertion's lifetime (up to 10
    minutes) hides part of the hours: whole hours minus the gap must lie between -1 and +11
    minutes. Hours count from 1 to 14, the largest UTC offset.
    """
    if gap > 0 and valid_from is not None:
        age = seconds_between(valid_from, server)
        if age is None:
            return None
        return _near_whole_hours(age, -WHOLE_HOUR_TOLERANCE_SECONDS, WHOLE_HOUR_TOLERANCE_SECONDS)
    return _near_whole_hours(
        abs(gap),
        -WHOLE_HOUR_TOLERANCE_SECONDS,
        ASSERTION_LIFETIME_SECONDS + WHOLE_HOUR_TOLERANCE_SECONDS,
    )


def _near_whole_hours(seconds: float, low: float, high: float) -> int | None:
    """Return n when ``n * 3600 - seconds`` lies in ``[low, high]`` for n from 1 to 14."""
    for hours in range(1, MAX_ZONE_OFFSET_HOURS + 1):
        if low <= hours * 3600 - seconds <= high:
            return hours
    return None


def _assertion_diagnosis(gap: float, hours: int | None) -> dict[str, str]:
    """Return the ``diagnosis`` and ``fix_hint`` details for an assertion's gap."""
    if gap == 0:
        return {
            "diagnosis": " The times shown put the server's time inside the window, so the "
            "assertion's claims may differ from what the message shows.",
            "fix_hint": " Decode the assertion and compare its nbf and exp with the UTC time.",
        }
    if gap > 0:
        sentence = f" The assertion expired {_duration(gap)} before the server's current time."
    else:
        sentence = (
            f" The assertion was not valid yet: its window started {_duration(-gap)} after "
            "the server's current time."
        )
    if hours is not None:
        unit = "hour" if hours == 1 else "hours"
        return {
            "diagnosis": f"{sentence} That matches {hours} {unit}, the size of a timezone "
            "offset, less at most the assertion's lifetime of 10 minutes: the assertion was "
            "most likely built from local time taken for UTC, or from UTC taken for local "
            "time.",
            "fix_hint": " Check first how the code that builds the assertion gets the time: it "
            "must use UTC and must not convert a UTC time as if it were local (the host's "
            "timezone setting shows which offset). Then compare the clock with NTP.",
        }
    if gap > 0:
        return {
            "diagnosis": f"{sentence} The gap is no whole number of hours, so the assertion was "
            "built long before it was sent (a cached or reused assertion), or this host's "
            "clock is behind.",
            "fix_hint": " Build the assertion just before each token request instead of "
            "caching it, and compare this host's clock with NTP.",
        }
    return {
        "diagnosis": f"{sentence} This host's clock is most likely ahead of the server's.",
        "fix_hint": " Compare this host's clock with NTP and synchronise it.",
    }


# JWT libraries that reject a token from the future.


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

    gap, source = _early_token_gap(text, found.start(), token_time, now, facts)
    diagnosis = ""
    if gap is None:
        details["gap"] = (
            " (usually by a few seconds; the message does not give the validating machine's "
            "time, so the exact gap is unknown)"
        )
        facts["timezone_suspected"] = False
    else:
        facts["gap_seconds"] = round(gap, 3)
        facts["gap_source"] = source
        details["gap"] = f" by {_duration(gap)}" if gap > 0 else ""
        hours = _near_whole_hours(
            abs(gap), -WHOLE_HOUR_TOLERANCE_SECONDS, WHOLE_HOUR_TOLERANCE_SECONDS
        )
        facts["timezone_suspected"] = hours is not None
        if hours is not None:
            facts["timezone_offset_hours_suspected"] = hours
            diagnosis = (
                f" The gap is {hours} {'hour' if hours == 1 else 'hours'}, the size of a "
                "timezone offset: the issuer most likely wrote local time as UTC"
                + (
                    ", or the log's timestamp is in another zone than the message's time."
                    if source == "log_timestamp"
                    else "."
                )
            )
            details["fix_hint"] = " Check first that the issuer computes iat and nbf from UTC."
    details["diagnosis"] = diagnosis
    return TOKEN_USED_BEFORE_ISSUED.make(facts=facts, evidence=(error_text,), details=details)


def _early_token_gap(
    text: str,
    position: int,
    token_time: ParsedTime | None,
    now: ParsedTime | None,
    facts: dict[str, Any],
) -> tuple[float | None, str]:
    """Return how far the token's time lies ahead of the validator's clock, and the source of
    the validator's time: ``message`` or ``log_timestamp``."""
    if token_time is None:
        return None, ""
    if now is not None:
        facts["validator_time"] = to_utc_text(now) or now.text
        return seconds_between(now, token_time), "message"

    logged = _log_timestamp_before(text, position)
    if logged is None:
        return None, ""
    facts["validator_time"] = logged.text
    if logged.zone is None:
        # Assume the program wrote its log timestamp and the message's time in the same
        # local zone, and compare both as wall-clock times; the fact below states it.
        facts["gap_assumes_same_timezone"] = True
        return wall_clock_seconds_between(logged, token_time), "log_timestamp"
    return seconds_between(logged, token_time), "log_timestamp"


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


def _duration(seconds: float) -> str:
    """Return a duration in words: ``23 seconds``, ``55 minutes``, ``3 hours 32 minutes``."""
    total = round(seconds)
    if total < 120:
        return f"{total} second{'' if total == 1 else 's'}"
    minutes, rest = divmod(total, 60)
    if minutes < 120:
        return f"{minutes} minutes" + (f" {rest} seconds" if rest else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} hours" + (f" {minutes} minutes" if minutes else "")
