"""Tests of the streaming reader, the fast pre-filter and journald reading."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import stat
import threading
import zlib
from pathlib import Path

import pytest

from smtpdiag.errors import UsageError
from smtpdiag.logs import reader
from smtpdiag.logs.keywords import CANDIDATE
from smtpdiag.logs.reader import (
    DEADLINE_CHECK_LINES,
    FAST_CANDIDATE,
    LogLine,
    LogReader,
    feed_lines,
    journal_lines,
)

MSMTP = (
    "Dec  3 10:15:02 laptop msmtp: host=smtp.gmail.com tls=on auth=on user=alice@example.com "
    "from=alice@example.com recipients=bob@example.net smtpstatus=535 smtpmsg='535-5.7.8 "
    "Username and Password not accepted.' errormsg='authentication failed (method XOAUTH2)' "
    "exitcode=EX_NOPERM"
)
NOISE = "Dec  3 10:15:03 laptop CRON[812]: (root) CMD (run-parts /etc/cron.hourly)"
SASL = (
    "Dec  3 10:15:04 mx postfix/submission/smtpd[4242]: warning: unknown[192.0.2.10]: "
    "SASL LOGIN authentication failed: UGFzc3dvcmQ6"
)


def read_all(paths: list[str], stdin: io.BytesIO | None = None) -> tuple[list[LogLine], LogReader]:
    log_reader = LogReader(paths, stdin=stdin)
    return list(log_reader), log_reader


def test_reader_yields_candidates_with_numbers(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_text("\n".join([NOISE, MSMTP, NOISE, NOISE, SASL, NOISE]) + "\n")
    lines, log_reader = read_all([str(path)])
    assert [(line.number, line.text) for line in lines] == [(2, MSMTP), (5, SASL)]
    assert log_reader.lines_read == 6


def test_reader_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_text(f"{NOISE}\n{MSMTP}")
    lines, log_reader = read_all([str(path)])
    assert [(line.number, line.text) for line in lines] == [(2, MSMTP)]
    assert log_reader.lines_read == 2


def test_reader_crlf_and_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(MSMTP.encode() + b" \xff\r\n")
    lines, _ = read_all([str(path)])
    assert lines[0].text == MSMTP + " \ufffd"


def test_reader_lines_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "BLOCK_SIZE", 64)
    path = tmp_path / "mail.log"
    content = [NOISE, MSMTP, SASL, NOISE, MSMTP] * 20
    path.write_text("\n".join(content) + "\n")
    lines, log_reader = read_all([str(path)])
    expected = [(number, text) for number, text in enumerate(content, 1) if text != NOISE]
    assert [(line.number, line.text) for line in lines] == expected
    assert log_reader.lines_read == len(content)


def test_reader_cuts_long_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "BLOCK_SIZE", 64)
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", 300)
    path = tmp_path / "mail.log"
    path.write_text(f"{SASL} {'x' * 500}\n{MSMTP}\n")
    lines, log_reader = read_all([str(path)])
    assert [line.number for line in lines] == [1, 2]
    assert len(lines[0].text.encode()) == 300
    assert lines[1].text == MSMTP
    assert log_reader.lines_cut == 1


def test_reader_gzip_by_magic_bytes(tmp_path: Path) -> None:
    path = tmp_path / "mail.log.2"
    path.write_bytes(gzip.compress(f"{NOISE}\n{MSMTP}\n".encode()))
    lines, log_reader = read_all([str(path)])
    assert [line.text for line in lines] == [MSMTP]
    assert log_reader.lines_read == 2


def test_reader_stdin_and_files_in_order(tmp_path: Path) -> None:
    path = tmp_path / "mail.log.1.gz"
    path.write_bytes(gzip.compress(f"{SASL}\n".encode()))
    stdin = io.BytesIO(f"{NOISE}\n{MSMTP}\n".encode())
    lines, log_reader = read_all([str(path), "-"], stdin=stdin)
    assert [(line.path, line.number) for line in lines] == [(str(path), 1), ("-", 2)]
    assert log_reader.lines_read == 3


def test_reader_records_missing_file(tmp_path: Path) -> None:
    good = tmp_path / "mail.log"
    good.write_text(MSMTP + "\n")
    missing = str(tmp_path / "missing.log")
    lines, log_reader = read_all([missing, str(good)])
    assert [line.text for line in lines] == [MSMTP]
    assert log_reader.errors == [(missing, "No such file or directory")]


def test_reader_records_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "mail.log.3.gz"
    path.write_bytes(gzip.compress((MSMTP + "\n").encode() * 50)[:-20])
    _, log_reader = read_all([str(path)])
    assert len(log_reader.errors) == 1
    assert log_reader.errors[0][1].startswith("invalid or truncated gzip data")


PREFILTER_LINES = [
    MSMTP,
    NOISE,
    SASL,
    "2026-12-03 10:00:00 msmtpd[12]: info: connection from 127.0.0.1",
    "== bob@example.net R=smarthost T=remote_smtp defer (-42): authentication required",
    "some Authentication and authentication words",
    "Pipe command and pipe command",
    "2026-12-03 10:00:00 [1234] 1rX <= alice@example.com H=mx [192.0.2.1] A=xoauth2:alice",
    "TokenStore::Refresh: attempt 1",
    '{"MESSAGE": "hello"}',
    "Bearer eyJ ya29. refresh_token client_secret XOAUTH2 OAUTHBEARER dXNlcj0 bixhPS biws",
    "a status= line after AUTH with SASL sasl exitcode=",
    "A= without word char A=",
    "Dec 05 06:22:18 submission-login: Info: Login: user=<a@example.com>, method=XOAUTH2",
    "Dec 05 06:21:30 auth: Info: oauth2(a,127.0.0.1,<s>): oauth2 failed: Invalid token",
    "auth: Debug: client passdb out: OK\t1\tuser=a\ttoken=abc",
    "token= without a tab before it",
    "plain text without any keyword at all",
]


@pytest.mark.parametrize("line", PREFILTER_LINES)
def test_fast_pattern_matches_same_lines(line: str) -> None:
    data = line.encode()
    assert (FAST_CANDIDATE.search(data) is None) == (CANDIDATE.search(data) is None)


def test_fast_pattern_is_rewritten() -> None:
    assert FAST_CANDIDATE.pattern != CANDIDATE.pattern


def write_fake_journalctl(directory: Path, body: str) -> None:
    script = directory / "journalctl"
    script.write_text(f'#!/bin/sh\necho "$@" > {directory}/arguments\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_journal_lines_from_journalctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_journalctl(tmp_path, 'echo \'{"MESSAGE":"one"}\'\necho \'{"MESSAGE":"two"}\'')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(reader, "systemd_journal_module", lambda: None)
    lines = list(journal_lines(follow=False, since=1764755700.5))
    assert [(line.path, line.number, line.text) for line in lines] == [
        ("journal", 1, '{"MESSAGE":"one"}'),
        ("journal", 2, '{"MESSAGE":"two"}'),
    ]
    arguments = (tmp_path / "arguments").read_text().split()
    assert arguments == ["-o", "json", "--no-pager", "--since", "@1764755700"]


def test_journal_follow_stops_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_journalctl(tmp_path, 'echo \'{"MESSAGE":"one"}\'\nexec sleep 30')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(reader, "systemd_journal_module", lambda: None)
    lines = journal_lines(follow=True)
    first = next(lines)
    lines.close()  # type: ignore[attr-defined]
    assert first.text == '{"MESSAGE":"one"}'
    assert (tmp_path / "arguments").read_text().split() == ["-o", "json", "--no-pager", "--follow"]


def test_journalctl_failure_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_journalctl(tmp_path, "echo 'No journal files were found.' >&2\nexit 1")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(reader, "systemd_journal_module", lambda: None)
    with pytest.raises(UsageError, match="No journal files were found"):
        list(journal_lines(follow=False))


def test_journal_unavailable_names_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(reader, "systemd_journal_module", lambda: None)
    with pytest.raises(UsageError) as raised:
        journal_lines(follow=False)
    assert "python3-systemd" in raised.value.fix
    assert "journalctl" in raised.value.fix


def test_reader_reads_same_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.log"
    path.write_text(f"{NOISE}\n{MSMTP}\n")
    (tmp_path / "link.log").symlink_to(path)
    os.link(path, tmp_path / "hard.log")
    monkeypatch.chdir(tmp_path)
    paths = ["a.log", "a.log", "./a.log", str(path), "link.log", "hard.log"]
    lines, log_reader = read_all(paths)
    assert [(line.path, line.number) for line in lines] == [("a.log", 2)]
    assert log_reader.lines_read == 2
    assert log_reader.errors == []


def test_reader_reads_stdin_once() -> None:
    stdin = io.BytesIO(f"{MSMTP}\n".encode())
    lines, log_reader = read_all(["-", "-"], stdin=stdin)
    assert [(line.path, line.number) for line in lines] == [("-", 1)]
    assert log_reader.lines_read == 1
    assert log_reader.errors == []


def test_reader_keeps_lines_before_gzip_cut(tmp_path: Path) -> None:
    content = "".join(f"{MSMTP} #{number}\n" for number in range(5000)).encode()
    truncated = gzip.compress(content)[:-2000]
    decoded = zlib.decompressobj(wbits=31).decompress(truncated)
    complete = decoded.count(b"\n")
    path = tmp_path / "mail.log.4.gz"
    path.write_bytes(truncated)
    lines, log_reader = read_all([str(path)])
    assert complete > 1000
    assert len(lines) == complete
    assert lines[-1].text == f"{MSMTP} #{complete - 1}"
    assert log_reader.lines_read == complete
    assert [reason.split(":")[0] for _, reason in log_reader.errors] == [
        "invalid or truncated gzip data"
    ]


def test_reader_rejects_directory(tmp_path: Path) -> None:
    lines, log_reader = read_all([str(tmp_path)])
    assert lines == []
    assert log_reader.errors == [(str(tmp_path), "is a directory, not a log file")]


def test_reader_rejects_character_device(tmp_path: Path) -> None:
    good = tmp_path / "mail.log"
    good.write_text(MSMTP + "\n")
    lines, log_reader = read_all(["/dev/null", str(good)])
    assert [line.text for line in lines] == [MSMTP]
    assert log_reader.errors == [("/dev/null", "is a character device, not a log file")]


def feed_fifo_in_background(fifo: Path, data: bytes) -> threading.Thread:
    """Start a thread that writes ``data`` to ``fifo`` once a reader opens it.

    Without a writer, a reader that opens the FIFO blocking would wait for ever. With this
    one, such a reader gets ``data`` and then the end of the file.
    """

    def write() -> None:
        with contextlib.suppress(OSError), fifo.open("wb") as stream:
            stream.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def stop_fifo_writer(fifo: Path, thread: threading.Thread) -> None:
    """Unblock a writer still waiting for a reader, then wait for its thread."""
    descriptor = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    thread.join(timeout=10)
    os.close(descriptor)


def test_reader_reads_fifo_like_process_substitution(tmp_path: Path) -> None:
    # A shell's <(zcat mail.log.2.gz) hands over /dev/fd/N, a pipe.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = feed_fifo_in_background(fifo, f"{MSMTP}\n".encode())
    lines, log_reader = read_all([str(fifo)])
    stop_fifo_writer(fifo, writer)
    assert [line.text for line in lines] == [MSMTP]
    assert log_reader.errors == []


class EndlessZeros(io.RawIOBase):
    """Standard input fed from /dev/zero: NUL bytes for ever, never a line break."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        buffer[:] = bytes(len(buffer))
        return len(buffer)


