"""Following log files like ``tail -F``, across rotation, with a state file for restarts.

Each path is tracked by the device and inode of the file open for it and the offset after
the last complete line read. A poll reads what was appended, at most ``POLL_CAP_BYTES`` per
path, and returns the complete candidate lines; a partial last line is held until its
newline arrives. Rotation cases:

* rename (``mail.log`` becomes ``mail.log.1``): the old file is read to its end, then the
  new file at the path is read from offset 0;
* copytruncate (the file is shorter than the offset): reading restarts at offset 0;
* a path that does not exist yet, or was deleted: it is checked again on every poll and read
  from offset 0 when it appears, after the open deleted file has been read to its end.

The state file stores, per path, device, inode, offset, line number and a SHA-256 of the
file's first bytes (up to 256, at most the offset), which tells a new file that reused the
inode from the one that was read.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
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
)

logger = logging.getLogger(__name__)

POLL_CAP_BYTES = 8 << 20
"""Bytes read per path and poll at most, so that one poll stays short after a long pause."""

FINGERPRINT_BYTES = 256


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

    def open(self, name: str, offset: int, number: int) -> None:
        handle = open(name, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        status = os.fstat(handle.fileno())
        self.close()
        self.handle = handle
        self.device, self.inode = status.st_dev, status.st_ino
        handle.seek(offset)
        self.offset, self.number = offset, number
        self.pending, self.dropping = b"", False

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
        _write_atomically(self._state_file, json.dumps(state, indent=1, sort_keys=True))

    def close(self) -> None:
        """Close every open file."""
        for tail in self._tails:
            tail.close()

    def _start(self, tail: _Tail, start_at_end: bool) -> None:
        """Open a path at the saved position, at its end, or (rotated state) in its old file."""
        saved = self._saved.get(tail.path)
        try:
            status = os.stat(tail.path)
        except OSError:
            status = None
        if saved is None:
            if status is not None:
                self._open_or_wait(tail, tail.path, start_at_end)
            return
        if status is not None and _same_file(tail.path, status, saved):
            self._open_at(tail, tail.path, saved["offset"], saved.get("line", 0))
            return
        rotated = _find_rotated(tail.path, saved)
        if rotated is not None:
            # The file read last was renamed: read its rest first, the new file follows.
            self._open_at(tail, rotated, saved["offset"], saved.get("line", 0))
        elif status is not None:
            self._open_at(tail, tail.path, 0, 0)

    def _open_or_wait(self, tail: _Tail, name: str, at_end: bool) -> None:
        try:
            tail.open(name, 0, 0)
        except OSError as error:
            logger.warning("cannot open %s: %s", name, error.strerror)
            return
        if at_end:
            self._skip_to_end(tail)

    def _open_at(self, tail: _Tail, name: str, offset: int, number: int) -> None:
        try:
            tail.open(name, 0, 0)
        except OSError as error:
            logger.warning("cannot open %s: %s", name, error.strerror)
            return
        size = os.fstat(tail.handle.fileno()).st_size
        if size >= offset:
            tail.handle.seek(offset)
            tail.offset, tail.number = offset, number

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
        tail.handle.seek(last_newline + 1)
        tail.offset, tail.number = last_newline + 1, count

    def _poll_tail(self, tail: _Tail, lines: list[LogLine]) -> None:
        at_end = True
        if tail.handle is not None:
            at_end = self._read(tail, lines)
        try:
            status = os.stat(tail.path)
        except OSError:
            return  # deleted or renamed away: the open file is read on, the path awaited
        if tail.handle is None:
            self._open_or_wait(tail, tail.path, at_end=False)
            if tail.handle is not None:
                self._read(tail, lines)
            return
        if (status.st_dev, status.st_ino) != (tail.device, tail.inode):
            if at_end:
                self._finish(tail, lines)
                self._open_or_wait(tail, tail.path, at_end=False)
                if tail.handle is not None:
                    logger.info("reading %s from its start: the file was rotated", tail.path)
                    self._read(tail, lines)
            return
        if status.st_size < tail.handle.tell():
            logger.info("reading %s from its start: the file was truncated", tail.path)
            tail.open(tail.path, 0, 0)
            self._read(tail, lines)

    def _read(self, tail: _Tail, lines: list[LogLine]) -> bool:
        """Read up to ``POLL_CAP_BYTES`` from the open file; return True at its end."""
        total = 0
        while total < POLL_CAP_BYTES:
            block = tail.handle.read(min(BLOCK_SIZE, POLL_CAP_BYTES - total))
            if not block:
                return True
            total += len(block)
            self._consume(tail, block, lines)
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
        if tail.pending:
            tail.number += 1
            self.lines_read += 1
            if FAST_CANDIDATE.search(tail.pending) is not None:
                lines.append(LogLine(tail.path, tail.number, decode_line(tail.pending)))
        tail.close()


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


def _find_rotated(path: str, saved: dict[str, Any]) -> str | None:
    """Return the rotated name (``.1``, ``.0``, ``-YYYYMMDD``) that holds the saved file."""
    names = [f"{path}.1", f"{path}.0", *sorted(glob.glob(glob.escape(path) + "-[0-9]*"))]
    for name in names:
        with contextlib.suppress(OSError):
            if _same_file(name, os.stat(name), saved):
                return name
    return None


def _load_state(state_file: str) -> dict[str, dict[str, Any]]:
    try:
        with open(state_file, encoding="utf-8") as stream:
            data = json.load(stream)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise UsageError(
            f"Cannot read the state file {state_file}: {error}",
            "Fix or delete the file; without it, following starts at the end of each file.",
            value=state_file,
        ) from error
    if not isinstance(data, dict):
        raise UsageError(
            f"The state file {state_file} does not contain a JSON object.",
            "Delete the file; without it, following starts at the end of each file.",
            value=state_file,
        )
    required = {"device", "inode", "offset", "fingerprint"}
    return {
        path: entry
        for path, entry in data.items()
        if isinstance(entry, dict) and required <= entry.keys()
    }


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
