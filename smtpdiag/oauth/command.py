"""Run a token command the way msmtp runs ``passwordeval``, and judge what it printed.

msmtp 1.8 starts the command through ``/bin/sh -c`` and takes the first line of its standard
output, without the newline and a carriage return before it, as the password: here, the
access token that goes into the XOAUTH2 or OAUTHBEARER string. It ignores further lines and
the exit status, and fails only when the command prints nothing ("cannot read output of").
Seen with Debian 12's msmtp 1.8.23 against the lab. So a ``Bearer`` prefix, a JSON body or
a log line before the token breaks AUTH later, with a reply that does not point back at the
command, while a second line or a failing exit status goes unnoticed until it matters.
msmtp's ``eval()`` (src/eval.c) reads only that first line, however long, then closes the
pipe and waits for the shell, not for background children that still hold the pipe.

msmtp waits for the command without a time limit; smtpdiag stops it after the timeout, with
its whole process group, so a hanging refresh script cannot hang the check. smtpdiag also
reads at most ``MAX_OUTPUT_BYTES`` of standard output and ``MAX_STDERR_BYTES`` of standard
error, and stops the command when its standard output grows past the limit.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field, replace
from typing import IO, Any

from smtpdiag.oauth.model import register_secret_fields
from smtpdiag.redact import MASK, REDACTOR, mask_command
from smtpdiag.sasl.tokens import looks_like_token
from smtpdiag.secrets import Secret

MAX_OUTPUT_BYTES = 65536
"""Maximum standard output read from the command; an access token is at most a few kilobytes."""

MAX_STDERR_BYTES = 4096
"""Maximum standard error read from the command; the rest is read and dropped."""

STDERR_EXCERPT = 300
"""Characters of standard error kept for the report, after redaction."""

_KILL_GRACE_SECONDS = 1.0
"""Time given to a stopped command's pipes to close and to its shell to be reaped."""

_POLL_SECONDS = 0.1
"""Interval at which a command's shell is checked for its exit while its pipes stay open."""

_REGISTER_MIN_LENGTH = 16
"""Shortest word of the output registered as a secret: shorter ones are words and codes."""


_MAX_TEXT_SCAN = 65536
"""Bytes of standard error searched for an OAuth error code in plain text."""
_MAX_JSON_STARTS = 50
"""Most ``{`` positions of standard error tried as the start of a JSON object."""

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

# "ya29." and "1//" start Google access and refresh tokens, "EwB" Microsoft's opaque access
# tokens, "0.A" Microsoft refresh tokens.
_TOKEN_PREFIXES = ("ya29.", "1//", "EwB", "0.A")
_TOKEN_SHAPED = re.compile(
    r"(?:ya29\.|1//|EwB|0\.A)[A-Za-z0-9\-._~+/]+=*|[A-Za-z0-9\-._~+/]{40,}=*"
)

_JQ_RAW_HINT = (
    " jq prints a string value with its double quotes unless it runs with -r: use "
    "jq -r .access_token, not jq .access_token."
)
_NO_VALUE_WORDS = frozenset({"null", "None", "undefined", "false"})
"""Words that JSON tools and scripting languages print for a missing value."""

_NO_VALUE_HINT = (
    " jq prints null when the token endpoint's reply has no access_token field, usually because "
    "the endpoint returned an error: print the reply to stderr in that case and nothing on "
    "stdout (jq -er '.access_token // empty')."
)
_TIMEOUT_HINT = (
    " A command that hangs usually waits on the network: give it a time limit, for example "
    "curl --max-time 30, or run it under timeout 60."
)

