"""Exporter log output: JSON lines, the text format, and rate-limited error reporting."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from exporters.logformat import (
    TEXT_FORMAT,
    ErrorLog,
    JsonFormatter,
    LogFormat,
    make_formatter,
    use_log_format,
)
from smtpdiag.redact import MASK, RedactingFilter
from smtpdiag.secrets import Secret


def make_record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("exporters.test", logging.WARNING, __file__, 1, message, args, None)
    record.created = 1_700_000_000.25
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_json_formatter_fields() -> None:
    document = json.loads(JsonFormatter().format(make_record("probe %s failed", "lab")))
    assert document == {
        "time": "2023-11-14T22:13:20.250Z",
        "level": "WARNING",
        "logger": "exporters.test",
        "message": "probe lab failed",
    }


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param({"target": "lab"}, {"target": "lab"}, id="target"),
        pytest.param(
            {"target": "lab", "check": "tls"}, {"target": "lab", "check": "tls"}, id="check"
        ),
        pytest.param({"path": "/var/log/mail.log"}, {"path": "/var/log/mail.log"}, id="path"),
        pytest.param({"user": "someone"}, {}, id="unlisted-field-left-out"),
    ],
)
def test_json_formatter_extra_fields(extra: dict[str, object], expected: dict[str, str]) -> None:
    document = json.loads(JsonFormatter().format(make_record("message", **extra)))
    fields = {key: document[key] for key in ("target", "check", "path", "user") if key in document}
    assert fields == expected


def test_json_formatter_masks_secret() -> None:
    secret = Secret("json-canary-token-0123456789", "test")
    line = JsonFormatter().format(make_record("token %s", secret.reveal(), target="lab"))
    assert secret.reveal() not in line


def test_json_formatter_exception_one_line() -> None:
    try:
        raise ValueError("broken value")
    except ValueError:
        record = logging.LogRecord(
            "exporters.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: broken value" in json.loads(line)["exception"]


def test_make_formatter_text() -> None:
    formatter = make_formatter(LogFormat.TEXT)
    assert formatter._fmt == TEXT_FORMAT


@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    """Give the root logger one handler writing to a string, as the CLI sets it up."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    root.handlers[:] = [logging.StreamHandler(stream)]
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_use_log_format_json_lines(root_stream: io.StringIO) -> None:
    use_log_format(LogFormat.JSON, logging.INFO)
    logging.getLogger("exporters.test").info("listening on %s", "http://127.0.0.1:1")
    logging.getLogger("exporters.test").warning("second line", extra={"path": "/tmp/x"})
    documents = [json.loads(line) for line in root_stream.getvalue().splitlines()]
    assert [item["message"] for item in documents] == [
        "listening on http://127.0.0.1:1",
        "second line",
    ]


def test_use_log_format_adds_redaction(root_stream: io.StringIO) -> None:
    use_log_format(LogFormat.TEXT, logging.INFO)
    handler = logging.getLogger().handlers[0]
    assert any(isinstance(item, RedactingFilter) for item in handler.filters)


def test_use_log_format_text_masks_secret(root_stream: io.StringIO) -> None:
    secret = Secret("text-canary-token-0123456789", "test")
    use_log_format(LogFormat.TEXT, logging.INFO)
    logging.getLogger("exporters.test").info("token %s", secret.reveal())
    assert MASK in root_stream.getvalue()