def test_endless_input_without_line_break_stops() -> None:
    log_reader = LogReader(["-"], stdin=EndlessZeros())  # type: ignore[arg-type]
    assert list(log_reader) == []
    assert [path for path, _ in log_reader.errors] == ["-"]
    assert "no line break" in log_reader.errors[0][1]


def test_feed_lines_stops_when_time_runs_short(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text((MSMTP + "\n") * (DEADLINE_CHECK_LINES + 10))
    fed: list[LogLine] = []
    complete, count = feed_lines(LogReader([str(log)]), fed.append, lambda: 0.0)
    assert (complete, count, len(fed)) == (False, DEADLINE_CHECK_LINES, DEADLINE_CHECK_LINES)


def test_feed_lines_reads_all_with_time_left(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text((MSMTP + "\n") * 3)
    fed: list[LogLine] = []
    assert feed_lines(LogReader([str(log)]), fed.append, lambda: 60.0) == (True, 3)


def test_reader_reads_fifo_whose_writer_already_closed(tmp_path: Path) -> None:
    # The shell keeps a read end of a process substitution's pipe, so a writer that wrote
    # everything and exited before smtpdiag opened the pipe has left its lines in it.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    shell_end = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(fifo, os.O_WRONLY)
    os.write(writer, f"{MSMTP}\n".encode())
    os.close(writer)
    found: list[list[LogLine]] = []
    reader = threading.Thread(target=lambda: found.append(read_all([str(fifo)])[0]), daemon=True)
    reader.start()
    reader.join(timeout=5)
    waited_for_writer = reader.is_alive()
    if waited_for_writer:  # unblock it, so that the test fails instead of hanging
        os.close(os.open(fifo, os.O_WRONLY))
        reader.join(timeout=5)
    os.close(shell_end)
    assert not waited_for_writer
    assert len(found) == 1
    assert [line.text for line in found[0]] == [MSMTP]
