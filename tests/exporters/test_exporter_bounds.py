"""Resource bounds of ``smtpdiag exporter`` in a child process: file descriptors, threads and
sockets over 1,000 scrapes while 200 failing targets are probed every second, the limit on
concurrent HTTP connections, and idle clients against a low limit on open files.

Every target is on 127.0.0.1 and fails fast in one of three ways. A closed port refuses the
connection. A listener that accepts and never sends a byte lets the greeting time out after the
target's 0.5 s timeout. A third listener closes each connection at once. Every target's token
endpoint is a closed loopback port. Counts come from ``/proc/PID/fd`` and
``/proc/PID/task`` of the exporter, socket states from ``/proc/PID/net/tcp`` and ``tcp6``.
"""

from __future__ import annotations

import os
import re
import resource
import selectors
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from exporter_process import ExporterProcess
from scripted_peer import unused_port

from exporters.settings import default_max_connections

pytestmark = pytest.mark.slow

TARGETS = 200
SCRAPES = 1000
PROBE_EVERY = 100
"""Scrape cycles between two /probe requests."""
SOCKET_SAMPLE_EVERY = 50
"""Scrape cycles between two reads of the socket states. The TCP table lists every socket of
the network namespace, thousands in TIME_WAIT during the load, so reading it each cycle would
slow the load down."""
TARGET_TIMEOUT = 0.5
"""The targets' ``timeout`` in seconds: how long a session with the silent listener lasts."""
LOAD_JOBS = ("connect", "tls", "token", "auth")
"""Jobs of the load run. The clock job is left out because it would ask NTP servers, and the
local job because it reads the msmtp configuration of the machine."""
IDLE_INTERVAL = 86400
"""Job interval of the configuration before and after the load: every job runs once and then
not again during the test, so the process comes to rest."""
WAIT_SECONDS = 60.0
"""Maximum wait for a log line of the exporter, for readiness and for rest."""

RUNS_SAMPLE = re.compile(r'^smtpdiag_check_runs_total\{check="([a-z_]+)"\} (\S+)$', re.MULTILINE)
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "08": "CLOSE_WAIT", "0A": "LISTEN"}
"""Names of the ``st`` column values of /proc/net/tcp that the tests look at."""


# --- loopback peers --------------------------------------------------------------------------


