"""Mail providers that smtpdiag has specific knowledge of, and how to recognise them.

A provider is recognised from the submission host name first, then from marks in the reply
text: Google help links and the ``- gsmtp`` suffix, Microsoft's bracketed server ids and
``aka.ms`` links, and the Yandex, Mail.ru and Yahoo domain names. The host wins when both
name a provider, because a relay or proxy may pass on another provider's reply text.
"""

from __future__ import annotations

import re
from enum import StrEnum

from smtpdiag.knowledge.server_ids import GOOGLE_SERVER_ID, MICROSOFT_SERVER_ID


class Provider(StrEnum):
    """Mail provider; the values are the ``provider`` fact and metric label."""

    GOOGLE = "google"
    MICROSOFT = "microsoft"
    YANDEX = "yandex"
    MAILRU = "mailru"
    YAHOO = "yahoo"
    GENERIC = "generic"


# Domain suffixes, matched on whole labels: smtp.gmail.com, smtp.office365.com,
# smtp-mail.outlook.com and *.protection.outlook.com, smtp.yandex.ru and .com, smtp.mail.ru,
# smtp.mail.yahoo.com, and smtp.aol.com (AOL uses the same scope and token service layout
# as Yahoo).
_HOST_SUFFIXES: tuple[tuple[str, Provider], ...] = (
    ("gmail.com", Provider.GOOGLE),
    ("googlemail.com", Provider.GOOGLE),
    ("google.com", Provider.GOOGLE),
    ("office365.com", Provider.MICROSOFT),
    ("outlook.com", Provider.MICROSOFT),
    ("yandex.ru", Provider.YANDEX),
    ("yandex.com", Provider.YANDEX),
    ("yandex.net", Provider.YANDEX),
    ("mail.ru", Provider.MAILRU),
    ("yahoo.com", Provider.YAHOO),
    ("aol.com", Provider.YAHOO),
)

_TEXT_MARKS: tuple[tuple[re.Pattern[str], Provider], ...] = (
    (re.compile(r"support\.google\.com/mail|accounts\.google\.com", re.I), Provider.GOOGLE),
    # OAuth2 scopes in error challenges name the provider whose token they expect.
    (re.compile(r"https://mail\.google\.com/", re.I), Provider.GOOGLE),
    (re.compile(r"https://outlook\.office(?:365)?\.com/", re.I), Provider.MICROSOFT),
    (GOOGLE_SERVER_ID, Provider.GOOGLE),
    (MICROSOFT_SERVER_ID, Provider.MICROSOFT),
    (re.compile(r"\baka\.ms/", re.I), Provider.MICROSOFT),
    (re.compile(r"yandex", re.I), Provider.YANDEX),
    (re.compile(r"\bmail\.ru\b", re.I), Provider.MAILRU),
    (re.compile(r"\byahoo\b|\baol\.com\b", re.I), Provider.YAHOO),
)


def detect_provider(host: str | None = None, reply_text: str | None = None) -> Provider:
    """Return the provider named by ``host`` or, failing that, by marks in ``reply_text``."""
    if host:
        from_host = provider_from_host(host)
        if from_host is not Provider.GENERIC:
            return from_host

    if reply_text:
        return provider_from_text(reply_text)
    return Provider.GENERIC


def provider_from_host(host: str) -> Provider:
    """Return the provider whose domain ``host`` belongs to, or GENERIC."""
    name = _normalise_host(host)
    for suffix, provider in _HOST_SUFFIXES:
        if name == suffix or name.endswith(f".{suffix}"):
            return provider
    return Provider.GENERIC


def provider_from_text(text: str) -> Provider:
    """Return the provider whose marks appear in a reply text, or GENERIC."""
    for pattern, provider in _TEXT_MARKS:
        if pattern.search(text):
            return provider
    return Provider.GENERIC


def _normalise_host(host: str) -> str:
    """Lower-case ``host`` and drop a trailing dot and a ``:port`` suffix."""
    name = host.strip().lower()
    if name.count(":") == 1:
        name = name.split(":", 1)[0]
    return name.rstrip(".")
