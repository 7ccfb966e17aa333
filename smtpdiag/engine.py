"""Run checks concurrently against one target, with deadlines and declared dependencies.

The engine is the only place that catches every exception: a check that raises becomes
UNKNOWN with the error class and a redacted message, and never stops the run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from smtpdiag import __version__
from smtpdiag.context import CheckContext, Settings, Target, utc_now
from smtpdiag.models import CheckResult, Report, Status
from smtpdiag.redact import redact
from smtpdiag.spec import CheckSpec

if TYPE_CHECKING:
    from smtpdiag.oauth.cache import TokenCache

logger = logging.getLogger(__name__)

# A dependency that ended with one of these makes its dependents pointless to run.
_BLOCKING = frozenset({Status.CRITICAL, Status.UNKNOWN})


def run_checks(
    specs: Sequence[CheckSpec],
    target: Target,
    settings: Settings,
    now: Callable[[], datetime] = utc_now,
    token_cache: TokenCache | None = None,
) -> Report:
    """Run ``specs`` against ``target`` and return the report, in the order of ``specs``.

    ``token_cache`` keeps access tokens for later runs, such as the exporter's next round.
    """
    started_at = now()
    started = time.monotonic()
    results = _Scheduler(specs, target, settings, now, token_cache).run()
    ordered = tuple(results[spec.id] for spec in specs)
    return Report(
        version=__version__,
        target=target.describe(),
        started_at=started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        duration_seconds=time.monotonic() - started,
        checks=ordered,
    )


def _crash_result(spec: CheckSpec, error: BaseException) -> CheckResult:
    """Turn an unexpected exception of a check into an UNKNOWN result."""
    message = redact(str(error)) or "no message"
    return CheckResult.unknown(
        spec.id,
        f"the check failed unexpectedly: {error.__class__.__name__}: {message}",
        facts={"error_class": error.__class__.__name__, "error": message},
    )


class _Scheduler:
    """Start each check once its dependencies are done; collect results until the deadline."""

    def __init__(
        self,
        specs: Sequence[CheckSpec],
        target: Target,
        settings: Settings,
        now: Callable[[], datetime],
        token_cache: TokenCache | None = None,
    ) -> None:
        self.token_cache = token_cache
        self.specs = {spec.id: spec for spec in specs}
        self.target = target
        self.settings = settings
        self.now = now
        self.results: dict[str, CheckResult] = {}
        self.started: dict[str, float] = {}
        self.finished: queue.Queue[tuple[str, CheckResult]] = queue.Queue()

    def run(self) -> dict[str, CheckResult]:
        run_deadline = time.monotonic() + self.settings.run_deadline
        self._start_ready()
        while len(self.results) < len(self.specs):
            if not self.started.keys() - self.results.keys():
                break  # nothing running and nothing startable: a dependency cycle
            wait = min(run_deadline, self._next_check_deadline()) - time.monotonic()
            try:
                check_id, result = self.finished.get(timeout=max(0.0, wait))
            except queue.Empty:
                self._expire(run_deadline)
                if time.monotonic() >= run_deadline:
                    break
            else:
                self._record(check_id, result)
            self._start_ready()
        self._fill_unstarted()
        return self.results

    def _next_check_deadline(self) -> float:
        running = [
            start for check_id, start in self.started.items() if check_id not in self.results
        ]
        return min(running, default=time.monotonic()) + self.settings.check_deadline

    def _record(self, check_id: str, result: CheckResult) -> None:
        if check_id in self.results:
            return  # already reported as past its deadline
        duration = time.monotonic() - self.started[check_id]
        self.results[check_id] = replace(result, id=check_id, duration_seconds=duration)
        logger.debug("check %s finished: %s in %.3f s", check_id, result.status, duration)

    def _expire(self, run_deadline: float) -> None:
        """Report every running check whose own deadline or the run's deadline has passed."""
        current = time.monotonic()
        for check_id, start in list(self.started.items()):
            if check_id in self.results:
                continue
            if current >= run_deadline:
                limit, what = self.settings.run_deadline, "the run deadline"
            elif current >= start + self.settings.check_deadline:
                limit, what = self.settings.check_deadline, "its deadline"
            else:
                continue
            self.results[check_id] = replace(
                CheckResult.unknown(check_id, f"did not finish within {what} of {limit:g} s"),
                duration_seconds=current - start,
            )
            logger.warning("check %s did not finish within %s of %g s", check_id, what, limit)

    def _start_ready(self) -> None:
        for check_id, spec in self.specs.items():
            if check_id in self.started or check_id in self.results:
                continue
            pending = [
                dep
                for dep in (*spec.requires, *spec.follows)
                if dep in self.specs and dep not in self.results
            ]
            if pending:
                continue
            blocked = self._blocking_dependency(spec)
            if blocked is not None:
                self.results[check_id] = CheckResult.skipped(check_id, blocked)
                continue
            self._start(spec)

    def _blocking_dependency(self, spec: CheckSpec) -> str | None:
        for dep in spec.requires:
            result = self.results.get(dep)
            if result is not None and result.status in _BLOCKING:
                return f"not run because the {dep} check is {result.status.value}"
        return None

    def _start(self, spec: CheckSpec) -> None:
        start = time.monotonic()
        self.started[spec.id] = start
        upstream = {
            dep: self.results[dep] for dep in (*spec.requires, *spec.follows) if dep in self.results
        }
        context = CheckContext(
            settings=self.settings,
            upstream=upstream,
            deadline=start + self.settings.check_deadline,
            now=self.now,
            token_cache=self.token_cache,
        )
        worker = threading.Thread(
            target=self._work, args=(spec, context), name=f"check-{spec.id}", daemon=True
        )
        worker.start()

    def _work(self, spec: CheckSpec, context: CheckContext) -> None:
        try:
            result = spec.run(self.target, context)
        except Exception as error:  # the engine is the one catch-all
            logger.debug("check %s raised", spec.id, exc_info=True)
            result = _crash_result(spec, error)
        self.finished.put((spec.id, result))

    def _fill_unstarted(self) -> None:
        for check_id in self.specs:
            if check_id not in self.results:
                self.results[check_id] = CheckResult.unknown(
                    check_id, "not run: its dependencies did not finish"
                )
