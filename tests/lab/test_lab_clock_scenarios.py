"""Clock scenarios end to end: ``smtpdiag check`` against each lab and the findings it reports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smtpdiag.lab.runner import start_lab
from smtpdiag.lab.scenarios import get_scenario

EXPECTED_CODES = {
    "clock-skew-90s": ("clock.skew", "clock.token_issued_in_future"),
    "clock-skew-minus-90s": ("clock.skew",),
    "ntp-unreachable": ("clock.ntp_unreachable", "clock.skew"),
}


@pytest.fixture(scope="module")
def lab_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clock-diagnosis")


@pytest.fixture
def diagnose(lab_parent: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Return a function that runs ``smtpdiag check -f json`` against a scenario's lab."""
    from smtpdiag.cli import main

    def run(name: str) -> dict[str, Any]:
        with start_lab(get_scenario(name), workdir=lab_parent) as info:
            main(["check", "--config", str(info.config_file), "--target", "lab", "-f", "json"])
        report = json.loads(capsys.readouterr().out)
        assert isinstance(report, dict)
        return report

    yield run


def findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [finding for check in report["checks"] for finding in check["findings"]]


def finding(report: dict[str, Any], code: str) -> dict[str, Any]:
    matches = [item for item in findings(report) if item["code"] == code]
    assert matches, f"{code} not in {[item['code'] for item in findings(report)]}"
    return matches[0]


@pytest.mark.parametrize("name", list(EXPECTED_CODES))
def test_diagnosis_contains_expected_codes(diagnose: Any, name: str) -> None:
    codes = {item["code"] for item in findings(diagnose(name))}
    assert set(EXPECTED_CODES[name]) <= codes


@pytest.mark.parametrize("name", ["clock-skew-90s", "clock-skew-minus-90s", "ntp-unreachable"])
def test_skew_is_critical(diagnose: Any, name: str) -> None:
    assert finding(diagnose(name), "clock.skew")["severity"] == "critical"


@pytest.mark.parametrize("name", ["clock-skew-90s", "clock-skew-minus-90s"])
def test_skew_names_ntp_source(diagnose: Any, name: str) -> None:
    text = json.dumps(finding(diagnose(name), "clock.skew"))
    assert "ntp" in text.lower()


def test_unreachable_skew_names_date_header(diagnose: Any) -> None:
    text = json.dumps(finding(diagnose("ntp-unreachable"), "clock.skew"))
    assert "Date" in text


def test_unreachable_is_warning(diagnose: Any) -> None:
    assert finding(diagnose("ntp-unreachable"), "clock.ntp_unreachable")["severity"] == "warning"


def test_small_skew_is_ok(diagnose: Any) -> None:
    report = diagnose("clock-skew-3s")
    assert report["status"] == "ok"
    assert [item["code"] for item in findings(report) if item["code"].startswith("clock.")] == []


@pytest.mark.parametrize("name", ["healthy", "token-healthy"])
def test_lab_without_offset_has_no_clock_findings(diagnose: Any, name: str) -> None:
    report = diagnose(name)
    assert [item["code"] for item in findings(report) if item["code"].startswith("clock.")] == []
