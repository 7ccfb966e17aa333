"""Following log files like ``tail -F``, across rotation, with a state file for restarts.

Each path is tracked by the device and inode of the file open for it and the offset after
the last complete line read. A poll reads what was appended, at most ``POLL_CAP_BYTES`` per
path, and returns the complete candidate lines. A partial last line is held until its
newline arrives. Rotation cases:

* rename (``mail.log`` becomes ``mail.log.1``): the old file is read to its end, then the
  new file at the path is read from offset 0. When the path was rotated more than once
  between two polls, the rotated files newer than the open one are read first, oldest first;
* copytruncate (the file is shorter than the read position, or its first bytes changed):
  reading restarts at offset 0. The first bytes (up to ``FINGERPRINT_BYTES``) are compared
  on every poll before reading, so a file that grew back past the old position within one
  poll interval is read from its start too. Lines written between the copy and the
  truncation are in neither file and are lost. A file that was empty at the last poll has
  no first bytes to find its copy by, so the lines that reached only the copy are lost;
* a file rewritten in place with part of its old content (``truncate -s``, or its last
  lines written back) is read again from offset 0, so the kept lines are returned twice:
  nothing distinguishes them from lines written after the rewrite;
* a path that does not exist yet, or was deleted: it is checked again on every poll and read
  from offset 0 when it appears, after the open deleted file has been read to its end.

Directories, devices, FIFOs and sockets are never opened for reading. Each problem with a
path is logged once, and again only when it changes.

The state file stores, per path, device, inode, offset, line number and a SHA-256 of the
file's first bytes (up to 256, at most the offset), which tells a new file that reused the
inode from the one that was read. A follower that stops without ``save_state`` (killed)
leaves the position of the last save, so the next one returns the lines read after that save
again. A file deleted while no follower runs is not read to its end.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Sequence
from typing import Any

from smtpdiag.errors import UsageError
from smtpdiag.logs.reader import (
    BLOCK_SIZE,
    FAST_CANDIDATE,
    MAX_LINE_BYTES,
    LogLine,
    candidate_spans,
    decode_line,
    open_regular_file,
)

logger = logging.getLogger(__name__)

POLL_CAP_BYTES = 8 << 20
"""Bytes read per path and poll at most, so that one poll stays short after a long pause."""

FINGERPRINT_BYTES = 256
"""Bytes at the start of a file that tell it from a new file at the same path and inode."""

MAX_STATE_BYTES = 1 << 20
"""Largest state file read: 1 MiB, several thousand paths."""

MAX_OFFSET = (1 << 63) - 1
"""Largest file offset the operating system accepts; a larger saved offset is invalid."""

MAX_DEVICE_OR_INODE = (1 << 64) - 1
"""Largest device or inode number: both are unsigned 64-bit integers on Linux."""


class _Tail:
    """Reading position in the file currently open for one path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: Any = None
        self.device = 0
        self.inode = 0
        self.offset = 0
        """Bytes of the file up to the end of the last complete line."""
        self.number = 0
        """Lines of the file up to ``offset``."""
        self.pending = b""
        self.dropping = False
        self.head = b""
        """The first bytes of the open file read so far, at most ``FINGERPRINT_BYTES``."""
        self.problem: str | None = None
        """The problem with the path logged last, so that a repeated one is not logged."""
        self.newer: list[str] = []
        """Rotated files, oldest first, that are newer than the open one and are read whole
        before the path itself: the files of rotations that happened while stopped."""

    def open(self, name: str, offset: int, number: int) -> None:
        handle = open_regular_file(name)
        status = os.fstat(handle.fileno())
        self.close()
        self.handle = handle
        self.device, self.inode = status.st_dev, status.st_ino
        self.seek(offset, number)

    def seek(self, offset: int, number: int) -> None:
        """Continue reading the open file at ``offset``, the start of line ``number + 1``."""
        self.handle.seek(offset)
        self.offset, self.number = offset, number
        self.pending, self.dropping = b"", False
        self.head = os.pread(self.handle.fileno(), min(FINGERPRINT_BYTES, offset), 0)

    def was_truncated(self) -> bool:
        """Tell whether the open file is shorter than the read position or starts otherwise."""
        descriptor = self.handle.fileno()
        if os.fstat(descriptor).st_size < self.handle.tell():
            return True
        return bool(self.head) and os.pread(descriptor, len(self.head), 0) != self.head

    def update_head(self) -> None:
        """Keep the first bytes read, until ``FINGERPRINT_BYTES`` of them are known."""
        if len(self.head) < FINGERPRINT_BYTES and self.offset > len(self.head):
            length = min(FINGERPRINT_BYTES, self.offset)
            self.head = os.pread(self.handle.fileno(), length, 0)

    def report(self, problem: str | None, level: int = logging.WARNING) -> None:
        """Log ``problem`` unless it was the last one logged; None marks the path as fine."""
        if problem is not None and problem != self.problem:
            logger.log(level, "%s", problem)
        self.problem = problem

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def fingerprint(self) -> str:
        return _fingerprint(self.handle.fileno(), self.offset)


