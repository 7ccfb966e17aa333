"""Central redaction of secrets from every string that leaves the process.

Each ``Secret`` registers its value here when created; renderers, the log filter and error
messages pass their text through ``redact``. Besides the raw value, the registry contains the
forms in which a token travels: its URL-encoded forms and its base64 at each of the three
byte alignments. The alignments let redaction find a token inside any base64 blob, such as
an XOAUTH2 initial response.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from smtpdiag.models import Finding, Report

MASK = "[REDACTED]"

# Shorter values are not registered: masking every "a" or "1" would destroy output and would
# not protect anything worth protecting.
MIN_SECRET_LENGTH = 6


def _base64_forms(value: bytes) -> set[str]:
    """Return the base64 characters that encode ``value`` at each byte offset modulo 3."""
    forms: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + value).decode("ascii")
        first = -(-8 * offset // 6)  # first character whose 6 bits lie inside value
        last = (8 * (offset + len(value))) // 6  # one past the last such character
        form = encoded[first:last]
        if len(form) >= MIN_SECRET_LENGTH:
            forms.add(form)
    return forms


def secret_forms(value: str) -> set[str]:
    """Return every form of ``value`` that redaction masks."""
    raw = value.encode("utf-8")
    forms = {value, quote(value, safe=""), quote_plus(value)}
    forms |= _base64_forms(raw)
    forms |= {form.replace("+", "-").replace("/", "_") for form in _base64_forms(raw)}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class Redactor:
    """Thread-safe set of secret forms and the function that masks them."""

    def __init__(self) -> None:
        self._forms: list[str] = []
        self._lock = threading.Lock()

    def register(self, value: str) -> None:
        """Add ``value`` and its encoded forms to what ``redact`` masks.

        NOTE: registered forms are never removed, and ``redact`` tries each of them, so a
        process that registers many different secrets (the exporter over weeks of hourly tokens,
        or a harness calling ``decode_text`` in a loop) redacts more slowly as it runs.
        """
        if len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            merged = set(self._forms) | secret_forms(value)
            # Longest first, so that a form containing a shorter one is masked whole.
            self._forms = sorted(merged, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Return ``text`` with every registered secret form replaced by ``MASK``."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def clear(self) -> None:
        """Forget every registered secret (for tests)."""
        with self._lock:
            self._forms = []


REDACTOR = Redactor()


def redact(text: str) -> str:
    """Mask every secret known to the process in ``text``."""
    return REDACTOR.redact(text)


class RedactingFilter(logging.Filter):
    """Logging filter that renders each record's message, masks secrets and escapes controls."""

    def filter(self, record: logging.LogRecord) -> bool:
        from smtpdiag.render.text import escape_control

        # Log lines can carry peer bytes; escaping keeps terminal control sequences out.
        record.msg = escape_control(redact(record.getMessage()))
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def redact_data(value: object) -> object:
    """Return ``value`` with secrets masked in every string inside dicts, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(key)): redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


def redact_report(report: Report) -> Report:
    """Return a copy of ``report`` with secrets masked in every text, fact and evidence line."""
    from dataclasses import replace

    checks = [
        replace(
            check,
            summary=redact(check.summary),
            findings=redact_findings(check.findings),
            facts=_redact_mapping(check.facts),
        )
        for check in report.checks
    ]
    return replace(report, target=_redact_mapping(report.target), checks=tuple(checks))


def redact_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Return copies of ``findings`` with secrets masked in every text, fact and evidence line."""
    from dataclasses import replace

    return tuple(
        replace(
            finding,
            title=redact(finding.title),
            cause=redact(finding.cause),
            fix=redact(finding.fix),
            facts=_redact_mapping(finding.facts),
            evidence=tuple(redact(line) for line in finding.evidence),
        )
        for finding in findings
    )


def _redact_mapping(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], redact_data(dict(mapping)))


# Masking of secrets written into a command line, such as msmtp's ``passwordeval``.

SECRET_NAME_PARTS = ("secret", "token", "password", "passwd", "pass", "key", "auth", "credential")
"""Parts of an option or variable name that say its value is a secret, in any case."""

_SECRET_NAME = re.compile("|".join(SECRET_NAME_PARTS), re.IGNORECASE)
_SECRET_SHORT_OPTIONS = frozenset({"-p"})
"""Short options whose argument is taken for a password, as sshpass's ``-p`` is. Where ``-p``
takes no argument, the word after it is masked although it is no secret."""
_PRINT_COMMANDS = frozenset({"echo", "printf"})
"""Programs whose arguments, in a password command, are the password itself."""
_OPERATORS = frozenset({"|", "||", "&&", ";", "&"})
_PATH_PREFIXES = ("/", "~/", "./", "../")
_KEY_FIRST_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_PAIR_VALUE = re.compile(r"[^&\"',;)}\]]*")
"""The value of a ``key=value`` pair. It ends at ``&`` and at the quote, comma or bracket that
closes the JSON string or text around it, as in ``"...&client_secret=S", ...``. Form values
are URL-encoded, so a real value contains none of those characters."""
_QUOTES = "\"'"


def mask_command(command: str) -> str:
    """Return a shell command line with the secrets in it replaced by ``MASK``.

    Each masked value is registered with the redactor. Masked are the values of
    ``key=value`` words (also the pairs of a form body joined with ``&``) and of
    ``--option=value`` whose name contains one of ``SECRET_NAME_PARTS``. So are the word
    after such an option, after ``-p`` and after ``Bearer``, the arguments of ``echo`` and
    ``printf``, token-shaped words, and the tokens that ``smtpdiag.logs.leaks.find_leaks``
    finds. Paths (``/``, ``~/``, ``./``, ``../``) and variable references (``$NAME``) stay
    readable, because the administrator must see which file or variable the command uses.
    Blanks between words are kept.
    """
    parts = re.split(r"(\s+)", command)
    state = _MaskState()
    return "".join(part if not part or part.isspace() else state.mask(part) for part in parts)


