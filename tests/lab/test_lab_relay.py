"""Lab relay: msmtpd's replies and log lines, the relay scenarios with the real msmtp."""

from __future__ import annotations

import io
import json
import re
import socket
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from lab_line_client import TIMEOUT_SECONDS, LineClient
from lab_reports import empty_report
from system_programs import require_program

from smtpdiag.errors import UsageError
from smtpdiag.lab import demo
from smtpdiag.lab.demo import MSMTP_MISSING, run_demo
from smtpdiag.lab.relay import (
    GREETING,
    PIPED,
    RelayServer,
    ehlo_name,
    format_log_line,
    parse_address,
    pipe_reply,
    send_message,
)
from smtpdiag.lab.runner import LAB_USER, LabInfo, start_lab
from smtpdiag.lab.scenarios import SCENARIOS, get_scenario
from smtpdiag.logs.analysis import analyze_files
from smtpdiag.logs.options import AnalysisOptions

SENDER = "sender@example.com"
PIPE_FAILED = "auth_failure_rate.pipe_command_failed"
RELAY_SCENARIOS = ("relay", "relay-token-rejected")

# Fake msmtp: it stores its arguments and standard input as JSON in the file named by
# its first argument, then exits with the number after "exit" in the last recipient.
FAKE_PIPE_SCRIPT = """\
import json, sys
data = sys.stdin.buffer.read()
with open(sys.argv[1], "w") as record:
    json.dump({"argv": sys.argv[2:], "message": data.decode("latin-1")}, record)
sys.exit(int(sys.argv[-1].split("@")[0].removeprefix("exit")))
"""

# Reads the message, then runs longer than the pipe timeout of the test that uses it.
SLOW_PIPE_SCRIPT = "import sys, time; sys.stdin.buffer.read(); time.sleep(30)"

LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d msmtpd\[\d+\] (info|error): .+")


def log_messages(path: Path) -> list[str]:
    """Return the messages of an msmtpd log file, without time, program and level."""
    return [line.split(": ", 1)[1] for line in path.read_text().splitlines()]


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "piped.json"


@pytest.fixture
def fake_msmtp(tmp_path: Path) -> Path:
    script = tmp_path / "fake-msmtp.py"
    script.write_text(FAKE_PIPE_SCRIPT)
    return script


@pytest.fixture
def relay(tmp_path: Path, fake_msmtp: Path, record: Path) -> Iterator[RelayServer]:
    command = [sys.executable, str(fake_msmtp), str(record), "-f", "%F", "--"]
    with RelayServer(command, tmp_path / "msmtpd.log") as server:
        yield server


def send_and_wait(relay: RelayServer, recipients: list[str], message: str = "Hi\r\n") -> str:
    """Send one message through ``relay`` and wait until its session has logged its end."""
    reply = send_message(relay.address, SENDER, recipients, message)
    relay.wait_idle()
    return reply


def connect(relay: RelayServer) -> LineClient:
    sock = socket.create_connection(("127.0.0.1", relay.port), timeout=TIMEOUT_SECONDS)
    return LineClient(sock)


# --- pure functions ---


@pytest.mark.parametrize(
    ("exit_status", "expected"),
    [
        (0, "250 Ok, mail was piped"),
        (68, "451 Pipe command reported error 68"),
        (69, "451 Pipe command reported error 69"),
        (71, "451 Pipe command reported error 71"),
        (75, "451 Pipe command reported error 75"),
        (1, "554 Pipe command reported error 1"),
        (64, "554 Pipe command reported error 64"),
        (77, "554 Pipe command reported error 77"),
        (78, "554 Pipe command reported error 78"),
        (127, "554 Pipe command reported error 127"),
    ],
    ids=lambda value: str(value) if isinstance(value, int) else None,
)
def test_pipe_reply(exit_status: int, expected: str) -> None:
    assert pipe_reply(exit_status) == expected


