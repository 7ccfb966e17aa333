"""Secret values (tokens, passwords) and the places they are read from.

A ``Secret`` never shows its value in ``repr`` or ``str``; code that needs the value calls
``reveal()`` at the point of use. Every secret registers itself with the central redactor.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from smtpdiag.errors import SecretError
from smtpdiag.redact import REDACTOR


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


def secret_from_file(path: str | os.PathLike[str], name: str = "access token") -> Secret:
    """Read the secret called ``name`` in messages from a file, without one trailing newline."""
    origin = f"file {path}"
    label = f"The {name} file {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretError(f"{label} does not exist.", "Check the path.", value=str(path)) from None
    except IsADirectoryError:
        raise SecretError(
            f"{label} is a directory.", "Pass the path of the file inside it.", value=str(path)
        ) from None
    except UnicodeDecodeError:
        raise SecretError(
            f"{label} is not UTF-8 text.", f"Write the {name} as plain text.", value=str(path)
        ) from None
    except OSError as error:
        raise SecretError(
            f"{label} cannot be read: {error.strerror or error}.",
            "Check its permissions.",
            value=str(path),
        ) from None
    return Secret(_strip_one_line(text, origin, name), origin)


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
