"""Memory benchmark of ``smtpdiag logs`` on streamed input of growing size.

For each size the script starts ``smtpdiag logs --format json --timezone UTC -`` and writes a
mixed mail log from ``loggen.write_log`` into its standard input through a pipe, so no log is
stored on disk. It records the child's peak RSS (``ru_maxrss`` from ``os.wait4``) and its RSS
after 10 %, 50 % and 100 % of the input (``VmRSS`` of ``/proc/PID/status``). It also records
the child's CPU time, the wall time, and whether the report's totals, reasons and windows equal
the generator's ground truth. The child runs under ``logs.WAIT4_HELPER``, a small process that
calls ``os.wait4``, because the ``ru_maxrss`` of a direct child would include this script's own
RSS. A last run spreads the smallest non-empty size over ``--long-span-days`` days, to measure
what each 15-minute window costs.

Usage: python bench/logs_memory.py [--sizes 0,50M,500M,5G] [--days 4] [--long-span-days 360]
       [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loggen import CHUNK_LINES, DAYS, MAX_DAYS, WINDOW_SECONDS, write_log
from logs import compare, measured_pid, measured_usage, start_measured
from run_bench import BenchError, find_smtpdiag

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_DOCS = REPOSITORY / "docs" / "benchmarks.md"
DEFAULT_SIZES = "0,50M,500M,5G"
DEFAULT_LONG_SPAN_DAYS = 360
SAMPLE_LINES = 200_000
"""Lines generated once to measure the mean line length, from which each size's line count
follows."""
RSS_POINTS = (0.1, 0.5, 1.0)
"""Shares of the input after which the child's VmRSS is read."""
WAIT_SECONDS = 3600.0
"""Seconds that the child may take after its input ended before it is killed."""

SECTION_HEADING = "## Log analysis: memory on streamed input"
SECTION_INTRO = f"""{SECTION_HEADING}

Peak RSS of `smtpdiag logs` while a generated mail log of growing size streams through a pipe
into its standard input. What is measured is described in `bench/README.md`.

```
python bench/logs_memory.py --sizes {DEFAULT_SIZES} --write
```

Recorded results follow, newest first.
"""
RUN_HEADING = re.compile(r"^### ", re.MULTILINE)
NEXT_SECTION = re.compile(r"^## ", re.MULTILINE)
UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}


@dataclass(frozen=True)
class Case:
    """One run: the bytes to generate and the days they span."""

    size: int
    days: int


@dataclass(frozen=True)
class Result:
    """Measurements of one run."""

    case: Case
    lines: int
    bytes_written: int
    attempts: int
    windows: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_kib: int
    rss_kib: tuple[int, ...]
    """VmRSS after each share of ``RSS_POINTS``; 0 where the child had already ended."""
    report_bytes: int
    exit_status: int
    problems: tuple[str, ...]


def parse_size(text: str) -> int:
    """Return the bytes of ``50M``, ``5G`` or ``1000`` (decimal units: 1M is 10**6 bytes)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)B?\s*", text.upper())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: give bytes with an optional K, M or G suffix, such as 500M"
        )
    return int(float(match[1]) * UNITS[match[2]])


def parse_sizes(text: str) -> list[int]:
    """Return the sizes of a comma-separated list such as ``0,50M,500M,5G``."""
    return [parse_size(part) for part in text.split(",") if part.strip()]


def parse_days(text: str) -> int:
    """Return a number of days from 0 to ``MAX_DAYS``; 0 turns the long-span run off."""
    try:
        days = int(text)
    except ValueError:
        days = -1
    if not 0 <= days <= MAX_DAYS:
        raise argparse.ArgumentTypeError(
            f"invalid number of days {text!r}: give a whole number from 0 to {MAX_DAYS}"
        )
    return days


def format_size(size: int) -> str:
    """Return ``size`` bytes as ``50 MB`` or ``5 GB``, in the decimal units of ``parse_size``."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} B"


def mean_line_bytes(days: int, end: float) -> float:
    """Return the mean length in bytes, newline included, of the generator's lines."""
    total = 0

    def count(text: str) -> None:
        nonlocal total
        total += len(text.encode("utf-8"))

    write_log(SAMPLE_LINES, count, days=days, end=end)
    return total / SAMPLE_LINES


