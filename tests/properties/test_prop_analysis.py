"""Properties of the log analysis: the counts depend on the lines and their order within each
file, not on how the lines are split into files or how files are interleaved."""

from __future__ import annotations

import itertools
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from smtpdiag.logs.analysis import Analysis, AnalysisOptions, LogsSummary, analyze_files
from smtpdiag.logs.reader import LogLine

DATA = Path(__file__).resolve().parent.parent / "logs" / "data"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()
# Ten-minute windows, so that the generated times of one day fall into many windows.
OPTIONS = AnalysisOptions(window_seconds=600.0, zone=UTC)

MSMTP_FAILURE = (
    "host=smtp.example.com tls=on auth=on user=user@example.com from=user@example.com "
    "recipients=a@example.net smtpstatus=535 smtpmsg='535 5.7.8 Username and Password not "
    "accepted' errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM"
)
MSMTP_SUCCESS = (
    "host=smtp.example.com tls=on auth=on user=user@example.com from=user@example.com "
    "recipients=a@example.net mailsize=147 smtpstatus=250 smtpmsg='250 2.0.0 OK' exitcode=EX_OK"
)
EXIM_CLIENT_FAILURE = (
    "smtp_relay_login authenticator failed H=relay.example.net [192.0.2.16] 535 Error: "
    "authentication failed"
)
# Captured files keep their line order: Postfix and Dovecot lines refer to earlier lines of
# the same log (queue ids, login sessions).
CAPTURED_FILES = {
    path.name: path.read_text(encoding="utf-8").splitlines() for path in sorted(DATA.glob("*.log"))
}
SECONDS_OF_DAY = st.integers(0, 86_399)


def clock(seconds: int) -> str:
    """Return ``HH:MM:SS`` for a number of seconds after midnight."""
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


MSMTP_LINE = st.builds(
    lambda seconds, record: f"Dec 04 {clock(seconds)} {record}",
    SECONDS_OF_DAY,
    st.sampled_from([MSMTP_FAILURE, MSMTP_SUCCESS]),
)
EXIM_LINE = st.builds(
    lambda seconds: f"2026-12-04 {clock(seconds)} {EXIM_CLIENT_FAILURE}", SECONDS_OF_DAY
)
LOG_FILES = st.tuples(
    st.lists(MSMTP_LINE, max_size=30),
    st.lists(EXIM_LINE, max_size=10),
    st.lists(st.sampled_from(sorted(CAPTURED_FILES)), max_size=4, unique=True),
).map(lambda parts: [parts[0], parts[1], *(CAPTURED_FILES[name] for name in parts[2])])


def counts(summary: LogsSummary) -> dict[str, Any]:
    """Return every count of a summary, without examples and leaks, which name the files."""
    return {
        "lines": summary.lines,
        "attempts": summary.attempts,
        "failures": summary.failures,
        "parse_errors": summary.parse_errors,
        "by_source": summary.by_source,
        "by_host": summary.by_host,
        "by_reason": {code: reason.count for code, reason in summary.by_reason.items()},
        "windows": summary.windows,
        "attempts_outside": summary.attempts_outside,
    }


def analyze(files: list[list[str]]) -> LogsSummary:
    """Write each list of lines to its own file and analyze the files in that order."""
    with tempfile.TemporaryDirectory() as directory:
        paths = []
        for index, lines in enumerate(files):
            path = Path(directory) / f"{index}.log"
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            paths.append(str(path))
        return analyze_files(paths, OPTIONS, now=lambda: NOW)


def feed(lines: list[LogLine]) -> LogsSummary:
    analysis = Analysis(OPTIONS, lambda: NOW)
    for line in lines:
        analysis.feed(line)
    return analysis.summary()


def numbered(files: list[list[str]]) -> list[list[LogLine]]:
    return [
        [LogLine(f"{index}.log", number, text) for number, text in enumerate(lines, 1)]
        for index, lines in enumerate(files)
    ]


@given(LOG_FILES, st.lists(st.integers(0, 200), max_size=6))
def test_chunk_split_keeps_counts(files: list[list[str]], cuts: list[int]) -> None:
    lines = [line for lines in files for line in lines]
    bounds = sorted({cut % (len(lines) + 1) for cut in cuts} | {0, len(lines)})
    chunks = [lines[start:end] for start, end in itertools.pairwise(bounds)]
    whole = analyze([lines])
    # Every generated msmtp and Exim line is one AUTH attempt, so the property is not vacuous.
    assert whole.attempts >= len(files[0]) + len(files[1])
    assert counts(analyze(chunks)) == counts(whole)


@given(LOG_FILES, st.data())
def test_file_interleaving_keeps_counts(files: list[list[str]], data: st.DataObject) -> None:
    pending = numbered(files)
    in_file_order = [line for lines in pending for line in lines]
    interleaved = []
    while any(pending):
        choices = [lines for lines in pending if lines]
        chosen = data.draw(st.sampled_from(range(len(choices))))
        interleaved.append(choices[chosen].pop(0))
    assert counts(feed(interleaved)) == counts(feed(in_file_order))
