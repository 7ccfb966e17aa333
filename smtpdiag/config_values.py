"""Configuration keys: how each value is parsed and validated, whatever its source.

Values from TOML keep their TOML type (a port is an integer, ``insecure`` a boolean); values
from the environment and the command line arrive as text and are converted. A parser raises
``ValueError`` with a message that reads after "Invalid KEY VALUE from SOURCE: ".
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from smtpdiag.logs.options import MAX_MIN_ATTEMPTS, MAX_WINDOW_MINUTES

MAX_SECONDS = 3600.0
"""Largest timeout or deadline accepted; a diagnostic run that needs longer has hung."""

# RFC 1123 host name labels; underscores are accepted because internal names use them.
_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


def parse_port(value: object, *, allow_zero: bool = False) -> int:
    """Parse a TCP port number; with ``allow_zero``, 0 too (a listener's "any free port")."""
    lowest = 0 if allow_zero else 1
    expected = f"expected a whole number from {lowest} to 65535"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(expected)
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not lowest <= int(text) <= 65535:
        raise ValueError(expected)
    return int(text)


def parse_seconds(value: object) -> float:
    """Parse a positive number of seconds, at most ``MAX_SECONDS``."""
    return _parse_seconds_in_range(value, MAX_SECONDS, allow_zero=False, example="10 or 2.5")


def _parse_seconds_in_range(
    value: object, maximum: float, *, allow_zero: bool, example: str
) -> float:
    """Parse a finite number of seconds up to ``maximum``, above 0 or from 0 inclusive."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("expected a number of seconds")
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"expected a number of seconds, such as {example}") from None
    in_range = 0 <= seconds <= maximum if allow_zero else 0 < seconds <= maximum
    if not math.isfinite(seconds) or not in_range:
        lower = "from 0 to" if allow_zero else "above 0 and at most"
        raise ValueError(f"expected a number of seconds {lower} {maximum:g}")
    return seconds


def parse_bool(value: object) -> bool:
    """Parse true or false; text accepts 1/0, yes/no and on/off as well."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def parse_tls_mode(value: object) -> str:
    """Parse starttls, implicit or auto."""
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if text not in {"starttls", "implicit", "auto"}:
        raise ValueError("expected starttls, implicit or auto")
    return text


def parse_text(value: object) -> str:
    """Parse a non-empty string without control characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise ValueError("control characters such as line breaks are not allowed")
    return value.strip()


def parse_path(value: object) -> str:
    """Parse a file or directory path and expand a leading ``~`` or ``~USER``.

    ``~`` is $HOME, or the home directory in the password database when HOME is unset
    (``os.path.expanduser``). A relative path stays relative, so it names a file in the
    working directory, not in the directory of the configuration file.
    """
    return os.path.expanduser(parse_text(value))


def parse_host(value: object) -> str:
    """Parse a host name or an IP address literal, without a port."""
    text = parse_text(value)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if ":" in text:
        raise ValueError(
            "a host contains no port and an IPv6 address has no brackets here; "
            "put the port in the port setting or write [IPV6]:PORT on the command line"
        )
    if not _HOST_NAME.fullmatch(text):
        raise ValueError("expected a host name such as smtp.example.com or an IP address")
    return text


def parse_server_name(value: object) -> str:
    """Parse a server name for SNI: a host name, never an IP address (RFC 6066 §3)."""
    text = parse_text(value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        raise ValueError("SNI carries host names only; use --no-sni to send none")
    if not _HOST_NAME.fullmatch(text):
        raise ValueError("expected a host name such as smtp.example.com")
    return text.rstrip(".")


def parse_days(value: object) -> int:
    """Parse a whole number of days from 0 to 3650."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected a whole number of days")
    text = str(value).strip()
    if not text.isdigit() or int(text) > 3650:
        raise ValueError("expected a whole number of days from 0 to 3650")
    return int(text)


def parse_ehlo_name(value: object) -> str:
    """Parse an EHLO argument: a domain or an address literal such as ``[192.0.2.1]``."""
    text = parse_text(value)
    literal = re.fullmatch(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]", text)
    if literal:
        try:
            ipaddress.ip_address(literal.group(1))
        except ValueError:
            raise ValueError("the address literal contains no valid IP address") from None
        return text
    if not _HOST_NAME.fullmatch(text):
        raise ValueError(
            "expected a domain such as client.example.com or an address literal such as "
            "[192.0.2.1] (RFC 5321 §4.1.1.1)"
        )
    return text


