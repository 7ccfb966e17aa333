"""Benchmark of log analysis: ``smtpdiag logs`` against grep, its accuracy, and follow mode.

Generates a mixed log with ``loggen.py``, then times ``LC_ALL=C grep -cE
'authenticat(ion|or) failed'`` and ``smtpdiag logs --format json --timezone UTC`` on it. It
measures the peak RSS of the smtpdiag process and compares its totals, reasons and windows
with the ground truth (exit status 1 on a mismatch). Last, it measures the CPU time that the
Follower and the analysis use per wall-clock second while a writer process appends lines at a
fixed rate.

Usage: python bench/logs.py [--lines 5000000] [--follow-rate 20000 --follow-seconds 10] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loggen import generate

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

WAIT4_HELPER = """
import os, sys
report = open(sys.argv[1], "w")
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
os.close(0)  # so that a writer into the command's stdin gets EPIPE once the command ends
report.write(f"{pid}\\n")
report.flush()
_, status, usage = os.wait4(pid, 0)
cpu = usage.ru_utime + usage.ru_stime
report.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss} {cpu}\\n")
"""
"""Runs a command as its child and writes the child's pid, then its exit status, peak RSS
(KiB) and CPU seconds from ``os.wait4``, to the file named first.

Linux copies the high-water RSS of the process that execs into the new program's
``ru_maxrss``, and a child of this benchmark first runs in a copy of the benchmark's memory.
Its ``ru_maxrss`` would then show the benchmark's RSS whenever that is larger. This helper
runs with ``-I -S`` in about 9 MiB, so that is the floor of what it reports."""


@dataclass(frozen=True)
class ChildUsage:
    """Exit status, peak RSS and CPU time of a command run through ``WAIT4_HELPER``."""

    exit_status: int
    peak_rss_kib: int
    cpu_seconds: float


def start_measured(command: Sequence[str], report: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``command`` under ``WAIT4_HELPER``, which writes its usage to ``report``.

    ``popen`` goes to ``subprocess.Popen``; the command inherits the helper's standard streams.
    """
    helper = [sys.executable, "-I", "-S", "-c", WAIT4_HELPER, str(report), *command]
    return subprocess.Popen(helper, **popen)


