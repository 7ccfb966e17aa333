"""Files and programs around an msmtprc: password lines, the passwordeval program, the logfile.

These helpers read the file system as the user smtpdiag runs as. The msmtp_config check turns
what they return into findings.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass

from smtpdiag.local.token_command import (
    TOKEN_SCRIPT,
    CommandFile,
    command_files,
    command_words,
    is_interpreter,
)
from smtpdiag.redact import REDACTOR

MAX_LINE_BYTES = 500
"""Lines of this many bytes or more make msmtp reject the file: src/conf.c reads lines with
``fgets`` into a 501-byte buffer and reports "line longer than 500 characters" whenever the
newline does not fit. A line of 499 bytes is accepted and one of 500 rejected (msmtp 1.8.23)."""

SHELL_BUILTINS = frozenset(
    {
        "echo",
        "printf",
        "cat",
        "eval",
        "test",
        "[",
        ".",
        "source",
        ":",
        "true",
        "cd",
        "export",
        "set",
        "unset",
        "read",
        "umask",
        "ulimit",
    }
)
"""Programs that are shell builtins or part of coreutils, so there is nothing to test. A
command that starts with one, such as ``cd DIR && ./token``, is not judged further, because
what follows depends on the shell's state. ``command_files`` skips ``exec``, ``command`` and
``nohup`` and returns the program after them."""

ACCESS_TOKEN_MIN_LENGTH = 200
"""Values of this many token characters or more are taken for access tokens whatever their
prefix. SMTP passwords of providers are shorter: a SendGrid API key has 69 characters, an AWS
SES SMTP password 44."""

MICROSOFT_TOKEN_MIN_LENGTH = 100
"""Shortest ``EwB…`` value taken for a Microsoft opaque access token; the sample token on
Microsoft's Exchange OAuth page is over a thousand characters long."""

_TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

_PASSWORD_LINE = re.compile(rb"^[ \t]*password(?:[ \t]+(.*?))?[ \t]*\r?$")


@dataclass(frozen=True)
class PasswordLine:
    """One ``password`` line of the file; the value itself is never kept."""

    line: int
    length: int
    """Bytes of the line without its newline."""
    token_shaped: bool
    """Whether the value looks like an OAuth2 access token (``is_access_token``)."""
    value_length: int = 0
    """Characters of the value, quotes removed."""
    token_kind: str = "token characters only"  # noqa: S105 (a description, not a password)
    """The shape that makes the value a token, as ``access_token_kind`` names it."""

    @property
    def too_long(self) -> bool:
        """Whether msmtp rejects the file because of this line's length."""
        return self.length >= MAX_LINE_BYTES


@dataclass(frozen=True)
class ProgramProblem:
    """A ``passwordeval`` program, script or interpreter that the shell cannot run."""

    path: str
    missing: bool
    """True when it does not exist, False when it exists but is not executable."""
    role: str = "program"
    """``program``, ``script`` (run by an interpreter) or ``interpreter`` (of a ``#!`` line)."""
    searched_path: bool = False
    """Whether the name was looked up in ``PATH`` rather than given as a path."""
    crlf: bool = False
    """Whether ``path`` is a script whose ``#!`` line ends with a carriage return."""


def read_password_lines(path: str) -> tuple[PasswordLine, ...]:
    """Return every ``password`` line of ``path`` with its length and shape.

    Token-shaped values and every password of six characters or more are registered with
    the redactor, so that no output can show them.
    """
    try:
        with open(path, "rb") as handle:
            raw_lines = handle.read().split(b"\n")
    except OSError:
        return ()
    found: list[PasswordLine] = []
    for number, raw in enumerate(raw_lines, start=1):
        match = _PASSWORD_LINE.match(raw)
        if match is None:
            continue
        value = _unquote((match.group(1) or b"").decode("utf-8", errors="replace"))
        REDACTOR.register(value)
        kind = access_token_kind(value)
        line = PasswordLine(number, len(raw), kind is not None, len(value), kind or "")
        found.append(line)
    return tuple(found)


def access_token_kind(value: str) -> str | None:
    """Name the shape that makes a password value an OAuth2 access token, or return None.

    Taken for tokens: a JWT (``eyJ…`` in three dot-separated parts), a Google ``ya29.`` token,
    a Microsoft ``EwB…`` token of ``MICROSOFT_TOKEN_MIN_LENGTH`` characters or more, and any
    value of ``ACCESS_TOKEN_MIN_LENGTH`` token characters or more. Provider API keys and
    random passwords of 40 to 70 characters are not.
    """
    if _TOKEN_CHARACTERS.fullmatch(value) is None:
        return None
    if _JWT.fullmatch(value):
        return "a JWT"
    if value.startswith("ya29."):
        return "a Google ya29. token"
    if value.startswith("EwB") and len(value) >= MICROSOFT_TOKEN_MIN_LENGTH:
        return "a Microsoft EwB token"
    if len(value) >= ACCESS_TOKEN_MIN_LENGTH:
        return f"{ACCESS_TOKEN_MIN_LENGTH} or more token characters"
    return None