def parse_mechanism(value: object) -> str:
    """Parse an OAuth2 SASL mechanism name."""
    text = str(value).strip().upper() if isinstance(value, str) else ""
    if text not in {"XOAUTH2", "OAUTHBEARER"}:
        raise ValueError("expected XOAUTH2 or OAUTHBEARER")
    return text


def parse_challenge_answer(value: object) -> str:
    """Parse the reply to an error challenge: auto, empty or kvsep."""
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if text not in {"auto", "empty", "kvsep"}:
        raise ValueError("expected auto, empty or kvsep")
    return text


def parse_address(value: object) -> str:
    """Parse a mailbox address for MAIL FROM or RCPT TO, without angle brackets."""
    text = parse_text(value)
    if not re.fullmatch(r"[^\s<>@]+@[^\s<>@]+", text):
        raise ValueError("expected a mailbox address such as alerts@example.com")
    return text


def parse_nameservers(value: object) -> tuple[str, ...]:
    """Parse resolver IP addresses: a TOML list of strings, or comma-separated text."""
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise ValueError("expected a list of IP address strings")
        items = [item.strip() for item in value]
    elif isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    else:
        raise ValueError("expected IP addresses")
    servers = tuple(item for item in items if item)
    if not servers:
        raise ValueError("expected one or more resolver IP addresses")
    for server in servers:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise ValueError(f"{server!r} is not an IP address") from None
    return servers


MAX_CLOCK_SECONDS = 86400.0
"""Largest clock offset threshold accepted: one day."""


def parse_ntp_servers(value: object) -> tuple[str, ...]:
    """Parse NTP server host names or IP addresses: a TOML list, or comma-separated text."""
    servers = _split_list(
        value, "host name or IP address strings", "NTP server host names or IP addresses"
    )
    return tuple(_parse_ntp_server(server) for server in servers)


def _split_list(value: object, item_words: str, words: str) -> tuple[str, ...]:
    """Return the non-empty items of a TOML list of strings or of comma-separated text.

    ``item_words`` names the list's items and ``words`` the whole value in error messages.
    """
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise ValueError(f"expected a list of {item_words}")
        items = [item.strip() for item in value]
    elif isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    else:
        raise ValueError(f"expected {words}")
    found = tuple(item for item in items if item)
    if not found:
        raise ValueError(f"expected one or more {words}")
    return found