class SilentListener:
    """Accepts connections, never sends a byte, and closes each one when its client does."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=512)
        self._server.setblocking(False)
        self.port = int(self._server.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._server, selectors.EVENT_READ)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(0.1):
                if key.fileobj is self._server:
                    self._accept()
                else:
                    self._read(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        try:
            connection, _ = self._server.accept()
        except BlockingIOError:
            return
        connection.setblocking(False)
        self._selector.register(connection, selectors.EVENT_READ)

    def _read(self, connection: socket.socket) -> None:
        try:
            data = connection.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._selector.unregister(connection)
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()


class ClosingListener:
    """Accepts connections and closes each one at once."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=512)
        self._server.settimeout(0.1)
        self.port = int(self._server.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()


@dataclass(frozen=True)
class Peers:
    """Ports of the three kinds of failing target and of the token endpoint."""

    refused: int
    silent: int
    closing: int
    token: int

    def target_port(self, index: int) -> int:
        """Return the port of target ``index``: refused, silent and closing in turn."""
        return (self.refused, self.silent, self.closing)[index % 3]


@pytest.fixture(scope="module")
def peers() -> Iterator[Peers]:
    silent = SilentListener()
    closing = ClosingListener()
    try:
        yield Peers(unused_port(), silent.port, closing.port, unused_port())
    finally:
        silent.close()
        closing.close()


def write_config(
    path: Path,
    peers: Peers,
    *,
    targets: int,
    jobs: tuple[str, ...],
    interval: float,
    extra: str = "",
) -> None:
    """Write ``targets`` targets on the failing ports and an ``[exporter]`` table."""
    token_file = path.parent / "refresh_token"
    token_file.write_text("refresh-token-placeholder\n", encoding="utf-8")
    token_file.chmod(0o600)
    tables = [
        f"[targets.t{index:03d}]\n"
        f'host = "127.0.0.1"\n'
        f"port = {peers.target_port(index)}\n"
        f"timeout = {TARGET_TIMEOUT}\n"
        f'user = "monitor@example.com"\n'
        f'token_endpoint = "http://127.0.0.1:{peers.token}/token"\n'
        f'client_id = "bounds-test"\n'
        f'refresh_token_file = "{token_file}"\n'
        for index in range(targets)
    ]
    intervals = "".join(f"{job} = {interval:g}\n" for job in jobs)
    quoted = ", ".join(f'"{job}"' for job in jobs)
    exporter = f"[exporter]\njobs = [{quoted}]\njitter = 0\n{extra}\n[exporter.intervals]\n"
    path.write_text("\n".join(tables) + "\n" + exporter + intervals, encoding="utf-8")


# --- the exporter process --------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Open file descriptors, threads and socket states of a process at one moment."""

    fds: int
    threads: int
    sockets: dict[str, int]
    """Number of the process's TCP sockets in each state (``TCP_STATES`` names or the code);
    empty when the states were not read."""


class BoundsExporter(ExporterProcess):
    """The exporter child process, with its descriptors, threads and CPU time readable."""

    def __init__(self, config: Path, preexec_fn: Callable[[], None] | None = None) -> None:
        super().__init__("--config", str(config), preexec_fn=preexec_fn)

    def wait_for(
        self, pattern: str, start: int = 0, seconds: float = WAIT_SECONDS
    ) -> re.Match[str]:
        """Return the first match of ``pattern`` in the log lines from index ``start`` on."""
        return super().wait_for(pattern, start, seconds)

    def reload(self, config: Path, text_writer: Callable[[Path], None]) -> None:
        """Rewrite ``config`` with ``text_writer``, send SIGHUP and wait for the reload."""
        with self._condition:
            start = len(self.lines)
        text_writer(config)
        self.process.send_signal(signal.SIGHUP)
        self.wait_for("configuration reloaded", start)

    def usage(self, *, sockets: bool = True) -> Usage:
        """Return the process's descriptor and thread counts now, and with ``sockets`` the
        states of its TCP sockets, which takes a read of the whole TCP table."""
        links = []
        for name in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                links.append(os.readlink(f"/proc/{self.pid}/fd/{name}"))
            except FileNotFoundError:
                continue  # closed between the listing and the read
        threads = len(os.listdir(f"/proc/{self.pid}/task"))
        states: dict[str, int] = {}
        if sockets:
            inodes = {link[8:-1] for link in links if link.startswith("socket:[")}
            for inode, state in tcp_states(self.pid).items():
                if inode in inodes:
                    states[state] = states.get(state, 0) + 1
        return Usage(len(links), threads, states)

    def cpu_ticks(self) -> int:
        """Return the CPU time the process has used so far, user and system, in clock ticks."""
        # The fields after the command name in parentheses, which may contain spaces; utime
        # and stime are fields 14 and 15 of proc(5).
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])


def tcp_states(pid: int) -> dict[str, str]:
    """Return the state of every TCP socket in the network namespace of ``pid`` by inode."""
    states: dict[str, str] = {}
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            states[fields[9]] = TCP_STATES.get(fields[3], fields[3])
    return states


def get(url: str) -> tuple[int, str]:
    """Send a GET request over a new connection and return the status and body."""
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode("utf-8")


def stored_runs(body: str) -> dict[str, float]:
    """Return the ``smtpdiag_check_runs_total`` samples of a /metrics body by check id."""
    return {check: float(value) for check, value in RUNS_SAMPLE.findall(body)}


def wait_until_idle(exporter: BoundsExporter) -> dict[str, float]:
    """Wait until no job stores a result for 1.5 s, three times the target timeout, and
    return the stored-result counts then.

    Jobs start only when they are due or when another job of their target ends and stores a
    result. With the idle interval nothing is due, so three unchanged counts 0.5 s apart mean
    that no job runs.
    """
    deadline = time.monotonic() + WAIT_SECONDS
    unchanged = 0
    previous: dict[str, float] | None = None
    while unchanged < 3:
        if time.monotonic() > deadline:
            pytest.fail("the exporter's jobs did not come to rest")
        time.sleep(0.5)
        status, body = get(exporter.url + "/metrics")
        assert status == 200
        counts = stored_runs(body)
        unchanged = unchanged + 1 if counts == previous else 0
        previous = counts
    assert previous is not None
    return previous


