"""Benchmark of ``smtpdiag exporter``: scrape latency and memory, and one probing cycle.

The script starts ``smtpdiag lab --scenario healthy`` and writes exporter configurations whose
targets ``t000``, ``t001``, … all point at the lab's STARTTLS server. It then measures:

1. Scrapes: for 1, 50 and 200 targets it starts ``smtpdiag exporter`` as a child process,
   waits for ``/-/ready``, scrapes ``/metrics`` ``--scrapes`` times over a fresh connection
   each, and reads the child's VmRSS, VmHWM and thread count from ``/proc/PID/status``.
   With the largest count it repeats the scrapes while every job runs each second, to show
   whether a scrape waits for probes.
2. Rendering: it fills a result cache over 200 targets in this process and times the
   collector, the text and OpenMetrics output and gzip, to show where a scrape's time goes.
3. Probing cycle: it starts ``delay_proxy.py`` in front of the lab (10 ms each way), points
   100 targets at the proxy and times ``Scheduler.run_once`` in this process, with the
   ``connect`` job alone and with ``connect`` and ``tls``, for each ``--workers`` value.

Usage::

    /work/venv/bin/python bench/exporter.py [--scrapes 200] [--cycles 5] [--write]

``--write`` adds a dated subsection under "## Exporter" in docs/benchmarks.md, newest first.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import math
import os
import platform
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporters.cache import ResultCache
    from exporters.schedule import Scheduler

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_bench import BenchError, find_smtpdiag, start_lab, stop_lab

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_DOCS = REPOSITORY / "docs" / "benchmarks.md"
PROXY_SCRIPT = Path(__file__).resolve().parent / "delay_proxy.py"

SCRAPE_TARGET_COUNTS = (1, 50, 200)
CYCLE_TARGET_COUNT = 100
PROXY_DELAY_MS = 10.0
"""One-way delay of the proxy, so every round trip takes 20 ms longer."""

SCRAPE_P99_TARGET_MS = 50.0
"""Target: p99 of ``/metrics`` at the largest target count under this many milliseconds."""
CYCLE_TARGET_SECONDS = 0.5
"""Target: one cycle of the connect job over 100 targets behind the proxy within this time."""

IDLE_INTERVAL_SECONDS = 3600
"""Job interval while scrapes are timed without probes: no job runs twice in a benchmark."""
BUSY_INTERVALS_SECONDS = (10, 1)
"""Job intervals while scrapes are timed with probes running: 10 s runs each job six times as
often as the shortest default interval of 60 s, 1 s sixty times as often."""

ALL_JOBS = ("connect", "tls", "clock", "token", "auth")
CYCLE_JOB_SETS = (("connect",), ("connect", "tls"))
DEFAULT_WORKERS = (16, 100)
"""Worker counts of the cycle runs: the fewest the exporter starts, and one per target (its
default for 100 targets)."""

PLAIN_REQUEST = "plain"
PROMETHEUS_REQUEST = "OpenMetrics, gzip"
REQUEST_HEADERS: Mapping[str, Mapping[str, str]] = {
    PLAIN_REQUEST: {},
    # A Prometheus server requests OpenMetrics text with gzip by default, as the "Formats" page
    # of prometheus/client_java's documentation states. This Accept value also lists the text
    # format as a fallback.
    PROMETHEUS_REQUEST: {
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        "Accept-Encoding": "gzip",
    },
}
"""Headers of each kind of ``/metrics`` request."""

# Name of the target in the lab's configuration file, whose keys every generated target copies.
LAB_TARGET_NAME = "lab"
LAST_RUN_METRIC = "smtpdiag_check_last_run_timestamp_seconds"

# Headings of the docs page: the section of this benchmark and one dated run within it.
EXPORTER_HEADING = "## Exporter"
RUN_HEADING = re.compile(r"^### \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", re.MULTILINE)
NEXT_SECTION = re.compile(r"^## ", re.MULTILINE)

EXPORTER_INTRO = """\
## Exporter