def _parse_ntp_server(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if ":" in text:
        raise ValueError(
            f"{text!r} is not a host name or IP address: an NTP server takes no port and "
            "no brackets; set the port with --ntp-port (ntp_port)"
        )
    return parse_host(text)


def parse_clock_seconds(value: object) -> float:
    """Parse a clock offset threshold: seconds above 0 and at most ``MAX_CLOCK_SECONDS``."""
    return _parse_seconds_in_range(value, MAX_CLOCK_SECONDS, allow_zero=False, example="5 or 60")


PROVIDER_NAMES = ("google", "microsoft", "yandex", "mailru", "yahoo", "generic")
"""Names of the provider profiles, as ``--provider`` takes them."""

_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")


def parse_provider(value: object) -> str:
    """Parse a provider profile name."""
    text = parse_text(value).lower()
    if text not in PROVIDER_NAMES:
        raise ValueError(f"expected one of {', '.join(PROVIDER_NAMES)}")
    return text


def parse_tenant(value: object) -> str:
    """Parse a Microsoft tenant: an id, a domain, organizations, common or consumers."""
    text = parse_text(value)
    if not _TENANT.fullmatch(text):
        raise ValueError(
            "expected a tenant id (GUID), a domain, organizations, common or consumers"
        )
    return text


def parse_grant(value: object) -> str:
    """Parse an OAuth2 grant type name."""
    text = parse_text(value).lower().replace("-", "_")
    if text not in {"refresh_token", "client_credentials"}:
        raise ValueError("expected refresh_token or client_credentials")
    return text


def parse_endpoint(value: object) -> str:
    """Parse a token or introspection endpoint URL: https, or http on loopback only."""
    from smtpdiag.oauth.http import parse_endpoint_url

    return parse_endpoint_url(parse_text(value)).url


def parse_scope(value: object) -> str:
    """Parse space-separated OAuth2 scopes (RFC 6749 section 3.3); commas also separate."""
    text = " ".join(parse_text(value).replace(",", " ").split())
    allowed = all(0x21 <= ord(char) <= 0x7E and char not in '"\\' for char in text.replace(" ", ""))
    if not text or not allowed:
        raise ValueError("expected ASCII scopes separated by spaces, such as mail:smtp")
    return text


def parse_margin(value: object) -> float:
    """Parse the token refresh margin: seconds from 0 to ``MAX_SECONDS``."""
    return _parse_seconds_in_range(value, MAX_SECONDS, allow_zero=True, example="300")


def parse_relay(value: object) -> str:
    """Parse the local relay: ``HOST:PORT`` (``[IPV6]:PORT``) or ``postfix``.

    ``postfix`` reads the address from Postfix's ``relayhost``. Returns ``postfix`` or the
    address with the host normalised, IPv6 in brackets.
    """
    text = parse_text(value)
    if text.lower() == "postfix":
        return "postfix"
    bracketed = re.fullmatch(r"\[([^\]]*)\]:([^:]*)", text)
    if bracketed:
        host, port = bracketed.group(1), bracketed.group(2)
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        raise ValueError("expected HOST:PORT such as 127.0.0.1:2525, [::1]:2525, or postfix")
    host = parse_host(host)
    number = parse_port(port)
    return f"[{host}]:{number}" if ":" in host else f"{host}:{number}"


def parse_log_files(value: object) -> tuple[str, ...]:
    """Parse file paths: a TOML list of strings, or comma-separated text; ``~`` is expanded."""
    paths = _split_list(value, "file path strings", "log file paths")
    return tuple(parse_path(path) for path in paths)


def parse_window_minutes(value: object) -> float:
    """Parse a window length in minutes: above 0 and at most ``MAX_WINDOW_MINUTES``."""
    minutes = _parse_number(value, "a number of minutes, such as 15")
    if not 0 < minutes <= MAX_WINDOW_MINUTES:
        raise ValueError(f"expected a number of minutes above 0 and at most {MAX_WINDOW_MINUTES:g}")
    return minutes


def parse_percent(value: object) -> float:
    """Parse a percentage from 0 to 100, such as 2 or 0.5."""
    percent = _parse_number(value, "a percentage, such as 2 or 0.5")
    if not 0 <= percent <= 100:
        raise ValueError("expected a percentage from 0 to 100")
    return percent


def parse_min_attempts(value: object) -> int:
    """Parse a whole number of attempts from 1 to ``MAX_MIN_ATTEMPTS``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected a whole number of attempts")
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_MIN_ATTEMPTS:
        raise ValueError(f"expected a whole number of attempts from 1 to {MAX_MIN_ATTEMPTS}")
    return int(text)


def parse_timezone(value: object) -> str:
    """Parse an IANA time zone name such as Europe/Berlin or UTC."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    text = parse_text(value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone name such as Europe/Berlin or UTC") from None
    return text


def parse_time_format(value: object) -> str | None:
    """Parse a strftime format with at least one % directive, or none for no timestamp."""
    text = parse_text(value)
    if text.lower() == "none":
        return None
    if "%" not in text:
        raise ValueError("expected a strftime format such as %b %d %H:%M:%S, or none")
    from smtpdiag.logs.msmtp import time_format_problem

    problem = time_format_problem(text)
    if problem is not None:
        raise ValueError(f"expected a strftime format such as %b %d %H:%M:%S, or none; {problem}")
    return text


