"""Tests of the follower: rotation, truncation, late and deleted files, state across restarts."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from smtpdiag.errors import UsageError
from smtpdiag.logs.follow import Follower

NOISE = "Dec  3 10:15:03 mx CRON[812]: (root) CMD (run-parts /etc/cron.hourly)\n"


def event(number: int) -> str:
    return (
        f"Dec  3 10:15:{number % 60:02d} mx postfix/submission/smtpd[4242]: warning: "
        f"unknown[192.0.2.{number % 250}]: SASL LOGIN authentication failed: "
        f"UGFzc3dvcmQ6 #{number}\n"
    )


def append(path: Path, text: str) -> None:
    with path.open("a") as stream:
        stream.write(text)


def tags(lines: list) -> list[int]:  # type: ignore[type-arg]
    return [int(line.text.rsplit("#", 1)[1]) for line in lines]


def test_follow_starts_at_end(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(event(1) + NOISE)
    follower = Follower([str(log)])
    append(log, event(2) + NOISE + event(3))
    lines = follower.poll()
    assert tags(lines) == [2, 3]
    assert [line.number for line in lines] == [3, 5]
    assert follower.lines_read == 3
    follower.close()


def test_follow_from_start(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(event(1) + NOISE)
    follower = Follower([str(log)], start_at_end=False)
    assert tags(follower.poll()) == [1]
    follower.close()


def test_follow_holds_partial_line(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    follower = Follower([str(log)])
    text = event(1)
    append(log, text[:30])
    assert follower.poll() == []
    append(log, text[30:])
    assert tags(follower.poll()) == [1]
    follower.close()


def test_follow_rename_rotation(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    follower = Follower([str(log)])
    append(log, event(1))
    assert tags(follower.poll()) == [1]
    append(log, event(2))
    log.rename(tmp_path / "mail.log.1")
    append(tmp_path / "mail.log.1", event(3))
    log.write_text(event(4))
    assert tags(follower.poll()) == [2, 3, 4]
    append(log, event(5))
    assert tags(follower.poll()) == [5]
    follower.close()


def test_follow_copytruncate(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    follower = Follower([str(log)])
    append(log, event(1) + event(2))
    assert tags(follower.poll()) == [1, 2]
    log.write_text(event(3))  # truncates, then writes less than before
    assert tags(follower.poll()) == [3]
    follower.close()


def copytruncate(log: Path) -> None:
    """Do what logrotate's copytruncate does: copy the file to .1, then truncate it."""
    (log.parent / f"{log.name}.1").write_bytes(log.read_bytes())
    log.write_text("")


