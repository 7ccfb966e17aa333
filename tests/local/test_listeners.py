"""Tests of the /proc/net readers: LISTEN sockets and local addresses."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from smtpdiag.local.listeners import (
    Family,
    Listener,
    decode_address,
    listeners_on_port,
    parse_fib_trie,
    parse_if_inet6,
    parse_tcp_table,
    read_listeners,
    read_local_addresses,
)

HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode"
)
# Lines in the layout of a little-endian x86-64 kernel.
TCP_LINES = "\n".join(
    [
        HEADER,
        "   0: 0100007F:09C5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
        "       0 1164 1 0000000011919eb3 100 0 0 10 0",
        "   1: 00000000:09C5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
        "       0 1165 1 0000000011919eb3 100 0 0 10 0",
        "   2: 0200000A:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
        "       0 1166 1 0000000011919eb3 100 0 0 10 0",
        "   3: 0100007F:B5E6 0100007F:09C5 06 00000000:00000000 03:00001266 00000000     0 "
        "       0 0 3 00000000933409dd",
        "   4: garbage",
    ]
)
TCP6_LINES = "\n".join(
    [
        HEADER,
        "   0: 00000000000000000000000001000000:09C5 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000     0        0 2001 1 0 100 0 0 10 0",
        "   1: 00000000000000000000000000000000:09C5 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000     0        0 2002 1 0 100 0 0 10 0",
        "   2: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000     0        0 2003 1 0 100 0 0 10 0",
    ]
)


class AddressCase(NamedTuple):
    hex_text: str
    byteorder: str
    expected: str


ADDRESS_CASES = {
    "ipv4 loopback little endian": AddressCase("0100007F", "little", "127.0.0.1"),
    "ipv4 loopback big endian": AddressCase("7F000001", "big", "127.0.0.1"),
    "ipv4 wildcard": AddressCase("00000000", "little", "0.0.0.0"),
    "ipv6 loopback little endian": AddressCase("00000000000000000000000001000000", "little", "::1"),
    "ipv6 wildcard": AddressCase("00000000000000000000000000000000", "little", "::"),
    "ipv4 mapped loopback": AddressCase(
        "0000000000000000FFFF00000100007F", "little", "::ffff:127.0.0.1"
    ),
    "ipv6 documentation address": AddressCase(
        "B80D0120000000000000000001000000", "little", "2001:db8::1"
    ),
}


@pytest.mark.parametrize("case", ADDRESS_CASES.values(), ids=ADDRESS_CASES.keys())
def test_decode_address(case: AddressCase) -> None:
    assert decode_address(case.hex_text, case.byteorder) == case.expected


@pytest.mark.parametrize("text", ["0100007", "", "01000000000000000000000000000000FF"])
def test_decode_address_rejects_lengths(text: str) -> None:
    with pytest.raises(ValueError, match="hexadecimal digits"):
        decode_address(text, "little")


def test_parse_tcp_table_keeps_listen_only() -> None:
    listeners = parse_tcp_table(TCP_LINES, Family.IPV4, "little")
    assert listeners == [
        Listener("127.0.0.1", 2501, Family.IPV4),
        Listener("0.0.0.0", 2501, Family.IPV4),
        Listener("10.0.0.2", 25, Family.IPV4),
    ]


def test_parse_tcp6_table() -> None:
    listeners = parse_tcp_table(TCP6_LINES, Family.IPV6, "little")
    assert listeners == [
        Listener("::1", 2501, Family.IPV6),
        Listener("::", 2501, Family.IPV6),
        Listener("::ffff:127.0.0.1", 80, Family.IPV6),
    ]


class KindCase(NamedTuple):
    listener: Listener
    wildcard: bool
    loopback: bool


KIND_CASES = {
    "ipv4 any": KindCase(Listener("0.0.0.0", 1, Family.IPV4), True, False),
    "ipv6 any": KindCase(Listener("::", 1, Family.IPV6), True, False),
    "ipv4 loopback": KindCase(Listener("127.0.0.1", 1, Family.IPV4), False, True),
    "ipv4 loopback net": KindCase(Listener("127.0.1.1", 1, Family.IPV4), False, True),
    "ipv6 loopback": KindCase(Listener("::1", 1, Family.IPV6), False, True),
    "ipv4 mapped loopback": KindCase(Listener("::ffff:127.0.0.1", 1, Family.IPV6), False, True),
    "network address": KindCase(Listener("192.0.2.2", 1, Family.IPV4), False, False),
}


@pytest.mark.parametrize("case", KIND_CASES.values(), ids=KIND_CASES.keys())
def test_listener_wildcard(case: KindCase) -> None:
    assert case.listener.is_wildcard is case.wildcard


@pytest.mark.parametrize("case", KIND_CASES.values(), ids=KIND_CASES.keys())
def test_listener_loopback(case: KindCase) -> None:
    assert case.listener.is_loopback is case.loopback


def test_listener_endpoint_brackets_ipv6() -> None:
    assert Listener("::1", 2525, Family.IPV6).endpoint == "[::1]:2525"


def test_listeners_on_port() -> None:
    listeners = parse_tcp_table(TCP_LINES, Family.IPV4, "little")
    assert [listener.address for listener in listeners_on_port(listeners, 2501)] == [
        "127.0.0.1",
        "0.0.0.0",
    ]


LITTLE_ENDIAN = pytest.mark.skipif(
    sys.byteorder != "little", reason="the table lines are those of a little-endian kernel"
)


def _proc(tmp_path: Path, files: dict[str, str]) -> str:
    (tmp_path / "net").mkdir()
    for name, text in files.items():
        (tmp_path / "net" / name).write_text(text, encoding="ascii")
    return str(tmp_path)


@LITTLE_ENDIAN
def test_read_listeners_both_tables(tmp_path: Path) -> None:
    proc = _proc(tmp_path, {"tcp": TCP_LINES, "tcp6": TCP6_LINES})
    listeners = read_listeners(proc)
    assert listeners is not None
    assert len(listeners) == 6


@LITTLE_ENDIAN
def test_read_listeners_without_tcp6(tmp_path: Path) -> None:
    proc = _proc(tmp_path, {"tcp": TCP_LINES})
    listeners = read_listeners(proc)
    assert listeners is not None
    assert {listener.family for listener in listeners} == {Family.IPV4}


def test_read_listeners_without_proc(tmp_path: Path) -> None:
    assert read_listeners(str(tmp_path)) is None


FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
        +-- 192.0.2.0/30 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
"""
IF_INET6 = """fe8000000000000000fc00fffe000001 04 40 20 80     eth0
00000000000000000000000000000001 01 80 10 80       lo
20010db8000000000000000000000002 04 40 00 82     eth0
"""


