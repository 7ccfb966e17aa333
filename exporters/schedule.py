"""Probe scheduler: runs each job of each target at its interval and stores the results.

One dispatcher thread keeps the due time of every (target, job) pair in a heap and hands due
runs to a thread pool, so a slow probe delays neither other targets nor a scrape, which only
reads the ``ResultCache``. First runs spread over a short start window so that many targets
do not connect at the same moment; later runs are ``interval * (1 ± jitter)`` apart.
"""

from __future__ import annotations

import heapq
import logging
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, replace
from typing import Any

from exporters.cache import CachedResult, ResultCache
from exporters.settings import JOB_CHECKS, JOB_PUBLISHES, ExporterConfig, ExporterTarget
from smtpdiag.context import OAuthSettings
from smtpdiag.engine import run_checks
from smtpdiag.errors import UsageError
from smtpdiag.models import CheckResult, Report, Status
from smtpdiag.oauth.cache import TokenCache
from smtpdiag.redact import redact
from smtpdiag.secrets import Secret
from smtpdiag.spec import CheckSpec

logger = logging.getLogger(__name__)

ErrorReporter = Callable[[str, str, str], None]
"""Callback for a failed check: (target name, check id, redacted message)."""

START_WINDOW = 5.0
"""Seconds, at most, over which the first runs of the jobs spread after a start or reload."""

WAIT_WARNING_SECONDS = 5.0
"""Seconds a job may wait for a free worker before the wait is logged."""

WAIT_WARNING_PERIOD = 60.0
"""Seconds between two log lines about jobs that waited for a worker."""

MAX_WAIT = 1.0
"""Seconds the dispatcher sleeps at most, so that it notices a stop or a changed clock."""

Pair = tuple[str, str]
"""A (target name, job name) pair: the unit that the scheduler runs."""

JOB_PEERS = {
    "connect": "server",
    "tls": "server",
    "clock": "server",
    "auth": "server",
    "token": "token endpoint",
    "local": "local relay",
}
"""Peer that each job waits for when it hangs: the submission server, the token endpoint or
the local relay (the only peer of the local job). The auth job reaches the token endpoint too,
but only when the cached access token expired."""


def first_due(now: float, interval: float, random_share: float) -> float:
    """Return the time of a pair's first run: a random share of the start window from now."""
    return now + random_share * min(interval, START_WINDOW)


def next_due(now: float, interval: float, jitter: float, random_share: float) -> float:
    """Return the time of the next run: ``interval`` from now, moved by up to ± ``jitter``."""
    return now + interval * (1.0 + jitter * (2.0 * random_share - 1.0))


