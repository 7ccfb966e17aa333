"""Streaming of candidate lines from log files, gzip-compressed files, stdin and journald.

Files are read in blocks of ``BLOCK_SIZE`` bytes. The pre-filter ``keywords.CANDIDATE`` runs
over each whole block, and only the lines around its matches are decoded and handed on, so a
line of another program costs a share of one regex scan and one newline count. Memory stays
constant: at most one block plus one partial line is held.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from gzip import BadGzipFile, GzipFile
from typing import IO, Any, BinaryIO, cast

from smtpdiag.errors import UsageError
from smtpdiag.logs.keywords import CANDIDATE
from smtpdiag.readiness import wait_readable

# The regex parser of the standard library; Python 3.11 moved it here and deprecated the
# sre_parse alias.
sre_parse: Any = importlib.import_module("re._parser")
sre_constants: Any = importlib.import_module("re._constants")

logger = logging.getLogger(__name__)

BLOCK_SIZE = 1 << 20
"""Bytes read per block: 1 MiB."""

MAX_LINE_BYTES = 1 << 20
"""Maximum line length kept in bytes; the bytes of a longer line past it are dropped."""

GZIP_MAGIC = b"\x1f\x8b"

STDIN_PATH = "-"
JOURNAL_PATH = "journal"

_FILE_TYPES = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
)


class NotRegularFileError(OSError):
    """A path names a directory, device, FIFO or socket, which is never read as a log file."""


def open_regular_file(path: str, role: str = "log file", *, allow_pipe: bool = False) -> io.FileIO:
    """Open ``path`` for unbuffered binary reading, rejecting anything but a regular file.

    With ``allow_pipe`` a FIFO is accepted too, such as the ``/dev/fd/N`` of a shell's
    process substitution: it ends when its writer closes it, as standard input does.

    The file is opened with ``O_NONBLOCK``, so that opening a FIFO without a writer does not
    block, and its type is checked on the open descriptor, so a path swapped in between
    cannot slip through. ``role`` names the file in the error reason.

    Raises:
        NotRegularFileError: the path is a directory, device, FIFO or socket.
        OSError: the path cannot be opened.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(descriptor).st_mode
        if not (stat.S_ISREG(mode) or (allow_pipe and stat.S_ISFIFO(mode))):
            name = next((name for test, name in _FILE_TYPES if test(mode)), "special file")
            reason = f"is a {name}, not a {role}"
            raise NotRegularFileError(errno.EINVAL, reason, path)
        if stat.S_ISFIFO(mode):
            # Reading a pipe that no writer has opened yet ends at once, so wait, as cat does,
            # until one has: Linux reports the pipe readable once a writer wrote or came and
            # went. The descriptor stays open meanwhile, so the data of a writer that already
            # closed stays in the pipe. A process substitution's pipe has its writer already.
            wait_readable(descriptor, None)
        os.set_blocking(descriptor, True)
        return io.FileIO(descriptor, "rb", closefd=True)
    except BaseException:
        os.close(descriptor)
        raise


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a log, as the parsers receive it."""

    path: str
    """The path as given, ``-`` for stdin, ``journal`` for journald."""
    number: int
    """1-based line number in that file, or the entry number for journald."""
    text: str
    """The line without its line ending, decoded as UTF-8 with invalid bytes replaced."""


def decode_line(raw: bytes) -> str:
    """Decode one line's bytes, dropping the carriage return of a CRLF line ending."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", errors="replace")


ANCHOR_RANK = b"JQZXKVYUGWHOFILNPREBTMCADS_(=)jqzxkvwybgfpmulcdhrsnioate"
"""Bytes ordered from rarest to most common in mail logs. The order is a rough estimate from
English letter frequencies and syslog headers, and bytes not listed count as most common."""


def fast_candidate_pattern(pattern: re.Pattern[bytes]) -> re.Pattern[bytes]:
    """Return a pattern that matches in the same lines as ``pattern`` but searches faster.

    Python's regex engine tries every alternative of ``a|b|c`` at every byte, unless all
    alternatives start with a literal byte: then it skips ahead to bytes of that first-byte
    set. Each alternative is therefore rewritten to start at its rarest literal byte, with the
    bytes before it as a lookbehind: ``exitcode=`` becomes ``=(?<=exitcode=)``. The rewritten
    pattern matches at another offset in the line, never in another set of lines. Patterns
    with constructs other than literals and classes are returned unchanged.
    """
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    items = list(parsed)
    if len(items) == 1 and items[0][0] is sre_constants.BRANCH:
        alternatives = items[0][1][1]
    else:
        alternatives = [parsed]
    rewritten: list[bytes] = []
    for alternative in alternatives:
        source = _anchored_alternative(list(alternative))
        if source is None:
            return pattern
        rewritten.append(source)
    return re.compile(b"|".join(rewritten), pattern.flags)


