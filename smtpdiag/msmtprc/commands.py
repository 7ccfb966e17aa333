"""The commands msmtp 1.8.23 accepts in its configuration file, and their valid arguments.

Source: src/conf.c ``read_conffile`` of msmtp, the msmtp(1) manual of 1.8.23, and the
messages of the installed ``msmtp --pretend`` for each command with a valid and an invalid
argument.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType

from smtpdiag.msmtprc.model import parse_c_integer, shown_name

AUTH_MECHANISMS = (
    "plain",
    "scram-sha-1",
    "scram-sha-256",
    "cram-md5",
    "digest-md5",
    "gssapi",
    "external",
    "login",
    "ntlm",
    "oauthbearer",
    "xoauth2",
)
"""Mechanism names the ``auth`` command accepts (lower case only). Whether the installed
msmtp supports one is a separate question that ``msmtp --version`` answers."""

Validator = Callable[[str, str], str | None]
"""Check of one command's argument: returns msmtp's message for a bad one, else None."""


def _invalid(command: str, argument: str) -> str:
    return f"invalid argument {shown_name(argument)} for command {command}"


def _any(command: str, argument: str) -> str | None:
    return None


def _required(command: str, argument: str) -> str | None:
    return f"command {command} needs an argument" if argument == "" else None


def _no_argument(command: str, argument: str) -> str | None:
    return f"command {command} does not take an argument" if argument != "" else None


def _one_of(*allowed: str, required: bool = False) -> Validator:
    """Accept exactly the words in ``allowed``; with ``required``, an empty one is missing."""

    def validate(command: str, argument: str) -> str | None:
        if required and argument == "":
            return f"command {command} needs an argument"
        return None if argument in allowed else _invalid(command, argument)

    return validate


def _number(low: int, high: int, *, empty: bool, words: tuple[str, ...] = ()) -> Validator:
    """Accept a C integer from ``low`` to ``high``, the ``words``, and with ``empty`` nothing."""

    def validate(command: str, argument: str) -> str | None:
        if argument == "":
            return None if empty else f"command {command} needs an argument"
        if argument in words:
            return None
        number = parse_c_integer(argument)
        if number is None or not low <= number <= high:
            return _invalid(command, argument)
        return None

    return validate


_DSN_CONDITIONS = frozenset({"failure", "delay", "success"})


def _dsn_notify(command: str, argument: str) -> str | None:
    """Accept off, never, or a comma-separated list without spaces of the conditions."""
    if argument == "":
        return f"command {command} needs an argument"
    if argument in ("off", "never"):
        return None
    conditions = argument.split(",")
    if set(conditions) <= _DSN_CONDITIONS and len(set(conditions)) == len(conditions):
        return None
    return _invalid(command, argument)


_FINGERPRINT = re.compile(r"[0-9A-Fa-f]{2}(?:[: ][0-9A-Fa-f]{2})*")
_FINGERPRINT_BYTES = (16, 20, 32)  # MD5, SHA-1, SHA-256


def _fingerprint(command: str, argument: str) -> str | None:
    """Accept nothing or an MD5, SHA-1 or SHA-256 fingerprint written as 01:23:... ."""
    if argument == "":
        return None
    if _FINGERPRINT.fullmatch(argument) and (len(argument) + 1) // 3 in _FINGERPRINT_BYTES:
        return None
    return _invalid(command, argument)


_SWITCH = _one_of("", "on", "off")
_SYSLOG_FACILITIES = ("LOG_USER", "LOG_MAIL", *(f"LOG_LOCAL{digit}" for digit in range(8)))

COMMANDS: Mapping[str, Validator] = MappingProxyType(
    {
        "host": _required,
        "port": _number(1, 65535, empty=False),
        "source_ip": _any,
        "proxy_host": _any,
        "proxy_port": _number(1, 65535, empty=True),
        "socket": _any,
        "timeout": _number(1, 2**31 - 1, empty=False, words=("off",)),
        "connect_timeout": _number(1, 2**31 - 1, empty=False, words=("off",)),
        "protocol": _one_of("smtp", "lmtp", required=True),
        "domain": _any,
        "auth": _one_of("", "on", "off", *AUTH_MECHANISMS),
        "user": _any,
        "password": _any,
        "passwordeval": _any,
        "ntlmdomain": _any,
        "tls": _SWITCH,
        "tls_starttls": _SWITCH,
        "tls_nostarttls": _no_argument,
        "tls_trust_file": _any,
        "tls_crl_file": _any,
        "tls_fingerprint": _fingerprint,
        "tls_key_file": _any,
        "tls_cert_file": _any,
        "tls_certcheck": _SWITCH,
        "tls_nocertcheck": _no_argument,
        "tls_priorities": _any,
        "tls_host_override": _any,
        "tls_min_dh_prime_bits": _number(1, 2**31 - 1, empty=True),
        "tls_force_sslv3": _any,  # accepted and ignored since msmtp 1.6.0
        "from": _any,
        "allow_from_override": _one_of("on", "off"),
        "auto_from": _SWITCH,
        "maildomain": _any,
        "dsn_notify": _dsn_notify,
        "dsn_return": _one_of("off", "headers", "full", required=True),
        "set_from_header": _one_of("", "auto", "on", "off"),
        "set_date_header": _one_of("", "auto", "off"),
        "set_msgid_header": _one_of("", "auto", "off"),
        "add_missing_from_header": _SWITCH,
        "add_missing_date_header": _SWITCH,
        "remove_bcc_headers": _SWITCH,
        "keepbcc": _SWITCH,
        "undisclosed_recipients": _SWITCH,
        "logfile": _any,
        "logfile_time_format": _any,
        "syslog": _one_of("", "on", "off", *_SYSLOG_FACILITIES),
        "aliases": _any,
        "eval": _required,
    }
)
"""Every command msmtp 1.8.23 accepts besides ``account`` and ``defaults``, with the check
of its argument."""


def argument_problem(command: str, argument: str) -> str | None:
    """Return msmtp's message for an unknown ``command`` or a bad ``argument``, else None."""
    validate = COMMANDS.get(command)
    if validate is None:
        return f"unknown command {shown_name(command)}"
    return validate(command, argument)
