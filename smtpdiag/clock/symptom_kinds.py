"""Finding kinds of the clock symptoms that decode and the token check recognise.

They live apart from the recognisers in ``symptoms`` so that the clock check can list them in
its catalog without loading the recognisers' patterns at start-up.
"""

from __future__ import annotations

from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

FIX_ASSERTION = (
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
    f"{FIX_ASSERTION}{{fix_hint}}",
)
ASSERTION_TIME_INVALID = FindingKind(
    "clock.assertion_time_invalid",
    Severity.CRITICAL,
    "The client assertion's time claims were rejected ({error_label})",
    "Microsoft Entra rejected the signed client assertion because it had expired or was not "
    "yet valid by the server's clock. This message gives no times, so the gap between this "
    "host's clock and the server's is unknown.{provider_message}",
    f"{FIX_ASSERTION} A reused (cached) assertion and a host clock that is minutes off are "
    "the common causes. A gap the size of a timezone offset means that the code takes local "
    "time for UTC.",
)
TOKEN_USED_BEFORE_ISSUED = FindingKind(
    "clock.token_used_before_issued",
    Severity.CRITICAL,
    "A token was rejected as issued in the future",
    "The machine that validated the token found its iat or nbf after its own current time, "
    "and the validating library allows no leeway, or less than the "
    "difference.{gap}{diagnosis}{provider_message}",
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