@pytest.mark.parametrize(
    ("argument", "allow_empty", "expected"),
    [
        ("<a@example.com>", False, "a@example.com"),
        ("  <a@example.com>", False, "a@example.com"),
        ("<first.last+tag@example.com>", False, "first.last+tag@example.com"),
        ("<a-b@example.com>", False, "a-b@example.com"),
        ("<>", True, "MAILER-DAEMON"),
        ("<>", False, None),
        ("<a@example.com> SIZE=100", False, None),
        ("a@example.com", False, None),
        ("<-oQ@example.com>", False, None),
        ("<a b@example.com>", False, None),
        ("<a;rm@example.com>", False, None),
        ("<", False, None),
    ],
    ids=[
        "plain",
        "leading-spaces",
        "plus-and-dot",
        "inner-hyphen",
        "empty-sender",
        "empty-recipient",
        "esmtp-parameter",
        "no-brackets",
        "leading-hyphen",
        "space",
        "semicolon",
        "lone-bracket",
    ],
)
def test_parse_address(argument: str, allow_empty: bool, expected: str | None) -> None:
    assert parse_address(argument, allow_empty=allow_empty) == expected


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("", "unknown"),
        ("client.example.com", "client.example.com"),
        ("[127.0.0.1]", "[127.0.0.1]"),
        ("[::1]", "[::1]"),
        ("bad_name", "invalid"),
        ("two words", "invalid"),
    ],
    ids=["empty", "name", "ipv4-literal", "ipv6-literal", "underscore", "space"],
)
def test_ehlo_name(argument: str, expected: str) -> None:
    assert ehlo_name(argument) == expected


def test_format_log_line() -> None:
    line = format_log_line(datetime(2024, 3, 9, 7, 5, 1), 4242, True, "session aborted")
    assert line == "2024-03-09 07:05:01 msmtpd[4242] error: session aborted"