def test_copytruncate_reads_lines_only_in_copy(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    follower = Follower([str(log)])
    append(log, event(1))
    assert tags(follower.poll()) == [1]
    append(log, event(2) + event(3))  # written after the poll, before the copy
    copytruncate(log)
    append(log, event(4))
    assert tags(follower.poll()) == [2, 3, 4]
    follower.close()


def test_copytruncate_while_stopped_reads_copy(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    state = tmp_path / "state.json"
    log.write_text("")
    first = Follower([str(log)], state_file=str(state))
    append(log, event(1))
    assert tags(first.poll()) == [1]
    first.save_state()
    first.close()
    append(log, event(2))
    copytruncate(log)
    append(log, event(3))
    second = Follower([str(log)], state_file=str(state))
    assert tags(second.poll()) == [2, 3]
    second.close()


def test_two_rotations_while_stopped_lose_nothing(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    state = tmp_path / "state.json"
    log.write_text("")
    first = Follower([str(log)], state_file=str(state))
    append(log, event(1))
    assert tags(first.poll()) == [1]
    first.save_state()
    first.close()
    append(log, event(2))
    log.rename(tmp_path / "mail.log.1")
    append(log, event(3))
    (tmp_path / "mail.log.1").rename(tmp_path / "mail.log.2")
    log.rename(tmp_path / "mail.log.1")
    append(log, event(4))
    second = Follower([str(log)], state_file=str(state))
    found = []
    for _ in range(4):
        found += tags(second.poll())
    assert found == [2, 3, 4]
    second.close()


def test_follow_file_appears_later(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    follower = Follower([str(log)])
    assert follower.poll() == []
    log.write_text(NOISE + event(1))
    lines = follower.poll()
    assert tags(lines) == [1]
    assert lines[0].number == 2
    follower.close()


def test_follow_deleted_file(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    follower = Follower([str(log)])
    handle = log.open("a")
    log.unlink()
    handle.write(event(1))
    handle.close()
    assert tags(follower.poll()) == [1]
    assert follower.poll() == []
    log.write_text(event(2))
    assert tags(follower.poll()) == [2]
    follower.close()


def test_state_resumes_without_loss(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    state = tmp_path / "state.json"
    log.write_text("")
    first = Follower([str(log)], state_file=str(state))
    append(log, event(1) + event(2)[:20])
    assert tags(first.poll()) == [1]
    first.save_state()
    first.close()
    append(log, event(2)[20:] + event(3))
    second = Follower([str(log)], state_file=str(state))
    lines = second.poll()
    assert tags(lines) == [2, 3]
    assert [line.number for line in lines] == [2, 3]
    second.close()


def test_state_file_is_private(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    state = tmp_path / "state.json"
    log.write_text(event(1))
    follower = Follower([str(log)], state_file=str(state))
    follower.save_state()
    follower.close()
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    saved = json.loads(state.read_text())[str(log)]
    assert saved["offset"] == len(event(1))
    assert saved["inode"] == os.stat(log).st_ino


def test_state_across_rotation(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    state = tmp_path / "state.json"
    log.write_text("")
    first = Follower([str(log)], state_file=str(state))
    append(log, event(1))
    assert tags(first.poll()) == [1]
    first.save_state()
    first.close()
    append(log, event(2))
    log.rename(tmp_path / "mail.log-20261203")
    log.write_text(event(3))
    second = Follower([str(log)], state_file=str(state))
    assert tags(second.poll()) == [2, 3]
    second.save_state()
    second.close()
    third = Follower([str(log)], state_file=str(state))
    assert third.poll() == []
    third.close()


def test_state_new_file_same_inode(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    state = tmp_path / "state.json"
    log.write_text(event(1))
    first = Follower([str(log)], state_file=str(state), start_at_end=False)
    assert tags(first.poll()) == [1]
    first.save_state()
    first.close()
    log.write_text(event(7) + event(8))  # same inode, other first bytes
    second = Follower([str(log)], state_file=str(state))
    assert tags(second.poll()) == [7, 8]
    second.close()


def test_follow_truncated_and_regrown(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    follower = Follower([str(log)])
    append(log, "".join(event(number) for number in range(100)))
    assert tags(follower.poll()) == list(range(100))
    log.write_text("".join(event(number) for number in range(1000, 1200)))
    lines = follower.poll()
    assert tags(lines) == list(range(1000, 1200))
    assert [line.number for line in lines] == list(range(1, 201))
    follower.close()


def test_follow_appends_after_regrowth(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(event(1))
    follower = Follower([str(log)], start_at_end=False)
    assert tags(follower.poll()) == [1]
    append(log, event(2))
    assert tags(follower.poll()) == [2]
    assert follower.poll() == []
    follower.close()


def test_follow_rejects_character_device(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="smtpdiag.logs.follow")
    follower = Follower(["/dev/null"])
    assert follower.poll() == []
    assert follower.poll() == []
    assert [record.getMessage() for record in caplog.records] == [
        "cannot open /dev/null: is a character device, not a log file"
    ]
    follower.close()


def test_follow_directory_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="smtpdiag.logs.follow")
    follower = Follower([str(tmp_path)])
    for _ in range(5):
        assert follower.poll() == []
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.WARNING, f"cannot open {tmp_path}: is a directory, not a log file")
    ]
    follower.close()


def test_follow_missing_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="smtpdiag.logs.follow")
    log = tmp_path / "mail.log"
    follower = Follower([str(log)])
    for _ in range(5):
        assert follower.poll() == []
    log.write_text(event(1))
    assert tags(follower.poll()) == [1]
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.WARNING, f"waiting for {log} to be created"),
        (logging.INFO, f"reading {log}"),
    ]
    follower.close()


def write_state(path: Path, log: Path, **fields: object) -> None:
    entry = {"device": 1, "inode": 2, "offset": 0, "line": 0, "fingerprint": "0" * 64}
    entry.update(fields)
    path.write_text(json.dumps({str(log): entry}))


INVALID_ENTRIES = [
    pytest.param({"offset": -5}, "invalid offset", id="negative-offset"),
    pytest.param({"offset": 1 << 70}, "invalid offset", id="offset-beyond-64-bits"),
    pytest.param({"inode": "12"}, "invalid inode", id="inode-string"),
    pytest.param({"device": 2049.5}, "invalid device", id="device-float"),
    pytest.param({"inode": True}, "invalid inode", id="inode-boolean"),
    pytest.param({"line": -1}, "invalid line", id="negative-line"),
    pytest.param({"fingerprint": 7}, "invalid fingerprint", id="fingerprint-number"),
]


@pytest.mark.parametrize(("fields", "problem"), INVALID_ENTRIES)
def test_state_invalid_entry_raises(
    tmp_path: Path, fields: dict[str, object], problem: str
) -> None:
    log = tmp_path / "mail.log"
    log.write_text(event(1))
    state = tmp_path / "state.json"
    write_state(state, log, **fields)
    with pytest.raises(UsageError, match=problem) as raised:
        Follower([str(log)], state_file=str(state))
    assert raised.value.value == str(state)
    assert str(state) in raised.value.problem


def test_state_offset_past_end_rereads(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(event(1))
    state = tmp_path / "state.json"
    status = os.stat(log)
    write_state(state, log, device=status.st_dev, inode=status.st_ino, offset=10**15)
    follower = Follower([str(log)], state_file=str(state))
    assert tags(follower.poll()) == [1]
    follower.close()


def test_state_directory_missing(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    state = tmp_path / "missing" / "state.json"
    with pytest.raises(UsageError, match="does not exist") as raised:
        Follower([str(log)], state_file=str(state))
    assert str(state) in raised.value.problem
    assert "Create the directory" in raised.value.fix


def test_state_save_after_directory_removed(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(event(1))
    directory = tmp_path / "state"
    directory.mkdir()
    state = directory / "state.json"
    follower = Follower([str(log)], state_file=str(state))
    directory.rmdir()
    with pytest.raises(UsageError, match="Cannot write the state file") as raised:
        follower.save_state()
    assert raised.value.value == str(state)
    follower.close()


def test_state_file_is_directory(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    state = tmp_path / "state.json"
    state.mkdir()
    with pytest.raises(UsageError, match="is a directory, not a state file") as raised:
        Follower([str(log)], state_file=str(state))
    assert raised.value.value == str(state)


def test_state_link_to_device(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    state = tmp_path / "state.json"
    state.symlink_to("/dev/null")
    with pytest.raises(UsageError, match="is a character device, not a state file"):
        Follower([str(log)], state_file=str(state))


def test_state_link_to_fifo(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    state = tmp_path / "state.json"
    state.symlink_to(fifo)
    # A writer that sends an empty JSON object, so that a reader that opened the FIFO
    # blocking would return instead of waiting for ever.
    writer = threading.Thread(target=lambda: fifo.write_text("{}"), daemon=True)
    writer.start()
    try:
        with pytest.raises(UsageError, match="is a FIFO"):
            Follower([str(log)], state_file=str(state))
    finally:
        descriptor = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        writer.join(timeout=10)
        os.close(descriptor)


def test_state_file_too_large(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"padding": "x" * (2 << 20)}))
    with pytest.raises(UsageError, match="is larger than 1048576 bytes"):
        Follower([str(log)], state_file=str(state))


def test_state_deeply_nested_json(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    state = tmp_path / "state.json"
    state.write_text("[" * 200_000)
    with pytest.raises(UsageError, match="is not valid JSON"):
        Follower([str(log)], state_file=str(state))
