"""Fuzz target of ``smtpdiag decode``: input classification and decoding by ``decode_text``.

The input bytes become text as the command reads standard input (UTF-8, invalid bytes as
``\\xNN`` escapes). ``decode_text`` is documented never to raise for any text, so every
exception it raises is a failure. The result then goes through ``to_dict`` and
``json.dumps``, which ``smtpdiag decode --format json`` runs on every result.

Run: ``python bench/fuzz/fuzz_decode.py -atheris_runs=200000 bench/fuzz/corpus/decode``
(any libFuzzer flag works). libFuzzer writes the inputs it finds to the first corpus
directory, so give a scratch directory first to keep the seeds unchanged.
"""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports(include=["smtpdiag"]):
    from smtpdiag.decode.detect import decode_text

HOSTS = (None, "smtp.gmail.com", "smtp.office365.com", "127.0.0.1")
"""Values of ``--host``. The input's length picks one, so the text itself stays unchanged."""


def test_one_input(data: bytes) -> None:
    """Decode one input and serialise its result as JSON output does."""
    text = data.decode("utf-8", errors="backslashreplace")
    host = HOSTS[len(data) % len(HOSTS)]
    result = decode_text(text, host)
    json.dumps(result.to_dict())


def main() -> None:
    """Start libFuzzer with the command-line flags."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
