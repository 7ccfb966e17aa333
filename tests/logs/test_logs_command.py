"""``smtpdiag logs``: exit codes, JSON totals, filters, inputs, leaks and follow mode.

The log lines follow the formats the daemons write: msmtp's log file record (``host= tls=
auth= ... exitcode=EX_*``, smtpmsg lines joined by a literal ``\\n``) and Postfix lines in
rsyslog's RFC 3339 file format, with example.com hosts and documentation addresses.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smtpdiag.cli import main
from smtpdiag.logs.command import FollowRun, LogsRequest, build_options
from smtpdiag.logs.reader import LogLine

# A Google-shaped access token; the test fails if any output contains it.
SECRET_TOKEN = "ya29.a0AfB_byEXAMPLEtokenVALUE1234567890abcdefghij"

BASE = datetime(2026, 11, 20, 14, 0, 0, tzinfo=UTC).timestamp()
"""14:00:00 UTC on 20 November 2026, the time of the first test line."""


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def msmtp_ok(moment: float) -> str:
    stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{stamp} host=smtp.example.com tls=on auth=on user=alice@example.com "
        "from=alice@example.com recipients=bob@example.net mailsize=728 smtpstatus=250 "
        "smtpmsg='250 2.0.0 OK  1700000000 a1-20020a05example.1 - gsmtp' exitcode=EX_OK"
    )


def msmtp_rejected(moment: float) -> str:
    stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{stamp} host=smtp.example.com tls=on auth=on user=alice@example.com "
        "from=alice@example.com recipients=bob@example.net smtpstatus=535 "
        "smtpmsg='535-5.7.8 Username and Password not accepted. For more information, go to\\n"
        "535 5.7.8  https://support.example.com/mail/?p=BadCredentials a1-20020a05example.1 - "
        "gsmtp' errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM"
    )


def postfix_deferred(moment: float, queue_id: str) -> str:
    # rsyslog's RFC 3339 file format; the status text follows Postfix's smtp_sasl_proto.c.
    return (
        f"{iso(moment)} mail postfix/smtp[2301]: {queue_id}: to=<bob@example.net>, "
        "relay=smtp.example.com[192.0.2.10]:587, delay=0.62, delays=0.01/0/0.4/0, dsn=4.7.0, "
        "status=deferred (SASL authentication failed; server smtp.example.com[192.0.2.10] "
        "said: 535 5.7.8 Username and Password not accepted)"
    )


MSMTP_FORMAT = ["--msmtp-time-format", "%Y-%m-%d %H:%M:%S", "--timezone", "UTC"]


def msmtp_lines(count: int, failures: int, start: float = BASE) -> list[str]:
    """``count`` msmtp records one second apart, the first ``failures`` rejected."""
    return [
        msmtp_rejected(start + index) if index < failures else msmtp_ok(start + index)
        for index in range(count)
    ]


def write_log(path: Path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def run_logs(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["logs", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code, out, _ = run_logs(capsys, "--format", "json", *MSMTP_FORMAT, *args)
    return code, json.loads(out)


@pytest.mark.parametrize(
    ("count", "failures", "extra", "code", "status"),
    [
        pytest.param(30, 0, [], 0, "ok", id="clean"),
        pytest.param(25, 1, [], 2, "critical", id="4-percent-over"),
        pytest.param(100, 2, [], 0, "ok", id="2-percent-boundary"),
        pytest.param(100, 2, ["--threshold", "1"], 2, "critical", id="lower-threshold"),
        pytest.param(25, 1, ["--min-attempts", "30"], 0, "ok", id="too-few-attempts"),
    ],
)
def test_exit_code_follows_window_rule(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    count: int,
    failures: int,
    extra: list[str],
    code: int,
    status: str,
) -> None:
    path = write_log(tmp_path / "msmtp.log", msmtp_lines(count, failures))
    exit_code, data = run_json(capsys, *extra, path)
    assert exit_code == code
    assert data["status"] == status
    assert data["totals"] == {
        "lines": count,
        "attempts": count,
        "failures": failures,
        "failure_ratio": failures / count,
        "parse_errors": 0,
    }


def test_json_reasons_and_finding(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_log(tmp_path / "msmtp.log", msmtp_lines(25, 1))
    _, data = run_json(capsys, path)
    reasons = data["by_reason"]
    assert isinstance(reasons, dict)
    assert list(reasons) == ["auth.credentials_rejected"]
    assert reasons["auth.credentials_rejected"]["count"] == 1
    assert reasons["auth.credentials_rejected"]["source"] == "msmtp"
    codes = [finding["code"] for finding in data["findings"]]  # type: ignore[attr-defined]
    assert codes == ["auth_failure_rate.threshold_exceeded", "auth.credentials_rejected"]


def test_postfix_deferrals_counted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    queue_ids = ("4BqXk05ZsNz9sQ", "4BqXk15ZsNz9sR", "4BqXk25ZsNz9sS")
    lines = [postfix_deferred(BASE + index, queue_ids[index]) for index in range(3)]
    path = write_log(tmp_path / "mail.log", lines)
    code, data = run_json(capsys, path)
    assert data["by_source"]["postfix"]["failures"] == 3  # type: ignore[index]
    assert data["fates"] == {"deferred": 3}
    assert code == 0


def test_since_and_until(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = msmtp_lines(10, 10, BASE) + msmtp_lines(10, 0, BASE + 3600)
    path = write_log(tmp_path / "msmtp.log", lines)
    _, data = run_json(capsys, "--since", iso(BASE + 1800), "--until", iso(BASE + 7200), path)
    assert data["totals"]["attempts"] == 10  # type: ignore[index]
    assert data["totals"]["failures"] == 0  # type: ignore[index]
    assert data["totals"]["lines"] == 20  # type: ignore[index]


def test_relative_since(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    now = time.time()
    lines = msmtp_lines(5, 5, now - 7200) + msmtp_lines(5, 0, now - 600)
    path = write_log(tmp_path / "msmtp.log", lines)
    _, data = run_json(capsys, "--since", "1h", path)
    assert data["totals"]["attempts"] == 5  # type: ignore[index]
    assert data["totals"]["failures"] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("zone", "attempts"),
    [
        pytest.param("UTC", 0, id="utc-after-since"),
        pytest.param("Europe/Berlin", 3, id="berlin-one-hour-earlier"),
    ],
)
def test_timezone_of_zoneless_times(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, zone: str, attempts: int
) -> None:
    # The lines carry 14:00 to 14:00:02 without a zone, which is 13:00Z in Berlin (CET).
    path = write_log(tmp_path / "msmtp.log", msmtp_lines(3, 0))
    code, out, _ = run_logs(
        capsys,
        "--format",
        "json",
        "--msmtp-time-format",
        "%Y-%m-%d %H:%M:%S",
        "--timezone",
        zone,
        "--until",
        "2026-11-20T13:30:00Z",
        path,
    )
    assert code == 0
    assert json.loads(out)["totals"]["attempts"] == attempts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--timezone", "Mars/Olympus"], "Mars/Olympus", id="unknown-zone"),
        pytest.param(["--since", "yesterday"], "yesterday", id="bad-since"),
        pytest.param(["--window", "0"], "--window", id="zero-window"),
        pytest.param(["--threshold", "-1"], "--threshold", id="negative-threshold"),
        pytest.param(["--min-attempts", "0"], "--min-attempts", id="zero-min-attempts"),
        pytest.param(["--state", "x.json"], "--follow", id="state-without-follow"),
        pytest.param(["--since", "1h", "--until", "2h"], "--until", id="since-after-until"),
        pytest.param(["--threshold", "100.5"], "--threshold", id="threshold-above-100"),
        pytest.param(["--msmtp-time-format", ""], "the format is empty", id="empty-format"),
        pytest.param(["--msmtp-time-format", "%"], "a lone %", id="lone-percent"),
        pytest.param(
            ["--msmtp-time-format", "%Q"], "--msmtp-time-format: %Q is not", id="bad-directive"
        ),
    ],
)
def test_usage_errors_exit_3(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    path = write_log(tmp_path / "msmtp.log", msmtp_lines(1, 0))
    code, out, err = run_logs(capsys, *args, path)
    assert code == 3
    assert message in err
    assert out == ""


def test_no_file_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_logs(capsys)
    assert code == 3
    assert "No log file given" in err
    assert "--journal" in err


def test_all_files_missing_exit_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    first, second = str(tmp_path / "a.log"), str(tmp_path / "b.log")
    code, _, err = run_logs(capsys, first, second)
    assert code == 3
    assert first in err
    assert second in err


def test_only_directory_and_device_exit_3(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_logs(capsys, str(tmp_path), "/dev/null")
    assert code == 3
    assert f"{tmp_path} is a directory" in err
    assert "/dev/null is not a regular file" in err


def test_some_files_missing_warns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_log(tmp_path / "msmtp.log", msmtp_lines(30, 0))
    missing = str(tmp_path / "gone.log")
    code, data = run_json(capsys, path, missing)
    assert code == 1
    assert data["totals"]["attempts"] == 30  # type: ignore[index]
    unreadable = [f for f in data["findings"] if f["code"].endswith("log_unreadable")]  # type: ignore[attr-defined]
    assert [finding["facts"]["path"] for finding in unreadable] == [missing]


def test_gzip_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "msmtp.log.1.gz"
    path.write_bytes(gzip.compress("".join(f"{line}\n" for line in msmtp_lines(25, 1)).encode()))
    code, data = run_json(capsys, str(path))
    assert code == 2
    assert data["totals"]["attempts"] == 25  # type: ignore[index]


def test_stdin_input(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    payload = "".join(f"{line}\n" for line in msmtp_lines(4, 1)).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(payload)))
    code, data = run_json(capsys, "-")
    assert code == 0
    assert data["totals"]["failures"] == 1  # type: ignore[index]


@pytest.mark.parametrize("output_format", ["table", "json"])
def test_leak_reported_never_shown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, output_format: str
) -> None:
    lines = [
        *msmtp_lines(3, 0),
        f"{iso(BASE + 5)} mail app[77]: sending with header Authorization: Bearer {SECRET_TOKEN}",
        msmtp_rejected(BASE + 6) + f" debug token={SECRET_TOKEN}",
    ]
    path = write_log(tmp_path / "app.log", lines)
    code, out, err = run_logs(capsys, "--format", output_format, *MSMTP_FORMAT, path)
    assert code == 2
    assert SECRET_TOKEN not in out
    assert SECRET_TOKEN not in err
    assert SECRET_TOKEN[5:25] not in out
    if output_format == "json":
        leaks = json.loads(out)["leaks"]
        assert {(leak["path"], leak["line_number"]) for leak in leaks} >= {(path, 4)}
    else:
        assert f"{path}:4" in out


def test_table_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = msmtp_lines(25, 1) + msmtp_lines(30, 0, BASE + 900)
    path = write_log(tmp_path / "msmtp.log", lines)
    code, out, _ = run_logs(capsys, *MSMTP_FORMAT, path)
    assert code == 2
    assert "attempts: 55" in out
    assert "auth.credentials_rejected" in out
    assert "2026-11-20T14:00:00Z to 2026-11-20T14:15:00Z" in out
    assert "█▁" in out
    assert "auth_failure_rate.threshold_exceeded" in out


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from smtpdiag.cli import main\n"
        "main(['logs', '--help'])\n"
        "heavy = [m for m in sys.modules if m.startswith(('rich.live', 'zoneinfo', "
        "'smtpdiag.logs'))]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _reader(stream: io.TextIOBase, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def _next_json(lines: queue.Queue[str], predicate: object, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = json.loads(lines.get(timeout=0.5))
        except queue.Empty:
            continue
        if predicate(data):  # type: ignore[operator]
            return data  # type: ignore[no-any-return]
    raise AssertionError("no matching JSON line from the follow process")


def test_follow_mode(tmp_path: Path) -> None:
    log = tmp_path / "msmtp.log"
    log.write_text(msmtp_rejected(time.time() - 60) + "\n", encoding="utf-8")
    state = tmp_path / "state.json"

    command = [
        sys.executable,
        "-m",
        "smtpdiag",
        "logs",
        "--follow",
        "--format",
        "json",
        "--interval",
        "0.2",
        "--state",
        str(state),
        *MSMTP_FORMAT,
        str(log),
    ]
    output: queue.Queue[str] = queue.Queue()

    with (tmp_path / "stderr.txt").open("w+", encoding="utf-8") as stderr:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True) as process:
            reader = threading.Thread(target=_reader, args=(process.stdout, output), daemon=True)
            reader.start()
            try:
                first = _next_json(output, lambda data: "window" in data)
                with log.open("a", encoding="utf-8") as stream:
                    for line in msmtp_lines(3, 1, time.time()):
                        stream.write(line + "\n")
                _next_json(output, lambda data: data.get("totals", {}).get("attempts") == 3)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=20)
                reader.join(timeout=20)
        stderr.seek(0)
        errors = stderr.read()

    remaining = []
    while not output.empty():
        remaining.append(output.get())
    summary = json.loads(remaining[-1])

    assert first["totals"]["attempts"] == 0
    assert process.returncode == 0
    assert summary["schema"] == "smtpdiag.logs/1"
    assert summary["totals"]["attempts"] == 3
    assert summary["totals"]["failures"] == 1
    assert errors == ""
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert str(log) in state.read_text(encoding="utf-8")


class FakeSource:
    """Line source that hands out one batch per poll and stops the run after the last one."""

    def __init__(self, batches: list[list[str]], run: object) -> None:
        self.batches = batches
        self.run = run
        self.lines_read = 0
        self.saved = 0
        self.closed = False

    def poll(self) -> list[LogLine]:
        if not self.batches:
            self.run.stop.set()  # type: ignore[attr-defined]
            return []
        batch = self.batches.pop(0)
        start = self.lines_read
        self.lines_read += len(batch) + 1  # one more line that is no candidate
        return [LogLine("msmtp.log", start + index + 1, text) for index, text in enumerate(batch)]

    def save_state(self) -> None:
        self.saved += 1

    def close(self) -> None:
        self.closed = True


def test_follow_run_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    request = LogsRequest(
        paths=("msmtp.log",),
        output_format="table",
        msmtp_time_format="%Y-%m-%d %H:%M:%S",
        timezone="UTC",
        follow=True,
        interval=0.01,
    )
    stdout = io.StringIO()
    run = FollowRun(request, build_options(request, now), stdout)
    source = FakeSource([msmtp_lines(2, 1, now), msmtp_lines(3, 0, now)], run)
    monkeypatch.setattr(run, "_open_source", lambda: source)
    summary = run.run()
    assert (summary.lines, summary.attempts, summary.failures) == (7, 5, 1)
    assert source.closed
    assert source.saved >= 1
    assert "failure: " in stdout.getvalue()
    assert "auth.credentials_rejected" in stdout.getvalue()


def test_threshold_100_accepted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_log(tmp_path / "msmtp.log", msmtp_lines(30, 30))
    code, document = run_json(capsys, "--threshold", "100", path)
    assert (code, document["options"]["threshold"]) == (0, 1.0)


def test_unread_time_prefix_is_parse_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = msmtp_lines(2, 0)
    path = write_log(tmp_path / "msmtp.log", ["\x00\x00\x00" + lines[0], lines[1]])
    _, document = run_json(capsys, "--msmtp-time-format", "%Y-%m-%d %H:%M:%S", path)
    totals = document["totals"]
    assert (totals["attempts"], totals["parse_errors"]) == (1, 1)  # type: ignore[index]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(["--journal", "mail.log"], "--journal reads journald", id="journal-and-file"),
        pytest.param([""], "empty log file path", id="empty-path"),
        pytest.param(["--interval", "1e308", "--follow", "a.log"], "--interval", id="interval"),
        pytest.param(["--min-attempts", "2000000", "-"], "--min-attempts", id="min-attempts"),
    ],
)
def test_option_limits_exit_3(
    capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    code, _, err = run_logs(capsys, *arguments)
    assert code == 3
    assert message in err


REAL_CAPTURES = Path(__file__).parent / "data"


def msmtpd_pipe_bounced(moment: float) -> str:
    # msmtpd 1.8.23 replies 554 for msmtp's exit code 77 and logs this line.
    stamp = datetime.fromtimestamp(moment, UTC).strftime("%b %d %H:%M:%S")
    return f"{stamp} mail msmtpd[4242]: pipe command reported error 77, session aborted"


def test_bounced_mail_is_warning(capsys: pytest.CaptureFixture[str]) -> None:
    log = str(REAL_CAPTURES / "postfix-3.7-relay-pipe-bounced.log")
    code, out, _ = run_logs(capsys, "--format", "json", "--since", "2026-12-05T00:00:00Z", log)
    report = json.loads(out)
    bounced = next(f for f in report["findings"] if f["code"] == "auth_failure_rate.mail_bounced")
    assert code == 1
    assert bounced["severity"] == "warning"
    assert bounced["title"].startswith("4 messages bounced after failures at or before AUTH")
    assert bounced["facts"]["bounced_by_source"] == {"postfix": 4}


def test_bounces_of_one_chain_count_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    postfix_log = str(REAL_CAPTURES / "postfix-3.7-relay-pipe-bounced.log")
    msmtpd_log = tmp_path / "msmtpd.log"
    moment = datetime(2026, 12, 5, 6, 30, 32, tzinfo=UTC).timestamp()
    msmtpd_log.write_text("".join(msmtpd_pipe_bounced(moment) + "\n" for _ in range(4)))
    code, out, _ = run_logs(
        capsys,
        "--format",
        "json",
        "--since",
        "2026-12-05T00:00:00Z",
        "--timezone",
        "UTC",
        postfix_log,
        str(msmtpd_log),
    )
    report = json.loads(out)
    bounced = next(f for f in report["findings"] if f["code"] == "auth_failure_rate.mail_bounced")
    assert code == 1
    assert bounced["facts"]["bounced"] == 4
    assert bounced["facts"]["bounced_by_source"] == {"postfix": 4, "msmtpd": 4}


def test_deferred_mail_is_not_bounce_warning(capsys: pytest.CaptureFixture[str]) -> None:
    log = str(REAL_CAPTURES / "postfix-3.7-relay-pipe-deferred.log")
    code, out, _ = run_logs(capsys, "--format", "json", "--since", "2026-12-05T00:00:00Z", log)
    report = json.loads(out)
    codes = [finding["code"] for finding in report["findings"]]
    assert "auth_failure_rate.mail_bounced" not in codes
    assert code == 0


def test_bounce_after_accepted_relay_is_not_warned(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The relay accepted the session and refused the recipient: no failure at or before AUTH.
    real = (REAL_CAPTURES / "postfix-3.7-relay-pipe-bounced.log").read_text(encoding="utf-8")
    refused = re.sub(
        r"554 Pipe command reported error \d+ \(in reply to end of DATA command\)",
        "550 5.1.1 <rcpt@example.net>: Recipient address rejected: User unknown "
        "(in reply to RCPT TO command)",
        real,
    )
    log = tmp_path / "mail.log"
    log.write_text(refused, encoding="utf-8")
    code, out, _ = run_logs(capsys, "--format", "json", "--since", "2026-12-05T00:00:00Z", str(log))
    report = json.loads(out)
    codes = [finding["code"] for finding in report["findings"]]
    assert "550 5.1.1" in refused
    assert "auth_failure_rate.mail_bounced" not in codes
    assert code == 0