def test_parse_fib_trie_local_addresses() -> None:
    assert parse_fib_trie(FIB_TRIE) == {"127.0.0.0", "127.0.0.1", "192.0.2.2"}


def test_parse_if_inet6_addresses() -> None:
    assert parse_if_inet6(IF_INET6) == {"fe80::fc:ff:fe00:1", "::1", "2001:db8::2"}


def test_read_local_addresses(tmp_path: Path) -> None:
    proc = _proc(tmp_path, {"fib_trie": FIB_TRIE, "if_inet6": IF_INET6})
    addresses = read_local_addresses(proc)
    assert addresses is not None
    assert "192.0.2.2" in addresses
    assert "2001:db8::2" in addresses


def test_read_local_addresses_without_proc(tmp_path: Path) -> None:
    assert read_local_addresses(str(tmp_path)) is None


@pytest.mark.parametrize(
    ("line", "family"),
    [
        ("   0: 0100007F:09DD 00000000:0000 0A", Family.IPV6),
        ("   0: 00000000000000000000000001000000:09DD 00000000:0000 0A", Family.IPV4),
    ],
    ids=["ipv4-address-in-tcp6", "ipv6-address-in-tcp"],
)
def test_parse_tcp_table_skips_foreign_address_length(line: str, family: Family) -> None:
    assert parse_tcp_table(line, family, "little") == []