def test_relay_rejects_empty_command(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        RelayServer([], tmp_path / "msmtpd.log")


# --- the relay with a fake pipe command ---


@pytest.mark.parametrize(
    ("exit_status", "expected"),
    [
        (0, "250 Ok, mail was piped"),
        (75, "451 Pipe command reported error 75"),
        (77, "554 Pipe command reported error 77"),
    ],
    ids=["ok", "tempfail", "noperm"],
)
def test_relay_reply_for_exit_status(relay: RelayServer, exit_status: int, expected: str) -> None:
    assert send_and_wait(relay, [f"exit{exit_status}@example.com"]) == expected


@pytest.mark.parametrize(
    ("exit_status", "expected"),
    [
        (0, ["mail was piped successfully", "client ended session", "connection closed"]),
        (75, ["pipe command reported error 75, session aborted", "connection closed"]),
        (77, ["pipe command reported error 77, session aborted", "connection closed"]),
    ],
    ids=["ok", "tempfail", "noperm"],
)
def test_relay_log_ends_like_msmtpd(
    relay: RelayServer, exit_status: int, expected: list[str]
) -> None:
    send_and_wait(relay, [f"exit{exit_status}@example.com"])
    assert log_messages(relay.log_file)[3:] == expected


def test_relay_log_starts_like_msmtpd(relay: RelayServer) -> None:
    send_and_wait(relay, ["exit0@example.com"])
    assert log_messages(relay.log_file)[:2] == [
        "connection from 127.0.0.1, active sessions 1 (max 16), auth_delay=no",
        "starting SMTP session",
    ]


def test_relay_log_names_pipe_command(relay: RelayServer, record: Path) -> None:
    send_and_wait(relay, ["exit0@example.com"])
    pipe_line = log_messages(relay.log_file)[2]
    assert pipe_line.endswith(f"{record} -f {SENDER} -- exit0@example.com")


def test_relay_log_line_format(relay: RelayServer) -> None:
    send_and_wait(relay, ["exit0@example.com"])
    send_and_wait(relay, ["exit77@example.com"])
    lines = relay.log_file.read_text().splitlines()
    assert [line for line in lines if LOG_LINE.fullmatch(line) is None] == []


def test_relay_error_lines_are_errors(relay: RelayServer) -> None:
    send_and_wait(relay, ["exit75@example.com"])
    levels = [
        line.split("] ", 1)[1].split(":", 1)[0] for line in relay.log_file.read_text().splitlines()
    ]
    assert levels == ["info", "info", "info", "error", "info"]


def test_relay_pipe_arguments(relay: RelayServer, record: Path) -> None:
    send_and_wait(relay, ["first@example.com", "exit0@example.com"])
    argv = json.loads(record.read_text())["argv"]
    assert argv == ["-f", SENDER, "--", "first@example.com", "exit0@example.com"]


def test_relay_pipes_received_header_first(relay: RelayServer, record: Path) -> None:
    send_and_wait(relay, ["exit0@example.com"])
    message = json.loads(record.read_text())["message"]
    assert message.startswith("Received: from localhost ([127.0.0.1])\n\tby [127.0.0.1] (msmtpd)")


def piped_body(relay: RelayServer, record: Path, body_lines: list[str]) -> str:
    """Send a message with ``body_lines`` (already dot-stuffed) and return the piped body."""
    client = connect(relay)
    with client.sock:
        client.read_reply()
        client.command("EHLO client.example.com")
        client.command(f"MAIL FROM:<{SENDER}>")
        client.command("RCPT TO:<exit0@example.com>")
        client.command("DATA")
        for line in ("Subject: test", "", *body_lines, "."):
            client.send(line)
        client.read_reply()
    relay.wait_idle()
    message: str = json.loads(record.read_text())["message"]
    return message.split("\n\n", 1)[1]


def test_relay_unstuffs_dots(relay: RelayServer, record: Path) -> None:
    body = piped_body(relay, record, ["..one dot", "...two dots", "no dot"])
    assert body == ".one dot\n..two dots\nno dot\n"


def test_relay_keeps_long_line(relay: RelayServer, record: Path) -> None:
    # The second read of this line starts with a dot, which is not at the start of a line.
    long_line = "x" * 1023 + ".y" + "z" * 3000
    assert piped_body(relay, record, [long_line]) == long_line + "\n"


@pytest.mark.parametrize(
    ("commands", "expected"),
    [
        (["EHLO client.example.com"], "250 localhost"),
        (["HELO client.example.com"], "250 localhost"),
        (["NOOP"], "500 Expected EHLO or HELO"),
        (["EHLO x", "RSET"], "500 Expected MAIL FROM:<addr> or QUIT"),
        (["EHLO x", "MAIL FROM:<a@example.com> SIZE=10"], "501 Invalid address"),
        (["EHLO x", "MAIL FROM:<>"], "250 Ok"),
        (["EHLO x", "MAIL FROM:<a@example.com>", "DATA"], "500 Expected RCPT TO:<addr>"),
        (["EHLO x", "MAIL FROM:<a@example.com>", "RCPT TO:<>"], "501 Invalid address"),
        (
            ["EHLO x", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "NOOP"],
            "500 Expected RCPT TO:<addr> or DATA",
        ),
        (["EHLO x", "QUIT"], "221 Bye"),
    ],
    ids=[
        "ehlo",
        "helo",
        "noop-first",
        "rset",
        "mail-parameter",
        "null-sender",
        "data-without-rcpt",
        "empty-recipient",
        "noop-after-rcpt",
        "quit",
    ],
)
def test_relay_command_replies(relay: RelayServer, commands: list[str], expected: str) -> None:
    client = connect(relay)
    with client.sock:
        client.read_reply()
        replies = [client.command(command) for command in commands]
    last = replies[-1]
    assert f"{last.code} {last.text}" == expected


def test_relay_greeting(relay: RelayServer) -> None:
    client = connect(relay)
    with client.sock:
        greeting = client.read_reply()
    assert f"{greeting.code} {greeting.text}" == GREETING


def test_relay_closes_after_protocol_error(relay: RelayServer) -> None:
    client = connect(relay)
    with client.sock:
        client.read_reply()
        client.command("NOOP")
        assert client.sock.recv(1) == b""


def test_relay_protocol_error_logged(relay: RelayServer) -> None:
    client = connect(relay)
    with client.sock:
        client.read_reply()
        client.command("NOOP")
    relay.wait_idle()
    assert log_messages(relay.log_file)[2:] == [
        "client did not start with EHLO or HELO, session aborted",
        "connection closed",
    ]


def test_relay_two_messages_in_one_session(relay: RelayServer) -> None:
    client = connect(relay)
    with client.sock:
        client.read_reply()
        client.command("EHLO client.example.com")
        replies = []
        for _ in range(2):
            client.command(f"MAIL FROM:<{SENDER}>")
            client.command("RCPT TO:<exit0@example.com>")
            client.command("DATA")
            client.send("Subject: again")
            replies.append(client.command(".").text)
        client.command("QUIT")
    assert replies == ["Ok, mail was piped", "Ok, mail was piped"]


def test_relay_missing_program(tmp_path: Path) -> None:
    command = [str(tmp_path / "no-such-msmtp"), "-f", "%F", "--"]
    with RelayServer(command, tmp_path / "msmtpd.log") as server:
        reply = send_and_wait(server, ["rcpt@example.com"])
    assert reply == "554 Cannot start pipe command"


def test_relay_pipe_timeout(tmp_path: Path) -> None:
    command = [sys.executable, "-c", SLOW_PIPE_SCRIPT]
    with RelayServer(command, tmp_path / "msmtpd.log", pipe_timeout_seconds=0.05) as server:
        reply = send_and_wait(server, ["rcpt@example.com"])
    assert reply == "554 Pipe command failed to execute"


def test_relay_environment_reaches_pipe(tmp_path: Path) -> None:
    record = tmp_path / "home.txt"
    script = (
        f"import os, sys; sys.stdin.read(); open({str(record)!r}, 'w').write(os.environ['HOME'])"
    )
    command = [sys.executable, "-c", script]
    with RelayServer(command, tmp_path / "msmtpd.log", environ={"HOME": "/lab-home"}) as server:
        send_and_wait(server, ["rcpt@example.com"])
    assert record.read_text() == "/lab-home"


# --- the msmtpd log parser reads the relay's log ---


@pytest.fixture
def three_sends(relay: RelayServer) -> Path:
    """The relay log after messages whose pipe command exits 0, 75 and 77."""
    for status in (0, 75, 77):
        send_and_wait(relay, [f"exit{status}@example.com"])
    return relay.log_file


def test_parser_counts_pipe_failures(three_sends: Path) -> None:
    summary = analyze_files([str(three_sends)], AnalysisOptions(min_attempts=1))
    assert summary.by_source["msmtpd"].failures == 2


def test_parser_reads_every_line(three_sends: Path) -> None:
    summary = analyze_files([str(three_sends)], AnalysisOptions(min_attempts=1))
    # Six lines for the delivered message, five for each failed one.
    assert (summary.by_source["msmtpd"].lines, summary.parse_errors) == (16, 0)


def test_parser_reason(three_sends: Path) -> None:
    summary = analyze_files([str(three_sends)], AnalysisOptions(min_attempts=1))
    assert summary.by_reason[PIPE_FAILED].count == 1
    assert summary.by_reason["auth_failure_rate.pipe_command_deferred"].count == 1


def test_parser_fates(three_sends: Path) -> None:
    summary = analyze_files([str(three_sends)], AnalysisOptions(min_attempts=1))
    assert dict(summary.by_source["msmtpd"].fates) == {"sent": 1, "deferred": 1, "bounced": 1}


# --- relay scenarios with the real msmtp ---


@pytest.fixture(scope="module")
def relay_labs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LabInfo]]:
    require_program("msmtp")
    parent = tmp_path_factory.mktemp("relay-labs")
    with (
        start_lab(get_scenario("relay"), workdir=parent) as healthy,
        start_lab(get_scenario("relay-token-rejected"), workdir=parent) as rejected,
    ):
        yield {"relay": healthy, "relay-token-rejected": rejected}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("relay", "250 Ok, mail was piped"),
        ("relay-token-rejected", "554 Pipe command reported error 77"),
    ],
)
def test_scenario_relay_reply(relay_labs: dict[str, LabInfo], name: str, expected: str) -> None:
    assert relay_labs[name].relay_reply == expected