class RunPlan:
    """Due times of (target, job) pairs, earliest first. Callers hold the scheduler's lock."""

    def __init__(self) -> None:
        self._due: dict[Pair, float] = {}
        # Entries whose time no longer matches _due are stale and skipped when popped.
        self._heap: list[tuple[float, str, str]] = []

    def schedule(self, pair: Pair, due: float) -> None:
        """Schedule ``pair`` at ``due``, in place of any earlier time."""
        self._due[pair] = due
        heapq.heappush(self._heap, (due, *pair))

    def remove(self, pair: Pair) -> None:
        """Unschedule ``pair``."""
        self._due.pop(pair, None)

    def due(self, pair: Pair) -> float | None:
        """Return the due time of ``pair``, or None when it is not scheduled."""
        return self._due.get(pair)

    def pairs(self) -> set[Pair]:
        """Return every scheduled pair."""
        return set(self._due)

    def pop_due(self, now: float) -> list[Pair]:
        """Unschedule and return every pair due at or before ``now``, earliest first."""
        popped: list[Pair] = []
        while self._heap and self._heap[0][0] <= now:
            due, target, job = heapq.heappop(self._heap)
            if self._due.get((target, job)) == due:
                del self._due[(target, job)]
                popped.append((target, job))
        return popped

    def next_due(self) -> float | None:
        """Return the earliest due time, or None when nothing is scheduled."""
        while self._heap and self._due.get(self._heap[0][1:]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None


@dataclass(frozen=True)
class _TokenSlot:
    """Token cache of one target and the token settings it was made for."""

    oauth: OAuthSettings
    access_token: Secret | None
    cache: TokenCache

    def fits(self, target: ExporterTarget) -> bool:
        """Tell whether ``target`` selects its access token as this slot's target did."""
        return self.oauth == target.target.oauth and self.access_token == target.target.access_token


class Scheduler:
    """Runs the configured jobs of every target and keeps the ``ResultCache`` current.

    ``specs`` must contain every check id of ``JOB_CHECKS``. The clocks and ``random`` are
    injectable for tests: ``monotonic`` drives the due times, ``wall`` stamps results.
    """

    def __init__(
        self,
        specs: Sequence[CheckSpec],
        cache: ResultCache,
        *,
        on_error: ErrorReporter | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        random: Callable[[], float] = random.random,
    ) -> None:
        self._specs = {spec.id: spec for spec in specs}
        missing = sorted({check for ids in JOB_CHECKS.values() for check in ids} - set(self._specs))
        if missing:
            raise ValueError(f"no check spec for the job checks {', '.join(missing)}")
        self._cache = cache
        self._on_error = on_error
        self._monotonic = monotonic
        self._wall = wall
        self._random = random

        # The condition's lock protects every attribute below.
        self._condition = threading.Condition()
        self._config: ExporterConfig | None = None
        self._targets: dict[str, ExporterTarget] = {}
        self._token_slots: dict[str, _TokenSlot] = {}
        self._plan = RunPlan()
        self._running: set[Pair] = set()
        self._finished: set[Pair] = set()
        self._futures: set[Future[None]] = set()
        self._executor: _WorkerPool | None = None
        self._waiting: dict[str, list[str]] = {}
        """Jobs of a target that came due while another of its jobs ran, in due order."""
        self._dispatcher: threading.Thread | None = None
        self._stopping = False
        self._wait_warned_at = -math.inf

    def start(self, config: ExporterConfig) -> None:
        """Schedule ``config`` and start the dispatcher thread and the worker pool."""
        with self._condition:
            if self._dispatcher is not None:
                raise RuntimeError("the scheduler is already started")
            self._executor = _pool(config.workers)
            self._apply(config)
            self._dispatcher = threading.Thread(
                target=self._dispatch, name="smtpdiag-dispatcher", daemon=True
            )
            self._dispatcher.start()
        logger.info(
            "scheduler started: targets %d, jobs %s, workers %d",
            len(config.targets),
            ", ".join(config.jobs) or "none",
            config.workers,
        )

    def reconfigure(self, config: ExporterConfig) -> None:
        """Replace targets, jobs and intervals at once, keeping unchanged pairs' due times."""
        with self._condition:
            old_pool = None
            resized = self._config is not None and config.workers != self._config.workers
            if self._executor is not None and resized:
                old_pool, self._executor = self._executor, _pool(config.workers)
            self._apply(config)
            self._condition.notify_all()
        if old_pool is not None:
            # Its running and queued jobs finish and store their results.
            old_pool.shutdown(cancel_pending=False)
        logger.info(
            "scheduler reconfigured: targets %d, jobs %s",
            len(config.targets),
            ", ".join(config.jobs),
        )

    def run_once(self, config: ExporterConfig) -> None:
        """Run every job of every target once, concurrently, and return when all are done.

        A pair that the dispatcher is running at the time is not started a second time.
        """
        with self._condition:
            self._apply(config)
            work = [self._claim(entry, job) for entry in config.targets for job in config.jobs]
        with _pool(config.workers) as pool:
            futures = [pool.submit(self._run_job, *item) for item in work if item is not None]
        for future in futures:
            future.result()

    def probe(
        self, name: str, checks: Sequence[str] | None = None, deadline: float | None = None
    ) -> Report:
        """Run checks of target ``name`` now, store the published results, return the report.

        ``checks`` selects check ids, which run with every check they require; None runs the
        checks of all enabled jobs. ``deadline`` (seconds) shortens the target's check and run
        deadlines, so that the probe returns before the scraper gives up. Raises ``KeyError``
        for an unknown target and ``UsageError`` for an unknown check id.
        """
        with self._condition:
            entry = self._targets.get(name)
            config = self._config
            slot = self._token_slots.get(name)
        if entry is None or config is None or slot is None:
            raise KeyError(name)
        selected = self._probe_checks(config, checks)
        specs = [spec for check_id, spec in self._specs.items() if check_id in selected]
        settings = entry.settings
        if deadline is not None:
            settings = replace(
                settings,
                timeout=min(settings.timeout, deadline),
                check_deadline=min(settings.check_deadline, deadline),
                run_deadline=min(settings.run_deadline, deadline),
            )
        report = run_checks(specs, entry.target, settings, token_cache=slot.cache)
        for job in config.jobs:
            results = tuple(result for result in report.checks if result.id in JOB_PUBLISHES[job])
            if results:
                complete = len(results) == len(JOB_PUBLISHES[job])
                self._publish(entry, job, results, config.intervals[job], complete=complete)
        return report

    def ready(self) -> bool:
        """Tell whether every (target, job) pair has stored a first result."""
        with self._condition:
            return self._config is not None and not self._configured_pairs() - self._finished

    def pending(self) -> int:
        """Return the number of (target, job) pairs without a first result."""
        with self._condition:
            return len(self._configured_pairs() - self._finished)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the dispatcher and the pool, waiting at most ``timeout`` seconds for jobs.

        Queued jobs are cancelled. A job still running after ``timeout`` is left to its
        deadline; its daemon thread does not keep the process alive.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
            dispatcher, executor = self._dispatcher, self._executor
            futures = set(self._futures)
        if dispatcher is not None:
            dispatcher.join(max(0.0, deadline - time.monotonic()))
        if executor is not None:
            executor.shutdown(cancel_pending=True)
        started = {future for future in futures if not future.cancelled()}
        _done, hung = wait_for_futures(started, timeout=max(0.0, deadline - time.monotonic()))
        if hung:
            logger.warning(
                "scheduler stopped; jobs still running, left to their deadlines: %d", len(hung)
            )
        else:
            logger.info("scheduler stopped")

    def _configured_pairs(self) -> set[Pair]:
        """Return every (target, job) pair of the current configuration."""
        if self._config is None:
            return set()
        return {(entry.name, job) for entry in self._config.targets for job in self._config.jobs}

    def _apply(self, config: ExporterConfig) -> None:
        """Install ``config``: schedule new and changed pairs, drop removed ones."""
        now = self._monotonic()
        previous = self._targets
        self._config = config
        self._targets = {entry.name: entry for entry in config.targets}
        configured = self._configured_pairs()
        for pair in self._plan.pairs() - configured:
            self._plan.remove(pair)
        self._finished &= configured
        self._waiting = {
            name: kept
            for name, jobs in self._waiting.items()
            if (kept := [job for job in jobs if (name, job) in configured])
        }
        for name, job in sorted(configured):
            self._schedule_after_change((name, job), previous.get(name), now)
        self._token_slots = {
            entry.name: self._token_slot(entry, self._token_slots.get(entry.name))
            for entry in config.targets
        }
        published = {check for job in config.jobs for check in JOB_PUBLISHES[job]}
        self._cache.retain(self._targets, published)

    def _schedule_after_change(
        self, pair: Pair, previous: ExporterTarget | None, now: float
    ) -> None:
        """Keep an unchanged pair's due time, capped by its interval, and start others soon.

        An unchanged pair that is running or waiting for its target has no due time:
        ``_job_done`` schedules it.
        """
        assert self._config is not None
        interval = self._config.intervals[pair[1]]
        due = self._plan.due(pair)
        changed = previous != self._targets[pair[0]]
        waiting = pair[1] in self._waiting.get(pair[0], ())
        if due is None and (pair in self._running or waiting) and not changed:
            return
        if due is None or changed:
            self._plan.schedule(pair, first_due(now, interval, self._random()))
        elif due > now + interval:
            self._plan.schedule(pair, now + interval)

    @staticmethod
    def _token_slot(entry: ExporterTarget, slot: _TokenSlot | None) -> _TokenSlot:
        """Keep the target's token cache while its token settings stay the same."""
        if slot is not None and slot.fits(entry):
            return slot
        return _TokenSlot(entry.target.oauth, entry.target.access_token, TokenCache())

    def _dispatch(self) -> None:
        """Hand every due pair to the pool until ``stop``, in the dispatcher thread."""
        with self._condition:
            while not self._stopping:
                now = self._monotonic()
                for pair in self._plan.pop_due(now):
                    self._submit(pair, now)
                upcoming = self._plan.next_due()
                wait = MAX_WAIT if upcoming is None else min(MAX_WAIT, max(0.0, upcoming - now))
                self._condition.wait(wait)

    def _submit(self, pair: Pair, now: float) -> None:
        """Start ``pair`` on the pool, or skip this run while the previous one still runs.

        A target runs one job per peer at a time (``JOB_PEERS``): a job that comes due while
        another job of its target talks to the same peer waits for it. A target whose server
        hangs therefore occupies one worker, not one per job, so it cannot delay other
        targets while there are more workers than hung peers.
        """
        assert self._config is not None and self._executor is not None
        name, job = pair
        if pair not in self._running and self._peer_busy(name, job):
            waiting = self._waiting.setdefault(name, [])
            if job not in waiting:
                waiting.append(job)
            return
        work = self._claim(self._targets[name], job)
        if work is None:
            logger.warning("job %s of target %s is still running: skipping this run", job, name)
            interval = self._config.intervals[job]
            self._plan.schedule(pair, next_due(now, interval, self._config.jitter, self._random()))
            return
        future = self._executor.submit(self._run_job, *work, self._monotonic())
        self._futures.add(future)
        future.add_done_callback(self._forget_future)

    def _peer_busy(self, name: str, job: str) -> bool:
        """Tell whether another job of target ``name`` talks to the peer of ``job`` now."""
        peer = JOB_PEERS[job]
        return any(target == name and JOB_PEERS[other] == peer for target, other in self._running)

    def _start_waiting(self, name: str) -> None:
        """Start the waiting jobs of ``name`` whose peer is free, in the order they came due."""
        waiting = self._waiting.pop(name, [])
        if self._stopping or self._executor is None:
            return
        now = self._monotonic()
        for job in waiting:
            self._submit((name, job), now)  # puts the job back when its peer is still busy

    def _forget_future(self, future: Future[None]) -> None:
        with self._condition:
            self._futures.discard(future)

    def _claim(
        self, entry: ExporterTarget, job: str
    ) -> tuple[ExporterTarget, str, TokenCache, float] | None:
        """Mark the pair as running and return the arguments of its run, or None if it runs."""
        assert self._config is not None
        pair = (entry.name, job)
        if pair in self._running:
            return None
        self._running.add(pair)
        return entry, job, self._token_slots[entry.name].cache, self._config.intervals[job]

    def _run_job(
        self,
        entry: ExporterTarget,
        job: str,
        token_cache: TokenCache,
        interval: float,
        submitted_at: float | None = None,
    ) -> None:
        """Run one job of one target on a pool thread, store its results, schedule its next run.

        ``submitted_at`` (monotonic seconds) is when the dispatcher queued the job.
        """
        try:
            if submitted_at is not None:
                self._note_wait(entry.name, job, self._monotonic() - submitted_at)
            started = time.monotonic()
            results = self._job_results(entry, job, token_cache)
            logger.debug(
                "job %s of target %s finished in %.3f s",
                job,
                entry.name,
                time.monotonic() - started,
            )
            self._publish(entry, job, results, interval, complete=True)
        finally:
            self._job_done(entry, job)

    def _note_wait(self, target: str, job: str, waited: float) -> None:
        """Warn, at most once per ``WAIT_WARNING_PERIOD``, when a job waited for a worker.

        Without this line, targets whose jobs queue behind hung ones only go stale.
        """
        if waited < WAIT_WARNING_SECONDS:
            return
        now = self._monotonic()
        with self._condition:
            if now - self._wait_warned_at < WAIT_WARNING_PERIOD:
                return
            self._wait_warned_at = now
            workers = self._config.workers if self._config is not None else 0
        logger.warning(
            "job %s of target %s waited %.1f s for a free worker: all workers (%d) were busy; "
            "raise [exporter] workers, or lower the timeout of targets that hang",
            job,
            target,
            waited,
            workers,
            extra={"target": target},
        )

    def _job_results(
        self, entry: ExporterTarget, job: str, token_cache: TokenCache
    ) -> tuple[CheckResult, ...]:
        """Run the job's checks and return the results it publishes."""
        specs = [self._specs[check_id] for check_id in JOB_CHECKS[job]]
        try:
            report = run_checks(specs, entry.target, entry.settings, token_cache=token_cache)
        except Exception as error:  # a failed job must keep its schedule and report unknown
            message = redact(f"{error.__class__.__name__}: {error}")
            logger.error("job %s of target %s failed: %s", job, entry.name, message)
            return tuple(
                CheckResult.unknown(check_id, f"the {job} job failed: {message}")
                for check_id in JOB_PUBLISHES[job]
            )
        return tuple(result for result in report.checks if result.id in JOB_PUBLISHES[job])

    def _publish(
        self,
        entry: ExporterTarget,
        job: str,
        results: Collection[CheckResult],
        interval: float,
        *,
        complete: bool,
    ) -> None:
        """Store ``results`` unless a reload removed the target or disabled the job.

        ``complete`` marks the pair as having its first result, which ``ready`` counts.
        """
        finished_at = self._wall()
        with self._condition:
            config = self._config
            if config is None or entry.name not in self._targets or job not in config.jobs:
                return
            for result in results:
                self._cache.put(
                    CachedResult(entry.name, entry.provider, result, finished_at, interval)
                )
            if complete:
                self._finished.add((entry.name, job))
        for result in results:
            if result.status is Status.UNKNOWN and self._on_error is not None:
                self._on_error(entry.name, result.id, redact(result.summary))

    def _job_done(self, entry: ExporterTarget, job: str) -> None:
        """Release the pair and schedule its next run if it is still configured."""
        pair = (entry.name, job)
        with self._condition:
            self._running.discard(pair)
            config = self._config
            if config is None or pair not in self._configured_pairs():
                return
            # A reload that changed the target has already scheduled an early run of it.
            if self._targets[entry.name] == entry or self._plan.due(pair) is None:
                interval = config.intervals[job]
                due = next_due(self._monotonic(), interval, config.jitter, self._random())
                self._plan.schedule(pair, due)
            self._start_waiting(entry.name)
            self._condition.notify_all()

    def _probe_checks(self, config: ExporterConfig, checks: Sequence[str] | None) -> set[str]:
        """Return the check ids of a probe: the given ones and what they require."""
        if checks is None:
            return {check for job in config.jobs for check in JOB_CHECKS[job]}
        for check_id in checks:
            if check_id not in self._specs:
                raise UsageError(
                    f"Unknown check {check_id!r}.",
                    f"Use one of: {', '.join(self._specs)}.",
                    value=check_id,
                )
        selected: set[str] = set()
        stack = list(checks)
        while stack:
            check_id = stack.pop()
            if check_id in selected or check_id not in self._specs:
                continue
            selected.add(check_id)
            stack.extend(self._specs[check_id].requires)
        return selected


_Task = tuple["Future[None]", Callable[..., None], tuple[Any, ...]]


class _WorkerPool:
    """A fixed number of daemon threads that run submitted calls in order.

    ThreadPoolExecutor's threads are not daemon threads, so the interpreter waits at exit for
    a probe that still waits for a silent server, up to the engine's run deadline. These
    threads end with the process after ``stop``; each check has its own deadline anyway.
    """

    def __init__(self, workers: int) -> None:
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"smtpdiag-probe-{index}", daemon=True)
            for index in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, function: Callable[..., None], *args: Any) -> Future[None]:
        """Queue ``function(*args)`` and return its future."""
        future: Future[None] = Future()
        self._queue.put((future, function, args))
        return future

    def shutdown(self, *, cancel_pending: bool) -> None:
        """Let every thread end after its current call.

        With ``cancel_pending`` the queued calls are cancelled; without it they run first.
        """
        if cancel_pending:
            while True:
                try:
                    task = self._queue.get_nowait()
                except queue.Empty:
                    break
                if task is not None:
                    task[0].cancel()
        for _ in self._threads:
            self._queue.put(None)

    def __enter__(self) -> _WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(cancel_pending=False)

    def _work(self) -> None:
        while (task := self._queue.get()) is not None:
            future, function, args = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                function(*args)
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(None)


def _pool(workers: int) -> _WorkerPool:
    return _WorkerPool(workers)