def current_window_end() -> float:
    """Return the start of the current 15-minute window, the end of every generated span.

    Ending at the time of the run keeps each span within the year before it, where smtpdiag
    infers the year of a year-less syslog timestamp right.
    """
    now = time.time()
    return float(int(now) - int(now) % WINDOW_SECONDS)


def vm_rss_kib(pid: int) -> int:
    """Return the VmRSS of process ``pid`` in KiB, or 0 once it has ended."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match[1]) if match else 0


def run_case(smtpdiag: str, case: Case, line_bytes: float, end: float) -> Result:
    """Stream one generated log into ``smtpdiag logs -`` and measure the child."""
    lines = round(case.size / line_bytes)
    command = [smtpdiag, "logs", "--format", "json", "--timezone", "UTC", "-"]
    with (
        tempfile.TemporaryDirectory(prefix="smtpdiag-logs-memory-") as directory,
        tempfile.TemporaryFile() as output,
        tempfile.TemporaryFile() as errors,
    ):
        report_path = Path(directory) / "usage"
        started = time.perf_counter()
        helper = start_measured(
            command, report_path, stdin=subprocess.PIPE, stdout=output, stderr=errors
        )
        assert helper.stdin is not None
        pipe = helper.stdin
        pid = measured_pid(report_path, helper)
        written = {"lines": 0, "bytes": 0}
        marks = [max(1, round(share * lines)) for share in RSS_POINTS]
        rss: list[int] = []

        def send(text: str) -> None:
            data = text.encode("utf-8")
            pipe.write(data)
            written["bytes"] += len(data)
            written["lines"] += min(CHUNK_LINES, lines - written["lines"])
            while len(rss) < len(marks) and written["lines"] >= marks[len(rss)]:
                pipe.flush()
                rss.append(vm_rss_kib(pid))

        try:
            truth = write_log(lines, send, days=case.days, end=end)
            pipe.close()
        except BrokenPipeError:
            truth = None
            with contextlib.suppress(BrokenPipeError):
                pipe.close()
        rss += [vm_rss_kib(pid)] * (len(marks) - len(rss))
        try:
            helper.wait(WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            helper.wait(60)
        wall = time.perf_counter() - started
        usage = measured_usage(report_path)
        output.seek(0)
        report_text = output.read()
        errors.seek(0)
        error_text = errors.read().decode("utf-8", errors="replace").strip()

    problems = check_report(report_text, truth, usage.exit_status, error_text)
    windows = len(truth["windows"]) if truth is not None else 0
    return Result(
        case=case,
        lines=lines,
        bytes_written=written["bytes"],
        attempts=int(truth["attempts"]) if truth is not None else 0,
        windows=windows,
        wall_seconds=wall,
        cpu_seconds=usage.cpu_seconds,
        peak_rss_kib=usage.peak_rss_kib,
        rss_kib=tuple(rss),
        report_bytes=len(report_text),
        exit_status=usage.exit_status,
        problems=tuple(problems),
    )


def check_report(
    report_text: bytes, truth: dict[str, Any] | None, status: int, error_text: str
) -> list[str]:
    """Return the differences between the JSON report and the ground truth."""
    if truth is None:
        return [f"smtpdiag logs ended before its input did, exit status {status}: {error_text}"]
    try:
        report = json.loads(report_text)
    except ValueError:
        return [f"smtpdiag logs exited {status} without a JSON report: {error_text}"]
    return compare(report, truth)


def machine_facts(smtpdiag: str) -> list[str]:
    """Return ``name: value`` lines about the CPU, the OS, Python and smtpdiag."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    version = subprocess.run(
        [smtpdiag, "--version"], capture_output=True, text=True, timeout=60, check=False
    ).stdout.strip()
    return [
        f"CPU: {match[1].strip() if match else 'unknown'}, {os.cpu_count()} logical cores",
        f"OS: {platform.system()} {platform.release()}",
        f"Python: {platform.python_version()} ({sys.executable})",
        f"smtpdiag: {version or 'unknown'}",
    ]


