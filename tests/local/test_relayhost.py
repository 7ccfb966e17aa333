"""Tests of the Postfix relayhost and Exim smarthost readers."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from system_programs import require_program

from smtpdiag.local.relayhost import (
    RelayAddress,
    RelayLookup,
    RelaySource,
    display_address,
    exim_smarthosts,
    parse_debian_hosts,
    parse_debian_smarthost,
    parse_exim_host,
    parse_exim_routes,
    parse_main_cf,
    parse_option_address,
    parse_postfix_destination,
    postfix_relayhost,
    split_exim_list,
    split_postfix_destinations,
)


class DestinationCase(NamedTuple):
    entry: str
    expected: RelayAddress | str


POSTFIX_CASES = {
    "bracketed address with port": DestinationCase(
        "[127.0.0.1]:2525", RelayAddress("127.0.0.1", 2525, "[127.0.0.1]:2525")
    ),
    "bracketed name without port": DestinationCase(
        "[relay.example]", RelayAddress("relay.example", 25, "[relay.example]")
    ),
    "name with port looks up mx": DestinationCase(
        "localhost:2525", RelayAddress("localhost", 2525, "localhost:2525", mx_lookup=True)
    ),
    "bare name": DestinationCase(
        "relay.example", RelayAddress("relay.example", 25, "relay.example", mx_lookup=True)
    ),
    "ipv6 in brackets": DestinationCase("[::1]:2525", RelayAddress("::1", 2525, "[::1]:2525")),
    "ipv6 with prefix": DestinationCase(
        "[ipv6:2001:db8::1]:587", RelayAddress("2001:db8::1", 587, "[ipv6:2001:db8::1]:587")
    ),
    "service name port": DestinationCase(
        "[127.0.0.1]:smtp", RelayAddress("127.0.0.1", 25, "[127.0.0.1]:smtp")
    ),
    "ipv6 without brackets": DestinationCase(
        "::1", "::1: an IPv6 address must be written in brackets, as [::1]"
    ),
    "port out of range": DestinationCase(
        "[127.0.0.1]:70000",
        "[127.0.0.1]:70000: port '70000' is neither a number from 1 to 65535 nor a TCP service",
    ),
    "unbalanced bracket": DestinationCase(
        "[127.0.0.1:25", "[127.0.0.1:25: unbalanced brackets or more than one port"
    ),
    "unexpanded parameter": DestinationCase(
        "$relay_host", "$relay_host: contains a $parameter that only postconf -x expands"
    ),
}


@pytest.mark.parametrize("case", POSTFIX_CASES.values(), ids=POSTFIX_CASES.keys())
def test_parse_postfix_destination(case: DestinationCase) -> None:
    assert parse_postfix_destination(case.entry) == case.expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[127.0.0.1]:2525", ["[127.0.0.1]:2525"]),
        ("[127.0.0.1]:2525, [::1]:2525", ["[127.0.0.1]:2525", "[::1]:2525"]),
        ("a.example b.example,c.example", ["a.example", "b.example", "c.example"]),
        ("", []),
        ("  ", []),
    ],
    ids=["one", "comma and blank", "blanks and commas", "empty", "blank"],
)
def test_split_postfix_destinations(value: str, expected: list[str]) -> None:
    assert split_postfix_destinations(value) == expected


MAIN_CF_CASES = {
    "simple": ("relayhost = [127.0.0.1]:2525\n", "[127.0.0.1]:2525"),
    "last wins": ("relayhost = a.example\nrelayhost = [b.example]\n", "[b.example]"),
    "continuation": (
        "relayhost = [127.0.0.1]:2525,\n    [::1]:2525\nmyhostname = x\n",
        "[127.0.0.1]:2525, [::1]:2525",
    ),
    "comment between continuation": (
        "relayhost = [127.0.0.1]:2525,\n# a comment\n\n  [::1]:2525\n",
        "[127.0.0.1]:2525, [::1]:2525",
    ),
    "commented out": ("#relayhost = [127.0.0.1]:2525\n", None),
    "empty value": ("relayhost =\n", ""),
    "other parameter with prefix": ("relayhost_extra = x\n", None),
    "no spaces": ("relayhost=[127.0.0.1]:25\n", "[127.0.0.1]:25"),
}


@pytest.mark.parametrize(("text", "expected"), MAIN_CF_CASES.values(), ids=MAIN_CF_CASES.keys())
def test_parse_main_cf(text: str, expected: str | None) -> None:
    assert parse_main_cf(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:2525", RelayAddress("127.0.0.1", 2525, "127.0.0.1:2525")),
        ("[::1]:2525", RelayAddress("::1", 2525, "[::1]:2525")),
        ("localhost:2525", RelayAddress("localhost", 2525, "localhost:2525")),
    ],
    ids=["ipv4", "ipv6", "name"],
)
def test_parse_option_address(text: str, expected: RelayAddress) -> None:
    assert parse_option_address(text) == expected


def test_parse_option_address_needs_port() -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_option_address("localhost")


# Exim -----------------------------------------------------------------------------------

EXIM_LIST_CASES = {
    "colon list": ("a.example : b.example", ["a.example", "b.example"]),
    "doubled colon is a port": ("relay.example::2525", ["relay.example:2525"]),
    "changed separator": ("<; a.example:2525 ; [::1]:2525", ["a.example:2525", "[::1]:2525"]),
    "slash separator": ("</ [10.1.1.1]:1225 / [::1]:1226", ["[10.1.1.1]:1225", "[::1]:1226"]),
    "doubled ipv6 colons": ("2001::db8::::1", ["2001:db8::1"]),
    "empty items dropped": ("a.example : : b.example", ["a.example", "b.example"]),
}


@pytest.mark.parametrize(("text", "expected"), EXIM_LIST_CASES.values(), ids=EXIM_LIST_CASES.keys())
def test_split_exim_list(text: str, expected: list[str]) -> None:
    assert split_exim_list(text) == expected


EXIM_HOST_CASES = {
    "name": ("relay.example", RelayAddress("relay.example", 25, "relay.example")),
    "name and port": (
        "relay.example:2525",
        RelayAddress("relay.example", 2525, "relay.example:2525"),
    ),
    "bracketed ipv4": ("[127.0.0.1]:2525", RelayAddress("127.0.0.1", 2525, "[127.0.0.1]:2525")),
    "bracketed ipv6": ("[::1]:2525", RelayAddress("::1", 2525, "[::1]:2525")),
    "bare ipv6": ("2001:db8::1", RelayAddress("2001:db8::1", 25, "2001:db8::1")),
    "mx suffix": (
        "relay.example/MX:2525",
        RelayAddress("relay.example", 2525, "relay.example/MX:2525", mx_lookup=True),
    ),
    "expansion": (
        "${lookup{$domain}lsearch{/etc/smarthosts}}",
        "${lookup{$domain}lsearch{/etc/smarthosts}}: contains an Exim expansion, which "
        "smtpdiag does not evaluate",
    ),
    "named port": ("relay.example:smtp", "relay.example:smtp: port 'smtp' is not a number"),
}


@pytest.mark.parametrize(("item", "expected"), EXIM_HOST_CASES.values(), ids=EXIM_HOST_CASES.keys())
def test_parse_exim_host(item: str, expected: RelayAddress | str) -> None:
    assert parse_exim_host(item) == expected


DEBIAN_CONF = """# /etc/exim4/update-exim4.conf.conf
dc_eximconfig_configtype='smarthost'
dc_local_interfaces='127.0.0.1 ; ::1'
dc_smarthost='127.0.0.1::2525'
dc_use_split_config='false'
"""


def test_parse_debian_smarthost() -> None:
    assert parse_debian_smarthost(DEBIAN_CONF) == "127.0.0.1::2525"


def test_parse_debian_smarthost_unset() -> None:
    assert parse_debian_smarthost("dc_eximconfig_configtype='internet'\n") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1::2525", [RelayAddress("127.0.0.1", 2525, "127.0.0.1:2525")]),
        ("relay.example", [RelayAddress("relay.example", 25, "relay.example")]),
        (
            "[2001::db8::::1]::587; relay.example::587",
            [
                RelayAddress("2001:db8::1", 587, "[2001:db8::1]:587"),
                RelayAddress("relay.example", 587, "relay.example:587"),
            ],
        ),
        ("2001::db8::::1", [RelayAddress("2001:db8::1", 25, "2001:db8::1")]),
    ],
    ids=["ipv4 and port", "name", "two hosts", "doubled ipv6"],
)
def test_parse_debian_hosts(value: str, expected: list[RelayAddress]) -> None:
    assert parse_debian_hosts(value) == (expected, [])


EXIM_CONFIG = """\
RELAY_HOST = 127.0.0.1::2525
primary_hostname = host.example

