"""Query one NTP server (RFC 5905) with ntplib and return the local clock's offset.

The offset is returned with the sign the clock check uses: positive when the local clock is
ahead of the server. ntplib measures against ``time.time()``, so the offset is shifted by the
difference between the caller's wall clock and ``time.time()``. With the real clock that
difference is zero. With an injected clock the offset is that of the injected clock.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

NTP_VERSION = 4
"""Protocol version sent in the request (RFC 5905)."""

SERVER_MODES = frozenset({4, 5})
"""NTP modes of a server reply: 4 is server, 5 is broadcast."""

LEAP_NOT_SYNCHRONIZED = 3
"""Leap indicator value of a server whose own clock is not synchronised."""

MAX_STRATUM = 15
"""Highest stratum of a synchronised server; 16 means unsynchronised (RFC 5905 §7.3)."""

NTP_HEADER_BYTES = 48
"""Size of an NTP packet without extension fields or MAC (RFC 5905 §7.3)."""


class NtpFailure(StrEnum):
    """Kind of reason that an NTP query gave no offset; each kind needs a different fix."""

    NO_REPLY = "no_reply"
    """Timeout, ICMP port unreachable, network error or a query skipped for the deadline."""
    UNRESOLVED = "unresolved"
    """The server's host name did not resolve."""
    KISS_OF_DEATH = "kiss_of_death"
    """Stratum 0 reply: the server requests a lower query rate (RATE) or denies access."""
    UNSYNCHRONISED = "unsynchronised"
    """Leap indicator 3 or stratum 16: the server does not know the time itself."""
    INVALID_REPLY = "invalid_reply"
    """A datagram that is no NTP server reply to this request."""


@dataclass(frozen=True)
class NtpResult:
    """Outcome of one NTP query: the measurement, or the reason there is none."""

    server: str
    """Server as configured, with the port when it is not 123, e.g. ``127.0.0.1:4123``."""
    measured_at: datetime
    """Local wall-clock time (UTC) at which the reply arrived or the query failed."""
    offset_seconds: float | None = None
    """Local clock minus server clock: positive when the local clock is ahead."""
    delay_seconds: float | None = None
    """Round-trip delay of the query, without the server's processing time."""
    stratum: int | None = None
    error: str | None = None
    """Reason in words that the query gave no offset, or None after a valid reply."""
    failure: NtpFailure | None = None
    """Kind of ``error``, or None after a valid reply."""

    @property
    def ok(self) -> bool:
        """Whether the query produced an offset."""
        return self.offset_seconds is not None


