"""The exporter service: reload, stop, --once, log formats, signals and the rule file output.

In-process tests run ``ExporterService`` with a target on a closed loopback port. The signal
tests run ``python -m smtpdiag exporter`` against the lab and read the bound address from
its log.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from exporter_process import ExporterProcess
from scripted_peer import unused_port
from system_programs import require_program

import checks
from exporters.descriptors import DescriptorLimit
from exporters.service import ExporterService, _warn_if_open, run_exporter
from exporters.settings import WebSettings
from smtpdiag.errors import UsageError
from smtpdiag.lab.runner import LabInfo, start_lab
from smtpdiag.lab.scenarios import get_scenario
from smtpdiag.secrets import Secret
from smtpdiag.spec import CheckSpec

SPECS: tuple[CheckSpec, ...] = tuple(
    spec for spec in checks.REGISTRY if spec.id != "auth_failure_rate"
)

MSMTP_SUCCESS = (
    "Dec 05 00:39:28 host=127.0.0.1 tls=on auth=on user=lab.user@example.com "
    "from=lab.user@example.com recipients=rcpt@example.com mailsize=147 smtpstatus=250 "
    "smtpmsg='250 2.0.0 OK' exitcode=EX_OK\n"
)


def exporter_table(
    log_file: Path | None = None, state_file: Path | None = None, listen: str | None = None
) -> str:
    lines = ["[exporter]", 'jobs = ["connect"]', "workers = 2"]
    if listen is not None:
        lines.append(f'listen = "{listen}"')
    if log_file is not None:
        lines.append(f'log_files = ["{log_file}"]')
    if state_file is not None:
        lines.append(f'state_file = "{state_file}"')
    lines += ["[exporter.intervals]", "connect = 3600"]
    return "\n".join(lines) + "\n"


def closed_port_config(*names: str, extra: str = "") -> str:
    """Return a configuration whose targets point at a loopback port where no server listens."""
    port = unused_port()
    tables = [
        f'[targets.{name}]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 2\n' for name in names
    ]
    return "\n".join(tables) + "\n" + (extra or exporter_table())


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "exporter.toml"
    path.write_text(closed_port_config("first"), encoding="utf-8")
    return path


@pytest.fixture
def service(config_file: Path) -> Iterator[ExporterService]:
    started = ExporterService(str(config_file), SPECS, listen="127.0.0.1:0", tick=0.05)
    started.start()
    thread = threading.Thread(target=started.serve)
    thread.start()
    yield started
    started.request_stop()
    thread.join(30)


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode("utf-8")


def target_names(service: ExporterService) -> tuple[str, ...]:
    return tuple(target.name for target in service.status.config.targets)


def test_reload_swaps_targets(service: ExporterService, config_file: Path) -> None:
    config_file.write_text(closed_port_config("second", "third"), encoding="utf-8")
    assert service.reload() is True
    assert target_names(service) == ("second", "third")


def test_reload_shows_new_target_on_landing(service: ExporterService, config_file: Path) -> None:
    config_file.write_text(closed_port_config("second"), encoding="utf-8")
    service.reload()
    assert service.server is not None
    assert "Target second" in fetch(service.server.url + "/")[1]


def test_reload_bad_file_keeps_config(service: ExporterService, config_file: Path) -> None:
    config_file.write_text("[exporter\n", encoding="utf-8")
    assert service.reload() is False
    assert target_names(service) == ("first",)


def test_reload_bad_file_marks_failure(service: ExporterService, config_file: Path) -> None:
    config_file.write_text(
        closed_port_config("first", extra="[exporter]\nworkers = 0\n"), encoding="utf-8"
    )
    service.reload()
    assert service.status.reload_success is False


def test_reload_bad_file_one_error_naming_file(
    service: ExporterService, config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config_file.write_text(
        closed_port_config("first", extra="[exporter]\nworkers = 0\n"), encoding="utf-8"
    )
    with caplog.at_level(logging.INFO):
        service.reload()
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert str(config_file) in errors[0]
    assert "workers" in errors[0]


def test_reload_success_after_failure(service: ExporterService, config_file: Path) -> None:
    config_file.write_text("[exporter\n", encoding="utf-8")
    service.reload()
    config_file.write_text(closed_port_config("second"), encoding="utf-8")
    service.reload()
    assert service.status.reload_success is True


def test_reload_keeps_listen_override(service: ExporterService, config_file: Path) -> None:
    listen = service.status.config.web.listen
    config_file.write_text(
        closed_port_config("first", extra=exporter_table(listen="127.0.0.1:10999")),
        encoding="utf-8",
    )
    service.reload()
    assert service.status.config.web.listen == listen


def test_reload_listen_change_from_file_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config_file = tmp_path / "exporter.toml"
    port = unused_port()
    config_file.write_text(
        closed_port_config("first", extra=exporter_table(listen=f"127.0.0.1:{port}")),
        encoding="utf-8",
    )
    started = ExporterService(str(config_file), SPECS, tick=0.05)
    started.start()
    try:
        config_file.write_text(
            closed_port_config("first", extra=exporter_table(listen="127.0.0.1:10999")),
            encoding="utf-8",
        )
        with caplog.at_level(logging.INFO):
            started.reload()
    finally:
        started.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("takes effect only after a restart" in message for message in warnings)


def test_reload_starts_log_following(
    service: ExporterService, config_file: Path, tmp_path: Path
) -> None:
    log_file = tmp_path / "msmtp.log"
    log_file.write_text("", encoding="utf-8")
    config_file.write_text(
        closed_port_config("first", extra=exporter_table(log_file=log_file)), encoding="utf-8"
    )
    service.reload()
    assert service.server is not None
    body = fetch(service.server.url + "/metrics")[1]
    assert "smtpdiag_log_files_followed 1.0" in body


def test_stop_saves_follower_state(tmp_path: Path) -> None:
    log_file = tmp_path / "msmtp.log"
    log_file.write_text(MSMTP_SUCCESS, encoding="utf-8")
    state_file = tmp_path / "exporter.state"
    config_file = tmp_path / "exporter.toml"
    config_file.write_text(
        closed_port_config("first", extra=exporter_table(log_file, state_file)),
        encoding="utf-8",
    )
    started = ExporterService(str(config_file), SPECS, listen="127.0.0.1:0", tick=0.05)
    started.start()
    started.stop()
    assert str(log_file) in state_file.read_text(encoding="utf-8")


def test_stop_twice_is_harmless(config_file: Path) -> None:
    started = ExporterService(str(config_file), SPECS, listen="127.0.0.1:0")
    started.start()
    started.stop()
    started.stop()
    assert started.status.reload_success is True


def open_idle(service: ExporterService, count: int) -> list[socket.socket]:
    """Open ``count`` connections that send nothing and wait until the server serves them."""
    assert service.server is not None
    host, port = service.server.address.rsplit(":", 1)
    clients = [socket.create_connection((host, int(port)), timeout=10) for _ in range(count)]
    deadline = time.monotonic() + 10
    while service.server.connections() < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return clients


def status_line(service: ExporterService) -> bytes:
    """Connect, send a GET request for /metrics and return the response's status line."""
    assert service.server is not None
    host, port = service.server.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        return client.recv(65536).split(b"\r\n", 1)[0]