def is_access_token(value: str) -> bool:
    """Tell whether a password value is an OAuth2 access token (``access_token_kind``)."""
    return access_token_kind(value) is not None


def _unquote(value: str) -> str:
    """Remove one pair of enclosing double quotes, as msmtp's ``trim_string`` does."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def inspect_command(command: str, search_path: str) -> ProgramProblem | None:
    """Return why ``/bin/sh -c command`` cannot start its program, or None when it can.

    Only the first simple command is looked at: the words before ``|``, ``;`` or ``&``.
    Commands whose program comes from a variable or a substitution, or is a relative path,
    are not judged, because the shell's variables and msmtp's working directory are unknown.
    """
    try:
        words = command_words(command)
    except ValueError:
        # Unbalanced quotes: the shell fails with its own syntax error, not a missing program.
        return None

    # F_OK, not X_OK: a program without execute permission is found and reported as such.
    def find_program(name: str) -> str | None:
        return shutil.which(name, mode=os.F_OK, path=search_path)

    program: CommandFile | None = None
    for item in command_files(words, find_program, os.path.expanduser):
        if item.role == TOKEN_SCRIPT:
            # An interpreter reads its script, so the script needs no execute permission.
            assert item.path is not None  # command_files returns scripts with a path only
            exists = os.path.exists(item.path)
            return None if exists else ProgramProblem(item.path, missing=True, role="script")
        if item.word in SHELL_BUILTINS:
            return None
        if os.path.basename(item.word) == "env":
            continue  # env is part of coreutils; the program it starts is the next item
        if item.path is None:
            return ProgramProblem(item.word, missing=True, searched_path=True)
        searched = "/" not in os.path.expanduser(item.word)
        problem = _executable_problem(item.path, searched)
        if problem is not None:
            return problem
        program = item
    if program is None or program.path is None or is_interpreter(os.path.basename(program.word)):
        return None
    return _inspect_shebang(program.path, search_path)


def _executable_problem(path: str, searched: bool) -> ProgramProblem | None:
    if not os.path.exists(path):
        return ProgramProblem(path, missing=True, searched_path=searched)
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        return ProgramProblem(path, missing=False, searched_path=searched)
    return None


def _inspect_shebang(path: str, search_path: str) -> ProgramProblem | None:
    """Check the interpreter named by a script's ``#!`` line.

    A line that ends with a carriage return (a script saved with CRLF line ends) names an
    interpreter such as ``/bin/sh\\r``, which the kernel does not find. For ``#!/usr/bin/env
    NAME`` NAME is looked up in ``search_path``. env with options or more than one word is
    not judged, because Linux passes the rest of the line to env as one argument.
    """
    try:
        with open(path, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    if first.endswith(b"\r\n"):
        return ProgramProblem(path, missing=True, role="script", crlf=True)
    words = first[2:].decode("utf-8", errors="replace").split()
    if not words:
        return None
    if not os.path.exists(words[0]):
        return ProgramProblem(words[0], missing=True, role="interpreter")
    if os.path.basename(words[0]) != "env" or len(words) != 2 or words[1].startswith("-"):
        return None
    name = words[1]
    if "/" in name or "=" in name or shutil.which(name, path=search_path) is not None:
        return None
    return ProgramProblem(name, missing=True, role="interpreter", searched_path=True)


def trust_file_problem(trust_file: str) -> str | None:
    """Return why msmtp cannot load ``tls_trust_file``, or None when it can or uses the system
    store.

    msmtp expands a leading ``~`` and fails with "cannot set X509 trust file FILE for TLS
    session: Error while reading file." (exit 66) for a missing, unreadable or directory
    path (msmtp 1.8.23 with GnuTLS). An empty value is a different error that is left out.
    """
    if trust_file in ("", "system"):
        return None
    path = os.path.expanduser(trust_file)
    if not os.path.exists(path):
        return f"{path} does not exist"
    if os.path.isdir(path):
        return f"{path} is a directory"
    if not os.access(path, os.R_OK):
        return f"{path} is not readable"
    return None


def logfile_problem(logfile: str) -> str | None:
    """Return why the current user cannot append to ``logfile``, or None when it can.

    ``-`` (standard output) needs no file. msmtp expands a leading ``~``.
    """
    if logfile == "-":
        return None
    path = os.path.expanduser(logfile)
    if os.path.isdir(path):
        return f"{path} is a directory"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"{path} does not exist and neither does its directory {directory}"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"{path} does not exist and its directory {directory} is not writable"
    return None
