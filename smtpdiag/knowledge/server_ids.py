"""Server identifiers that providers put in their replies, and the times inside them.

Exchange Online ends most replies with a bracketed server id, optionally followed by the
server's UTC time and a hex correlation id, for example
``[XX0PR00CA0000.namprd00.prod.outlook.com 2023-09-12T20:59:57.214Z 08DBB3C7B1F2A3D4]``.
Older replies carry only the name, in upper case. Gmail ends its replies with
``<session id> - gsmtp``. The time lets an admin find the sign-in in the Entra sign-in logs.
"""

from __future__ import annotations

import re

MICROSOFT_SERVER_ID = re.compile(
    # Bounded repetitions keep the search linear on long hostile input.
    r"\[(?P<server>[A-Z0-9-]{1,63}(?:\.[A-Z0-9-]{1,63}){0,8}\.outlook\.com)"
    r"(?:\s+(?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z))?"
    r"(?:\s+[0-9A-F]+)?\]",
    re.IGNORECASE,
)
"""Bracketed Exchange Online server id with its optional ISO 8601 time and correlation id."""

GOOGLE_SERVER_ID = re.compile(r"(?P<server>\S{1,128}) - gsmtp\s*$")
"""Gmail session id before the ``- gsmtp`` suffix at the end of a reply."""


def server_id(text: str) -> str | None:
    """Return the server or session id inside a Microsoft or Google reply, or None."""
    microsoft = MICROSOFT_SERVER_ID.search(text)
    if microsoft is not None:
        return microsoft.group("server")

    google = GOOGLE_SERVER_ID.search(text)
    if google is not None:
        return google.group("server")
    return None


def server_timestamp(text: str) -> str | None:
    """Return the ISO 8601 UTC time inside Microsoft's bracketed server id, or None.

    The value is returned exactly as sent (``2023-09-12T20:59:57.214Z``); Gmail replies carry
    no time.
    """
    match = MICROSOFT_SERVER_ID.search(text)
    if match is None:
        return None
    return match.group("time")
