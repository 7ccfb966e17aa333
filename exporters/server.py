"""HTTP(S) endpoint of the exporter: the WSGI application and the threading server.

Endpoints (GET and HEAD only, other methods get 405):

- ``/``: HTML landing page (``exporters.landing``);
- ``/metrics``: the registry with the cached check results and log counters;
- ``/probe?target=NAME[&check=ID,ID]``: a fresh run against one *configured* target. The name
  selects a target from the configuration, so a request can never make the exporter connect
  to a host of its choosing;
- ``/-/healthy``: 200 while the process serves requests;
- ``/-/ready``: 200 once every (target, job) pair has a first result, else 503.

With ``[exporter.web] basic_auth_user`` every endpoint but ``/-/healthy`` requires HTTP basic
authentication. ``/-/healthy`` stays open because liveness probes of service managers rarely
carry credentials, and its response reveals nothing. The Authorization header and the password
are never logged.

Each connection is served in its own thread, and at most ``[exporter] max_connections`` at
once. The accept loop sends 503 to a connection beyond that and closes it, without starting a
thread. When ``accept`` fails because descriptors or memory ran out, the loop logs it and
pauses for ``ACCEPT_PAUSE_SECONDS``, since the pending connection keeps the listening socket
readable and the loop would otherwise retry at once, again and again.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import gzip
import hmac
import logging
import math
import os
import resource
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import gzip_accepted

from exporters.cache import ResultCache
from exporters.collector import ExporterStatus, probe_registry
from exporters.exposition import render_text
from exporters.landing import render_landing
from exporters.logthrottle import LogThrottle
from exporters.settings import MAX_CONNECTIONS, ExporterConfig, WebSettings, parse_listen
from smtpdiag import __version__
from smtpdiag.errors import ConfigError
from smtpdiag.models import Report
from smtpdiag.render.text import escape_control

logger = logging.getLogger(__name__)

CONNECTION_TIMEOUT_SECONDS = 30.0
"""Socket timeout of each client connection, so a client that stops sending frees its thread.

It bounds each read and write on the server side, not the whole request. A long /probe run
does not count against it, because the server reads nothing while the probe runs."""

PROBE_WAIT_SECONDS = 120.0
"""Time a /probe request waits for a run of the same target that another request started."""

SCRAPE_TIMEOUT_MARGIN_SECONDS = 0.5
"""Seconds of Prometheus's scrape timeout left for rendering and sending a probe's response."""

MIN_PROBE_SECONDS = 1.0
"""Shortest deadline a probe gets, however short the scrape timeout it was sent with."""

REJECTION_LOG_SECONDS = 60.0
"""Seconds between two log lines about rejected probes of one target, about rejected
connections, and about failures of ``accept`` with one error number."""

ACCEPT_PAUSE_SECONDS = 0.1
"""Seconds the accept loop waits after ``accept`` failed for lack of descriptors or memory."""

_NO_SOCKET_MEMORY = (
    "the system has no memory left for sockets",
    "Free memory on the host, or lower [exporter] max_connections.",
)
ACCEPT_RESOURCE_ERRORS = {
    errno.EMFILE: (
        "the process reached its limit on open files (RLIMIT_NOFILE) of {limit}",
        "Raise the limit (LimitNOFILE= in the systemd unit, ulimit -n in a shell), or lower "
        "[exporter] max_connections.",
    ),
    errno.ENFILE: (
        "the system reached its limit on open files",
        "Raise the sysctl fs.file-max, or stop the process that holds the files.",
    ),
    errno.ENOBUFS: _NO_SOCKET_MEMORY,
    errno.ENOMEM: _NO_SOCKET_MEMORY,
}
"""Error numbers of ``accept`` that last until descriptors or memory are freed, with their
cause and fix. ``{limit}`` stands for the soft ``RLIMIT_NOFILE``."""

LISTEN_BACKLOG = MAX_CONNECTIONS
"""Connections that the kernel completes and queues before the accept loop takes them.

socketserver's default of 5 makes a burst of connections wait for a SYN retransmission, 1 s
and more, once 6 are queued. Linux lowers a larger value to ``net.core.somaxconn``, 4096 by
default since Linux 5.4."""

MAX_NAME_SHOWN = 100
"""Characters of a requested target name that an error response repeats."""

TEXT_FORMAT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
"""Content type of the Prometheus text format that every Prometheus version parses."""

TEXT_PLAIN = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
ALLOWED_METHODS = ("GET", "HEAD")

_OVERLOADED_BODY = b"Too many connections to the exporter; retry later.\n"
OVERLOADED_RESPONSE = (
    b"HTTP/1.0 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_OVERLOADED_BODY)).encode("ascii") + b"\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"Server: smtpdiag-exporter\r\n"
    b"\r\n" + _OVERLOADED_BODY
)
"""Response to a connection beyond ``max_connections``, written by the accept loop. It is far
smaller than a new socket's send buffer, so the write does not block."""

