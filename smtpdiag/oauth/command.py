"""Run a token command the way msmtp runs ``passwordeval``, and judge what it printed.

msmtp 1.8 starts the command through ``/bin/sh -c`` and takes the first line of its standard
output, without the newline and a carriage return before it, as the password: here, the
access token that goes into the XOAUTH2 or OAUTHBEARER string. It ignores further lines and
the exit status, and fails only when the command prints nothing ("cannot read output of").
Seen with Debian 12's msmtp 1.8.23 against the lab. So a ``Bearer`` prefix, a JSON body or
a log line before the token breaks AUTH later, with a reply that does not point back at the
command, while a second line or a failing exit status goes unnoticed until it matters.

msmtp waits for the command without a time limit; smtpdiag stops it after the timeout, with
its whole process group, so a hanging refresh script cannot hang the check.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Any

from smtpdiag.redact import MASK, REDACTOR
from smtpdiag.secrets import Secret

MAX_OUTPUT_BYTES = 65536
"""Most output read from the command; an access token is at most a few kilobytes."""

STDERR_EXCERPT = 300
"""Characters of standard error kept for the report, after redaction."""

_REGISTER_MIN_LENGTH = 8
"""Shortest word of the output treated as a possible secret and masked from reports."""

_SECRET_FIELDS = ("access_token", "refresh_token", "id_token", "client_secret")

# Token characters of RFC 6750's b64token; "ya29." and "1//" start Google access and refresh
# tokens, "EwB" Microsoft's opaque access tokens, "0.A" Microsoft refresh tokens.
_TOKEN_SHAPED = re.compile(
    r"(?:ya29\.|1//|EwB|0\.A)[A-Za-z0-9\-._~+/]+=*|[A-Za-z0-9\-._~+/]{40,}=*"
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the command or its output."""

    code: str
    """``token.command_failed`` or ``token.command_output_invalid``."""
    details: dict[str, str]
    """Placeholder values of the finding: ``reason`` and ``stderr``, or ``problem``."""
    blocking: bool
    """Whether msmtp would get no usable token; otherwise it carries on regardless."""


@dataclass(frozen=True)
class CommandOutcome:
    """Result of a token command: the token msmtp would use, and every problem seen."""

    token: Secret | None = None
    """The first output line when it is shaped like a bare token, else None."""
    problems: tuple[Problem, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)
    json_body: dict[str, Any] | None = None
    """The JSON object the command printed in place of a token, secrets registered."""


def run_token_command(command: str, timeout: float) -> CommandOutcome:
    """Run ``command`` with ``/bin/sh -c`` and return the token it printed and any problem."""
    try:
        process = subprocess.Popen(  # noqa: S602 (the shell is the documented interface)
            command,
            shell=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        return _failed(f"could not be started ({error.strerror or error})", "", None)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = _drain(process)
        _register_words(stdout[:MAX_OUTPUT_BYTES])
        return _failed(f"timed out after {timeout:g} s", _excerpt(stderr), None)
    excerpt = _excerpt(stderr)
    outcome = judge_output(stdout[:MAX_OUTPUT_BYTES], excerpt)
    if process.returncode == 0:
        return outcome
    reason = (
        f"was killed by signal {-process.returncode}"
        if process.returncode < 0
        else f"exited with status {process.returncode}"
    )
    failed = _failed(reason, excerpt, process.returncode, blocking=outcome.token is None)
    if outcome.token is None and not outcome.json_body:
        # Nothing usable was printed: the exit status is the whole story.
        return failed
    return CommandOutcome(
        token=outcome.token,
        problems=failed.problems + outcome.problems,
        facts={**outcome.facts, **failed.facts},
        json_body=outcome.json_body,
    )


def judge_output(stdout: bytes, stderr: str = "") -> CommandOutcome:
    """Return the token msmtp would take from ``stdout``, and what is wrong with the output."""
    _register_words(stdout)
    facts: dict[str, Any] = {"command_stderr": stderr} if stderr else {}
    try:
        text = stdout.decode("utf-8")
    except UnicodeDecodeError:
        return _invalid("printed bytes that are not UTF-8 text", facts)
    if not text.strip():
        return _invalid("printed nothing", facts)
    if text.lstrip().startswith("{"):
        return _json_output(text.strip(), facts)

    first, _, rest = text.partition("\n")
    first = first.removesuffix("\r")
    problems: list[Problem] = []
    if rest.strip():
        count = len(text.rstrip("\n").split("\n"))
        problems.append(
            _problem(f"printed {count} lines, of which msmtp uses only the first", False)
        )

    stripped = first.strip()
    blocking: str | None = None
    if not stripped:
        blocking = "printed an empty first line"
    elif stripped.lower().startswith("bearer "):
        blocking = "printed 'Bearer ' before the token"
    elif stripped != first:
        blocking = "printed blanks around the token"
    elif any(char.isspace() or ord(char) < 0x20 for char in first):
        blocking = "printed a first line with spaces or control characters in it"

    if blocking is not None:
        return CommandOutcome(problems=(_problem(blocking, True), *problems), facts=facts)
    return CommandOutcome(
        token=Secret(first, "token command"), problems=tuple(problems), facts=facts
    )


def _json_output(text: str, facts: dict[str, Any]) -> CommandOutcome:
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        return _invalid("printed something that starts like JSON", facts)
    for name in _SECRET_FIELDS:
        if isinstance(body.get(name), str):
            REDACTOR.register(body[name])
    return CommandOutcome(
        problems=(_problem("printed a JSON document", True),), facts=facts, json_body=body
    )


def _problem(problem: str, blocking: bool) -> Problem:
    return Problem("token.command_output_invalid", {"problem": problem}, blocking)


def _failed(
    reason: str, stderr: str, status: int | None, *, blocking: bool = True
) -> CommandOutcome:
    facts: dict[str, Any] = {"command_stderr": stderr} if stderr else {}
    if status is not None:
        facts["exit_status"] = status
    shown = f"; it wrote to stderr: {stderr}" if stderr else ""
    problem = Problem("token.command_failed", {"reason": reason, "stderr": shown}, blocking)
    return CommandOutcome(problems=(problem,), facts=facts)


def _invalid(problem: str, facts: dict[str, Any]) -> CommandOutcome:
    return CommandOutcome(problems=(_problem(problem, True),), facts=facts)


def _register_words(stdout: bytes) -> None:
    """Mask every long word the command printed: it may be a token even when misformatted."""
    text = stdout.decode("utf-8", errors="replace")
    REDACTOR.register(text.strip())
    for word in text.replace('"', " ").replace("'", " ").split():
        if len(word) >= _REGISTER_MIN_LENGTH:
            REDACTOR.register(word)


def _excerpt(stderr: bytes) -> str:
    """Return the start of standard error on one line, with secrets masked.

    Known secrets are masked by the redactor. A refresh script may also print tokens that
    smtpdiag never saw, so token-shaped words are masked as well: runs of 40 or more token
    characters, and words that start like Google or Microsoft tokens. UUIDs (36 characters)
    such as trace ids stay readable.
    """
    text = " ".join(stderr[:4096].decode("utf-8", errors="replace").split())
    return _TOKEN_SHAPED.sub(MASK, REDACTOR.redact(text))[:STDERR_EXCERPT]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def _drain(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Collect what the killed command left in its pipes, waiting at most one second."""
    try:
        return process.communicate(timeout=1)
    except subprocess.TimeoutExpired:
        process.kill()
        return b"", b""
