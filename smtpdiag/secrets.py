"""Secret values (tokens, passwords) and the places they are read from.

A ``Secret`` never shows its value in ``repr`` or ``str``; code that needs the value calls
``reveal()`` at the point of use. Every secret registers itself with the central redactor.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from smtpdiag.errors import SecretError
from smtpdiag.readiness import wait_readable
from smtpdiag.redact import REDACTOR
from smtpdiag.sasl.tokens import looks_like_token


class Secret:
    """A secret string with a masked representation."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source
        """Where the value came from, e.g. ``file /run/token``; never the value itself."""
        REDACTOR.register(value)

    def reveal(self) -> str:
        """Return the secret value; use only where the value goes on the wire."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(source={self.source!r}, length={len(self._value)})"

    def __str__(self) -> str:
        return "[secret]"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)


def _strip_one_line(text: str, origin: str, name: str) -> str:
    """Return ``text`` without its trailing newline; reject empty values."""
    value = text.rstrip("\r\n")
    if not value.strip():
        raise SecretError(
            f"The {name} from {origin} is empty.",
            f"Put the current {name} there, or check what writes it.",
        )
    return value


MAX_SECRET_BYTES = 65536
"""Maximum size of a secret file; access tokens are a few kilobytes, refresh tokens less."""

PIPE_READ_SECONDS = 5.0
"""Time allowed for a pipe, such as a shell's ``<(pass show …)``, to deliver a secret."""


def secret_from_file(path: str | os.PathLike[str], name: str = "access token") -> Secret:
    """Read the secret called ``name`` in messages from a file, without one trailing newline.

    Regular files and pipes are read up to ``MAX_SECRET_BYTES``, a pipe for at most
    ``PIPE_READ_SECONDS``. Devices and sockets are rejected, so ``/dev/zero`` cannot exhaust
    memory and a pipe without a writer cannot hang the run.
    """
    origin = f"file {path}"
    label = f"The {name} file {path}"
    try:
        raw = _read_bounded(Path(path))
    except FileNotFoundError:
        if _looks_like_secret(str(path)):
            # The value was probably the secret itself, so it is not repeated.
            REDACTOR.register(str(path))
            raise SecretError(
                f"The {name} file option names no existing file, and its value looks like a "
                "token rather than a path, so it is not shown.",
                f"Put the {name} in a file and pass the file's path, or set it in the "
                "SMTPDIAG_* variable for it.",
            ) from None
        raise SecretError(f"{label} does not exist.", "Check the path.", value=str(path)) from None
    except IsADirectoryError:
        raise SecretError(
            f"{label} is a directory.", "Pass the path of the file inside it.", value=str(path)
        ) from None
    except _NotAFileError as error:
        raise SecretError(
            f"{label} is {error.kind}, not a file.",
            f"Pass the path of a regular file that contains the {name}.",
            value=str(path),
        ) from None
    except OSError as error:
        raise SecretError(
            f"{label} cannot be read: {error.strerror or error}.",
            "Check its permissions.",
            value=str(path),
        ) from None
    if raw is None:
        raise SecretError(
            f"{label} is larger than {MAX_SECRET_BYTES} bytes or did not deliver its content "
            f"within {PIPE_READ_SECONDS:g} s.",
            f"Store the {name} alone in the file.",
            value=str(path),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(
            f"{label} is not UTF-8 text.", f"Write the {name} as plain text.", value=str(path)
        ) from None
    return Secret(_strip_one_line(text, origin, name), origin)


def _looks_like_secret(value: str) -> bool:
    """Tell whether a missing file's name is shaped like a token; paths that start with
    ``/``, ``.`` or ``~`` never are."""
    return not value.startswith(("/", ".", "~")) and looks_like_token(value)


class _NotAFileError(OSError):
    """The path is a device or socket, which a secret file must not be."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _read_bounded(path: Path) -> bytes | None:
    """Return the content of a regular file or pipe, or None when it is too large or slow."""
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(str(path))
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise _NotAFileError("a device")
    if stat.S_ISSOCK(mode):
        raise _NotAFileError("a socket")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + PIPE_READ_SECONDS
        while size <= MAX_SECRET_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not wait_readable(descriptor, remaining):
                return None
            try:
                chunk = os.read(descriptor, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        return None
    finally:
        os.close(descriptor)


def secret_from_env(
    variable: str, environ: Mapping[str, str] | None = None, name: str = "access token"
) -> Secret | None:
    """Return the secret in environment ``variable``, or None when it is unset."""
    value = (os.environ if environ is None else environ).get(variable)
    if value is None:
        return None
    return Secret(
        _strip_one_line(value, f"environment variable {variable}", name), f"env {variable}"
    )


def secret_from_credentials(
    credential: str, name: str = "access token", environ: Mapping[str, str] | None = None
) -> Secret | None:
    """Return systemd credential ``credential`` from ``$CREDENTIALS_DIRECTORY``, or None."""
    directory = (os.environ if environ is None else environ).get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / credential
    if not path.is_file():
        return None
    return secret_from_file(path, name)