def test_healthy_relay_message_reaches_server(relay_labs: dict[str, LabInfo]) -> None:
    # msmtp logs the server's reply to the message, and this text is the lab server's own.
    log = str(relay_labs["relay"].msmtp_log_file)
    assert "smtpmsg='250 2.0.0 OK: discarded by the lab' exitcode=EX_OK" in Path(log).read_text()


def test_healthy_relay_delivers_another_message(tmp_path: Path) -> None:
    require_program("msmtp")
    with start_lab(get_scenario("relay"), workdir=tmp_path) as info:
        message = "Subject: again\r\n\r\nA second message.\r\n"
        reply = send_message(str(info.relay), LAB_USER, ["other@example.com"], message)
    assert reply == PIPED


def test_rejected_token_in_msmtp_log(relay_labs: dict[str, LabInfo]) -> None:
    log = Path(str(relay_labs["relay-token-rejected"].msmtp_log_file)).read_text()
    assert "exitcode=EX_NOPERM" in log


@pytest.mark.parametrize(("name", "failures"), [("relay", 0), ("relay-token-rejected", 1)])
def test_scenario_relay_log_failures(
    relay_labs: dict[str, LabInfo], name: str, failures: int
) -> None:
    path = str(relay_labs[name].relay_log_file)
    summary = analyze_files([path], AnalysisOptions(min_attempts=1))
    assert summary.by_source["msmtpd"].failures == failures


