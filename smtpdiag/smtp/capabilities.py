"""EHLO capabilities (RFC 5321 §4.1.1.1) and the SASL mechanisms they advertise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smtpdiag.smtp.reply import Reply

OAUTH_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")


@dataclass(frozen=True)
class Capabilities:
    """Extensions a server advertised in one EHLO reply."""

    keywords: tuple[tuple[str, tuple[str, ...]], ...]
    """Each advertised keyword, upper-cased, with its parameters, in the server's order."""

    @classmethod
    def from_reply(cls, reply: Reply) -> Capabilities:
        """Parse an EHLO reply; the first line is the server's greeting, not a keyword."""
        keywords: dict[str, tuple[str, ...]] = {}
        for line in reply.lines[1:]:
            words = line.split()
            if not words:
                continue
            keyword, *params = words
            # Some servers still send the pre-RFC 4954 form "AUTH=PLAIN LOGIN".
            if keyword.upper().startswith("AUTH="):
                params = [keyword[5:], *params]
                keyword = "AUTH"
            keyword = keyword.upper()
            merged = keywords.get(keyword, ()) + tuple(params)
            keywords[keyword] = tuple(dict.fromkeys(merged))
        return cls(tuple(keywords.items()))

    def has(self, keyword: str) -> bool:
        """Return whether ``keyword`` was advertised."""
        return any(name == keyword.upper() for name, _ in self.keywords)

    def params(self, keyword: str) -> tuple[str, ...]:
        """Return the parameters of ``keyword``, or an empty tuple."""
        for name, params in self.keywords:
            if name == keyword.upper():
                return params
        return ()

    @property
    def auth_mechanisms(self) -> tuple[str, ...]:
        """SASL mechanisms from the AUTH keyword, upper-cased."""
        return tuple(mechanism.upper() for mechanism in self.params("AUTH"))

    @property
    def oauth_mechanisms(self) -> tuple[str, ...]:
        """Advertised OAuth2 mechanisms: XOAUTH2 and OAUTHBEARER."""
        return tuple(m for m in self.auth_mechanisms if m in OAUTH_MECHANISMS)

    @property
    def size_limit(self) -> int | None:
        """Maximum message size in octets from SIZE, or None when not advertised or not a number."""
        params = self.params("SIZE")
        return int(params[0]) if params and params[0].isdigit() else None

    def to_facts(self) -> dict[str, Any]:
        """Return the capabilities as JSON facts."""
        return {
            "keywords": [" ".join((name, *params)) for name, params in self.keywords],
            "auth_mechanisms": list(self.auth_mechanisms),
            "starttls": self.has("STARTTLS"),
            "size": self.size_limit,
            "enhancedstatuscodes": self.has("ENHANCEDSTATUSCODES"),
            "pipelining": self.has("PIPELINING"),
        }
