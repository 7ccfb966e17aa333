"""Tests of the JSON renderer and the ``smtpdiag.report/1`` JSON Schema."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from smtpdiag.models import CheckResult, Finding, Report, Severity, Status
from smtpdiag.render.json_report import render_json

SCHEMA_PATH = Path(__file__).parents[2] / "docs" / "schemas" / "smtpdiag.report-1.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    """A validator of the report schema that also checks ``format`` keywords."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_schema_is_valid_draft_2020_12() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_json_validates_against_schema(status_mix: Any, validator: Any) -> None:
    document = json.loads(render_json(status_mix.report))
    errors = [error.message for error in validator.iter_errors(document)]
    assert errors == []


def test_json_equals_report_dict(status_mix: Any) -> None:
    document = json.loads(render_json(status_mix.report))
    assert document == status_mix.report.to_dict()


def test_json_status_is_worst_status(status_mix: Any) -> None:
    document = json.loads(render_json(status_mix.report))
    assert document["status"] == status_mix.status.value


def test_json_ends_with_newline(critical_report: Report) -> None:
    assert render_json(critical_report).endswith("}\n")


def test_json_keeps_non_ascii_text(report_factory: Callable[..., Report]) -> None:
    finding = Finding(
        "auth.rejected", Severity.CRITICAL, "Zugriff verweigert für Benutzer", "c", "f"
    )
    report = report_factory(CheckResult("auth", Status.CRITICAL, "ошибка", (finding,)))
    output = render_json(report)
    assert "ошибка" in output
    assert "für" in output


def test_json_is_indented(critical_report: Report) -> None:
    assert render_json(critical_report).splitlines()[1] == '  "schema": "smtpdiag.report/1",'


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    """Return a mutation that sets ``value`` at ``path`` in a report document."""

    def mutate(document: dict[str, Any]) -> None:
        node: Any = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    """Return a mutation that removes the key at ``path`` from a report document."""

    def mutate(document: dict[str, Any]) -> None:
        node: Any = document
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


BROKEN_DOCUMENTS = [
    pytest.param(_delete(("checks",)), id="missing_checks"),
    pytest.param(_delete(("started_at",)), id="missing_started_at"),
    pytest.param(_set(("schema",), "smtpdiag.report/2"), id="wrong_schema_id"),
    pytest.param(_set(("status",), "failed"), id="unknown_report_status"),
    pytest.param(_set(("extra",), 1), id="extra_report_key"),
    pytest.param(_set(("started_at",), "yesterday"), id="started_at_not_date_time"),
    pytest.param(_set(("duration_seconds",), -1), id="negative_duration"),
    pytest.param(_set(("target",), "relay"), id="target_not_object"),
    pytest.param(_set(("target", "port"), "2525"), id="target_port_string"),
    pytest.param(_set(("checks", 1, "id"), "Connect"), id="check_id_upper_case"),
    pytest.param(_set(("checks", 1, "status"), "error"), id="unknown_check_status"),
    pytest.param(_set(("checks", 1, "extra"), True), id="extra_check_key"),
    pytest.param(_delete(("checks", 1, "facts")), id="missing_check_facts"),
    pytest.param(_set(("checks", 1, "findings", 0, "code"), "starttls"), id="code_without_area"),
    pytest.param(_set(("checks", 1, "findings", 0, "severity"), "fatal"), id="unknown_severity"),
    pytest.param(_set(("checks", 1, "findings", 0, "evidence"), [1]), id="evidence_not_string"),
    pytest.param(_set(("checks", 1, "findings", 0, "docs"), None), id="docs_null"),
    pytest.param(_set(("checks", 1, "findings", 0, "extra"), 1), id="extra_finding_key"),
    pytest.param(_delete(("checks", 1, "findings", 0, "fix")), id="missing_fix"),
    pytest.param(_set(("checks", 1, "findings", 0, "facts"), []), id="facts_not_object"),
    pytest.param(
        _set(("checks", 1, "findings", 0, "facts", "reply_code"), "250"), id="reply_code_string"
    ),
    pytest.param(
        _set(("checks", 1, "facts", "enhanced_code"), "5.7"), id="enhanced_code_malformed"
    ),
    pytest.param(_set(("checks", 1, "facts", "failure_ratio"), 2.0), id="failure_ratio_above_one"),
]


@pytest.mark.parametrize("mutate", BROKEN_DOCUMENTS)
def test_schema_rejects_broken_document(
    critical_report: Report, validator: Any, mutate: Callable[[dict[str, Any]], None]
) -> None:
    document = copy.deepcopy(critical_report.to_dict())
    mutate(document)
    assert not validator.is_valid(document)


def test_schema_accepts_unknown_fact_and_target_keys(
    critical_report: Report, validator: Any
) -> None:
    document = copy.deepcopy(critical_report.to_dict())
    document["target"]["region"] = "eu"
    document["checks"][1]["findings"][0]["facts"]["queue_id"] = "4Xyz"
    assert validator.is_valid(document)