_T = TypeVar("_T")


class ProbeScheduler(Protocol):
    """The part of ``exporters.schedule.Scheduler`` that the endpoints use."""

    def probe(
        self, name: str, checks: Sequence[str] | None = None, deadline: float | None = None
    ) -> Report:
        """Run the checks of target ``name`` now, within ``deadline`` seconds when given."""
        ...

    def ready(self) -> bool:
        """Tell whether every (target, job) pair has finished at least once."""
        ...

    def pending(self) -> int:
        """Return the number of (target, job) pairs without a first result."""
        ...


class ProbeBusyError(Exception):
    """The probe limit is reached, or a shared run did not finish in time."""


@dataclass
class _Flight:
    """One probe run that concurrent requests for the same key share."""

    done: threading.Event
    value: object = None
    error: BaseException | None = None
    waiters: int = 0
    """Requests waiting for this run besides the one that started it."""


class ProbeGate:
    """Single-flight and concurrency limit for /probe runs.

    Requests with the same key (target and checks) while a run is in flight wait for that
    run and share its result. At most ``limit`` runs go on at once; a request beyond that
    raises ``ProbeBusyError`` at once rather than queueing.
    """

    def __init__(self, limit: int, wait_seconds: float = PROBE_WAIT_SECONDS) -> None:
        self.limit = limit
        """Maximum concurrent runs; a reload may change it."""
        self._wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._flights: dict[object, _Flight] = {}

    def run(self, key: object, function: Callable[[], _T]) -> _T:
        """Return ``function()``, or the result of the run with the same key in flight."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                if len(self._flights) >= self.limit:
                    raise ProbeBusyError(f"{self.limit} probes are running already")
                flight = _Flight(threading.Event())
                self._flights[key] = flight
            else:
                flight.waiters += 1
        if leader:
            return self._lead(key, flight, function)
        finished = flight.done.wait(self._wait_seconds)
        with self._lock:
            flight.waiters -= 1
        if not finished:
            raise ProbeBusyError(f"the shared run did not end within {self._wait_seconds:g} s")
        if flight.error is not None:
            raise ProbeBusyError(f"the shared run failed: {flight.error}")
        return flight.value  # type: ignore[return-value]  # set by the leader from function()

    def in_flight(self) -> int:
        """Return the number of runs going on."""
        with self._lock:
            return len(self._flights)

    def waiters(self, key: object) -> int:
        """Return the number of requests waiting for the run of ``key``; 0 when none runs."""
        with self._lock:
            flight = self._flights.get(key)
            return 0 if flight is None else flight.waiters

    def _lead(self, key: object, flight: _Flight, function: Callable[[], _T]) -> _T:
        try:
            value = function()
            flight.value = value
            return value
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()


@dataclass(frozen=True)
class _Response:
    status: str
    body: bytes
    content_type: str = TEXT_PLAIN
    headers: tuple[tuple[str, str], ...] = ()


def _text(status: str, text: str, *headers: tuple[str, str]) -> _Response:
    return _Response(status, text.encode("utf-8"), TEXT_PLAIN, headers)


class ExporterApp:
    """WSGI application of the exporter's endpoints.

    ``status`` returns the current configuration and reload state, so a reload takes effect
    with the next request. ``check_ids`` are the check ids a /probe request may select.
    """

    def __init__(
        self,
        *,
        status: Callable[[], ExporterStatus],
        cache: ResultCache,
        scheduler: ProbeScheduler,
        registry: CollectorRegistry,
        check_ids: Collection[str],
        metrics_text: Callable[[], bytes] | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._status = status
        self._cache = cache
        self._scheduler = scheduler
        self._registry = registry
        self._metrics_text = metrics_text
        """Faster way to the bytes of ``render_text(registry.collect())``, when there is one."""
        self._check_ids = tuple(check_ids)
        self._wall = wall
        self._monotonic = monotonic
        self.probe_gate = ProbeGate(status().config.workers)
        self._rejections = _RejectionLog(monotonic)
        self._routes: dict[str, Callable[[WSGIEnvironment], _Response]] = {
            "/": self._landing,
            "/metrics": self._metrics,
            "/probe": self._probe,
            "/-/healthy": self._healthy,
            "/-/ready": self._ready,
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Route one request and send its response; HEAD gets the headers of GET only."""
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        response = self._respond(environ, method, path)
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            # wsgiref adds a Server header naming the Python version unless one is set.
            ("Server", "smtpdiag-exporter"),
            *response.headers,
        ]
        start_response(response.status, headers)
        return [b""] if method == "HEAD" else [response.body]

    def flush_logs(self, *, final: bool = False) -> None:
        """Log the number of probes rejected in each period that is over, or with ``final``
        in every period. Call it regularly, and with ``final`` once at stop."""
        self._rejections.flush(final=final)

    def _respond(self, environ: WSGIEnvironment, method: str, path: str) -> _Response:
        # Authentication comes first, so that 404 and 405 do not reveal the endpoints.
        if path != "/-/healthy" and not self._authorized(environ):
            return _text(
                "401 Unauthorized",
                "Authentication required.\n",
                ("WWW-Authenticate", 'Basic realm="smtpdiag exporter", charset="UTF-8"'),
            )
        handler = self._routes.get(path)
        if handler is None:
            return _text("404 Not Found", "Not found. The endpoints are listed on /.\n")
        if method not in ALLOWED_METHODS:
            return _text(
                "405 Method Not Allowed",
                f"Method {escape_control(method[:20])} is not allowed; use GET or HEAD.\n",
                ("Allow", ", ".join(ALLOWED_METHODS)),
            )
        try:
            return handler(environ)
        except Exception:
            # One failed request must not stop the server, so the error becomes a 500 response
            # and the traceback goes to the log, whose handler redacts secrets.
            logger.exception("%s %s failed", method, path)
            return _text("500 Internal Server Error", "Internal error; see the exporter log.\n")

    def _authorized(self, environ: WSGIEnvironment) -> bool:
        return check_basic_auth(environ.get("HTTP_AUTHORIZATION"), self._status().config.web)

    def _healthy(self, environ: WSGIEnvironment) -> _Response:
        return _text("200 OK", "OK\n")

    def _ready(self, environ: WSGIEnvironment) -> _Response:
        if self._scheduler.ready():
            return _text("200 OK", "Ready\n")
        pending = self._scheduler.pending()
        return _text(
            "503 Service Unavailable",
            f"Not ready: {pending} (target, job) pairs have no first result yet.\n",
        )

    def _landing(self, environ: WSGIEnvironment) -> _Response:
        status = self._status()
        page = render_landing(
            status.config,
            self._cache.snapshot(),
            version=__version__,
            now=self._wall(),
            reload_success=status.reload_success,
        )
        return _Response("200 OK", page.encode("utf-8"), HTML)

    def _metrics(self, environ: WSGIEnvironment) -> _Response:
        names = parse_qs(environ.get("QUERY_STRING", "")).get("name[]")
        if names:
            # name[] selects families, as prometheus_client's own handler allows.
            registry = self._registry.restricted_registry(names)
            return _exposition(render_text(registry.collect()), environ)
        if self._metrics_text is not None:
            return _exposition(self._metrics_text(), environ)
        return _exposition(render_text(self._registry.collect()), environ)

    def _probe(self, environ: WSGIEnvironment) -> _Response:
        params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        names = params.get("target", [])
        if len(names) != 1 or not names[0]:
            return _text(
                "400 Bad Request", "Give exactly one target parameter: /probe?target=NAME\n"
            )
        config = self._status().config
        target = next((item for item in config.targets if item.name == names[0]), None)
        if target is None:
            printable = escape_control(names[0][:MAX_NAME_SHOWN])
            return _text(
                "404 Not Found",
                f"Unknown target '{printable}'. A probe runs only against a target of the "
                "configuration file; / lists them.\n",
            )
        checks = _split_checks(params.get("check", []))
        unknown = [check for check in checks if check not in self._check_ids]
        if unknown:
            printable = escape_control(unknown[0][:MAX_NAME_SHOWN])
            return _text(
                "400 Bad Request",
                f"Unknown check '{printable}'. Valid checks: {', '.join(self._check_ids)}.\n",
            )
        return self._run_probe(environ, target.name, checks, config)

    def _run_probe(
        self,
        environ: WSGIEnvironment,
        name: str,
        checks: tuple[str, ...],
        config: ExporterConfig,
    ) -> _Response:
        deadline = _scrape_deadline(environ)

        def run() -> tuple[Report, float]:
            started = self._monotonic()
            report = self._scheduler.probe(name, checks or None, deadline)
            return report, self._monotonic() - started

        self.probe_gate.limit = config.workers
        try:
            report, duration = self.probe_gate.run((name, checks), run)
        except KeyError:
            # A reload removed the target between the lookup above and the run.
            return _text("404 Not Found", "The target is no longer configured.\n")
        except ProbeBusyError as error:
            self._rejections.report(name, str(error))
            return _text("503 Service Unavailable", f"Probe not run: {error}. Retry later.\n")
        target = next(item for item in config.targets if item.name == name)
        registry = probe_registry(report, target, duration)
        return _exposition(render_text(registry.collect()), environ)