def _fingerprint(descriptor: int, offset: int) -> str:
    head = os.pread(descriptor, min(FINGERPRINT_BYTES, offset), 0)
    return hashlib.sha256(head).hexdigest()


class Follower:
    """Follows files like ``tail -F`` and returns their new candidate lines on each poll."""

    def __init__(
        self, paths: Sequence[str], *, state_file: str | None = None, start_at_end: bool = True
    ) -> None:
        """Open every path, at its end or at the position saved in ``state_file``.

        Raises:
            UsageError: the state file cannot be used: its directory is missing or not
                writable, it is not a regular file, it is larger than 1 MiB, or its content
                is invalid.
        """
        self._state_file = state_file
        self._saved = _load_state(state_file) if state_file is not None else {}
        self._tails = [_Tail(path) for path in paths]
        self.lines_read = 0
        """Every line seen so far, candidate or not."""
        for tail in self._tails:
            self._start(tail, start_at_end)

    def poll(self) -> list[LogLine]:
        """Read what was appended since the last poll; return the complete candidate lines."""
        lines: list[LogLine] = []
        for tail in self._tails:
            self._poll_tail(tail, lines)
        return lines

    def save_state(self) -> None:
        """Write device, inode, offset and fingerprint of every path to the state file.

        The write is atomic (a temporary file renamed over the old one) with mode 0600.

        Raises:
            UsageError: the state file cannot be written.
        """
        if self._state_file is None:
            return
        state = dict(self._saved)
        for tail in self._tails:
            if tail.handle is not None:
                state[tail.path] = {
                    "device": tail.device,
                    "inode": tail.inode,
                    "offset": tail.offset,
                    "line": tail.number,
                    "fingerprint": tail.fingerprint(),
                }
        try:
            _write_atomically(self._state_file, json.dumps(state, indent=1, sort_keys=True))
        except OSError as error:
            raise UsageError(
                f"Cannot write the state file {self._state_file}: {error.strerror or error}",
                "Pass a --state path in a writable directory.",
                value=self._state_file,
            ) from error

    def close(self) -> None:
        """Close every open file."""
        for tail in self._tails:
            tail.close()

    def _start(self, tail: _Tail, start_at_end: bool) -> None:
        """Open a path at the saved position, at its end, or (rotated state) in its old file."""
        saved = self._saved.get(tail.path)
        status = self._stat_path(tail)
        if saved is None:
            if status is not None:
                self._open_or_wait(tail, tail.path, start_at_end)
            return
        if status is not None and _same_file(tail.path, status, saved):
            self._open_at(tail, tail.path, saved["offset"], saved.get("line", 0))
            return
        names = _rotated_names(tail.path)
        rotated = _find_rotated(names, saved)
        if rotated is not None:
            # The file read last was rotated: read its rest first, then the rotated files that
            # came after it, then the path itself.
            tail.newer = _newer_than(names, rotated)
            self._open_at(tail, rotated, saved["offset"], saved.get("line", 0))
        elif status is not None:
            self._open_at(tail, tail.path, 0, 0)

    @staticmethod
    def _stat_path(tail: _Tail) -> os.stat_result | None:
        """Return the status of the path; None, logged once, when it is missing or unreadable."""
        try:
            return os.stat(tail.path)
        except FileNotFoundError:
            if tail.handle is None:
                # tail -F also reports it once on stderr, because the path may be a typo.
                tail.report(f"waiting for {tail.path} to be created")
        except OSError as error:
            tail.report(f"cannot open {tail.path}: {error.strerror or error}")
        return None

    def _open_or_wait(self, tail: _Tail, name: str, at_end: bool) -> None:
        if not self._try_open(tail, name):
            return
        if at_end:
            self._skip_to_end(tail)

    def _open_at(self, tail: _Tail, name: str, offset: int, number: int) -> None:
        if not self._try_open(tail, name):
            return
        size = os.fstat(tail.handle.fileno()).st_size
        if size >= offset:
            tail.seek(offset, number)

    @staticmethod
    def _try_open(tail: _Tail, name: str) -> bool:
        """Open ``name`` for ``tail`` at offset 0; log a failure once and return False."""
        try:
            tail.open(name, 0, 0)
        except OSError as error:
            tail.report(f"cannot open {name}: {error.strerror or error}")
            return False
        if tail.problem is not None:
            logger.info("reading %s", name)
        tail.report(None)
        return True

    def _skip_to_end(self, tail: _Tail) -> None:
        """Move to the end of the last complete line, counting the lines skipped."""
        size = os.fstat(tail.handle.fileno()).st_size
        count = 0
        last_newline = -1
        position = 0
        while position < size:
            block = os.pread(tail.handle.fileno(), min(BLOCK_SIZE, size - position), position)
            if not block:
                break
            count += block.count(b"\n")
            found = block.rfind(b"\n")
            if found >= 0:
                last_newline = position + found
            position += len(block)
        tail.seek(last_newline + 1, count)

    def _poll_tail(self, tail: _Tail, lines: list[LogLine]) -> None:
        at_end = True
        if tail.handle is not None:
            if tail.offset or tail.pending or tail.dropping:
                self._restart_if_truncated(tail, lines)
            at_end = self._read(tail, lines)
        status = self._stat_path(tail)
        if status is None:
            return  # deleted or renamed away: the open file is read on, the path awaited
        if tail.handle is None:
            self._open_or_wait(tail, tail.path, at_end=False)
            if tail.handle is not None:
                self._read(tail, lines)
            return
        if (status.st_dev, status.st_ino) != (tail.device, tail.inode):
            if at_end and not tail.newer:
                # A path rotated twice between two polls leaves a file between the open one
                # and the path. That file is read first, as after a rotation while stopped.
                tail.newer = _rotated_after(tail)
            if at_end and tail.newer:
                self._finish(tail, lines)
                name = tail.newer.pop(0)
                logger.info("reading the rotated file %s before %s", name, tail.path)
                self._open_or_wait(tail, name, at_end=False)
                if tail.handle is not None:
                    self._read(tail, lines)
            elif at_end:
                # NOTE: lines the daemon writes to the old file after this switch (before it
                # reopens its log) are not read.
                self._finish(tail, lines)
                self._open_or_wait(tail, tail.path, at_end=False)
                if tail.handle is not None:
                    logger.info("reading %s from its start: the file was rotated", tail.path)
                    self._read(tail, lines)
            return

    def _restart_if_truncated(self, tail: _Tail, lines: list[LogLine]) -> None:
        """Go back to offset 0 of the open file when it was truncated (copytruncate).

        Lines written after the last poll and before the truncation are only in the copy
        that copytruncate made, so the copy is read from the read position first.
        """
        if not tail.was_truncated():
            return
        copy = _find_copy(tail.path, tail.head, tail.offset, (tail.device, tail.inode))
        if copy is not None:
            self._read_copy(tail, copy, lines)
        logger.info("reading %s from its start: the file was truncated", tail.path)
        tail.seek(0, 0)

    def _read_copy(self, tail: _Tail, name: str, lines: list[LogLine]) -> None:
        """Read the copy ``name`` of the open file from the read position to its end."""
        try:
            copy = open_regular_file(name)
        except OSError as error:
            tail.report(f"cannot open {name}: {error.strerror or error}")
            return
        original, tail.handle = tail.handle, copy
        try:
            copy.seek(tail.offset)
            while not self._read(tail, lines):
                pass
            self._flush_pending(tail, lines)
        finally:
            copy.close()
            tail.handle = original

    def _read(self, tail: _Tail, lines: list[LogLine]) -> bool:
        """Read up to ``POLL_CAP_BYTES`` from the open file; return True at its end."""
        total = 0
        while total < POLL_CAP_BYTES:
            block = tail.handle.read(min(BLOCK_SIZE, POLL_CAP_BYTES - total))
            if not block:
                return True
            total += len(block)
            self._consume(tail, block, lines)
            tail.update_head()
        return False

    def _consume(self, tail: _Tail, block: bytes, lines: list[LogLine]) -> None:
        """Split ``block`` after ``tail.pending`` into lines and keep the partial rest."""
        if tail.dropping:
            newline = block.find(b"\n")
            if newline == -1:
                return
            block = block[newline:]
            tail.dropping = False
        data = tail.pending + block if tail.pending else block
        end = data.rfind(b"\n") + 1
        for start, stop, newlines in candidate_spans(data, end):
            lines.append(
                LogLine(tail.path, tail.number + newlines + 1, decode_line(data[start:stop]))
            )
        complete = data.count(b"\n", 0, end)
        self.lines_read += complete
        tail.number += complete
        if end:
            # The bytes after the last newline are the end of ``block``, so the last complete
            # line ends that many bytes before the read position.
            tail.offset = tail.handle.tell() - (len(data) - end)
        tail.pending = data[end:]
        if len(tail.pending) > MAX_LINE_BYTES:
            tail.pending = tail.pending[:MAX_LINE_BYTES]
            tail.dropping = True

    def _finish(self, tail: _Tail, lines: list[LogLine]) -> None:
        """Return the held partial line of a rotated file as a line, then close the file."""
        self._flush_pending(tail, lines)
        tail.close()

    def _flush_pending(self, tail: _Tail, lines: list[LogLine]) -> None:
        """Return the held partial line of a file that grows no more as a line."""
        if tail.pending:
            tail.number += 1
            self.lines_read += 1
            if FAST_CANDIDATE.search(tail.pending) is not None:
                lines.append(LogLine(tail.path, tail.number, decode_line(tail.pending)))
            tail.pending = b""


