"""Access tokens kept until shortly before they expire, in memory and optionally in a file.

The key of a cached token is a SHA-256 digest of everything that selects it (endpoint, client
id, grant, scope and the refresh token), so no key shows a secret in clear. The cache file
contains the access token itself, so it is used only with mode 0600.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from smtpdiag.oauth.model import AccessToken, Grant
from smtpdiag.secrets import Secret

UNSAFE_MODE_BITS = stat.S_IRWXG | stat.S_IRWXO
"""Permission bits that make a cache file readable or writable by others."""


class UnsafeCacheFileError(Exception):
    """The cache file can be read or written by other users; it is left alone."""

    def __init__(self, path: str, mode: int) -> None:
        super().__init__(f"{path} has mode {mode:04o}")
        self.path = path
        self.mode = mode


def cache_key(
    endpoint: str, client_id: str | None, grant: Grant, scope: str | None, secret: Secret | None
) -> str:
    """Return the digest that identifies one token request."""
    digest = hashlib.sha256()
    for part in (endpoint, client_id or "", grant.value, scope or ""):
        digest.update(part.encode("utf-8") + b"\x00")
    if secret is not None:
        digest.update(secret.reveal().encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True)
class _Entry:
    token: AccessToken
    expires_at: datetime


class TokenCache:
    """Access tokens by request key, each used until ``margin`` seconds before it expires."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, key: str, now: datetime, margin: float) -> AccessToken | None:
        """Return the cached token for ``key`` unless it expires within ``margin`` seconds."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry.expires_at - timedelta(seconds=margin) <= now:
            return None
        return entry.token

    def put(self, key: str, token: AccessToken) -> None:
        """Keep ``token`` if its expiry is known; a token without one is never cached."""
        if token.expires_at is None:
            return
        with self._lock:
            self._entries[key] = _Entry(token, token.expires_at)


def load_cache_file(path: str, key: str, now: datetime, margin: float) -> AccessToken | None:
    """Return the token for ``key`` from the cache file if it is still fresh.

    Raises ``UnsafeCacheFileError`` when the file is open to other users.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    if info.st_mode & UNSAFE_MODE_BITS:
        raise UnsafeCacheFileError(path, stat.S_IMODE(info.st_mode))
    document = _read(path)
    entry = document.get(key)
    if not isinstance(entry, dict):
        return None
    try:
        value = str(entry["access_token"])
        expires_at = datetime.fromisoformat(str(entry["expires_at"]))
    except (KeyError, ValueError):
        return None
    if expires_at.tzinfo is None or expires_at - timedelta(seconds=margin) <= now:
        return None
    scopes = entry.get("scopes")
    return AccessToken(
        value=Secret(value, f"cache file {path}"),
        source=f"cache file {path}",
        grant=Grant(entry["grant"]) if entry.get("grant") in {g.value for g in Grant} else None,
        scopes=tuple(str(item) for item in scopes) if isinstance(scopes, list) else None,
        expires_at=expires_at,
    )


def store_cache_file(path: str, key: str, token: AccessToken) -> None:
    """Write ``token`` under ``key`` into the cache file, created with mode 0600.

    Raises ``UnsafeCacheFileError`` when the existing file is open to other users, and
    ``OSError`` when it cannot be written.
    """
    if token.expires_at is None:
        return
    try:
        info = os.stat(path)
    except FileNotFoundError:
        document: dict[str, Any] = {}
    else:
        if info.st_mode & UNSAFE_MODE_BITS:
            raise UnsafeCacheFileError(path, stat.S_IMODE(info.st_mode))
        document = _read(path)
    document[key] = {
        "access_token": token.value.reveal(),
        "expires_at": token.expires_at.isoformat(),
        "grant": token.grant.value if token.grant else None,
        "scopes": list(token.scopes) if token.scopes is not None else None,
    }
    # mkstemp picks an unpredictable name and creates it with O_EXCL and mode 0600, so a
    # symlink planted in a directory that others can write is never followed.
    target = Path(path)
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(document, stream)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _read(path: str) -> dict[str, Any]:
    """Return the cache document, or an empty one when the file is unreadable or not JSON."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
