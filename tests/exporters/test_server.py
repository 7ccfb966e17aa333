"""Exporter HTTP endpoints over real loopback sockets: routes, probes, basic auth and TLS."""

from __future__ import annotations

import base64
import errno
import gzip
import logging
import os
import resource
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import CollectorRegistry

from exporters.cache import CachedResult, ResultCache
from exporters.collector import ExporterStatus, SmtpdiagCollector
from exporters.landing import format_age, render_landing
from exporters.server import (
    ACCEPT_PAUSE_SECONDS,
    ConnectionLimit,
    ExporterApp,
    ExporterServer,
    ProbeBusyError,
    ProbeGate,
    _QuietHandler,
    _RejectionLog,
    _ThreadingServer,
    check_basic_auth,
    make_ssl_context,
)
from exporters.settings import (
    DEFAULT_INTERVALS,
    ExporterConfig,
    ExporterTarget,
    WebSettings,
    parse_listen,
)
from smtpdiag import __version__
from smtpdiag.context import Settings, Target, TlsMode
from smtpdiag.errors import ConfigError
from smtpdiag.lab.certs import write_certificates
from smtpdiag.models import CheckResult, Finding, Report, Severity, Status
from smtpdiag.secrets import Secret

CHECK_IDS = ("dns", "connect", "tls", "token", "scope", "auth", "clock")
WEB_PASSWORD = "correct-horse-battery-staple"


def make_target(name: str = "lab", host: str = "127.0.0.1") -> ExporterTarget:
    target = Target(host=host, port=2525, tls_mode=TlsMode.STARTTLS, name=name)
    return ExporterTarget(name, target, Settings(), "generic")


def make_config(
    *targets: ExporterTarget, web: WebSettings | None = None, workers: int = 4
) -> ExporterConfig:
    return ExporterConfig(
        path="/etc/smtpdiag/exporter.toml",
        targets=targets or (make_target(),),
        jobs=("connect",),
        intervals=DEFAULT_INTERVALS,
        jitter=0.1,
        workers=workers,
        max_connections=workers + 16,
        log_files=(),
        state_file=None,
        web=web or WebSettings(listen="127.0.0.1:0"),
    )


@dataclass
class FakeScheduler:
    """Scheduler stand-in that records probes and can hold them until released."""

    is_ready: bool = False
    pending_pairs: int = 2
    calls: list[tuple[str, tuple[str, ...] | None]] = field(default_factory=list)
    deadlines: list[float | None] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    block: bool = False

    def probe(
        self, name: str, checks: Sequence[str] | None = None, deadline: float | None = None
    ) -> Report:
        self.calls.append((name, tuple(checks) if checks is not None else None))
        self.deadlines.append(deadline)
        self.started.set()
        if self.block:
            self.release.wait(30)
        ids = checks or ("dns", "connect")
        results = tuple(CheckResult(check, Status.OK, f"{check} fine") for check in ids)
        return Report(__version__, {"name": name}, "2026-01-01T00:00:00Z", 0.1, results)

    def ready(self) -> bool:
        return self.is_ready

    def pending(self) -> int:
        return self.pending_pairs


@dataclass
class Running:
    """A started exporter server with its fakes."""

    server: ExporterServer
    scheduler: FakeScheduler
    cache: ResultCache
    app: ExporterApp

    @property
    def url(self) -> str:
        return self.server.url


def start_server(
    config: ExporterConfig,
    scheduler: FakeScheduler | None = None,
    context: ssl.SSLContext | None = None,
) -> Running:
    scheduler = scheduler or FakeScheduler()
    cache = ResultCache()
    status = ExporterStatus(config, True, time.time())
    registry = CollectorRegistry()
    registry.register(SmtpdiagCollector(cache, None, lambda: status))
    app = ExporterApp(
        status=lambda: status,
        cache=cache,
        scheduler=scheduler,
        registry=registry,
        check_ids=CHECK_IDS,
    )
    server = ExporterServer(
        app,
        config.web.listen,
        context,
        max_connections=config.max_connections,
        poll_interval=0.02,
    )
    server.start()
    return Running(server, scheduler, cache, app)


@pytest.fixture
def running() -> Iterator[Running]:
    started = start_server(make_config())
    yield started
    started.server.stop()


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: str
    headers: dict[str, str]