def _scrape_deadline(environ: WSGIEnvironment) -> float | None:
    """Return the seconds a probe may take: Prometheus's scrape timeout less a margin for the
    response, or None when the request does not carry the header."""
    text = environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS")
    try:
        timeout = float(text) if text is not None else math.nan
    except ValueError:
        return None
    if not math.isfinite(timeout) or timeout <= 0:
        return None
    return max(MIN_PROBE_SECONDS, timeout - SCRAPE_TIMEOUT_MARGIN_SECONDS)


class _RejectionLog:
    """Logs rejected probes of each target: the first in full, then at most one line per
    ``REJECTION_LOG_SECONDS`` with the number rejected since, so that a flood of requests
    cannot flood the log."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._throttle: LogThrottle[str] = LogThrottle(
            _log_probe_rejections, REJECTION_LOG_SECONDS, monotonic
        )

    def report(self, target: str, reason: str) -> None:
        if self._throttle.record(target):
            logger.warning(
                "probe of target %s rejected: %s", target, reason, extra={"target": target}
            )

    def flush(self, *, final: bool = False) -> None:
        """Log the counts of the periods that are over, or with ``final`` of all."""
        self._throttle.flush(final=final)


def _log_probe_rejections(target: str, count: int, seconds: float) -> None:
    logger.warning(
        "probe of target %s: %d more rejected in the last %.0f s",
        target,
        count,
        seconds,
        extra={"target": target},
    )


def _split_checks(values: Sequence[str]) -> tuple[str, ...]:
    """Return the check ids of repeated or comma-separated ``check`` parameters, each once."""
    ids = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return tuple(dict.fromkeys(ids))


def _exposition(body: bytes, environ: WSGIEnvironment) -> _Response:
    """Return the response with ``body``, metrics in the Prometheus text format 0.0.4,
    gzip-compressed when the client accepts it.

    Every Prometheus version parses the text format, and the exporter uses nothing that only
    OpenMetrics carries (exemplars, units), so a request for OpenMetrics gets it too: its
    encoder in prometheus_client 0.26 takes 1.7 times as long. gzip runs at level 1, which
    takes less than a tenth of the time of prometheus_client's level 9 for a body about 25 %
    larger (bench/exporter.py, 200 targets).
    """
    if not gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
        return _Response("200 OK", body, TEXT_FORMAT_0_0_4)
    compressed = gzip.compress(body, compresslevel=1)
    return _Response("200 OK", compressed, TEXT_FORMAT_0_0_4, (("Content-Encoding", "gzip"),))


def check_basic_auth(header: str | None, web: WebSettings) -> bool:
    """Tell whether an Authorization header carries the configured basic auth credentials.

    True when no user is configured. Both parts are compared in constant time, so the
    response time does not reveal how much of a guess was right.
    """
    if web.basic_auth_user is None:
        return True
    if web.basic_auth_password is None or not header:
        return False
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, separator, password = decoded.partition(b":")
    user_matches = hmac.compare_digest(user, web.basic_auth_user.encode("utf-8"))
    password_matches = hmac.compare_digest(
        password, web.basic_auth_password.reveal().encode("utf-8")
    )
    return bool(separator) and user_matches and password_matches


def make_ssl_context(config: ExporterConfig) -> ssl.SSLContext | None:
    """Build the server TLS context of ``[exporter.web]``, or None to serve plain HTTP.

    TLS 1.2 is the minimum. With ``tls_client_ca_file`` every client must present a
    certificate that chains to that CA. Raises ``ConfigError`` naming a file that cannot be
    loaded.
    """
    web = config.web
    if web.tls_cert_file is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(web.tls_cert_file, web.tls_key_file)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(
            config.path,
            f"[exporter.web] tls_cert_file {web.tls_cert_file} with tls_key_file "
            f"{web.tls_key_file} cannot be loaded: {error}.",
            "Point both at the PEM certificate chain and its matching unencrypted private key.",
        ) from None
    if web.tls_client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=web.tls_client_ca_file)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(
                config.path,
                f"[exporter.web] tls_client_ca_file {web.tls_client_ca_file} cannot be "
                f"loaded: {error}.",
                "Point it at a PEM file of CA certificates.",
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _QuietHandler(WSGIRequestHandler):
    """Request handler with a socket timeout, the TLS handshake in the request's thread, and
    no access log, because request lines carry query strings."""

    timeout = CONNECTION_TIMEOUT_SECONDS

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            # The handshake runs here, in the request's thread, so a slow or broken client
            # cannot block the accept loop.
            self.connection.do_handshake()

    def log_message(self, format: str, *args: object) -> None:
        """Write no access log line."""


class ConnectionLimit:
    """Number of connections in service, against a limit that a reload may change.

    The first rejected connection is logged in full, later ones at most once per
    ``REJECTION_LOG_SECONDS`` with the number rejected since, so that a flood of connections
    cannot flood the log.
    """

    def __init__(self, limit: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        """Maximum connections in service at once."""
        self._lock = threading.Lock()
        self._active = 0
        self._rejections: LogThrottle[str] = LogThrottle(
            self._log_rejections, REJECTION_LOG_SECONDS, monotonic
        )

    def acquire(self) -> bool:
        """Count one more connection in service and return True, or return False at the
        limit."""
        with self._lock:
            if self._active >= self.limit:
                return False
            self._active += 1
            return True

    def release(self) -> None:
        """Count one connection less in service."""
        with self._lock:
            self._active -= 1

    def active(self) -> int:
        """Return the number of connections in service."""
        with self._lock:
            return self._active

    def report_rejection(self, client_address: object) -> None:
        """Log a rejected connection, or count it when a line was logged in the last
        ``REJECTION_LOG_SECONDS``."""
        if self._rejections.record("connection"):
            logger.warning(
                "rejected a connection from %s: %d connections are in service, the limit "
                "set by [exporter] max_connections; raise it if scrapes and probes need more, "
                "or block a client that keeps connections open",
                _client_host(client_address),
                self.limit,
            )

    def flush_log(self, *, final: bool = False) -> None:
        """Log the number of connections rejected in a period that is over, or with ``final``
        in the current one."""
        self._rejections.flush(final=final)

    def _log_rejections(self, key: str, count: int, seconds: float) -> None:
        logger.warning(
            "rejected %d more connections in the last %.0f s at the limit of %d connections "
            "in service",
            count,
            seconds,
            self.limit,
        )


def _client_host(client_address: object) -> str:
    """Return the IP address of a client address tuple, or its text for anything else."""
    if isinstance(client_address, tuple) and client_address:
        return str(client_address[0])
    return str(client_address)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    """WSGI server with one daemon thread per connection, at most ``connection_limit.limit``
    at once, and optional TLS.

    A connection beyond the limit gets ``OVERLOADED_RESPONSE`` from the accept loop and is
    closed. Each connection in service keeps its thread until it ends or stays silent for
    ``CONNECTION_TIMEOUT_SECONDS``.
    """

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG
    ssl_context: ssl.SSLContext | None = None
    connection_limit: ConnectionLimit
    accept_failures: LogThrottle[int]
    """Throttle of the log lines about failed ``accept`` calls, by error number."""
    stopping: threading.Event
    """Set when the server stops, which ends a pause of the accept loop at once."""

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, a DNS query that a server on a
        # loopback address has no use for.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()

    def get_request(self) -> tuple[socket.socket, object]:
        try:
            connection, address = self.socket.accept()
        except OSError as error:
            # socketserver drops the error. The pending connection stays in the backlog, so
            # the listening socket stays readable and the next accept would follow at once.
            if error.errno in ACCEPT_RESOURCE_ERRORS:
                self._report_accept_failure(error)
                self.stopping.wait(ACCEPT_PAUSE_SECONDS)
            raise
        context = self.ssl_context
        if context is not None:
            connection = context.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def _report_accept_failure(self, error: OSError) -> None:
        assert error.errno is not None  # a key of ACCEPT_RESOURCE_ERRORS
        if not self.accept_failures.record(error.errno):
            return
        cause, fix = ACCEPT_RESOURCE_ERRORS[error.errno]
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        logger.warning(
            "accepting a connection failed (%s) because %s, with %d connections in service. "
            "New connections wait in the listen backlog, and accepting pauses %g s after each "
            "failure. %s",
            error.strerror or error,
            cause.format(limit=soft_limit),
            self.connection_limit.active(),
            ACCEPT_PAUSE_SECONDS,
            fix,
        )

    def handle_error(self, request: object, client_address: object) -> None:
        error = sys.exc_info()[1]
        logger.debug("connection from %s ended with %r", client_address, error)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve ``request`` in a new thread, or reject it when the limit is reached."""
        limit = self.connection_limit
        if not limit.acquire():
            limit.report_rejection(client_address)
            self._reject(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            # No thread started, so none will release the connection's place.
            limit.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connection_limit.release()

    def _reject(self, request: socket.socket) -> None:
        """Send ``OVERLOADED_RESPONSE`` on a plain HTTP connection, then close it.

        A TLS connection is closed without a response, because the handshake would need a
        thread. The bytes the client has already sent are read first, since closing a socket
        with unread data sends a reset, which can make the client discard the response.
        """
        if not isinstance(request, ssl.SSLSocket):
            request.setblocking(False)
            with contextlib.suppress(OSError):
                request.recv(65536)
            with contextlib.suppress(OSError):
                request.send(OVERLOADED_RESPONSE)
        self.shutdown_request(request)


def _log_accept_failures(error_number: int, count: int, seconds: float) -> None:
    logger.warning(
        "accepting a connection failed %d more times in the last %.0f s: %s",
        count,
        seconds,
        os.strerror(error_number),
    )


def _server_class(family: socket.AddressFamily) -> type[_ThreadingServer]:
    class _FamilyServer(_ThreadingServer):
        address_family = family

    return _FamilyServer


class ExporterServer:
    """HTTP(S) listener that serves ``app`` from a background thread."""

    def __init__(
        self,
        app: WSGIApplication,
        listen: str,
        ssl_context: ssl.SSLContext | None = None,
        *,
        max_connections: int,
        poll_interval: float = 0.5,
    ) -> None:
        """Bind ``listen`` and serve at most ``max_connections`` connections at once.

        ``poll_interval`` is how often, in seconds, the serving thread looks for a ``stop``
        request.
        """
        host, port = parse_listen(listen)
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV
        )
        family, _, _, _, sockaddr = infos[0]
        bind_address = (str(sockaddr[0]), int(sockaddr[1]))
        self._httpd = _server_class(family)(bind_address, _QuietHandler)
        self._httpd.set_app(app)
        self._httpd.ssl_context = ssl_context
        self._httpd.connection_limit = ConnectionLimit(max_connections)
        self._httpd.accept_failures = LogThrottle(_log_accept_failures, REJECTION_LOG_SECONDS)
        self._httpd.stopping = threading.Event()
        self._poll_interval = poll_interval
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """Bound ``HOST:PORT`` (``[HOST]:PORT`` for IPv6), with the port the OS chose for 0."""
        host, port = self._httpd.server_address[:2]
        host = str(host)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def url(self) -> str:
        """Base URL of the listener, ``http://`` or ``https://`` and ``address``."""
        scheme = "https" if self._httpd.ssl_context is not None else "http"
        return f"{scheme}://{self.address}"

    def set_ssl_context(self, context: ssl.SSLContext | None) -> None:
        """Use ``context`` for connections accepted from now on (a reloaded certificate)."""
        self._httpd.ssl_context = context

    def set_max_connections(self, limit: int) -> None:
        """Apply a new connection limit to connections accepted from now on.

        Connections in service beyond a lowered limit are served to their end.
        """
        self._httpd.connection_limit.limit = limit

    def connections(self) -> int:
        """Return the number of connections in service."""
        return self._httpd.connection_limit.active()

    def flush_logs(self, *, final: bool = False) -> None:
        """Log the counts of rejected connections and failed ``accept`` calls of each period
        that is over, or with ``final`` of every period. ``stop`` calls it with ``final``."""
        self._httpd.connection_limit.flush_log(final=final)
        self._httpd.accept_failures.flush(final=final)

    def start(self) -> None:
        """Serve requests in a daemon thread until ``stop``."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            args=(self._poll_interval,),
            name="smtpdiag-http",
            daemon=True,
        )
        self._thread.start()
        logger.info("listening on %s", self.url)

    def stop(self) -> None:
        """Stop accepting connections, close the listening socket and log the pending counts."""
        self._httpd.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        self.flush_logs(final=True)
