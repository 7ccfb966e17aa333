"""Finding kinds of the clock check: measured skew, missing time sources, token times."""

from __future__ import annotations

from collections.abc import Mapping

from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

_SYNC_FIX = (
    "Synchronise the clock with NTP: enable systemd-timesyncd, chrony or ntpd, check that it "
    "reaches its servers (timedatectl timesync-status, chronyc tracking) and that UDP port "
    "123 is open towards them. In a VM or container, fix the host's clock."
)

SKEW = FindingKind(
    "clock.skew",
    Severity.WARNING,
    "Local clock is {amount} s {direction} {origin}",
    "The local clock differs from {origin} by {amount} s (measured with {source_name}, "
    "precision ±{precision} s), at or above the {threshold_name} threshold of {threshold} s. "
    "OAuth2 clients compare token expiry with the local clock, and servers check the time "
    "claims of client assertions with a few minutes of leeway (Microsoft.IdentityModel: 300 s "
    "by default), "
    "so tokens are refreshed too early or too late and signed assertions fall outside their "
    "valid time range.",
    _SYNC_FIX,
)
SKEW_EXCEEDS_REFRESH_MARGIN = FindingKind(
    "clock.skew_exceeds_refresh_margin",
    Severity.CRITICAL,
    "Clock offset of {amount} s exceeds the token refresh margin of {margin} s",
    "The local clock is {amount} s {direction} {origin}, more than the {margin} s before "
    "expiry at which a cached access token is replaced. {effect}",
    _SYNC_FIX + " Until then, a refresh margin above the offset (token_refresh_margin) "
    "hides the problem for smtpdiag only, not for other clients.",
)
NTP_UNREACHABLE = FindingKind(
    "clock.ntp_unreachable",
    Severity.WARNING,
    "No NTP server answered ({servers})",
    "No configured NTP server gave a usable reply: {reasons}. Firewalls often block "
    "outgoing UDP port 123. {fallback}",
    "Open UDP port 123 towards the NTP server, or configure one that this host can reach "
    "(--ntp-server, ntp_servers); the host's NTP client needs the same path.",
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
    "{ntp}, the token check recorded no HTTP Date header and no SMTP reply carried a server "
    "time, so there was nothing to compare the local clock with.",
    "Pass --ntp-server HOST (or set ntp_servers); a token grant at the token endpoint also "
    "gives a Date header to compare with.",
)
TOKEN_ISSUED_IN_FUTURE = FindingKind(
    "clock.token_issued_in_future",
    Severity.WARNING,
    "Access token's {claim} is {amount} s after the local time",
    "The identity provider set the token's {claim} claim to {claim_time}, {amount} s after "
    "this machine's clock at {local_time}. The local clock is behind the provider's, so "
    'libraries that check {claim} reject the token as not yet valid ("token used before '
    'issued").',
    _SYNC_FIX + " If the gap is only a few seconds, a small leeway in the validating "
    "library also helps.",
)
TOKEN_EXPIRED_LOCALLY = FindingKind(
    "clock.token_expired_locally",
    Severity.WARNING,
    "Freshly issued access token already expired by the local clock",
    "The token endpoint has just issued this token, yet its expiry {expires_at} is "
    "{amount} s before this machine's clock at {local_time}. The local clock is ahead of "
    "the provider's by more than the token's lifetime, so clients discard every new token "
    "as expired.",
    _SYNC_FIX,
)
TOKEN_EXPIRED_AT_SERVER = FindingKind(
    "clock.token_expired_at_server",
    Severity.CRITICAL,
    "Access token expired by the server's time, still valid by the local clock",
    "The local clock is {amount} s behind {origin}, more than the token's remaining lifetime "
    "of {remaining} s by the local clock. The server already sees the token as expired, "
    "while clients keep sending it.",
    _SYNC_FIX,
)

CLOCK_FINDINGS: tuple[FindingKind, ...] = (
    SKEW,
    SKEW_EXCEEDS_REFRESH_MARGIN,
    NTP_UNREACHABLE,
    NTP_NOT_CONFIGURED,
    NO_TIME_SOURCE,
    TOKEN_ISSUED_IN_FUTURE,
    TOKEN_EXPIRED_LOCALLY,
    TOKEN_EXPIRED_AT_SERVER,
)
"""Every finding kind of the clock check's own measurements, most important first."""

CLOCK_KINDS: Mapping[str, FindingKind] = {kind.code: kind for kind in CLOCK_FINDINGS}