def fetch(
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Answer:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return Answer(
                response.status,
                response.headers.get("Content-Type", ""),
                response.read().decode("utf-8"),
                dict(response.headers),
            )
    except urllib.error.HTTPError as error:
        with error:
            return Answer(
                error.code,
                error.headers.get("Content-Type", ""),
                error.read().decode("utf-8"),
                dict(error.headers),
            )


ENDPOINTS = [
    pytest.param("/", 200, "text/html; charset=utf-8", "Target lab", id="landing"),
    pytest.param("/metrics", 200, "text/plain; version=", "smtpdiag_build_info", id="metrics"),
    pytest.param("/-/healthy", 200, "text/plain; charset=utf-8", "OK", id="healthy"),
    pytest.param("/-/ready", 503, "text/plain; charset=utf-8", "Not ready: 2", id="not-ready"),
    pytest.param(
        "/probe?target=lab", 200, "text/plain; version=", "smtpdiag_probe_success", id="probe"
    ),
    pytest.param("/nothing", 404, "text/plain; charset=utf-8", "Not found", id="unknown-path"),
]


@pytest.mark.parametrize(("path", "status", "content_type", "text"), ENDPOINTS)
def test_endpoint_status(
    running: Running, path: str, status: int, content_type: str, text: str
) -> None:
    assert fetch(running.url + path).status == status


@pytest.mark.parametrize(("path", "status", "content_type", "text"), ENDPOINTS)
def test_endpoint_content_type(
    running: Running, path: str, status: int, content_type: str, text: str
) -> None:
    assert fetch(running.url + path).content_type.startswith(content_type)


@pytest.mark.parametrize(("path", "status", "content_type", "text"), ENDPOINTS)
def test_endpoint_body(
    running: Running, path: str, status: int, content_type: str, text: str
) -> None:
    assert text in fetch(running.url + path).body


def test_ready_when_scheduler_ready(running: Running) -> None:
    running.scheduler.is_ready = True
    answer = fetch(running.url + "/-/ready")
    assert answer.status == 200
    assert answer.body == "Ready\n"


def test_metrics_text_format_for_openmetrics_request(running: Running) -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    answer = fetch(running.url + "/metrics", headers={"Accept": accept})
    assert answer.content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert "# EOF" not in answer.body


def test_metrics_gzip_when_accepted(running: Running) -> None:
    request = urllib.request.Request(running.url + "/metrics", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=10) as response:
        encoding = response.headers.get("Content-Encoding")
        body = gzip.decompress(response.read()).decode("utf-8")
    assert encoding == "gzip"
    assert "smtpdiag_build_info{" in body


def test_metrics_name_filter(running: Running) -> None:
    body = fetch(running.url + "/metrics?name[]=smtpdiag_build_info").body
    names = {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line[:1] != "#"}
    assert names == {"smtpdiag_build_info"}


def test_metrics_show_cached_result(running: Running) -> None:
    result = CheckResult("connect", Status.CRITICAL, "refused")
    running.cache.put(CachedResult("lab", "generic", result, time.time(), 60.0))
    body = fetch(running.url + "/metrics").body
    assert 'smtpdiag_check_status{check="connect",target="lab"} 2.0' in body


def test_landing_shows_cached_summary(running: Running) -> None:
    result = CheckResult("connect", Status.CRITICAL, "connection refused by 127.0.0.1:2525")
    running.cache.put(CachedResult("lab", "generic", result, time.time(), 60.0))
    assert "connection refused by 127.0.0.1:2525" in fetch(running.url + "/").body


def test_probe_runs_all_checks(running: Running) -> None:
    fetch(running.url + "/probe?target=lab")
    assert running.scheduler.calls == [("lab", None)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("check=tls,connect", ("tls", "connect"), id="comma"),
        pytest.param("check=tls&check=auth", ("tls", "auth"), id="repeated"),
        pytest.param("check=tls,tls", ("tls",), id="duplicate"),
    ],
)
def test_probe_check_selection(running: Running, query: str, expected: tuple[str, ...]) -> None:
    fetch(f"{running.url}/probe?target=lab&{query}")
    assert running.scheduler.calls == [("lab", expected)]


def test_probe_metrics_are_fresh_results(running: Running) -> None:
    body = fetch(running.url + "/probe?target=lab&check=tls").body
    assert 'smtpdiag_check_success{check="tls",target="lab"} 1.0' in body


UNKNOWN_TARGETS = [
    pytest.param("127.0.0.1:{port}", id="host-port"),
    pytest.param("http://127.0.0.1:{port}/", id="url"),
    pytest.param("lab2", id="other-name"),
    pytest.param("LAB", id="case"),
    pytest.param("%3Cscript%3E", id="markup"),
]


@pytest.mark.parametrize("name", UNKNOWN_TARGETS)
def test_probe_unknown_target_404(running: Running, name: str) -> None:
    assert fetch(f"{running.url}/probe?target={name.format(port=1)}").status == 404


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("10", 9.5, id="scrape-timeout"),
        pytest.param("1", 1.0, id="floor"),
        pytest.param("soon", None, id="not-a-number"),
        pytest.param("nan", None, id="nan"),
        pytest.param("-5", None, id="negative"),
    ],
)
def test_probe_deadline_from_scrape_timeout(
    running: Running, header: str, expected: float | None
) -> None:
    headers = {"X-Prometheus-Scrape-Timeout-Seconds": header}
    fetch(running.url + "/probe?target=lab", headers=headers)
    assert running.scheduler.deadlines == [expected]


