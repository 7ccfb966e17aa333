"""Finding kinds of the clock check: measured skew, missing time sources, token times."""

from __future__ import annotations

from collections.abc import Mapping

from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

SYNC_FIX = (
    "Synchronise the clock with NTP: enable systemd-timesyncd, chrony or ntpd, check that it "
    "reaches its servers (timedatectl timesync-status, chronyc tracking) and that UDP port "
    "123 is open towards them. In a VM or container, fix the host's clock."
)
"""Full NTP advice: in ``clock.skew``, or in the first clock finding when there is no skew."""

SYNC_FIX_SEE_SKEW = "Synchronise the clock with NTP as clock.skew describes."
"""Short form of ``SYNC_FIX`` for findings reported next to ``clock.skew``."""

SKEW = FindingKind(
    "clock.skew",
    Severity.WARNING,
    "Local clock is {amount} {direction} {origin}",
    "The local clock differs from {origin} by {amount}, measured with {source_name} "
    "(precision ±{precision} s). Even at the edge of that precision the offset is "
    "{lower_bound} s, at or above the {threshold_name} threshold of {threshold} s. "
    "OAuth2 clients compare token expiry with the local clock, and servers check the time "
    "claims of client assertions with a few minutes of leeway (Microsoft.IdentityModel: 300 s "
    "by default), "
    "so tokens are refreshed too early or too late and signed assertions fall outside their "
    "valid time range.",
    SYNC_FIX,
)
SKEW_EXCEEDS_REFRESH_MARGIN = FindingKind(
    "clock.skew_exceeds_refresh_margin",
    Severity.CRITICAL,
    "Clock offset of {amount} exceeds the token refresh margin of {margin} s",
    "The local clock is {amount} {direction} {origin}, more than the {margin} s before "
    "expiry at which a cached access token is replaced (even at the edge of the precision "
    "the offset is {lower_bound} s). {effect}",
    "{sync_fix} Until then, a refresh margin above the offset (token_refresh_margin) "
    "hides the problem for smtpdiag only, not for other clients.",
)
SERVER_TIME_ZONE_SUSPECT = FindingKind(
    "clock.server_time_zone_suspect",
    Severity.WARNING,
    "Server time in {origin} is off by {shift}: a time zone error, not clock skew",
    "The server time in {origin} differs from the local clock by {amount}, within "
    "{tolerance} s of {shift}. "
    "A difference of whole hours or quarter hours is a time zone error: usually the server "
    "writes its local time with a wrong zone offset (local time labelled +0000, for "
    "example), and sometimes this machine's clock is set to local time as if it were UTC. "
    "smtpdiag does not use this time to measure the clock. {verdict}",
    "If the server's zone is wrong, its administrator sets the server's time zone correctly; "
    "the local clock needs no change. If this machine's clock is wrong instead, synchronise "
    "it with NTP. {ntp_hint}",
)
NTP_UNREACHABLE = FindingKind(
    "clock.ntp_unreachable",
    Severity.WARNING,
    "No usable NTP reply ({servers}): {failure}",
    "No configured NTP server gave a usable reply: {reasons}. {explanation} {fallback}",
    "Make an NTP server usable from this host, for smtpdiag and for the host's own NTP "
    "client. {fix}",
)
NTP_NOT_CONFIGURED = FindingKind(
    "clock.ntp_not_configured",
    Severity.INFO,
    "No NTP server configured; the offset comes from {source_name}",
    "smtpdiag has no default NTP server, so without --ntp-server it measures the clock "
    "against {origin}, which gives a precision of ±{precision} s.",
    "For a precise measurement pass --ntp-server HOST (or ntp_servers in the configuration "
    "file), for example the server that this host's NTP client uses.",
)
NO_TIME_SOURCE = FindingKind(
    "clock.no_time_source",
    Severity.INFO,
    "Clock offset not measured: no time source",
    "{ntp}, and {fallbacks}, so there was nothing to compare the local clock with.",
    "{ntp_fix} A token grant at the token endpoint also gives a Date header to compare with.",
)
TOKEN_ISSUED_IN_FUTURE = FindingKind(
    "clock.token_issued_in_future",
    Severity.WARNING,
    "Access token's {claim} is {amount} after the local time",
    "The identity provider set the token's {claim} claim to {claim_time}, {amount} after "
    "this machine's clock at {local_time}. The local clock is behind the provider's, so "
    'libraries that check {claim} reject the token as not yet valid ("token used before '
    'issued").',
    "{sync_fix} If the gap is only a few seconds, a small leeway in the validating "
    "library also helps.",
)
TOKEN_EXPIRED_LOCALLY = FindingKind(
    "clock.token_expired_locally",
    Severity.WARNING,
    "Freshly issued access token already expired by the local clock",
    "The token endpoint has just issued this token, yet its expiry {expires_at} is "
    "{amount} before this machine's clock at {local_time}. The local clock is ahead of "
    "the provider's by more than the token's lifetime, so clients discard every new token "
    "as expired.",
    "{sync_fix}",
)
TOKEN_EXPIRED_AT_SERVER = FindingKind(
    "clock.token_expired_at_server",
    Severity.CRITICAL,
    "Access token expired by the server's time, still valid by the local clock",
    "The local clock is {amount} behind {origin}, more than the token's remaining lifetime "
    "of {remaining} by the local clock. The server already sees the token as expired, "
    "while clients keep sending it.",
    "{sync_fix}",
)

CLOCK_FINDINGS: tuple[FindingKind, ...] = (
    SKEW,
    SKEW_EXCEEDS_REFRESH_MARGIN,
    SERVER_TIME_ZONE_SUSPECT,
    NTP_UNREACHABLE,
    NTP_NOT_CONFIGURED,
    NO_TIME_SOURCE,
    TOKEN_ISSUED_IN_FUTURE,
    TOKEN_EXPIRED_LOCALLY,
    TOKEN_EXPIRED_AT_SERVER,
)
"""Every finding kind of the clock check's own measurements, most important first."""

CLOCK_KINDS: Mapping[str, FindingKind] = {kind.code: kind for kind in CLOCK_FINDINGS}
