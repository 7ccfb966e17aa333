"""Plain-text pieces shared by the renderers: control-character escaping and short labels."""

from __future__ import annotations

import ipaddress
import json
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

# Control characters kept as they are. Every other one is shown as an escape.
_KEPT_CONTROLS = frozenset("\t\n")

# Lone surrogates in this range come from bytes decoded with errors="surrogateescape".
_SURROGATE_ESCAPE_FIRST = 0xDC80
_SURROGATE_ESCAPE_LAST = 0xDCFF

_NONCHARACTERS = frozenset({0xFFFE, 0xFFFF})

MAX_FACT_LENGTH = 60
"""Characters of one fact value shown in the table and JUnit text before it is cut."""


def _escape_character(character: str) -> str:
    """Return the Python-style escape of one unprintable character."""
    code_point = ord(character)
    if _SURROGATE_ESCAPE_FIRST <= code_point <= _SURROGATE_ESCAPE_LAST:
        return f"\\x{code_point - 0xDC00:02x}"
    if code_point <= 0xFF:
        return f"\\x{code_point:02x}"
    return f"\\u{code_point:04x}"


def _needs_escape(character: str) -> bool:
    """Return whether ``character`` is a control, surrogate or noncharacter to escape."""
    if character in _KEPT_CONTROLS:
        return False
    if ord(character) in _NONCHARACTERS:
        return True
    return unicodedata.category(character) in {"Cc", "Cs"}


def escape_control(text: str) -> str:
    """Replace control characters, lone surrogates and U+FFFE/U+FFFF with visible escapes.

    Tab and line feed stay. The result is safe for a terminal (no escape sequences), is valid
    XML 1.0 character data and encodes to UTF-8. A surrogate from ``surrogateescape`` decoding
    becomes the ``\\xNN`` of its original byte. Backslashes already in ``text`` stay as they
    are, so the escaping is for display and cannot be reversed.
    """
    if text.isprintable():
        return text
    return "".join(
        _escape_character(character) if _needs_escape(character) else character
        for character in text
    )


def one_line(text: str) -> str:
    """Return ``text`` with each run of whitespace, line breaks included, as one space, escaped."""
    return escape_control(" ".join(text.split()))


def format_host_port(host: str, port: object) -> str:
    """Return ``host:port``, with an IPv6 literal in brackets as in a URL."""
    try:
        is_ipv6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_ipv6 = False
    shown_host = f"[{host}]" if is_ipv6 else host
    return f"{shown_host}:{port}" if port is not None else shown_host


def target_name(target: Mapping[str, Any]) -> str:
    """Return the target's configured name, else its host, else its mail domain."""
    for key in ("name", "host", "domain"):
        value = target.get(key)
        if value:
            return str(value)
    return "unnamed target"


def describe_target(target: Mapping[str, Any]) -> str:
    """Return one line naming the target, e.g. ``office365 (smtp.office365.com:587, starttls)``."""
    details: list[str] = []
    if target.get("host"):
        details.append(format_host_port(str(target["host"]), target.get("port")))
    # A log-only run names neither host nor domain and has no TLS mode to show.
    if target.get("tls_mode") and (target.get("host") or target.get("domain")):
        details.append(str(target["tls_mode"]))
    if target.get("insecure"):
        details.append("insecure")

    name = target.get("name") or target.get("domain")
    if name and details:
        return f"{name} ({', '.join(details)})"
    if details:
        return ", ".join(details)
    return target_name(target)


def format_fact_value(value: Any, limit: int = MAX_FACT_LENGTH) -> str:
    """Return a fact value as short text: strings bare, other values as compact JSON."""
    if isinstance(value, str):
        shown = value
    else:
        shown = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    shown = one_line(shown)
    if len(shown) > limit:
        return shown[: limit - 1] + "…"
    return shown


def format_facts(facts: Mapping[str, Any]) -> str:
    """Return ``key=value`` pairs separated by two spaces, each value cut to a short length."""
    return "  ".join(f"{key}={format_fact_value(value)}" for key, value in facts.items())


def evidence_lines(evidence: Iterable[str]) -> list[str]:
    """Return the evidence entries split at line feeds, without a CR before a line feed.

    Only ``\\n`` separates lines: other separators at which ``str.splitlines`` splits, such
    as form feed, stay in the line and are escaped with it.
    """
    lines: list[str] = []
    for entry in evidence:
        parts = entry.split("\n")
        if len(parts) > 1 and parts[-1] == "":
            parts.pop()
        lines.extend(part.removesuffix("\r") for part in parts)
    return lines