def test_probe_without_scrape_timeout_has_no_deadline(running: Running) -> None:
    fetch(running.url + "/probe?target=lab")
    assert running.scheduler.deadlines == [None]


def test_probe_unknown_target_escaped_once(running: Running) -> None:
    body = fetch(f"{running.url}/probe?target=lab%00%1b").body
    assert "Unknown target 'lab\\x00\\x1b'" in body


def test_server_header_names_no_python(running: Running) -> None:
    server = fetch(running.url + "/-/healthy").headers.get("Server", "")
    assert server.startswith("smtpdiag-exporter")
    assert "Python" not in server


@pytest.mark.parametrize("name", UNKNOWN_TARGETS)
def test_probe_unknown_target_runs_nothing(running: Running, name: str) -> None:
    fetch(f"{running.url}/probe?target={name.format(port=1)}")
    assert running.scheduler.calls == []


@pytest.mark.parametrize("name", UNKNOWN_TARGETS)
def test_probe_unknown_target_connects_nowhere(running: Running, name: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        fetch(f"{running.url}/probe?target={name.format(port=port)}")
        listener.setblocking(False)
        # The response is complete, so a connection the request caused would be queued now.
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_probe_unknown_target_body_escaped(running: Running) -> None:
    body = fetch(f"{running.url}/probe?target=%1b%5b31m").body
    assert "\x1b" not in body


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("", id="none"),
        pytest.param("target=", id="empty"),
        pytest.param("target=lab&target=lab", id="twice"),
    ],
)
def test_probe_target_parameter_required(running: Running, query: str) -> None:
    assert fetch(f"{running.url}/probe?{query}").status == 400


@pytest.mark.parametrize(
    "checks",
    [
        pytest.param("nosuch", id="unknown"),
        pytest.param("tls,nosuch", id="one-unknown"),
        pytest.param("auth_failure_rate", id="not-offered"),
    ],
)
def test_probe_unknown_check_400(running: Running, checks: str) -> None:
    answer = fetch(f"{running.url}/probe?target=lab&check={checks}")
    assert answer.status == 400
    assert running.scheduler.calls == []


