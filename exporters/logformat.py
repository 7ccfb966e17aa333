"""Log output of the exporter: text or JSON lines, and rate-limited error reporting.

The CLI installs one stderr handler with ``RedactingFilter``; ``use_log_format`` swaps that
handler's formatter, so both formats carry messages that are already redacted. ``ErrorLog``
keeps a long-running exporter from writing the same probe error every minute.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from smtpdiag.redact import RedactingFilter, redact

logger = logging.getLogger(__name__)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""Format of ``--log-format text``, the same as the other smtpdiag commands."""

EXTRA_FIELDS = ("target", "check", "path")
"""Attributes that ``logging``'s ``extra=`` may set and that JSON lines carry as fields."""


class LogFormat(StrEnum):
    """Values of ``--log-format``."""

    TEXT = "text"
    JSON = "json"


class JsonFormatter(logging.Formatter):
    """Formatter of one JSON object per record: time, level, logger, message, extra fields.

    ``time`` is ISO 8601 in UTC with milliseconds. An exception's traceback goes into the
    ``exception`` field, so every record stays on one line.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return ``record`` as one line of JSON, with secrets masked."""
        moment = datetime.fromtimestamp(record.created, UTC)
        document: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = redact(str(value))
        exception = record.exc_text
        if record.exc_info and not exception:
            exception = self.formatException(record.exc_info)
        if exception:
            document["exception"] = redact(exception)
        return json.dumps(document, ensure_ascii=False)


def make_formatter(log_format: LogFormat) -> logging.Formatter:
    """Return the formatter of ``log_format``."""
    if log_format is LogFormat.JSON:
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT)


def use_log_format(log_format: LogFormat, level: int | None = None) -> None:
    """Give every handler of the root logger the formatter of ``log_format``.

    A handler without ``RedactingFilter`` gets one, so no format can show a secret. With
    ``level`` the root logger's level changes too.
    """
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(make_formatter(log_format))
        if not any(isinstance(item, RedactingFilter) for item in handler.filters):
            handler.addFilter(RedactingFilter())
    if level is not None:
        root.setLevel(level)


REPEAT_PERIOD_SECONDS = 600.0
"""Time during which ``ErrorLog`` suppresses repeats of one error."""

MAX_ERROR_KEYS = 1000
"""Number of distinct errors ``ErrorLog`` remembers; the oldest is forgotten beyond it."""


@dataclass
class _Seen:
    """Bookkeeping of one (target, check, message) key."""

    logged_at: float
    """Monotonic time of the last line written for the key."""
    repeats: int
    """Occurrences suppressed since that line."""


class ErrorLog:
    """Rate-limited logger of probe errors, keyed by (target, check, message).

    The first occurrence of a key is logged at ``level``. Repeats within ``period`` seconds
    are counted, not logged. The first occurrence after the period is logged with the count.
    ``recovered`` logs one INFO line when a check that had errors works again. Thread-safe:
    scheduler workers call ``report`` concurrently.
    """

    def __init__(
        self,
        *,
        period: float = REPEAT_PERIOD_SECONDS,
        max_keys: int = MAX_ERROR_KEYS,
        level: int = logging.WARNING,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        log: logging.Logger = logger,
    ) -> None:
        self._period = period
        self._max_keys = max_keys
        self._level = level
        self._monotonic = monotonic
        self._wall = wall
        self._log = log
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str, str], _Seen] = OrderedDict()
        # (target, check) -> time.time() of the last reported error, for ``recovered``.
        self._failing: OrderedDict[tuple[str, str], float] = OrderedDict()

    def report(self, target: str, check: str, message: str) -> None:
        """Log the error ``message`` of ``check`` on ``target`` unless it repeats too soon."""
        message = redact(message)
        key = (target, check, message)
        now = self._monotonic()
        with self._lock:
            self._remember_failure(target, check)
            seen = self._seen.get(key)
            if seen is not None and now - seen.logged_at < self._period:
                seen.repeats += 1
                return
            repeats = seen.repeats if seen is not None else 0
            self._seen[key] = _Seen(logged_at=now, repeats=0)
            self._seen.move_to_end(key)
            while len(self._seen) > self._max_keys:
                self._seen.popitem(last=False)
        self._write(target, check, message, repeats)

    def _remember_failure(self, target: str, check: str) -> None:
        pair = (target, check)
        self._failing[pair] = self._wall()
        self._failing.move_to_end(pair)
        while len(self._failing) > self._max_keys:
            self._failing.popitem(last=False)

    def _write(self, target: str, check: str, message: str, repeats: int) -> None:
        extra = {"target": target, "check": check}
        if repeats:
            minutes = self._period / 60
            self._log.log(
                self._level,
                "target %s, check %s: %s (repeated %d times in the last %g minutes)",
                target,
                check,
                message,
                repeats,
                minutes,
                extra=extra,
            )
            return
        self._log.log(self._level, "target %s, check %s: %s", target, check, message, extra=extra)

    def failing_since(self, target: str, check: str) -> float | None:
        """Return the ``time.time()`` of the last error of ``check`` on ``target``, or None
        when it has no error since it last recovered."""
        with self._lock:
            return self._failing.get((target, check))

    def recovered(self, target: str, check: str) -> None:
        """Log one INFO line if ``check`` on ``target`` had errors, and forget them."""
        with self._lock:
            if self._failing.pop((target, check), None) is None:
                return
            for key in [key for key in self._seen if key[:2] == (target, check)]:
                del self._seen[key]
        self._log.info(
            "target %s, check %s works again",
            target,
            check,
            extra={"target": target, "check": check},
        )