class FakeClock:
    """Settable clock for ``monotonic`` and ``wall``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def error_log(clock: FakeClock) -> ErrorLog:
    return ErrorLog(
        period=600.0,
        max_keys=3,
        monotonic=clock,
        wall=clock,
        log=logging.getLogger("tests.errorlog"),
    )


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "tests.errorlog"]


def test_error_log_first_occurrence_logged(
    error_log: ErrorLog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        error_log.report("lab", "tls", "handshake failed")
    assert messages(caplog) == ["target lab, check tls: handshake failed"]


def test_error_log_level_warning(error_log: ErrorLog, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        error_log.report("lab", "tls", "handshake failed")
    assert caplog.records[0].levelno == logging.WARNING


def test_error_log_extra_fields(error_log: ErrorLog, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        error_log.report("lab", "tls", "handshake failed")
    record = caplog.records[0]
    assert getattr(record, "target", None) == "lab"
    assert getattr(record, "check", None) == "tls"


def test_error_log_suppresses_repeats(
    error_log: ErrorLog, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        for _ in range(5):
            error_log.report("lab", "tls", "handshake failed")
            clock.now += 60
    assert len(messages(caplog)) == 1


def test_error_log_repeat_count_after_period(
    error_log: ErrorLog, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        for _ in range(4):
            error_log.report("lab", "tls", "handshake failed")
            clock.now += 60
        clock.now += 600
        error_log.report("lab", "tls", "handshake failed")
    assert messages(caplog)[-1] == (
        "target lab, check tls: handshake failed (repeated 3 times in the last 10 minutes)"
    )


def test_error_log_count_resets_after_logging(
    error_log: ErrorLog, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        error_log.report("lab", "tls", "handshake failed")
        error_log.report("lab", "tls", "handshake failed")
        clock.now += 601
        error_log.report("lab", "tls", "handshake failed")
        clock.now += 601
        error_log.report("lab", "tls", "handshake failed")
    assert messages(caplog)[-1] == "target lab, check tls: handshake failed"


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(("lab", "tls", "other message"), id="message"),
        pytest.param(("lab", "auth", "handshake failed"), id="check"),
        pytest.param(("other", "tls", "handshake failed"), id="target"),
    ],
)
def test_error_log_distinct_keys_logged(
    error_log: ErrorLog, second: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        error_log.report("lab", "tls", "handshake failed")
        error_log.report(*second)
    assert len(messages(caplog)) == 2


def test_error_log_key_cap_forgets_oldest(
    error_log: ErrorLog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        for number in range(4):
            error_log.report("lab", "tls", f"error {number}")
        # "error 0" was forgotten when the fourth key arrived, so it is logged again.
        error_log.report("lab", "tls", "error 0")
        error_log.report("lab", "tls", "error 3")
    assert messages(caplog)[4:] == ["target lab, check tls: error 0"]


def test_error_log_recovery_logged_once(
    error_log: ErrorLog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        error_log.report("lab", "tls", "handshake failed")
        error_log.recovered("lab", "tls")
        error_log.recovered("lab", "tls")
    assert messages(caplog)[1:] == ["target lab, check tls works again"]


def test_error_log_recovery_level_info(
    error_log: ErrorLog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        error_log.report("lab", "tls", "handshake failed")
        error_log.recovered("lab", "tls")
    assert caplog.records[-1].levelno == logging.INFO


def test_error_log_recovery_without_error_silent(
    error_log: ErrorLog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        error_log.recovered("lab", "tls")
    assert messages(caplog) == []


def test_error_log_error_after_recovery_logged(
    error_log: ErrorLog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        error_log.report("lab", "tls", "handshake failed")
        error_log.recovered("lab", "tls")
        error_log.report("lab", "tls", "handshake failed")
    assert messages(caplog)[-1] == "target lab, check tls: handshake failed"


def test_error_log_failing_since(error_log: ErrorLog, clock: FakeClock) -> None:
    error_log.report("lab", "tls", "handshake failed")
    clock.now += 5
    error_log.report("lab", "tls", "handshake failed")
    assert error_log.failing_since("lab", "tls") == 1005.0


def test_error_log_failing_since_cleared(error_log: ErrorLog) -> None:
    error_log.report("lab", "tls", "handshake failed")
    error_log.recovered("lab", "tls")
    assert error_log.failing_since("lab", "tls") is None


def test_error_log_masks_secret(error_log: ErrorLog, caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret("error-canary-token-0123456789", "test")
    with caplog.at_level(logging.INFO, logger="tests.errorlog"):
        error_log.report("lab", "token", f"rejected {secret.reveal()}")
    assert secret.reveal() not in messages(caplog)[0]