def measured_pid(report: Path, helper: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """Return the pid of the command that ``helper`` started, once it wrote it to ``report``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = report.read_text().splitlines() if report.exists() else []
        if lines:
            return int(lines[0])
        if helper.poll() is not None:
            break
        time.sleep(0.01)
    raise RuntimeError(f"the wait4 helper wrote no pid to {report}")


def measured_usage(report: Path) -> ChildUsage:
    """Return the usage that ``WAIT4_HELPER`` wrote to ``report`` after its command ended."""
    lines = report.read_text().splitlines()
    if len(lines) < 2:
        raise RuntimeError(f"the wait4 helper wrote no usage to {report}")
    status, rss, cpu = lines[1].split()
    return ChildUsage(int(status), int(rss), float(cpu))


def run_timed(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[float, int, bytes, int]:
    """Run ``command``; return wall seconds, exit status, stdout and peak RSS in KiB."""
    with tempfile.TemporaryDirectory(prefix="smtpdiag-wait4-") as directory:
        report = Path(directory) / "usage"
        with tempfile.TemporaryFile() as output:
            started = time.perf_counter()
            helper = start_measured(command, report, stdout=output, env=env)
            helper.wait()
            elapsed = time.perf_counter() - started
            usage = measured_usage(report)
            output.seek(0)
            return elapsed, usage.exit_status, output.read(), usage.peak_rss_kib


def compare(report: dict[str, Any], truth: dict[str, Any]) -> list[str]:
    """Return the differences between the JSON report and the ground truth."""
    problems = []
    totals = report.get("totals") or {}
    for key in ("lines", "attempts", "failures"):
        if totals.get(key) != truth[key]:
            problems.append(f"{key}: report {totals.get(key)}, truth {truth[key]}")
    reported = {
        code: (value["count"] if isinstance(value, dict) else value)
        for code, value in (report.get("by_reason") or {}).items()
    }
    if reported != truth["by_reason"]:
        problems.append(f"by_reason: report {reported}, truth {truth['by_reason']}")
    windows = {
        datetime.fromisoformat(window["start"].replace("Z", "+00:00")).timestamp(): (
            window["attempts"],
            window["failures"],
        )
        for window in report.get("windows") or []
        if window["attempts"]
    }
    expected = {
        window["start"]: (window["attempts"], window["failures"]) for window in truth["windows"]
    }
    if windows != expected:
        missing = len(set(expected) ^ set(windows))
        different = sum(
            1 for start in expected if start in windows and windows[start] != expected[start]
        )
        problems.append(f"windows: {missing} starts differ, {different} counts differ")
    return problems


FOLLOW_CHILD = """
import sys, time
from smtpdiag.logs.analysis import Analysis, AnalysisOptions
from smtpdiag.logs.follow import Follower
follower = Follower([sys.argv[1]], start_at_end=False)
analysis = Analysis(AnalysisOptions())
deadline = time.monotonic() + float(sys.argv[2])
def drain():
    for line in follower.poll():
        analysis.feed(line)
while time.monotonic() < deadline:
    drain()
    time.sleep(0.1)
drain()
print(follower.lines_read, analysis.summary().attempts)
"""

WRITER_CHILD = """
import sys, time
source, target, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
lines = open(source).read().splitlines(keepends=True)
started = time.monotonic(); written = 0
with open(target, "a") as stream:
    while (now := time.monotonic() - started) < seconds:
        due = min(int(now * rate), len(lines))
        stream.write("".join(lines[written:due])); stream.flush(); written = due
        time.sleep(0.01)
print(written)
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def follow_run(directory: Path, rate: int, seconds: float) -> dict[str, float]:
    """Measure the CPU seconds per wall second that following and analysing take while lines
    arrive at ``rate``: the Follower feeds every candidate line to an Analysis, as
    ``smtpdiag logs --follow`` does."""
    source = directory / "follow-source.log"
    generate(int(rate * seconds) + rate, source, seed=2)
    target = directory / "follow.log"
    target.write_text("")
    follower = subprocess.Popen(
        [sys.executable, "-c", FOLLOW_CHILD, str(target), str(seconds + 1)], stdout=subprocess.PIPE
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER_CHILD, str(source), str(target), str(rate), str(seconds)],
        stdout=subprocess.PIPE,
    )
    started = time.perf_counter()
    last_cpu = 0.0
    while follower.poll() is None:
        try:
            last_cpu = cpu_seconds(follower.pid)
        except OSError:
            break
        time.sleep(0.2)
    wall = time.perf_counter() - started
    written = int(writer.communicate()[0])
    lines_read, _ = (int(value) for value in follower.communicate()[0].split())
    return {"written": written, "lines_read": lines_read, "cpu_per_second": last_cpu / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark smtpdiag logs")
    parser.add_argument("--lines", type=int, default=5_000_000, help="lines in the generated log")
    parser.add_argument("--follow-rate", type=int, default=20_000, help="lines per second appended")
    parser.add_argument(
        "--follow-seconds", type=float, default=10.0, help="length of the follow run"
    )
    parser.add_argument(
        "--write", action="store_true", help="append the table to docs/benchmarks.md"
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md",
    )
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="smtpdiag-bench-") as name:
        directory = Path(name)
        log = directory / "mail.log"
        started = time.perf_counter()
        truth = generate(arguments.lines, log)
        generate_seconds = time.perf_counter() - started

        grep = ["grep", "-cE", "authenticat(ion|or) failed", str(log)]
        grep_seconds, _, grep_output, _ = run_timed(grep, env={**os.environ, "LC_ALL": "C"})
        smtpdiag = shutil.which("smtpdiag", path=str(Path(sys.executable).parent))
        command = [smtpdiag] if smtpdiag else [sys.executable, "-m", "smtpdiag"]
        command += ["logs", "--format", "json", "--timezone", "UTC", str(log)]
        logs_seconds, status, output, rss = run_timed(command)
        try:
            report = json.loads(output)
        except ValueError:
            print(f"smtpdiag logs exited {status} without a JSON report", file=sys.stderr)
            return 1
        problems = compare(report, truth)
        follow = follow_run(directory, arguments.follow_rate, arguments.follow_seconds)

    table = "\n".join(
        [
            f"Log of {arguments.lines} lines ({truth['attempts']} AUTH attempts, "
            f"{truth['failures']} failures), generated in {generate_seconds:.1f} s.",
            "",
            "| measurement | value |",
            "|---|---|",
            "| `LC_ALL=C grep -cE 'authenticat(ion\\|or) failed'` | "
            f"{grep_seconds:.2f} s ({int(grep_output)} lines) |",
            f"| `smtpdiag logs --format json` | {logs_seconds:.2f} s, exit {status} |",
            f"| peak RSS of smtpdiag logs | {rss / 1024:.0f} MiB |",
            f"| report matches ground truth | {'yes' if not problems else 'no'} |",
            f"| Follower + analysis CPU per wall second at {arguments.follow_rate} lines/s | "
            f"{follow['cpu_per_second']:.3f} "
            f"({follow['lines_read']} of {follow['written']} lines read) |",
        ]
    )
    print(table)
    for problem in problems:
        print(f"mismatch: {problem}", file=sys.stderr)
    if arguments.write:
        with arguments.docs.open("a", encoding="utf-8") as stream:
            stream.write(f"\n## Log analysis\n\n{table}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
