"""Files that a token command (msmtp's ``passwordeval``) runs, and secrets written in scripts.

``command_words`` splits the command line as ``/bin/sh -c`` would up to the first operator,
and ``command_files`` finds the program it starts and, when that program is an interpreter
such as ``sh`` or ``python3``, the script file the interpreter runs. Nothing here runs the
command. ``script_secret_kinds`` names the kinds of secrets written in a script's text.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TOKEN_PROGRAM = "token program"  # noqa: S105 (a role name)
"""Role of the program that the token command (``passwordeval``) runs."""
TOKEN_SCRIPT = "token script"  # noqa: S105 (a role name)
"""Role of the script file that an interpreter in the token command runs."""


@dataclass(frozen=True)
class CommandFile:
    """A file that the token command runs."""

    role: str
    """``TOKEN_PROGRAM`` or ``TOKEN_SCRIPT``."""
    word: str
    """The word as written in the command."""
    path: str | None
    """Path of the file; None for a program name that is not on the search path."""


@dataclass(frozen=True)
class _Interpreter:
    """Options of an interpreter that matter for finding its script argument."""

    inline: frozenset[str]
    """Options whose argument is the program text or a module, so no script file is run."""
    with_argument: frozenset[str] = frozenset()
    """Options that take the next word as their argument."""


_SHELL = _Interpreter(frozenset({"-c"}), frozenset({"-o", "+o", "-O", "+O"}))
_INTERPRETERS = (
    (re.compile(r"(?:ba|da|z|k|mk|a)?sh"), _SHELL),
    (
        re.compile(r"python[0-9.]*|pypy3?"),
        _Interpreter(frozenset({"-c", "-m"}), frozenset({"-W", "-X"})),
    ),
    (re.compile(r"perl[0-9.]*"), _Interpreter(frozenset({"-e", "-E"}))),
    (re.compile(r"ruby[0-9.]*"), _Interpreter(frozenset({"-e"}), frozenset({"-I", "-r"}))),
    (
        re.compile(r"node(?:js)?"),
        _Interpreter(frozenset({"-e", "-p", "--eval", "--print"}), frozenset({"-r", "--require"})),
    ),
    (re.compile(r"php[0-9.]*"), _Interpreter(frozenset({"-r"}), frozenset({"-c", "-d"}))),
)

_ENV_OPTIONS_WITH_ARGUMENT = frozenset({"-u", "--unset", "-C", "--chdir"})
_ENV_SPLIT_STRING = frozenset({"-S", "--split-string"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_SHELL_PREFIXES = frozenset({"exec", "command", "nohup"})
_UNEXPANDED = re.compile(r"[$`*?\[]")
"""Characters whose expansion by the shell smtpdiag does not repeat: variables, command
substitution and globs. A word containing one is not looked up."""


def command_words(command: str) -> list[str]:
    """Split the first simple command of a shell command line into words.

    msmtp runs ``passwordeval`` with popen(3), so ``/bin/sh -c`` (msmtp ``src/eval.c``). The
    words end at the first operator (``|``, ``;``, ``&&``, ``>``, …). Raises ValueError for
    unbalanced quotes.
    """
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    for word in lexer:
        if word and all(character in lexer.punctuation_chars for character in word):
            break
        words.append(word)
    return words


def command_files(
    words: Sequence[str],
    find_program: Callable[[str], str | None],
    expand_user: Callable[[str], str] = lambda word: word,
) -> list[CommandFile]:
    """List the program that ``words`` run and, for an interpreter, its script file.

    ``find_program`` returns the path of a program name without a slash, or None when there is
    none. ``env`` is listed before the program it starts. A program given as a relative path
    yields an empty list, and a relative script is left out.
    """
    words = list(words)
    while words and (_ASSIGNMENT.match(words[0]) or words[0] in _SHELL_PREFIXES):
        words.pop(0)
    if not words or _UNEXPANDED.search(words[0]):
        return []
    word = expand_user(words[0])
    if "/" in word and not os.path.isabs(word):
        return []  # relative to msmtp's working directory, which smtpdiag does not know
    path = word if "/" in word else find_program(word)
    found = [CommandFile(TOKEN_PROGRAM, words[0], path)]
    name = os.path.basename(word)
    if name == "env":
        return found + command_files(_after_env_options(words[1:]), find_program, expand_user)
    interpreter = _interpreter(name)
    if interpreter is None:
        return found
    script = _script_argument(words[1:], interpreter)
    if script is None or _UNEXPANDED.search(script):
        return found
    script_path = expand_user(script)
    if os.path.isabs(script_path):
        found.append(CommandFile(TOKEN_SCRIPT, script, script_path))
    return found


def _interpreter(name: str) -> _Interpreter | None:
    for pattern, interpreter in _INTERPRETERS:
        if pattern.fullmatch(name):
            return interpreter
    return None


def is_interpreter(name: str) -> bool:
    """Tell whether the program ``name`` (a base name) runs a script given as its argument."""
    return _interpreter(name) is not None


def _after_env_options(words: list[str]) -> list[str]:
    """Return the command that ``env`` runs: its words after env's options and assignments."""
    index = 0
    while index < len(words):
        word = words[index]
        if word in _ENV_SPLIT_STRING and index + 1 < len(words):
            return shlex.split(words[index + 1]) + words[index + 2 :]
        if word in _ENV_OPTIONS_WITH_ARGUMENT:
            index += 2
        elif word.startswith("-") or _ASSIGNMENT.match(word):
            index += 1
        else:
            return words[index:]
    return []