def test_probe_unknown_check_lists_valid(running: Running) -> None:
    assert (
        "Valid checks: dns, connect, tls"
        in fetch(f"{running.url}/probe?target=lab&check=nosuch").body
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", ["/", "/metrics", "/probe?target=lab", "/-/healthy"])
def test_other_methods_405(running: Running, method: str, path: str) -> None:
    answer = fetch(running.url + path, method=method)
    assert answer.status == 405
    assert answer.headers.get("Allow") == "GET, HEAD"


def test_post_probe_runs_nothing(running: Running) -> None:
    fetch(running.url + "/probe?target=lab", method="POST")
    assert running.scheduler.calls == []


@pytest.mark.parametrize("path", ["/", "/metrics", "/-/healthy"])
def test_head_has_no_body(running: Running, path: str) -> None:
    answer = fetch(running.url + path, method="HEAD")
    assert answer.status == 200
    assert answer.body == ""


def run_in_thread(url: str) -> tuple[threading.Thread, list[Answer]]:
    answers: list[Answer] = []
    thread = threading.Thread(target=lambda: answers.append(fetch(url)))
    thread.start()
    return thread, answers


def test_concurrent_probes_share_one_run() -> None:
    scheduler = FakeScheduler(block=True)
    started = start_server(make_config(), scheduler)
    try:
        first, first_answers = run_in_thread(started.url + "/probe?target=lab")
        assert scheduler.started.wait(10)
        second, second_answers = run_in_thread(started.url + "/probe?target=lab")
        wait_for(lambda: started.app.probe_gate.waiters(("lab", ())) == 1)
        scheduler.release.set()
        first.join(10)
        second.join(10)
    finally:
        started.server.stop()
    assert len(scheduler.calls) == 1
    assert first_answers[0].status == 200
    assert second_answers[0].status == 200


def test_probe_limit_503() -> None:
    scheduler = FakeScheduler(block=True)
    started = start_server(make_config(workers=1), scheduler)
    try:
        first, _ = run_in_thread(started.url + "/probe?target=lab")
        assert scheduler.started.wait(10)
        answer = fetch(started.url + "/probe?target=lab&check=tls")
        scheduler.release.set()
        first.join(10)
    finally:
        started.server.stop()
    assert answer.status == 503
    assert len(scheduler.calls) == 1


def wait_for(condition: object, seconds: float = 10.0) -> None:
    """Poll ``condition`` until it is true; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail("condition not reached")
        time.sleep(0.01)


def test_probe_gate_limit_raises() -> None:
    gate = ProbeGate(limit=1)
    release = threading.Event()
    thread = threading.Thread(target=lambda: gate.run("a", lambda: release.wait(10)))
    thread.start()
    wait_for(lambda: gate.in_flight() == 1)
    try:
        with pytest.raises(ProbeBusyError):
            gate.run("b", lambda: True)
    finally:
        release.set()
        thread.join(10)


def test_probe_gate_free_after_run() -> None:
    gate = ProbeGate(limit=1)
    gate.run("a", lambda: 1)
    assert gate.run("b", lambda: 2) == 2


def test_probe_gate_error_reaches_leader() -> None:
    gate = ProbeGate(limit=1)

    def fail() -> None:
        raise KeyError("lab")

    with pytest.raises(KeyError):
        gate.run("a", fail)


def test_probe_gate_waiter_times_out() -> None:
    gate = ProbeGate(limit=2, wait_seconds=0.05)
    release = threading.Event()
    thread = threading.Thread(target=lambda: gate.run("a", lambda: release.wait(10)))
    thread.start()
    wait_for(lambda: gate.in_flight() == 1)
    try:
        with pytest.raises(ProbeBusyError):
            gate.run("a", lambda: True)
    finally:
        release.set()
        thread.join(10)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def protected() -> Iterator[Running]:
    web = WebSettings(
        listen="127.0.0.1:0",
        basic_auth_user="prometheus",
        basic_auth_password=Secret(WEB_PASSWORD, "test"),
    )
    started = start_server(make_config(web=web))
    yield started
    started.server.stop()


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        pytest.param("/metrics", {}, 401, id="metrics-no-credentials"),
        pytest.param("/metrics", basic("prometheus", "wrong"), 401, id="metrics-wrong-password"),
        pytest.param("/metrics", basic("admin", WEB_PASSWORD), 401, id="metrics-wrong-user"),
        pytest.param("/metrics", basic("prometheus", WEB_PASSWORD), 200, id="metrics-valid"),
        pytest.param("/", {}, 401, id="landing-no-credentials"),
        pytest.param("/probe?target=lab", {}, 401, id="probe-no-credentials"),
        pytest.param("/-/ready", {}, 401, id="ready-no-credentials"),
        pytest.param("/-/healthy", {}, 200, id="healthy-open"),
        pytest.param("/nowhere", {}, 401, id="unknown-path-no-credentials"),
        pytest.param("/nowhere", basic("prometheus", WEB_PASSWORD), 404, id="unknown-path-valid"),
    ],
)
def test_basic_auth_status(
    protected: Running, path: str, headers: dict[str, str], status: int
) -> None:
    assert fetch(protected.url + path, headers=headers).status == status


def test_basic_auth_challenge(protected: Running) -> None:
    answer = fetch(protected.url + "/metrics")
    assert answer.headers.get("WWW-Authenticate", "").startswith("Basic realm=")


def test_basic_auth_probe_not_run_unauthorized(protected: Running) -> None:
    fetch(protected.url + "/probe?target=lab")
    assert protected.scheduler.calls == []


def test_basic_auth_password_never_logged(
    protected: Running, caplog: pytest.LogCaptureFixture
) -> None:
    header = basic("prometheus", WEB_PASSWORD)
    with caplog.at_level(logging.DEBUG):
        fetch(protected.url + "/metrics", headers=header)
        fetch(protected.url + "/metrics", headers=basic("prometheus", WEB_PASSWORD + "x"))
        fetch(protected.url + "/probe?target=lab", headers=header)
    text = caplog.text
    encoded = header["Authorization"].split()[1]
    assert WEB_PASSWORD not in text
    assert encoded not in text


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("Bearer abc", id="other-scheme"),
        pytest.param("Basic !!!!", id="invalid-base64"),
        pytest.param("Basic " + base64.b64encode(b"prometheus").decode(), id="no-colon"),
        pytest.param(
            "Basic " + base64.b64encode(b":" + WEB_PASSWORD.encode()).decode(), id="no-user"
        ),
    ],
)
def test_check_basic_auth_rejects(header: str | None) -> None:
    web = WebSettings(basic_auth_user="prometheus", basic_auth_password=Secret(WEB_PASSWORD, "t"))
    assert check_basic_auth(header, web) is False


def test_check_basic_auth_accepts_lowercase_scheme() -> None:
    web = WebSettings(basic_auth_user="prometheus", basic_auth_password=Secret(WEB_PASSWORD, "t"))
    token = base64.b64encode(f"prometheus:{WEB_PASSWORD}".encode()).decode()
    assert check_basic_auth(f"basic {token}", web) is True


def test_check_basic_auth_open_without_user() -> None:
    assert check_basic_auth(None, WebSettings()) is True


def test_server_address_reports_bound_port(running: Running) -> None:
    host, port = running.server.address.rsplit(":", 1)
    assert host == "127.0.0.1"
    assert int(port) > 0


def test_server_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support")
    try:
        started = start_server(make_config(web=WebSettings(listen="[::1]:0")))
    except OSError as error:
        pytest.skip(f"cannot bind ::1: {error}")
    try:
        answer = fetch(started.url + "/-/healthy")
    finally:
        started.server.stop()
    assert started.server.address.startswith("[::1]:")
    assert answer.status == 200


def test_idle_connection_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_QuietHandler, "timeout", 0.05)
    started = start_server(make_config())
    try:
        host, port = parse_listen(started.server.address)
        with socket.create_connection((host, port), timeout=10) as client:
            # The client sends nothing; the server's timeout closes the connection.
            assert client.recv(1) == b""
    finally:
        started.server.stop()


@dataclass(frozen=True)
class ClientFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def write_client_certificate(directory: Path) -> ClientFiles:
    """Write a client CA and a client certificate (extended key usage clientAuth) it signs."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test client CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    client = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prometheus")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    files = ClientFiles(
        directory / "client-ca.pem", directory / "client.pem", directory / "client.key"
    )
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def tls_config(directory: Path, client_ca: Path | None = None) -> tuple[ExporterConfig, Path]:
    certificates = write_certificates(directory)
    web = WebSettings(
        listen="127.0.0.1:0",
        tls_cert_file=str(certificates.chain_file),
        tls_key_file=str(certificates.key_file),
        tls_client_ca_file=str(client_ca) if client_ca else None,
    )
    return make_config(web=web), certificates.ca_file


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[Running, ssl.SSLContext]]:
    config, ca_file = tls_config(tmp_path)
    started = start_server(config, context=make_ssl_context(config))
    yield started, ssl.create_default_context(cafile=str(ca_file))
    started.server.stop()


