"""Prometheus metric families of the cached check results, the log counters and the exporter.

``SmtpdiagCollector`` renders what the scheduler stored in the ``ResultCache`` and what the
log counters counted, and a scrape never runs a check. ``probe_registry`` renders one fresh run of
``/probe`` the same way. Metric names and labels follow the exporter's contract: labels are
``target`` (from the configuration), ``check``, ``source``, ``provider``, ``reason`` (from
closed sets) and ``version``, never a user, an address, a token or text from a server.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from exporters.exposition import render_header, render_samples
from exporters.reasons import GENERIC_PROVIDER, OTHER_REASON, PROVIDERS, reason_name
from exporters.settings import JOB_PUBLISHES, ExporterConfig, ExporterTarget
from exporters.targettext import TargetTexts
from smtpdiag import __version__
from smtpdiag.models import CheckResult, Report, Severity, Status

if TYPE_CHECKING:
    from exporters.cache import CachedResult, ResultCache
    from exporters.logcounters import LogCounters, LogCounts

STATUS_VALUES: Mapping[Status, int] = {
    Status.OK: 0,
    Status.WARNING: 1,
    Status.CRITICAL: 2,
    Status.UNKNOWN: 3,
}
"""Value of ``smtpdiag_check_status`` for each status. A skipped check exports none."""

SUCCESS_STATUSES = frozenset({Status.OK, Status.WARNING})
"""Statuses that count as success for ``smtpdiag_up`` and ``smtpdiag_check_success``."""

FamilyMetric = GaugeMetricFamily | CounterMetricFamily
"""A metric family that samples can be added to."""

_LABEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
"""Shape of a check id or a finding code's name part. A result with another check id is not
exported, and another name part is exported as ``other``."""


@dataclass(frozen=True)
class ExporterStatus:
    """State of the exporter itself that each scrape reports."""

    config: ExporterConfig
    reload_success: bool
    """Whether the last load or reload of the configuration succeeded."""
    reload_success_time: float
    """POSIX time of the last successful load or reload."""


@dataclass(frozen=True)
class _Entry:
    """One check result of one target, cached or fresh."""

    target: str
    provider: str
    result: CheckResult
    finished_at: float


@dataclass(frozen=True)
class _Family:
    """Name, type, labels and description of one metric family."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    counter: bool = False

    def new(self, note: str = "") -> FamilyMetric:
        """Return an empty family whose HELP text ends with ``note``."""
        text = f"{self.help} {note}" if note else self.help
        if self.counter:
            return CounterMetricFamily(self.name, text, labels=self.labels)
        return GaugeMetricFamily(self.name, text, labels=self.labels)


UP = _Family(
    "smtpdiag_up",
    "1 when the latest dns and connect checks of the target reached its submission server "
    "(both ok or warning); 0 when either ended critical or unknown, such as a name that does "
    "not resolve or a refused port. Absent before the first result of the connect job.",
    ("target",),
)
CHECK_STATUS = _Family(
    "smtpdiag_check_status",
    "Status of the latest result of each check: 0 ok, 1 warning, 2 critical, 3 unknown. A "
    "skipped check (missing input such as a token source) exports no sample.",
    ("target", "check"),
)
CHECK_SUCCESS = _Family(
    "smtpdiag_check_success",
    "1 when the latest result of the check is ok or warning, else 0. A skipped check exports "
    "no sample.",
    ("target", "check"),
)
CHECK_DURATION = _Family(
    "smtpdiag_check_duration_seconds",
    "Seconds the latest run of the check took.",
    ("target", "check"),
)
CHECK_LAST_RUN = _Family(
    "smtpdiag_check_last_run_timestamp_seconds",
    "POSIX time at which the run that produced the latest result of the check ended.",
    ("target", "check"),
)
CHECK_FINDING = _Family(
    "smtpdiag_check_finding",
    "1 for each warning or critical finding of the latest result of the check; reason is the "
    "name part of the finding code (invalid_grant of token.invalid_grant). Informational "
    "findings are not exported.",
    ("target", "check", "reason"),
)
CHECK_INTERVAL = _Family(
    "smtpdiag_check_interval_seconds",
    "Configured seconds between two runs of the job that refreshes the check, without jitter; "
    "the same for every target.",
    ("check",),
)
CHECK_RUNS = _Family(
    "smtpdiag_check_runs_total",
    "Results of the check that the exporter stored since it started, over all targets, from "
    "scheduled jobs and /probe requests.",
    ("check",),
    counter=True,
)
CERT_NOT_AFTER = _Family(
    "smtpdiag_tls_cert_not_after_timestamp_seconds",
    "POSIX time at which the server's leaf certificate expires, from the latest tls check.",
    ("target",),
)
CLOCK_OFFSET = _Family(
    "smtpdiag_clock_offset_seconds",
    "Offset of the local clock from the best reference the latest clock check found; "
    "positive when the local clock is ahead.",
    ("target",),
)
TOKEN_EXPIRES_IN = _Family(
    "smtpdiag_token_expires_in_seconds",
    "Seconds until the access token that the latest token check obtained expires, computed "
    "at scrape time; negative once it expired. Absent when the token carries no expiry, such "
    "as an opaque token read from a file.",
    ("target", "provider"),
)
TARGET_FAMILIES = (
    UP,
    CHECK_STATUS,
    CHECK_SUCCESS,
    CHECK_DURATION,
    CHECK_LAST_RUN,
    CHECK_FINDING,
    CERT_NOT_AFTER,
    CLOCK_OFFSET,
    TOKEN_EXPIRES_IN,
)
"""Families of per-target check results, in output order."""

