"""SASL mechanism names and the separator byte that the bearer-token mechanisms share."""

from __future__ import annotations

from enum import StrEnum


class Mechanism(StrEnum):
    """SASL mechanism name as written in ``AUTH <mechanism>`` and in the EHLO ``AUTH`` line."""

    XOAUTH2 = "XOAUTH2"
    OAUTHBEARER = "OAUTHBEARER"
    PLAIN = "PLAIN"
    LOGIN = "LOGIN"


KVSEP = "\x01"
"""Separator after each key-value pair in XOAUTH2 and OAUTHBEARER (RFC 7628 section 3.1)."""
