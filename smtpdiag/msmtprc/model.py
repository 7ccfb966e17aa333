"""Model of an msmtp configuration file: accounts, their assignments and parse problems.

The effective values follow msmtp 1.8.23 (src/conf.c and ``msmtp --pretend``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smtpdiag.config_trust import FileIdentity

DEFAULTS_SECTION = "defaults"
"""Section name of lines that follow a ``defaults`` command."""

DEFAULT_ACCOUNT = "default"
"""Account msmtp uses without ``-a``; also the name of the implicit account that
contains the commands written before any ``account`` or ``defaults`` line."""


@dataclass(frozen=True)
class Assignment:
    """One command line of the file, as msmtp reads it."""

    command: str
    """The command as written, such as ``auth`` or ``host`` (msmtp commands are lower case)."""
    value: str
    """The argument with blanks trimmed and one pair of enclosing double quotes removed; empty
    when the command has no argument."""
    line: int
    """1-based line number in the file."""
    section: str
    """``defaults`` or the name of the account whose block contains the line."""


@dataclass(frozen=True)
class ParseProblem:
    """A reason msmtp would reject the file."""

    line: int
    """1-based line number; 0 when the problem is not tied to a line."""
    message: str
    """msmtp's own wording where known, such as ``unknown command foo``."""


@dataclass(frozen=True)
class Account:
    """One account with every assignment that reached it."""

    name: str
    line: int
    """Line of its ``account`` command (the first command line for the implicit default)."""
    history: Mapping[str, tuple[Assignment, ...]]
    """Per command, the assignments that reached this account, oldest first: ``defaults``
    lines written before the account, then what the accounts it inherits from set themselves
    (``account a : b, c`` copies b then c), then its own lines. The last one is in force.
    An assignment appears twice when it reached the account by two ways of inheritance."""
    arrivals: tuple[Assignment, ...] = ()
    """The same assignments for all commands, in the order they reached the account. Empty
    when the account was built by hand, and line order is used instead."""

    def assignment(self, command: str) -> Assignment | None:
        """Return the assignment of ``command`` in force, or None when it was never set."""
        assignments = self.history.get(command, ())
        return assignments[-1] if assignments else None

    def get(self, command: str) -> str | None:
        """Return the value of ``command`` in force, or None when it was never set."""
        assignment = self.assignment(command)
        return None if assignment is None else assignment.value

    @property
    def tls(self) -> bool:
        """Whether TLS is on: ``tls`` with no argument or ``on``; msmtp's default is off."""
        return self.get("tls") in ("", "on")

    @property
    def starttls(self) -> bool:
        """Whether TLS starts with STARTTLS (the default) rather than at connect."""
        assignment = self._last_of("tls_starttls", "tls_nostarttls")
        if assignment is None:
            return True
        if assignment.command == "tls_nostarttls":
            return False
        return assignment.value in ("", "on")

    @property
    def port(self) -> int:
        """Port in force: ``port``, else msmtp's default of 465 for TLS without STARTTLS and
        25 otherwise; 0 for LMTP without ``port``, which msmtp rejects as "port not set"."""
        value = self.get("port")
        if value is not None:
            number = parse_c_integer(value)
            return number if number is not None else 0
        if self.get("protocol") == "lmtp":
            return 0
        return 465 if self.tls and not self.starttls else 25

    @property
    def port_is_default(self) -> bool:
        """Whether no ``port`` line reached the account, so the port is msmtp's default."""
        return self.get("port") is None

    @property
    def auth(self) -> str | None:
        """Authentication: None when off or unset, "" for ``auth on`` (msmtp chooses a
        mechanism), else the mechanism in lower case, such as ``xoauth2``."""
        value = self.get("auth")
        if value is None or value == "off":
            return None
        return "" if value == "on" else value

    def _last_of(self, *commands: str) -> Assignment | None:
        """Return the assignment of any of ``commands`` that reached the account last.

        msmtp keeps some pairs as one setting (``tls_starttls`` and ``tls_nostarttls``), so
        the latest of them wins, in the order the lines reached this account.
        """
        for assignment in reversed(self.arrivals):
            if assignment.command in commands:
                return assignment
        found = [self.assignment(command) for command in commands]
        present = [assignment for assignment in found if assignment is not None]
        return max(present, key=lambda assignment: assignment.line, default=None)


@dataclass(frozen=True)
class MsmtpFile:
    """A parsed msmtp configuration file."""

    path: str
    accounts: tuple[Account, ...]
    """Accounts in file order, ``default`` included when the file defines it."""
    problems: tuple[ParseProblem, ...]
    """Reasons msmtp would reject the file. msmtp stops at the first, but the reader goes on
    so that the rest of the file is still known."""
    identity: FileIdentity | None = None
    """``fstat`` of the descriptor the file was read from, or None for parsed text."""

    def account(self, name: str) -> Account | None:
        """Return the account called ``name``, or None."""
        for account in self.accounts:
            if account.name == name:
                return account
        return None

    @property
    def account_names(self) -> tuple[str, ...]:
        """Names of the accounts in file order."""
        return tuple(account.name for account in self.accounts)


_C_INTEGER = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def parse_c_integer(text: str) -> int | None:
    """Parse a positive integer as msmtp's ``get_pos_int`` does (C ``strtol`` with base 0).

    Leading blanks and a sign are allowed, ``0x`` starts hexadecimal and a leading ``0``
    octal, so ``025`` is 21. Returns None for anything else, for 0, for negative numbers and
    for values above 2**31 - 1.
    """
    match = _C_INTEGER.fullmatch(text)
    if match is None:
        return None
    digits = match.group(2)
    if digits[:2].lower() == "0x":
        number = int(digits, 16)
    elif digits.startswith("0"):
        number = int(digits, 8)
    else:
        number = int(digits)
    if match.group(1) == "-":
        number = -number
    return number if 0 < number <= 2**31 - 1 else None


_MAX_SHOWN = 64
"""Maximum length of a name or value that messages show; longer ones show their length."""


def shown_name(text: str) -> str:
    """Return an account name, command word or argument for messages, or only its length.

    A file that is not an msmtprc (an environment file, CR line ends) turns whole lines into
    names and commands, and those lines may contain secrets. So text with control characters
    or ``=``, longer than ``_MAX_SHOWN``, or shaped like a token is shown by its length only.
    """
    from smtpdiag.sasl.tokens import looks_like_token

    if text.startswith("\ufeff"):
        # A byte order mark that an editor wrote before the first command.
        return f"{shown_name(text[1:])} after a byte order mark"
    plain = text.isprintable() and "=" not in text and len(text) <= _MAX_SHOWN
    if plain and not looks_like_token(text):
        return text
    return f"[{len(text)} characters]"
