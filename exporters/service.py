"""``smtpdiag exporter``: wire the scheduler, log follower, collector and HTTP server together.

A long-running exporter serves until SIGTERM or SIGINT and reloads its configuration on
SIGHUP. The signal handlers only set a flag and write one byte to a pipe. The main thread
wakes on that byte and does the work, so no handler ever takes a lock. With
``--once`` every job of every target runs once, the log files are polled once, and the
exposition goes to stdout or to a ``.prom`` file for node_exporter's textfile collector.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from types import FrameType

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.exposition import write_to_textfile
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporters.cache import ResultCache
from exporters.collector import ExporterStatus, SmtpdiagCollector
from exporters.countfile import counts_path, load_counts, save_counts
from exporters.descriptors import DescriptorLimit
from exporters.exposition import render_text
from exporters.logcounters import LogCounters, LogFollowerThread
from exporters.logformat import ErrorLog
from exporters.schedule import Scheduler
from exporters.server import ExporterApp, ExporterServer, make_ssl_context
from exporters.settings import ExporterConfig, WebSettings, load_exporter_config, parse_listen
from smtpdiag.errors import SmtpDiagError, UsageError
from smtpdiag.models import Status
from smtpdiag.readiness import wait_readable
from smtpdiag.spec import CheckSpec

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0
"""Seconds between two passes of the main loop that look for checks that work again."""

LOG_POLL_SECONDS = 1.0
"""Seconds between two polls of the followed log files."""


def run_exporter(
    config_path: str,
    specs: Sequence[CheckSpec],
    *,
    listen: str | None,
    once: bool,
    textfile: str | None,
) -> int:
    """Run the exporter and return the exit code: 0 after a clean stop or a ``--once`` run.

    Raises ``UsageError`` (exit code 3 in the CLI) for an invalid option, configuration,
    listen address or TLS file.
    """
    if textfile is not None and not once:
        raise UsageError(
            "--textfile needs --once.", "Add --once, or drop --textfile to serve HTTP."
        )
    if textfile is not None and not textfile.endswith(".prom"):
        raise UsageError(
            f"The --textfile path {textfile} does not end in .prom.",
            "node_exporter's textfile collector reads only *.prom files; name it so.",
            value=textfile,
        )
    if once:
        return run_once(config_path, specs, listen=listen, textfile=textfile)
    service = ExporterService(config_path, specs, listen=listen)
    with _SignalHandlers(service):
        service.start()
        return service.serve()


def run_once(
    config_path: str, specs: Sequence[CheckSpec], *, listen: str | None, textfile: str | None
) -> int:
    """Run every job of every target once, poll the log files once, and write the metrics.

    The log counters continue from the values the previous run saved beside ``state_file``,
    so that they grow from run to run. Without ``state_file`` they are left out.
    """
    config = load_config(config_path, listen)
    if textfile is not None:
        _check_textfile_directory(textfile)
    cache = ResultCache()
    scheduler = Scheduler(specs, cache, on_error=ErrorLog().report)
    try:
        scheduler.run_once(config)
    finally:
        scheduler.stop()
    counters = _poll_logs_once(config)

    status = ExporterStatus(config, True, time.time())
    registry = CollectorRegistry()
    registry.register(SmtpdiagCollector(cache, counters, lambda: status))
    if textfile is None:
        sys.stdout.write(generate_latest(registry).decode("utf-8"))
        sys.stdout.flush()
        return 0
    try:
        # The client library writes a temporary file beside the target and renames it.
        write_to_textfile(textfile, registry)
    except OSError as error:
        raise UsageError(
            f"Cannot write the textfile {textfile}: {error.strerror or error}.",
            "Pass a --textfile path in a directory the exporter can write, such as "
            "node_exporter's --collector.textfile.directory.",
            value=textfile,
        ) from None
    logger.info("wrote %s", textfile, extra={"path": textfile})
    return 0


def _check_textfile_directory(textfile: str) -> None:
    """Fail before any check runs when the textfile cannot be written where it is asked for."""
    directory = os.path.dirname(os.path.abspath(textfile))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(
            f"The directory of --textfile {textfile} does not exist or is not writable.",
            "Create it, or pass a path in node_exporter's --collector.textfile.directory.",
            value=textfile,
        )


def _poll_logs_once(config: ExporterConfig) -> LogCounters | None:
    """Return the log counters of this run added to the saved ones; None without log files."""
    if not config.log_files:
        return None
    if config.state_file is None:
        logger.warning(
            "log counters are left out: with --once they need [exporter] state_file, which "
            "keeps the read positions and the counts between runs"
        )
        return None
    counters = LogCounters(config.log_files, _providers(config))
    count_file = counts_path(config.state_file)
    saved = load_counts(count_file)
    if saved is not None:
        counters.add(saved)
    follower = LogFollowerThread(
        counters, config.log_files, state_file=config.state_file, on_error=_log_file_problem
    )
    try:
        follower.poll_once()
        # NOTE: the counts are saved before the read positions. A crash between the two
        # writes makes the next run count the lines of this poll a second time.
        save_counts(count_file, counters.snapshot())
    finally:
        follower.stop()
    return counters


def load_config(config_path: str, listen: str | None) -> ExporterConfig:
    """Load the configuration, with ``--listen`` in place of ``[exporter] listen`` when given."""
    return load_exporter_config(config_path, listen=listen)


def _warn_if_open(web: WebSettings) -> None:
    """Warn when the endpoint listens beyond loopback without basic auth or client certificates.

    Anyone who reaches it can then read the metrics and start ``/probe`` runs, each of which
    logs in at the provider.
    """
    host, _ = parse_listen(web.listen)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback or web.basic_auth_user is not None or web.tls_client_ca_file is not None:
        return
    logger.warning(
        "listening on %s without basic auth or client certificates: anyone who reaches the "
        "port can read the metrics and start probes; set [exporter.web] basic_auth_user or "
        "tls_client_ca_file, or restrict access with a firewall or network policy",
        web.listen,
    )


def _providers(config: ExporterConfig) -> set[str]:
    return {target.provider for target in config.targets}


def _log_file_problem(path: str, message: str) -> None:
    logger.warning("%s", message, extra={"path": path})


class _SwappableCollector(Collector):
    """Registry entry whose collector a reload can replace without unregistering it, so no
    scrape misses the exporter's metrics during the swap."""

    def __init__(self, current: SmtpdiagCollector) -> None:
        self.current = current

    def describe(self) -> list[Metric]:
        return self.current.describe()

    def collect(self) -> Iterator[Metric]:
        return self.current.collect()