def mask_pairs(text: str) -> str:
    """Return ``text`` with the values of its ``key=value`` pairs whose key names a secret
    replaced by ``MASK``, and register those values with the redactor.

    For free text that may quote a request, such as a token endpoint's error description
    that repeats the form (``refresh_token=...&client_secret=...``).
    """
    parts = re.split(r"(\s+)", text)
    return "".join(part if not part or part.isspace() else _masked_pairs(part) for part in parts)


class _MaskState:
    """Masking state of one command line: what the words before the current one imply."""

    def __init__(self) -> None:
        self.next_is_secret = False
        self.printing = False
        self.at_command_start = True
        self.after_basic = False

    def mask(self, word: str) -> str:
        core = word.strip(_QUOTES)
        start = word.find(core) if core else 0
        prefix, suffix = word[:start], word[start + len(core) :]
        if core in _OPERATORS:
            self.next_is_secret = self.printing = False
            self.at_command_start = True
            return word
        masked = self._mask_core(core)
        self.at_command_start = False
        return prefix + masked + suffix

    def _mask_core(self, core: str) -> str:
        if self.next_is_secret:
            self.next_is_secret = False
            return _masked_value(core)
        if self.at_command_start and core in _PRINT_COMMANDS:
            self.printing = True
            return core
        if core.startswith("-"):
            return self._mask_option(core)
        if core.lower() == "bearer":
            self.next_is_secret = True
            return core
        if self.after_basic:
            self.after_basic = False
            if _is_basic_credentials(core):
                return _masked_value(core)
        if core.lower() == "basic":
            # HTTP Basic credentials follow: base64 of client_id:client_secret (RFC 7617).
            self.after_basic = True
            return core
        if self.printing:
            return _masked_value(core)
        return _masked_word(_masked_pairs(core))

    def _mask_option(self, core: str) -> str:
        name, separator, value = core.partition("=")
        secret_name = core in _SECRET_SHORT_OPTIONS or bool(
            name.startswith("--") and _SECRET_NAME.search(name)
        )
        if separator:
            masked = _masked_value(value) if secret_name else _masked_word(_masked_pairs(value))
            return f"{name}={masked}"
        self.next_is_secret = secret_name
        return core


def _is_basic_credentials(word: str) -> bool:
    """Tell whether ``word`` is base64 of ``name:password``, as HTTP Basic credentials are."""
    import base64
    import binascii

    if len(word) < 8 or not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", word):
        return False
    try:
        decoded = base64.b64decode(word, validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def _is_readable_reference(value: str) -> bool:
    """Tell whether ``value`` is a path or a variable reference, which stays readable."""
    return value.startswith(_PATH_PREFIXES) or value.startswith("$") or value == ""


def _masked_value(value: str) -> str:
    """Mask ``value`` as a whole unless it is a path or a variable reference."""
    if _is_readable_reference(value) or value == MASK:
        return value
    REDACTOR.register(value)
    return MASK


def _masked_pairs(word: str) -> str:
    """Mask the values of ``key=value`` pairs whose key names a secret."""
    return "&".join(_masked_first_pair(piece) for piece in word.split("&"))


def _masked_first_pair(piece: str) -> str:
    """Mask the value of the first ``key=value`` pair of ``piece`` if its key names a secret."""
    found = _first_pair(piece)
    if found is None:
        return piece
    key_start, equals, value_end = found
    if _SECRET_NAME.search(piece, key_start, equals) is None:
        return piece
    masked = _masked_value(piece[equals + 1 : value_end])
    return f"{piece[:equals]}={masked}{piece[value_end:]}"


def _first_pair(piece: str) -> tuple[int, int, int] | None:
    """Find the leftmost ``key=value`` pair: the key's start, the ``=`` and the value's end.

    A key is an ASCII letter or ``_`` followed by word characters, dots and hyphens. The scan
    goes back from each ``=`` in turn, so it takes linear time. The regex search it replaces
    tried every start inside a long run of word characters without ``=``, which took 19 s for
    64 KiB.
    """
    run_limit = 0
    equals = piece.find("=")
    while equals >= 0:
        run_start = equals
        while run_start > run_limit and _is_key_character(piece[run_start - 1]):
            run_start -= 1
        for key_start in range(run_start, equals):
            if piece[key_start] in _KEY_FIRST_CHARACTERS:
                value = _PAIR_VALUE.match(piece, equals + 1)
                value_end = value.end() if value else equals + 1
                return key_start, equals, value_end
        run_limit = equals + 1
        equals = piece.find("=", run_limit)
    return None


def _is_key_character(character: str) -> bool:
    # The same set as the regular expression class [\w.-] for str patterns.
    return character.isalnum() or character in "_.-"


def _masked_word(word: str) -> str:
    """Mask a token-shaped word, or the tokens inside it, unless the word is a path."""
    from smtpdiag.logs.leaks import find_leaks
    from smtpdiag.sasl.tokens import looks_like_token

    if _is_readable_reference(word):
        return word
    if looks_like_token(word):
        REDACTOR.register(word)
        return MASK
    parts: list[str] = []
    position = 0
    for leak in find_leaks(word):
        if leak.start < position:
            continue
        secret = word[leak.start : leak.end]
        REDACTOR.register(secret)
        parts += (word[position : leak.start], MASK)
        position = leak.end
    parts.append(word[position:])
    return "".join(parts)
