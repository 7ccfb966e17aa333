"""Fuzz target of the log parsers: ``LineParser.parse`` and ``find_leaks`` on each line.

The input bytes are split into lines and decoded as ``smtpdiag logs`` reads a file
(``reader.decode_line``: UTF-8 with invalid bytes replaced, a CRLF's carriage return
dropped). Each input gets a new ``LineParser``, so Postfix queue ids and Dovecot sessions
carry from one line to the next within an input but never across inputs, and a crash
reproduces from its input alone. Neither ``parse`` nor ``find_leaks`` documents an
exception, so every exception is a failure. Every leak must lie inside its line, because
``mask_leaks`` cuts the line at the leak's offsets.

Run: ``python bench/fuzz/fuzz_logs.py -atheris_runs=200000 bench/fuzz/corpus/logs``
(any libFuzzer flag works). libFuzzer writes the inputs it finds to the first corpus
directory, so give a scratch directory first to keep the seeds unchanged.
"""

from __future__ import annotations

import sys
from datetime import UTC

import atheris

with atheris.instrument_imports(include=["smtpdiag"]):
    from smtpdiag.logs.dispatch import LineParser
    from smtpdiag.logs.leaks import find_leaks, mask_leaks
    from smtpdiag.logs.reader import decode_line
    from smtpdiag.logs.timestamps import TimeReader

NOW = 1_796_450_400.0
"""2026-12-05 06:00:00 UTC: a fixed current time, so year inference is the same every run."""


def fixed_now() -> float:
    """Return ``NOW``, the clock of the ``TimeReader``."""
    return NOW


def test_one_input(data: bytes) -> None:
    """Parse every line of one input, then find and mask its leaks."""
    parser = LineParser(TimeReader(UTC, fixed_now))
    for raw in data.split(b"\n"):
        line = decode_line(raw)
        parser.parse(line)
        leaks = find_leaks(line)
        for leak in leaks:
            if not 0 <= leak.start < leak.end <= len(line):
                raise AssertionError(f"leak {leak} outside a line of {len(line)} characters")
        mask_leaks(line, leaks)


def main() -> None:
    """Start libFuzzer with the command-line flags."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