begin routers

smarthost:
  driver = manualroute
  domains = ! +local_domains
  transport = remote_smtp
  route_list = * RELAY_HOST \\
               byname

dnslookup:
  driver = dnslookup
  route_data = 192.0.2.9

begin transports

remote_smtp:
  driver = smtp
"""


def test_parse_exim_routes_with_macro_and_continuation() -> None:
    routes = parse_exim_routes(EXIM_CONFIG)
    assert [(route.router, route.option, route.hosts) for route in routes] == [
        ("smarthost", "route_list", "127.0.0.1::2525")
    ]


def test_parse_exim_routes_line_number() -> None:
    assert parse_exim_routes(EXIM_CONFIG)[0].line == 10


def test_parse_exim_routes_quoted_list_and_route_data() -> None:
    text = (
        "begin routers\n"
        "a:\n  driver = manualroute\n"
        '  route_list = *.example "<; [::1]:2525 ; [127.0.0.1]:2525" byname; '
        "other.example b.example\n"
        "b:\n  driver = manualroute\n  route_data = c.example::587 randomize\n"
    )
    routes = parse_exim_routes(text)
    assert [route.hosts for route in routes] == [
        "<; [::1]:2525 ; [127.0.0.1]:2525",
        "b.example",
        "c.example::587",
    ]


def test_exim_smarthosts_config(tmp_path: Path) -> None:
    path = tmp_path / "exim4.conf"
    path.write_text(EXIM_CONFIG, encoding="utf-8")
    lookup = exim_smarthosts(str(path))
    assert lookup.source is RelaySource.EXIM
    assert lookup.addresses == (RelayAddress("127.0.0.1", 2525, "127.0.0.1:2525"),)


def test_exim_smarthosts_debian(tmp_path: Path) -> None:
    path = tmp_path / "update-exim4.conf.conf"
    path.write_text(DEBIAN_CONF, encoding="utf-8")
    lookup = exim_smarthosts(str(path))
    assert lookup.source is RelaySource.DEBIAN_EXIM
    assert lookup.addresses == (RelayAddress("127.0.0.1", 2525, "127.0.0.1:2525"),)


def test_exim_smarthosts_none(tmp_path: Path) -> None:
    path = tmp_path / "exim4.conf"
    path.write_text("begin routers\ndnslookup:\n  driver = dnslookup\n", encoding="utf-8")
    lookup = exim_smarthosts(str(path))
    assert (lookup.value, lookup.addresses, lookup.problems) == ("", (), ())


def test_exim_smarthosts_missing_file(tmp_path: Path) -> None:
    lookup = exim_smarthosts(str(tmp_path / "absent.conf"))
    assert lookup.error is not None
    assert "No such file or directory" in lookup.error


# Postfix with postconf ---------------------------------------------------------------------


def _main_cf(tmp_path: Path, text: str) -> str:
    # Without both names postconf may look up this machine's name in DNS.
    names = "myhostname = host.example\nmydomain = example\n"
    (tmp_path / "main.cf").write_text(names + text, encoding="utf-8")
    (tmp_path / "master.cf").write_text("", encoding="utf-8")
    # postconf 3.7 paused about 2 s here for a main.cf changed within the last seconds, so
    # the files get an older modification time.
    an_hour_ago = time.time() - 3600
    for name in ("main.cf", "master.cf"):
        os.utime(tmp_path / name, (an_hour_ago, an_hour_ago))
    return str(tmp_path)


def test_postconf_reads_relayhost(tmp_path: Path) -> None:
    postconf = require_program("postconf")
    config_dir = _main_cf(tmp_path, "relay_port = 2525\nrelayhost = [127.0.0.1]:$relay_port\n")
    lookup = postfix_relayhost(config_dir, 5.0, postconf)
    assert lookup.source is RelaySource.POSTCONF
    assert lookup.addresses == (RelayAddress("127.0.0.1", 2525, "[127.0.0.1]:2525"),)


def test_postconf_empty_relayhost(tmp_path: Path) -> None:
    postconf = require_program("postconf")
    lookup = postfix_relayhost(_main_cf(tmp_path, "myhostname = host.example\n"), 5.0, postconf)
    assert (lookup.source, lookup.value, lookup.addresses) == (RelaySource.POSTCONF, "", ())


def test_missing_postconf_falls_back_to_main_cf(tmp_path: Path) -> None:
    config_dir = _main_cf(tmp_path, "relayhost = [127.0.0.1]:2525,\n  [::1]:2525\n")
    lookup = postfix_relayhost(config_dir, 5.0, str(tmp_path / "no-postconf"))
    assert lookup.source is RelaySource.MAIN_CF
    assert [address.endpoint for address in lookup.addresses] == [
        "127.0.0.1:2525",
        "[::1]:2525",
    ]


def test_failing_postconf_falls_back_to_main_cf(tmp_path: Path) -> None:
    script = tmp_path / "postconf"
    script.write_text("#!/bin/sh\necho 'postconf: fatal: broken' >&2\nexit 1\n", "utf-8")
    os.chmod(script, 0o755)
    config_dir = _main_cf(tmp_path, "relayhost = [127.0.0.1]:2525\n")
    lookup = postfix_relayhost(config_dir, 5.0, str(script))
    assert lookup.source is RelaySource.MAIN_CF
    assert "postconf: fatal: broken" in lookup.notes[0]


def test_postconf_timeout_falls_back_to_main_cf(tmp_path: Path) -> None:
    script = tmp_path / "postconf"
    script.write_text("#!/bin/sh\nexec sleep 5\n", "utf-8")
    os.chmod(script, 0o755)
    config_dir = _main_cf(tmp_path, "relayhost = [127.0.0.1]:2525\n")
    lookup = postfix_relayhost(config_dir, 0.05, str(script))
    assert "no answer within 0.05 s" in lookup.notes[0]


def test_no_postconf_and_no_main_cf(tmp_path: Path) -> None:
    lookup = postfix_relayhost(str(tmp_path), 5.0, str(tmp_path / "no-postconf"))
    assert lookup.error is not None
    assert "main.cf cannot be read" in lookup.error


def test_exim_ipv6_with_single_colons_is_invalid() -> None:
    addresses, problems = parse_debian_hosts("[::1]::2525")
    assert addresses == []
    assert "[:1] is not an IP address" in problems[0]


def test_display_address_mixed_form() -> None:
    assert display_address("::ffff:7f00:1") == "::ffff:127.0.0.1"


def test_exim_hosts_override(tmp_path: Path) -> None:
    path = tmp_path / "exim4.conf"
    path.write_text(
        "begin routers\nsmarthost:\n  driver = manualroute\n  transport = relay_smtp\n"
        "  route_list = * relay.example\n"
        "begin transports\nrelay_smtp:\n  driver = smtp\n  hosts = 127.0.0.1\n"
        "  hosts_override\n  port = 2525\n",
        encoding="utf-8",
    )
    lookup = exim_smarthosts(str(path))
    assert lookup.addresses == (RelayAddress("127.0.0.1", 2525, "127.0.0.1"),)


def test_exim_transport_named_in_route_options(tmp_path: Path) -> None:
    path = tmp_path / "exim4.conf"
    path.write_text(
        "begin routers\nsmarthost:\n  driver = manualroute\n  transport = remote_smtp\n"
        "  route_list = * 127.0.0.1 byname relay_smtp\n"
        "begin transports\nremote_smtp:\n  driver = smtp\n"
        "relay_smtp:\n  driver = smtp\n  port = 2525\n",
        encoding="utf-8",
    )
    assert exim_smarthosts(str(path)).addresses[0].port == 2525


def test_exim_undefined_transport_noted(tmp_path: Path) -> None:
    path = tmp_path / "exim4.conf"
    path.write_text(
        "begin routers\nsmarthost:\n  driver = manualroute\n  transport = relay_smtp\n"
        "  route_list = * 127.0.0.1\n",
        encoding="utf-8",
    )
    lookup = exim_smarthosts(str(path))
    assert "transport relay_smtp is not defined in this file" in lookup.notes[0]


def test_exim_include_listed(tmp_path: Path) -> None:
    path = tmp_path / "exim4.conf"
    path.write_text(".include_if_exists /etc/exim4/local.conf\n", encoding="utf-8")
    assert exim_smarthosts(str(path)).unread_includes == ("/etc/exim4/local.conf",)


def test_debian_smarthost_single_colon_port_is_invalid() -> None:
    addresses, problems = parse_debian_hosts("127.0.0.1:39327")
    assert addresses == [RelayAddress("127.0.0.1", 25, "127.0.0.1")]
    assert len(problems) == 1
    assert problems[0].startswith("39327: a host named only by digits")


# Files that are not regular files ---------------------------------------------------------

HANG_GUARD_SECONDS = 10.0
"""Time after which a reader still blocked on a FIFO counts as hung; not a speed limit."""


def read_without_hanging(call: Callable[[], RelayLookup], fifo: Path) -> RelayLookup:
    """Run ``call`` in a thread; fail the test, after releasing it, if it blocks on ``fifo``."""
    results: list[RelayLookup] = []
    worker = threading.Thread(target=lambda: results.append(call()), daemon=True)
    worker.start()
    worker.join(HANG_GUARD_SECONDS)
    if worker.is_alive():
        # Opening the write end and closing it gives the blocked reader end of file.
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(HANG_GUARD_SECONDS)
        pytest.fail(f"reading {fifo} blocked")
    return results[0]


def test_exim_config_fifo_rejected(tmp_path: Path) -> None:
    fifo = tmp_path / "exim4.conf"
    os.mkfifo(fifo)
    lookup = read_without_hanging(lambda: exim_smarthosts(str(fifo)), fifo)
    assert lookup.error == f"cannot read {fifo}: a FIFO, not a regular file"


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/dev/null", "a character device"), ("/", "a directory")],
    ids=["device", "directory"],
)
def test_exim_config_not_regular_rejected(path: str, kind: str) -> None:
    lookup = exim_smarthosts(path)
    assert lookup.error is not None
    assert kind in lookup.error


def _recording_postconf(tmp_path: Path) -> tuple[str, Path]:
    """Write a postconf stand-in that leaves a marker file when it runs."""
    marker = tmp_path / "postconf-ran"
    script = tmp_path / "postconf"
    script.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n", "utf-8")
    os.chmod(script, 0o755)
    return str(script), marker


def test_main_cf_fifo_rejected_before_postconf(tmp_path: Path) -> None:
    config_dir = tmp_path / "postfix"
    config_dir.mkdir()
    fifo = config_dir / "main.cf"
    os.mkfifo(fifo)
    postconf, marker = _recording_postconf(tmp_path)
    lookup = read_without_hanging(lambda: postfix_relayhost(str(config_dir), 5.0, postconf), fifo)
    assert lookup.error == f"{fifo} cannot be read: a FIFO, not a regular file"
    assert not marker.exists()


def test_main_cf_device_rejected_before_postconf(tmp_path: Path) -> None:
    config_dir = tmp_path / "postfix"
    config_dir.mkdir()
    (config_dir / "main.cf").symlink_to("/dev/null")
    postconf, marker = _recording_postconf(tmp_path)
    lookup = postfix_relayhost(str(config_dir), 5.0, postconf)
    assert lookup.error is not None
    assert "a character device, not a regular file" in lookup.error
    assert not marker.exists()


def test_missing_main_cf_in_config_dir_skips_postconf(tmp_path: Path) -> None:
    postconf, marker = _recording_postconf(tmp_path)
    lookup = postfix_relayhost(str(tmp_path), 5.0, postconf)
    assert lookup.error == f"{tmp_path / 'main.cf'} cannot be read: No such file or directory"
    assert not marker.exists()
