"""Shipped alert and recording rules: promtool accepts and unit-tests them, every alert has its
labels, annotations and runbook, and every expression reads only exported or recorded series."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from promql_names import (
    RULES_FILE,
    RULES_TEST_FILE,
    RUNBOOKS,
    known_metrics,
    load_rules,
    metric_names,
    recorded_names,
)
from system_programs import require_program

ROOT = Path(__file__).resolve().parents[2]
ALERTS = [rule for rule in load_rules() if "alert" in rule]
ALERT_NAMES = sorted({str(rule["alert"]) for rule in ALERTS})
FINDING_AREAS = (
    "dns|connect|tls|clock|token|scope|auth|auth_failure_rate|secrets|msmtp_config|relay"
)
FINDING_CODE = re.compile(rf"`((?:{FINDING_AREAS})\.[a-z0-9_]+)`")


def run_promtool(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = require_program("promtool")
    return subprocess.run(
        [promtool, *arguments], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )


def alert_id(rule: dict[str, object]) -> str:
    labels = rule.get("labels")
    severity = labels.get("severity") if isinstance(labels, dict) else None
    return f"{rule['alert']}-{severity}"


def test_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", str(RULES_FILE), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = run_promtool("test", "rules", RULES_TEST_FILE.name, cwd=RULES_TEST_FILE.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_catch_wrong_expectation(tmp_path: Path) -> None:
    shutil.copy(RULES_FILE, tmp_path / RULES_FILE.name)
    text = RULES_TEST_FILE.read_text(encoding="utf-8")
    expected = "eval_time: 7m\n        alertname: SmtpAuthFailureRatioHigh"
    assert expected in text
    (tmp_path / RULES_TEST_FILE.name).write_text(
        text.replace(expected, "eval_time: 6m\n        alertname: SmtpAuthFailureRatioHigh"),
        encoding="utf-8",
    )

    result = run_promtool("test", "rules", RULES_TEST_FILE.name, cwd=tmp_path)

    assert result.returncode != 0
    assert "SmtpAuthFailureRatioHigh" in result.stdout + result.stderr


@pytest.mark.parametrize("rule", ALERTS, ids=alert_id)
def test_alert_severity(rule: dict[str, object]) -> None:
    labels = rule["labels"]
    assert isinstance(labels, dict)
    assert labels.get("severity") in {"warning", "critical"}


@pytest.mark.parametrize("rule", ALERTS, ids=alert_id)
@pytest.mark.parametrize("annotation", ["summary", "description", "runbook_url"])
def test_alert_annotation_present(rule: dict[str, object], annotation: str) -> None:
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    assert str(annotations.get(annotation, "")).strip() != ""


@pytest.mark.parametrize("rule", ALERTS, ids=alert_id)
def test_alert_runbook_url_names_its_runbook(rule: dict[str, object]) -> None:
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    assert annotations["runbook_url"] == f"docs/runbooks/{rule['alert']}.md"


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_runbook_exists(name: str) -> None:
    assert (RUNBOOKS / f"{name}.md").is_file()


# The value of these alerts is fixed (0 or 1, or 2 for a critical check status), so their
# descriptions do not show it.
FIXED_VALUE_ALERTS = {
    "SmtpdiagExporterDown",
    "SmtpdiagConfigReloadFailed",
    "SmtpTlsFailing",
    "SmtpRelayFailing",
    "SmtpRelayConfigBroken",
}

# Series that the /probe endpoint exports as well as /metrics. Rules select them on the
# /metrics job only, so that a probe job does not raise each alert a second time.
PROBE_SERIES = (
    "smtpdiag_up",
    "smtpdiag_check_status",
    "smtpdiag_check_finding",
    "smtpdiag_check_last_run_timestamp_seconds",
    "smtpdiag_check_interval_seconds",
    "smtpdiag_tls_cert_not_after_timestamp_seconds",
    "smtpdiag_clock_offset_seconds",
    "smtpdiag_token_expires_in_seconds",
)
PROBE_SELECTOR = re.compile(rf"(?<![\w:])({'|'.join(PROBE_SERIES)})(?![\w:])(\{{[^}}]*\}})?")


@pytest.mark.parametrize(
    "rule", [rule for rule in ALERTS if rule["alert"] not in FIXED_VALUE_ALERTS], ids=alert_id
)
def test_alert_description_shows_value(rule: dict[str, object]) -> None:
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    assert "$value" in str(annotations["description"])


@pytest.mark.parametrize(
    "rule", load_rules(), ids=lambda rule: str(rule.get("alert") or rule.get("record"))
)
def test_rule_reads_known_metrics(rule: dict[str, object]) -> None:
    assert metric_names(str(rule["expr"])) - known_metrics() == set()


def probe_selectors(expression: str) -> list[str]:
    """Return each selector of a /probe series in ``expression``, with its matchers if any."""
    return [found.group(0) for found in PROBE_SELECTOR.finditer(expression)]


@pytest.mark.parametrize(
    "rule", load_rules(), ids=lambda rule: str(rule.get("alert") or rule.get("record"))
)
def test_rule_selects_metrics_job(rule: dict[str, object]) -> None:
    selectors = probe_selectors(str(rule["expr"]))
    assert [selector for selector in selectors if 'job="smtpdiag"' not in selector] == []


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('smtpdiag_up{job="smtpdiag"} == 0', ['smtpdiag_up{job="smtpdiag"}']),
        ("smtpdiag_up == 0", ["smtpdiag_up"]),
        ("instance:smtpdiag_clock_offset_seconds:max_abs > 5", []),
        ("smtpdiag_up_total", []),
    ],
    ids=["with matchers", "bare name", "recorded name", "longer name"],
)
def test_probe_selectors_reader(expression: str, expected: list[str]) -> None:
    assert probe_selectors(expression) == expected


@pytest.mark.parametrize("name", sorted(recorded_names()))
def test_recorded_name_has_level_metric_operation(name: str) -> None:
    assert re.fullmatch(r"[a-z_]+:smtpdiag_[a-z_]+:[a-z0-9_]+", name)


@pytest.mark.parametrize("path", sorted(RUNBOOKS.glob("*.md")), ids=lambda path: path.name)
def test_runbook_belongs_to_alert(path: Path) -> None:
    assert path.stem in ALERT_NAMES


@pytest.mark.parametrize("path", sorted(RUNBOOKS.glob("*.md")), ids=lambda path: path.name)
def test_runbook_finding_codes_exist(path: Path) -> None:
    catalog = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    codes = set(FINDING_CODE.findall(path.read_text(encoding="utf-8")))
    assert {code for code in codes if f"### `{code}`" not in catalog} == set()


MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def heading_anchor(heading: str) -> str:
    """Return the anchor that GitHub gives a Markdown heading: lower case, punctuation other
    than ``-`` and ``_`` removed, blanks turned into ``-``. The ``-1`` suffix of a repeated
    heading is not produced."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def markdown_anchors(path: Path) -> set[str]:
    """Return the anchors of the headings of a Markdown file, outside fenced code blocks."""
    anchors: set[str] = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            anchors.add(heading_anchor(line.lstrip("#")))
    return anchors