def _same_file(path: str, status: os.stat_result, saved: dict[str, Any]) -> bool:
    """Tell whether ``path`` is the saved file: same inode, same first bytes, long enough."""
    if (status.st_dev, status.st_ino) != (saved["device"], saved["inode"]):
        return False
    if status.st_size < saved["offset"]:
        return False
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return bool(_fingerprint(descriptor, saved["offset"]) == saved["fingerprint"])
    finally:
        os.close(descriptor)


MAX_ROTATIONS = 9
"""Numbered rotated files searched: ``.0`` to ``.9``."""


def _rotated_names(path: str) -> list[str]:
    """Return the names logrotate gives rotated files that exist, newest first: ``.0``,
    ``.1`` … ``.9``, then ``-YYYYMMDD`` from the latest date."""
    # NOTE: a copy compressed at once (compress without delaycompress) is not searched, so
    # the lines that reached only that copy are lost.
    numbered = [f"{path}.{number}" for number in range(MAX_ROTATIONS + 1)]
    dated = sorted(glob.glob(glob.escape(path) + "-[0-9]*"), reverse=True)
    return [name for name in (*numbered, *dated) if os.path.isfile(name)]


def _find_rotated(names: list[str], saved: dict[str, Any]) -> str | None:
    """Return the rotated name that contains the saved file: renamed (same inode) or copied by
    copytruncate (another inode, the same first bytes)."""
    for name in names:
        with contextlib.suppress(OSError):
            if _same_file(name, os.stat(name), saved):
                return name
    for name in names:
        with contextlib.suppress(OSError):
            if _holds_saved_bytes(name, saved):
                return name
    return None


