"""The relay address that Postfix (``relayhost``) or Exim (a smarthost route) hands mail to.

The parsers are pure and table-tested. ``postfix_relayhost`` and ``exim_smarthosts`` read the
configuration and return a ``RelayLookup``. It keeps every entry that smtpdiag could not read
as a problem, so that a check reports the entry instead of failing.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import logging
import os
import re
import socket
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from smtpdiag.local.listeners import format_endpoint

logger = logging.getLogger(__name__)

SMTP_PORT = 25
"""Port that Postfix's and Exim's SMTP clients use when an entry names none (service
``smtp``). An Exim smtp transport's ``port`` option changes it and is read. NOTE: Postfix's
``smtp_tcp_port`` can change it too, and is not read."""

DEFAULT_POSTFIX_CONFIG_DIR = "/etc/postfix"

MAX_CONFIG_BYTES = 4 << 20
"""Largest configuration file read: 4 MiB, far above any real main.cf or Exim configuration."""


class RelaySource(StrEnum):
    """Source of a relay address."""

    OPTION = "option"
    """The ``relay`` setting (``--relay HOST:PORT``)."""
    POSTCONF = "postconf"
    MAIN_CF = "main.cf"
    EXIM = "exim"
    """A manualroute router of an Exim configuration file."""
    DEBIAN_EXIM = "update-exim4.conf.conf"
    """``dc_smarthost`` of Debian's exim4-config."""


@dataclass(frozen=True)
class RelayAddress:
    """One destination that the MTA relays mail to."""

    host: str
    """Host name or IP address literal, without brackets."""
    port: int
    text: str
    """The entry as the configuration writes it."""
    mx_lookup: bool = False
    """Whether the MTA looks up MX records of ``host`` instead of its addresses."""

    @property
    def endpoint(self) -> str:
        """``host:port``, with an IPv6 address in brackets."""
        return format_endpoint(self.host, self.port)


@dataclass(frozen=True)
class RelayLookup:
    """Relay setting read from one configuration source."""

    source: RelaySource
    origin: str
    """File or command that gave the value, such as ``postconf -c /etc/postfix``."""
    value: str | None = None
    """Raw setting; empty when set to nothing, None when the source was not read or has none."""
    addresses: tuple[RelayAddress, ...] = ()
    problems: tuple[str, ...] = ()
    """Entries that could not be read, each with the reason."""
    notes: tuple[str, ...] = ()
    """Fallbacks taken, such as reading main.cf after postconf failed."""
    error: str | None = None
    """Reason no value could be read at all, or None when the source was read."""
    unread_includes: tuple[str, ...] = ()
    """Files that an Exim configuration includes, which smtpdiag does not read."""


def parse_option_address(text: str) -> RelayAddress:
    """Parse the ``relay`` setting, ``HOST:PORT`` or ``[IPV6]:PORT``, already validated.

    Raises:
        ValueError: the text has no port.
    """
    bracketed = re.fullmatch(r"\[([^\]]+)\]:(\d+)", text)
    if bracketed is not None:
        host = display_address(bracketed[1])
        return RelayAddress(host, int(bracketed[2]), format_endpoint(host, int(bracketed[2])))
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit() or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return RelayAddress(host, int(port), text)


def display_address(host: str) -> str:
    """Write an IPv4-mapped IPv6 address in its mixed form, ``::ffff:127.0.0.1``.

    Python's ``ipaddress`` (3.11) prints ``::ffff:7f00:1``, which hides the IPv4 address that
    the configuration names. Every other host is returned unchanged.
    """
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return f"::ffff:{parsed.ipv4_mapped}"
    return host


# Postfix --------------------------------------------------------------------------------


def split_postfix_destinations(value: str) -> list[str]:
    """Split a ``relayhost`` value into its destinations (commas or blanks, Postfix 3.5+)."""
    return [entry for entry in re.split(r"[\s,]+", value.strip()) if entry]