def server_label(host: str, port: int) -> str:
    """Return ``host`` with ``:port`` added when the port is not 123."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port == 123 else f"{shown}:{port}"


def query_ntp(host: str, port: int, timeout: float, now: Callable[[], datetime]) -> NtpResult:
    """Send one NTP request to ``host``:``port`` and return the offset or the failure reason.

    Errors never escape: an unknown host, a timeout, an ICMP port unreachable, a short or
    invalid reply, and a server that reports itself unsynchronised all become ``NtpResult.error``.
    """
    import ntplib  # imported here because only configured NTP queries need it

    label = server_label(host, port)
    no_reply = NtpFailure.NO_REPLY
    sent_at = time.time()
    # NOTE: ntplib reads one datagram from the server's address, so a junk datagram that
    # arrives before the real reply ends the query as invalid. Its socket is not connected,
    # so Linux does not report an ICMP port unreachable and a closed port waits for the timeout.
    try:
        stats = ntplib.NTPClient().request(host, version=NTP_VERSION, port=port, timeout=timeout)
    except ntplib.NTPException as error:
        failure, reason = _ntplib_reason(str(error), timeout)
        return NtpResult(label, now(), error=reason, failure=failure)
    except socket.gaierror as error:
        reason = f"cannot resolve {host}: {error.strerror or error}"
        return NtpResult(label, now(), error=reason, failure=NtpFailure.UNRESOLVED)
    except ConnectionRefusedError:
        reason = "port unreachable (nothing listens on that UDP port)"
        return NtpResult(label, now(), error=reason, failure=no_reply)
    except TimeoutError:
        reason = f"no reply within {format_seconds(timeout)} s"
        return NtpResult(label, now(), error=reason, failure=no_reply)
    except OSError as error:
        reason = f"network error: {error.strerror or error}"
        return NtpResult(label, now(), error=reason, failure=no_reply)
    received_at = time.time()
    measured_at = now()

    problem = _reply_problem(stats, sent_at, received_at)
    if problem is not None:
        failure, reason = problem
        return NtpResult(label, measured_at, stratum=stats.stratum, error=reason, failure=failure)
    # Shift from ntplib's time.time() to the caller's clock; zero with the real clock.
    clock_shift = measured_at.timestamp() - received_at
    return NtpResult(
        label,
        measured_at,
        offset_seconds=-_within_era(float(stats.offset)) + clock_shift,
        delay_seconds=max(0.0, float(stats.delay)),
        stratum=int(stats.stratum),
    )


NTP_ERA_SECONDS = 2**32
"""Length of an NTP era: timestamps carry 32-bit seconds (RFC 5905 section 6)."""


def _within_era(server_offset: float) -> float:
    """Return the server's offset as the one closest to zero modulo an NTP era.

    ntplib maps every timestamp into era 0 (1900-2036), so a server time after
    2036-02-07 comes out one era early. As RFC 5905 does, the era is chosen that puts the
    server's time nearest the local time, which is right for offsets under 68 years.
    """
    if server_offset < -NTP_ERA_SECONDS / 2:
        return server_offset + NTP_ERA_SECONDS
    if server_offset > NTP_ERA_SECONDS / 2:
        return server_offset - NTP_ERA_SECONDS
    return server_offset


def format_seconds(value: float) -> str:
    """Format seconds with at most three decimals, no trailing zeros and no ``-0``."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _ntplib_reason(message: str, timeout: float) -> tuple[NtpFailure, str]:
    if message.startswith("No response"):
        return NtpFailure.NO_REPLY, f"no reply within {format_seconds(timeout)} s"
    if message == "Invalid NTP packet.":
        # ntplib raises this only when the datagram is shorter than the NTP header and does
        # not pass the datagram on, so its exact length is unknown here.
        reason = (
            "invalid reply: not an NTP packet, because the datagram is shorter than the "
            f"{NTP_HEADER_BYTES}-byte NTP header"
        )
        return NtpFailure.INVALID_REPLY, reason
    return NtpFailure.INVALID_REPLY, f"invalid reply: {message.rstrip('.')}"


def _reply_problem(stats: Any, sent_at: float, received_at: float) -> tuple[NtpFailure, str] | None:
    """Return why a parsed ``ntplib.NTPStats`` reply cannot be trusted, or None when it can."""
    invalid = NtpFailure.INVALID_REPLY
    if stats.mode not in SERVER_MODES:
        return invalid, f"invalid reply: mode {stats.mode} is not a server reply"
    if stats.stratum == 0:
        code = _kiss_code(stats.ref_id)
        reason = f"kiss-o'-death reply (stratum 0) with code {code}"
        return NtpFailure.KISS_OF_DEATH, reason
    if stats.leap == LEAP_NOT_SYNCHRONIZED:
        reason = f"leap indicator {LEAP_NOT_SYNCHRONIZED}: the server's clock is not synchronised"
        return NtpFailure.UNSYNCHRONISED, reason
    if stats.stratum > MAX_STRATUM:
        reason = f"stratum {stats.stratum}: the server's clock is not synchronised"
        return NtpFailure.UNSYNCHRONISED, reason
    if stats.tx_timestamp == 0:
        return invalid, "invalid reply: no transmit timestamp"
    # The server copies the request's transmit time into the originate field (RFC 5905 §8).
    # ntplib does not compare them, so a reply to another request is caught here.
    if not sent_at - 1.0 <= stats.orig_time <= received_at + 1.0:
        return invalid, "invalid reply: its originate timestamp does not match the request"
    return None


def _kiss_code(reference_id: int) -> str:
    """Return the four ASCII letters of a kiss code (RATE, DENY, RSTR …), or its hex value."""
    raw = int(reference_id).to_bytes(4, "big")
    text = raw.decode("ascii", errors="replace").rstrip("\x00")
    return text if text.isalnum() else f"0x{raw.hex()}"