def _newer_than(names: list[str], rotated: str) -> list[str]:
    """Return the rotated files newer than ``rotated``, oldest first."""
    return list(reversed(names[: names.index(rotated)]))


def _rotated_after(tail: _Tail) -> list[str]:
    """Return the rotated files newer than the open one, oldest first, or none when the
    open file has no rotated name because it was deleted."""
    names = _rotated_names(tail.path)
    for name in names:
        with contextlib.suppress(OSError):
            status = os.stat(name)
            if (status.st_dev, status.st_ino) == (tail.device, tail.inode):
                return _newer_than(names, name)
    return []


def _holds_saved_bytes(name: str, saved: dict[str, Any]) -> bool:
    """Tell whether ``name`` is a regular file that starts with the saved file's first bytes
    and is at least as long as the saved position."""
    status = os.stat(name)
    if not stat.S_ISREG(status.st_mode) or status.st_size < saved["offset"]:
        return False
    descriptor = os.open(name, os.O_RDONLY)
    try:
        return bool(_fingerprint(descriptor, saved["offset"]) == saved["fingerprint"])
    finally:
        os.close(descriptor)


def _find_copy(path: str, head: bytes, offset: int, current: tuple[int, int]) -> str | None:
    """Return the copy of a truncated file: a rotated name, other than the file itself, that
    starts with ``head`` and reaches ``offset``."""
    for name in _rotated_names(path):
        with contextlib.suppress(OSError):
            status = os.stat(name)
            if (status.st_dev, status.st_ino) == current or not stat.S_ISREG(status.st_mode):
                continue
            if status.st_size < offset:
                continue
            descriptor = os.open(name, os.O_RDONLY)
            try:
                if os.pread(descriptor, len(head), 0) == head:
                    return name
            finally:
                os.close(descriptor)
    return None