def parse_postfix_destination(entry: str) -> RelayAddress | str:
    """Parse one Postfix next-hop: ``[host]:port``, ``[host]``, ``host:port`` or ``host``.

    Brackets turn off the MX lookup (Postfix ``postconf(5)``, relayhost). An IPv6 address is
    written in brackets, optionally with the ``ipv6:`` prefix of an address literal. The port
    may be a service name from ``/etc/services``. Returns the reason as text for an entry
    that cannot be read.
    """
    if entry.startswith("["):
        found = re.fullmatch(r"\[([^\]]+)\](?::([^:]+))?", entry)
        if found is None:
            return f"{entry}: unbalanced brackets or more than one port"
        host = found[1].removeprefix("ipv6:").removeprefix("IPv6:")
        port_text, mx_lookup = found[2], False
    else:
        host, _, port_text = entry.partition(":")
        if ":" in port_text:
            return f"{entry}: an IPv6 address must be written in brackets, as [{entry}]"
        mx_lookup = True
    if "$" in host or (port_text and "$" in port_text):
        return f"{entry}: contains a $parameter that only postconf -x expands"
    port = _service_port(port_text) if port_text else SMTP_PORT
    if port is None:
        return f"{entry}: port {port_text!r} is neither a number from 1 to 65535 nor a TCP service"
    return RelayAddress(host, port, entry, mx_lookup=mx_lookup)


def _service_port(text: str) -> int | None:
    if text.isdigit():
        port = int(text)
        return port if 0 < port < 65536 else None
    try:
        return socket.getservbyname(text, "tcp")
    except OSError:
        return None


def parse_main_cf(text: str, parameter: str = "relayhost") -> str | None:
    """Return the last value of ``parameter`` in a main.cf text, or None when it is not set.

    A logical line starts in column one and lines that start with blanks continue it.
    Blank lines and lines whose first non-blank character is ``#`` are ignored (Postfix
    ``postconf(5)``, syntax). Returns "" for ``relayhost =``.
    """
    value: str | None = None
    for logical in _logical_lines(text):
        name, equals, rest = logical.partition("=")
        if equals and name.strip() == parameter:
            value = rest.strip()
    return value


def _logical_lines(text: str) -> list[str]:
    logical: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0].isspace() and logical:
            logical[-1] += " " + stripped
        else:
            logical.append(stripped)
    return logical


def postfix_relayhost(
    config_dir: str | None, timeout: float, postconf: str = "postconf"
) -> RelayLookup:
    """Read Postfix's ``relayhost``: ``postconf -x -h``, else the last line in main.cf.

    ``postconf -x`` expands ``$parameter`` references, so it runs first. When it is not
    installed, fails or takes longer than ``timeout`` seconds, main.cf is read as text.
    A main.cf that is not a regular file is reported at once, without running postconf,
    because postconf would wait on a FIFO until it is killed.
    """
    command = [postconf, *(["-c", config_dir] if config_dir else []), "-x", "-h", "relayhost"]
    origin = " ".join(command)
    main_cf = os.path.join(config_dir or DEFAULT_POSTFIX_CONFIG_DIR, "main.cf")
    problem = _main_cf_problem(main_cf, required=config_dir is not None)
    if problem is not None:
        return RelayLookup(
            RelaySource.MAIN_CF, main_cf, error=f"{main_cf} cannot be read: {problem}"
        )
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        failure = f"{origin} failed: {_error_text(error)}"
    else:
        if completed.returncode == 0:
            return _postfix_lookup(RelaySource.POSTCONF, origin, completed.stdout.strip())
        status = completed.returncode
        failure = f"{origin} exited with status {status}: {_last_line(completed.stderr)}"
    logger.info("%s; reading main.cf instead", failure)
    return _main_cf_relayhost(config_dir or DEFAULT_POSTFIX_CONFIG_DIR, failure)


def _main_cf_problem(path: str, required: bool) -> str | None:
    """Return why main.cf cannot be read, or None when it is a regular file.

    A missing file counts only when ``required``: without ``-c``, postconf reads its
    compiled-in configuration directory, which may differ from ``/etc/postfix``.
    """
    try:
        _check_regular(path, os.stat(path).st_mode)
    except FileNotFoundError as error:
        return _error_text(error) if required else None
    except OSError as error:
        return _error_text(error)
    return None


def _main_cf_relayhost(config_dir: str, failure: str) -> RelayLookup:
    path = os.path.join(config_dir, "main.cf")
    note = f"{failure}; read {path} instead"
    try:
        text = _read_config(path)
    except OSError as error:
        reason = f"{failure}, and {path} cannot be read: {_error_text(error)}"
        return RelayLookup(RelaySource.MAIN_CF, path, notes=(note,), error=reason)
    lookup = _postfix_lookup(RelaySource.MAIN_CF, path, parse_main_cf(text) or "")
    return RelayLookup(
        lookup.source, lookup.origin, lookup.value, lookup.addresses, lookup.problems, (note,)
    )


