"""Counter values saved between --once runs: round trip, file mode and invalid files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from types import MappingProxyType

import pytest

from exporters.countfile import counts_path, load_counts, save_counts
from exporters.logcounters import LogCounts
from smtpdiag.errors import UsageError

COUNTS = LogCounts(
    attempts=MappingProxyType({("msmtp", "google"): 12, ("postfix", "generic"): 3}),
    failures=MappingProxyType({("msmtp", "google", "credentials_rejected"): 2}),
    lines=MappingProxyType({"msmtp": 12, "postfix": 40}),
    parse_errors=MappingProxyType({"postfix": 1}),
    secret_leaks=MappingProxyType({"unknown": 1}),
    files_followed=2,
)


def test_counts_path_beside_state_file() -> None:
    assert (
        counts_path("/var/lib/smtpdiag/exporter.state") == "/var/lib/smtpdiag/exporter.state.counts"
    )


def test_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "state.counts")
    save_counts(path, COUNTS)
    loaded = load_counts(path)
    assert loaded is not None
    assert (dict(loaded.attempts), dict(loaded.failures)) == (
        dict(COUNTS.attempts),
        dict(COUNTS.failures),
    )
    assert (dict(loaded.lines), dict(loaded.parse_errors), dict(loaded.secret_leaks)) == (
        dict(COUNTS.lines),
        dict(COUNTS.parse_errors),
        dict(COUNTS.secret_leaks),
    )


def test_saved_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "state.counts"
    save_counts(str(path), COUNTS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_file_is_none(tmp_path: Path) -> None:
    assert load_counts(str(tmp_path / "absent.counts")) is None


VALID = {
    "attempts": [["msmtp", "google", 1]],
    "failures": [["msmtp", "google", "credentials_rejected", 1]],
    "lines": {"msmtp": 1},
    "parse_errors": {},
    "secret_leaks": {},
}


@pytest.mark.parametrize(
    "document",
    [
        pytest.param("[]", id="not-an-object"),
        pytest.param("{", id="not-json"),
        pytest.param(
            json.dumps({**VALID, "attempts": [["smtp", "google", 1]]}), id="unknown-source"
        ),
        pytest.param(
            json.dumps({**VALID, "attempts": [["msmtp", "gmail", 1]]}), id="unknown-provider"
        ),
        pytest.param(
            json.dumps({**VALID, "failures": [["msmtp", "google", "alerts@example.com", 1]]}),
            id="reason-outside-closed-set",
        ),
        pytest.param(json.dumps({**VALID, "lines": {"msmtp": -1}}), id="negative-count"),
        pytest.param(json.dumps({**VALID, "lines": {"msmtp": True}}), id="boolean-count"),
        pytest.param(json.dumps({**VALID, "attempts": [["msmtp", 1]]}), id="short-row"),
        pytest.param(
            json.dumps({key: value for key, value in VALID.items() if key != "lines"}),
            id="missing-table",
        ),
    ],
)
def test_invalid_file_names_path_and_fix(tmp_path: Path, document: str) -> None:
    path = tmp_path / "state.counts"
    path.write_text(document, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_counts(str(path))
    assert caught.value.value == str(path)
    assert "Delete it" in caught.value.fix


def test_unwritable_directory_is_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "state.counts"
    with pytest.raises(UsageError) as caught:
        save_counts(str(path), COUNTS)
    assert caught.value.value == str(path)


def test_fifo_rejected_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "state.counts"
    os.mkfifo(path)
    with pytest.raises(UsageError) as caught:
        load_counts(str(path))
    assert "is a FIFO" in caught.value.problem
