"""Tests of the follower: rotation, truncation, late and deleted files, state across restarts."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

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