def _postfix_lookup(source: RelaySource, origin: str, value: str) -> RelayLookup:
    addresses: list[RelayAddress] = []
    problems: list[str] = []
    for entry in split_postfix_destinations(value):
        parsed = parse_postfix_destination(entry)
        if isinstance(parsed, RelayAddress):
            addresses.append(parsed)
        else:
            problems.append(parsed)
    return RelayLookup(source, origin, value, tuple(addresses), tuple(problems))


# Exim -----------------------------------------------------------------------------------


def split_exim_list(text: str) -> list[str]:
    """Split an Exim list into its items.

    The separator is ``:`` unless the list starts with ``<`` and another character; a doubled
    separator stands for the character itself (Exim specification, "List construction").
    Items are stripped of blanks, and empty items are dropped.
    """
    text = text.strip()
    separator = ":"
    if len(text) >= 2 and text[0] == "<" and not text[1].isspace() and not text[1].isalnum():
        separator, text = text[1], text[2:]
    items: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == separator and text[index + 1 : index + 2] == separator:
            current.append(separator)
            index += 2
            continue
        if char == separator:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def parse_exim_host(item: str, default_port: int = SMTP_PORT) -> RelayAddress | str:
    """Parse one item of an Exim host list, its separators already undoubled.

    Forms (Exim specification, "Host list" of the manualroute router, and the ``PH/06`` entry
    of Exim 4.x NewStuff): ``host``, ``host:port``, ``[address]:port``, an unbracketed IPv6
    address without a port, and a ``/MX`` suffix before the port for an MX lookup. An item
    without a port gets ``default_port``, the ``port`` of the router's transport. Returns the
    reason as text for an item that cannot be read.
    """
    if "$" in item:
        return f"{item}: contains an Exim expansion, which smtpdiag does not evaluate"
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", item)
    if bracketed is not None:
        if not is_ip_address(bracketed[1]):
            return (
                f"{item}: [{bracketed[1]}] is not an IP address. In a list separated by ':' "
                "each colon of an IPv6 address is doubled, as in [::::1]::2525"
            )
        port_text = bracketed[2]
        return RelayAddress(bracketed[1], int(port_text) if port_text else default_port, item)
    if item.count(":") > 1:
        # An IPv6 address; a port after it needs brackets.
        if not is_ip_address(item):
            return f"{item}: neither host:port nor an IPv6 address"
        return RelayAddress(item, default_port, item)
    host, _, port_text = item.partition(":")
    mx_lookup = host.lower().endswith("/mx")
    host = host[:-3] if mx_lookup else host
    if port_text and not port_text.isdigit():
        return f"{item}: port {port_text!r} is not a number"
    port = int(port_text) if port_text else default_port
    if not 0 < port < 65536 or not host:
        return f"{item}: expected host, host:port or [address]:port"
    if item.startswith("<"):
        return (
            f"{item}: a list that changes its separator (<;) must be written without blanks "
            "or in double quotes, because the host list ends at the first blank"
        )
    if not _HOST_NAME.fullmatch(host):
        return f"{item}: {host!r} is neither a host name nor an IP address"
    if host.isdigit():
        # 'HOST:2525' with one colon is two list items, HOST and 2525, and Exim would look up
        # a host named 2525. smtpdiag never connects to such a name.
        return (
            f"{item}: a host named only by digits is a port written after a single colon; "
            "Exim reads HOST:PORT as two hosts, so write HOST::PORT"
        )
    return RelayAddress(host, port, item, mx_lookup=mx_lookup)


_HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?")
"""A host name or IPv4 address: letters, digits, hyphens, underscores and dots."""