def render_table(results: Sequence[Result]) -> str:
    """Return the Markdown table of every run."""
    rows = [
        "| input | days | lines | AUTH attempts | windows | wall s | smtpdiag CPU s | MB/s "
        "| peak RSS MiB | RSS at 10 % / 50 % / 100 % MiB | report kB | matches truth |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for result in results:
        # An empty input ends before the child has loaded its modules, so it gets no samples.
        rate = f"{result.bytes_written / 1e6 / result.wall_seconds:.1f}" if result.lines else "-"
        points = " / ".join(f"{kib / 1024:.0f}" for kib in result.rss_kib) if result.lines else "-"
        verdict = "yes" if not result.problems else "no"
        rows.append(
            f"| {format_size(result.bytes_written)} | {result.case.days} | {result.lines:,} "
            f"| {result.attempts:,} | {result.windows:,} | {result.wall_seconds:.1f} "
            f"| {result.cpu_seconds:.1f} | {rate} | {result.peak_rss_kib / 1024:.1f} "
            f"| {points} | {result.report_bytes / 1000:.0f} | {verdict} |"
        )
    return "\n".join(rows)


def render_section(facts: Sequence[str], results: Sequence[Result], line_bytes: float) -> str:
    """Return the dated Markdown subsection for docs/benchmarks.md."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"### {now}\n\n"
        + "\n".join(f"- {fact}" for fact in facts)
        + f"\n- Mean generated line: {line_bytes:.1f} bytes, newline included\n\n"
        + render_table(results)
        + "\n"
    )


def write_docs(path: Path, section: str) -> None:
    """Insert ``section`` as the newest run under ``SECTION_HEADING``, adding it if missing.

    A missing heading goes before "## Exporter", or at the end of a page without one.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start = text.find(SECTION_HEADING + "\n")
    if start < 0:
        exporter = text.find("\n## Exporter\n")
        if exporter < 0:
            text = text.rstrip("\n") + "\n\n" + SECTION_INTRO
        else:
            text = text[: exporter + 1] + SECTION_INTRO + "\n" + text[exporter + 1 :]
        start = text.find(SECTION_HEADING + "\n")

    body_start = start + len(SECTION_HEADING) + 1
    following = NEXT_SECTION.search(text, body_start)
    end = following.start() if following else len(text)
    newest = RUN_HEADING.search(text, body_start, end)
    at = newest.start() if newest else end
    before = text[:at].rstrip("\n") + "\n\n"
    after = text[at:]
    path.write_text(before + section + ("\n" + after if after else ""), encoding="utf-8")


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes(DEFAULT_SIZES),
        help=f"comma-separated input sizes in bytes, K, M or G decimal (default {DEFAULT_SIZES})",
    )
    parser.add_argument(
        "--days", type=parse_days, default=DAYS, help=f"days each log spans (default {DAYS})"
    )
    parser.add_argument(
        "--long-span-days",
        type=parse_days,
        default=DEFAULT_LONG_SPAN_DAYS,
        help="days of one more run at the smallest non-empty size, to measure the cost of "
        f"windows; 0 skips it (default {DEFAULT_LONG_SPAN_DAYS})",
    )
    parser.add_argument("--write", action="store_true", help="add a dated section to the docs")
    parser.add_argument(
        "--docs", type=Path, default=DEFAULT_DOCS, help=f"page to update (default {DEFAULT_DOCS})"
    )
    arguments = parser.parse_args(argv)
    if arguments.days == 0:
        parser.error("--days must be at least 1")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        smtpdiag = find_smtpdiag()
    except BenchError as error:
        print(error, file=sys.stderr)
        return 1
    cases = [Case(size, arguments.days) for size in arguments.sizes]
    non_empty = [size for size in arguments.sizes if size > 0]
    if arguments.long_span_days and non_empty:
        cases.append(Case(min(non_empty), arguments.long_span_days))

    end = current_window_end()
    line_bytes = mean_line_bytes(arguments.days, end)
    results = []
    for case in cases:
        print(f"streaming {format_size(case.size)} over {case.days} days ...", flush=True)
        result = run_case(smtpdiag, case, mean_line_bytes(case.days, end), end)
        results.append(result)
        print(render_table([result]).splitlines()[-1], flush=True)
        for problem in result.problems:
            print(f"mismatch: {problem}", file=sys.stderr)

    section = render_section(machine_facts(smtpdiag), results, line_bytes)
    print()
    print(section)
    failed = any(result.problems for result in results)
    if arguments.write and not failed:
        write_docs(arguments.docs, section)
        print(f"added a section to {arguments.docs}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
