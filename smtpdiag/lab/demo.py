"""The demo: run the check suite against every lab scenario and compare with what it must find.

The core may not import the checks, so the caller passes in the function that runs them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from smtpdiag.lab.dovecot import find_dovecot
from smtpdiag.lab.msmtp_client import find_msmtp
from smtpdiag.lab.postfix import find_postfix
from smtpdiag.lab.runner import start_lab
from smtpdiag.lab.scenarios import SCENARIOS, Scenario
from smtpdiag.models import Report, Status

logger = logging.getLogger(__name__)

RunSuite = Callable[[Path], Report]
"""Run every check against target ``lab`` of the given configuration file."""

ShowReport = Callable[[str, Report], None]
"""Present the report of one scenario, given the scenario name."""


@dataclass(frozen=True)
class Verdict:
    """Whether one scenario's report contains what the scenario expects."""

    scenario: str
    diagnosed: bool
    expected: str
    """Expected outcome in words: the finding codes, or ``status ok``."""
    got: str
    """Actual outcome in the same words."""

    def line(self) -> str:
        """Return the demo's output line for this scenario."""
        if self.diagnosed:
            return f"{self.scenario}: diagnosed as expected"
        return f"{self.scenario}: NOT diagnosed: expected {self.expected}, got {self.got}"


def judge(scenario: Scenario, report: Report) -> Verdict:
    """Compare ``report`` with the scenario's expected finding codes (or status ok)."""
    codes = [finding.code for finding in report.findings]
    found = ", ".join(codes) if codes else "no findings"
    if not scenario.expected_codes:
        return Verdict(
            scenario=scenario.name,
            diagnosed=report.status is Status.OK,
            expected=f"status {Status.OK.value}",
            got=f"status {report.status.value} ({found})",
        )
    return Verdict(
        scenario=scenario.name,
        diagnosed=all(code in codes for code in scenario.expected_codes),
        expected=", ".join(scenario.expected_codes),
        got=found,
    )


RunLogScenarios = Callable[[], list[Verdict] | None]
"""Run the log scenarios and return their verdicts; None when they cannot run here."""

RunExporterScenario = Callable[[], Verdict]
"""Run the exporter's scenario and return its verdict."""

FindProgram = Callable[[], str | None]
"""Return the path of a program, or None when it is not installed."""

PROGRAM_PACKAGES = {
    "Postfix": ("postfix",),
    "msmtp": ("msmtp",),
    "Dovecot": ("dovecot-core", "dovecot-submissiond"),
}
"""Debian packages that install each program a scenario may run."""


def missing_line(programs: Sequence[str]) -> str:
    """Return the demo line, after a scenario's name, for a scenario whose ``programs`` (keys
    of ``PROGRAM_PACKAGES``) are not installed."""
    packages = [package for program in programs for package in PROGRAM_PACKAGES[program]]
    verb = "is" if len(programs) == 1 else "are"
    noun = "package" if len(packages) == 1 else "packages"
    return f"not run, {_join(programs)} {verb} not installed (Debian {noun} {_join(packages)})"


def _join(words: Sequence[str]) -> str:
    """Join ``words`` as an English list: ``a``, ``a and b``, ``a, b and c``."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


MSMTP_MISSING = missing_line(["msmtp"])
"""Demo line, after a scenario's name, for a scenario that needs msmtp where it is missing."""

DOVECOT_MISSING = missing_line(["Dovecot"])
"""Demo line, after a scenario's name, for a scenario that needs Dovecot where it is missing."""


def run_demo(
    run_suite: RunSuite,
    show: ShowReport,
    out: TextIO,
    run_log_scenarios: RunLogScenarios | None = None,
    run_exporter_scenario: RunExporterScenario | None = None,
    locate_msmtp: FindProgram = find_msmtp,
    locate_dovecot: FindProgram = find_dovecot,
    locate_postfix: FindProgram = find_postfix,
) -> int:
    """Diagnose every scenario in turn and write one verdict line each, then a summary.

    Log scenarios and then the exporter scenario, when given, run after the check scenarios
    and count alike. A scenario that needs Postfix, msmtp or Dovecot gets a "not run" line
    naming every missing one and is left out of the count when ``locate_postfix``,
    ``locate_msmtp`` or ``locate_dovecot`` finds none. Returns 0 when every scenario that
    ran was diagnosed as expected, 1 otherwise.
    """
    verdicts = []
    installed = {
        "Postfix": locate_postfix() is not None,
        "msmtp": locate_msmtp() is not None,
        "Dovecot": locate_dovecot() is not None,
    }
    for scenario in SCENARIOS.values():
        missing = [name for name in _programs_of(scenario) if not installed[name]]
        if missing:
            out.write(f"{scenario.name}: {missing_line(missing)}\n")
            continue
        with start_lab(scenario) as lab:
            report = run_suite(lab.config_file)
        show(scenario.name, report)

        verdict = judge(scenario, report)
        verdicts.append(verdict)
        out.write(verdict.line() + "\n")
        out.flush()

    if run_log_scenarios is not None:
        log_verdicts = run_log_scenarios()
        if log_verdicts is None:
            out.write(f"log scenarios: {MSMTP_MISSING}\n")
        for verdict in log_verdicts or ():
            verdicts.append(verdict)
            out.write(verdict.line() + "\n")

    if run_exporter_scenario is not None:
        verdict = run_exporter_scenario()
        verdicts.append(verdict)
        out.write(verdict.line() + "\n")

    diagnosed = sum(verdict.diagnosed for verdict in verdicts)
    out.write(f"{len(verdicts)} scenarios, {diagnosed} diagnosed as expected\n")
    out.flush()
    return 0 if diagnosed == len(verdicts) else 1


def _programs_of(scenario: Scenario) -> list[str]:
    """Return the programs (keys of ``PROGRAM_PACKAGES``) that the scenario's lab runs."""
    needs = {
        "Postfix": scenario.needs_postfix,
        "msmtp": scenario.needs_msmtp,
        "Dovecot": scenario.needs_dovecot,
    }
    return [name for name, needed in needs.items() if needed]
