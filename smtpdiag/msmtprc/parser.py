"""Read an msmtp configuration file the way msmtp 1.8.23 does.

The rules follow src/conf.c of msmtp (``get_next_cmd``, ``trim_string``, ``read_conffile``,
``override_account``) and were compared with ``msmtp --pretend`` 1.8.23:

- A line may have at most 499 bytes before its newline. A longer one is the error "line
  longer than 500 characters", and the reader still parses the whole line.
- ``\\r\\n`` endings count as ``\\n``. Blank lines and lines whose first non-blank is ``#``
  are ignored; a ``#`` later in a line belongs to the argument.
- The command is the first word; the argument is the rest with spaces and tabs trimmed and
  one pair of enclosing double quotes removed. There are no escapes.
- Commands before any ``account`` or ``defaults`` line form an account named ``default``.
- ``defaults`` may appear more than once and affects the accounts defined after it.
- ``account NAME : A, B`` starts from the current defaults, then copies every command that A
  and then B set themselves (what they inherited included, their defaults not).

NOTE: ``eval CMD`` lines are recorded as assignments of ``eval`` and never run. msmtp
replaces such a line with the first output line of CMD, so what it sets is unknown here.

msmtp stops at the first problem. This reader records every problem and goes on, so that the
rest of the file is still known. Lines with a problem other than their length are not
recorded as assignments.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections import defaultdict
from dataclasses import dataclass, field, replace

from smtpdiag.config_trust import FileIdentity
from smtpdiag.errors import ConfigError
from smtpdiag.msmtprc.commands import argument_problem
from smtpdiag.msmtprc.model import (
    DEFAULT_ACCOUNT,
    DEFAULTS_SECTION,
    Account,
    Assignment,
    MsmtpFile,
    ParseProblem,
    shown_name,
)

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 499
"""Maximum length of a line msmtp reads, in bytes without the newline. Its line buffer is
501 bytes, the newline and the terminating NUL included."""

MAX_FILE_BYTES = 1_048_576
"""Largest file read; an msmtprc is a few kilobytes."""

_BLANKS = " \t"


@dataclass(frozen=True)
class _Line:
    """One physical line: its text without the line ending, and its length in bytes."""

    number: int
    text: str
    size: int


@dataclass
class _Block:
    """An account being read."""

    name: str
    line: int
    arrivals: list[Assignment] = field(default_factory=list)
    own: list[Assignment] = field(default_factory=list)
    """Assignments that inheritance copies: inherited ones and the account's own lines."""

    def finish(self) -> Account:
        history: dict[str, list[Assignment]] = defaultdict(list)
        for assignment in self.arrivals:
            history[assignment.command].append(assignment)
        return Account(
            name=self.name,
            line=self.line,
            history={command: tuple(items) for command, items in history.items()},
            arrivals=tuple(self.arrivals),
        )


@dataclass
class _Reader:
    """State of one pass over the lines."""

    defaults: list[Assignment] = field(default_factory=list)
    blocks: dict[str, _Block] = field(default_factory=dict)
    current: _Block | None = None
    """Block that receives commands; None before the first ``account`` or ``defaults``."""
    in_defaults: bool = False
    problems: list[ParseProblem] = field(default_factory=list)

    def problem(self, line: int, message: str) -> None:
        self.problems.append(ParseProblem(line, message))


def trim_argument(text: str) -> str:
    """Trim spaces and tabs and remove one pair of enclosing double quotes, as msmtp does."""
    trimmed = text.strip(_BLANKS)
    if len(trimmed) >= 2 and trimmed[0] == '"' and trimmed[-1] == '"':
        return trimmed[1:-1]
    return trimmed


def parse_text(text: str, path: str = "<text>") -> MsmtpFile:
    """Parse the content of an msmtp configuration file."""
    pieces = text.split("\n")
    lines = []
    for index, piece in enumerate(pieces):
        ended = index < len(pieces) - 1
        lines.append(_line(index + 1, piece, len(piece.encode("utf-8", "replace")), ended))
    return _parse(path, lines)


def parse_file(path: str) -> MsmtpFile:
    """Read and parse the msmtp configuration file at ``path``.

    Raises ConfigError when the file is missing, unreadable, not a regular file or larger
    than ``MAX_FILE_BYTES``.
    """
    data, identity = _read_bytes(path)
    pieces = data.split(b"\n")
    lines = []
    for index, piece in enumerate(pieces):
        ended = index < len(pieces) - 1
        text = piece.decode("utf-8", "replace")
        lines.append(_line(index + 1, text, len(piece), ended))
    parsed = replace(_parse(path, lines), identity=identity)
    logger.debug(
        "read %s: %d accounts, %d problems", path, len(parsed.accounts), len(parsed.problems)
    )
    return parsed


def _line(number: int, text: str, size: int, ended: bool) -> _Line:
    """Build a line; msmtp removes the ``\\r`` of a ``\\r\\n`` ending only."""
    if ended and text.endswith("\r"):
        text = text[:-1]
    # msmtp handles lines as C strings, so a NUL byte ends the line's content.
    return _Line(number, text.split("\0", 1)[0], size)