def _load_state(state_file: str) -> dict[str, dict[str, Any]]:
    """Read the saved positions; an empty mapping when the state file does not exist yet.

    Raises:
        UsageError: the directory of the state file is missing or not writable, the state
            file is not a regular file or larger than ``MAX_STATE_BYTES``, or its content
            is not valid JSON of the expected shape.
    """
    _check_state_directory(state_file)
    text = _read_state_text(state_file)
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise _state_error(state_file, f"is not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise _state_error(state_file, "does not contain a JSON object")
    saved: dict[str, dict[str, Any]] = {}
    for path, entry in data.items():
        if isinstance(entry, dict) and entry.keys() >= STATE_FIELDS:
            _check_entry(state_file, path, entry)
            saved[path] = entry
    return saved


STATE_FIELDS = frozenset({"device", "inode", "offset", "fingerprint"})
"""Fields that every entry of the state file has; ``line`` is optional."""


def _check_state_directory(state_file: str) -> None:
    directory = os.path.dirname(os.path.abspath(state_file))
    if not os.path.isdir(directory):
        raise UsageError(
            f"The directory of the state file {state_file} does not exist: {directory}.",
            "Create the directory first, or pass a --state path in an existing directory.",
            value=state_file,
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(
            f"The directory of the state file {state_file} is not writable: {directory}.",
            "Pass a --state path in a directory that this user can write to.",
            value=state_file,
        )


def _read_state_text(state_file: str) -> bytes | None:
    """Return the bytes of the state file, or None when it does not exist."""
    try:
        with open_regular_file(state_file, "state file") as stream:
            text = stream.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise _state_error(state_file, f"cannot be read: {error.strerror or error}") from error
    if len(text) > MAX_STATE_BYTES:
        raise _state_error(state_file, f"is larger than {MAX_STATE_BYTES} bytes")
    return text


def _check_entry(state_file: str, path: str, entry: dict[str, Any]) -> None:
    """Check the types and ranges of one saved position."""
    if not isinstance(entry["fingerprint"], str):
        raise _state_error(state_file, f"has an invalid fingerprint for {path}")
    limits = {
        "device": MAX_DEVICE_OR_INODE,
        "inode": MAX_DEVICE_OR_INODE,
        "offset": MAX_OFFSET,
        "line": MAX_OFFSET,
    }
    for name, limit in limits.items():
        value = entry.get(name, 0)
        # bool is a subclass of int, but true and false are no positions.
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise _state_error(state_file, f"has an invalid {name} for {path}: {value!r:.40}")


def _state_error(state_file: str, problem: str) -> UsageError:
    return UsageError(
        f"The state file {state_file} {problem}.",
        "Delete the file or pass another --state path; without a state file, following "
        "starts at the end of each file.",
        value=state_file,
    )


def _write_atomically(path: str, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path`` (mode 0600), then rename it."""
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".smtpdiag-state-", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