def test_tls_url_scheme(https: tuple[Running, ssl.SSLContext]) -> None:
    running, _ = https
    assert running.url.startswith("https://127.0.0.1:")


def test_tls_metrics_served(https: tuple[Running, ssl.SSLContext]) -> None:
    running, client = https
    assert fetch(running.url + "/metrics", context=client).status == 200


def test_tls_plain_http_rejected(https: tuple[Running, ssl.SSLContext]) -> None:
    running, _ = https
    with pytest.raises(OSError):
        fetch(running.url.replace("https://", "http://") + "/metrics")


def test_tls_minimum_version_1_2(tmp_path: Path) -> None:
    config, _ = tls_config(tmp_path)
    context = make_ssl_context(config)
    assert context is not None
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


@pytest.fixture
def mutual_tls(tmp_path: Path) -> Iterator[tuple[Running, ssl.SSLContext, ClientFiles]]:
    client_files = write_client_certificate(tmp_path)
    config, ca_file = tls_config(tmp_path, client_files.ca_file)
    started = start_server(config, context=make_ssl_context(config))
    yield started, ssl.create_default_context(cafile=str(ca_file)), client_files
    started.server.stop()


def test_client_certificate_accepted(
    mutual_tls: tuple[Running, ssl.SSLContext, ClientFiles],
) -> None:
    running, client, files = mutual_tls
    client.load_cert_chain(str(files.cert_file), str(files.key_file))
    assert fetch(running.url + "/metrics", context=client).status == 200


def test_missing_client_certificate_rejected(
    mutual_tls: tuple[Running, ssl.SSLContext, ClientFiles],
) -> None:
    running, client, _ = mutual_tls
    with pytest.raises(OSError):
        fetch(running.url + "/metrics", context=client)


def test_foreign_client_certificate_rejected(
    mutual_tls: tuple[Running, ssl.SSLContext, ClientFiles], tmp_path: Path
) -> None:
    running, client, _ = mutual_tls
    other_directory = tmp_path / "other"
    other_directory.mkdir()
    other = write_client_certificate(other_directory)
    client.load_cert_chain(str(other.cert_file), str(other.key_file))
    with pytest.raises(OSError):
        fetch(running.url + "/metrics", context=client)


def test_ssl_context_none_without_certificate() -> None:
    assert make_ssl_context(make_config()) is None


