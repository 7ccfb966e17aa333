"""Private Postfix: its configuration, its delivery lines, and real runs toward the lab relay."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from system_programs import require_program

from smtpdiag.lab.postfix import (
    DeliveryFate,
    PostfixServer,
    main_cf_text,
    master_cf_text,
    read_fates,
)
from smtpdiag.lab.relay import RelayServer, send_message

SENDER = "lab.user@example.com"
RECIPIENT = "rcpt@example.com"
MESSAGE = "Subject: postfix test\r\n\r\nThrough the private Postfix.\r\n"
FATE_TIMEOUT_SECONDS = 30.0

MASTER_CF = """\
# comment line
smtp      inet  n       -       y       -       -       smtpd
pickup    unix  n       -       y       60      1       pickup
relay     unix  -       -       y       -       -       smtp
        -o syslog_name=postfix/$service_name
postlog   unix-dgram n  -       n       -       1       postlogd
"""

DELIVERY_LINES = {
    "sent": (
        "Dec 05 06:29:28 mail postfix/smtp[9634]: 97EA325018A: to=<rcpt@example.com>, "
        "relay=127.0.0.1[127.0.0.1]:42343, delay=0.03, delays=0.01/0.01/0/0.01, dsn=2.0.0, "
        "status=sent (250 Ok, mail was piped)",
        DeliveryFate(
            "97EA325018A",
            "rcpt@example.com",
            "127.0.0.1[127.0.0.1]:42343",
            "sent",
            "250 Ok, mail was piped",
        ),
    ),
    "bounced": (
        "Dec 05 06:29:35 mail postfix/smtp[10066]: BD3D1250260: to=<rcpt@example.com>, "
        "relay=127.0.0.1[127.0.0.1]:37859, delay=0.03, delays=0.01/0.01/0/0.02, dsn=5.0.0, "
        "status=bounced (host 127.0.0.1[127.0.0.1] said: 554 Pipe command reported error 77 "
        "(in reply to end of DATA command))",
        DeliveryFate(
            "BD3D1250260",
            "rcpt@example.com",
            "127.0.0.1[127.0.0.1]:37859",
            "bounced",
            "host 127.0.0.1[127.0.0.1] said: 554 Pipe command reported error 77 "
            "(in reply to end of DATA command)",
        ),
    ),
    "deferred-no-connection": (
        "Dec 05 06:40:01 mail postfix/smtp[812]: 4Q3dA1: to=<rcpt@example.com>, relay=none, "
        "delay=0.01, delays=0/0/0/0, dsn=4.4.1, status=deferred (connect to "
        "127.0.0.1[127.0.0.1]:2525: Connection refused)",
        DeliveryFate(
            "4Q3dA1",
            "rcpt@example.com",
            "none",
            "deferred",
            "connect to 127.0.0.1[127.0.0.1]:2525: Connection refused",
        ),
    ),
}

NOT_DELIVERY_LINES = {
    "discarded-bounce-notice": (
        "Dec 05 06:29:35 mail postfix/discard[10076]: C6881250268: to=<lab.user@example.com>, "
        "relay=none, delay=0.01, delays=0/0.01/0/0, dsn=2.0.0, status=sent ([127.0.0.1]:37859)"
    ),
    "bounce-notice": (
        "Dec 05 06:29:35 mail postfix/bounce[10074]: BD3D1250260: sender non-delivery "
        "notification: C6881250268"
    ),
    "queue-manager": (
        "Dec 05 06:29:28 mail postfix/qmgr[9618]: 97EA325018A: from=<lab.user@example.com>, "
        "size=322, nrcpt=1 (queue active)"
    ),
}

# Relay pipe outcomes: exit status of the pipe command -> Postfix status and relay reply.
PIPE_OUTCOMES = {
    "exit-0-sent": (0, "sent", "250 Ok, mail was piped"),
    "exit-77-bounced": (77, "bounced", "554 Pipe command reported error 77"),
    "exit-75-deferred": (75, "deferred", "451 Pipe command reported error 75"),
}


@pytest.fixture
def searchable_directory() -> Iterator[Path]:
    """A directory below /tmp of mode 0755: the postfix user must reach the queue in it."""
    directory = Path(tempfile.mkdtemp(prefix="smtpdiag-postfix-test-", dir="/tmp"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_master_cf_turns_chroot_off() -> None:
    text = master_cf_text(MASTER_CF, 2525)
    services = [line.split() for line in text.splitlines() if line and line[0].isalnum()]
    assert [fields[4] for fields in services] == ["n", "n", "n", "n"]


def test_master_cf_binds_smtpd_to_loopback() -> None:
    text = master_cf_text(MASTER_CF, 2525)
    assert "127.0.0.1:2525 inet n - n - - smtpd" in text.splitlines()


def test_master_cf_keeps_continuation_lines() -> None:
    text = master_cf_text(MASTER_CF, 2525)
    assert "        -o syslog_name=postfix/$service_name" in text.splitlines()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("relayhost", "[127.0.0.1]:2526"),
        ("inet_interfaces", "loopback-only"),
        ("inet_protocols", "ipv4"),
        ("mydestination", ""),
        ("maillog_file", "/srv/pf/postfix.log"),
        ("maillog_file_prefixes", "/srv/pf"),
        ("queue_directory", "/srv/pf/queue"),
        ("sender_dependent_default_transport_maps", "inline:{ <>=discard: }"),
        ("notify_classes", ""),
    ],
)
def test_main_cf_setting(name: str, value: str) -> None:
    text = main_cf_text(Path("/srv/pf"), "127.0.0.1:2526")
    assert f"{name} = {value}" in text.splitlines()


@pytest.mark.parametrize(("line", "expected"), DELIVERY_LINES.values(), ids=DELIVERY_LINES.keys())
def test_read_fates_delivery_line(tmp_path: Path, line: str, expected: DeliveryFate) -> None:
    log = tmp_path / "postfix.log"
    log.write_text(line + "\n")
    assert read_fates(log) == (expected,)


@pytest.mark.parametrize("line", NOT_DELIVERY_LINES.values(), ids=NOT_DELIVERY_LINES.keys())
def test_read_fates_skips_other_lines(tmp_path: Path, line: str) -> None:
    log = tmp_path / "postfix.log"
    log.write_text(line + "\n")
    assert read_fates(log) == ()


def test_read_fates_missing_log(tmp_path: Path) -> None:
    assert read_fates(tmp_path / "absent.log") == ()


def test_postfix_start_stop_leaves_no_process(searchable_directory: Path) -> None:
    program = require_program("postfix")
    server = PostfixServer(searchable_directory / "postfix", "127.0.0.1:9", program)
    (searchable_directory / "postfix").mkdir()
    with server:
        running = server.running_processes()
    assert running != ()
    assert server.running_processes() == ()


def test_postfix_stop_is_idempotent(searchable_directory: Path) -> None:
    program = require_program("postfix")
    (searchable_directory / "postfix").mkdir()
    server = PostfixServer(searchable_directory / "postfix", "127.0.0.1:9", program)
    server.start()
    server.stop()
    server.stop()
    assert server.running_processes() == ()


def test_postconf_reads_private_relayhost(searchable_directory: Path) -> None:
    program = require_program("postfix")
    postconf = require_program("postconf")
    (searchable_directory / "postfix").mkdir()
    server = PostfixServer(searchable_directory / "postfix", "127.0.0.1:2526", program)
    with server:
        result = subprocess.run(
            [postconf, "-c", str(server.config_directory), "-h", "relayhost"],
            capture_output=True,
            text=True,
            check=False,
        )
    assert result.stdout.strip() == "[127.0.0.1]:2526"


@pytest.mark.parametrize(
    ("exit_status", "status", "reply"), PIPE_OUTCOMES.values(), ids=PIPE_OUTCOMES.keys()
)
def test_postfix_fate_from_relay_reply(
    searchable_directory: Path, exit_status: int, status: str, reply: str
) -> None:
    program = require_program("postfix")
    pipe = searchable_directory / "pipe.py"
    pipe.write_text(f"import sys\nsys.stdin.buffer.read()\nsys.exit({exit_status})\n")
    (searchable_directory / "postfix").mkdir()
    relay = RelayServer([sys.executable, str(pipe)], searchable_directory / "msmtpd.log")
    with relay:
        postfix = PostfixServer(searchable_directory / "postfix", relay.address, program)
        with postfix:
            queued = send_message(postfix.address, SENDER, [RECIPIENT], MESSAGE)
            logged = postfix.wait_for_fates(1, FATE_TIMEOUT_SECONDS)
            relay.wait_idle()
        fates = postfix.fates()
    relay_log = (searchable_directory / "msmtpd.log").read_text()

    assert queued.startswith("250 2.0.0 Ok: queued as ")
    assert logged
    assert [fate.status for fate in fates] == [status]
    assert reply in fates[0].reason
    # The bounce notice of a bounced message is discarded, so the relay gets one message.
    assert relay_log.count("pipe command is") == 1