def broken_links(path: Path) -> list[str]:
    """Return the relative links of a Markdown file whose file or heading does not exist."""
    broken: list[str] = []
    for link in MARKDOWN_LINK.findall(path.read_text(encoding="utf-8")):
        if "://" in link or link.startswith("mailto:"):
            continue
        name, _, anchor = link.partition("#")
        linked = (path.parent / name).resolve() if name else path
        if not linked.is_file() or (anchor and anchor not in markdown_anchors(linked)):
            broken.append(link)
    return broken


@pytest.mark.parametrize("path", sorted(RUNBOOKS.glob("*.md")), ids=lambda path: path.name)
def test_runbook_links_resolve(path: Path) -> None:
    assert broken_links(path) == []


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("other.md", []),
        ("other.md#what-to-check", []),
        ("#impact", []),
        ("missing.md", ["missing.md"]),
        ("other.md#escalate", ["other.md#escalate"]),
        ("https://example.com/missing.md", []),
    ],
    ids=["file", "file and heading", "own heading", "missing file", "missing heading", "web"],
)
def test_broken_links_reader(tmp_path: Path, link: str, expected: list[str]) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## What to check\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(f"# Page\n\n## Impact\n\nSee [there]({link}).\n", encoding="utf-8")
    assert broken_links(page) == expected


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        (" 4. msmtpd on loopback", "4-msmtpd-on-loopback"),
        (" The permanent-bounce trap", "the-permanent-bounce-trap"),
        (" What to do, by finding", "what-to-do-by-finding"),
        (" `--once` and node_exporter", "--once-and-node_exporter"),
    ],
    ids=["numbered", "hyphen", "comma", "code span"],
)
def test_heading_anchor_reader(heading: str, expected: str) -> None:
    assert heading_anchor(heading) == expected


def unit_test_cases() -> list[dict[str, object]]:
    document = yaml.safe_load(RULES_TEST_FILE.read_text(encoding="utf-8"))
    return [case for test in document["tests"] for case in test.get("alert_rule_test", [])]


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_unit_tests_fire_every_alert(name: str) -> None:
    firing = [
        case for case in unit_test_cases() if case["alertname"] == name and case["exp_alerts"]
    ]
    assert firing != []


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_unit_tests_show_every_alert_quiet(name: str) -> None:
    quiet = [
        case for case in unit_test_cases() if case["alertname"] == name and not case["exp_alerts"]
    ]
    assert quiet != []


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('sum by (job) (rate(a_total{x="y"}[5m]))', {"a_total"}),
        ("a:b:c > 0.02 and on (job) b_total offset 1h", {"a:b:c", "b_total"}),
        ('absent(up{job="smtpdiag"}) or time() - c > 900', {"up", "c"}),
        ('increase(d{job=~"$job"}[$__rate_interval])', {"d"}),
    ],
    ids=["aggregation", "binary operators", "functions", "grafana variables"],
)
def test_metric_names_reader(expression: str, expected: set[str]) -> None:
    assert metric_names(expression) == expected