def test_ssl_context_bad_key_names_file(tmp_path: Path) -> None:
    config, _ = tls_config(tmp_path)
    broken = tmp_path / "broken-key.pem"
    broken.write_text("not a key\n")
    config = replace(config, web=replace(config.web, tls_key_file=str(broken)))
    with pytest.raises(ConfigError, match=r"broken-key\.pem"):
        make_ssl_context(config)


def test_ssl_context_bad_client_ca_names_file(tmp_path: Path) -> None:
    config, _ = tls_config(tmp_path)
    broken = tmp_path / "broken-ca.pem"
    broken.write_text("not a certificate\n")
    config = replace(config, web=replace(config.web, tls_client_ca_file=str(broken)))
    with pytest.raises(ConfigError, match=r"broken-ca\.pem"):
        make_ssl_context(config)


def test_landing_escapes_values() -> None:
    target = make_target("<script>alert(1)</script>")
    result = CheckResult("tls", Status.WARNING, "server said <b>hi</b> & bye")
    cached = [CachedResult(target.name, "generic", result, 100.0, 60.0)]
    page = render_landing(make_config(target), cached, version="1.0", now=130.0)
    assert "<script>" not in page
    assert "<b>hi</b>" not in page
    assert "&lt;b&gt;hi&lt;/b&gt; &amp; bye" in page


def test_landing_probe_link_quoted() -> None:
    target = make_target("a&b c")
    page = render_landing(make_config(target), [], version="1.0", now=0.0)
    assert 'href="probe?target=a%26b%20c"' in page


def test_landing_masks_secret() -> None:
    secret = Secret("landing-canary-token-0123456789", "test")
    result = CheckResult("token", Status.CRITICAL, f"server rejected {secret.reveal()}")
    cached = [CachedResult("lab", "generic", result, 100.0, 60.0)]
    page = render_landing(make_config(), cached, version="1.0", now=100.0)
    assert secret.reveal() not in page


def test_landing_lists_checks_in_run_order() -> None:
    cached = [
        CachedResult("lab", "generic", CheckResult(check, Status.OK, f"{check} summary"), 1.0, 60.0)
        for check in ("auth", "tls", "connect", "dns")
    ]
    page = render_landing(make_config(), cached, version="1.0", now=2.0)
    positions = [page.index(f"{check} summary") for check in ("dns", "connect", "tls", "auth")]
    assert positions == sorted(positions)


def test_landing_shows_warning_codes_only() -> None:
    findings = (
        Finding("scope.unverifiable", Severity.INFO, "t", "c", "f"),
        Finding(
            "auth.token_rejected", Severity.CRITICAL, "t", "c", "f", evidence=("535 5.7.8 no",)
        ),
    )
    result = CheckResult("auth", Status.CRITICAL, "rejected", findings)
    page = render_landing(
        make_config(), [CachedResult("lab", "generic", result, 1.0, 60.0)], version="1.0", now=2.0
    )
    assert "auth.token_rejected" in page
    assert "scope.unverifiable" not in page
    assert "535 5.7.8 no" not in page


def test_landing_reload_failure_notice() -> None:
    page = render_landing(make_config(), [], version="1.0", now=0.0, reload_success=False)
    assert "last reload of the configuration failed" in page


def test_landing_no_result_yet() -> None:
    page = render_landing(make_config(), [], version="1.0", now=0.0)
    assert "no result yet" in page


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        pytest.param(-3.0, "0 s ago", id="clock-step-back"),
        pytest.param(42.4, "42 s ago", id="seconds"),
        pytest.param(300.0, "5 min ago", id="minutes"),
        pytest.param(3 * 3600.0, "3 h ago", id="hours"),
    ],
)
def test_format_age(seconds: float, expected: str) -> None:
    assert format_age(seconds) == expected


def test_rejected_probes_logged_once_per_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = [1000.0]
    log = _RejectionLog(lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="exporters.server"):
        for _ in range(50):
            log.report("lab", "too many probes")
        clock[0] += 61.0
        log.report("lab", "too many probes")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "probe of target lab rejected: too many probes",
        "probe of target lab: 49 more rejected in the last 61 s",
    ]


def test_rejected_probes_counted_when_minute_ends(caplog: pytest.LogCaptureFixture) -> None:
    clock = [1000.0]
    log = _RejectionLog(lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="exporters.server"):
        for _ in range(20):
            log.report("lab", "too many probes")
        clock[0] += 60.5
        log.flush()
    lines = [record.getMessage() for record in caplog.records]
    assert lines[1:] == ["probe of target lab: 19 more rejected in the last 60 s"]


def test_rejected_probes_counted_at_stop(caplog: pytest.LogCaptureFixture) -> None:
    clock = [1000.0]
    log = _RejectionLog(lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="exporters.server"):
        for _ in range(20):
            log.report("lab", "too many probes")
        clock[0] += 5.0
        log.flush(final=True)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[1:] == ["probe of target lab: 19 more rejected in the last 5 s"]


