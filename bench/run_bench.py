"""Time smtpdiag against swaks and ``openssl s_client`` on the local lab.

The script starts ``smtpdiag lab --scenario healthy``, checks once that every command
works against it, then runs all commands in interleaved rounds and reports wall-clock
times (median, p90, min) and each median's ratio to swaks's AUTH-only median. With
``--write`` it adds a dated section to docs/benchmarks.md, newest first.

Run it from anywhere with the interpreter of the venv that has smtpdiag installed::

    /work/venv/bin/python bench/run_bench.py --runs 15 [--write]

swaks reads the lab's access token from the ``SWAKS_OPT_auth_password`` environment
variable, and the script never prints or writes the token. Output shown for a failed
command is filtered and redacted first.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_DOCS = REPOSITORY / "docs" / "benchmarks.md"

SCENARIO = "healthy"
LAB_KEYS = ("scenario", "config_file", "smtp_starttls", "smtps", "ca_file", "user")
TARGET_RATIO = 4.0
"""Target: the whole suite within this multiple of swaks's AUTH-only median."""

SWAKS_NAME = "swaks AUTH PLAIN"
SUITE_NAME = "smtpdiag check (suite)"

# A recorded section starts with a heading such as "## 2026-12-04 20:58 UTC".
SECTION_HEADING = re.compile(r"^## \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", re.MULTILINE)

DEFAULT_INTRO = """\
# Benchmarks

Wall-clock times of `smtpdiag check` on the local lab, next to swaks (STARTTLS and
AUTH PLAIN, then QUIT) and `openssl s_client -starttls smtp`, with Python's own
start-up as a floor. What is measured, the limits of the figures and the target are
described in `bench/README.md`.

Reproduce with the interpreter of the venv that has smtpdiag installed, swaks and openssl
on `PATH`:

```
python bench/run_bench.py --runs 15 --write
```

Recorded results follow, newest first.
"""


@dataclass(frozen=True)
class Lab:
    """Values from the JSON line that ``smtpdiag lab`` prints once it serves."""

    config_file: str
    host: str
    port: int
    ca_file: str
    user: str
    access_token_file: str


@dataclass(frozen=True)
class Command:
    """One benchmarked command line."""

    name: str
    argv: tuple[str, ...]
    display: str
    """Command line for the report, with lab paths as placeholders and no token."""
    verify: Callable[[subprocess.CompletedProcess[str]], str | None]
    """Return ``None`` when a run did what it should, else the reason it did not."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment variables for this command only."""


@dataclass(frozen=True)
class Stats:
    """Summary of the timed runs of one command, in seconds."""

    name: str
    median: float
    p90: float
    minimum: float
    exit_codes: tuple[int, ...]
    """Exit code of each timed run, where -1 marks a run that timed out."""
    reported_median: float | None
    """Median ``duration_seconds`` of the JSON reports, or ``None`` if the command prints none."""


class BenchError(Exception):
    """Failure of a benchmark step, with a message that names the step and the next action."""


# --- the lab --------------------------------------------------------------------------------


