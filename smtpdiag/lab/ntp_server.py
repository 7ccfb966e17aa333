"""NTP responder of the lab: RFC 5905 server replies on a UDP port of 127.0.0.1.

The responder replies to client requests (mode 3) of NTP versions 2 to 4 with a server
packet (mode 4) of stratum 2. Its receive and transmit timestamps come from the lab clock,
so a client measures the scenario's offset. ``NtpMode`` can make it read requests and stay
silent, or reply with bytes that are not an NTP packet. It runs in a daemon thread that
polls a stop flag, so stopping takes at most ``POLL_SECONDS``.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from dataclasses import dataclass
from types import TracebackType

from smtpdiag.lab.lab_clock import LabClock
from smtpdiag.lab.options import NtpMode

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

NTP_EPOCH_OFFSET = 2_208_988_800
"""Seconds from the NTP epoch (1900-01-01 UTC) to the Unix epoch (1970-01-01 UTC)."""

PACKET_OCTETS = 48
"""Size of an NTP packet without extension fields or MAC (RFC 5905 section 7.3)."""

CLIENT_MODE = 3
SERVER_MODE = 4
SUPPORTED_VERSIONS = (2, 3, 4)
"""NTP versions that get a reply; the reply carries the version of the request."""

STRATUM = 2
"""Stratum of the replies: a server synchronised to a primary (stratum 1) server."""
PRECISION = -20
"""Precision field: log2 of the clock's resolution in seconds, about one microsecond."""
REFERENCE_ID = socket.inet_aton("192.0.2.1")
"""Reference id of a stratum 2 server: the IPv4 address of its upstream server. This one is
a documentation address (RFC 5737), so it names no real server."""
REFERENCE_AGE_SECONDS = 64.0
"""Age of the reference timestamp, the time the lab clock was last set, in seconds."""
ROOT_DELAY_SECONDS = 0.001
ROOT_DISPERSION_SECONDS = 0.001

GARBAGE_REPLY = b"smtpdiag lab: not an NTP packet\n"
"""Reply in ``NtpMode.GARBAGE``: 32 octets, shorter than any NTP packet."""

POLL_SECONDS = 0.05
"""Socket timeout of the serving thread, after which it checks whether to stop."""

_MAX_DATAGRAM_OCTETS = 1024

# RFC 5905 figure 8: LI, VN and mode in one octet, stratum, poll, precision, root delay and
# root dispersion (16.16 fixed point), reference id, then four 64-bit timestamps: reference,
# origin, receive and transmit.
_PACKET = struct.Struct("!BBbbII4sQQQQ")


@dataclass(frozen=True)
class NtpRequest:
    """The fields of a client request that a reply depends on."""

    version: int
    mode: int
    poll: int
    transmit_timestamp: int
    """The client's transmit timestamp as the raw 64-bit NTP value."""


def to_ntp_timestamp(unix_seconds: float) -> int:
    """Return the 64-bit NTP timestamp (32.32 fixed point, era 0 wrapping) of a Unix time."""
    return round((unix_seconds + NTP_EPOCH_OFFSET) * 2**32) % 2**64


def from_ntp_timestamp(timestamp: int) -> float:
    """Return the Unix time of a 64-bit NTP timestamp in era 0 (1900 to 2036)."""
    return timestamp / 2**32 - NTP_EPOCH_OFFSET


def _short_format(seconds: float) -> int:
    """Return ``seconds`` in the 32-bit NTP short format (16.16 fixed point)."""
    return round(seconds * 2**16)


def parse_request(data: bytes) -> NtpRequest | None:
    """Return the fields of an NTP packet, or None when ``data`` is shorter than one."""
    if len(data) < PACKET_OCTETS:
        return None
    first, _stratum, poll, *_rest, transmit = _PACKET.unpack_from(data)
    return NtpRequest(
        version=(first >> 3) & 0b111,
        mode=first & 0b111,
        poll=poll,
        transmit_timestamp=transmit,
    )