Scrape latency and memory of `smtpdiag exporter` with 1, 50 and 200 targets on the local lab,
and the duration of one probing cycle over 100 targets behind a proxy that adds 20 ms to each
round trip. What is measured and the limits of the figures are described in `bench/README.md`.

```
python bench/exporter.py --scrapes 200 --cycles 5 --write
```

Recorded results follow, newest first.
"""

TomlValue = str | int | float | bool | list[str]


# --- configuration files --------------------------------------------------------------------


@dataclass(frozen=True)
class LabTarget:
    """The ``[defaults]`` table and the ``lab`` target of the lab's configuration file."""

    defaults: Mapping[str, TomlValue]
    target: Mapping[str, TomlValue]


def read_lab_target(config_file: str) -> LabTarget:
    """Read the defaults and the ``lab`` target from the lab's configuration file."""
    with open(config_file, "rb") as stream:
        document = tomllib.load(stream)
    try:
        target = document["targets"][LAB_TARGET_NAME]
    except KeyError as error:
        raise BenchError(f"{config_file} has no [targets.{LAB_TARGET_NAME}] table") from error
    return LabTarget(defaults=document.get("defaults", {}), target=target)


def target_name(index: int) -> str:
    """Return the name of the generated target ``index``: t000, t001, …"""
    return f"t{index:03d}"


def exporter_toml(
    lab: LabTarget,
    count: int,
    *,
    jobs: Sequence[str] = ALL_JOBS,
    interval: float = IDLE_INTERVAL_SECONDS,
    workers: int | None = None,
    port: int | None = None,
) -> str:
    """Return an exporter configuration with ``count`` copies of the lab target.

    ``port`` replaces the lab's port in every target, which points them at a proxy; the host
    stays the lab's, so the certificate still matches.
    """
    exporter: dict[str, TomlValue] = {"jobs": list(jobs), "jitter": 0.0}
    if workers is not None:
        exporter["workers"] = workers
    lines = ["[defaults]", *_toml_lines(lab.defaults), "", "[exporter]", *_toml_lines(exporter)]
    lines += ["", "[exporter.intervals]", *(f"{job} = {_toml_value(interval)}" for job in jobs)]

    target = dict(lab.target)
    if port is not None:
        target["port"] = port
    for index in range(count):
        lines += ["", f"[targets.{target_name(index)}]", *_toml_lines(target)]
    return "\n".join(lines) + "\n"


def _toml_lines(table: Mapping[str, TomlValue]) -> list[str]:
    return [f"{key} = {_toml_value(value)}" for key, value in table.items()]


