"""Build the seed corpora of the fuzz targets from inputs already in the repository.

``corpus/decode/`` gets every string constant of at least ``MIN_SEED_CHARACTERS`` from the
test modules under ``tests/decode/`` (pasted replies, transcripts, token bodies, log lines)
and every line of the captured logs in ``tests/logs/data/``. ``corpus/logs/`` gets each
captured log file whole and each of its lines alone. A seed's file name is the SHA-1 of its
content, as libFuzzer names the inputs it adds, so running the script again changes nothing.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DECODE_TESTS = ROOT / "tests" / "decode"
LOG_DATA = ROOT / "tests" / "logs" / "data"

MIN_SEED_CHARACTERS = 8
"""Shorter string constants in the tests are mostly ids, codes and field names, not pasted input."""


def string_constants(path: Path) -> list[str]:
    """Return the string constants of a Python module, adjacent literals already joined."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def log_files() -> list[Path]:
    """Return the captured daemon logs, without the directory's README."""
    return sorted(LOG_DATA.glob("*.log"))


def log_lines() -> list[bytes]:
    """Return every non-empty line of the captured logs, without its line ending."""
    lines: list[bytes] = []
    for path in log_files():
        lines.extend(line for line in path.read_bytes().splitlines() if line)
    return lines


def decode_seeds() -> set[bytes]:
    """Return the seeds of the decode target."""
    seeds = set(log_lines())
    for path in sorted(DECODE_TESTS.glob("test_*.py")):
        for text in string_constants(path):
            if len(text) >= MIN_SEED_CHARACTERS:
                seeds.add(text.encode("utf-8", errors="surrogatepass"))
    return seeds


def logs_seeds() -> set[bytes]:
    """Return the seeds of the log parser target."""
    seeds = set(log_lines())
    seeds.update(path.read_bytes() for path in log_files())
    return seeds


def write_corpus(directory: Path, seeds: set[bytes]) -> int:
    """Write each seed to ``directory`` under its SHA-1 and return the number of seeds."""
    directory.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    return len(seeds)


def main() -> None:
    """Write both corpora and print their sizes."""
    decode_count = write_corpus(HERE / "corpus" / "decode", decode_seeds())
    logs_count = write_corpus(HERE / "corpus" / "logs", logs_seeds())
    print(f"corpus/decode: {decode_count} seeds, corpus/logs: {logs_count} seeds")


if __name__ == "__main__":
    main()
