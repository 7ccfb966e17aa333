"""The exporter's limit on open file descriptors (``RLIMIT_NOFILE``).

At start and on each reload the exporter estimates how many descriptors its configuration
needs. When the soft limit is lower, it raises the soft limit, up to the hard limit. When the
hard limit is lower as well, it serves fewer HTTP connections at once than ``max_connections``
and logs a warning with the numbers and the fix. Idle clients then get 503 and cannot take
the descriptors that checks and log files need.
"""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass

from exporters.settings import ExporterConfig

logger = logging.getLogger(__name__)

DESCRIPTORS_PER_CONNECTION = 2
"""An HTTP connection's socket, and the file under /proc that a /metrics scrape opens for the
process metrics."""

DESCRIPTORS_PER_RUN = 4
"""Sockets that one run of checks has open at once.

NOTE: an estimate, not a measured maximum. A /probe run without a check selection runs its
checks in parallel where their dependencies allow, so SMTP sessions of the connect, tls and
auth checks and a token request can be open at the same moment. A scheduled job runs fewer
checks."""

RESERVED_DESCRIPTORS = 32
"""Margin for the listening socket, the state file and its temporary copy, DNS and NTP queries,
and the pipes of child processes."""

DEFAULT_OPEN_AT_START = 16
"""Descriptors assumed open at start where the system has no /proc/self/fd or /dev/fd."""

Limits = tuple[int, int]
"""Soft and hard limit, as ``resource.getrlimit`` returns them."""


def open_descriptors() -> int:
    """Return the number of descriptors the process has open, or ``DEFAULT_OPEN_AT_START``
    where the system does not list them."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            # The listing opens the directory itself, which the count leaves out.
            return len(os.listdir(directory)) - 1
        except OSError:
            continue
    return DEFAULT_OPEN_AT_START


@dataclass(frozen=True)
class DescriptorNeed:
    """Descriptors that a configuration needs, estimated."""

    reserved: int
    """Descriptors for everything but HTTP connections: those open at start, the check runs,
    the followed log files and ``RESERVED_DESCRIPTORS``."""
    total: int
    """``reserved`` and ``DESCRIPTORS_PER_CONNECTION`` for each of ``max_connections``."""


def descriptor_need(config: ExporterConfig, open_at_start: int) -> DescriptorNeed:
    """Estimate the descriptors that ``config`` needs when every connection and worker is busy.

    Scheduled jobs run on at most ``workers`` threads and at most one per (target, job) pair.
    /probe runs are limited to ``workers`` as well, and each needs a connection.
    """
    runs = 0
    if config.targets:
        scheduled = min(config.workers, len(config.targets) * len(config.jobs))
        probes = min(config.workers, config.max_connections)
        runs = scheduled + probes
    reserved = (
        open_at_start + RESERVED_DESCRIPTORS + DESCRIPTORS_PER_RUN * runs + len(config.log_files)
    )
    return DescriptorNeed(reserved, reserved + DESCRIPTORS_PER_CONNECTION * config.max_connections)


class DescriptorLimit:
    """Fit the process's descriptor limit and the connection limit to a configuration."""

    def __init__(
        self,
        open_at_start: int | None = None,
        *,
        get_limits: Callable[[], Limits] | None = None,
        set_soft_limit: Callable[[int, int], None] | None = None,
    ) -> None:
        """Count the descriptors open now, or take ``open_at_start``.

        ``get_limits`` and ``set_soft_limit`` replace the calls that read and set the
        process's ``RLIMIT_NOFILE``. ``set_soft_limit`` gets the new soft and the hard limit.
        """
        self.open_at_start = open_descriptors() if open_at_start is None else open_at_start
        """Descriptors that were open before the exporter's own: standard streams, pipes."""
        self._get_limits = get_limits or _get_limits
        self._set_soft_limit = set_soft_limit or _set_soft_limit

    def fit(self, config: ExporterConfig) -> int:
        """Raise the soft limit to what ``config`` needs, as far as the hard limit allows, and
        return the number of connections to serve at once: ``max_connections``, or fewer when
        the limit stays too low for it."""
        need = descriptor_need(config, self.open_at_start)
        soft, hard = self._get_limits()
        if _enough(soft, need.total):
            return config.max_connections

        soft = self._raise(soft, hard, need.total, config)
        if _enough(soft, need.total):
            return config.max_connections

        served = max(1, (soft - need.reserved) // DESCRIPTORS_PER_CONNECTION)
        served = min(served, config.max_connections)
        logger.warning(
            "the limit on open files (RLIMIT_NOFILE) is %d, hard limit %s, but the "
            "configuration needs about %d descriptors: [exporter] max_connections %d, "
            "workers %d, log files %d. The exporter serves at most %d connections at once, "
            "so that descriptors remain for the checks and log files. Raise the limit to %d "
            "or more (LimitNOFILE= in the systemd unit, ulimit -n in a shell), or lower "
            "max_connections or workers",
            soft,
            _text(hard),
            need.total,
            config.max_connections,
            config.workers,
            len(config.log_files),
            served,
            need.total,
            extra={"path": config.path},
        )
        return served

    def _raise(self, soft: int, hard: int, needed: int, config: ExporterConfig) -> int:
        """Raise the soft limit toward ``needed`` and return the soft limit in effect after."""
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        if target <= soft:
            return soft
        try:
            self._set_soft_limit(target, hard)
        except (OSError, ValueError) as error:
            logger.warning(
                "raising the limit on open files (RLIMIT_NOFILE) from %d to %d failed: %s",
                soft,
                target,
                error,
            )
            return soft
        logger.info(
            "raised the limit on open files (RLIMIT_NOFILE) from %d to %d for "
            "[exporter] max_connections %d, workers %d, log files %d",
            soft,
            target,
            config.max_connections,
            config.workers,
            len(config.log_files),
        )
        return target


def _enough(limit: int, needed: int) -> bool:
    return limit == resource.RLIM_INFINITY or limit >= needed


def _text(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)


def _get_limits() -> Limits:
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _set_soft_limit(soft: int, hard: int) -> None:
    # The checks wait on sockets with poll() (smtpdiag.readiness), so descriptor numbers of
    # 1024 and more, which select() rejects, work after the soft limit is raised.
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