def quiet_usage(exporter: BoundsExporter) -> Usage:
    """Return the usage of an idle exporter, once no HTTP handler thread remains from the last
    request: the lowest thread count of ten samples 50 ms apart."""
    samples = []
    for _ in range(10):
        samples.append(exporter.usage())
        time.sleep(0.05)
    return min(samples, key=lambda usage: (usage.threads, usage.fds))


# --- 1,000 scrapes against 200 failing targets -----------------------------------------------


@dataclass
class LoadRun:
    """What the load run measured."""

    started: Usage
    warm: Usage
    """At rest after every (target, job) pair ran once."""
    end: Usage
    """At rest after the load."""
    samples: list[Usage] = field(default_factory=list)
    """One per scrape cycle of the load."""
    scrape_statuses: list[int] = field(default_factory=list)
    probe_answers: list[tuple[int, str]] = field(default_factory=list)
    runs_before: dict[str, float] = field(default_factory=dict)
    runs_after: dict[str, float] = field(default_factory=dict)
    load_seconds: float = 0.0
    workers: int = 0
    max_connections: int = 0
    exit_code: int | None = None
    log: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def load_run(peers: Peers, tmp_path_factory: pytest.TempPathFactory) -> LoadRun:
    """Run the exporter at rest, then under load, then at rest again, and record it all.

    The load's configuration sets every job to 1 s, the shortest interval, and jitter to 0.
    A SIGHUP switches between the two configurations; the targets stay the same, so their
    token caches, results and due times carry over.
    """
    config = tmp_path_factory.mktemp("bounds") / "exporter.toml"

    def idle(path: Path) -> None:
        write_config(path, peers, targets=TARGETS, jobs=LOAD_JOBS, interval=IDLE_INTERVAL)

    def busy(path: Path) -> None:
        write_config(path, peers, targets=TARGETS, jobs=LOAD_JOBS, interval=1)

    idle(config)
    exporter = BoundsExporter(config)
    try:
        started = exporter.usage()
        scheduler = exporter.wait_for(r"scheduler started: .* workers (\d+)")
        wait_for_ready(exporter)
        wait_until_idle(exporter)
        run = LoadRun(started=started, warm=quiet_usage(exporter), end=started)
        run.workers = int(scheduler.group(1))
        run.max_connections = default_max_connections(run.workers)

        exporter.reload(config, busy)
        run.runs_before = stored_runs(get(exporter.url + "/metrics")[1])
        began = time.monotonic()
        for cycle in range(SCRAPES):
            status, body = get(exporter.url + "/metrics")
            run.scrape_statuses.append(status)
            run.samples.append(exporter.usage(sockets=cycle % SOCKET_SAMPLE_EVERY == 0))
            if cycle % PROBE_EVERY == PROBE_EVERY - 1:
                target = f"t{(cycle // PROBE_EVERY) % TARGETS:03d}"
                run.probe_answers.append(get(f"{exporter.url}/probe?target={target}&check=connect"))
        run.runs_after = stored_runs(body)
        run.load_seconds = time.monotonic() - began

        exporter.reload(config, idle)
        wait_until_idle(exporter)
        run.end = quiet_usage(exporter)
    finally:
        code = exporter.finish()
    run.exit_code = code
    run.log = exporter.lines
    report_figures(run)
    return run


def wait_for_ready(exporter: BoundsExporter) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while get(exporter.url + "/-/ready")[0] != 200:
        if time.monotonic() > deadline:
            pytest.fail("the exporter did not become ready")
        time.sleep(0.2)


