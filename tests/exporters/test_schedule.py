"""Scheduler: intervals and jitter, concurrency, reloads, probes, token caches and errors."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

import exporters.schedule as schedule_module
from exporters.cache import ResultCache
from exporters.schedule import RunPlan, Scheduler, first_due, next_due
from exporters.settings import (
    DEFAULT_INTERVALS,
    JOBS,
    ExporterConfig,
    ExporterTarget,
    WebSettings,
)
from smtpdiag.context import (
    CheckContext,
    OAuthSettings,
    SecretFile,
    SecretRole,
    SecretSettings,
    Settings,
    Target,
    TlsMode,
)
from smtpdiag.errors import UsageError
from smtpdiag.models import CheckResult, Status
from smtpdiag.oauth.cache import TokenCache
from smtpdiag.spec import CheckSpec

WAIT_SECONDS = 10.0
"""Upper bound for waiting on a background thread; reached only when a test fails."""

# Check ids with the dependencies of the real checks.
SHAPES: Sequence[tuple[str, tuple[str, ...], tuple[str, ...]]] = (
    ("dns", (), ()),
    ("connect", ("dns",), ()),
    ("tls", ("dns", "connect"), ()),
    ("token", (), ()),
    ("scope", ("token",), ()),
    ("auth", ("dns", "connect", "token"), ()),
    ("clock", (), ("connect", "token", "auth")),
    ("msmtp_config", (), ()),
    ("relay", (), ()),
    ("secrets", (), ()),
)

JOB_CHECK_IDS = tuple(check_id for check_id, _requires, _follows in SHAPES)
"""Every check id that some job runs."""


class FakeChecks:
    """Check specs that record their calls and return a configurable status."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []
        self.token_caches: list[tuple[str, TokenCache | None]] = []
        self.statuses: dict[tuple[str, str], Status] = {}
        self.gates: dict[tuple[str, str], threading.Event] = {}
        self.entered = threading.Event()

    def specs(self) -> list[CheckSpec]:
        return [
            CheckSpec(check_id, check_id, self._runner(check_id), (), requires, follows)
            for check_id, requires, follows in SHAPES
        ]

    def count(self, target: str, check_id: str) -> int:
        with self.lock:
            return self.calls.count((target, check_id))

    def _runner(self, check_id: str) -> Callable[[Target, CheckContext], CheckResult]:
        def run(target: Target, ctx: CheckContext) -> CheckResult:
            name = target.name or ""
            with self.lock:
                self.calls.append((name, check_id))
                if check_id == "token":
                    self.token_caches.append((name, ctx.token_cache))
            gate = self.gates.get((name, check_id))
            if gate is not None:
                self.entered.set()
                gate.wait(WAIT_SECONDS)
            status = self.statuses.get((name, check_id), Status.OK)
            return CheckResult(check_id, status, f"{check_id} is {status.value}")

        return run


def exporter_target(name: str, client_id: str | None = None) -> ExporterTarget:
    target = Target(
        host="127.0.0.1",
        port=2525,
        tls_mode=TlsMode.STARTTLS,
        name=name,
        oauth=OAuthSettings(client_id=client_id),
    )
    settings = Settings(timeout=1.0, check_deadline=WAIT_SECONDS, run_deadline=WAIT_SECONDS)
    return ExporterTarget(name, target, settings, "generic")


def make_config(
    names: Sequence[str],
    *,
    jobs: Sequence[str] = JOBS,
    interval: float | None = None,
    jitter: float = 0.0,
    targets: Sequence[ExporterTarget] | None = None,
) -> ExporterConfig:
    intervals = dict(DEFAULT_INTERVALS)
    if interval is not None:
        intervals = dict.fromkeys(JOBS, interval)
    return ExporterConfig(
        path="test.toml",
        targets=tuple(targets) if targets is not None else tuple(map(exporter_target, names)),
        jobs=tuple(jobs),
        intervals=intervals,
        jitter=jitter,
        workers=8,
        max_connections=24,
        log_files=(),
        state_file=None,
        web=WebSettings(),
    )