def test_scenario_relay_log_reply_code(relay_labs: dict[str, LabInfo]) -> None:
    path = str(relay_labs["relay-token-rejected"].relay_log_file)
    summary = analyze_files([path], AnalysisOptions(min_attempts=1))
    assert summary.by_reason[PIPE_FAILED].reply_code == 554


@pytest.mark.parametrize(("name", "failures"), [("relay", 0), ("relay-token-rejected", 1)])
def test_scenario_msmtp_log_counts(
    relay_labs: dict[str, LabInfo], name: str, failures: int
) -> None:
    path = str(relay_labs[name].msmtp_log_file)
    summary = analyze_files([path], AnalysisOptions(min_attempts=1))
    assert (summary.attempts, summary.failures) == (1, failures)


def lab_target(info: LabInfo) -> dict[str, object]:
    document = tomllib.loads(info.config_file.read_text())
    target = document["targets"]["lab"]
    assert isinstance(target, dict)
    return target


def test_scenario_config_keys(relay_labs: dict[str, LabInfo]) -> None:
    assert set(lab_target(relay_labs["relay"])) == {"msmtprc", "relay", "log_files"}


def test_scenario_config_relay(relay_labs: dict[str, LabInfo]) -> None:
    info = relay_labs["relay"]
    assert lab_target(info)["relay"] == info.relay


def test_scenario_config_log_files(relay_labs: dict[str, LabInfo]) -> None:
    info = relay_labs["relay"]
    expected = [str(info.relay_log_file), str(info.msmtp_log_file)]
    assert lab_target(info)["log_files"] == expected


def test_scenario_config_msmtprc(relay_labs: dict[str, LabInfo]) -> None:
    info = relay_labs["relay"]
    assert lab_target(info)["msmtprc"] == str(info.msmtprc)


