"""Log scenarios of the demo: the real msmtp sends through lab servers, smtpdiag reads its log.

Each scenario runs msmtp once per message against the named check scenarios, all writing one
log file, then analyses that file as ``smtpdiag logs`` does and compares the counts and
reasons with what the scenario sent. Without msmtp installed the scenarios cannot run and the
demo prints that.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from smtpdiag.lab.demo import Verdict
from smtpdiag.lab.msmtp_client import find_msmtp, send, write_msmtprc
from smtpdiag.lab.runner import start_lab
from smtpdiag.lab.scenarios import get_scenario
from smtpdiag.logs.analysis import AnalysisOptions, LogsSummary, analyze_files


@dataclass(frozen=True)
class LogScenario:
    """Messages sent with msmtp through lab scenarios, and what the analysis must count."""

    name: str
    description: str
    sends: tuple[tuple[str, int], ...]
    """Pairs of a check scenario's name and the number of messages sent through it."""
    failures: int
    """AUTH failures the analysis must count; attempts are the sum of the messages sent."""
    reasons: frozenset[str]
    """Reason codes the analysis must report, each at least once."""
    min_attempts: int = 1
    """Attempts a window needs before its ratio is judged; the demo sends only a few."""

    @property
    def attempts(self) -> int:
        """Messages sent in all: each is one AUTH attempt in msmtp's log."""
        return sum(count for _, count in self.sends)


LOG_SCENARIOS: tuple[LogScenario, ...] = (
    LogScenario(
        name="msmtp-log",
        description="msmtp's own log after sends through healthy, Gmail 535, Microsoft 5.7.139 "
        "and expired-certificate servers",
        sends=(
            ("healthy", 3),
            ("google-bad-token", 1),
            ("microsoft-auth-disabled", 1),
            ("cert-expired", 1),
        ),
        failures=3,
        reasons=frozenset(
            {"auth.credentials_rejected", "auth.smtp_auth_disabled_tenant", "tls.cert_expired"}
        ),
    ),
)
"""Log scenarios in demo order."""


def run_log_scenario(scenario: LogScenario, msmtp: str) -> LogsSummary:
    """Send the scenario's messages with ``msmtp`` and return the analysis of its log."""
    with tempfile.TemporaryDirectory(prefix="smtpdiag-logs-") as directory:
        folder = Path(directory)
        logfile = folder / "msmtp.log"
        for check_scenario, count in scenario.sends:
            with start_lab(get_scenario(check_scenario)) as info:
                config = write_msmtprc(folder, info, logfile=logfile)
                for _ in range(count):
                    send(config, msmtp)
        options = AnalysisOptions(min_attempts=scenario.min_attempts)
        return analyze_files([str(logfile)], options)


def judge_logs(scenario: LogScenario, summary: LogsSummary) -> Verdict:
    """Compare the analysis with the attempts, failures and reasons the scenario produced."""
    reasons = set(summary.by_reason)
    expected = (
        f"{scenario.attempts} attempts, {scenario.failures} failures, "
        f"reasons {', '.join(sorted(scenario.reasons))}"
    )
    got = (
        f"{summary.attempts} attempts, {summary.failures} failures, "
        f"reasons {', '.join(sorted(reasons)) or 'none'}"
    )
    diagnosed = (
        summary.attempts == scenario.attempts
        and summary.failures == scenario.failures
        and scenario.reasons <= reasons
    )
    return Verdict(scenario.name, diagnosed, expected, got)


def run_log_scenarios(show: Callable[[str, LogsSummary], None]) -> list[Verdict] | None:
    """Run every log scenario and return the verdicts; None when msmtp is not installed."""
    msmtp = find_msmtp()
    if msmtp is None:
        return None
    verdicts = []
    for scenario in LOG_SCENARIOS:
        summary = run_log_scenario(scenario, msmtp)
        show(scenario.name, summary)
        verdicts.append(judge_logs(scenario, summary))
    return verdicts
