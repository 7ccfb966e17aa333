"""Engine: concurrency, deadlines, dependencies and crash handling."""

from __future__ import annotations

import threading
import time

import pytest

from smtpdiag.context import CheckContext, Settings, Target, TlsMode
from smtpdiag.engine import run_checks
from smtpdiag.models import CheckResult, Severity, Status
from smtpdiag.spec import CheckRun, CheckSpec, FindingKind

TARGET = Target(host="127.0.0.1", port=2525, tls_mode=TlsMode.STARTTLS)
BROKEN = FindingKind("fake.broken", Severity.CRITICAL, "broken", "cause", "fix")


def spec(check_id: str, run: CheckRun, requires: tuple[str, ...] = ()) -> CheckSpec:
    return CheckSpec(id=check_id, title=check_id, run=run, findings=(BROKEN,), requires=requires)


def returning(status: Status) -> CheckRun:
    def run(_target: Target, _ctx: CheckContext) -> CheckResult:
        if status is Status.CRITICAL:
            return CheckResult.from_findings("x", "bad", [BROKEN.make()])
        return CheckResult(id="x", status=status, summary=status.value)

    return run


def test_checks_run_concurrently() -> None:
    barrier = threading.Barrier(3, timeout=5)

    def run(_target: Target, _ctx: CheckContext) -> CheckResult:
        barrier.wait()  # only returns when all three checks run at the same time
        return CheckResult(id="x", status=Status.OK, summary="ok")

    report = run_checks([spec("a", run), spec("b", run), spec("c", run)], TARGET, Settings())
    assert [check.status for check in report.checks] == [Status.OK] * 3


def test_results_keep_registry_order() -> None:
    def slow(_target: Target, _ctx: CheckContext) -> CheckResult:
        time.sleep(0.2)
        return CheckResult(id="x", status=Status.OK, summary="ok")

    report = run_checks(
        [spec("slow", slow), spec("fast", returning(Status.OK))], TARGET, Settings()
    )
    assert [check.id for check in report.checks] == ["slow", "fast"]


def test_result_id_comes_from_spec() -> None:
    report = run_checks([spec("named", returning(Status.OK))], TARGET, Settings())
    assert report.checks[0].id == "named"


def test_crash_becomes_unknown() -> None:
    def crash(_target: Target, _ctx: CheckContext) -> CheckResult:
        raise ValueError("boom")

    report = run_checks(
        [spec("crash", crash), spec("fine", returning(Status.OK))], TARGET, Settings()
    )
    assert report.checks[0].status is Status.UNKNOWN


def test_crash_summary_names_error() -> None:
    def crash(_target: Target, _ctx: CheckContext) -> CheckResult:
        raise ValueError("boom")

    report = run_checks([spec("crash", crash)], TARGET, Settings())
    assert "ValueError: boom" in report.checks[0].summary


def test_crash_does_not_stop_other_checks() -> None:
    def crash(_target: Target, _ctx: CheckContext) -> CheckResult:
        raise RuntimeError("boom")

    report = run_checks(
        [spec("crash", crash), spec("fine", returning(Status.OK))], TARGET, Settings()
    )
    assert report.checks[1].status is Status.OK


def test_check_deadline_gives_unknown() -> None:
    release = threading.Event()

    def hang(_target: Target, _ctx: CheckContext) -> CheckResult:
        release.wait(10)
        return CheckResult(id="x", status=Status.OK, summary="late")

    settings = Settings(check_deadline=0.3, run_deadline=5)
    report = run_checks([spec("hang", hang), spec("fine", returning(Status.OK))], TARGET, settings)
    release.set()
    assert report.checks[0].status is Status.UNKNOWN
    assert "deadline of 0.3 s" in report.checks[0].summary