def find_smtpdiag() -> str:
    """Return the smtpdiag executable next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "smtpdiag"
    if beside.exists():
        return str(beside)
    found = shutil.which("smtpdiag")
    if found is None:
        raise BenchError(
            f"smtpdiag was not found next to {sys.executable} or on PATH. "
            "Run this script with the interpreter of the venv that has smtpdiag installed"
        )
    return found


def wait_for_lab_command(smtpdiag: str, wait_seconds: float) -> None:
    """Poll ``smtpdiag lab --list-scenarios`` until it lists the healthy scenario."""
    deadline = time.monotonic() + wait_seconds
    while True:
        reason = _lab_command_problem(smtpdiag)
        if reason is None:
            return
        if time.monotonic() >= deadline:
            raise BenchError(
                f"`smtpdiag lab` is not usable yet ({reason}). The lab command must list "
                f"the '{SCENARIO}' scenario. Retry later or raise --lab-wait."
            )
        print(f"waiting for `smtpdiag lab`: {reason}", file=sys.stderr)
        time.sleep(5)


def _lab_command_problem(smtpdiag: str) -> str | None:
    """Return why ``smtpdiag lab --list-scenarios`` is not usable, or ``None``."""
    try:
        listing = subprocess.run(
            [smtpdiag, "lab", "--list-scenarios"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "--list-scenarios timed out after 30 s"
    if listing.returncode != 0:
        return f"--list-scenarios exited {listing.returncode}: {_last_line(listing.stderr)}"
    if not re.search(rf"^{SCENARIO}\b", listing.stdout, re.MULTILINE):
        return f"scenario '{SCENARIO}' is not listed"
    return None


def start_lab(
    smtpdiag: str, stderr_file: Path, timeout: float
) -> tuple[subprocess.Popen[bytes], Lab]:
    """Start the healthy lab and return its process and the values it printed."""
    with stderr_file.open("wb") as stderr:
        process = subprocess.Popen(
            [smtpdiag, "lab", "--scenario", SCENARIO],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        line = _read_line(process, timeout)
        return process, _parse_lab_line(line)
    except BenchError as error:
        stop_lab(process)
        detail = _last_line(stderr_file.read_text(errors="replace"))
        raise BenchError(
            f"{error}. Last line of the lab's stderr: {detail or '(empty)'}"
        ) from error


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """Read the first stdout line of ``process`` within ``timeout`` seconds."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    received = b""
    while b"\n" not in received:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"the lab printed no JSON line within {timeout:g} s")
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            raise BenchError(f"the lab exited with code {process.wait()} before it served")
        received += chunk
    return received.split(b"\n", 1)[0].decode()


def _parse_lab_line(line: str) -> Lab:
    """Build a :class:`Lab` from the lab's JSON line."""
    try:
        document = json.loads(line)
    except json.JSONDecodeError as error:
        raise BenchError(f"the lab's first line is not JSON: {line[:200]!r}") from error
    missing = [key for key in (*LAB_KEYS, "access_token_file") if key not in document]
    if missing:
        raise BenchError(f"the lab's JSON line lacks {', '.join(missing)}")

    host, _, port = document["smtp_starttls"].rpartition(":")
    return Lab(
        config_file=document["config_file"],
        host=host,
        port=int(port),
        ca_file=document["ca_file"],
        user=document["user"],
        access_token_file=document["access_token_file"],
    )