def _script_argument(words: list[str], interpreter: _Interpreter) -> str | None:
    """Return the script file an interpreter runs; None for inline code, a module or stdin."""
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            return words[index + 1] if index + 1 < len(words) else None
        if not word.startswith(("-", "+")) or word in ("-", "+"):
            return None if word == "-" else word
        if _is_inline(word, interpreter):
            return None
        index += 2 if word in interpreter.with_argument else 1
    return None


def _is_inline(word: str, interpreter: _Interpreter) -> bool:
    """Tell whether an option gives inline code; ``-ec`` combines ``-e`` and ``-c`` in sh."""
    if word in interpreter.inline:
        return True
    if interpreter is _SHELL and not word.startswith("--"):
        return "c" in word[1:]
    return False


_SECRET_NAME = re.compile(r"(?i)(refresh_token|client_secret|access_token)[ \t]*=[ \t]*")
"""A secret's name in a script, in any case and with blanks around ``=``."""

_FIELD_KINDS = frozenset({"refresh_token", "client_secret", "bearer_token"})
"""Leak kinds that come from ``name=value`` fields, whose value in code may be an expression."""

_TOKEN_VALUE = re.compile(r"[A-Za-z0-9\-._~+/=]{16,}")
"""A value that can be a token or a client secret: 16 or more token characters (RFC 6750)."""

_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
"""An attribute reference such as ``args.refresh_token``: code, not a secret."""


def script_secret_kinds(text: str) -> tuple[str, ...]:
    """Return the kinds of secrets written in a script's text, each once, in order.

    Scripts write ``CLIENT_SECRET="…"`` or ``client_secret = "…"``, so names are lowered and
    the blanks around ``=`` dropped before the log leak finder runs. A field value must then
    look like a token: ``os.environ["X"]`` or ``args.refresh_token`` is code.
    """
    from smtpdiag.logs.leaks import find_leaks

    text = _SECRET_NAME.sub(lambda found: found[1].lower() + "=", text)
    kinds: dict[str, None] = {}
    for leak in find_leaks(text):
        value = text[leak.start : leak.end]
        if leak.kind in _FIELD_KINDS and (
            not _TOKEN_VALUE.fullmatch(value) or _DOTTED_NAME.fullmatch(value)
        ):
            continue
        kinds[leak.kind] = None
    return tuple(kinds)