def test_scenario_msmtprc_mode(relay_labs: dict[str, LabInfo]) -> None:
    msmtprc = Path(str(relay_labs["relay"].msmtprc))
    assert stat.S_IMODE(msmtprc.stat().st_mode) == 0o600


def passwordeval_program(info: LabInfo) -> Path:
    lines = Path(str(info.msmtprc)).read_text().splitlines()
    command = next(line for line in lines if line.startswith("passwordeval "))
    return Path(command.split(" ", 1)[1])


def test_scenario_token_script_mode(relay_labs: dict[str, LabInfo]) -> None:
    script = passwordeval_program(relay_labs["relay"])
    assert stat.S_IMODE(script.stat().st_mode) == 0o700


def test_scenario_token_script_prints_token(relay_labs: dict[str, LabInfo]) -> None:
    info = relay_labs["relay"]
    printed = subprocess.run(
        [str(passwordeval_program(info))], capture_output=True, text=True, check=True, timeout=5
    ).stdout
    assert printed == info.access_token_file.read_text()


def test_scenario_msmtprc_uses_xoauth2(relay_labs: dict[str, LabInfo]) -> None:
    lines = Path(str(relay_labs["relay"].msmtprc)).read_text().splitlines()
    assert "auth xoauth2" in lines


@pytest.mark.parametrize("key", ["relay", "msmtprc", "relay_log_file", "msmtp_log_file"])
def test_scenario_json_line_names_relay(relay_labs: dict[str, LabInfo], key: str) -> None:
    info = relay_labs["relay"]
    document = json.loads(info.to_json_line())
    assert document[key] == str(getattr(info, key))


def test_json_line_without_relay() -> None:
    with start_lab(get_scenario("healthy")) as info:
        document = json.loads(info.to_json_line())
    assert "relay" not in document


# --- scenario table, missing msmtp, listing ---


@pytest.mark.parametrize("name", RELAY_SCENARIOS)
def test_relay_scenarios_need_msmtp(name: str) -> None:
    assert SCENARIOS[name].needs_msmtp


def test_only_relay_and_chain_scenarios_need_msmtp() -> None:
    needing = [name for name, s in SCENARIOS.items() if s.needs_msmtp]
    chains = [name for name, s in SCENARIOS.items() if s.chain is not None]
    assert needing == [*RELAY_SCENARIOS, *chains]


def test_relay_scenario_expected_codes() -> None:
    assert SCENARIOS["relay-token-rejected"].expected_codes == (
        "relay.auth_failure_bounces_mail",
        "auth.token_rejected",
    )


def test_healthy_relay_expects_status_ok() -> None:
    assert SCENARIOS["relay"].expected_codes == ()


def test_start_lab_without_msmtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with (
        pytest.raises(UsageError, match="msmtp"),
        start_lab(get_scenario("relay"), workdir=tmp_path),
    ):
        pass


def test_start_lab_without_msmtp_leaves_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(UsageError), start_lab(get_scenario("relay"), workdir=tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []


def test_demo_without_msmtp(monkeypatch: pytest.MonkeyPatch) -> None:
    subset = {name: SCENARIOS[name] for name in ("healthy", "relay")}
    monkeypatch.setattr(demo, "SCENARIOS", subset)
    out = io.StringIO()
    code = run_demo(empty_report, lambda name, report: None, out, locate_msmtp=lambda: None)
    assert (code, out.getvalue().splitlines()) == (
        0,
        [
            "healthy: diagnosed as expected",
            f"relay: {MSMTP_MISSING}",
            "1 scenarios, 1 diagnosed as expected",
        ],
    )


def test_list_scenarios_names_relay_scenarios() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "smtpdiag", "lab", "--list-scenarios"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    names = [line.split()[0] for line in completed.stdout.splitlines()]
    assert [name for name in names if name in RELAY_SCENARIOS] == list(RELAY_SCENARIOS)