def stop_lab(process: subprocess.Popen[bytes]) -> int | None:
    """Send SIGTERM to the lab and return its exit code, or ``None`` if it had to be killed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None
    finally:
        if process.stdout is not None:
            process.stdout.close()


# --- commands and their checks --------------------------------------------------------------


def build_commands(smtpdiag: str, lab: Lab, token: str) -> list[Command]:
    """Return the benchmarked commands in the order they run within a round."""
    check = (smtpdiag, "check", "--config", lab.config_file, "--target", "lab")
    port = str(lab.port)
    swaks = (
        "swaks", "--server", lab.host, "--port", port, "--tls", "--quit-after", "AUTH",
        "--auth", "PLAIN", "--auth-user", lab.user, "--tls-verify", "--tls-ca-path", lab.ca_file,
    )  # fmt: skip
    openssl = (
        "openssl", "s_client", "-starttls", "smtp", "-connect", f"{lab.host}:{port}",
        "-CAfile", lab.ca_file, "-verify_return_error", "-brief",
    )  # fmt: skip
    commands = [
        Command(SUITE_NAME, (*check, "--format", "json"), "", _verify_report),
        Command(
            "smtpdiag check --only connect",
            (*check, "--only", "connect", "--format", "json"),
            "",
            _verify_report,
        ),
        Command(SWAKS_NAME, swaks, "", _verify_swaks, {"SWAKS_OPT_auth_password": token}),
        Command("openssl s_client -starttls smtp", openssl, "", _verify_openssl),
        Command("smtpdiag --version", (smtpdiag, "--version"), "", _verify_exit_zero),
        Command("smtpdiag --help", (smtpdiag, "--help"), "", _verify_exit_zero),
        Command("python -c pass", (sys.executable, "-c", "pass"), "", _verify_exit_zero),
    ]
    return [_with_display(command, smtpdiag, lab) for command in commands]


def _with_display(command: Command, smtpdiag: str, lab: Lab) -> Command:
    """Return ``command`` with its display line, lab values replaced by placeholders."""
    replacements = {
        smtpdiag: "smtpdiag",
        sys.executable: "python",
        lab.config_file: "$CONFIG",
        lab.ca_file: "$CA",
        lab.user: "$USER",
        str(lab.port): "$PORT",
        f"{lab.host}:{lab.port}": f"{lab.host}:$PORT",
    }
    words = [replacements.get(word, word) for word in command.argv]
    display = " ".join(words)
    if command.env:
        display = " ".join(f"{name}=$TOKEN" for name in command.env) + " " + display
    return Command(command.name, command.argv, display, command.verify, command.env)


def _verify_exit_zero(result: subprocess.CompletedProcess[str]) -> str | None:
    """Accept a run that exited 0."""
    if result.returncode != 0:
        return f"exit code {result.returncode}: {_last_line(result.stderr)}"
    return None


def _verify_report(result: subprocess.CompletedProcess[str]) -> str | None:
    """Accept a ``check --format json`` run that exited 0 with status ``ok``."""
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return f"exit code {result.returncode}, stdout is not JSON: {_last_line(result.stderr)}"
    statuses = ", ".join(f"{item['id']}={item['status']}" for item in report.get("checks", []))
    if result.returncode != 0 or report.get("status") != "ok":
        return f"exit code {result.returncode}, status {report.get('status')} ({statuses})"
    return None


def _verify_swaks(result: subprocess.CompletedProcess[str]) -> str | None:
    """Accept a swaks run that exited 0 after the server replied 235 to AUTH."""
    if result.returncode == 0 and re.search(r"^<~ +235 ", result.stdout, re.MULTILINE):
        return None

    # Show only what the server sent: the client lines carry the base64 AUTH PLAIN response.
    server_lines = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.startswith(("<", "***"))
    ]
    return (
        f"exit code {result.returncode}, no 235 reply to AUTH PLAIN "
        f"(is the lab's PLAIN AUTH ready?); server lines: {' | '.join(server_lines[-4:])}"
    )


def _verify_openssl(result: subprocess.CompletedProcess[str]) -> str | None:
    """Accept an ``openssl s_client`` run that exited 0 and verified the certificate."""
    if result.returncode == 0 and "Verification: OK" in result.stdout + result.stderr:
        return None
    return f"exit code {result.returncode}: {_last_line(result.stderr)}"


def _last_line(text: str) -> str:
    """Return the last non-empty line of ``text``, shortened for a message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def redact(text: str, token: str, user: str) -> str:
    """Replace the token and its SASL encodings in ``text`` with ``<redacted>``."""
    forms = [
        token,
        quote(token, safe=""),
        base64.b64encode(token.encode()).decode(),
        base64.b64encode(f"\0{user}\0{token}".encode()).decode(),
        base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode(),
    ]
    # Longest first, so a form is not cut up by replacing a shorter one inside it.
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "<redacted>")
    return text


# --- timing ---------------------------------------------------------------------------------