def test_stop_logs_rejected_connection_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config_file = tmp_path / "exporter.toml"
    table = exporter_table().replace("workers = 2\n", "workers = 2\nmax_connections = 1\n")
    config_file.write_text(closed_port_config("first", extra=table), encoding="utf-8")
    started = ExporterService(str(config_file), SPECS, listen="127.0.0.1:0")
    started.start()
    clients = open_idle(started, 1)
    try:
        with caplog.at_level(logging.WARNING, logger="exporters.server"):
            statuses = [status_line(started) for _ in range(3)]
            started.stop()
    finally:
        for client in clients:
            client.close()
    lines = [record.getMessage() for record in caplog.records]
    assert statuses == [b"HTTP/1.0 503 Service Unavailable"] * 3
    assert lines[-1].startswith("rejected 2 more connections in the last ")


def test_start_fits_connections_to_file_limit(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A process whose limit on open files is 64 and cannot be raised.
    def low_limit() -> DescriptorLimit:
        return DescriptorLimit(6, get_limits=lambda: (64, 64), set_soft_limit=lambda *_: None)

    monkeypatch.setattr("exporters.service.DescriptorLimit", low_limit)
    started = ExporterService(str(config_file), SPECS, listen="127.0.0.1:0")
    with caplog.at_level(logging.WARNING, logger="exporters.descriptors"):
        started.start()
    try:
        served = low_limit().fit(started.status.config)
        clients = open_idle(started, served)
        try:
            assert started.server is not None
            in_service = started.server.connections()
            status = status_line(started)
        finally:
            for client in clients:
                client.close()
    finally:
        started.stop()
    assert served < started.status.config.max_connections
    assert in_service == served
    assert status == b"HTTP/1.0 503 Service Unavailable"
    assert f"serves at most {served} connections" in caplog.records[0].getMessage()


def test_start_busy_address_is_usage_error(config_file: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        started = ExporterService(str(config_file), SPECS, listen=f"127.0.0.1:{port}")
        with pytest.raises(UsageError, match=f"127.0.0.1:{port}"):
            started.start()


def test_start_invalid_listen_is_usage_error(config_file: Path) -> None:
    started = ExporterService(str(config_file), SPECS, listen="127.0.0.1")
    with pytest.raises(UsageError) as caught:
        started.start()
    assert caught.value.value == "127.0.0.1"


def test_recovery_logged_once(service: ExporterService, caplog: pytest.LogCaptureFixture) -> None:
    from exporters.cache import CachedResult
    from smtpdiag.models import CheckResult, Status

    errors = service._errors
    with caplog.at_level(logging.INFO, logger="exporters.logformat"):
        errors.report("first", "connect", "the check failed unexpectedly")
        result = CheckResult("connect", Status.OK, "fine")
        service.cache.put(CachedResult("first", "generic", result, time.time() + 1, 60.0))
        service._note_recoveries()
        service._note_recoveries()
    recoveries = [r.getMessage() for r in caplog.records if "works again" in r.getMessage()]
    assert recoveries == ["target first, check connect works again"]


def test_critical_result_is_no_recovery(
    service: ExporterService, caplog: pytest.LogCaptureFixture
) -> None:
    from exporters.cache import CachedResult
    from smtpdiag.models import CheckResult, Status

    errors = service._errors
    with caplog.at_level(logging.INFO, logger="exporters.logformat"):
        errors.report("first", "connect", "did not finish within its deadline of 30 s")
        result = CheckResult("connect", Status.CRITICAL, "timed out")
        service.cache.put(CachedResult("first", "generic", result, time.time() + 1, 60.0))
        service._note_recoveries()
    assert "works again" not in caplog.text


@pytest.mark.parametrize(
    ("once", "textfile", "text"),
    [
        pytest.param(False, "out.prom", "--textfile needs --once", id="textfile-without-once"),
        pytest.param(True, "out.txt", "does not end in .prom", id="wrong-suffix"),
    ],
)
def test_run_exporter_textfile_usage_errors(
    config_file: Path, once: bool, textfile: str, text: str
) -> None:
    with pytest.raises(UsageError, match=text):
        run_exporter(str(config_file), SPECS, listen=None, once=once, textfile=textfile)


@pytest.fixture(scope="module")
def lab() -> Iterator[LabInfo]:
    with start_lab(get_scenario("healthy")) as info:
        yield info


def lab_config(lab: LabInfo, path: Path, extra: str = "", name: str = "lab") -> Path:
    text = lab.config_file.read_text(encoding="utf-8").replace("[targets.lab]", f"[targets.{name}]")
    path.write_text(text + "\n" + (extra or exporter_table()), encoding="utf-8")
    return path


def test_once_textfile_written(lab: LabInfo, tmp_path: Path) -> None:
    config = lab_config(lab, tmp_path / "exporter.toml")
    textfile = tmp_path / "smtpdiag.prom"
    code = run_exporter(str(config), SPECS, listen=None, once=True, textfile=str(textfile))
    assert code == 0
    assert 'smtpdiag_up{target="lab"} 1.0' in textfile.read_text()


def test_once_textfile_passes_promtool(lab: LabInfo, tmp_path: Path) -> None:
    promtool = require_program("promtool")
    log_file = tmp_path / "msmtp.log"
    log_file.write_text("", encoding="utf-8")
    config = lab_config(
        lab, tmp_path / "exporter.toml", exporter_table(log_file, tmp_path / "state")
    )
    textfile = tmp_path / "smtpdiag.prom"
    run_exporter(str(config), SPECS, listen=None, once=True, textfile=str(textfile))
    with textfile.open("rb") as stream:
        checked = subprocess.run(
            [promtool, "check", "metrics"],
            stdin=stream,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert checked.stdout + checked.stderr == b""
    assert checked.returncode == 0


def test_once_stdout(lab: LabInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = lab_config(lab, tmp_path / "exporter.toml")
    run_exporter(str(config), SPECS, listen=None, once=True, textfile=None)
    assert 'smtpdiag_check_success{check="connect",target="lab"} 1.0' in capsys.readouterr().out


def test_once_counts_accumulate_across_runs(
    lab: LabInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "msmtp.log"
    log_file.write_text(MSMTP_SUCCESS, encoding="utf-8")
    config = lab_config(
        lab, tmp_path / "exporter.toml", exporter_table(log_file, tmp_path / "state")
    )
    outputs = []
    for appended in (0, 3, 2):
        with log_file.open("a", encoding="utf-8") as stream:
            stream.write(MSMTP_SUCCESS * appended)
        run_exporter(str(config), SPECS, listen=None, once=True, textfile=None)
        outputs.append(capsys.readouterr().out)
    lines = [
        re.search(r'smtpdiag_log_lines_total\{source="msmtp"\} (\S+)', output) for output in outputs
    ]
    assert [match.group(1) if match else None for match in lines] == ["0.0", "3.0", "5.0"]


def test_once_without_state_file_leaves_out_log_counters(
    lab: LabInfo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    log_file = tmp_path / "msmtp.log"
    log_file.write_text(MSMTP_SUCCESS, encoding="utf-8")
    config = lab_config(lab, tmp_path / "exporter.toml", exporter_table(log_file))
    with caplog.at_level(logging.WARNING):
        run_exporter(str(config), SPECS, listen=None, once=True, textfile=None)
    assert "smtpdiag_log_lines_total" not in capsys.readouterr().out
    assert "need [exporter] state_file" in caplog.text


def test_once_textfile_directory_checked_first(config_file: Path, tmp_path: Path) -> None:
    textfile = tmp_path / "missing" / "smtpdiag.prom"
    with pytest.raises(UsageError) as caught:
        run_exporter(str(config_file), SPECS, listen=None, once=True, textfile=str(textfile))
    assert caught.value.value == str(textfile)


@pytest.fixture
def lab_process(lab: LabInfo, tmp_path: Path) -> Iterator[tuple[ExporterProcess, Path]]:
    log_file = tmp_path / "msmtp.log"
    log_file.write_text(MSMTP_SUCCESS, encoding="utf-8")
    config = lab_config(
        lab, tmp_path / "exporter.toml", exporter_table(log_file, tmp_path / "exporter.state")
    )
    process = ExporterProcess("--config", str(config))
    yield process, config
    process.finish()


@pytest.mark.lab
def test_sighup_bad_file_keeps_old_config(
    lab_process: tuple[ExporterProcess, Path],
) -> None:
    process, config = lab_process
    config.write_text("[exporter\n", encoding="utf-8")
    start = process.signal(signal.SIGHUP)
    process.wait_for("previous configuration stays in effect", start)
    assert "Target lab" in fetch(process.url + "/")[1]


@pytest.mark.lab
def test_sighup_bad_file_logs_one_error(lab_process: tuple[ExporterProcess, Path]) -> None:
    process, config = lab_process
    config.write_text("[exporter\n", encoding="utf-8")
    start = process.signal(signal.SIGHUP)
    process.wait_for("previous configuration stays in effect", start)
    process.finish()
    errors = [line for line in process.lines[start:] if " ERROR " in line]
    assert len(errors) == 1
    assert str(config) in errors[0]


@pytest.mark.lab
def test_sighup_good_file_swaps_targets(
    lab: LabInfo, lab_process: tuple[ExporterProcess, Path], tmp_path: Path
) -> None:
    process, config = lab_process
    lab_config(lab, config, exporter_table(), name="relay")
    start = process.signal(signal.SIGHUP)
    process.wait_for("configuration reloaded", start)
    page = fetch(process.url + "/")[1]
    assert "Target relay" in page
    assert "Target lab<" not in page


@pytest.mark.lab
def test_sigterm_exits_0(lab_process: tuple[ExporterProcess, Path]) -> None:
    process, _ = lab_process
    process.signal(signal.SIGTERM)
    assert process.finish() == 0


@pytest.mark.lab
def test_sigterm_logs_stopped(lab_process: tuple[ExporterProcess, Path]) -> None:
    process, _ = lab_process
    process.signal(signal.SIGTERM)
    process.finish()
    assert process.lines[-1].endswith("INFO exporters.service: stopped")


@pytest.mark.lab
def test_sigterm_saves_state(lab_process: tuple[ExporterProcess, Path], tmp_path: Path) -> None:
    process, _ = lab_process
    process.signal(signal.SIGTERM)
    process.finish()
    assert str(tmp_path / "msmtp.log") in (tmp_path / "exporter.state").read_text()


@pytest.mark.lab
def test_sigint_exits_0(lab_process: tuple[ExporterProcess, Path]) -> None:
    process, _ = lab_process
    process.signal(signal.SIGINT)
    assert process.finish() == 0


@pytest.mark.lab
def test_json_log_lines_parse(lab: LabInfo, tmp_path: Path) -> None:
    config = lab_config(lab, tmp_path / "exporter.toml")
    process = ExporterProcess("--config", str(config), "--log-format", "json")
    process.signal(signal.SIGHUP)
    process.wait_for("configuration reloaded")
    process.finish()
    documents = [json.loads(line) for line in process.lines]
    assert [item["message"] for item in documents][-1] == "stopped"


@pytest.mark.lab
def test_json_log_lines_carry_path(lab: LabInfo, tmp_path: Path) -> None:
    config = lab_config(lab, tmp_path / "exporter.toml")
    process = ExporterProcess("--config", str(config), "--log-format", "json")
    process.signal(signal.SIGHUP)
    process.wait_for("configuration reloaded")
    process.finish()
    documents = [json.loads(line) for line in process.lines]
    reloaded = [item for item in documents if item["message"].startswith("configuration reloaded")]
    assert reloaded[0]["path"] == str(config)


@pytest.mark.parametrize(
    ("web", "warned"),
    [
        pytest.param(WebSettings(listen="0.0.0.0:10587"), True, id="all-interfaces-open"),
        pytest.param(WebSettings(listen="[::]:10587"), True, id="ipv6-any-open"),
        pytest.param(WebSettings(listen="127.0.0.1:10587"), False, id="loopback"),
        pytest.param(WebSettings(listen="localhost:10587"), False, id="localhost"),
        pytest.param(
            WebSettings(
                listen="0.0.0.0:10587",
                basic_auth_user="prometheus",
                basic_auth_password=Secret("pw-for-test", "test"),
            ),
            False,
            id="basic-auth",
        ),
    ],
)
def test_open_listener_warns(
    web: WebSettings, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="exporters.service"):
        _warn_if_open(web)
    assert ("without basic auth" in caplog.text) is warned