def _read_bytes(path: str) -> tuple[bytes, FileIdentity]:
    """Return the content of ``path`` and the ``fstat`` of the descriptor it was read from."""
    fix = "Pass the path of an msmtp configuration file, such as ~/.msmtprc or /etc/msmtprc."
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ConfigError(path, "is not a regular file.", fix)
        with open(path, "rb") as stream:
            identity = FileIdentity.from_status(os.fstat(stream.fileno()))
            data = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(path, "the msmtp configuration file does not exist.", fix) from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ConfigError(
                path,
                "cannot be read because its path contains a symbolic link loop "
                f"({error.strerror}).",
                "Fix the symbolic link so that it points to the msmtp configuration file.",
            ) from None
        raise ConfigError(
            path, f"cannot be read ({error.strerror}).", "Check its permissions."
        ) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(path, f"is larger than {MAX_FILE_BYTES} bytes.", fix)
    return data, identity


def _parse(path: str, lines: list[_Line]) -> MsmtpFile:
    reader = _Reader()
    for line in lines:
        if line.size > MAX_LINE_BYTES:
            # msmtp's message names no line number; the problem keeps it anyway.
            reader.problem(line.number, "line longer than 500 characters")
        if "\r" in line.text:
            # msmtp splits lines at line feeds only, so a file with carriage-return line ends is
            # one line to it, whose command or account name then spans the whole file.
            reader.problem(line.number, CARRIAGE_RETURN_PROBLEM)
        content = line.text.lstrip(_BLANKS)
        if content == "" or content.startswith("#"):
            continue
        command = content
        for index, char in enumerate(content):
            if char in _BLANKS:
                command = content[:index]
                break
        _apply(reader, line.number, command, trim_argument(content[len(command) :]))
    accounts = tuple(block.finish() for block in reader.blocks.values())
    return MsmtpFile(path=path, accounts=accounts, problems=tuple(reader.problems))


CARRIAGE_RETURN_PROBLEM = (
    "carriage return inside the line: the file has CR line ends, which msmtp reads as one line"
)


def _apply(reader: _Reader, number: int, command: str, argument: str) -> None:
    """Apply one command line to the reader's state."""
    if reader.current is None and not reader.in_defaults and command not in _SECTION_COMMANDS:
        # Before any account or defaults line: msmtp 1.2 compatibility.
        reader.current = _new_block(reader, DEFAULT_ACCOUNT, number, [])
    if command == "defaults":
        if argument:
            reader.problem(number, "command defaults does not take an argument")
        reader.current = None
        reader.in_defaults = True
        return
    if command == "account":
        _start_account(reader, number, argument)
        return
    problem = argument_problem(command, argument)
    if problem is not None:
        reader.problem(number, problem)
        return
    section = DEFAULTS_SECTION if reader.in_defaults else _section_name(reader.current)
    assignment = Assignment(command, argument, number, section)
    if reader.in_defaults:
        reader.defaults.append(assignment)
    elif reader.current is not None:
        reader.current.arrivals.append(assignment)
        reader.current.own.append(assignment)


_SECTION_COMMANDS = frozenset({"account", "defaults"})


def _section_name(block: _Block | None) -> str:
    return DEFAULT_ACCOUNT if block is None else block.name


def _start_account(reader: _Reader, number: int, argument: str) -> None:
    """Start an account block: its defaults first, then what its parents set."""
    reader.in_defaults = False
    parents: list[_Block] = []
    name = argument
    if ":" in argument:
        head, _, tail = argument.partition(":")
        parents = _parents(reader, number, tail)
        name = trim_argument(head)
    problem = None
    if name == "":
        problem = "missing account name"
    elif "," in name or ":" in name:
        problem = "an account name must not contain colons or commas"
    elif name in reader.blocks:
        problem = f"account {shown_name(name)} was already defined"
    if problem is not None:
        reader.problem(number, problem)
        # Lines up to the next account go to a block that is not kept.
        reader.current = _Block(name, number)
        return
    reader.current = _new_block(reader, name, number, parents)


def _parents(reader: _Reader, number: int, text: str) -> list[_Block]:
    """Return the defined accounts named in a comma-separated inheritance list."""
    parents = []
    for item in text.split(","):
        parent = trim_argument(item)
        if parent == "":
            reader.problem(number, "missing account name")
        elif parent not in reader.blocks:
            reader.problem(number, f"account {shown_name(parent)} not (yet) defined")
        else:
            parents.append(reader.blocks[parent])
    return parents


def _new_block(reader: _Reader, name: str, number: int, parents: list[_Block]) -> _Block:
    block = _Block(name, number, arrivals=list(reader.defaults))
    for parent in parents:
        block.arrivals.extend(parent.own)
        block.own.extend(parent.own)
    reader.blocks[name] = block
    return block