def _parse_number(value: object, example: str) -> float:
    """Parse a finite number from a TOML number or text."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected {example}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected {example}") from None
    if not math.isfinite(number):
        raise ValueError(f"expected {example}")
    return number


@dataclass(frozen=True)
class Key:
    """One configuration key."""

    parse: Callable[[object], Any]
    expected: str
    """The kind of value the key takes, as a noun phrase for error messages."""


KEYS: Mapping[str, Key] = {
    "host": Key(parse_host, "the submission server's host name or IP address"),
    "port": Key(parse_port, "a port number from 1 to 65535"),
    "tls_mode": Key(parse_tls_mode, "starttls, implicit or auto"),
    "domain": Key(parse_host, "the mail domain whose SRV records name the submission host"),
    "ca_file": Key(parse_path, "the path of a PEM file of CA certificates"),
    "insecure": Key(parse_bool, "true or false"),
    "sni": Key(parse_server_name, "the host name to send as SNI"),
    "no_sni": Key(parse_bool, "true or false"),
    "cert_warning_days": Key(parse_days, "a whole number of days from 0 to 3650"),
    "cert_critical_days": Key(parse_days, "a whole number of days from 0 to 3650"),
    "ehlo_name": Key(parse_ehlo_name, "a domain or an address literal such as [192.0.2.1]"),
    "user": Key(parse_text, "the mailbox user for AUTH"),
    "access_token_file": Key(parse_path, "the path of the file that contains the access token"),
    "access_token_command": Key(parse_text, "a shell command that prints the access token"),
    "token_command": Key(parse_text, "a shell command that prints the access token"),
    "provider": Key(parse_provider, f"one of {', '.join(PROVIDER_NAMES)}"),
    "tenant": Key(parse_tenant, "a tenant id, a domain, organizations, common or consumers"),
    "token_endpoint": Key(parse_endpoint, "an https:// URL (http:// only on loopback)"),
    "grant": Key(parse_grant, "refresh_token or client_credentials"),
    "client_id": Key(parse_text, "the OAuth2 client (application) id"),
    "client_secret_file": Key(parse_path, "the path of the file that contains the client secret"),
    "refresh_token_file": Key(parse_path, "the path of the file that contains the refresh token"),
    "write_back_refresh_token": Key(parse_bool, "true or false"),
    "scope": Key(parse_scope, "scopes separated by spaces"),
    "token_ca_file": Key(parse_path, "the path of a PEM file of CA certificates"),
    "introspect": Key(parse_bool, "true or false"),
    "introspection_endpoint": Key(parse_endpoint, "an https:// URL (http:// only on loopback)"),
    "token_cache_file": Key(parse_path, "the path of a file for the cached access token"),
    "token_refresh_margin": Key(parse_margin, f"a number of seconds from 0 to {MAX_SECONDS:g}"),
    "auth_mechanism": Key(parse_mechanism, "XOAUTH2 or OAUTHBEARER"),
    "challenge_answer": Key(
        parse_challenge_answer,
        "auto (empty line for XOAUTH2, 0x01 for OAUTHBEARER), empty or kvsep",
    ),
    "send_test": Key(parse_bool, "true or false"),
    "mail_from": Key(parse_address, "the sender address of the test message"),
    "rcpt_to": Key(parse_address, "the recipient address of the test message"),
    "timeout": Key(parse_seconds, f"a number of seconds above 0 and at most {MAX_SECONDS:g}"),
    "check_deadline": Key(parse_seconds, f"a number of seconds up to {MAX_SECONDS:g}"),
    "run_deadline": Key(parse_seconds, f"a number of seconds up to {MAX_SECONDS:g}"),
    "dns_nameservers": Key(parse_nameservers, "resolver IP addresses, comma-separated"),
    "dns_port": Key(parse_port, "a port number from 1 to 65535"),
    "ntp_servers": Key(parse_ntp_servers, "NTP server host names or IP addresses, comma-separated"),
    "ntp_port": Key(parse_port, "a port number from 1 to 65535"),
    "clock_warning_seconds": Key(
        parse_clock_seconds, f"a number of seconds above 0 and at most {MAX_CLOCK_SECONDS:g}"
    ),
    "clock_critical_seconds": Key(
        parse_clock_seconds, f"a number of seconds above 0 and at most {MAX_CLOCK_SECONDS:g}"
    ),
    "log_files": Key(
        parse_log_files, "a list of mail log file paths (comma-separated in the environment)"
    ),
    "log_window_minutes": Key(
        parse_window_minutes, f"a number of minutes above 0 and at most {MAX_WINDOW_MINUTES:g}"
    ),
    "failure_threshold_percent": Key(parse_percent, "a percentage from 0 to 100, such as 2"),
    "failure_min_attempts": Key(
        parse_min_attempts, f"a whole number of attempts from 1 to {MAX_MIN_ATTEMPTS}"
    ),
    "log_timezone": Key(parse_timezone, "an IANA time zone name such as Europe/Berlin or UTC"),
    "msmtp_time_format": Key(
        parse_time_format, "msmtp's logfile_time_format, such as %b %d %H:%M:%S, or none"
    ),
    "msmtprc": Key(parse_path, "the path of an msmtp configuration file, or auto"),
    "msmtp_account": Key(parse_text, "the name of an account in the msmtp configuration file"),
    "msmtp_program": Key(parse_text, "the msmtp program to ask for its version, such as msmtp"),
    "relay": Key(parse_relay, "HOST:PORT of the local relay, such as 127.0.0.1:2525, or postfix"),
    "postfix_config_dir": Key(parse_path, "the path of Postfix's configuration directory"),
    "exim_config": Key(parse_path, "the path of Exim's configuration file"),
    "secret_files": Key(
        parse_log_files,
        "a list of paths of files that hold secrets (comma-separated in the environment)",
    ),
}
