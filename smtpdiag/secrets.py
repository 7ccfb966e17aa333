"""Secret values (tokens, passwords) and the places they are read from.

A ``Secret`` never shows its value in ``repr`` or ``str``; code that needs the value calls
``reveal()`` at the point of use. Every secret registers itself with the central redactor.
"""

from __future__ import annotations

import os
import subprocess
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


def _strip_one_line(text: str, origin: str) -> str:
    """Return ``text`` without its trailing newline; reject empty values."""
    value = text.rstrip("\r\n")
    if not value.strip():
        raise SecretError(
            f"The access token from {origin} is empty.",
            "Put the current access token there, or check the command or file that fetches it.",
        )
    return value


def secret_from_file(path: str | os.PathLike[str]) -> Secret:
    """Read a secret from a file; one trailing newline is dropped."""
    origin = f"file {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretError(
            f"The token file {path} does not exist.", "Check the path.", value=str(path)
        ) from None
    except IsADirectoryError:
        raise SecretError(
            f"The token file {path} is a directory.",
            "Pass the path of the file inside it.",
            value=str(path),
        ) from None
    except UnicodeDecodeError:
        raise SecretError(
            f"The token file {path} is not UTF-8 text.",
            "Write the token as plain text.",
            value=str(path),
        ) from None
    except OSError as error:
        raise SecretError(
            f"The token file {path} cannot be read: {error.strerror or error}.",
            "Check its permissions.",
            value=str(path),
        ) from None
    return Secret(_strip_one_line(text, origin), origin)


def secret_from_env(name: str, environ: Mapping[str, str] | None = None) -> Secret | None:
    """Return the secret in environment variable ``name``, or None when it is unset."""
    value = (os.environ if environ is None else environ).get(name)
    if value is None:
        return None
    return Secret(_strip_one_line(value, f"environment variable {name}"), f"env {name}")


def secret_from_credentials(name: str) -> Secret | None:
    """Return systemd credential ``name`` from ``$CREDENTIALS_DIRECTORY``, or None."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / name
    if not path.is_file():
        return None
    return secret_from_file(path)


def secret_from_command(command: str, timeout: float) -> Secret:
    """Run ``command`` through the shell, as msmtp's ``passwordeval`` does, and read stdout."""
    try:
        completed = subprocess.run(  # noqa: S602 (the shell is the documented interface)
            command, shell=True, capture_output=True, timeout=timeout, text=True, check=False
        )
    except subprocess.TimeoutExpired:
        raise SecretError(
            f"The token command (access_token_command) timed out after {timeout:g} s.",
            "Make the command finish faster or raise --timeout.",
            value=command,
        ) from None
    if completed.returncode != 0:
        # The command line is not repeated: it often carries a client secret.
        stderr = " ".join(completed.stderr.split())[:300]
        output = f" and wrote {stderr!r} to stderr" if stderr else " without writing to stderr"
        raise SecretError(
            f"The token command (access_token_command) exited with status "
            f"{completed.returncode}{output}.",
            "Run the command by hand and fix the error it prints.",
            value=command,
        )
    return Secret(_strip_one_line(completed.stdout, "the token command"), "access_token_command")