def _anchored_alternative(items: list[tuple[Any, Any]]) -> bytes | None:
    """Return the source of one alternative that starts at its rarest literal byte."""
    sources = [_item_source(item) for item in items]
    if any(source is None for source in sources):
        return None
    literals = [index for index, (op, _) in enumerate(items) if op is sre_constants.LITERAL]
    if not literals:
        return None
    anchor = min(literals, key=lambda index: _rarity(items[index][1]))
    parts: list[bytes] = [source for source in sources if source is not None]
    head = parts[anchor]
    if anchor > 0:
        head += b"(?<=" + b"".join(parts[: anchor + 1]) + b")"
    return head + b"".join(parts[anchor + 1 :])


def _rarity(byte: int) -> int:
    rank = ANCHOR_RANK.find(bytes([byte]))
    return rank if rank >= 0 else len(ANCHOR_RANK)


_CATEGORIES = {
    sre_constants.CATEGORY_WORD: rb"\w",
    sre_constants.CATEGORY_DIGIT: rb"\d",
    sre_constants.CATEGORY_SPACE: rb"\s",
}


def _item_source(item: tuple[Any, Any]) -> bytes | None:
    """Return regex source of a literal or a simple class; None for anything else."""
    op, value = item
    if op is sre_constants.LITERAL:
        return re.escape(bytes([value]))
    if op is not sre_constants.IN:
        return None
    members: list[bytes] = []
    for member_op, member in value:
        if member_op is sre_constants.LITERAL:
            members.append(re.escape(bytes([member])))
        elif member_op is sre_constants.CATEGORY and member in _CATEGORIES:
            members.append(_CATEGORIES[member])
        else:
            return None
    return b"[" + b"".join(members) + b"]"


FAST_CANDIDATE = fast_candidate_pattern(CANDIDATE)
"""``keywords.CANDIDATE`` rewritten for speed; it matches in exactly the same lines."""


def candidate_spans(data: bytes, end: int) -> Iterator[tuple[int, int, int]]:
    """Yield ``(start, stop, newlines)`` for each candidate line in ``data[:end]``.

    ``data[:end]`` must end with a newline. ``start:stop`` is the line without its newline,
    and ``newlines`` is the number of newlines in ``data`` before ``start``, from which the
    caller derives the line number. A line with several matches is yielded once.
    """
    search = FAST_CANDIDATE.search
    count = data.count
    find = data.find
    rfind = data.rfind
    position = 0
    counted_to = 0
    newlines = 0
    found = search(data, 0, end)
    while found is not None:
        match_start = found.start()
        start = rfind(b"\n", 0, match_start) + 1
        stop = find(b"\n", match_start, end)
        newlines += count(b"\n", counted_to, start)
        counted_to = start
        yield start, stop, newlines
        position = stop + 1
        found = search(data, position, end)


