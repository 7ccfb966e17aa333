"""The exporter scenario of ``smtpdiag demo``: two lab targets, one failing, and msmtp's log.

It starts the ``healthy`` and ``google-bad-token`` labs, follows a log file while the real
msmtp sends through both, runs every job of both targets once, and reads the metrics back
from the text a scrape would return. The verdict compares the AUTH status, ``smtpdiag_up``
and the log counters with what the labs and msmtp did. Without msmtp the log part is left
out and the verdict states that.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporters.cache import ResultCache
from exporters.collector import ExporterStatus, SmtpdiagCollector
from exporters.logcounters import LogCounters, LogFollowerThread
from exporters.schedule import Scheduler
from exporters.settings import ExporterConfig, load_exporter_config
from smtpdiag.lab.demo import Verdict
from smtpdiag.lab.msmtp_client import find_msmtp, send, write_msmtprc
from smtpdiag.lab.runner import LabInfo, start_lab
from smtpdiag.lab.scenarios import get_scenario
from smtpdiag.spec import CheckSpec

SCENARIO_NAME = "exporter"

TARGETS = {"healthy": "healthy", "failing": "google-bad-token"}
"""Exporter target names and the lab scenario each one points at."""

HEALTHY_SENDS = 3
FAILING_SENDS = 1

Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]
"""Sample values of a scrape by metric name and label set."""


def run_exporter_scenario(specs: Sequence[CheckSpec], show: Callable[[str], None]) -> Verdict:
    """Run the exporter scenario and judge what its metrics show."""
    msmtp = find_msmtp()
    with tempfile.TemporaryDirectory(prefix="smtpdiag-exporter-demo-") as directory:
        folder = Path(directory)
        with (
            start_lab(get_scenario(TARGETS["healthy"])) as healthy,
            start_lab(get_scenario(TARGETS["failing"])) as failing,
        ):
            labs = {"healthy": healthy, "failing": failing}
            log_file = folder / "msmtp.log" if msmtp is not None else None
            config = load_exporter_config(str(_write_config(folder, labs, log_file)), environ={})
            counters = _count_sends(config, labs, folder, msmtp) if msmtp is not None else None
            cache = ResultCache()
            Scheduler(specs, cache).run_once(config)
        text = _scrape(config, cache, counters)
    show(_excerpt(text))
    return judge_exporter(_samples(text), with_logs=msmtp is not None)


def _write_config(folder: Path, labs: Mapping[str, LabInfo], log_file: Path | None) -> Path:
    """Write an exporter configuration with one target per lab and the log file."""
    healthy = labs["healthy"]
    lines = [
        "[defaults]",
        "timeout = 5",
        'ntp_servers = ["127.0.0.1"]',
        f"ntp_port = {healthy.ntp_port}",
        "",
    ]
    if log_file is not None:
        log_file.touch()
        lines += ["[exporter]", f"log_files = [{json.dumps(str(log_file))}]", ""]
    for name, lab in labs.items():
        host, port = lab.smtp_starttls.rsplit(":", 1)
        lines += [
            f"[targets.{name}]",
            f"host = {json.dumps(host)}",
            f"port = {port}",
            'tls_mode = "starttls"',
            f"ca_file = {json.dumps(str(lab.ca_file))}",
            f"user = {json.dumps(lab.user)}",
            f"access_token_file = {json.dumps(str(lab.access_token_file))}",
            "",
        ]
    path = folder / "exporter.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _count_sends(
    config: ExporterConfig, labs: Mapping[str, LabInfo], folder: Path, msmtp: str
) -> LogCounters:
    """Follow the log file while msmtp sends through both labs, and return the counters."""
    counters = LogCounters(config.log_files, {target.provider for target in config.targets})
    follower = LogFollowerThread(counters, config.log_files)
    try:
        log_file = Path(config.log_files[0].path)
        for name, count in (("healthy", HEALTHY_SENDS), ("failing", FAILING_SENDS)):
            msmtprc = write_msmtprc(folder, labs[name], logfile=log_file, name=f"{name}.msmtprc")
            for _ in range(count):
                send(msmtprc, msmtp)
        follower.poll_once()
    finally:
        follower.stop()
    return counters


def _scrape(config: ExporterConfig, cache: ResultCache, counters: LogCounters | None) -> str:
    """Return the metrics text that a scrape of this exporter would return."""
    loaded_at = time.time()

    def status() -> ExporterStatus:
        return ExporterStatus(config, reload_success=True, reload_success_time=loaded_at)

    registry = CollectorRegistry()
    registry.register(SmtpdiagCollector(cache, counters, status))
    return generate_latest(registry).decode("utf-8")


def _samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _sum(samples: Samples, name: str, **labels: str) -> float:
    """Return the sum of every sample of ``name`` whose labels include ``labels``."""
    required_labels = set(labels.items())
    return sum(
        value
        for (sample, label_set), value in samples.items()
        if sample == name and required_labels <= label_set
    )


def judge_exporter(samples: Samples, *, with_logs: bool) -> Verdict:
    """Compare the scraped samples with what the labs and msmtp produced."""
    observed = {
        "healthy auth status": _value(
            samples, "smtpdiag_check_status", check="auth", target="healthy"
        ),
        "failing auth status": _value(
            samples, "smtpdiag_check_status", check="auth", target="failing"
        ),
        "healthy smtpdiag_up": _value(samples, "smtpdiag_up", target="healthy"),
        "failing smtpdiag_up": _value(samples, "smtpdiag_up", target="failing"),
    }
    expected_values: dict[str, float | None] = {
        "healthy auth status": 0,
        "failing auth status": 2,
        "healthy smtpdiag_up": 1,
        "failing smtpdiag_up": 1,
    }
    if with_logs:
        observed["msmtp attempts"] = _sum(samples, "smtpdiag_auth_attempts_total", source="msmtp")
        observed["msmtp failures"] = _sum(samples, "smtpdiag_auth_failures_total", source="msmtp")
        expected_values["msmtp attempts"] = HEALTHY_SENDS + FAILING_SENDS
        expected_values["msmtp failures"] = FAILING_SENDS
    expected = ", ".join(f"{key} {_text(value)}" for key, value in expected_values.items())
    if not with_logs:
        expected += " (msmtp is not installed, so its log is not counted)"
    got = ", ".join(f"{key} {_text(value)}" for key, value in observed.items())
    return Verdict(SCENARIO_NAME, observed == expected_values, expected, got)


def _text(value: float | None) -> str:
    return "missing" if value is None else f"{value:g}"


_SHOWN = (
    "smtpdiag_up",
    "smtpdiag_check_status",
    "smtpdiag_check_finding",
    "smtpdiag_tls_cert_not_after_timestamp_seconds",
    "smtpdiag_clock_offset_seconds",
)


def _excerpt(text: str) -> str:
    """Return the scrape's lines a reader looks at first, plus the log counters above 0."""
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        counted = name.endswith("_total") and not line.endswith(" 0.0")
        if name in _SHOWN or counted:
            lines.append(line)
    return "\n".join(lines)
