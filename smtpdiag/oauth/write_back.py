"""Store a rotated refresh token in the file the old one came from.

RFC 6749 section 6 lets a token endpoint return a new refresh token and revoke the old one.
Microsoft returns a new one on every refresh and does not revoke the old one ("Refresh
tokens in the Microsoft identity platform"). Servers with rotation switched on (PingOne,
WSO2's "Renew refresh token") revoke the old one at once. There, a diagnostic run that drops
the new token breaks the next refresh of the real client.
Writing it back keeps the file current.

The new file replaces the old one atomically (a temporary file in the same directory, then a
rename). A symbolic link is followed, so its target is replaced. The file keeps the old
file's owner read and write bits and never gets more.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from smtpdiag.secrets import Secret


def write_refresh_token(path: str, token: Secret) -> None:
    """Replace the content of ``path`` with ``token`` and a newline.

    Raises ``OSError`` when the file or its directory cannot be written; the old file then
    stays as it was.
    """
    target = Path(path).resolve()
    mode = stat.S_IMODE(os.stat(target).st_mode) & 0o600 or 0o600
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(token.reveal() + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