def report_figures(run: LoadRun) -> None:
    """Print the figures that docs/reliability.md records; pytest shows them with ``-s``."""

    def spread(values: list[int]) -> str:
        ordered = sorted(values)
        return f"{ordered[0]}-{ordered[-1]} (median {ordered[len(ordered) // 2]})"

    fds = [sample.fds for sample in run.samples]
    threads = [sample.threads for sample in run.samples]
    close_wait = max(sample.sockets.get("CLOSE_WAIT", 0) for sample in run.samples)
    established = max(sample.sockets.get("ESTABLISHED", 0) for sample in run.samples)
    token_runs = run.runs_after.get("token", 0) - run.runs_before.get("token", 0)
    print(
        f"\nstart: {run.started.fds} fds, {run.started.threads} threads"
        f"\nat rest after warm-up: {run.warm.fds} fds, {run.warm.threads} threads"
        f"\nduring {len(run.samples)} scrapes in {run.load_seconds:.1f} s: fds {spread(fds)}, "
        f"threads {spread(threads)}; in {len(run.samples) // SOCKET_SAMPLE_EVERY} reads of the "
        f"socket states at most {established} ESTABLISHED and {close_wait} in CLOSE_WAIT"
        f"\nat rest at the end: {run.end.fds} fds, {run.end.threads} threads, sockets "
        f"{run.end.sockets}"
        f"\ntoken results stored during the load: {token_runs:.0f}"
        f"\nbounds: {load_bound(run)}"
    )


FD_SLACK = 1
"""Descriptors by which the count at rest may grow: the socket of one HTTP connection whose
handler has sent its response but not closed it yet. The last request before a sample at rest
is a scrape of ``wait_until_idle``."""

THREAD_SLACK = 1
"""Threads by which the count at rest may grow: the handler thread of that connection."""


def load_bound(run: LoadRun) -> tuple[int, int]:
    """Return the most descriptors and threads the exporter may hold under this load.

    On top of the count at rest, each target has at most one SMTP session open, because its
    server jobs run one at a time, and two token requests, of the token job and the auth job.
    Each check runs in its own thread, and each HTTP connection has a socket and a thread. A
    /probe run adds the sessions of one more job.
    """
    per_target = 3
    probes = 1
    fds = run.warm.fds + per_target * (TARGETS + probes) + run.max_connections
    threads = run.warm.threads + per_target * (TARGETS + probes) + run.max_connections
    return fds, threads


def test_scrapes_all_succeed(load_run: LoadRun) -> None:
    assert load_run.scrape_statuses == [200] * SCRAPES


