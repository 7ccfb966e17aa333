"""The shipped rule file as ``smtpdiag rules`` prints it, with and without --runbook-base."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from promql_names import load_rules
from system_programs import require_program

from exporters.rules_file import _absolute_runbook, rules_text
from smtpdiag.errors import UsageError


def test_rules_text_is_yaml() -> None:
    document = yaml.safe_load(rules_text())
    assert isinstance(document["groups"], list)


def test_rules_text_runbook_base_applied() -> None:
    base = "https://git.example.com/ops/smtpdiag/-/blob/main/"
    document = yaml.safe_load(rules_text(base))
    urls = [
        rule["annotations"]["runbook_url"]
        for group in document["groups"]
        for rule in group["rules"]
        if "runbook_url" in rule.get("annotations", {})
    ]
    assert urls
    assert all(url.startswith(base + "docs/runbooks/") for url in urls)


def test_rules_text_without_base_relative() -> None:
    assert "runbook_url: docs/runbooks/" in rules_text()


@pytest.mark.parametrize(
    "base",
    [
        pytest.param("git.example.com/ops/", id="no-scheme"),
        pytest.param("ftp://git.example.com/ops/", id="ftp"),
        pytest.param("https://git.example.com/ops", id="no-trailing-slash"),
        pytest.param("https:///ops/", id="no-host"),
        pytest.param("https://git.example.com/ops/?ref=main/", id="query"),
        pytest.param("https://git.example.com/o ps/", id="space"),
        pytest.param("https://git.example.com/ops/\n", id="newline"),
    ],
)
def test_rules_text_invalid_base(base: str) -> None:
    with pytest.raises(UsageError) as caught:
        rules_text(base)
    assert caught.value.value == base


BASE = "https://git.example.com/ops/smtpdiag/-/blob/main/"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "          runbook_url: docs/runbooks/SmtpSubmissionDown.md\n",
            f'          runbook_url: "{BASE}docs/runbooks/SmtpSubmissionDown.md"\n',
            id="plain",
        ),
        pytest.param(
            "  runbook_url: 'docs/runbooks/A.md'\n",
            f'  runbook_url: "{BASE}docs/runbooks/A.md"\n',
            id="single-quoted",
        ),
        pytest.param(
            '  runbook_url: "docs/runbooks/A.md"\r\n',
            f'  runbook_url: "{BASE}docs/runbooks/A.md"\r\n',
            id="double-quoted-crlf",
        ),
        pytest.param(
            "  runbook_url: https://wiki.example.com/A\n",
            "  runbook_url: https://wiki.example.com/A\n",
            id="absolute-unchanged",
        ),
        pytest.param(
            "# runbook_url: docs/runbooks/A.md is relative\n",
            "# runbook_url: docs/runbooks/A.md is relative\n",
            id="comment-unchanged",
        ),
    ],
)
def test_absolute_runbook_line(line: str, expected: str) -> None:
    assert _absolute_runbook(line, BASE) == expected


def test_job_replaces_every_selector() -> None:
    text = rules_text(job="node")
    assert 'job="smtpdiag"' not in text
    assert 'job="node"' in text


def test_job_leaves_out_exporter_down() -> None:
    document = yaml.safe_load(rules_text(job="node"))
    alerts = {rule.get("alert") for group in document["groups"] for rule in group["rules"]}
    assert "SmtpdiagExporterDown" not in alerts
    assert "SmtpSubmissionDown" in alerts


@pytest.mark.parametrize(
    "name",
    sorted(
        {str(rule["alert"]) for rule in load_rules() if "alert" in rule} - {"SmtpdiagExporterDown"}
    ),
)
def test_job_keeps_alert(name: str) -> None:
    document = yaml.safe_load(rules_text(job="node"))
    alerts = {rule.get("alert") for group in document["groups"] for rule in group["rules"]}
    assert name in alerts


def test_job_output_says_what_changed() -> None:
    assert rules_text(job="node").startswith("# Printed by `smtpdiag rules --job node`")


@pytest.mark.parametrize("job", ["", 'node"} or vector(1) #', "two words"])
def test_job_invalid(job: str) -> None:
    with pytest.raises(UsageError) as caught:
        rules_text(job=job)
    assert caught.value.value == job


def test_job_output_passes_promtool(tmp_path: Path) -> None:
    promtool = require_program("promtool")
    path = tmp_path / "smtpdiag.rules.yml"
    path.write_text(rules_text(job="node"), encoding="utf-8")
    completed = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
