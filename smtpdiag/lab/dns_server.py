"""Authoritative DNS responder on loopback that serves a zone given as a dict.

Tests and the lab point smtpdiag's resolver at it with
``Settings(dns_nameservers=("127.0.0.1",), dns_port=server.port)``, so no query leaves the
machine. It serves A, AAAA, CNAME and SRV records over UDP and TCP on the same port, and can
be configured to never reply for a name or to return SERVFAIL for it.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rrset

logger = logging.getLogger(__name__)

ZoneRecords = Mapping[str, Mapping[str, Sequence[str]]]
"""Zone contents: owner name -> record type -> record data in presentation format.

Example: ``{"smtp.example.com": {"A": ["192.0.2.10"]},
"_submissions._tcp.example.com": {"SRV": ["0 1 465 smtp.example.com."]}}``.
Names in record data are taken as absolute whether or not they end with a dot.
"""

SUPPORTED_TYPES = frozenset({"A", "AAAA", "CNAME", "SRV"})

TTL_SECONDS = 300

# RFC 1035 section 4.2.1: a UDP answer is limited to 512 bytes unless EDNS offers more.
_UDP_PAYLOAD_WITHOUT_EDNS = 512

# Longest CNAME chain followed inside the zone before giving up.
_MAX_CNAME_CHAIN = 8

_BIND_ATTEMPTS = 20

_TCP_READ_TIMEOUT_SECONDS = 2.0

_Zone = dict[dns.name.Name, dict[dns.rdatatype.RdataType, dns.rrset.RRset]]


@dataclass(frozen=True)
class ReceivedQuery:
    """One query that reached the responder, whether or not it got a reply."""

    name: str
    """Query name without the final dot, in lower case."""
    type: str
    """Query type mnemonic, e.g. ``AAAA``."""
    transport: str
    """``udp`` or ``tcp``."""


class LocalDnsServer:
    """Authoritative responder for a dict-based zone on one loopback port, UDP and TCP.

    Unknown names get NXDOMAIN, a known name without the requested type gets NOERROR with an
    empty answer, and CNAMEs are followed inside the zone. Names in ``silent`` get no reply
    at all, so a client times out; names in ``servfail`` get SERVFAIL.
    """

    def __init__(
        self,
        records: ZoneRecords,
        *,
        silent: Collection[str] = (),
        servfail: Collection[str] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self._zone = _build_zone(records)
        self._silent = {_absolute(name) for name in silent}
        self._servfail = {_absolute(name) for name in servfail}
        self._host = host
        self._queries: list[ReceivedQuery] = []
        self._lock = threading.Lock()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    @property
    def host(self) -> str:
        """Loopback address the responder listens on."""
        return self._host

    @property
    def port(self) -> int:
        """Port of both the UDP and the TCP socket. Raises RuntimeError before ``start``."""
        if self._thread is None:
            raise RuntimeError("the DNS responder is not started")
        return self._port

    @property
    def queries(self) -> tuple[ReceivedQuery, ...]:
        """Every query received so far, in arrival order."""
        with self._lock:
            return tuple(self._queries)

    def start(self) -> None:
        """Bind UDP and TCP on one free port and serve them from a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the DNS responder is already started")
        self._udp, self._tcp, self._port = _bind_pair(self._host)
        self._wakeup = socket.socketpair()
        self._thread = threading.Thread(
            target=self._serve,
            args=(self._udp, self._tcp, self._wakeup[0]),
            name="lab-dns",
            daemon=True,
        )
        self._thread.start()
        logger.info("DNS responder listening on %s port %d", self._host, self._port)

    def stop(self) -> None:
        """Stop serving, wait for the thread and close every socket."""
        if self._thread is None or self._wakeup is None:
            return
        self._wakeup[1].send(b"\0")
        self._thread.join()
        for sock in (self._udp, self._tcp, *self._wakeup):
            if sock is not None:
                sock.close()
        self._thread = None
        self._wakeup = None
        logger.info("DNS responder on %s port %d stopped", self._host, self._port)

    def __enter__(self) -> LocalDnsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, udp: socket.socket, tcp: socket.socket, wakeup: socket.socket) -> None:
        handlers: dict[socket.socket, Callable[[socket.socket], None]] = {
            udp: self._handle_udp,
            tcp: self._handle_tcp,
        }
        with selectors.DefaultSelector() as selector:
            for sock in (udp, tcp, wakeup):
                selector.register(sock, selectors.EVENT_READ)
            while True:
                for key, _events in selector.select():
                    if key.fileobj is wakeup:
                        return
                    ready = key.fileobj
                    assert isinstance(ready, socket.socket)
                    handlers[ready](ready)

    def _handle_udp(self, udp: socket.socket) -> None:
        try:
            wire, client = udp.recvfrom(65535)
        except OSError:
            logger.debug("UDP receive failed", exc_info=True)
            return
        reply = self._reply(wire, "udp")
        if reply is None:
            return
        try:
            udp.sendto(reply, client)
        except OSError as error:
            logger.debug("UDP reply to %s failed: %s", client, error)

    def _handle_tcp(self, tcp: socket.socket) -> None:
        try:
            connection, client = tcp.accept()
        except OSError:
            logger.debug("TCP accept failed", exc_info=True)
            return

        # NOTE: connections are served one at a time on the responder's thread, which is
        # enough for a stub resolver that sends one query per connection.
        with connection:
            connection.settimeout(_TCP_READ_TIMEOUT_SECONDS)
            try:
                self._serve_tcp_connection(connection)
            except OSError as error:
                logger.debug("TCP connection from %s ended with an error: %s", client, error)

    def _serve_tcp_connection(self, connection: socket.socket) -> None:
        # RFC 1035 section 4.2.2: each message is preceded by its length in two bytes.
        while True:
            prefix = _receive_exactly(connection, 2)
            if prefix is None:
                return
            wire = _receive_exactly(connection, int.from_bytes(prefix, "big"))
            if wire is None:
                return
            reply = self._reply(wire, "tcp")
            if reply is not None:
                connection.sendall(len(reply).to_bytes(2, "big") + reply)

    def _reply(self, wire: bytes, transport: str) -> bytes | None:
        """Return the wire form of the reply to ``wire``, or None when nothing is sent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            logger.debug("ignored a malformed DNS message of %d bytes", len(wire))
            return None
        if query.flags & dns.flags.QR:
            logger.debug("ignored a DNS response sent to the responder")
            return None
        if query.question:
            question = query.question[0]
            self._record(question.name, question.rdtype, transport)
            if question.name in self._silent:
                return None
        response = self._respond(query)

        # UDP replies that do not fit are truncated with TC set, so the client retries on TCP.
        max_size = 65535
        if transport == "udp":
            max_size = query.payload if query.edns >= 0 else _UDP_PAYLOAD_WITHOUT_EDNS
        return response.to_wire(max_size=max_size, prefer_truncation=True)

    def _record(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, transport: str) -> None:
        received = ReceivedQuery(
            name=name.to_text(omit_final_dot=True).lower(),
            type=dns.rdatatype.to_text(rdtype),
            transport=transport,
        )
        with self._lock:
            self._queries.append(received)

    def _respond(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        if question.name in self._servfail or question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        self._answer(question.name, question.rdtype, response)
        return response

    def _answer(
        self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, response: dns.message.Message
    ) -> None:
        """Fill the answer section and rcode for ``name``, following CNAMEs inside the zone."""
        for _step in range(_MAX_CNAME_CHAIN):
            rrsets = self._zone.get(name)
            if rrsets is None:
                if not self._is_empty_non_terminal(name):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                return
            if rdtype in rrsets:
                response.answer.append(rrsets[rdtype])
                return
            cname = rrsets.get(dns.rdatatype.CNAME)
            if cname is None:
                return
            response.answer.append(cname)
            name = _cname_target(cname)
        response.set_rcode(dns.rcode.SERVFAIL)

    def _is_empty_non_terminal(self, name: dns.name.Name) -> bool:
        """Check whether ``name`` owns no records but has names below it, so it exists (NOERROR)."""
        return any(owner.is_subdomain(name) for owner in self._zone)


def _absolute(name: str) -> dns.name.Name:
    return dns.name.from_text(name.lower())


def _cname_target(cname: dns.rrset.RRset) -> dns.name.Name:
    rdata = cname[0]
    assert isinstance(rdata, dns.rdtypes.ANY.CNAME.CNAME)
    return rdata.target


def _build_zone(records: ZoneRecords) -> _Zone:
    """Parse ``records`` into RRsets. Raises ValueError for a type the responder does not serve."""
    zone: _Zone = {}
    for owner_text, by_type in records.items():
        owner = _absolute(owner_text)
        rrsets: dict[dns.rdatatype.RdataType, dns.rrset.RRset] = {}
        for type_text, datas in by_type.items():
            if type_text.upper() not in SUPPORTED_TYPES:
                raise ValueError(
                    f"record type {type_text} of {owner_text} is not supported. "
                    f"Use one of {', '.join(sorted(SUPPORTED_TYPES))}"
                )
            rrset = dns.rrset.from_text_list(
                owner,
                TTL_SECONDS,
                "IN",
                type_text.upper(),
                list(datas),
                origin=dns.name.root,
                relativize=False,
            )
            rrsets[rrset.rdtype] = rrset
        if dns.rdatatype.CNAME in rrsets and len(rrsets) > 1:
            raise ValueError(
                f"{owner_text} has a CNAME and other records, which RFC 1034 forbids. "
                "Keep either the CNAME or the other records."
            )
        zone[owner] = rrsets
    return zone


def _bind_pair(host: str) -> tuple[socket.socket, socket.socket, int]:
    """Bind a UDP and a listening TCP socket to the same free port on ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _attempt in range(_BIND_ATTEMPTS):
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.bind((host, 0))
        port = int(tcp.getsockname()[1])
        udp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            udp.bind((host, port))
        except OSError:
            # Another program uses this UDP port, so close both and try another free port.
            udp.close()
            tcp.close()
            continue
        tcp.listen()
        return udp, tcp, port
    raise OSError(f"no port on {host} was free for both UDP and TCP after {_BIND_ATTEMPTS} tries")


def _receive_exactly(connection: socket.socket, size: int) -> bytes | None:
    """Return ``size`` bytes from ``connection``, or None when the peer closes first."""
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