def test_probes_report_failure(load_run: LoadRun) -> None:
    answers = [
        (status, "smtpdiag_probe_success 0.0" in body) for status, body in load_run.probe_answers
    ]
    assert answers == [(200, True)] * (SCRAPES // PROBE_EVERY)


def test_fds_at_rest_do_not_grow(load_run: LoadRun) -> None:
    assert load_run.end.fds <= load_run.warm.fds + FD_SLACK


def test_threads_at_rest_do_not_grow(load_run: LoadRun) -> None:
    assert load_run.end.threads <= load_run.warm.threads + THREAD_SLACK


def test_no_socket_open_at_rest(load_run: LoadRun) -> None:
    # Only the listening socket is left: every session with a target has ended.
    assert load_run.end.sockets == {"LISTEN": 1}


def test_fds_under_load_below_bound(load_run: LoadRun) -> None:
    bound, _ = load_bound(load_run)
    assert max(sample.fds for sample in load_run.samples) < bound


def test_threads_under_load_below_bound(load_run: LoadRun) -> None:
    _, bound = load_bound(load_run)
    assert max(sample.threads for sample in load_run.samples) < bound


def test_scheduled_token_runs_counted(load_run: LoadRun) -> None:
    # The token job of each target runs at most once per interval of 1 s (jitter 0), and its
    # requests are refused at once. The lower bound allows each run to start up to three
    # intervals late, because the probes of 200 targets keep a small machine's CPU busy. A
    # stopped schedule stores none. No /probe request runs the token check.
    stored = load_run.runs_after["token"] - load_run.runs_before["token"]
    nominal = TARGETS * load_run.load_seconds
    assert nominal / 4 <= stored <= nominal + TARGETS


def test_exporter_exits_cleanly(load_run: LoadRun) -> None:
    assert load_run.exit_code == 0


def test_exporter_logs_no_traceback(load_run: LoadRun) -> None:
    assert [line for line in load_run.log if "Traceback" in line] == []


# --- connection limit ------------------------------------------------------------------------

MAX_CONNECTIONS = 8
EXTRA_CONNECTIONS = 12


@dataclass
class CapRun:
    """What the connection limit run measured."""

    threads_at_rest: int
    threads_full: int = 0
    """Threads while ``MAX_CONNECTIONS`` idle connections are open."""
    threads_after_rejections: int = 0
    rejections: list[bytes] = field(default_factory=list)
    """What each connection beyond the limit received before the server closed it."""
    scrape_while_full: int = 0
    threads_after_close: int = 0
    scrape_after_close: int = 0
    log: list[str] = field(default_factory=list)


def read_to_end(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def wait_for_threads(exporter: BoundsExporter, expected: int) -> int:
    """Wait until the exporter has ``expected`` threads and return the count then."""
    deadline = time.monotonic() + WAIT_SECONDS
    while (threads := exporter.usage().threads) != expected:
        if time.monotonic() > deadline:
            return threads
        time.sleep(0.02)
    return threads


@pytest.fixture(scope="module")
def cap_run(tmp_path_factory: pytest.TempPathFactory) -> CapRun:
    """Serve with a limit of ``MAX_CONNECTIONS``, open that many idle connections and more,
    then close them. The exporter only follows an empty log file, so no probe threads come
    and go while threads are counted."""
    directory = tmp_path_factory.mktemp("cap")
    log_file = directory / "mail.log"
    log_file.write_text("", encoding="utf-8")
    config = directory / "exporter.toml"
    config.write_text(
        f'[exporter]\njobs = []\nlog_files = ["{log_file}"]\nmax_connections = {MAX_CONNECTIONS}\n',
        encoding="utf-8",
    )
    exporter = BoundsExporter(config)
    host, port = exporter.url.removeprefix("http://").rsplit(":", 1)
    idle: list[socket.socket] = []
    try:
        run = CapRun(threads_at_rest=quiet_usage(exporter).threads)

        # Each idle connection keeps a handler thread waiting for a request line.
        for _ in range(MAX_CONNECTIONS):
            idle.append(socket.create_connection((host, int(port)), timeout=10))
        run.threads_full = wait_for_threads(exporter, run.threads_at_rest + MAX_CONNECTIONS)
        for _ in range(EXTRA_CONNECTIONS):
            with socket.create_connection((host, int(port)), timeout=10) as extra:
                run.rejections.append(read_to_end(extra))
        run.threads_after_rejections = exporter.usage().threads
        run.scrape_while_full = get(exporter.url + "/metrics")[0]

        for connection in idle:
            connection.close()
        idle.clear()
        run.threads_after_close = wait_for_threads(exporter, run.threads_at_rest)
        run.scrape_after_close = get(exporter.url + "/metrics")[0]
    finally:
        for connection in idle:
            connection.close()
        exporter.finish()
    run.log = exporter.lines
    return run


def test_idle_connections_hold_one_thread_each(cap_run: CapRun) -> None:
    assert cap_run.threads_full == cap_run.threads_at_rest + MAX_CONNECTIONS


def test_connections_beyond_limit_get_503(cap_run: CapRun) -> None:
    statuses = [response.split(b"\r\n", 1)[0] for response in cap_run.rejections]
    assert statuses == [b"HTTP/1.0 503 Service Unavailable"] * EXTRA_CONNECTIONS


def test_connections_beyond_limit_start_no_thread(cap_run: CapRun) -> None:
    assert cap_run.threads_after_rejections == cap_run.threads_at_rest + MAX_CONNECTIONS


def test_scrape_at_limit_gets_503(cap_run: CapRun) -> None:
    assert cap_run.scrape_while_full == 503


def test_threads_freed_when_connections_close(cap_run: CapRun) -> None:
    assert cap_run.threads_after_close == cap_run.threads_at_rest


def test_scrape_works_after_connections_close(cap_run: CapRun) -> None:
    assert cap_run.scrape_after_close == 200


def test_rejections_logged_once(cap_run: CapRun) -> None:
    # One line for the first rejection; the other 12 fall within the same minute.
    lines = [line for line in cap_run.log if "rejected a connection" in line]
    assert len(lines) == 1


# --- idle clients against a low limit on open files ------------------------------------------

LOW_FILE_LIMIT = 64
"""Soft and hard RLIMIT_NOFILE of the exporter in these runs."""
CONFIGURED_CONNECTIONS = 200
"""``max_connections`` of these runs, far more than ``LOW_FILE_LIMIT`` descriptors hold."""
IDLE_CLIENTS = 65
"""Idle connections the test opens: more than ``LOW_FILE_LIMIT`` descriptors."""
HOLD_SECONDS = 3.0
"""Seconds the idle connections stay open while the exporter's CPU time is measured."""
MAX_CPU_SHARE = 0.2
"""CPU time the exporter may use while the idle connections stay open, as a share of
``HOLD_SECONDS``. An accept loop that retries at once uses a whole core, a share of 1."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class LowLimitRun:
    """What a run with idle clients against ``LOW_FILE_LIMIT`` measured."""

    cpu_ticks: int = 0
    """CPU time of the exporter during ``HOLD_SECONDS`` with the idle connections open."""
    served: int = 0
    """Connections the exporter served, from its start warning; 0 without that warning."""
    rejections: list[bytes] = field(default_factory=list)
    """What each idle connection received by the end of the hold: b"" while in service."""
    scrape_after_close: int = 0
    log: list[str] = field(default_factory=list)


def limit_open_files() -> None:
    """Lower the soft and hard RLIMIT_NOFILE of the child to ``LOW_FILE_LIMIT``."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_FILE_LIMIT, LOW_FILE_LIMIT))


def write_log_only_config(directory: Path) -> Path:
    """Write a configuration that only follows an empty log file, with
    ``CONFIGURED_CONNECTIONS``."""
    log_file = directory / "mail.log"
    log_file.write_text("", encoding="utf-8")
    config = directory / "exporter.toml"
    config.write_text(
        f'[exporter]\njobs = []\nlog_files = ["{log_file}"]\n'
        f"max_connections = {CONFIGURED_CONNECTIONS}\n",
        encoding="utf-8",
    )
    return config


def hold_idle_clients(exporter: BoundsExporter, run: LowLimitRun) -> None:
    """Open ``IDLE_CLIENTS`` connections that send nothing, measure the exporter's CPU time
    for ``HOLD_SECONDS``, record what each connection received, and close them all."""
    host, port = exporter.url.removeprefix("http://").rsplit(":", 1)
    clients: list[socket.socket] = []
    try:
        for _ in range(IDLE_CLIENTS):
            clients.append(socket.create_connection((host, int(port)), timeout=10))
        before = exporter.cpu_ticks()
        time.sleep(HOLD_SECONDS)
        run.cpu_ticks = exporter.cpu_ticks() - before
        for client in clients:
            client.setblocking(False)
            try:
                run.rejections.append(client.recv(65536))
            except BlockingIOError:
                run.rejections.append(b"")
    finally:
        for client in clients:
            client.close()


def scrape_when_free(exporter: BoundsExporter) -> int:
    """Scrape /metrics until the exporter returns 200, as it does once the idle connections'
    handlers have ended, and return the last status."""
    deadline = time.monotonic() + WAIT_SECONDS
    status = 0
    while status != 200 and time.monotonic() < deadline:
        try:
            status = get(exporter.url + "/metrics")[0]
        except OSError:
            status = 0
            time.sleep(0.2)
    return status


@pytest.fixture(scope="module")
def low_limit_run(tmp_path_factory: pytest.TempPathFactory) -> LowLimitRun:
    """Start the exporter with RLIMIT_NOFILE at ``LOW_FILE_LIMIT`` and ``max_connections``
    above it, then open ``IDLE_CLIENTS`` idle connections."""
    config = write_log_only_config(tmp_path_factory.mktemp("low-limit"))
    exporter = BoundsExporter(config, preexec_fn=limit_open_files)
    run = LowLimitRun()
    try:
        served = re.search(r"serves at most (\d+) connections", "\n".join(exporter.lines))
        run.served = int(served.group(1)) if served else 0
        hold_idle_clients(exporter, run)
        run.scrape_after_close = scrape_when_free(exporter)
    finally:
        exporter.finish()
    run.log = exporter.lines
    return run


def test_low_limit_warned_at_start(low_limit_run: LowLimitRun) -> None:
    assert 0 < low_limit_run.served < LOW_FILE_LIMIT


def test_low_limit_warning_names_limit(low_limit_run: LowLimitRun) -> None:
    lines = [line for line in low_limit_run.log if "serves at most" in line]
    assert f"RLIMIT_NOFILE) is {LOW_FILE_LIMIT}, hard limit {LOW_FILE_LIMIT}" in lines[0]


def test_low_limit_connections_beyond_served_get_503(low_limit_run: LowLimitRun) -> None:
    statuses = [response.split(b"\r\n", 1)[0] for response in low_limit_run.rejections]
    served = low_limit_run.served
    assert statuses == [b""] * served + [b"HTTP/1.0 503 Service Unavailable"] * (
        IDLE_CLIENTS - served
    )


def test_low_limit_idle_clients_use_little_cpu(low_limit_run: LowLimitRun) -> None:
    assert low_limit_run.cpu_ticks < MAX_CPU_SHARE * HOLD_SECONDS * CLOCK_TICKS


def test_low_limit_scrape_works_after_close(low_limit_run: LowLimitRun) -> None:
    assert low_limit_run.scrape_after_close == 200


def test_low_limit_rejections_counted_at_stop(low_limit_run: LowLimitRun) -> None:
    # One line for the first rejection, and one with the count of the others at stop.
    lines = [line for line in low_limit_run.log if "rejected" in line]
    expected = IDLE_CLIENTS - low_limit_run.served - 1
    assert len(lines) == 2
    assert f"rejected {expected} more connections in the last" in lines[1]


@pytest.fixture(scope="module")
def exhausted_run(tmp_path_factory: pytest.TempPathFactory) -> LowLimitRun:
    """Start the exporter with the test's limit, lower its soft limit to ``LOW_FILE_LIMIT``
    once it listens, then open ``IDLE_CLIENTS`` idle connections: more than its descriptors
    hold, so that accept() fails with EMFILE."""
    config = write_log_only_config(tmp_path_factory.mktemp("exhausted"))
    exporter = BoundsExporter(config)
    run = LowLimitRun()
    try:
        _, hard = resource.prlimit(exporter.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(exporter.pid, resource.RLIMIT_NOFILE, (LOW_FILE_LIMIT, hard))
        hold_idle_clients(exporter, run)
        run.scrape_after_close = scrape_when_free(exporter)
    finally:
        exporter.finish()
    run.log = exporter.lines
    return run


def test_exhausted_idle_clients_use_little_cpu(exhausted_run: LowLimitRun) -> None:
    assert exhausted_run.cpu_ticks < MAX_CPU_SHARE * HOLD_SECONDS * CLOCK_TICKS


def test_exhausted_accept_failure_logged(exhausted_run: LowLimitRun) -> None:
    lines = [line for line in exhausted_run.log if "accepting a connection failed (" in line]
    assert len(lines) == 1
    assert f"limit on open files (RLIMIT_NOFILE) of {LOW_FILE_LIMIT}," in lines[0]


def test_exhausted_accept_failures_counted_at_stop(exhausted_run: LowLimitRun) -> None:
    lines = [line for line in exhausted_run.log if "accepting a connection failed " in line]
    assert re.search(r"failed \d+ more times in the last \d+ s: Too many open files", lines[-1])


def test_exhausted_idle_clients_get_no_503(exhausted_run: LowLimitRun) -> None:
    # The idle connections that could not be accepted waited in the backlog; none was rejected.
    assert set(exhausted_run.rejections) == {b""}


def test_exhausted_scrape_works_after_close(exhausted_run: LowLimitRun) -> None:
    assert exhausted_run.scrape_after_close == 200