class LogReader:
    """Streams candidate lines (those matching ``keywords.CANDIDATE``) of files in order.

    Reads ``.gz`` files transparently (recognised by their magic bytes, whatever their name),
    and ``-`` from ``stdin``. A file that cannot be opened or read is recorded in ``errors``
    and the next file is read. Directories, devices, FIFOs and sockets are recorded there
    too, without being read. The lines of a truncated gzip file up to the cut are read, and the
    cut is recorded. Each file is read once: a later path to the same device and inode (the
    same name twice, ``./name``, a symbolic or hard link) and a second ``-`` are skipped. A
    line longer than ``MAX_LINE_BYTES`` is cut to that length and still counts as one line.
    """

    def __init__(self, paths: Sequence[str], *, stdin: BinaryIO | None = None) -> None:
        self._paths = tuple(paths)
        self._stdin = stdin
        self.lines_read = 0
        """Every line seen so far, candidate or not."""
        self.lines_cut = 0
        """Lines longer than ``MAX_LINE_BYTES``, of which only the start was kept."""
        self.errors: list[tuple[str, str]] = []
        """``(path, reason)`` for each file that could not be read, or not to its end."""
        self._files_read: set[tuple[int, int] | str] = set()
        """``(st_dev, st_ino)`` of every file opened so far, and ``-`` once stdin was read."""

    def __iter__(self) -> Iterator[LogLine]:
        for path in self._paths:
            yield from self._read_path(path)

    def _read_path(self, path: str) -> Iterator[LogLine]:
        try:
            stream = self._open(path)
        except OSError as error:
            self._record_error(path, error)
            return
        if stream is None:
            return
        try:
            yield from self._read_stream(path, stream)
        except (OSError, EOFError, zlib.error) as error:
            self._record_error(path, error)
        finally:
            if path != STDIN_PATH:
                # Closing a GzipFile leaves the file object it reads from open.
                inner = getattr(stream, "fileobj", None)
                stream.close()
                if inner is not None:
                    inner.close()

    def _first_visit(self, path: str, raw: IO[bytes]) -> bool:
        """Tell whether ``raw`` is a file not read before; log the skip of a repeated one."""
        key: tuple[int, int] | str = path
        with contextlib.suppress(OSError, ValueError, AttributeError):
            status = os.fstat(raw.fileno())
            if stat.S_ISREG(status.st_mode):
                key = (status.st_dev, status.st_ino)
        if key in self._files_read:
            logger.info("skipping %s: the same file was already read", path)
            return False
        self._files_read.add(key)
        if path == STDIN_PATH:
            self._files_read.add(STDIN_PATH)
        return True

    def _record_error(self, path: str, error: Exception) -> None:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        if isinstance(error, (EOFError, zlib.error, BadGzipFile)):
            reason = f"invalid or truncated gzip data: {reason}"
        logger.warning("cannot read %s: %s", path, reason)
        self.errors.append((path, reason))

    def _open(self, path: str) -> IO[bytes] | None:
        """Open ``path`` (or stdin) for binary reading, decompressing gzip data.

        Returns None for a file that was already read.
        """
        if path == STDIN_PATH:
            if STDIN_PATH in self._files_read:
                logger.info("skipping a repeated '-': standard input was already read")
                return None
            raw = self._stdin
            if raw is None:
                raise UsageError(
                    "Reading '-' needs standard input, but none was given.",
                    "Pass log file paths instead of '-'.",
                    value=path,
                )
            if not self._first_visit(path, raw):
                return None
            buffered: io.BufferedReader = (
                raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
            )
        else:
            file = open_regular_file(path, allow_pipe=True)
            if not self._first_visit(path, file):
                file.close()
                return None
            buffered = io.BufferedReader(file)
        if buffered.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)] == GZIP_MAGIC:
            return cast(IO[bytes], _GzipBlocks(GzipFile(fileobj=buffered, mode="rb")))
        return buffered

    def _read_stream(self, path: str, stream: IO[bytes]) -> Iterator[LogLine]:
        """Yield the candidate lines of one stream and count all of its lines."""
        read = stream.read
        lines_before_file = self.lines_read
        base = 0  # complete lines of this stream before ``data``
        pending = b""  # partial last line of the previous block
        dropping = False  # ``pending`` was cut: discard bytes up to the next newline

        skipped = 0  # bytes discarded since the last newline of a cut line

        while block := read(BLOCK_SIZE):
            if dropping:
                newline = block.find(b"\n")
                if newline == -1:
                    skipped += len(block)
                    if skipped > MAX_SKIPPED_BYTES:
                        # Endless input without line breaks, such as /dev/zero on stdin.
                        self.errors.append((path, _NOT_TEXT))
                        logger.warning("stopped reading %s: %s", path, _NOT_TEXT)
                        return
                    continue
                block = block[newline:]
                dropping, skipped = False, 0
            data = pending + block if pending else block
            end = data.rfind(b"\n") + 1
            for start, stop, newlines in candidate_spans(data, end):
                number = base + newlines + 1
                self.lines_read = lines_before_file + number
                yield LogLine(path, number, decode_line(data[start:stop]))
            base += data.count(b"\n", 0, end)
            self.lines_read = lines_before_file + base
            pending = data[end:]
            if len(pending) > MAX_LINE_BYTES:
                pending = pending[:MAX_LINE_BYTES]
                dropping = True
                self.lines_cut += 1

        if pending:
            base += 1
            self.lines_read = lines_before_file + base
            if FAST_CANDIDATE.search(pending) is not None:
                yield LogLine(path, base, decode_line(pending))


MAX_SKIPPED_BYTES = 256 * 1024 * 1024
"""Bytes without a line break after which a stream is taken for something other than a log."""
_NOT_TEXT = f"no line break in {MAX_SKIPPED_BYTES >> 20} MiB, so it is not a text log"