class _LogFollowing:
    """Counters and follower thread of one set of log files; a reload replaces the whole."""

    def __init__(self, config: ExporterConfig) -> None:
        self.key = (config.log_files, config.state_file)
        self.counters: LogCounters | None = None
        self.follower: LogFollowerThread | None = None
        if config.log_files:
            self.counters = LogCounters(config.log_files, _providers(config))
            self.follower = LogFollowerThread(
                self.counters,
                config.log_files,
                state_file=config.state_file,
                interval=LOG_POLL_SECONDS,
                on_error=_log_file_problem,
            )

    def start(self) -> None:
        if self.follower is not None:
            self.follower.start()

    def stop(self) -> None:
        if self.follower is not None:
            self.follower.stop()


class _Wakeup:
    """Self-pipe that signal handlers and other threads write to, to wake the main loop."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def notify(self) -> None:
        """Wake the main loop; safe inside a signal handler (one ``write`` call, no lock)."""
        try:
            os.write(self._write, b"\0")
        except BlockingIOError:
            pass  # The pipe is full, so the main loop wakes anyway.
        except OSError:
            pass  # The pipe is closed: the service has stopped.

    def wait(self, timeout: float) -> None:
        """Block until ``notify`` or ``timeout`` seconds, then empty the pipe."""
        if wait_readable(self._read, timeout):
            try:
                while os.read(self._read, 512):
                    pass
            except BlockingIOError:
                pass

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class ExporterService:
    """Long-running exporter that serves until a stop request and reloads on request."""

    def __init__(
        self,
        config_path: str,
        specs: Sequence[CheckSpec],
        *,
        listen: str | None = None,
        wall: Callable[[], float] = time.time,
        tick: float = TICK_SECONDS,
    ) -> None:
        self.config_path = config_path
        self._specs = tuple(specs)
        self._listen = listen
        self._wall = wall
        self._tick = tick
        self._reload_requested = False
        self._stop_requested = False
        self._stopped = False
        self._wakeup = _Wakeup()
        self._errors = ErrorLog()
        self.cache = ResultCache()
        self.scheduler = Scheduler(self._specs, self.cache, on_error=self._errors.report)
        self._status: ExporterStatus | None = None
        self._following: _LogFollowing | None = None
        self._collector: _SwappableCollector | None = None
        self._descriptors: DescriptorLimit | None = None
        self._app: ExporterApp | None = None
        self.server: ExporterServer | None = None

    @property
    def status(self) -> ExporterStatus:
        """Current configuration and reload state; raises RuntimeError before ``start``."""
        if self._status is None:
            raise RuntimeError("the exporter has not started")
        return self._status

    def start(self) -> None:
        """Load the configuration, bind the listener, and start every background thread.

        Raises ``UsageError`` for an invalid configuration or a listen address that cannot
        be bound; nothing keeps running then.
        """
        self._descriptors = DescriptorLimit()
        config = load_config(self.config_path, self._listen)
        self._status = ExporterStatus(config, True, self._wall())
        following = _LogFollowing(config)
        try:
            self.server = self._make_server(config, following)
        except BaseException:
            following.stop()
            raise
        self._following = following
        self.scheduler.start(config)
        following.start()
        self.server.start()
        logger.info(
            "exporter started from %s: targets %d, log files %d",
            config.path,
            len(config.targets),
            len(config.log_files),
            extra={"path": config.path},
        )
        _warn_if_open(config.web)

    def _make_server(self, config: ExporterConfig, following: _LogFollowing) -> ExporterServer:
        context = make_ssl_context(config)
        collector = SmtpdiagCollector(self.cache, following.counters, lambda: self.status)
        swappable = self._collector = _SwappableCollector(collector)
        registry = CollectorRegistry()
        registry.register(swappable)
        process = ProcessCollector(registry=registry)

        def metrics_text() -> bytes:
            return swappable.current.exposition() + render_text(process.collect())

        app = self._app = ExporterApp(
            status=lambda: self.status,
            cache=self.cache,
            scheduler=self.scheduler,
            registry=registry,
            check_ids=[spec.id for spec in self._specs],
            metrics_text=metrics_text,
        )
        assert self._descriptors is not None  # set by start()
        max_connections = self._descriptors.fit(config)
        listen = config.web.listen
        try:
            return ExporterServer(
                app,
                listen,
                context,
                max_connections=max_connections,
                poll_interval=min(self._tick, 0.5),
            )
        except OSError as error:
            raise UsageError(
                f"Cannot listen on {listen}: {error.strerror or error}.",
                "Choose a free local address with --listen or [exporter] listen, "
                "or stop the process that uses it.",
                value=listen,
            ) from None

    def request_reload(self) -> None:
        """Ask the main loop to reload the configuration; safe inside a signal handler."""
        self._reload_requested = True
        self._wakeup.notify()

    def request_stop(self) -> None:
        """Ask the main loop to stop; safe inside a signal handler."""
        self._stop_requested = True
        self._wakeup.notify()

    def serve(self) -> int:
        """Run the main loop until ``request_stop``, then stop everything; return 0."""
        try:
            while not self._stop_requested:
                self._wakeup.wait(self._tick)
                if self._reload_requested:
                    self._reload_requested = False
                    self.reload()
                self._note_recoveries()
                self._flush_logs()
        finally:
            self.stop()
        return 0

    def reload(self) -> bool:
        """Load the configuration file again and apply it; keep the old one on any error."""
        path = self.config_path
        logger.info("reloading the configuration from %s", path, extra={"path": path})
        try:
            config = load_config(path, self._listen)
            context = make_ssl_context(config)
        except SmtpDiagError as error:
            self._reload_failed(error)
            return False

        old = self.status.config
        config = self._keep_listen(config, old)
        if not self._replace_following(config, old):
            return False

        assert self.server is not None and self._descriptors is not None  # set by start()
        self.server.set_ssl_context(context)
        self.server.set_max_connections(self._descriptors.fit(config))
        self.scheduler.reconfigure(config)
        self.cache.retain([target.name for target in config.targets])
        self._status = ExporterStatus(config, True, self._wall())
        logger.info(
            "configuration reloaded: targets %d, log files %d",
            len(config.targets),
            len(config.log_files),
            extra={"path": path},
        )
        return True

    @staticmethod
    def _keep_listen(config: ExporterConfig, old: ExporterConfig) -> ExporterConfig:
        """Return ``config`` with the listen address in use; warn when the file changed it."""
        if config.web.listen != old.web.listen:
            logger.warning(
                "the listen address changed to %s, which takes effect only after a restart; "
                "still listening on %s",
                config.web.listen,
                old.web.listen,
            )
            return replace(config, web=replace(config.web, listen=old.web.listen))
        return config

    def _reload_failed(self, error: BaseException) -> None:
        text = str(error)
        if self.config_path not in text:
            text = f"{self.config_path}: {text}"
        logger.error(
            "reload failed, the previous configuration stays in effect: %s",
            text,
            extra={"path": self.config_path},
        )
        self._status = replace(self.status, reload_success=False)

    def _replace_following(self, config: ExporterConfig, old: ExporterConfig) -> bool:
        """Restart the log follower when the log files or the state file changed.

        The old follower stops first, so the new one resumes from the state it saved. When
        the new one cannot start, the old configuration's follower starts again.
        """
        current = self._following
        assert current is not None and self._collector is not None  # set by start()
        if (config.log_files, config.state_file) == current.key:
            return True
        current.stop()
        try:
            following = _LogFollowing(config)
        except SmtpDiagError as error:
            self._following = _LogFollowing(old)
            self._following.start()
            self._reload_failed(error)
            return False
        # New counters start from 0; Prometheus treats that as a counter reset.
        self._collector.current = SmtpdiagCollector(
            self.cache, following.counters, lambda: self.status
        )
        self._following = following
        following.start()
        return True

    def _flush_logs(self) -> None:
        """Log the counts of rejected probes and connections whose log period is over."""
        if self._app is not None:
            self._app.flush_logs()
        if self.server is not None:
            self.server.flush_logs()

    def _note_recoveries(self) -> None:
        """Log once for each check that had errors and has a newer ok or warning result.

        A critical result is not a recovery: the check ran, but the service still fails.
        """
        for cached in self.cache.snapshot():
            if cached.result.status not in (Status.OK, Status.WARNING):
                continue
            since = self._errors.failing_since(cached.target, cached.result.id)
            if since is not None and cached.finished_at > since:
                self._errors.recovered(cached.target, cached.result.id)

    def stop(self) -> None:
        """Stop the HTTP server, the scheduler and the log follower, which saves its state.

        Later calls do nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        if self.server is not None:
            self.server.stop()
        if self._app is not None:
            self._app.flush_logs(final=True)
        self.scheduler.stop()
        if self._following is not None:
            self._following.stop()
        self._wakeup.close()
        logger.info("stopped")


class _SignalHandlers:
    """Route SIGHUP to a reload and SIGTERM and SIGINT to a stop while the block runs.

    Handlers can only be installed from the main thread; in any other thread (tests that
    run the service in-process) the block installs nothing.
    """

    _SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)

    def __init__(self, service: ExporterService) -> None:
        self._service = service
        self._previous: dict[int, object] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number in self._SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]  # a value signal() returned

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if number == signal.SIGHUP:
            self._service.request_reload()
        else:
            self._service.request_stop()
