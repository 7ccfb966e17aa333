"""The descriptor estimate of a configuration and how the exporter fits RLIMIT_NOFILE to it.

The limits are fakes, so no test changes the limits of the test process.
"""

from __future__ import annotations

import logging
import os
import resource
from dataclasses import replace

import pytest

from exporters.descriptors import (
    DESCRIPTORS_PER_CONNECTION,
    DESCRIPTORS_PER_RUN,
    RESERVED_DESCRIPTORS,
    DescriptorLimit,
    descriptor_need,
    open_descriptors,
)
from exporters.settings import (
    DEFAULT_INTERVALS,
    ExporterConfig,
    ExporterTarget,
    LogFile,
    WebSettings,
)
from smtpdiag.context import Settings, Target, TlsMode

OPEN_AT_START = 6


def make_config(
    targets: int = 2,
    jobs: tuple[str, ...] = ("connect", "tls"),
    workers: int = 16,
    max_connections: int = 32,
    log_files: int = 1,
) -> ExporterConfig:
    return ExporterConfig(
        path="/etc/smtpdiag/exporter.toml",
        targets=tuple(
            ExporterTarget(
                f"t{index}",
                Target(host="127.0.0.1", port=2525, tls_mode=TlsMode.STARTTLS, name=f"t{index}"),
                Settings(),
                "generic",
            )
            for index in range(targets)
        ),
        jobs=jobs,
        intervals=DEFAULT_INTERVALS,
        jitter=0.1,
        workers=workers,
        max_connections=max_connections,
        log_files=tuple(LogFile(f"/var/log/mail{index}.log") for index in range(log_files)),
        state_file=None,
        web=WebSettings(listen="127.0.0.1:0"),
    )


class FakeLimits:
    """RLIMIT_NOFILE of a fake process: its soft and hard limit and the calls that set it."""

    def __init__(self, soft: int, hard: int, error: Exception | None = None) -> None:
        self.soft = soft
        self.hard = hard
        self.error = error
        self.calls: list[tuple[int, int]] = []

    def get(self) -> tuple[int, int]:
        return self.soft, self.hard

    def set(self, soft: int, hard: int) -> None:
        self.calls.append((soft, hard))
        if self.error is not None:
            raise self.error
        self.soft = soft

    def limit(self) -> DescriptorLimit:
        return DescriptorLimit(OPEN_AT_START, get_limits=self.get, set_soft_limit=self.set)


# --- the estimate ----------------------------------------------------------------------------


def test_need_counts_runs_connections_and_logs() -> None:
    need = descriptor_need(make_config(targets=2, jobs=("connect", "tls")), OPEN_AT_START)
    # 2 targets x 2 jobs = 4 scheduled runs, and 16 /probe runs (workers).
    runs = 4 + 16
    reserved = OPEN_AT_START + RESERVED_DESCRIPTORS + DESCRIPTORS_PER_RUN * runs + 1
    assert need.reserved == reserved
    assert need.total == reserved + DESCRIPTORS_PER_CONNECTION * 32


def test_need_scheduled_runs_bounded_by_workers() -> None:
    need = descriptor_need(make_config(targets=200, workers=16, log_files=0), OPEN_AT_START)
    assert need.reserved == OPEN_AT_START + RESERVED_DESCRIPTORS + DESCRIPTORS_PER_RUN * 32


def test_need_probe_runs_bounded_by_connections() -> None:
    config = make_config(targets=1, jobs=(), workers=64, max_connections=4, log_files=0)
    need = descriptor_need(config, OPEN_AT_START)
    assert need.reserved == OPEN_AT_START + RESERVED_DESCRIPTORS + DESCRIPTORS_PER_RUN * 4


def test_need_without_targets_has_no_runs() -> None:
    need = descriptor_need(make_config(targets=0, jobs=(), log_files=3), OPEN_AT_START)
    assert need.reserved == OPEN_AT_START + RESERVED_DESCRIPTORS + 3


def test_open_descriptors_counts_new_pipe() -> None:
    before = open_descriptors()
    read_end, write_end = os.pipe()
    try:
        during = open_descriptors()
    finally:
        os.close(read_end)
        os.close(write_end)
    assert during == before + 2


# --- fitting the limit -----------------------------------------------------------------------