class FakeClock:
    """Monotonic clock that moves only when a test sets it."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


@pytest.fixture
def checks() -> FakeChecks:
    return FakeChecks()


@pytest.fixture
def cache() -> ResultCache:
    return ResultCache()


@pytest.fixture
def started() -> Iterator[list[Scheduler]]:
    """Schedulers a test started; stopped after it, also when it fails."""
    schedulers: list[Scheduler] = []
    yield schedulers
    for scheduler in schedulers:
        scheduler.stop(timeout=1.0)


@pytest.fixture(autouse=True)
def _fast_dispatcher(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the dispatcher notice a fake clock's change within milliseconds."""
    monkeypatch.setattr(schedule_module, "MAX_WAIT", 0.005)


def start_hanging(
    checks: FakeChecks,
    cache: ResultCache,
    started: list[Scheduler],
    config: ExporterConfig,
    *hung: str,
) -> Scheduler:
    """Start a scheduler on ``config`` whose connect check of each ``hung`` target waits
    until ``released``."""
    for name in hung:
        checks.gates[(name, "connect")] = threading.Event()
    scheduler = Scheduler(checks.specs(), cache)
    started.append(scheduler)
    scheduler.start(config)
    return scheduler


def released(checks: FakeChecks) -> None:
    for gate in checks.gates.values():
        gate.set()


def cached_keys(cache: ResultCache) -> list[tuple[str, str]]:
    return [(item.target, item.result.id) for item in cache.snapshot()]


# Due times.


@pytest.mark.parametrize(
    ("share", "expected"),
    [(0.0, 100.0), (0.5, 102.5), (0.999, 104.995)],
    ids=["window-start", "window-middle", "window-end"],
)
def test_first_due_within_start_window(share: float, expected: float) -> None:
    assert first_due(100.0, 60.0, share) == pytest.approx(expected)


def test_first_due_window_shorter_than_interval() -> None:
    assert first_due(100.0, 2.0, 0.5) == pytest.approx(101.0)


@pytest.mark.parametrize(
    ("share", "expected"),
    [(0.0, 150.0), (0.5, 160.0), (0.999, 169.98)],
    ids=["earliest", "middle", "latest"],
)
def test_next_due_jitter_bounds(share: float, expected: float) -> None:
    assert next_due(100.0, 60.0, 0.5 / 3, share) == pytest.approx(expected)


def test_next_due_without_jitter() -> None:
    assert next_due(100.0, 60.0, 0.0, 0.9) == 160.0


def test_plan_pops_due_pairs_in_time_order() -> None:
    plan = RunPlan()
    plan.schedule(("b", "tls"), 3.0)
    plan.schedule(("a", "tls"), 2.0)
    plan.schedule(("c", "tls"), 9.0)
    assert plan.pop_due(5.0) == [("a", "tls"), ("b", "tls")]


def test_plan_reschedule_replaces_time() -> None:
    plan = RunPlan()
    plan.schedule(("a", "tls"), 2.0)
    plan.schedule(("a", "tls"), 8.0)
    assert (plan.pop_due(5.0), plan.next_due()) == ([], 8.0)


def test_plan_removed_pair_not_popped() -> None:
    plan = RunPlan()
    plan.schedule(("a", "tls"), 2.0)
    plan.remove(("a", "tls"))
    assert (plan.pop_due(5.0), plan.next_due()) == ([], None)


# Runs with the dispatcher.