FAMILY_JOBS: Mapping[str, str] = {
    UP.name: "connect",
    CERT_NOT_AFTER.name: "tls",
    CLOCK_OFFSET.name: "clock",
    TOKEN_EXPIRES_IN.name: "token",
}
"""Job that feeds each family fed by one job only. The HELP text of every other family lists
all jobs."""

AUTH_ATTEMPTS = _Family(
    "smtpdiag_auth_attempts_total",
    "AUTH attempts read from the followed mail logs since the exporter started; a submission "
    "that failed before AUTH counts as one failed attempt.",
    ("source", "provider"),
    counter=True,
)
AUTH_FAILURES = _Family(
    "smtpdiag_auth_failures_total",
    "Failed AUTH attempts read from the followed mail logs since the exporter started; "
    "reason is the name part of the finding code, other for a code outside the known set, "
    "unknown when the log gives none. provider is the mail provider of the server that the "
    "logging program sent AUTH to; failed logins of clients to a server on this host, which "
    "name no provider, count under generic.",
    ("source", "provider", "reason"),
    counter=True,
)
LOG_LINES = _Family(
    "smtpdiag_log_lines_total",
    "Lines of each mail program read from the followed logs since the exporter started.",
    ("source",),
    counter=True,
)
LOG_PARSE_ERRORS = _Family(
    "smtpdiag_log_parse_errors_total",
    "Lines of a known mail program that looked relevant but could not be read, since the "
    "exporter started.",
    ("source",),
    counter=True,
)
SECRET_LEAKS = _Family(
    "smtpdiag_secret_leaks_total",
    "Log lines that contain a secret (a SASL response, an access or refresh token, a client "
    "secret) since the exporter started; source is unknown for lines of no known mail "
    "program.",
    ("source",),
    counter=True,
)
LOG_FILES_FOLLOWED = _Family(
    "smtpdiag_log_files_followed",
    "Configured log files that were readable regular files at the last poll.",
)
LOG_FAMILIES = (
    AUTH_ATTEMPTS,
    AUTH_FAILURES,
    LOG_LINES,
    LOG_PARSE_ERRORS,
    SECRET_LEAKS,
    LOG_FILES_FOLLOWED,
)
"""Families of the log counters, exported only when log files are configured."""

BUILD_INFO = _Family(
    "smtpdiag_build_info", "Always 1; the version label is the smtpdiag version.", ("version",)
)
RELOAD_SUCCESSFUL = _Family(
    "smtpdiag_config_last_reload_successful",
    "1 when the last load or reload of the configuration succeeded, else 0.",
)
RELOAD_TIMESTAMP = _Family(
    "smtpdiag_config_last_reload_success_timestamp_seconds",
    "POSIX time of the last successful load or reload of the configuration.",
)
SCRAPE_DURATION = _Family(
    "smtpdiag_scrape_duration_seconds",
    "Seconds the previous scrape of /metrics took to render; 0 on the first scrape.",
)
META_FAMILIES = (BUILD_INFO, RELOAD_SUCCESSFUL, RELOAD_TIMESTAMP, SCRAPE_DURATION)