def _toml_value(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    # An ASCII-only JSON string is also a valid TOML basic string: both use the same escapes.
    return json.dumps(value, ensure_ascii=True)


# --- the exporter process -------------------------------------------------------------------


@dataclass(frozen=True)
class ScrapeStats:
    """Scrape latencies and process figures of one exporter run."""

    targets: int
    probe_interval: float | None
    """Interval of every job while the scrapes were timed; None when no job ran."""
    request: str
    """Key of ``REQUEST_HEADERS`` that the scrapes sent."""
    scrapes: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    response_bytes: int
    """Size of the last response body as sent, compressed when the request allowed gzip."""
    series: int
    ready_seconds: float
    """Seconds from the start of the process until ``/-/ready`` returned 200."""
    rss_kib: int
    hwm_kib: int
    threads: int
    refreshed_series: int
    """``smtpdiag_check_last_run_timestamp_seconds`` series that changed during the scrapes."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def exporter_process(
    smtpdiag: str, config: Path, port: int, stderr_file: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``smtpdiag exporter`` on 127.0.0.1:``port`` until the block ends, then SIGTERM it."""
    with stderr_file.open("wb") as stderr:
        process = subprocess.Popen(
            [smtpdiag, "exporter", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Response:
    """Status and body of one HTTP response."""

    status: int
    body: bytes
    """Body as sent, compressed when ``gzip`` is true."""
    gzip: bool

    def text(self) -> str:
        """Return the body as text, decompressed when needed."""
        return (zlib.decompress(self.body, wbits=31) if self.gzip else self.body).decode()


def get(
    port: int, path: str, headers: Mapping[str, str] | None = None, timeout: float = 30.0
) -> Response:
    """Send one GET over a new connection and return the response."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=dict(headers or {}))
        response = connection.getresponse()
        body = response.read()
        encoding = response.getheader("Content-Encoding", "")
        return Response(response.status, body, gzip=encoding == "gzip")
    finally:
        connection.close()


def wait_ready(process: subprocess.Popen[bytes], port: int, timeout: float) -> float:
    """Poll ``/-/ready`` until it returns 200 and return the seconds that took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise BenchError(f"the exporter exited with code {process.returncode} before ready")
        try:
            status = get(port, "/-/ready", timeout=5).status
        except OSError:
            status = 0
        if status == 200:
            return time.monotonic() - started
        time.sleep(0.05)
    raise BenchError(f"/-/ready did not return 200 within {timeout:g} s")


def time_scrapes(
    port: int, count: int, headers: Mapping[str, str]
) -> tuple[list[float], Response, Response]:
    """Scrape ``/metrics`` ``count`` times; return the seconds of each, the first and last."""
    durations = []
    responses = []
    for index in range(count):
        started = time.perf_counter()
        response = get(port, "/metrics", headers)
        durations.append(time.perf_counter() - started)
        if response.status != 200:
            raise BenchError(f"/metrics returned HTTP {response.status}")
        if index in {0, count - 1}:
            responses.append(response)
    return durations, responses[0], responses[-1]


def process_status(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM (KiB) and Threads from ``/proc/PID/status``."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM", "Threads"}:
            figures[key] = int(value.split()[0])
    return figures


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def sample_values(text: str, metric: str) -> dict[str, str]:
    """Return the value of each sample of ``metric`` in an exposition, keyed by its labels."""
    samples = {}
    prefix = metric + "{"
    for line in text.splitlines():
        if line.startswith(prefix):
            labels, _, value = line.rpartition(" ")
            samples[labels] = value
    return samples


def count_series(text: str) -> int:
    """Count the sample lines of an exposition."""
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def measure_scrapes(
    smtpdiag: str,
    lab: LabTarget,
    directory: Path,
    count: int,
    *,
    probe_interval: float | None,
    scrapes: int,
    requests: Sequence[str] = (PLAIN_REQUEST,),
) -> list[ScrapeStats]:
    """Start an exporter with ``count`` targets, wait until ready, then time ``scrapes``.

    The scrapes repeat for each kind of request in ``requests``, one kind after the other.
    """
    interval = IDLE_INTERVAL_SECONDS if probe_interval is None else probe_interval
    config = directory / f"exporter-{count}-{interval:g}.toml"
    config.write_text(exporter_toml(lab, count, interval=interval), encoding="utf-8")
    port = free_port()
    stderr_file = config.with_suffix(".stderr")

    results = []
    with exporter_process(smtpdiag, config, port, stderr_file) as process:
        try:
            ready_seconds = wait_ready(process, port, timeout=300)
            for request in requests:
                durations, first, last = time_scrapes(port, scrapes, REQUEST_HEADERS[request])
                figures = process_status(process.pid)
                results.append(
                    scrape_stats(count, probe_interval, request, durations, first, last, figures)
                )
        except (BenchError, OSError) as error:
            detail = _last_line(stderr_file.read_text(errors="replace"))
            raise BenchError(f"{error}. Last line of the exporter's stderr: {detail}") from error
    return [replace(stats, ready_seconds=ready_seconds) for stats in results]


def scrape_stats(
    count: int,
    probe_interval: float | None,
    request: str,
    durations: Sequence[float],
    first: Response,
    last: Response,
    figures: Mapping[str, int],
) -> ScrapeStats:
    """Summarize the scrapes of one kind of request; ``ready_seconds`` is left at 0."""
    last_text = last.text()
    before = sample_values(first.text(), LAST_RUN_METRIC)
    after = sample_values(last_text, LAST_RUN_METRIC)
    milliseconds = [duration * 1000 for duration in durations]
    return ScrapeStats(
        targets=count,
        probe_interval=probe_interval,
        request=request,
        scrapes=len(durations),
        p50_ms=percentile(milliseconds, 0.50),
        p90_ms=percentile(milliseconds, 0.90),
        p99_ms=percentile(milliseconds, 0.99),
        max_ms=max(milliseconds),
        response_bytes=len(last.body),
        series=count_series(last_text),
        ready_seconds=0.0,
        rss_kib=figures["VmRSS"],
        hwm_kib=figures["VmHWM"],
        threads=figures["Threads"],
        refreshed_series=sum(1 for key, value in after.items() if before.get(key) != value),
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(empty)"


# --- the probing cycle ----------------------------------------------------------------------


@dataclass(frozen=True)
class CycleStats:
    """Durations of ``Scheduler.run_once`` over one configuration."""

    jobs: tuple[str, ...]
    delay_ms: float
    """Delay added to each round trip; 0 for targets that point at the lab directly."""
    targets: int
    workers: int
    durations: tuple[float, ...]
    cpu_seconds: tuple[float, ...]
    """CPU time of this process (user and system, every thread) during each timed call."""
    check_median_seconds: float
    """Median ``duration_seconds`` of the connect results stored by the runs."""
    statuses: Mapping[str, int]
    """Count of each status among the stored results of the last run."""
    errors: int
    """Calls of the scheduler's error reporter over all runs."""


@contextmanager
def delay_proxy(host: str, port: int, delay_ms: float) -> Iterator[int]:
    """Run ``delay_proxy.py`` in a child process in front of ``host:port``; yield its port."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(PROXY_SCRIPT),
            "--upstream",
            f"{host}:{port}",
            "--delay-ms",
            str(delay_ms),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield int(_first_line(process, timeout=15).rpartition(":")[2])
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else b""
    if not line:
        raise BenchError(f"the delay proxy printed no address within {timeout:g} s")
    return line.decode().strip()


def time_cycles(
    config_path: Path, jobs: tuple[str, ...], delay_ms: float, cycles: int
) -> CycleStats:
    """Time ``cycles`` calls of ``Scheduler.run_once`` after one untimed warm-up call."""
    from exporters.cache import ResultCache
    from exporters.settings import load_exporter_config

    config = load_exporter_config(str(config_path))
    cache = ResultCache()
    errors: list[tuple[str, str, str]] = []
    scheduler = new_scheduler(cache, errors)
    durations = []
    cpu_seconds = []
    try:
        for run in range(cycles + 1):
            started, cpu_started = time.perf_counter(), time.process_time()
            scheduler.run_once(config)
            if run > 0:
                durations.append(time.perf_counter() - started)
                cpu_seconds.append(time.process_time() - cpu_started)
    finally:
        scheduler.stop()

    snapshot = cache.snapshot()
    connect_durations = [
        cached.result.duration_seconds for cached in snapshot if cached.result.id == "connect"
    ]
    return CycleStats(
        jobs=jobs,
        delay_ms=delay_ms,
        targets=len(config.targets),
        workers=config.workers,
        durations=tuple(durations),
        cpu_seconds=tuple(cpu_seconds),
        check_median_seconds=statistics.median(connect_durations) if connect_durations else 0.0,
        statuses=Counter(str(cached.result.status) for cached in snapshot),
        errors=len(errors),
    )


def new_scheduler(cache: ResultCache, errors: list[tuple[str, str, str]]) -> Scheduler:
    """Return a scheduler with the checks that ``smtpdiag exporter`` runs.

    Every call of its error reporter is appended to ``errors``.
    """
    # Imported here so that the scrape measurements run without loading the exporter.
    import checks
    from exporters.schedule import Scheduler

    # The exporter counts AUTH failures from the logs itself, so the CLI leaves this check out.
    specs = [spec for spec in checks.REGISTRY if spec.id != "auth_failure_rate"]
    return Scheduler(
        specs,
        cache,
        on_error=lambda target, check, message: errors.append((target, check, message)),
    )


def measure_cycles(
    lab: LabTarget, lab_host: str, lab_port: int, directory: Path, settings: argparse.Namespace
) -> list[CycleStats]:
    """Time the probing cycle of every job set and worker count, behind the proxy and without."""
    results = []
    with delay_proxy(lab_host, lab_port, PROXY_DELAY_MS) as proxy_port:
        for jobs in CYCLE_JOB_SETS:
            for workers in settings.workers:
                for delay_ms, port in ((0.0, None), (2 * PROXY_DELAY_MS, proxy_port)):
                    if delay_ms == 0 and workers != settings.workers[0]:
                        continue  # one direct run per job set is enough as a reference
                    config = directory / f"cycle-{'-'.join(jobs)}-{workers}-{delay_ms:g}.toml"
                    text = exporter_toml(
                        lab, CYCLE_TARGET_COUNT, jobs=jobs, workers=workers, port=port
                    )
                    config.write_text(text, encoding="utf-8")
                    stats = time_cycles(config, jobs, delay_ms, settings.cycles)
                    print(render_cycle_row(stats), flush=True)
                    results.append(stats)
    return results


# --- rendering in this process -------------------------------------------------------------

RENDER_REPEATS = 50
"""Calls of each rendering step; the table gives the median."""


@dataclass(frozen=True)
class RenderStats:
    """Median milliseconds of each step of a scrape, timed in this process."""

    targets: int
    series: int
    collect_ms: float
    """``SmtpdiagCollector.collect()`` alone: the cache snapshot and the metric families."""
    text_ms: float
    """``generate_latest``: collect plus the text format 0.0.4."""
    exporter_text_ms: float
    """``exporters.exposition.render_text``: collect plus the same bytes."""
    exposition_ms: float
    """``SmtpdiagCollector.exposition()``: the same bytes joined from each target's lines,
    rendered when its results were stored, as /metrics writes them."""
    openmetrics_ms: float
    """The OpenMetrics ``generate_latest``: collect plus OpenMetrics text."""
    gzip_ms: float
    """``gzip.compress`` of the text body at its default level 9, as prometheus_client 0.26 calls
    it for a request that accepts gzip."""
    gzip_fast_ms: float
    """``gzip.compress`` of the text body at level 1."""
    text_bytes: int
    gzip_bytes: int
    gzip_fast_bytes: int


def median_milliseconds(step: Callable[[], object]) -> float:
    """Call ``step`` ``RENDER_REPEATS`` times and return the median duration in ms."""
    durations = []
    for _ in range(RENDER_REPEATS):
        started = time.perf_counter()
        step()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1000


def measure_rendering(lab: LabTarget, directory: Path, count: int) -> RenderStats:
    """Fill a result cache with one run of every job over ``count`` targets and time rendering.

    The registry holds only ``SmtpdiagCollector``, without the process collector that the
    exporter adds.
    """
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.openmetrics import exposition as openmetrics

    from exporters.cache import ResultCache
    from exporters.collector import ExporterStatus, SmtpdiagCollector
    from exporters.exposition import render_text
    from exporters.settings import load_exporter_config

    config_path = directory / f"render-{count}.toml"
    config_path.write_text(exporter_toml(lab, count), encoding="utf-8")
    config = load_exporter_config(str(config_path))
    cache = ResultCache()
    scheduler = new_scheduler(cache, [])
    try:
        scheduler.run_once(config)
    finally:
        scheduler.stop()

    # prometheus_client 0.26 leaves the OpenMetrics generate_latest without annotations.
    generate_openmetrics: Callable[[CollectorRegistry], bytes] = openmetrics.generate_latest
    status = ExporterStatus(config, True, time.time())
    collector = SmtpdiagCollector(cache, None, lambda: status)
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry)
    return RenderStats(
        targets=count,
        series=count_series(text.decode()),
        collect_ms=median_milliseconds(lambda: list(collector.collect())),
        text_ms=median_milliseconds(lambda: generate_latest(registry)),
        exporter_text_ms=median_milliseconds(lambda: render_text(registry.collect())),
        exposition_ms=median_milliseconds(collector.exposition),
        openmetrics_ms=median_milliseconds(lambda: generate_openmetrics(registry)),
        gzip_ms=median_milliseconds(lambda: gzip.compress(text)),
        gzip_fast_ms=median_milliseconds(lambda: gzip.compress(text, compresslevel=1)),
        text_bytes=len(text),
        gzip_bytes=len(gzip.compress(text)),
        gzip_fast_bytes=len(gzip.compress(text, compresslevel=1)),
    )


def render_rendering_table(row: RenderStats) -> str:
    """Return the Markdown table of the in-process rendering steps."""
    return "\n".join(
        [
            "| step, in this process | median ms |",
            "|---|---:|",
            f"| `SmtpdiagCollector.collect()`, {row.targets} targets | {row.collect_ms:.1f} |",
            f"| collect + text format 0.0.4: {row.series} series, {row.text_bytes} bytes "
            f"| {row.text_ms:.1f} |",
            f"| collect + the same text from `render_text` | {row.exporter_text_ms:.1f} |",
            f"| the same text from `exposition()`, joined from lines rendered when results "
            f"were stored, as /metrics writes it | {row.exposition_ms:.1f} |",
            f"| collect + OpenMetrics text | {row.openmetrics_ms:.1f} |",
            f"| gzip level 9 of the text body, to {row.gzip_bytes} bytes | {row.gzip_ms:.1f} |",
            f"| gzip level 1 of the text body, to {row.gzip_fast_bytes} bytes "
            f"| {row.gzip_fast_ms:.1f} |",
        ]
    )


# --- the report -----------------------------------------------------------------------------


def render_scrape_table(rows: Sequence[ScrapeStats]) -> str:
    """Return the Markdown table of the scrape measurements."""
    lines = [
        "| targets | probes during scrapes | request | p50 ms | p90 ms | p99 ms | max ms "
        "| response bytes | series | ready after s | VmRSS MiB | VmHWM MiB | threads "
        "| last-run series refreshed |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {row.targets} | {_probes(row)} | {row.request} "
        f"| {row.p50_ms:.1f} | {row.p90_ms:.1f} | {row.p99_ms:.1f} | {row.max_ms:.1f} "
        f"| {row.response_bytes} | {row.series} | {row.ready_seconds:.1f} "
        f"| {row.rss_kib / 1024:.1f} | {row.hwm_kib / 1024:.1f} | {row.threads} "
        f"| {row.refreshed_series} |"
        for row in rows
    ]
    return "\n".join(lines)


CYCLE_HEADER = (
    "| jobs | added round trip | targets | workers | min s | median s | max s "
    "| median CPU s | median connect check s | statuses of the last run | errors reported |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
)


def render_cycle_row(row: CycleStats) -> str:
    """Return one Markdown table row of a cycle measurement."""
    statuses = ", ".join(f"{status} {count}" for status, count in sorted(row.statuses.items()))
    return (
        f"| {' + '.join(row.jobs)} | {row.delay_ms:g} ms | {row.targets} | {row.workers} "
        f"| {min(row.durations):.3f} | {statistics.median(row.durations):.3f} "
        f"| {max(row.durations):.3f} | {statistics.median(row.cpu_seconds):.3f} "
        f"| {row.check_median_seconds:.3f} | {statuses} "
        f"| {row.errors} |"
    )


def render_cycle_table(rows: Sequence[CycleStats]) -> str:
    """Return the Markdown table of the cycle measurements."""
    return "\n".join([CYCLE_HEADER, *(render_cycle_row(row) for row in rows)])


def summary_sentences(scrapes: Sequence[ScrapeStats], cycles: Sequence[CycleStats]) -> str:
    """State whether each target is met, with the figures it rests on."""
    largest = max(row.targets for row in scrapes)
    sentences = [scrape_sentence(row) for row in scrapes if row.targets == largest]
    sentences += [
        cycle_sentence(cycle)
        for cycle in cycles
        if cycle.jobs == ("connect",) and cycle.delay_ms > 0
    ]
    return "\n".join(f"- {sentence}" for sentence in sentences)


def _probes(row: ScrapeStats) -> str:
    if row.probe_interval is None:
        return "none"
    return f"every job each {row.probe_interval:g} s"


def scrape_sentence(row: ScrapeStats) -> str:
    """Compare the p99 of one scrape measurement with the target."""
    verdict = "under" if row.p99_ms < SCRAPE_P99_TARGET_MS else "over"
    if row.probe_interval is None:
        probes = "without probes running"
    else:
        probes = f"while every job runs each {row.probe_interval:g} s"
    sentence = (
        f"Scrape, {row.request} request, {row.targets} targets {probes}: p99 "
        f"{row.p99_ms:.1f} ms, {verdict} the {SCRAPE_P99_TARGET_MS:g} ms target."
    )
    if row.probe_interval is not None and row.refreshed_series:
        sentence += (
            f" {row.refreshed_series} last-run series changed between the first and the last"
            " scrape, so probes ran meanwhile."
        )
    elif row.probe_interval is not None:
        sentence += (
            " No last-run series changed between the first and the last scrape: the scrapes"
            " ended before the next run of any job."
        )
    return sentence


def cycle_sentence(cycle: CycleStats) -> str:
    """Compare the median of one cycle measurement with the target and estimate it."""
    median = statistics.median(cycle.durations)
    if median <= CYCLE_TARGET_SECONDS:
        verdict = "within"
    else:
        verdict = f"{median - CYCLE_TARGET_SECONDS:.3f} s over"
    waves = math.ceil(cycle.targets / cycle.workers)
    estimate = waves * cycle.check_median_seconds
    return (
        f"Cycle, connect job, {cycle.targets} targets, {cycle.workers} workers, "
        f"{cycle.delay_ms:g} ms added per round trip: median {median:.3f} s, {verdict} the "
        f"{CYCLE_TARGET_SECONDS:g} s target. The estimate, {waves} "
        f"{'round' if waves == 1 else 'rounds'} of at most "
        f"{cycle.workers} jobs times the median connect check of "
        f"{cycle.check_median_seconds:.3f} s, is {estimate:.3f} s."
    )


def machine_facts(smtpdiag: str) -> list[str]:
    """Return the CPU model and cores, OS, Python and smtpdiag version."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    version = subprocess.run(
        [smtpdiag, "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.strip()
    return [
        f"CPU: {model}, {os.cpu_count()} logical cores",
        f"OS: {platform.system()} {platform.release()}",
        f"Python: {platform.python_version()} ({sys.executable})",
        f"smtpdiag: {version or 'unknown'}",
    ]


def render_section(
    facts: Sequence[str],
    settings: argparse.Namespace,
    scrapes: Sequence[ScrapeStats],
    rendering: RenderStats,
    cycles: Sequence[CycleStats],
) -> str:
    """Return the dated Markdown subsection for docs/benchmarks.md."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"### {now}\n\n"
        + "\n".join(f"- {fact}" for fact in facts)
        + f"\n- Scrapes: {settings.scrapes} per exporter, each over a new connection; "
        f"cycles: {settings.cycles} timed `run_once` calls after one warm-up call\n\n"
        + render_scrape_table(scrapes)
        + "\n\n"
        + render_rendering_table(rendering)
        + "\n\n"
        + render_cycle_table(cycles)
        + "\n\n"
        + summary_sentences(scrapes, cycles)
        + "\n"
    )


def write_docs(path: Path, section: str) -> None:
    """Insert ``section`` as the newest run under the Exporter heading, adding it if missing."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start = text.find(EXPORTER_HEADING + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + EXPORTER_INTRO
        start = text.find(EXPORTER_HEADING + "\n")

    # The new run goes above the newest run of this section, else at the section's end.
    body_start = start + len(EXPORTER_HEADING) + 1
    following = NEXT_SECTION.search(text, body_start)
    end = following.start() if following else len(text)
    newest = RUN_HEADING.search(text, body_start, end)
    at = newest.start() if newest else end
    before = text[:at].rstrip("\n") + "\n\n"
    after = text[at:]
    path.write_text(before + section + ("\n" + after if after else ""), encoding="utf-8")


# --- main -----------------------------------------------------------------------------------


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scrapes", type=int, default=200, help="scrapes of /metrics per exporter (default 200)"
    )
    parser.add_argument(
        "--cycles", type=int, default=5, help="timed run_once calls per configuration (default 5)"
    )
    parser.add_argument(
        "--workers",
        type=lambda value: [int(item) for item in value.split(",")],
        default=list(DEFAULT_WORKERS),
        help="comma-separated worker counts for the cycle runs (default 16,100)",
    )
    parser.add_argument("--write", action="store_true", help="add a dated section to the docs page")
    parser.add_argument(
        "--docs", type=Path, default=DEFAULT_DOCS, help=f"page to update (default {DEFAULT_DOCS})"
    )
    settings = parser.parse_args(argv)
    if settings.scrapes < 1 or settings.cycles < 1:
        parser.error("--scrapes and --cycles must be at least 1")
    if any(not 1 <= workers <= 256 for workers in settings.workers):
        parser.error("every --workers value must be between 1 and 256")
    return settings


def benchmark(settings: argparse.Namespace, smtpdiag: str, directory: Path) -> str:
    """Start the lab, run every measurement and return the docs section."""
    lab_process, lab_values = start_lab(smtpdiag, directory / "lab.stderr", timeout=60)
    try:
        lab = read_lab_target(lab_values.config_file)
        scrapes: list[ScrapeStats] = []
        largest = max(SCRAPE_TARGET_COUNTS)
        for count in SCRAPE_TARGET_COUNTS:
            requests = tuple(REQUEST_HEADERS) if count == largest else (PLAIN_REQUEST,)
            measured = measure_scrapes(
                smtpdiag,
                lab,
                directory,
                count,
                probe_interval=None,
                scrapes=settings.scrapes,
                requests=requests,
            )
            print(render_scrape_table(measured), flush=True)
            scrapes += measured
        for interval in BUSY_INTERVALS_SECONDS:
            measured = measure_scrapes(
                smtpdiag, lab, directory, largest, probe_interval=interval, scrapes=settings.scrapes
            )
            print(render_scrape_table(measured), flush=True)
            scrapes += measured
        rendering = measure_rendering(lab, directory, largest)
        print(render_rendering_table(rendering), flush=True)
        print(CYCLE_HEADER, flush=True)
        cycles = measure_cycles(lab, lab_values.host, lab_values.port, directory, settings)
    finally:
        stop_lab(lab_process)

    print()
    print(render_scrape_table(scrapes))
    print()
    print(render_rendering_table(rendering))
    print()
    print(render_cycle_table(cycles))
    print()
    print(summary_sentences(scrapes, cycles))
    return render_section(machine_facts(smtpdiag), settings, scrapes, rendering, cycles)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0 on success, or 1 when a step failed."""
    settings = parse_arguments(argv)
    try:
        smtpdiag = find_smtpdiag()
        with tempfile.TemporaryDirectory(prefix="smtpdiag-bench-exporter-") as name:
            section = benchmark(settings, smtpdiag, Path(name))
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    if settings.write:
        write_docs(settings.docs, section)
        print(f"\nadded a section to {settings.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
