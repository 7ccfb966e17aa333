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
from smtpdiag.sasl.tokens import looks_like_token

MAX_LINE_BYTES = 500
"""Lines of this many bytes or more make msmtp reject the file: src/conf.c reads lines with
``fgets`` into a 501-byte buffer and reports "line longer than 500 characters" whenever the
newline does not fit. A line of 499 bytes is accepted and one of 500 rejected (msmtp 1.8.23)."""

SHELL_BUILTINS = frozenset({"echo", "printf", "cat", "eval", "test", "[", ".", "source", "true"})
"""Programs that are shell builtins or part of coreutils, so there is nothing to test.
``command_files`` skips ``exec``, ``command`` and ``nohup`` and returns the program after them."""

_PASSWORD_LINE = re.compile(rb"^[ \t]*password(?:[ \t]+(.*?))?[ \t]*\r?$")


@dataclass(frozen=True)
class PasswordLine:
    """One ``password`` line of the file; the value itself is never kept."""

    line: int
    length: int
    """Bytes of the line without its newline."""
    token_shaped: bool
    """Whether the value looks like an access token (``looks_like_token``)."""

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
        found.append(PasswordLine(number, len(raw), looks_like_token(value)))
    return tuple(found)


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
    return _inspect_shebang(program.path)


def _executable_problem(path: str, searched: bool) -> ProgramProblem | None:
    if not os.path.exists(path):
        return ProgramProblem(path, missing=True, searched_path=searched)
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        return ProgramProblem(path, missing=False, searched_path=searched)
    return None


def _inspect_shebang(path: str) -> ProgramProblem | None:
    """Check the interpreter named by a script's ``#!`` line."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", errors="replace").split()
    if not words or os.path.exists(words[0]):
        return None
    return ProgramProblem(words[0], missing=True, role="interpreter")


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
