"""Metric names that shipped PromQL may use, and a reader of the names in an expression.

The reader is no PromQL parser: it removes string literals, label matchers, ranges and
grouping clauses, then takes every remaining identifier that is not a function or keyword.
That suffices for the expressions in the shipped rules, dashboard and deploy examples.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = ROOT / "exporters" / "rules" / "smtpdiag.rules.yml"
RULES_TEST_FILE = ROOT / "exporters" / "rules" / "smtpdiag.rules.test.yml"
RUNBOOKS = ROOT / "docs" / "runbooks"
DEPLOY = ROOT / "docs" / "deploy"

EXPORTED_METRICS = frozenset(
    {
        "smtpdiag_up",
        "smtpdiag_check_status",
        "smtpdiag_check_success",
        "smtpdiag_check_duration_seconds",
        "smtpdiag_check_last_run_timestamp_seconds",
        "smtpdiag_check_finding",
        "smtpdiag_check_interval_seconds",
        "smtpdiag_check_runs_total",
        "smtpdiag_tls_cert_not_after_timestamp_seconds",
        "smtpdiag_clock_offset_seconds",
        "smtpdiag_token_expires_in_seconds",
        "smtpdiag_auth_attempts_total",
        "smtpdiag_auth_failures_total",
        "smtpdiag_log_lines_total",
        "smtpdiag_log_parse_errors_total",
        "smtpdiag_secret_leaks_total",
        "smtpdiag_log_files_followed",
        "smtpdiag_build_info",
        "smtpdiag_config_last_reload_successful",
    }
)
"""Series of the exporter's /metrics endpoint that rules and dashboards may use."""

PROMETHEUS_METRICS = frozenset({"up"})
"""Series that Prometheus itself writes for every scrape target."""

_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"bool", "offset", "inf", "nan", "Inf", "NaN"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])[A-Za-z_:][\w:]*")


def load_rules() -> list[dict[str, object]]:
    """Return every rule of the shipped rules file, recording and alerting, in file order."""
    document = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def recorded_names() -> frozenset[str]:
    """Return the names of the series that the shipped recording rules write."""
    return frozenset(str(rule["record"]) for rule in load_rules() if "record" in rule)


def known_metrics() -> frozenset[str]:
    """Return every series name that shipped PromQL may read."""
    return EXPORTED_METRICS | PROMETHEUS_METRICS | recorded_names()


def metric_names(expression: str) -> set[str]:
    """Return the metric names that a PromQL expression selects."""
    text = _STRING.sub('""', expression)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names: set[str] = set()
    for found in _IDENTIFIER.finditer(text):
        rest = text[found.end() :].lstrip()
        if rest.startswith("(") or found.group() in _KEYWORDS:
            continue
        names.add(found.group())
    return names