def test_probe_rejection_count_flushed_by_app(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = FakeScheduler(block=True)
    started = start_server(make_config(workers=1), scheduler)
    try:
        first, _ = run_in_thread(started.url + "/probe?target=lab")
        assert scheduler.started.wait(10)
        with caplog.at_level(logging.WARNING, logger="exporters.server"):
            statuses = [fetch(started.url + "/probe?target=lab&check=tls").status for _ in range(3)]
            started.app.flush_logs(final=True)
        scheduler.release.set()
        first.join(10)
    finally:
        started.server.stop()
    lines = [record.getMessage() for record in caplog.records]
    assert statuses == [503, 503, 503]
    assert lines[1:] == ["probe of target lab: 2 more rejected in the last 0 s"]


# --- connection limit ------------------------------------------------------------------------


def open_idle(server: ExporterServer, count: int) -> list[socket.socket]:
    """Open ``count`` connections that send nothing, and wait until the server serves them."""
    host, port = parse_listen(server.address)
    clients = [socket.create_connection((host, port), timeout=10) for _ in range(count)]
    wait_for(lambda: server.connections() == count)
    return clients


def raw_get(server: ExporterServer, path: str = "/metrics") -> bytes:
    """Send a GET request over a new connection and return every byte until the server closes."""
    host, port = parse_listen(server.address)
    with socket.create_connection((host, port), timeout=10) as client:
        client.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def limited() -> Iterator[Running]:
    started = start_server(replace(make_config(), max_connections=2))
    yield started
    started.server.stop()


def test_connection_beyond_limit_gets_503(limited: Running) -> None:
    clients = open_idle(limited.server, 2)
    try:
        response = raw_get(limited.server)
    finally:
        for client in clients:
            client.close()
    assert response.startswith(b"HTTP/1.0 503 Service Unavailable\r\n")
    assert response.endswith(b"\r\n\r\nToo many connections to the exporter; retry later.\n")


def test_connection_beyond_limit_starts_no_thread(limited: Running) -> None:
    clients = open_idle(limited.server, 2)
    try:
        threads = threading.active_count()
        raw_get(limited.server)
        after = threading.active_count()
        served = limited.server.connections()
    finally:
        for client in clients:
            client.close()
    assert after == threads
    assert served == 2


def test_connection_limit_frees_closed_connections(limited: Running) -> None:
    for client in open_idle(limited.server, 2):
        client.close()
    wait_for(lambda: limited.server.connections() == 0)
    assert fetch(limited.url + "/metrics").status == 200


def test_connection_limit_lowered_by_reload(limited: Running) -> None:
    limited.server.set_max_connections(1)
    clients = open_idle(limited.server, 1)
    try:
        response = raw_get(limited.server)
    finally:
        for client in clients:
            client.close()
    assert response.startswith(b"HTTP/1.0 503 ")


def test_connection_limit_counts_in_service() -> None:
    limit = ConnectionLimit(2)
    acquired = [limit.acquire() for _ in range(3)]
    limit.release()
    assert acquired == [True, True, False]
    assert limit.active() == 1
    assert limit.acquire()


def test_rejected_connections_logged_once_per_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = [1000.0]
    limit = ConnectionLimit(8, lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="exporters.server"):
        for _ in range(30):
            limit.report_rejection(("127.0.0.1", 50000))
        clock[0] += 61.0
        limit.report_rejection(("127.0.0.1", 50001))
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "rejected a connection from 127.0.0.1: 8 connections are in service, the limit set "
        "by [exporter] max_connections; raise it if scrapes and probes need more, or block a "
        "client that keeps connections open",
        "rejected 29 more connections in the last 61 s at the limit of 8 connections in service",
    ]


def test_rejected_connections_counted_at_stop(
    limited: Running, caplog: pytest.LogCaptureFixture
) -> None:
    clients = open_idle(limited.server, 2)
    try:
        with caplog.at_level(logging.WARNING, logger="exporters.server"):
            responses = [raw_get(limited.server) for _ in range(4)]
            limited.server.stop()
    finally:
        for client in clients:
            client.close()
    lines = [record.getMessage() for record in caplog.records]
    assert [response[:12] for response in responses] == [b"HTTP/1.0 503"] * 4
    assert lines[0].startswith("rejected a connection from 127.0.0.1: 2 connections ")
    assert lines[1:] == [
        "rejected 3 more connections in the last 0 s at the limit of 2 connections in service"
    ]


