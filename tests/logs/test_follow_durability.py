"""Durability of the follower: every msmtp record written is counted once, across rotation,
truncation, deletion and restarts from the state file.

A writer appends real msmtp 1.8.23 log file records in bursts, with syslog lines of other
programs between them, and the follower is polled by hand around each event. Every record
names its own recipient (``rcpt<N>@example.net``), so the test distinguishes a lost record
from a twice-counted one. The records go through the real parsers (``Analysis``), so the
tests also prove that the follower hands on whole lines that the parsers count.
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import pytest

from smtpdiag.logs.analysis import Analysis, AnalysisOptions
from smtpdiag.logs.follow import Follower

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()

BURST = 250
"""Records written per burst. Each case writes a few thousand records."""

FAILURE_EVERY = 7
"""Every seventh record is a rejected XOAUTH2 login, and the others are successes."""

NOISE = "Dec 05 00:39:28 mx CRON[812]: (root) CMD (run-parts /etc/cron.hourly)\n"

TAG = re.compile(r"recipients=rcpt(\d+)@example\.net")


def record(number: int) -> str:
    """Return msmtp's log file record of message ``number``, as msmtp 1.8.23 writes it."""
    second = number % 60
    head = (
        f"Dec 05 00:{number // 60 % 60:02d}:{second:02d} host=127.0.0.1 tls=on auth=on "
        f"user=lab.user@example.com from=lab.user@example.com "
        f"recipients=rcpt{number}@example.net "
    )
    if number % FAILURE_EVERY == 0:
        return (
            head + "smtpstatus=535 smtpmsg='535 5.7.8 Authentication failed.' "
            "errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM\n"
        )
    return head + "mailsize=147 smtpstatus=250 smtpmsg='250 2.0.0 OK: queued' exitcode=EX_OK\n"