def test_fit_enough_keeps_limit() -> None:
    limits = FakeLimits(4096, 4096)
    assert limits.limit().fit(make_config()) == 32
    assert limits.calls == []


def test_fit_unlimited_soft_keeps_limit() -> None:
    limits = FakeLimits(resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    assert limits.limit().fit(make_config(max_connections=1024)) == 1024
    assert limits.calls == []


def test_fit_raises_soft_to_need() -> None:
    config = make_config(max_connections=1000)
    limits = FakeLimits(1024, 524288)
    served = limits.limit().fit(config)
    need = descriptor_need(config, OPEN_AT_START).total
    assert limits.calls == [(need, 524288)]
    assert served == 1000


def test_fit_raises_soft_with_unlimited_hard() -> None:
    config = make_config(max_connections=1000)
    limits = FakeLimits(1024, resource.RLIM_INFINITY)
    limits.limit().fit(config)
    assert limits.calls == [(descriptor_need(config, OPEN_AT_START).total, resource.RLIM_INFINITY)]


def test_fit_raise_logged(caplog: pytest.LogCaptureFixture) -> None:
    config = make_config(max_connections=1000)
    with caplog.at_level(logging.INFO, logger="exporters.descriptors"):
        FakeLimits(1024, 524288).limit().fit(config)
    total = descriptor_need(config, OPEN_AT_START).total
    assert [record.getMessage() for record in caplog.records] == [
        f"raised the limit on open files (RLIMIT_NOFILE) from 1024 to {total} for "
        "[exporter] max_connections 1000, workers 16, log files 1"
    ]


def test_fit_low_hard_limit_lowers_connections() -> None:
    config = make_config(max_connections=1000)
    limits = FakeLimits(256, 512)
    served = limits.limit().fit(config)
    reserved = descriptor_need(config, OPEN_AT_START).reserved
    assert limits.calls == [(512, 512)]
    assert served == (512 - reserved) // DESCRIPTORS_PER_CONNECTION


def test_fit_low_hard_limit_warns(caplog: pytest.LogCaptureFixture) -> None:
    config = make_config(max_connections=1000)
    with caplog.at_level(logging.WARNING, logger="exporters.descriptors"):
        served = FakeLimits(512, 512).limit().fit(config)
    total = descriptor_need(config, OPEN_AT_START).total
    assert [record.getMessage() for record in caplog.records] == [
        "the limit on open files (RLIMIT_NOFILE) is 512, hard limit 512, but the configuration "
        f"needs about {total} descriptors: [exporter] max_connections 1000, workers 16, log "
        f"files 1. The exporter serves at most {served} connections at once, so that "
        f"descriptors remain for the checks and log files. Raise the limit to {total} or more "
        "(LimitNOFILE= in the systemd unit, ulimit -n in a shell), or lower max_connections "
        "or workers"
    ]


def test_fit_serves_one_connection_at_least() -> None:
    assert FakeLimits(64, 64).limit().fit(make_config(targets=50, workers=50)) == 1


def test_fit_failed_raise_keeps_soft(caplog: pytest.LogCaptureFixture) -> None:
    config = make_config(max_connections=1000)
    limits = FakeLimits(256, 4096, error=ValueError("not allowed to raise maximum limit"))
    with caplog.at_level(logging.WARNING, logger="exporters.descriptors"):
        served = limits.limit().fit(config)
    reserved = descriptor_need(config, OPEN_AT_START).reserved
    assert served == (256 - reserved) // DESCRIPTORS_PER_CONNECTION
    assert "failed: not allowed to raise maximum limit" in caplog.records[0].getMessage()


def test_fit_reload_raises_for_larger_limit() -> None:
    limits = FakeLimits(1024, 524288)
    descriptors = limits.limit()
    descriptors.fit(make_config(max_connections=100))
    descriptors.fit(make_config(max_connections=1000))
    assert len(limits.calls) == 1
    assert limits.soft == descriptor_need(make_config(max_connections=1000), OPEN_AT_START).total


@pytest.mark.parametrize("max_connections", [1, 32, 1024])
def test_fit_never_raises_connections(max_connections: int) -> None:
    config = replace(make_config(), max_connections=max_connections)
    assert FakeLimits(128, 128).limit().fit(config) <= max_connections
