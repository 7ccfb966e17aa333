"""The ``auth_failure_rate`` check: the share of failed AUTH attempts in the target's mail logs.

The check reads the configured log files (msmtp, msmtpd, Postfix, Exim, sasl-xoauth2 lines)
and counts the AUTH attempts whose time lies in the window that ends now. The window is
critical when more than ``failure_threshold_percent`` of at least ``failure_min_attempts``
attempts failed, the rule of the SmtpAuthFailureRatioHigh alert (2 % of 20 in 15 minutes by
default). The most frequent reasons and unreadable files are reported as well. Secrets
written to the logs are reported by the secrets check. Lines without a time (msmtp with
``logfile_time_format none``) are counted whatever their age. The check needs no network
and no other check.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from smtpdiag.context import CheckContext, LogSettings, Target
from smtpdiag.logs.kinds import (
    AUTH_FAILURE_RATE_FINDINGS,
    FAILURES_BELOW_THRESHOLD,
    MAIL_BOUNCED,
    RATE_CODES,
    THRESHOLD_EXCEEDED,
    TOKEN_IN_LOG,
)
from smtpdiag.models import CheckResult, Finding, worst_first
from smtpdiag.spec import CheckSpec

# The analysis and the parsers load when the check runs, not when ``smtpdiag check`` starts.
if TYPE_CHECKING:
    from smtpdiag.logs.options import AnalysisOptions
    from smtpdiag.logs.summary import LogsSummary

CHECK_ID = "auth_failure_rate"

NO_LOG_FILES = (
    "not run: no log file configured (log_files in the configuration file or SMTPDIAG_LOG_FILES)"
)


def run(target: Target, ctx: CheckContext) -> CheckResult:
    """Read the target's log files and judge the failure rate of the window that ends now."""
    logs = target.logs
    if not logs.files:
        return CheckResult.skipped(CHECK_ID, NO_LOG_FILES)
    options = analysis_options(logs, ctx.now().timestamp())
    summary = _analyse(logs.files, options, ctx)
    if summary is None:
        reason = (
            f"not finished: the check's deadline ({ctx.settings.check_deadline:g} s) was "
            "reached before the log files were read to the end; raise check_deadline or "
            "split the files"
        )
        return CheckResult.unknown(CHECK_ID, reason, {"log_files": list(logs.files)})
    return evaluate(summary, options, logs.files, relay_checked=target.relay.configured)


def analysis_options(logs: LogSettings, now: float) -> AnalysisOptions:
    """Return the analysis settings for the window of ``logs.window_minutes`` ending at ``now``."""
    from smtpdiag.logs.options import AnalysisOptions

    window_seconds = logs.window_minutes * 60.0
    return AnalysisOptions(
        window_seconds=window_seconds,
        threshold=logs.threshold_percent / 100.0,
        min_attempts=logs.min_attempts,
        since=now - window_seconds,
        until=now,
        zone=_zone(logs.timezone),
        msmtp_time_format=logs.msmtp_time_format,
    )


def _zone(name: str | None) -> tzinfo | None:
    if name is None:
        return None
    from zoneinfo import ZoneInfo  # the name was validated when the configuration was read

    return ZoneInfo(name)


def _analyse(
    paths: Sequence[str], options: AnalysisOptions, ctx: CheckContext
) -> LogsSummary | None:
    """Feed every candidate line of ``paths`` to an analysis; None when the deadline came first."""
    from smtpdiag.logs.analysis import Analysis

    # NOTE: each file is read from its start, although only the last window counts. Seeking
    # close to the end of a large file first would make the check faster.
    from smtpdiag.logs.reader import LogReader, feed_lines

    now = options.until if options.until is not None else ctx.now().timestamp()
    analysis = Analysis(options, lambda: now)
    reader = LogReader(paths)
    complete, fed = feed_lines(reader, analysis.feed, ctx.remaining)
    if not complete:
        return None
    analysis.add_lines_read(reader.lines_read - fed)
    for path, error in reader.errors:
        analysis.add_read_error(path, error)
    return analysis.summary()