class Writer:
    """A daemon that keeps its log file open in append mode until it reopens it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        """Records written so far; the next record gets this number."""
        self.lines = 0
        """Lines written so far, records and noise."""
        self.handle: TextIO = path.open("a")

    def burst(self, count: int = BURST) -> range:
        """Append ``count`` records, each followed by a noise line, and return their numbers."""
        numbers = range(self.written, self.written + count)
        self.handle.write("".join(record(number) + NOISE for number in numbers))
        self.handle.flush()
        self.written += count
        self.lines += 2 * count
        return numbers

    def reopen(self) -> None:
        """Open the path again, as a daemon does on SIGHUP after logrotate renamed its file."""
        self.handle.close()
        self.handle = self.path.open("a")

    def close(self) -> None:
        self.handle.close()


class Tally:
    """Feeds every polled line to a real ``Analysis`` and records which records it saw."""

    def __init__(self) -> None:
        self.analysis = Analysis(AnalysisOptions(zone=UTC), now=lambda: NOW)
        self.seen: collections.Counter[int] = collections.Counter()
        self.lines_read = 0

    def poll(self, follower: Follower, times: int = 1) -> None:
        """Poll ``times`` times, because a rotation may take more than one poll to finish."""
        for _ in range(times):
            for line in follower.poll():
                self.analysis.feed(line)
                match = TAG.search(line.text)
                if match is not None:
                    self.seen[int(match.group(1))] += 1

    def add_lines_read(self, follower: Follower) -> None:
        self.lines_read += follower.lines_read

    def missing(self, written: int) -> list[int]:
        return [number for number in range(written) if self.seen[number] == 0]

    def repeated(self) -> list[int]:
        return sorted(number for number, count in self.seen.items() if count > 1)


def failures_among(written: int) -> int:
    return sum(1 for number in range(written) if number % FAILURE_EVERY == 0)


def assert_exact(tally: Tally, written: int) -> None:
    """Assert that each of the ``written`` records was counted exactly once."""
    assert tally.missing(written) == []
    assert tally.repeated() == []
    assert tally.analysis.attempts_counted == written
    assert tally.analysis.failures_counted == failures_among(written)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "mail.log"
    path.write_text("")
    return path


@pytest.fixture
def writer(log: Path) -> Iterator[Writer]:
    daemon = Writer(log)
    try:
        yield daemon
    finally:
        daemon.close()


def warm_up(writer: Writer, follower: Follower, tally: Tally, bursts: int = 3) -> None:
    """Write and read a few bursts, so that the follower has a position deep in the file."""
    for _ in range(bursts):
        writer.burst()
        tally.poll(follower)


def test_rename_rotations_count_each_record_once(log: Path, writer: Writer) -> None:
    tally = Tally()
    follower = Follower([str(log)])
    warm_up(writer, follower, tally)
    for rotation in range(3):
        writer.burst()  # unread when the file is renamed
        for number in range(rotation, -1, -1):
            older = log.with_name(f"mail.log.{number}")
            if older.exists():
                older.rename(log.with_name(f"mail.log.{number + 1}"))
        log.rename(log.with_name("mail.log.0"))
        writer.burst()  # the daemon still writes to the renamed file
        writer.reopen()
        writer.burst()  # first records in the new file
        tally.poll(follower, times=2)
        warm_up(writer, follower, tally, bursts=2)
    tally.add_lines_read(follower)
    follower.close()
    assert_exact(tally, writer.written)
    assert tally.lines_read == writer.lines


def test_two_renames_between_polls_lose_nothing(log: Path, writer: Writer) -> None:
    tally = Tally()
    follower = Follower([str(log)])
    warm_up(writer, follower, tally)
    writer.burst()
    log.rename(log.with_name("mail.log.1"))
    writer.reopen()
    writer.burst()  # only in the file that is renamed again before the next poll
    log.with_name("mail.log.1").rename(log.with_name("mail.log.2"))
    log.rename(log.with_name("mail.log.1"))
    writer.reopen()
    writer.burst()
    tally.poll(follower, times=3)
    warm_up(writer, follower, tally, bursts=2)
    tally.add_lines_read(follower)
    follower.close()
    assert_exact(tally, writer.written)


def copytruncate(log: Path) -> None:
    """Copy the file to ``.1``, then truncate it to zero, as logrotate's copytruncate does."""
    log.with_name("mail.log.1").write_bytes(log.read_bytes())
    os.truncate(log, 0)


def test_copytruncate_counts_each_record_once(log: Path, writer: Writer) -> None:
    tally = Tally()
    follower = Follower([str(log)])
    warm_up(writer, follower, tally)
    for _ in range(3):
        writer.burst()  # unread, so only in the copy after the truncation
        copytruncate(log)
        writer.burst()
        tally.poll(follower)
        warm_up(writer, follower, tally, bursts=2)
    tally.add_lines_read(follower)
    follower.close()
    assert_exact(tally, writer.written)
    assert tally.lines_read == writer.lines


def test_copytruncate_regrown_past_position(log: Path, writer: Writer) -> None:
    tally = Tally()
    follower = Follower([str(log)])
    warm_up(writer, follower, tally, bursts=1)
    writer.burst()
    copytruncate(log)
    for _ in range(4):
        writer.burst()  # the file grows past the old read position before the next poll
    tally.poll(follower)
    warm_up(writer, follower, tally, bursts=2)
    follower.close()
    assert_exact(tally, writer.written)


def test_copytruncate_race_loses_only_gap(log: Path, writer: Writer) -> None:
    """Records written between the copy and the truncation are in neither file: every
    tailer loses them, and nothing else is lost or counted twice."""
    tally = Tally()
    follower = Follower([str(log)])
    warm_up(writer, follower, tally)
    writer.burst()
    log.with_name("mail.log.1").write_bytes(log.read_bytes())
    gap = writer.burst()
    os.truncate(log, 0)
    writer.burst()
    tally.poll(follower)
    warm_up(writer, follower, tally, bursts=2)
    follower.close()
    assert tally.missing(writer.written) == list(gap)
    assert tally.repeated() == []
    assert tally.analysis.attempts_counted == writer.written - len(gap)