def test_tls_connection_beyond_limit_closed(tmp_path: Path) -> None:
    config, ca_file = tls_config(tmp_path)
    started = start_server(replace(config, max_connections=1), context=make_ssl_context(config))
    client = ssl.create_default_context(cafile=str(ca_file))
    try:
        # The idle connection's thread waits for a TLS handshake that never comes.
        idle = open_idle(started.server, 1)
        with pytest.raises(OSError):
            fetch(started.url + "/metrics", context=client)
        idle[0].close()
        wait_for(lambda: started.server.connections() == 0)
        answer = fetch(started.url + "/metrics", context=client)
    finally:
        started.server.stop()
    assert answer.status == 200


# --- listen backlog and failed accept calls ----------------------------------------------------

BURST = 60


def test_backlog_queues_burst_of_connections(running: Running) -> None:
    # A server whose accept loop has not started leaves every connection in the backlog. Once
    # the backlog is full, the kernel drops further SYNs, and connect() times out.
    server = ExporterServer(running.app, "127.0.0.1:0", max_connections=4)
    host, port = parse_listen(server.address)
    clients: list[socket.socket] = []
    try:
        for _ in range(BURST):
            try:
                clients.append(socket.create_connection((host, port), timeout=3))
            except TimeoutError:
                break
    finally:
        for client in clients:
            client.close()
        server.stop()
    assert len(clients) == BURST


class RecordingEvent(threading.Event):
    """An Event whose ``wait`` records its timeout and returns at once."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        return self.is_set()


class FailingListener:
    """Stands in for the listening socket: each accept() raises ``error_number``."""

    def __init__(self, error_number: int) -> None:
        self.error_number = error_number

    def accept(self) -> tuple[socket.socket, object]:
        raise OSError(self.error_number, os.strerror(self.error_number))


@dataclass
class AcceptRun:
    """What failed accept calls did: the pauses the loop took and the WARNING lines."""

    pauses: list[float | None]
    lines: list[str]
    raised: list[int | None]


def fail_accept(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    running: Running,
    error_number: int,
    calls: int = 3,
) -> AcceptRun:
    """Run ``get_request`` ``calls`` times against a listener that fails, then stop the
    server, which logs the pending count."""
    httpd: _ThreadingServer = running.server._httpd
    pause = RecordingEvent()
    raised: list[int | None] = []
    monkeypatch.setattr(httpd, "stopping", pause)
    listener = httpd.socket
    httpd.socket = FailingListener(error_number)  # type: ignore[assignment]
    try:
        with caplog.at_level(logging.WARNING, logger="exporters.server"):
            for _ in range(calls):
                with pytest.raises(OSError) as failure:
                    httpd.get_request()
                raised.append(failure.value.errno)
            httpd.socket = listener
            running.server.stop()
    finally:
        httpd.socket = listener
    lines = [record.getMessage() for record in caplog.records]
    return AcceptRun(pause.timeouts, lines, raised)


def test_accept_emfile_pauses(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, running: Running
) -> None:
    run = fail_accept(monkeypatch, caplog, running, errno.EMFILE)
    assert run.pauses == [ACCEPT_PAUSE_SECONDS] * 3


def test_accept_emfile_error_raised_to_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, running: Running
) -> None:
    run = fail_accept(monkeypatch, caplog, running, errno.EMFILE)
    assert run.raised == [errno.EMFILE] * 3


def test_accept_emfile_logged_with_limit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, running: Running
) -> None:
    run = fail_accept(monkeypatch, caplog, running, errno.EMFILE)
    soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert run.lines[0] == (
        "accepting a connection failed (Too many open files) because the process reached its "
        f"limit on open files (RLIMIT_NOFILE) of {soft_limit}, with 0 connections in service. "
        "New connections wait in the listen backlog, and accepting pauses 0.1 s after each "
        "failure. Raise the limit (LimitNOFILE= in the systemd unit, ulimit -n in a shell), or "
        "lower [exporter] max_connections."
    )


def test_accept_emfile_repeats_counted_at_stop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, running: Running
) -> None:
    run = fail_accept(monkeypatch, caplog, running, errno.EMFILE)
    assert run.lines[1:] == [
        "accepting a connection failed 2 more times in the last 0 s: Too many open files"
    ]


def test_accept_enfile_names_system_limit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, running: Running
) -> None:
    run = fail_accept(monkeypatch, caplog, running, errno.ENFILE, calls=1)
    assert "because the system reached its limit on open files," in run.lines[0]
    assert run.lines[0].endswith(
        "Raise the sysctl fs.file-max, or stop the process that holds the files."
    )


@pytest.mark.parametrize("error_number", [errno.ECONNABORTED, errno.EPROTO])
def test_accept_other_error_neither_pauses_nor_logs(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    running: Running,
    error_number: int,
) -> None:
    run = fail_accept(monkeypatch, caplog, running, error_number)
    assert run.pauses == []
    assert run.lines == []