# msmtp 1.8.23's behaviour when its passwordeval command fails the same way.
_MSMTP_NOT_STARTED = "msmtp cannot run it either, so no mail is sent."
_MSMTP_NO_OUTPUT = (
    'It printed nothing, so msmtp running it as passwordeval fails too, with "cannot read '
    'output of" the command, and sends no mail.'
)
_MSMTP_BAD_OUTPUT = (
    "msmtp ignores the exit status and sends the first line of the output as the token, "
    "and the server rejects it."
)
_MSMTP_CARRIES_ON = (
    "msmtp ignores the exit status and sends the token it printed anyway, so the script's "
    "failure goes unnoticed until that token stops working."
)
_MSMTP_TIMEOUT = (
    "msmtp waits for the command without a time limit, so the mail hangs with the command."
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the command or its output."""

    code: str
    """``token.command_failed`` or ``token.command_output_invalid``."""
    details: dict[str, str]
    """Placeholder values of the finding: ``reason``, ``stderr`` and ``msmtp_outcome``, or
    ``problem``; ``fix_hint`` for either."""
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
    stderr_json: dict[str, Any] | None = None
    """A JSON object with an ``error`` member found in standard error, secrets registered."""


@dataclass(frozen=True)
class _Captured:
    """Output and end state of a finished or stopped command."""

    stdout: bytes
    stderr: bytes
    stdout_cut: bool
    """Whether standard output went past ``MAX_OUTPUT_BYTES`` and the command was stopped."""
    timed_out: bool
    returncode: int | None
    """Exit status, negative for a signal; None when the command was stopped."""


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
        reason = f"could not be started ({error.strerror or error})"
        return _failed(reason, "", None, _MSMTP_NOT_STARTED)
    captured = _capture(process, timeout)

    # Secrets in standard error are registered before the excerpt is made, so it masks them.
    stderr_json = _find_error_json(captured.stderr) or _find_error_text(captured.stderr)
    excerpt = _excerpt(captured.stderr)
    if captured.timed_out:
        _register_secrets(captured.stdout)
        failed = _failed(
            f"timed out after {timeout:g} s", excerpt, None, _MSMTP_TIMEOUT, _TIMEOUT_HINT
        )
        return replace(failed, stderr_json=stderr_json)

    outcome = judge_output(captured.stdout, excerpt, cut=captured.stdout_cut)
    outcome = replace(outcome, stderr_json=stderr_json)
    if captured.returncode is None or captured.returncode == 0:
        return outcome
    return _merge_exit_status(outcome, captured, excerpt)


def judge_output(stdout: bytes, stderr: str = "", *, cut: bool = False) -> CommandOutcome:
    """Return the token msmtp would take from ``stdout``, and what is wrong with the output.

    With ``cut`` set, the command printed more than ``stdout``, which then contains the first
    ``MAX_OUTPUT_BYTES``.
    """
    _register_secrets(stdout)
    facts: dict[str, Any] = {"command_stderr": stderr} if stderr else {}
    first_raw, newline, rest_raw = stdout.partition(b"\n")
    if cut and not newline:
        # msmtp reads the first line whatever its length, and would send all of it.
        return _invalid("printed more than 64 KiB without a line break", facts)
    if not cut and not stdout.strip():
        return _invalid("printed nothing", facts)

    extra = _extra_lines(stdout, rest_raw, cut)
    if stdout.lstrip().startswith(b"{"):
        # A JSON body spans lines by nature: only a cut one gets the extra-lines warning.
        json_outcome = _json_output(stdout, facts)
        if cut:
            return replace(json_outcome, problems=json_outcome.problems + extra)
        return json_outcome

    try:
        first = first_raw.decode("utf-8").removesuffix("\r")
    except UnicodeDecodeError:
        return _invalid("printed bytes that are not UTF-8 text", facts, extra)
    blocking = _first_line_problem(first)
    if blocking is not None:
        # A script may print a log line before the identity provider's error body.
        return CommandOutcome(
            problems=(blocking, *extra), facts=facts, json_body=_find_error_json(stdout)
        )
    return CommandOutcome(token=Secret(first, "token command"), problems=extra, facts=facts)


def _first_line_problem(first: str) -> Problem | None:
    """Return why msmtp could not use ``first`` as a bearer token, or None when it can."""
    stripped = first.strip()
    if not stripped:
        return _problem("printed an empty first line", True)
    if stripped.lower().startswith("bearer "):
        return _problem("printed 'Bearer ' before the token", True)
    if stripped != first:
        return _problem("printed blanks around the token", True)
    if len(first) >= 2 and first.startswith('"') and first.endswith('"'):
        return _problem("printed the token in double quotes", True, _JQ_RAW_HINT)
    if first in _NO_VALUE_WORDS:
        return _problem(f"printed {first!r} in place of a token", True, _NO_VALUE_HINT)
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in first):
        return _problem("printed a first line with spaces or control characters in it", True)
    if _B64TOKEN.fullmatch(first) is None:
        return _problem("printed characters that a bearer token cannot contain", True)
    return None


def _extra_lines(stdout: bytes, rest: bytes, cut: bool) -> tuple[Problem, ...]:
    """Return the warning about output after the first line, which msmtp ignores."""
    if cut:
        count = stdout.count(b"\n") + (0 if stdout.endswith(b"\n") else 1)
        problem = (
            f"printed more than 64 KiB in at least {count} lines, of which msmtp uses only "
            "the first"
        )
        return (_problem(problem, False),)
    if not rest.strip():
        return ()
    count = len(stdout.rstrip(b"\n").split(b"\n"))
    return (_problem(f"printed {count} lines, of which msmtp uses only the first", False),)


def _json_output(stdout: bytes, facts: dict[str, Any]) -> CommandOutcome:
    """Judge output that starts with ``{``: a JSON object, possibly followed by more lines."""
    text = stdout.decode("utf-8", errors="replace").lstrip()
    try:
        body, _ = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        return _invalid("printed something that starts like JSON", facts)
    register_secret_fields(body)
    return CommandOutcome(
        problems=(_problem("printed a JSON document", True),), facts=facts, json_body=body
    )


def _merge_exit_status(
    outcome: CommandOutcome, captured: _Captured, excerpt: str
) -> CommandOutcome:
    """Add the failed exit status of a command that ran to the end to what it printed."""
    status = captured.returncode
    assert status is not None
    reason = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
    if outcome.token is not None:
        msmtp = _MSMTP_CARRIES_ON
    elif captured.stdout:
        msmtp = _MSMTP_BAD_OUTPUT
    else:
        msmtp = _MSMTP_NO_OUTPUT
    failed = _failed(reason, excerpt, status, msmtp, blocking=outcome.token is None)
    if not captured.stdout.strip():
        # Nothing was printed: the exit status is the whole story.
        return replace(failed, stderr_json=outcome.stderr_json)
    return replace(
        outcome,
        problems=failed.problems + outcome.problems,
        facts={**outcome.facts, **failed.facts},
    )


def _problem(problem: str, blocking: bool, fix_hint: str = "") -> Problem:
    details = {"problem": problem, "fix_hint": fix_hint}
    return Problem("token.command_output_invalid", details, blocking)


def _failed(
    reason: str,
    stderr: str,
    status: int | None,
    msmtp_outcome: str,
    fix_hint: str = "",
    *,
    blocking: bool = True,
) -> CommandOutcome:
    facts: dict[str, Any] = {"command_stderr": stderr} if stderr else {}
    if status is not None:
        facts["exit_status"] = status
    details = {
        "reason": reason,
        "stderr": f"; it wrote to stderr: {stderr}" if stderr else "",
        "msmtp_outcome": msmtp_outcome,
        "fix_hint": fix_hint,
    }
    problem = Problem("token.command_failed", details, blocking)
    return CommandOutcome(problems=(problem,), facts=facts)


def _invalid(
    problem: str, facts: dict[str, Any], extra: tuple[Problem, ...] = ()
) -> CommandOutcome:
    return CommandOutcome(problems=(_problem(problem, True), *extra), facts=facts)


# Reading the command's output.


def _capture(process: subprocess.Popen[bytes], timeout: float) -> _Captured:
    """Read both pipes until the command ends, the deadline passes or stdout overflows."""
    assert process.stdout is not None and process.stderr is not None
    buffers = {process.stdout: bytearray(), process.stderr: bytearray()}
    limits = {process.stdout: MAX_OUTPUT_BYTES, process.stderr: MAX_STDERR_BYTES}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for pipe in buffers:
            selector.register(pipe, selectors.EVENT_READ)
        cut = _read_pipes(selector, buffers, limits, deadline, process.stdout, process)
        timed_out = not cut and process.poll() is None and bool(selector.get_map())
        if cut or timed_out:
            _kill_group(process)
            # Keep what the command wrote before it was stopped.
            grace = time.monotonic() + _KILL_GRACE_SECONDS
            _read_pipes(selector, buffers, limits, grace, process.stdout)
    process.stdout.close()
    process.stderr.close()

    returncode: int | None = None
    if cut or timed_out:
        _reap(process)
    else:
        try:
            returncode = process.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            # The command closed its pipes but did not exit.
            _kill_group(process)
            _reap(process)
            timed_out = True
    stdout, stderr = (bytes(buffer) for buffer in buffers.values())
    return _Captured(stdout, stderr, cut, timed_out, returncode)


def _read_pipes(
    selector: selectors.BaseSelector,
    buffers: dict[IO[bytes], bytearray],
    limits: dict[IO[bytes], int],
    deadline: float,
    stdout: IO[bytes],
    shell: subprocess.Popen[bytes] | None = None,
) -> bool:
    """Read until every pipe is closed or ``deadline``; return whether stdout overflowed.

    Bytes past a pipe's limit are read and dropped, so a command that writes a lot to
    standard error does not block on a full pipe. Closed pipes are unregistered. Once
    ``shell`` has exited, reading stops at most ``_KILL_GRACE_SECONDS`` later: a background
    child may hold the pipes open, and msmtp does not wait for it either, because it reads
    one line and then waits only for the shell.
    """
    while selector.get_map():
        now = time.monotonic()
        if shell is not None and shell.poll() is not None:
            deadline = min(deadline, now + _KILL_GRACE_SECONDS)
            shell = None
        remaining = deadline - now
        if remaining <= 0:
            return False
        wait = remaining if shell is None else min(remaining, _POLL_SECONDS)
        for key, _ in selector.select(wait):
            pipe: IO[bytes] = key.fileobj  # type: ignore[assignment]
            chunk = os.read(key.fd, 65536)
            if not chunk:
                selector.unregister(pipe)
                continue
            buffer = buffers[pipe]
            room = limits[pipe] - len(buffer)
            buffer += chunk[: max(room, 0)]
            if pipe is stdout and len(chunk) > room:
                return True
    return False


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for the killed shell so that it leaves no zombie."""
    try:
        process.wait(timeout=_KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()


# Secrets and standard error.


def _register_secrets(stdout: bytes) -> None:
    """Register the parts of the output that can be secrets, and leave words and codes readable.

    Registered: the first line when it is shaped like a token (after a 'Bearer ' prefix and
    quotes are taken off), and every token-shaped word anywhere in the output. JSON bodies
    add the values of their secret fields in ``_json_output``. Nothing shorter than
    ``_REGISTER_MIN_LENGTH`` is registered.
    """
    text = stdout.decode("utf-8", errors="replace")
    first = text.partition("\n")[0].strip()
    if first[:7].lower() == "bearer ":
        first = first[7:].strip()
    first = first.strip("\"'")
    if _B64TOKEN.fullmatch(first):
        _register(first)
    for match in _B64TOKEN.finditer(text):
        word = match.group()
        if word.startswith(_TOKEN_PREFIXES) or looks_like_token(word):
            _register(word)


def _register(value: str) -> None:
    if len(value) >= _REGISTER_MIN_LENGTH:
        REDACTOR.register(value)


def _find_error_json(output: bytes) -> dict[str, Any] | None:
    """Return the first JSON object with an ``error`` member in ``output``, if any.

    Every JSON object found on the way has its secret fields registered.
    """
    text = output.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    start = text.find("{")
    tries = 0
    while start >= 0 and tries < _MAX_JSON_STARTS:
        tries += 1
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            register_secret_fields(value)
            if "error" in value:
                return value
        start = text.find("{", end)
    return None


_OAUTH_ERROR_TEXT = re.compile(
    r"\b(?P<error>invalid_grant|invalid_client|unauthorized_client|invalid_scope"
    r"|unsupported_grant_type|invalid_request|consent_required|interaction_required)\b"
    r"[:\s]*(?P<description>[^\r\n]*)"
)
"""An RFC 6749 error code in free text, such as a token script's ``HTTP 400 invalid_grant:
AADSTS50173: The provided grant has expired ...``, and the rest of its line."""


def _find_error_text(output: bytes) -> dict[str, Any] | None:
    """Return an error body built from an OAuth error code in plain text, or None.

    Token scripts often print the error code and description of the provider's reply as text
    in place of its JSON body. ``error_description`` keeps the rest of the line, because it
    contains the AADSTS code that Microsoft puts there.
    """
    found = _OAUTH_ERROR_TEXT.search(output[:_MAX_TEXT_SCAN].decode("utf-8", errors="replace"))
    if found is None:
        return None
    # The rest of the line is the script's own text, which may hold a secret smtpdiag never saw.
    description = _TOKEN_SHAPED.sub(MASK, mask_command(REDACTOR.redact(found["description"])))
    return {"error": found["error"], "error_description": description.strip()}


def _excerpt(stderr: bytes) -> str:
    """Return the start of standard error on one line, with secrets masked.

    Known secrets are masked by the redactor. A refresh script may also print tokens that
    smtpdiag never saw, so token-shaped words are masked as well: runs of 40 or more token
    characters, and words that start like Google or Microsoft tokens. UUIDs (36 characters)
    such as trace ids stay readable.
    """
    text = " ".join(stderr[:MAX_STDERR_BYTES].decode("utf-8", errors="replace").split())
    # A script that prints its request (curl -v) shows the form fields and the Basic
    # credentials of the client: mask_command masks those as it does in a command line.
    return _TOKEN_SHAPED.sub(MASK, mask_command(REDACTOR.redact(text)))[:STDERR_EXCERPT]
