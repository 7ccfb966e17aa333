"""``python -m smtpdiag exporter`` as a child process, shared by the exporter tests."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest


class ExporterProcess:
    """The exporter as a child process on a free loopback port, its stderr collected in a
    thread.

    ``preexec_fn`` runs in the child before the exporter starts, for example to lower its
    limits.
    """

    def __init__(self, *args: str, preexec_fn: Callable[[], None] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smtpdiag", "exporter", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # The callables of the tests only call setrlimit, which takes no lock that another
            # thread of the test process could hold at the fork.
            preexec_fn=preexec_fn,  # noqa: PLW1509
        )
        self.pid = self.process.pid
        self.lines: list[str] = []
        self._condition = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = "http://" + self.wait_for(r"listening on http://(\S+)").group(1)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._condition:
                self.lines.append(line.rstrip("\n"))
                self._condition.notify_all()

    def wait_for(self, pattern: str, start: int = 0, seconds: float = 30.0) -> re.Match[str]:
        """Return the first match of ``pattern`` in the lines from index ``start`` on."""
        deadline = time.monotonic() + seconds
        with self._condition:
            while True:
                for line in self.lines[start:]:
                    match = re.search(pattern, line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                ended = self.process.poll() is not None and not self._reader.is_alive()
                if remaining <= 0 or ended:
                    pytest.fail(f"no log line matches {pattern!r}:\n" + "\n".join(self.lines))
                # The reader thread ends without a notification, so wake up to notice it.
                self._condition.wait(min(remaining, 0.5))

    def signal(self, number: int) -> int:
        """Send ``number`` and return the index of the next log line."""
        with self._condition:
            index = len(self.lines)
        self.process.send_signal(number)
        return index

    def finish(self) -> int:
        """Stop the process with SIGTERM unless it ended (SIGKILL after 30 s), and return its
        exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(30)
        self._reader.join(10)
        assert self.process.stderr is not None
        self.process.stderr.close()
        return code