PROBE_SUCCESS = _Family(
    "smtpdiag_probe_success",
    "1 when no check of this probe ended critical or unknown, else 0.",
)
PROBE_DURATION = _Family("smtpdiag_probe_duration_seconds", "Seconds this probe took.")

PROBE_NOTE = "Fresh: measured by this probe request."


class SmtpdiagCollector(Collector):
    """Renders the cached check results, the log counters and the exporter's own state.

    ``counters`` is None when no log file is configured. Then no log series are exported,
    because series at 0 would claim that logs are read. ``status`` returns the current
    configuration and reload state, and ``wall`` the current POSIX time.
    """

    def __init__(
        self,
        cache: ResultCache,
        counters: LogCounters | None,
        status: Callable[[], ExporterStatus],
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._cache = cache
        self._counters = counters
        self._status = status
        self._wall = wall
        self._lock = threading.Lock()
        self._last_duration = 0.0
        self._texts = TargetTexts(cache, _render_target)

    def describe(self) -> list[Metric]:
        """Return every family without samples. It reads neither the cache nor the counters."""
        families = [*META_FAMILIES, *TARGET_FAMILIES, CHECK_INTERVAL, CHECK_RUNS]
        if self._counters is not None:
            families += LOG_FAMILIES
        return [family.new() for family in families]

    def collect(self) -> Iterator[Metric]:
        """Render every family from the cache and the counters as they are now."""
        started = time.perf_counter()
        status = self._status()
        with self._lock:
            previous = self._last_duration
        yield from meta_families(status, previous)

        entries = [_entry(cached) for cached in self._cache.snapshot()]
        intervals = status.config.intervals
        yield from target_families(
            entries, self._wall(), lambda name: _cached_note(name, intervals)
        )
        yield interval_family(status.config)
        yield runs_family(self._cache.stored_counts())

        if self._counters is not None:
            yield from log_families(self._counters.snapshot())
        with self._lock:
            self._last_duration = time.perf_counter() - started

    def exposition(self) -> bytes:
        """Return the bytes ``render_text(self.collect())`` returns, joined from the sample
        lines that each target's results got when they were stored.

        Only the token lifetime, which changes every second, and targets whose lines no
        listener rendered yet are rendered here, so the time a scrape takes hardly grows with
        the number of targets.
        """
        started = time.perf_counter()
        status = self._status()
        with self._lock:
            previous = self._last_duration
        parts = [_text(meta_families(status, previous))]

        snapshot = self._cache.snapshot()
        intervals = status.config.intervals
        per_target = self._texts.lines(snapshot)
        tokens = [_entry(cached) for cached in snapshot if cached.result.id == "token"]
        live = {
            family.name: family for family in target_families(tokens, self._wall(), lambda name: "")
        }
        token_lines = render_samples(live[TOKEN_EXPIRES_IN.name])
        for family in TARGET_FAMILIES:
            header = render_header(family.new(_cached_note(family.name, intervals)))
            if family is TOKEN_EXPIRES_IN:
                parts.append(header + token_lines)
            else:
                parts.append(header + "".join(texts[family.name] for texts in per_target))
        parts.append(_text([interval_family(status.config)]))
        parts.append(_text([runs_family(self._cache.stored_counts())]))

        if self._counters is not None:
            parts.append(_text(log_families(self._counters.snapshot())))
        with self._lock:
            self._last_duration = time.perf_counter() - started
        return "".join(parts).encode("utf-8")


def meta_families(status: ExporterStatus, scrape_duration: float) -> list[Metric]:
    """Return build information, reload state and the previous scrape's duration."""
    build = BUILD_INFO.new()
    build.add_metric([__version__], 1.0)
    successful = RELOAD_SUCCESSFUL.new()
    successful.add_metric([], 1.0 if status.reload_success else 0.0)
    reloaded = RELOAD_TIMESTAMP.new()
    reloaded.add_metric([], status.reload_success_time)
    duration = SCRAPE_DURATION.new()
    duration.add_metric([], scrape_duration)
    return [build, successful, reloaded, duration]


def target_families(
    entries: Sequence[_Entry], now: float, note: Callable[[str], str]
) -> list[Metric]:
    """Return the per-target families of ``entries``, each HELP text ending with ``note(name)``."""
    families = {family.name: family.new(note(family.name)) for family in TARGET_FAMILIES}
    reached: dict[str, dict[str, Status]] = {}
    for entry in entries:
        _add_check(families, entry)
        _add_facts(families, entry, now)
        if entry.result.id in ("dns", "connect"):
            reached.setdefault(entry.target, {})[entry.result.id] = entry.result.status
    for target, statuses in reached.items():
        up = _up_value(statuses)
        if up is not None:
            families[UP.name].add_metric([target], up)
    return list(families.values())


def interval_family(config: ExporterConfig) -> Metric:
    """Return the configured interval of every check that an enabled job refreshes."""
    family = CHECK_INTERVAL.new()
    for job in config.jobs:
        for check in JOB_PUBLISHES[job]:
            family.add_metric([check], config.intervals[job])
    return family


def runs_family(counts: Mapping[str, int]) -> Metric:
    """Return the stored results per check id; ids that are not label names are left out."""
    family = CHECK_RUNS.new()
    for check, count in counts.items():
        if _LABEL_NAME.fullmatch(check) is not None:
            family.add_metric([check], float(count))
    return family


def _up_value(statuses: Mapping[str, Status]) -> float | None:
    """Return ``smtpdiag_up`` from the dns and connect statuses of one target.

    A failed dns check skips connect, so it alone gives 0. A skipped connect check after a
    dns check that passed (no host to try) gives no value.
    """
    if statuses.get("dns") in (Status.CRITICAL, Status.UNKNOWN):
        return 0.0
    connect = statuses.get("connect")
    if connect is None or connect not in STATUS_VALUES:
        return None
    return 1.0 if connect in SUCCESS_STATUSES else 0.0


def _add_check(families: Mapping[str, FamilyMetric], entry: _Entry) -> None:
    """Add the status, success, duration, run time and findings of one result."""
    result = entry.result
    check = result.id
    if _LABEL_NAME.fullmatch(check) is None:
        return
    labels = [entry.target, check]
    value = STATUS_VALUES.get(result.status)
    if value is not None:
        success = 1.0 if result.status in SUCCESS_STATUSES else 0.0
        families[CHECK_STATUS.name].add_metric(labels, float(value))
        families[CHECK_SUCCESS.name].add_metric(labels, success)
    families[CHECK_DURATION.name].add_metric(labels, result.duration_seconds)
    families[CHECK_LAST_RUN.name].add_metric(labels, entry.finished_at)
    for reason in _finding_reasons(result):
        families[CHECK_FINDING.name].add_metric([*labels, reason], 1.0)


def _finding_reasons(result: CheckResult) -> list[str]:
    """Return the distinct name parts of the result's warning and critical finding codes, in
    finding order."""
    reasons: dict[str, None] = {}
    for finding in result.findings:
        if finding.severity is Severity.INFO:
            continue
        name = reason_name(finding.code)
        reasons[name if _LABEL_NAME.fullmatch(name) else OTHER_REASON] = None
    return list(reasons)


def _add_facts(families: Mapping[str, FamilyMetric], entry: _Entry, now: float) -> None:
    """Add the certificate expiry, clock offset or token lifetime that a result measured."""
    result = entry.result
    if result.id == "tls":
        not_after = _timestamp(_fact(result, "cert_not_after"))
        if not_after is not None:
            families[CERT_NOT_AFTER.name].add_metric([entry.target], not_after)
    elif result.id == "clock":
        offset = _number(result.facts.get("clock_offset_seconds"))
        if offset is not None:
            families[CLOCK_OFFSET.name].add_metric([entry.target], offset)
    elif result.id == "token":
        expires_at = _timestamp(result.facts.get("expires_at"))
        if expires_at is not None:
            provider = entry.provider if entry.provider in PROVIDERS else GENERIC_PROVIDER
            families[TOKEN_EXPIRES_IN.name].add_metric([entry.target, provider], expires_at - now)


def _render_target(results: Sequence[CachedResult]) -> dict[str, str]:
    """Return the sample lines of one target's results by family, the token lifetime left
    out because it depends on the time of the scrape."""
    families = target_families([_entry(cached) for cached in results], 0.0, lambda name: "")
    return {
        family.name: render_samples(family)
        for family in families
        if family.name != TOKEN_EXPIRES_IN.name
    }


def _text(families: Iterable[Metric]) -> str:
    return "".join(render_header(family) + render_samples(family) for family in families)


def _fact(result: CheckResult, name: str) -> Any:
    """Return a fact of the result, or else of its first finding that carries it."""
    if name in result.facts:
        return result.facts[name]
    for finding in result.findings:
        if name in finding.facts:
            return finding.facts[name]
    return None


def _timestamp(value: object) -> float | None:
    """Return the POSIX time of an ISO 8601 text (UTC when it has no offset), or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _number(value: object) -> float | None:
    """Return a finite int or float as float, or None for anything else (bool included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def log_families(counts: LogCounts) -> list[Metric]:
    """Return the log counter families of one snapshot."""
    attempts = AUTH_ATTEMPTS.new()
    for (source, provider), count in sorted(counts.attempts.items()):
        attempts.add_metric([source, provider], float(count))
    failures = AUTH_FAILURES.new()
    for (source, provider, reason), count in sorted(counts.failures.items()):
        failures.add_metric([source, provider, reason], float(count))
    followed = LOG_FILES_FOLLOWED.new()
    followed.add_metric([], float(counts.files_followed))
    return [
        attempts,
        failures,
        _by_source(LOG_LINES, counts.lines),
        _by_source(LOG_PARSE_ERRORS, counts.parse_errors),
        _by_source(SECRET_LEAKS, counts.secret_leaks),
        followed,
    ]


def _by_source(family: _Family, counts: Mapping[str, int]) -> FamilyMetric:
    metric = family.new()
    for source, count in sorted(counts.items()):
        metric.add_metric([source], float(count))
    return metric


def _cached_note(name: str, intervals: Mapping[str, float]) -> str:
    """Return the HELP sentence that states how old a cached family's samples may be."""
    job = FAMILY_JOBS.get(name)
    if job is not None:
        refreshed = f"by the {job} job every {intervals.get(job, math.nan):g} s (configurable)"
    else:
        jobs = "; ".join(_job_texts(intervals))
        refreshed = f"at each job's configured interval: {jobs}"
    return f"Cached: refreshed {refreshed}, so up to one interval plus the check's run time old."


def _job_texts(intervals: Mapping[str, float]) -> Iterable[str]:
    for job, checks in JOB_PUBLISHES.items():
        yield f"the {job} job runs {' and '.join(checks)} every {intervals.get(job, math.nan):g} s"


def _entry(cached: CachedResult) -> _Entry:
    return _Entry(cached.target, cached.provider, cached.result, cached.finished_at)


class _FixedCollector(Collector):
    """Returns families rendered once, for the registry of one probe."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = tuple(families)

    def describe(self) -> list[Metric]:
        return list(self._families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def probe_registry(report: Report, target: ExporterTarget, duration: float) -> CollectorRegistry:
    """Return a registry with the metrics of one fresh ``/probe`` run against ``target``.

    It contains the per-target families of every check in ``report``, plus
    ``smtpdiag_probe_success`` and ``smtpdiag_probe_duration_seconds`` (``duration`` seconds).
    """
    now = time.time()
    entries = [_Entry(target.name, target.provider, result, now) for result in report.checks]
    families = target_families(entries, now, lambda name: PROBE_NOTE)

    success = PROBE_SUCCESS.new(PROBE_NOTE)
    failed = any(result.status in (Status.CRITICAL, Status.UNKNOWN) for result in report.checks)
    success.add_metric([], 0.0 if failed else 1.0)
    took = PROBE_DURATION.new(PROBE_NOTE)
    took.add_metric([], duration)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FixedCollector([*families, success, took]))
    return registry