def is_ip_address(text: str) -> bool:
    """Tell whether ``text`` is an IPv4 or IPv6 address literal, without brackets."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_debian_smarthost(text: str) -> str | None:
    """Return ``dc_smarthost`` of an update-exim4.conf.conf text, or None when unset.

    The file is a shell fragment of ``name='value'`` lines; the last assignment counts.
    """
    value: str | None = None
    for line in text.splitlines():
        found = re.fullmatch(r"\s*dc_smarthost=(?:'([^']*)'|\"([^\"]*)\"|(\S*))\s*", line)
        if found is not None:
            value = next((group for group in found.groups() if group is not None), "")
    return value


def parse_debian_hosts(value: str) -> tuple[list[RelayAddress], list[str]]:
    """Parse ``dc_smarthost``: hosts separated by ``;``, ports after ``::``.

    Debian's exim4-config documents colons doubled inside each host, as in ``host::587``
    and ``[2001::db8::1]::587`` (its description of ``dc_smarthost``). A single colon separates
    hosts of an Exim list, which ``split_exim_list`` also accepts.
    """
    addresses: list[RelayAddress] = []
    problems: list[str] = []
    for part in value.split(";"):
        for item in split_exim_list(part):
            _add_host(parse_exim_host(item), addresses, problems)
    return addresses, problems


ROUTE_OPTIONS = frozenset(
    {"randomize", "no_randomize", "byname", "bydns", "ipv4_prefer", "ipv4_only"}
)
"""Option words that may follow the host list of a route item (Exim ``routers/manualroute.c``).
Any other word must name a transport, or Exim defers the message."""

_TRUE_WORDS = frozenset({"true", "yes"})


@dataclass(frozen=True)
class EximRoute:
    """The host part of one manualroute router's ``route_list`` or ``route_data``."""

    router: str
    option: str
    """``route_list`` or ``route_data``."""
    hosts: str
    """Host list text, macros expanded, quotes removed."""
    line: int
    options: tuple[str, ...] = ()
    """Words after the host list: lookup options such as ``byname``, or a transport name."""
    transport: str = ""
    """The router's ``transport`` option with macros expanded, or empty when it is not set."""


@dataclass(frozen=True)
class EximConfig:
    """Parts of an Exim configuration file that smtpdiag reads."""

    routes: tuple[EximRoute, ...]
    transports: Mapping[str, Mapping[str, str]]
    """Options of each transport by name. A boolean option written alone is ``true``, and
    with the ``no_`` prefix ``false``."""
    includes: tuple[str, ...] = ()
    """File names of the ``.include`` and ``.include_if_exists`` lines, which are not read."""


def parse_exim_routes(text: str) -> list[EximRoute]:
    """Return the host lists of every manualroute router of an Exim configuration text."""
    return list(parse_exim_config(text).routes)


def parse_exim_config(text: str) -> EximConfig:
    """Read the manualroute routers and the transports of an Exim configuration text.

    Lines ending in a backslash are joined with the next (leading blanks dropped), ``#``
    lines are comments, and macros defined as ``NAME = value`` (a name starting with an
    upper-case letter) are substituted. ``route_list`` contains ``pattern hosts [options]``
    items separated by ``;``, and ``route_data`` contains ``hosts [options]``. Exim ends the
    host list at the first blank unless it is in double quotes (``parse_route_item`` in
    ``routers/manualroute.c``).

    NOTE: ``.include`` files are listed but not read, and ``.ifdef`` blocks and macros
    defined on the command line are not evaluated, so a Debian split configuration must be
    passed as the generated file (``/var/lib/exim4/config.autogenerated``) or as
    update-exim4.conf.conf.
    """
    macros: dict[str, str] = {}
    blocks: dict[str, dict[str, dict[str, tuple[str, int]]]] = {"routers": {}, "transports": {}}
    includes: list[str] = []
    section, name = "main", ""
    for number, line in _exim_logical_lines(text):
        directive, _, argument = line.partition(" ")
        if directive in (".include", ".include_if_exists"):
            includes.append(argument.strip())
            continue
        if line.lower().startswith("begin "):
            section, name = line.split(None, 1)[1].strip().lower(), ""
            continue
        # Exim's option names are lower case, so an upper-case name defines a macro.
        macro = re.fullmatch(r"([A-Z][A-Za-z0-9_]*)\s*=\s*(.*)", line)
        if macro is not None:
            macros[macro[1]] = _expand_macros(macro[2], macros)
            continue
        if section not in blocks:
            continue
        header = re.fullmatch(r"([A-Za-z0-9_]+)\s*:\s*", line)
        if header is not None:
            name = header[1]
            blocks[section][name] = {}
        elif name:
            _add_exim_option(blocks[section][name], line, number, macros)
    transports = {
        transport: {option: value for option, (value, _) in options.items()}
        for transport, options in blocks["transports"].items()
    }
    return EximConfig(tuple(_manualroute_routes(blocks["routers"])), transports, tuple(includes))