def test_job_runs_again_after_jittered_interval(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    clock = FakeClock(100.0)
    scheduler = Scheduler(checks.specs(), cache, monotonic=clock, random=lambda: 0.0)
    started.append(scheduler)
    scheduler.start(make_config(["a"], jobs=["tls"], interval=10.0, jitter=0.5))
    assert wait_until(lambda: checks.count("a", "tls") == 1)

    clock.now = 104.9  # earliest next run: 100 + 10 * (1 - 0.5)
    time.sleep(0.05)
    assert checks.count("a", "tls") == 1

    clock.now = 105.0
    assert wait_until(lambda: checks.count("a", "tls") == 2)


def test_job_not_run_before_latest_jitter(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    clock = FakeClock(100.0)
    shares = iter([0.0, 0.999, 0.999])
    scheduler = Scheduler(checks.specs(), cache, monotonic=clock, random=lambda: next(shares))
    started.append(scheduler)
    scheduler.start(make_config(["a"], jobs=["tls"], interval=10.0, jitter=0.5))
    assert wait_until(lambda: checks.count("a", "tls") == 1)

    clock.now = 114.9  # latest next run: 100 + 10 * (1 + 0.5 * 0.998)
    time.sleep(0.05)
    assert checks.count("a", "tls") == 1

    clock.now = 115.0
    assert wait_until(lambda: checks.count("a", "tls") == 2)


def test_jobs_repeat_with_real_clock(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    started.append(scheduler)
    scheduler.start(make_config(["a", "b"], interval=0.02, jitter=0.1))
    assert wait_until(lambda: min(checks.count("a", "auth"), checks.count("b", "tls")) >= 3)


def test_hanging_check_does_not_delay_other_target(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    start_hanging(
        checks,
        cache,
        started,
        make_config(["slow", "fast"], jobs=["connect"], interval=0.02),
        "slow",
    )
    try:
        assert wait_until(lambda: checks.count("fast", "connect") >= 3)
        assert [key for key in cached_keys(cache) if key[0] == "slow"] == []
    finally:
        released(checks)


@pytest.mark.parametrize("hung", [1, 3])
def test_hung_servers_leave_workers_for_others(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler], hung: int
) -> None:
    names = [f"hung{index}" for index in range(hung)]
    config = replace(
        make_config([*names, "fast"], jobs=["connect", "tls", "clock", "auth"], interval=0.02),
        workers=hung + 1,
    )
    start_hanging(checks, cache, started, config, *names)
    try:
        assert wait_until(lambda: checks.count("fast", "connect") >= 12)
    finally:
        released(checks)


def test_server_jobs_run_serially(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    start_hanging(
        checks,
        cache,
        started,
        make_config(["a"], jobs=["connect", "tls", "clock"], interval=0.01),
        "a",
    )
    try:
        assert checks.entered.wait(WAIT_SECONDS)
        time.sleep(0.1)  # time for the other jobs to come due
        assert checks.count("a", "connect") == 1
    finally:
        released(checks)


def test_waiting_job_runs_after_hang_ends(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    start_hanging(
        checks, cache, started, make_config(["a"], jobs=["connect", "tls"], interval=0.01), "a"
    )
    assert checks.entered.wait(WAIT_SECONDS)
    time.sleep(0.05)
    released(checks)
    assert wait_until(lambda: checks.count("a", "tls") >= 1)


def test_running_job_not_started_twice(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    start_hanging(checks, cache, started, make_config(["a"], jobs=["connect"], interval=0.01), "a")
    try:
        assert checks.entered.wait(WAIT_SECONDS)
        time.sleep(0.1)  # ten intervals in which the job is due again
        assert checks.count("a", "connect") == 1
    finally:
        released(checks)


def test_changed_running_target_not_started_twice(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    scheduler = start_hanging(
        checks, cache, started, make_config(["a"], jobs=["connect"], interval=0.01), "a"
    )
    try:
        assert checks.entered.wait(WAIT_SECONDS)
        entry = exporter_target("a")
        moved = replace(entry, target=replace(entry.target, port=2526))
        scheduler.reconfigure(make_config([], jobs=["connect"], interval=0.01, targets=[moved]))
        time.sleep(0.1)  # the reload schedules an early run of the changed target
        assert checks.count("a", "connect") == 1
    finally:
        released(checks)


def test_job_runs_again_after_hang_ends(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    start_hanging(checks, cache, started, make_config(["a"], jobs=["connect"], interval=0.01), "a")
    assert checks.entered.wait(WAIT_SECONDS)
    released(checks)
    assert wait_until(lambda: checks.count("a", "connect") >= 2)


def test_ready_after_first_results(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    started.append(scheduler)
    scheduler.start(make_config(["a", "b"], interval=0.02))
    assert wait_until(scheduler.ready)


def test_not_ready_while_job_hangs(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    checks.gates[("a", "token")] = threading.Event()
    scheduler = Scheduler(checks.specs(), cache)
    started.append(scheduler)
    try:
        scheduler.start(make_config(["a"], jobs=["connect", "token"], interval=0.02))
        assert wait_until(lambda: checks.count("a", "connect") >= 2)
        assert (scheduler.ready(), scheduler.pending()) == (False, 1)
    finally:
        released(checks)


def test_stop_returns_while_check_hangs(checks: FakeChecks, cache: ResultCache) -> None:
    checks.gates[("a", "connect")] = threading.Event()
    scheduler = Scheduler(checks.specs(), cache)
    try:
        scheduler.start(make_config(["a"], jobs=["connect"], interval=0.02))
        assert checks.entered.wait(WAIT_SECONDS)
        scheduler.stop(timeout=0.05)
        assert scheduler.ready() is False
    finally:
        released(checks)


def test_stop_counts_only_running_jobs(
    checks: FakeChecks, cache: ResultCache, caplog: pytest.LogCaptureFixture
) -> None:
    names = ["a", "b", "c"]
    for name in names:
        checks.gates[(name, "connect")] = threading.Event()
    scheduler = Scheduler(checks.specs(), cache)
    config = replace(make_config(names, jobs=["connect"], interval=0.02), workers=1)
    try:
        scheduler.start(config)
        assert checks.entered.wait(WAIT_SECONDS)
        time.sleep(0.1)  # the other targets come due and queue behind the one worker
        with caplog.at_level(logging.WARNING, logger="exporters.schedule"):
            scheduler.stop(timeout=0.05)
        assert "jobs still running, left to their deadlines: 1" in caplog.text
    finally:
        released(checks)


def test_probe_threads_do_not_block_exit(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    started.append(scheduler)
    scheduler.start(make_config(["a"], jobs=["connect"], interval=0.02))
    workers = [
        thread for thread in threading.enumerate() if thread.name.startswith("smtpdiag-probe")
    ]
    assert workers
    assert all(thread.daemon for thread in workers)


def test_start_twice_rejected(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    started.append(scheduler)
    scheduler.start(make_config(["a"], interval=60.0))
    with pytest.raises(RuntimeError):
        scheduler.start(make_config(["a"], interval=60.0))


# Reconfigure.


def test_reconfigure_adds_and_removes_targets(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    started.append(scheduler)
    scheduler.start(make_config(["a", "b"], jobs=["tls"], interval=0.02))
    assert wait_until(scheduler.ready)

    scheduler.reconfigure(make_config(["b", "c"], jobs=["tls"], interval=0.02))
    assert wait_until(lambda: ("c", "tls") in cached_keys(cache))
    assert {target for target, _check in cached_keys(cache)} == {"b", "c"}


def test_removed_target_stops_running(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    started.append(scheduler)
    scheduler.start(make_config(["a", "b"], jobs=["tls"], interval=0.02))
    assert wait_until(lambda: checks.count("a", "tls") >= 1)
    scheduler.reconfigure(make_config(["b"], jobs=["tls"], interval=0.02))
    runs_after_removal = checks.count("a", "tls")
    assert wait_until(lambda: checks.count("b", "tls") >= runs_after_removal + 3)
    assert checks.count("a", "tls") <= runs_after_removal + 1  # one run may have been underway


def test_reconfigure_drops_disabled_job_results(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    started.append(scheduler)
    scheduler.run_once(make_config(["a"], jobs=["tls", "clock"]))
    scheduler.reconfigure(make_config(["a"], jobs=["clock"]))
    assert cached_keys(cache) == [("a", "clock")]


def test_reconfigure_pending_counts_new_target(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"], jobs=["tls", "clock"]))
    scheduler.reconfigure(make_config(["a", "b"], jobs=["tls", "clock"]))
    assert scheduler.pending() == 2


def test_reconfigure_keeps_due_time_of_unchanged_pair(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    clock = FakeClock(100.0)
    scheduler = Scheduler(checks.specs(), cache, monotonic=clock, random=lambda: 0.0)
    started.append(scheduler)
    scheduler.start(make_config(["a"], jobs=["tls"], interval=10.0))
    assert wait_until(lambda: checks.count("a", "tls") == 1)
    clock.now = 105.0
    scheduler.reconfigure(make_config(["a", "b"], jobs=["tls"], interval=10.0))
    assert wait_until(lambda: checks.count("b", "tls") == 1)
    assert checks.count("a", "tls") == 1  # still due at 110, not restarted by the reload


# run_once and probe.


def test_run_once_runs_each_job_once(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"]))
    # dns and connect run in the connect, tls, clock and auth jobs; token in token and auth.
    assert Counter(check for _target, check in checks.calls) == {
        "dns": 4,
        "connect": 4,
        "tls": 1,
        "clock": 1,
        "token": 2,
        "scope": 1,
        "auth": 1,
        "msmtp_config": 1,
        "relay": 1,
        "secrets": 1,
    }


def test_run_once_makes_ready(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a", "b"]))
    assert (scheduler.ready(), scheduler.pending()) == (True, 0)


def test_not_ready_before_any_run(checks: FakeChecks, cache: ResultCache) -> None:
    assert Scheduler(checks.specs(), cache).ready() is False


def test_ready_without_jobs(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"], jobs=[]))
    assert scheduler.ready() is True


def test_results_published_by_job(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"]))
    assert cached_keys(cache) == [("a", check) for check in sorted(JOB_CHECK_IDS)]


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ("connect", ["connect", "dns"]),
        ("tls", ["tls"]),
        ("clock", ["clock"]),
        ("token", ["scope", "token"]),
        ("auth", ["auth"]),
        ("local", ["msmtp_config", "relay", "secrets"]),
    ],
)
def test_job_publishes_only_its_checks(
    checks: FakeChecks, cache: ResultCache, job: str, expected: list[str]
) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"], jobs=[job]))
    assert [check for _target, check in cached_keys(cache)] == expected


def test_cached_result_metadata(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache, wall=lambda: 1234.5)
    scheduler.run_once(make_config(["a"], jobs=["tls"], interval=42.0))
    item = cache.snapshot()[0]
    assert (item.target, item.provider, item.finished_at, item.interval) == (
        "a",
        "generic",
        1234.5,
        42.0,
    )


def test_probe_unknown_target(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"], jobs=[]))
    with pytest.raises(KeyError):
        scheduler.probe("nope")


def test_probe_before_configuration(checks: FakeChecks, cache: ResultCache) -> None:
    with pytest.raises(KeyError):
        Scheduler(checks.specs(), cache).probe("a")


def test_probe_runs_required_checks(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"], jobs=[]))
    report = scheduler.probe("a", ["tls"])
    assert [result.id for result in report.checks] == ["dns", "connect", "tls"]


def test_probe_all_enabled_jobs(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"], jobs=["token", "tls"]))
    report = scheduler.probe("a")
    assert [result.id for result in report.checks] == ["dns", "connect", "tls", "token", "scope"]


def test_probe_stores_results_of_enabled_jobs(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.reconfigure(make_config(["a"], jobs=["tls"]))
    scheduler.probe("a", ["tls"])
    assert cached_keys(cache) == [("a", "tls")]


def test_probe_marks_job_ready(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.reconfigure(make_config(["a"], jobs=["tls"]))
    scheduler.probe("a", ["tls"])
    assert scheduler.ready() is True


def test_probe_unknown_check(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"], jobs=[]))
    with pytest.raises(UsageError) as caught:
        scheduler.probe("a", ["nope"])
    assert caught.value.value == "nope"


def test_missing_job_spec_rejected(checks: FakeChecks, cache: ResultCache) -> None:
    specs = [spec for spec in checks.specs() if spec.id != "scope"]
    with pytest.raises(ValueError, match="scope"):
        Scheduler(specs, cache)


# Token caches.


def test_token_cache_reused_across_runs(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    config = make_config(["a"], jobs=["token", "auth"])
    scheduler.run_once(config)
    scheduler.run_once(config)
    assert len({id(token_cache) for _name, token_cache in checks.token_caches}) == 1


def test_token_cache_per_target(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a", "b"], jobs=["token"]))
    assert len({id(token_cache) for _name, token_cache in checks.token_caches}) == 2


def test_token_cache_kept_across_reconfigure(checks: FakeChecks, cache: ResultCache) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"], jobs=["token"]))
    changed_interval = make_config(["a"], jobs=["token"], interval=5.0)
    scheduler.reconfigure(changed_interval)
    scheduler.probe("a", ["token"])
    first, second = (token_cache for _name, token_cache in checks.token_caches)
    assert first is second


def test_token_cache_replaced_when_token_settings_change(
    checks: FakeChecks, cache: ResultCache
) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"], jobs=["token"]))
    changed = make_config([], jobs=["token"], targets=[exporter_target("a", client_id="other")])
    scheduler.run_once(changed)
    first, second = (token_cache for _name, token_cache in checks.token_caches)
    assert first is not second


def test_token_cache_kept_when_other_settings_change(
    checks: FakeChecks, cache: ResultCache
) -> None:
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"], jobs=["token"]))
    entry = exporter_target("a")
    moved = replace(entry, target=replace(entry.target, port=465, tls_mode=TlsMode.IMPLICIT))
    scheduler.run_once(make_config([], jobs=["token"], targets=[moved]))
    first, second = (token_cache for _name, token_cache in checks.token_caches)
    assert first is second


# Errors.


def test_on_error_once_per_unknown_result(checks: FakeChecks, cache: ResultCache) -> None:
    errors: list[tuple[str, str, str]] = []
    checks.statuses[("a", "connect")] = Status.UNKNOWN
    scheduler = Scheduler(checks.specs(), cache, on_error=lambda *args: errors.append(args))
    scheduler.run_once(make_config(["a", "b"]))
    assert [(target, check) for target, check, _message in errors] == [("a", "connect")]


def test_on_error_message_is_summary(checks: FakeChecks, cache: ResultCache) -> None:
    errors: list[tuple[str, str, str]] = []
    checks.statuses[("a", "tls")] = Status.UNKNOWN
    scheduler = Scheduler(checks.specs(), cache, on_error=lambda *args: errors.append(args))
    scheduler.run_once(make_config(["a"], jobs=["tls"]))
    assert errors == [("a", "tls", "tls is unknown")]


def test_on_error_not_called_for_critical(checks: FakeChecks, cache: ResultCache) -> None:
    errors: list[tuple[str, str, str]] = []
    checks.statuses[("a", "tls")] = Status.CRITICAL
    scheduler = Scheduler(checks.specs(), cache, on_error=lambda *args: errors.append(args))
    scheduler.run_once(make_config(["a"], jobs=["tls"]))
    assert errors == []


def test_crashed_job_stores_unknown(
    checks: FakeChecks, cache: ResultCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("engine broke")

    monkeypatch.setattr(schedule_module, "run_checks", crash)
    scheduler = Scheduler(checks.specs(), cache)
    scheduler.run_once(make_config(["a"], jobs=["token"]))
    assert [item.result.status for item in cache.snapshot()] == [Status.UNKNOWN, Status.UNKNOWN]


def test_crashed_job_reported_per_check(
    checks: FakeChecks, cache: ResultCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("engine broke")

    errors: list[tuple[str, str, str]] = []
    monkeypatch.setattr(schedule_module, "run_checks", crash)
    scheduler = Scheduler(checks.specs(), cache, on_error=lambda *args: errors.append(args))
    scheduler.run_once(make_config(["a"], jobs=["token"]))
    assert errors == [
        ("a", "token", "the token job failed: RuntimeError: engine broke"),
        ("a", "scope", "the token job failed: RuntimeError: engine broke"),
    ]


def test_probe_deadline_ends_hung_check(
    checks: FakeChecks, cache: ResultCache, started: list[Scheduler]
) -> None:
    scheduler = start_hanging(
        checks, cache, started, make_config(["a"], jobs=["token"], interval=3600), "a"
    )
    try:
        report = scheduler.probe("a", ["connect"], deadline=0.2)
    finally:
        released(checks)
    connect = next(result for result in report.checks if result.id == "connect")
    assert connect.status is Status.UNKNOWN
    assert connect.summary.endswith("of 0.2 s")


def test_wait_for_worker_logged(
    checks: FakeChecks,
    cache: ResultCache,
    started: list[Scheduler],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schedule_module, "WAIT_WARNING_SECONDS", 0.05)
    config = replace(make_config(["hung", "fast"], jobs=["connect"], interval=0.02), workers=1)
    with caplog.at_level(logging.WARNING, logger="exporters.schedule"):
        start_hanging(checks, cache, started, config, "hung")
        assert checks.entered.wait(WAIT_SECONDS)
        time.sleep(0.1)  # the fast target's job queues behind the hung one
        released(checks)
        # The fast target may have run once before the hung job took the worker.
        assert wait_until(lambda: "for a free worker" in caplog.text)
    assert "for a free worker: all workers (1) were busy" in caplog.text


def test_local_job_runs_real_secrets_check(tmp_path: Path, cache: ResultCache) -> None:
    import checks as registry

    secret = tmp_path / "oauth.env"
    secret.write_text("CLIENT_SECRET=x\n")
    secret.chmod(0o644)
    entry = exporter_target("a")
    files = (SecretFile(str(secret), SecretRole.SECRET_FILE),)
    entry = replace(entry, target=replace(entry.target, secrets=SecretSettings(files=files)))
    scheduler = Scheduler(list(registry.REGISTRY), cache)
    scheduler.run_once(make_config(["a"], jobs=["local"], targets=[entry]))
    statuses = {item.result.id: item.result.status for item in cache.snapshot()}
    assert statuses == {
        "msmtp_config": Status.SKIPPED,
        "relay": Status.SKIPPED,
        "secrets": Status.CRITICAL,
    }
