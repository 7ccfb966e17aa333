"""Listening TCP sockets and local addresses, read from Linux's ``/proc/net`` tables.

Every parser takes the text of one table and is pure, so tests pass their own lines. The
readers take the ``/proc`` directory as a parameter. In ``tcp`` and ``tcp6`` (Linux
``net/ipv4/tcp_ipv4.c`` and ``net/ipv6/tcp_ipv6.c``) the local address is hexadecimal in the
machine's byte order, 32 bits at a time. The port is hexadecimal in host order, and state
``0A`` is TCP_LISTEN.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger(__name__)

LISTEN_STATE = "0A"
"""TCP_LISTEN in the ``st`` column of ``/proc/net/tcp`` (Linux ``include/net/tcp_states.h``)."""


class Family(StrEnum):
    """Address family of a socket."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"


ADDRESS_DIGITS = {Family.IPV4: 8, Family.IPV6: 32}
"""Hexadecimal digits of a local address in the ``tcp`` and ``tcp6`` tables."""


@dataclass(frozen=True)
class Listener:
    """One TCP socket in the LISTEN state."""

    address: str
    """Local address it is bound to, in standard text form (``0.0.0.0``, ``::1``)."""
    port: int
    family: Family

    @property
    def is_wildcard(self) -> bool:
        """Whether it accepts connections on every address of the machine (0.0.0.0 or ::)."""
        return ipaddress.ip_address(self.address).is_unspecified

    @property
    def is_loopback(self) -> bool:
        """Whether only this machine can connect: 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104."""
        return is_loopback(self.address)

    @property
    def endpoint(self) -> str:
        """``address:port``, with an IPv6 address in brackets."""
        return format_endpoint(self.address, self.port)

    def to_facts(self) -> dict[str, object]:
        """Return the listener as JSON facts."""
        return {"address": self.address, "port": self.port, "family": self.family.value}


def format_endpoint(address: str, port: int) -> str:
    """Join an address and a port, bracketing an IPv6 address: ``[::1]:2525``."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def is_loopback(address: str) -> bool:
    """Return whether ``address`` is a loopback address, IPv4-mapped ones included."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped.is_loopback
    return parsed.is_loopback


def decode_address(hex_text: str, byteorder: str = sys.byteorder) -> str:
    """Decode a ``/proc/net/tcp`` or ``tcp6`` address column to text.

    The kernel prints each 32-bit word of the network-order address as a number in the
    machine's byte order, so ``0100007F`` is 127.0.0.1 on a little-endian machine.

    Raises:
        ValueError: the text is not 8 or 32 hexadecimal digits.
    """
    if len(hex_text) not in (8, 32):
        raise ValueError(f"address of {len(hex_text)} hexadecimal digits: {hex_text!r}")
    order = "<" if byteorder == "little" else ">"
    words = [int(hex_text[start : start + 8], 16) for start in range(0, len(hex_text), 8)]
    packed = struct.pack(f"{order}{len(words)}I", *words)
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed)


def parse_tcp_table(text: str, family: Family, byteorder: str = sys.byteorder) -> list[Listener]:
    """Return the LISTEN sockets of one ``/proc/net/tcp`` or ``tcp6`` table.

    The header line, lines that do not have the expected columns and lines whose address
    length does not fit ``family`` are skipped.
    """
    listeners: list[Listener] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != LISTEN_STATE:
            continue
        address_hex, _, port_hex = fields[1].partition(":")
        if len(address_hex) != ADDRESS_DIGITS[family]:
            logger.debug(
                "skipping a line of the %s table with a %d-digit address: %s",
                family.value,
                len(address_hex),
                line,
            )
            continue
        try:
            address = decode_address(address_hex, byteorder)
            port = int(port_hex, 16)
        except ValueError:
            logger.debug("skipping an unreadable line of the %s table: %s", family.value, line)
            continue
        listeners.append(Listener(address, port, family))
    return listeners


def read_listeners(proc_dir: str = "/proc") -> tuple[Listener, ...] | None:
    """Return the LISTEN sockets of ``proc_dir/net/tcp`` and ``tcp6``.

    A missing ``tcp6`` (a kernel without IPv6) counts as an empty table. Returns None, for
    "could not determine", when ``tcp`` itself cannot be read, as outside Linux.
    """
    tables = ((Family.IPV4, "tcp"), (Family.IPV6, "tcp6"))
    listeners: list[Listener] = []
    for family, name in tables:
        text = _read_text(os.path.join(proc_dir, "net", name))
        if text is None:
            if family is Family.IPV4:
                return None
            continue
        listeners += parse_tcp_table(text, family)
    return tuple(listeners)


def listeners_on_port(listeners: Iterable[Listener], port: int) -> tuple[Listener, ...]:
    """Return the listeners bound to ``port``, in table order, without duplicates."""
    return tuple(dict.fromkeys(listener for listener in listeners if listener.port == port))


def parse_fib_trie(text: str) -> set[str]:
    """Return the IPv4 addresses that ``/proc/net/fib_trie`` marks as local to this machine.

    A leaf line ``|-- 192.0.2.2`` is followed by one line per route, such as
    ``/32 host LOCAL``. The type ``LOCAL`` marks an address assigned to an interface.
    """
    local: set[str] = set()
    leaf: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|-- "):
            leaf = stripped[4:].strip()
        elif stripped.startswith("/") and leaf is not None and stripped.split()[-1] == "LOCAL":
            local.add(leaf)
        elif stripped.startswith("+-- "):
            leaf = None
    return local


def parse_if_inet6(text: str) -> set[str]:
    """Return the IPv6 addresses of ``/proc/net/if_inet6`` (32 hex digits, network order)."""
    local: set[str] = set()
    for line in text.splitlines():
        fields = line.split()
        if not fields or len(fields[0]) != 32:
            continue
        try:
            local.add(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
        except ValueError:
            continue
    return local


def read_local_addresses(proc_dir: str = "/proc") -> set[str] | None:
    """Return the IPv4 and IPv6 addresses assigned to this machine's interfaces.

    Returns None, for "could not determine", when neither table can be read.
    """
    fib_trie = _read_text(os.path.join(proc_dir, "net", "fib_trie"))
    if_inet6 = _read_text(os.path.join(proc_dir, "net", "if_inet6"))
    if fib_trie is None and if_inet6 is None:
        return None
    return parse_fib_trie(fib_trie or "") | parse_if_inet6(if_inet6 or "")


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as table:
            return table.read()
    except OSError as error:
        logger.debug("cannot read %s: %s", path, error)
        return None