def _add_exim_option(
    options: dict[str, tuple[str, int]], line: str, number: int, macros: dict[str, str]
) -> None:
    option, equals, value = line.partition("=")
    key = option.strip().lower()
    if equals:
        options[key] = (_config_string(_expand_macros(value.strip(), macros)), number)
    elif re.fullmatch(r"[a-z][a-z0-9_]*", key):
        # A boolean option written alone is true, and with the no_ prefix false.
        if key.startswith("no_"):
            options[key[3:]] = ("false", number)
        else:
            options[key] = ("true", number)


def _config_string(value: str) -> str:
    """Remove the double quotes that enclose a whole option value, as Exim's reader does."""
    quoted = re.fullmatch(r'"((?:[^"\\]|\\.)*)"', value)
    if quoted is None:
        return value
    return re.sub(r"\\(.)", r"\1", quoted[1])


def _exim_logical_lines(text: str) -> list[tuple[int, str]]:
    logical: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if pending is None and (not line or line.startswith("#")):
            continue
        start = number
        if pending is not None:
            start, joined = pending
            line = joined + line
        if line.endswith("\\"):
            pending = (start, line[:-1])
            continue
        pending = None
        logical.append((start, line))
    if pending is not None:
        logical.append(pending)
    return logical


def _expand_macros(value: str, macros: dict[str, str]) -> str:
    # Longer names first, so that a macro whose name starts with another's is not cut.
    for name in sorted(macros, key=len, reverse=True):
        # A callable replacement keeps backslashes in the macro's value literal.
        replacement = macros[name]
        value = re.sub(rf"\b{name}\b", functools.partial(_literal, replacement), value)
    return value


def _literal(text: str, _: re.Match[str]) -> str:
    return text


def _manualroute_routes(routers: dict[str, dict[str, tuple[str, int]]]) -> list[EximRoute]:
    routes: list[EximRoute] = []
    for router, options in routers.items():
        driver = options.get("driver", ("", 0))[0]
        if driver != "manualroute":
            continue
        transport = options.get("transport", ("", 0))[0]
        if "route_data" in options:
            value, line = options["route_data"]
            hosts, words = _split_route_item(value)
            routes.append(EximRoute(router, "route_data", hosts, line, words, transport))
        if "route_list" in options:
            value, line = options["route_list"]
            for hosts, words in _route_list_items(value):
                routes.append(EximRoute(router, "route_list", hosts, line, words, transport))
    return routes


def _route_list_items(value: str) -> list[tuple[str, tuple[str, ...]]]:
    """Return the host list and option words of each ``pattern hosts [options]`` item.

    Items are separated by ``;`` (a doubled ``;`` is a literal one), except inside double
    quotes, which enclose a host list with its own separator. Items without hosts are left
    out.
    """
    items: list[str] = []
    current: list[str] = []
    quoted = False
    index = 0
    while index < len(value):
        char = value[index]
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted and value[index + 1 : index + 2] == ";":
            index += 1
        elif char == ";" and not quoted:
            items.append("".join(current))
            current = []
            index += 1
            continue
        current.append(char)
        index += 1
    items.append("".join(current))
    routes: list[tuple[str, tuple[str, ...]]] = []
    for item in items:
        _, _, rest = item.strip().partition(" ")
        if rest.strip():
            routes.append(_split_route_item(rest))
    return routes


def _split_route_item(text: str) -> tuple[str, tuple[str, ...]]:
    """Split ``hosts [options]`` into the host list and the option words.

    The host list ends at the first blank unless it is enclosed in double quotes, as in
    Exim's ``string_dequote``.
    """
    text = text.strip()
    if text.startswith('"'):
        closing = text.find('"', 1)
        if closing < 0:
            return text[1:], ()
        return text[1:closing], tuple(text[closing + 1 :].split())
    words = text.split()
    return (words[0], tuple(words[1:])) if words else ("", ())


def exim_smarthosts(path: str) -> RelayLookup:
    """Read the smarthosts of an Exim configuration file or Debian's update-exim4.conf.conf.

    A file with a ``dc_smarthost=`` line is read as Debian's; any other as an Exim
    configuration, whose manualroute routers name the hosts.
    """
    try:
        text = _read_config(path)
    except OSError as error:
        reason = f"cannot read {path}: {_error_text(error)}"
        return RelayLookup(RelaySource.EXIM, path, error=reason)
    debian = parse_debian_smarthost(text)
    if debian is not None:
        addresses, problems = parse_debian_hosts(debian)
        return RelayLookup(RelaySource.DEBIAN_EXIM, path, debian, tuple(addresses), tuple(problems))
    return _exim_lookup(path, parse_exim_config(text))


