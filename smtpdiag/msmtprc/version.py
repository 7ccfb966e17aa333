"""Read ``msmtp --version``: the version and the authentication methods the binary supports.

msmtp 1.8.23 prints its version on the first line ("msmtp version 1.8.23") and, on the line
after "Supported authentication methods:", the mechanisms in lower case separated by blanks.
The mechanisms depend on the build: XOAUTH2 exists since msmtp 1.8.13 and OAUTHBEARER since
1.8.4 (msmtp's NEWS file). The program runs with ``LC_ALL=C`` because msmtp translates these
headings when NLS is enabled.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import time
from dataclasses import dataclass

MAX_OUTPUT_BYTES = 16384
"""Maximum standard output read; msmtp 1.8.23 prints about 800 bytes."""

_VERSION = re.compile(r"^msmtp version (\S+)", re.MULTILINE)
_MECHANISMS_HEADING = "Supported authentication methods:"
_SYSTEM_CONFIG = re.compile(r"^System configuration file name: (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class MsmtpVersion:
    """Output of ``msmtp --version``, or the reason it could not be run."""

    program: str
    """The program as configured, such as ``msmtp`` or ``/usr/bin/msmtp``."""
    version: str | None = None
    """Version such as ``1.8.23``; None when the output has no version line."""
    mechanisms: tuple[str, ...] | None = None
    """Supported mechanisms in lower case; None when the output does not list them."""
    system_config_file: str | None = None
    """File msmtp reads as its system configuration, whose mode it never tests; None when
    the output does not name it."""
    error: str | None = None
    """Reason the program could not be run or failed, such as ``not found``; None when it
    ran."""


def parse_version_output(program: str, text: str) -> MsmtpVersion:
    """Return the version and mechanisms found in the output of ``msmtp --version``."""
    match = _VERSION.search(text)
    version = match.group(1) if match else None
    system = _SYSTEM_CONFIG.search(text)
    system_config_file = system.group(1).strip() if system else None
    return MsmtpVersion(program, version, _mechanisms(text), system_config_file)


def _mechanisms(text: str) -> tuple[str, ...] | None:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith(_MECHANISMS_HEADING):
            continue
        # msmtp 1.8.23 puts the list on the next line; a list after the colon is read too.
        rest = line[len(_MECHANISMS_HEADING) :].strip()
        if not rest and index + 1 < len(lines):
            rest = lines[index + 1]
        return tuple(name.lower() for name in rest.split())
    return None


def read_msmtp_version(program: str, timeout: float, path: str | None = None) -> MsmtpVersion:
    """Run ``program --version`` and parse its output.

    ``path`` is the ``PATH`` searched for a bare program name (None: ``os.defpath``). The
    program runs without a shell, with standard input closed, for at most ``timeout``
    seconds, and at most ``MAX_OUTPUT_BYTES`` of its output are read.
    """
    environment = {"PATH": path or os.defpath, "LC_ALL": "C"}
    try:
        process = subprocess.Popen(
            [program, "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=environment,
        )
    except FileNotFoundError:
        return MsmtpVersion(program, error="not found")
    except PermissionError:
        return MsmtpVersion(program, error="not executable")
    except OSError as error:
        return MsmtpVersion(program, error=f"cannot be run: {error.strerror or error}")
    output, finished = _read_capped(process, timeout)
    if not finished:
        process.kill()
        process.wait()
        if len(output) < MAX_OUTPUT_BYTES:
            return MsmtpVersion(program, error=f"did not finish within {timeout:g} s")
        # The headings come first, so the start of an over-long output is still read.
        return parse_version_output(program, output.decode("utf-8", errors="replace"))
    status = process.wait()
    if status != 0:
        return MsmtpVersion(program, error=f"exited with status {status}")
    return parse_version_output(program, output.decode("utf-8", errors="replace"))


def _read_capped(process: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bool]:
    """Read standard output until the process ends; False when the deadline or the cap came
    first, in which case the process still runs."""
    assert process.stdout is not None
    output = bytearray()
    deadline = time.monotonic() + timeout
    with process.stdout, selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                return bytes(output), False
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            output += chunk
            if len(output) >= MAX_OUTPUT_BYTES:
                return bytes(output[:MAX_OUTPUT_BYTES]), False
    try:
        process.wait(timeout=max(deadline - time.monotonic(), 0.05))
    except subprocess.TimeoutExpired:
        return bytes(output), False
    return bytes(output), True