def evaluate(
    summary: LogsSummary,
    options: AnalysisOptions,
    paths: Sequence[str] = (),
    *,
    relay_checked: bool = False,
) -> CheckResult:
    """Turn the counts of the window ``[since, until)`` into the check result.

    Pure. ``options.since`` and ``options.until`` bound the window. The analysis's verdict over
    windows aligned to the epoch is replaced by one verdict over this window. Its reasons and
    unreadable files are kept. Its leaks are dropped, because the secrets check reports them.
    With ``relay_checked``, bounced mail is dropped too, because the relay check reports the
    same bounces with the relay's exit statuses.
    """
    facts = _facts(summary, options, paths)
    rate = _rate_finding(summary, options, facts)
    findings = [] if rate is None else [rate]
    dropped = {TOKEN_IN_LOG.code, MAIL_BOUNCED.code} if relay_checked else {TOKEN_IN_LOG.code}
    findings += [
        finding
        for finding in summary.findings
        if finding.code not in RATE_CODES and finding.code not in dropped
    ]
    return CheckResult.from_findings(
        CHECK_ID, _summary_text(summary, options), worst_first(findings), facts
    )


def _facts(summary: LogsSummary, options: AnalysisOptions, paths: Sequence[str]) -> dict[str, Any]:
    from smtpdiag.logs.summary import iso_time

    facts: dict[str, Any] = {
        "attempts": summary.attempts,
        "failures": summary.failures,
        "failure_ratio": summary.failure_ratio,
        "window_start": iso_time(options.since),
        "window_end": iso_time(options.until),
        "log_source": sorted(summary.by_source),
        "lines": summary.lines,
        "parse_errors": summary.parse_errors,
        "failure_threshold_percent": options.threshold * 100.0,
        "failure_min_attempts": options.min_attempts,
    }
    if paths:
        facts["log_files"] = list(paths)
    if summary.by_reason:
        facts["reasons"] = {code: counts.count for code, counts in summary.by_reason.items()}
    return facts


def is_over_threshold(attempts: int, failures: int, options: AnalysisOptions) -> bool:
    """Return whether a window with these counts breaks the rule of ``options``."""
    from smtpdiag.logs.options import exceeds_threshold

    return attempts >= options.min_attempts and exceeds_threshold(
        failures, attempts, options.threshold
    )


def _rate_finding(
    summary: LogsSummary, options: AnalysisOptions, facts: dict[str, Any]
) -> Finding | None:
    """Return the finding on the window's failure share; None when every attempt succeeded."""
    from smtpdiag.logs.findings import no_attempts_finding

    attempts, failures = summary.attempts, summary.failures
    rate_facts = {
        name: facts[name]
        for name in ("attempts", "failures", "failure_ratio", "window_start", "window_end")
    }
    if attempts == 0:
        minutes = f"{options.window_seconds / 60:g}"
        period = f"from {facts['window_start']} to {facts['window_end']}"
        return no_attempts_finding(
            summary.lines,
            summary.attempts_outside,
            summary.latest_outside,
            f"in the last {minutes} minutes ({period})",
        )
    if failures == 0:
        return None
    from smtpdiag.logs.findings import threshold_verdict

    details = {
        **rate_facts,
        "percent": _percent(failures / attempts),
        "threshold_percent": _percent(options.threshold),
        "window_minutes": f"{options.window_seconds / 60:g}",
        "min_attempts": options.min_attempts,
        "verdict": threshold_verdict(attempts >= options.min_attempts, options),
    }
    if is_over_threshold(attempts, failures, options):
        return THRESHOLD_EXCEEDED.make(facts=rate_facts, details=details)
    return FAILURES_BELOW_THRESHOLD.make(facts=rate_facts, details=details)


def _summary_text(summary: LogsSummary, options: AnalysisOptions) -> str:
    from smtpdiag.logs.findings import lines_text

    minutes = f"{options.window_seconds / 60:g}"
    if summary.attempts == 0:
        read = f"{lines_text(summary.lines)} read"
        outside = summary.attempts_outside
        if outside:
            read += f"; {outside} {'attempt' if outside == 1 else 'attempts'} outside the window"
        return f"no AUTH attempts in the last {minutes} minutes ({read})"
    percent = _percent(summary.failures / summary.attempts)
    return (
        f"{summary.failures} of {summary.attempts} AUTH attempts failed ({percent}) "
        f"in the last {minutes} minutes"
    )


def _percent(ratio: float) -> str:
    """Format a ratio as a percentage with at most two decimals: 0.025 -> '2.5 %'."""
    return f"{ratio * 100:.2f}".rstrip("0").rstrip(".") + " %"


SPEC = CheckSpec(
    id=CHECK_ID,
    title="AUTH failure rate in the mail logs",
    run=run,
    findings=AUTH_FAILURE_RATE_FINDINGS,
)