def run_once(command: Command, timeout: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``command`` once and return its wall-clock seconds and its result."""
    env = {**os.environ, **command.env}
    started = time.perf_counter()
    try:
        result = subprocess.run(
            command.argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        elapsed = time.perf_counter() - started
        return elapsed, subprocess.CompletedProcess(command.argv, -1, "", "timed out")
    return time.perf_counter() - started, result


def verify_commands(
    commands: Sequence[Command], timeout: float, token: str, user: str
) -> list[str]:
    """Run each command once and return one redacted line per command that failed its check."""
    problems = []
    for command in commands:
        _, result = run_once(command, timeout)
        reason = command.verify(result)
        if reason is not None:
            problems.append(f"{command.name}: {redact(reason, token, user)}")
    return problems


def time_commands(
    commands: Sequence[Command], runs: int, warmup: int, timeout: float
) -> list[Stats]:
    """Time every command ``warmup + runs`` times in interleaved rounds and drop the warm-ups."""
    durations: dict[str, list[float]] = {command.name: [] for command in commands}
    exit_codes: dict[str, list[int]] = {command.name: [] for command in commands}
    reported: dict[str, list[float]] = {command.name: [] for command in commands}

    # Interleaving spreads any drift of the machine's load over all commands alike.
    for round_number in range(warmup + runs):
        for command in commands:
            elapsed, result = run_once(command, timeout)
            if round_number >= warmup:
                durations[command.name].append(elapsed)
                exit_codes[command.name].append(result.returncode)
                reported[command.name].extend(_report_duration(result.stdout))
        print(f"round {round_number + 1}/{warmup + runs} done", file=sys.stderr)

    return [
        summarise(
            command.name,
            durations[command.name],
            exit_codes[command.name],
            reported[command.name],
        )
        for command in commands
    ]


def _report_duration(stdout: str) -> list[float]:
    """Return ``[duration_seconds]`` of a JSON report on ``stdout``, or ``[]`` if there is none."""
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError:
        return []
    if not isinstance(document, dict) or "duration_seconds" not in document:
        return []
    return [float(document["duration_seconds"])]


def summarise(
    name: str,
    durations: Sequence[float],
    exit_codes: Sequence[int],
    reported: Sequence[float],
) -> Stats:
    """Return median, p90 (nearest rank) and minimum of ``durations``."""
    ordered = sorted(durations)
    p90_index = math.ceil(0.9 * len(ordered)) - 1
    return Stats(
        name=name,
        median=statistics.median(ordered),
        p90=ordered[p90_index],
        minimum=ordered[0],
        exit_codes=tuple(exit_codes),
        reported_median=statistics.median(reported) if reported else None,
    )


# --- reporting ------------------------------------------------------------------------------


def render_table(stats: Sequence[Stats]) -> str:
    """Return a Markdown table of ``stats`` in milliseconds with ratios to swaks's median."""
    swaks_median = next(item.median for item in stats if item.name == SWAKS_NAME)
    lines = [
        "| command | median ms | p90 ms | min ms | median / swaks median "
        "| in-process median ms | exit codes |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for item in stats:
        reported = "-" if item.reported_median is None else f"{item.reported_median * 1000:.1f}"
        lines.append(
            f"| {item.name} | {item.median * 1000:.1f} | {item.p90 * 1000:.1f} "
            f"| {item.minimum * 1000:.1f} | {item.median / swaks_median:.2f}x | {reported} "
            f"| {_describe_exit_codes(item.exit_codes)} |"
        )
    return "\n".join(lines)


def _describe_exit_codes(exit_codes: Sequence[int]) -> str:
    """Return e.g. ``0 (15 runs)`` or ``0 (14 runs), -1 (1 run)``."""
    counts: dict[int, int] = {}
    for code in exit_codes:
        counts[code] = counts.get(code, 0) + 1
    return ", ".join(
        f"{code} ({count} run{'s' if count > 1 else ''})" for code, count in sorted(counts.items())
    )


def summary_sentences(stats: Sequence[Stats], suite_checks: Sequence[str]) -> str:
    """Return two sentences: the suite against the target, and where its time goes."""
    by_name = {item.name: item for item in stats}
    suite = by_name[SUITE_NAME]
    ratio = suite.median / by_name[SWAKS_NAME].median
    verdict = "within" if ratio <= TARGET_RATIO else "over"
    floor = by_name["python -c pass"].median
    version = by_name["smtpdiag --version"].median
    in_process = (
        "an unknown share"
        if suite.reported_median is None
        else f"{suite.reported_median * 1000:.0f} ms"
    )
    return (
        f"The suite with the checks registered at this point ({', '.join(suite_checks)}) took "
        f"{ratio:.2f}x swaks's AUTH-only median, {verdict} the {TARGET_RATIO:g}x target. "
        f"Of its {suite.median * 1000:.0f} ms median, the checks themselves took {in_process} "
        f"(the report's duration_seconds), while interpreter start-up took {floor * 1000:.0f} ms "
        f"and start-up with smtpdiag's imports (`smtpdiag --version`) {version * 1000:.0f} ms."
    )


def machine_facts(smtpdiag: str) -> list[str]:
    """Return ``name: value`` lines about the CPU, the OS and the tools' versions."""
    return [
        f"CPU: {_cpu_model()}, {os.cpu_count()} logical cores",
        f"OS: {platform.system()} {platform.release()}",
        f"Python: {platform.python_version()} ({sys.executable})",
        f"smtpdiag: {_first_line([smtpdiag, '--version'])}",
        f"swaks: {_first_line(['swaks', '--version'])}",
        f"OpenSSL: {_first_line(['openssl', 'version'])}",
    ]


def _cpu_model() -> str:
    """Return the first ``model name`` of /proc/cpuinfo, or ``unknown``."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def _first_line(argv: list[str]) -> str:
    """Return the first non-empty output line of ``argv``, or why there is none."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({error})"
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return lines[0] if lines else "unknown"


def render_section(
    stats: Sequence[Stats],
    commands: Sequence[Command],
    facts: Sequence[str],
    settings: argparse.Namespace,
    suite_checks: Sequence[str],
) -> str:
    """Return the dated Markdown section for docs/benchmarks.md."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command_lines = "\n".join(command.display for command in commands)
    return (
        f"## {now}\n\n"
        + "\n".join(f"- {fact}" for fact in facts)
        + f"\n- Runs: {settings.runs} per command after {settings.warmup} warm-up runs, "
        f"interleaved; lab scenario `{SCENARIO}` on 127.0.0.1\n\n"
        + render_table(stats)
        + "\n\n"
        + summary_sentences(stats, suite_checks)
        + "\n\nCommands ($CONFIG, $CA, $USER and $PORT are the lab's values; $TOKEN is the "
        "lab's access token, passed in the environment):\n\n" + f"```\n{command_lines}\n```\n"
    )


def write_docs(path: Path, section: str) -> None:
    """Insert ``section`` above the newest recorded section of ``path``, keeping the intro."""
    existing = path.read_text() if path.exists() else DEFAULT_INTRO
    match = SECTION_HEADING.search(existing)
    if match is None:
        intro, older = existing.rstrip("\n") + "\n", ""
    else:
        intro, older = existing[: match.start()].rstrip("\n") + "\n", existing[match.start() :]

    text = intro + "\n" + section
    if older:
        text += "\n" + older.rstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --- main -----------------------------------------------------------------------------------


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command (default 15)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed runs per command before those (default 2)"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds before one run is stopped (default 30)"
    )
    parser.add_argument(
        "--lab-wait",
        type=float,
        default=30.0,
        help="seconds to wait for `smtpdiag lab` to become usable (default 30)",
    )
    parser.add_argument("--write", action="store_true", help="add a dated section to the docs page")
    parser.add_argument(
        "--docs", type=Path, default=DEFAULT_DOCS, help=f"page to update (default {DEFAULT_DOCS})"
    )
    settings = parser.parse_args(argv)
    if settings.runs < 1 or settings.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    return settings


def benchmark(settings: argparse.Namespace, smtpdiag: str, lab: Lab) -> str | None:
    """Verify and time every command, and return the docs section, or ``None`` if a check failed."""
    token = Path(lab.access_token_file).read_text().strip()
    commands = build_commands(smtpdiag, lab, token)

    problems = verify_commands(commands, settings.timeout, token, lab.user)
    for problem in problems:
        print(f"check failed: {problem}", file=sys.stderr)

    _, suite_result = run_once(commands[0], settings.timeout)
    suite_checks = _report_check_ids(suite_result.stdout)

    stats = time_commands(commands, settings.runs, settings.warmup, settings.timeout)
    print(render_table(stats))
    print()
    print(summary_sentences(stats, suite_checks))
    if problems:
        print("\nSome commands did not do what they should; the figures above are not valid.")
        return None
    return render_section(stats, commands, machine_facts(smtpdiag), settings, suite_checks)


def _report_check_ids(stdout: str) -> list[str]:
    """Return the check ids of a JSON report, or ``["unknown"]`` if it does not parse."""
    try:
        return [item["id"] for item in json.loads(stdout)["checks"]]
    except (json.JSONDecodeError, KeyError, TypeError):
        return ["unknown"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and return 0 on success, or 1 when a step or a command failed."""
    settings = parse_arguments(argv)
    try:
        smtpdiag = find_smtpdiag()
        wait_for_lab_command(smtpdiag, settings.lab_wait)
        with tempfile.TemporaryDirectory(prefix="smtpdiag-bench-") as workdir:
            process, lab = start_lab(smtpdiag, Path(workdir) / "lab-stderr.log", timeout=60)
            try:
                section = benchmark(settings, smtpdiag, lab)
            finally:
                lab_exit = stop_lab(process)
            if lab_exit != 0:
                detail = _last_line((Path(workdir) / "lab-stderr.log").read_text(errors="replace"))
                outcome = "was killed" if lab_exit is None else f"exited with {lab_exit}"
                raise BenchError(
                    f"the lab {outcome} after SIGTERM, expected exit code 0. "
                    f"Last line of its stderr: {detail or '(empty)'}"
                )
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    print("\nlab stopped with exit code 0")
    if section is None:
        return 1
    if settings.write:
        write_docs(settings.docs, section)
        print(f"wrote a new section to {settings.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