def build_reply(request: NtpRequest, received_at: float, transmitted_at: float) -> bytes:
    """Return the server packet that replies to ``request``.

    ``received_at`` and ``transmitted_at`` are lab times in Unix seconds. The origin
    timestamp repeats the client's transmit timestamp, which lets the client match the reply
    to its request and compute the offset (RFC 5905 section 8).
    """
    leap_indicator = 0
    first = (leap_indicator << 6) | (request.version << 3) | SERVER_MODE
    return _PACKET.pack(
        first,
        STRATUM,
        request.poll,
        PRECISION,
        _short_format(ROOT_DELAY_SECONDS),
        _short_format(ROOT_DISPERSION_SECONDS),
        REFERENCE_ID,
        to_ntp_timestamp(received_at - REFERENCE_AGE_SECONDS),
        request.transmit_timestamp,
        to_ntp_timestamp(received_at),
        to_ntp_timestamp(transmitted_at),
    )


def closed_udp_port() -> int:
    """Return a UDP port of 127.0.0.1 on which nothing listens.

    NOTE: the port is free when this returns, but another program may bind it later.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


class NtpServer:
    """The lab NTP responder on 127.0.0.1 and a free UDP port, served by a daemon thread.

    Use as a context manager, or call ``start`` and ``stop``.
    """

    def __init__(self, clock: LabClock, mode: NtpMode = NtpMode.ANSWER) -> None:
        if mode is NtpMode.CLOSED:
            raise ValueError("NtpMode.CLOSED runs no responder; use closed_udp_port()")
        self.clock = clock
        self.mode = mode
        self._lock = threading.Lock()
        self._requests_received = 0
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        """UDP port the responder listens on; 0 before ``start``."""
        return 0 if self._socket is None else int(self._socket.getsockname()[1])

    @property
    def address(self) -> str:
        """``HOST:PORT`` of the responder."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def requests_received(self) -> int:
        """Datagrams received since the responder started, whether a reply was sent or not."""
        with self._lock:
            return self._requests_received

    def start(self) -> None:
        """Bind a free UDP port and serve in a daemon thread."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((LOOPBACK, 0))
        sock.settimeout(POLL_SECONDS)
        self._socket = sock
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name=f"lab-ntp-{self.port}", daemon=True
        )
        self._thread.start()
        logger.info(
            "lab NTP responder started on %s (%s, offset %+.3f s)",
            self.address,
            self.mode.value,
            self.clock.offset_seconds,
        )

    def stop(self) -> None:
        """Stop serving and close the socket."""
        sock = self._socket
        if sock is None:
            return
        address = self.address
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        sock.close()
        self._socket = None
        self._thread = None
        logger.info("lab NTP responder on %s stopped", address)

    def _serve(self, sock: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                data, client = sock.recvfrom(_MAX_DATAGRAM_OCTETS)
            except TimeoutError:
                continue
            except OSError as error:
                logger.info("lab NTP responder stopped reading: %s", error)
                return
            received_at = self.clock.time()
            with self._lock:
                self._requests_received += 1
            reply = self._reply(data, client, received_at)
            if reply is None:
                continue
            try:
                sock.sendto(reply, client)
            except OSError as error:
                logger.info("lab NTP reply to %s:%s failed: %s", client[0], client[1], error)

    def _reply(self, data: bytes, client: tuple[str, int], received_at: float) -> bytes | None:
        """Return the datagram to send back to ``client``, or None to send nothing."""
        peer = f"{client[0]}:{client[1]}"
        if self.mode is NtpMode.SILENT:
            logger.debug("%s: NTP request of %d octets left unanswered", peer, len(data))
            return None
        if self.mode is NtpMode.GARBAGE:
            logger.debug("%s: NTP request, sending bytes that are not NTP", peer)
            return GARBAGE_REPLY

        request = parse_request(data)
        if request is None:
            logger.debug("%s: datagram of %d octets is not an NTP packet", peer, len(data))
            return None
        if request.mode != CLIENT_MODE or request.version not in SUPPORTED_VERSIONS:
            logger.debug(
                "%s: NTP packet of version %d and mode %d ignored; only client requests "
                "(mode 3) of versions 2 to 4 are answered",
                peer,
                request.version,
                request.mode,
            )
            return None
        logger.debug("%s: NTPv%d request, sending a server reply", peer, request.version)
        return build_reply(request, received_at, self.clock.time())

    def __enter__(self) -> NtpServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