def _exim_lookup(path: str, config: EximConfig) -> RelayLookup:
    addresses: list[RelayAddress] = []
    problems: list[str] = []
    notes: list[str] = []
    for route in config.routes:
        where = f"{path} line {route.line} ({route.router} {route.option})"
        transport, unknown = _route_transport(route, config)
        if unknown:
            problems.append(
                f"{where}: {unknown!r} follows the host list {route.hosts!r} but is neither a "
                "routing option nor a transport name, so Exim defers the mail. The host list "
                "ends at the first blank: write it without blanks (<;127.0.0.1:2525;[::1]:2525) "
                "or in double quotes"
            )
            continue
        hosts, port = _transport_hosts(route, transport, config, where, notes)
        for item in split_exim_list(hosts):
            parsed = parse_exim_host(item, port)
            if isinstance(parsed, str):
                parsed = f"{where}: {parsed}"
            _add_host(parsed, addresses, problems)
    value = "; ".join(f"{route.router}: {route.hosts}" for route in config.routes)
    return RelayLookup(
        RelaySource.EXIM,
        path,
        value,
        tuple(addresses),
        tuple(problems),
        tuple(notes),
        unread_includes=config.includes,
    )


def _route_transport(route: EximRoute, config: EximConfig) -> tuple[str, str | None]:
    """Return the transport a route uses and the first option word Exim would reject.

    A transport name among the option words overrides the router's ``transport``. A word
    is only taken as unknown when the file includes no other file that could define it.
    """
    transport = route.transport
    for word in route.options:
        if word in config.transports:
            transport = word
        elif word not in ROUTE_OPTIONS and not config.includes:
            return transport, word
    return transport, None


def _transport_hosts(
    route: EximRoute, transport: str, config: EximConfig, where: str, notes: list[str]
) -> tuple[str, int]:
    """Return the host list and default port that the route's transport connects to.

    An smtp transport's ``port`` applies to hosts without a port, and with
    ``hosts_override`` its ``hosts`` replace the router's (Exim specification, the smtp
    transport).
    """
    options = config.transports.get(transport)
    if options is None:
        if transport:
            notes.append(
                f"{where}: transport {transport} is not defined in this file, so hosts "
                f"without a port are taken to use port {SMTP_PORT}"
            )
        return route.hosts, SMTP_PORT
    hosts = route.hosts
    if options.get("hosts_override") in _TRUE_WORDS and options.get("hosts"):
        hosts = options["hosts"]
        notes.append(f"{where}: transport {transport} sets hosts_override, so it uses {hosts}")
    port_text = options.get("port", "")
    port = _service_port(port_text) if port_text else SMTP_PORT
    if port is None:
        notes.append(
            f"{where}: port {port_text!r} of transport {transport} is not a number or a TCP "
            f"service, so hosts without a port are taken to use port {SMTP_PORT}"
        )
        port = SMTP_PORT
    return hosts, port


def _add_host(
    parsed: RelayAddress | str, addresses: list[RelayAddress], problems: list[str]
) -> None:
    if isinstance(parsed, RelayAddress):
        if parsed not in addresses:
            addresses.append(parsed)
    else:
        problems.append(parsed)


# Shared helpers ---------------------------------------------------------------------------


def _read_config(path: str) -> str:
    """Read a regular file of at most ``MAX_CONFIG_BYTES``; raises ``OSError`` otherwise.

    The file is opened without blocking and checked before it is read, because opening or
    reading a FIFO or a device could wait for a writer until the check's deadline.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(descriptor, "rb") as config:
        _check_regular(path, os.fstat(descriptor).st_mode)
        data = config.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise OSError(f"larger than {MAX_CONFIG_BYTES >> 20} MiB, so not a configuration file")
    return data.decode("utf-8", errors="replace")


def _check_regular(path: str, mode: int) -> None:
    """Raise ``OSError`` naming the file type when ``mode`` is not a regular file's."""
    if stat.S_ISREG(mode):
        return
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    raise OSError(errno.EINVAL, f"{kind}, not a regular file", path)


def _error_text(error: BaseException) -> str:
    if isinstance(error, subprocess.TimeoutExpired):
        return f"no answer within {error.timeout:g} s"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