def test_run_deadline_bounds_whole_run() -> None:
    release = threading.Event()

    def hang(_target: Target, _ctx: CheckContext) -> CheckResult:
        release.wait(10)
        return CheckResult(id="x", status=Status.OK, summary="late")

    settings = Settings(check_deadline=30, run_deadline=0.3)
    report = run_checks([spec("a", hang), spec("b", hang)], TARGET, settings)
    release.set()
    assert {check.status for check in report.checks} == {Status.UNKNOWN}
    assert "run deadline" in report.checks[0].summary


def test_context_deadline_matches_setting() -> None:
    seen: list[float] = []

    def record(_target: Target, ctx: CheckContext) -> CheckResult:
        seen.append(ctx.remaining())
        return CheckResult(id="x", status=Status.OK, summary="ok")

    run_checks([spec("a", record)], TARGET, Settings(check_deadline=7))
    assert 6 < seen[0] <= 7


def test_dependency_result_passed_upstream() -> None:
    seen: dict[str, Status] = {}

    def dependent(_target: Target, ctx: CheckContext) -> CheckResult:
        seen.update({key: result.status for key, result in ctx.upstream.items()})
        return CheckResult(id="x", status=Status.OK, summary="ok")

    run_checks(
        [spec("base", returning(Status.WARNING)), spec("top", dependent, ("base",))],
        TARGET,
        Settings(),
    )
    assert seen == {"base": Status.WARNING}


def test_dependency_runs_first() -> None:
    order: list[str] = []

    def first(_target: Target, _ctx: CheckContext) -> CheckResult:
        time.sleep(0.1)
        order.append("base")
        return CheckResult(id="x", status=Status.OK, summary="ok")

    def second(_target: Target, _ctx: CheckContext) -> CheckResult:
        order.append("top")
        return CheckResult(id="x", status=Status.OK, summary="ok")

    run_checks([spec("top", second, ("base",)), spec("base", first)], TARGET, Settings())
    assert order == ["base", "top"]


@pytest.mark.parametrize("status", [Status.CRITICAL, Status.UNKNOWN], ids=["critical", "unknown"])
def test_failed_dependency_skips_dependent(status: Status) -> None:
    report = run_checks(
        [spec("base", returning(status)), spec("top", returning(Status.OK), ("base",))],
        TARGET,
        Settings(),
    )
    assert report.checks[1].status is Status.SKIPPED
    assert f"base check is {status.value}" in report.checks[1].summary


def test_unselected_dependency_does_not_block() -> None:
    report = run_checks([spec("top", returning(Status.OK), ("base",))], TARGET, Settings())
    assert report.checks[0].status is Status.OK


def test_report_status_is_worst() -> None:
    report = run_checks(
        [
            spec("a", returning(Status.OK)),
            spec("b", returning(Status.WARNING)),
            spec("c", returning(Status.SKIPPED)),
        ],
        TARGET,
        Settings(),
    )
    assert report.status is Status.WARNING


def test_report_has_duration_per_check() -> None:
    def slow(_target: Target, _ctx: CheckContext) -> CheckResult:
        time.sleep(0.1)
        return CheckResult(id="x", status=Status.OK, summary="ok")

    report = run_checks([spec("slow", slow)], TARGET, Settings())
    assert report.checks[0].duration_seconds >= 0.1


@pytest.mark.parametrize("status", [Status.CRITICAL, Status.UNKNOWN], ids=["critical", "unknown"])
def test_followed_check_never_skips(status: Status) -> None:
    seen: dict[str, Status] = {}

    def follower(_target: Target, ctx: CheckContext) -> CheckResult:
        seen.update({key: result.status for key, result in ctx.upstream.items()})
        return CheckResult(id="x", status=Status.OK, summary="ok")

    base = spec("base", returning(status))
    top = CheckSpec(id="top", title="top", run=follower, findings=(BROKEN,), follows=("base",))
    report = run_checks([top, base], TARGET, Settings())
    assert report.checks[0].status is Status.OK
    assert seen == {"base": status}