def test_delete_and_recreate_counts_each_record_once(log: Path, writer: Writer) -> None:
    tally = Tally()
    follower = Follower([str(log)])
    warm_up(writer, follower, tally)
    for _ in range(3):
        writer.burst()
        log.unlink()
        writer.burst()  # written to the deleted file, still open in the daemon
        tally.poll(follower)  # the path is missing now
        writer.burst()
        writer.reopen()  # creates the file again
        writer.burst()
        tally.poll(follower, times=2)
        warm_up(writer, follower, tally, bursts=2)
    tally.add_lines_read(follower)
    follower.close()
    assert_exact(tally, writer.written)
    assert tally.lines_read == writer.lines


def test_delete_and_recreate_between_polls(log: Path, writer: Writer) -> None:
    tally = Tally()
    follower = Follower([str(log)])
    warm_up(writer, follower, tally)
    writer.burst()
    log.unlink()
    writer.burst()
    writer.reopen()
    writer.burst()
    tally.poll(follower, times=2)
    warm_up(writer, follower, tally, bursts=2)
    follower.close()
    assert_exact(tally, writer.written)


def test_truncate_and_rewrite_shorter(log: Path, writer: Writer) -> None:
    """The file is truncated and the daemon writes fewer bytes than were read before the
    next poll: the follower reads the new content from offset 0."""
    tally = Tally()
    follower = Follower([str(log)])
    warm_up(writer, follower, tally, bursts=4)
    read_size = log.stat().st_size
    os.truncate(log, 0)
    writer.burst(BURST // 2)
    assert 0 < log.stat().st_size < read_size
    tally.poll(follower)
    warm_up(writer, follower, tally, bursts=2)
    follower.close()
    assert_exact(tally, writer.written)


def test_cut_keeping_start_reads_kept_lines_again(log: Path, writer: Writer) -> None:
    """A file cut to a shorter length in place (``truncate -s``) keeps lines that were read
    already. The follower cannot tell them from lines written after the cut, so it reads the
    file again from offset 0: the kept records count twice and none is lost."""
    tally = Tally()
    follower = Follower([str(log)])
    warm_up(writer, follower, tally, bursts=4)
    kept = range(BURST)
    os.truncate(log, sum(len(record(number) + NOISE) for number in kept))
    writer.burst()
    tally.poll(follower)
    warm_up(writer, follower, tally, bursts=2)
    follower.close()
    assert tally.missing(writer.written) == []
    assert tally.repeated() == list(kept)


def test_rewrite_keeping_last_lines_reads_them_again(log: Path, writer: Writer) -> None:
    """A file rewritten in place with its last lines (``tail -n N f > t; cat t > f``) starts
    with other bytes, so it is read from offset 0: the kept records count twice."""
    tally = Tally()
    follower = Follower([str(log)])
    warm_up(writer, follower, tally, bursts=4)
    kept = range(3 * BURST, 4 * BURST)
    log.write_text("".join(record(number) + NOISE for number in kept))
    writer.burst()
    tally.poll(follower)
    follower.close()
    assert tally.missing(writer.written) == []
    assert tally.repeated() == list(kept)


def crash(follower: Follower) -> None:
    """Stop a follower the way a killed process stops: no final poll and no state saved.

    Only the file descriptors go, as the kernel closes them when a process dies.
    """
    follower.close()


ROTATIONS_WHILE_DOWN = ["none", "rename", "copytruncate", "delete-and-recreate"]


@pytest.mark.parametrize("rotation", ROTATIONS_WHILE_DOWN)
def test_crash_after_save_resumes_exactly(
    log: Path, writer: Writer, tmp_path: Path, rotation: str
) -> None:
    state = str(tmp_path / "state.json")
    tally = Tally()
    first = Follower([str(log)], state_file=state)
    for _ in range(3):
        writer.burst()
        tally.poll(first)
        first.save_state()
    writer.burst()  # written after the last save, never read by the first follower
    crash(first)
    tally.add_lines_read(first)

    writer.burst()
    if rotation == "rename":
        log.rename(log.with_name("mail.log.1"))
        writer.reopen()
    elif rotation == "copytruncate":
        copytruncate(log)
    elif rotation == "delete-and-recreate":
        log.unlink()
        writer.reopen()
    writer.burst()

    second = Follower([str(log)], state_file=state)
    for _ in range(3):
        tally.poll(second, times=2)
        second.save_state()
        writer.burst()
    tally.poll(second)
    tally.add_lines_read(second)
    second.close()

    if rotation == "delete-and-recreate":
        # The deleted file is gone while no follower runs, and the records in it with it.
        lost = range(3 * BURST, 5 * BURST)
        assert tally.missing(writer.written) == list(lost)
        assert tally.repeated() == []
        return
    assert_exact(tally, writer.written)
    assert tally.lines_read == writer.lines


def test_crash_before_save_counts_unsaved_twice(log: Path, writer: Writer, tmp_path: Path) -> None:
    """Records read after the last save are read again by the next follower: at most the
    records of one save interval count twice, and none is lost."""
    state = str(tmp_path / "state.json")
    tally = Tally()
    first = Follower([str(log)], state_file=state)
    writer.burst()
    tally.poll(first)
    first.save_state()
    unsaved = writer.burst()
    tally.poll(first)
    crash(first)
    writer.burst()
    second = Follower([str(log)], state_file=state)
    tally.poll(second)
    second.close()
    assert tally.missing(writer.written) == []
    assert tally.repeated() == list(unsaved)


def test_crash_during_save_keeps_old_state(log: Path, writer: Writer, tmp_path: Path) -> None:
    """A crash while the state is written leaves a temporary file next to the old state.
    The next follower reads the old state and ignores the temporary file."""
    state = tmp_path / "state.json"
    tally = Tally()
    first = Follower([str(log)], state_file=str(state))
    writer.burst()
    tally.poll(first)
    first.save_state()
    (tmp_path / ".smtpdiag-state-partial").write_text('{"truncated')
    crash(first)
    writer.burst()
    second = Follower([str(log)], state_file=str(state))
    tally.poll(second)
    second.close()
    assert_exact(tally, writer.written)


def test_writes_to_old_file_after_switch_are_lost(log: Path, writer: Writer) -> None:
    """logrotate renames the file and creates a new one (``create``), and the follower
    moves to the new file. Only then does the daemon reopen its log. The records it wrote to
    the old file in between are lost, and nothing else."""
    tally = Tally()
    follower = Follower([str(log)])
    warm_up(writer, follower, tally)
    writer.burst()
    log.rename(log.with_name("mail.log.1"))
    log.write_text("")
    tally.poll(follower, times=2)
    after_switch = writer.burst()
    writer.reopen()
    writer.burst()
    tally.poll(follower, times=2)
    follower.close()
    assert tally.missing(writer.written) == list(after_switch)
    assert tally.repeated() == []


def test_copytruncate_of_file_empty_at_last_poll(log: Path, writer: Writer) -> None:
    """A file that was empty at the last poll gives no first bytes to find its copy by, so the
    records that reached only the copy are lost. Nothing else is lost or counted twice."""
    tally = Tally()
    follower = Follower([str(log)])
    tally.poll(follower)
    only_in_copy = writer.burst()
    copytruncate(log)
    writer.burst()
    tally.poll(follower)
    warm_up(writer, follower, tally, bursts=2)
    follower.close()
    assert tally.missing(writer.written) == list(only_in_copy)
    assert tally.repeated() == []