class _GzipBlocks:
    """A ``GzipFile`` whose ``read`` returns the data decoded before a truncation or error.

    ``GzipFile.read(size)`` drops the bytes it has gathered when the compressed data ends
    early, so a truncated small file would yield nothing. Here blocks are gathered with
    ``read1``, and an error is raised only by the call after the one returning the last
    decoded bytes.
    """

    def __init__(self, gzip_file: GzipFile) -> None:
        self._file = gzip_file
        self.fileobj = gzip_file.fileobj
        self._error: Exception | None = None

    def read(self, size: int) -> bytes:
        if self._error is not None:
            raise self._error
        parts: list[bytes] = []
        gathered = 0
        try:
            while gathered < size:
                part = self._file.read1(size - gathered)
                if not part:
                    break
                parts.append(part)
                gathered += len(part)
        except (OSError, EOFError, zlib.error) as error:
            if not parts:
                raise
            self._error = error
        return b"".join(parts)

    def close(self) -> None:
        self._file.close()


def journal_lines(*, follow: bool, since: float | None = None) -> Iterator[LogLine]:
    """Yield journald entries as ``journalctl -o json`` lines, numbered from 1.

    Uses python-systemd when it is importable, else runs ``journalctl``. ``since`` is a POSIX
    time; without it the whole journal is read (or, with ``follow``, only new entries).

    Raises:
        UsageError: neither python-systemd nor journalctl is available, or journalctl failed.
    """
    journal = systemd_journal_module()
    if journal is not None:
        return _python_journal_lines(journal, follow=follow, since=since)
    executable = shutil.which("journalctl")
    if executable is None:
        raise UsageError(
            "Cannot read the systemd journal: neither the python-systemd module nor the "
            "journalctl program is available.",
            "Install python3-systemd (or the systemd-python package) or journalctl, "
            "or pass the log files to read instead of --journal.",
        )
    return _journalctl_lines(executable, follow=follow, since=since)


def systemd_journal_module() -> Any | None:
    """Return python-systemd's ``journal`` module, or None when it is not installed."""
    try:
        from systemd import journal  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return journal


def _journalctl_lines(executable: str, *, follow: bool, since: float | None) -> Iterator[LogLine]:
    command = [executable, "-o", "json", "--no-pager"]
    if follow:
        command.append("--follow")
    if since is not None:
        command += ["--since", f"@{int(since)}"]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        try:
            for number, raw in enumerate(process.stdout, start=1):
                yield LogLine(JOURNAL_PATH, number, decode_line(raw.rstrip(b"\n")))
            status = process.wait()
        finally:
            _stop(process)
        if status != 0:
            errors.seek(0)
            message = errors.read(2000).decode("utf-8", errors="replace").strip()
            raise UsageError(
                f"journalctl failed with exit status {status}: {message or 'no message'}",
                "Run smtpdiag as a user in the systemd-journal or adm group, "
                "or pass the log files to read instead of --journal.",
            )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process`` if it still runs, then kill it after 5 seconds."""
    if process.stdout is not None:
        process.stdout.close()
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _python_journal_lines(journal: Any, *, follow: bool, since: float | None) -> Iterator[LogLine]:
    # NOTE: this path was written against python-systemd 235's documented Reader API and has
    # not run here, because python-systemd is not installed in the development environment.
    reader = journal.Reader()
    try:
        if since is not None:
            reader.seek_realtime(since)
        elif follow:
            reader.seek_tail()
            reader.get_previous()
        number = 0
        while True:
            entry = reader.get_next()
            if not entry:
                if not follow:
                    return
                reader.wait(1.0)
                continue
            number += 1
            yield LogLine(JOURNAL_PATH, number, json.dumps(_export_fields(entry)))
    finally:
        reader.close()


def _export_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """Convert python-systemd's typed fields back to the strings of ``journalctl -o json``."""
    fields: dict[str, Any] = {}
    for name, value in entry.items():
        if name == "__REALTIME_TIMESTAMP":
            fields[name] = str(int(value.timestamp() * 1_000_000))
        elif name == "__MONOTONIC_TIMESTAMP":
            continue
        elif isinstance(value, bytes):
            fields[name] = value.decode("utf-8", errors="replace")
        else:
            fields[name] = str(value)
    return fields


DEADLINE_CHECK_LINES = 4096
"""Candidate lines fed between two looks at the time left."""

MIN_REMAINING_SECONDS = 0.05
"""Time left, in seconds, at which ``feed_lines`` stops."""


def feed_lines(
    reader: LogReader, feed: Callable[[LogLine], None], remaining: Callable[[], float]
) -> tuple[bool, int]:
    """Pass the candidate lines of ``reader`` to ``feed`` until they end or time runs short.

    ``remaining`` returns the seconds left, such as ``CheckContext.remaining``. Returns whether
    every line was fed, and how many were. The file the reader stopped in is closed.
    """
    lines = iter(reader)
    fed = 0
    try:
        for line in lines:
            feed(line)
            fed += 1
            if fed % DEADLINE_CHECK_LINES == 0 and remaining() < MIN_REMAINING_SECONDS:
                return False, fed
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()
    return True, fed
