"""Exception hierarchy of smtpdiag.

Only the CLI turns these into text and exit codes. Each subclass keeps its structured fields
and builds its message from them.
"""

from __future__ import annotations


class SmtpDiagError(Exception):
    """Base class of every error that smtpdiag raises on purpose."""


class UsageError(SmtpDiagError):
    """Invalid command-line value, configuration or environment variable (exit code 3)."""

    def __init__(self, problem: str, fix: str, *, value: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        self.value = value
        super().__init__(f"{problem} {fix}")


class ConfigError(UsageError):
    """Invalid or unreadable configuration file."""

    def __init__(self, path: str, problem: str, fix: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}", fix, value=path)


class SecretError(UsageError):
    """A secret source is missing, unreadable or empty."""


class SmtpReplyError(SmtpDiagError):
    """The peer sent bytes that are not a valid SMTP reply."""

    def __init__(self, problem: str, raw: bytes) -> None:
        self.problem = problem
        self.raw = raw
        super().__init__(f"{problem}: {escape_bytes(raw)}")


class SmtpClosedError(SmtpDiagError):
    """The peer closed the connection before a complete reply arrived."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        shown = escape_bytes(raw) if raw else "no bytes"
        super().__init__(f"connection closed by the server after {shown}")


def escape_bytes(raw: bytes, limit: int = 200) -> str:
    """Render ``raw`` as printable ASCII with escapes, cut to ``limit`` bytes."""
    text = raw[:limit].decode("ascii", errors="backslashreplace")
    escaped = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    escaped = "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in escaped)
    if len(raw) > limit:
        escaped += f"... ({len(raw)} bytes)"
    return escaped
