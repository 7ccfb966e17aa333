"""Tests of the JUnit XML renderer."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from smtpdiag.models import CheckResult, Finding, Report, Severity, Status
from smtpdiag.render.junit import render_junit


def parse(report: Report) -> ET.Element:
    """Render ``report`` and parse the UTF-8 bytes back into the root element."""
    return ET.fromstring(render_junit(report).encode("utf-8"))


def find_testcase(report: Report, check_id: str) -> ET.Element:
    """Return the ``<testcase>`` element of ``check_id``."""
    element = parse(report).find(f"testsuite/testcase[@name='{check_id}']")
    assert element is not None
    return element


def test_junit_starts_with_utf8_declaration(critical_report: Report) -> None:
    assert render_junit(critical_report).startswith('<?xml version="1.0" encoding="UTF-8"?>\n')


def test_junit_root_is_testsuites(status_mix: Any) -> None:
    assert parse(status_mix.report).tag == "testsuites"


def test_junit_has_one_testsuite(status_mix: Any) -> None:
    assert len(parse(status_mix.report).findall("testsuite")) == 1


@pytest.mark.parametrize(
    ("attribute", "status"),
    [
        ("failures", Status.CRITICAL),
        ("errors", Status.UNKNOWN),
        ("skipped", Status.SKIPPED),
    ],
    ids=str,
)
def test_junit_counts_match(status_mix: Any, attribute: str, status: Status) -> None:
    suite = parse(status_mix.report).find("testsuite")
    assert suite is not None
    expected = sum(1 for check in status_mix.report.checks if check.status is status)
    assert suite.get(attribute) == str(expected)


def test_junit_tests_count_matches(status_mix: Any) -> None:
    suite = parse(status_mix.report).find("testsuite")
    assert suite is not None
    assert suite.get("tests") == str(len(status_mix.report.checks))


def test_junit_counts_match_elements(status_mix: Any) -> None:
    suite = parse(status_mix.report).find("testsuite")
    assert suite is not None
    counted = {
        "tests": len(suite.findall("testcase")),
        "failures": len(suite.findall("testcase/failure")),
        "errors": len(suite.findall("testcase/error")),
        "skipped": len(suite.findall("testcase/skipped")),
    }
    assert counted == {name: int(suite.get(name, "-1")) for name in counted}


def test_junit_suite_attributes(critical_report: Report) -> None:
    suite = parse(critical_report).find("testsuite")
    assert suite is not None
    assert suite.get("name") == "smtpdiag relay"
    assert suite.get("time") == "1.250"
    assert suite.get("timestamp") == "2026-04-22T08:15:00Z"


def test_junit_testcase_per_check(critical_report: Report) -> None:
    names = [case.get("name") for case in parse(critical_report).iter("testcase")]
    assert names == ["dns", "connect", "tls", "token"]


def test_junit_testcase_classname_and_time(critical_report: Report) -> None:
    case = find_testcase(critical_report, "connect")
    assert case.get("classname") == "smtpdiag.relay"
    assert case.get("time") == "0.034"


def test_junit_classname_falls_back_to_host(report_factory: Callable[..., Report]) -> None:
    report = report_factory(
        CheckResult("dns", Status.OK, "ok"), target={"host": "smtp.example.test", "port": 587}
    )
    assert find_testcase(report, "dns").get("classname") == "smtpdiag.smtp.example.test"


def test_junit_failure_type_is_first_critical_code(status_mixes: dict[str, Any]) -> None:
    failure = find_testcase(status_mixes["critical"].report, "connect").find("failure")
    assert failure is not None
    assert failure.get("type") == "connect.starttls_not_offered"


def test_junit_failure_message_is_summary(status_mixes: dict[str, Any]) -> None:
    failure = find_testcase(status_mixes["critical"].report, "connect").find("failure")
    assert failure is not None
    assert failure.get("message") == "STARTTLS not offered by 127.0.0.1:2525"


def test_junit_failure_text_has_finding(auth_report: Report, outlook_rejection: str) -> None:
    failure = find_testcase(auth_report, "auth").find("failure")
    assert failure is not None
    text = failure.text or ""
    assert "[critical] auth.rejected: Server rejected the access token" in text
    assert "cause: Exchange Online refused XOAUTH2 [auth]" in text
    assert "fix: Enable authenticated SMTP for the mailbox" in text
    assert "reply_code=535" in text
    assert f"  S: {outlook_rejection}" in text
    assert "docs: docs/checks/auth.md" in text


def test_junit_failure_type_without_critical_finding(
    report_factory: Callable[..., Report],
) -> None:
    report = report_factory(CheckResult("relay", Status.CRITICAL, "relay refused"))
    failure = find_testcase(report, "relay").find("failure")
    assert failure is not None
    assert failure.get("type") == "critical"


def test_junit_unknown_is_error(status_mixes: dict[str, Any]) -> None:
    error = find_testcase(status_mixes["unknown"].report, "clock").find("error")
    assert error is not None
    assert error.get("message") == "TimeoutError: no NTP reply within 10 s"
    assert "facts: error=TimeoutError" in (error.text or "")


def test_junit_skipped_has_message(status_mixes: dict[str, Any]) -> None:
    skipped = find_testcase(status_mixes["critical"].report, "token").find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "no refresh token configured"


def test_junit_warning_passes(status_mixes: dict[str, Any]) -> None:
    case = find_testcase(status_mixes["warning"].report, "tls")
    assert [child.tag for child in case] == ["system-out"]


def test_junit_warning_findings_in_system_out(status_mixes: dict[str, Any]) -> None:
    system_out = find_testcase(status_mixes["warning"].report, "tls").find("system-out")
    assert system_out is not None
    assert "[warning] tls.cert_expires_soon: Certificate expires in 9 days" in (
        system_out.text or ""
    )


def test_junit_ok_without_findings_is_plain(status_mixes: dict[str, Any]) -> None:
    assert list(find_testcase(status_mixes["critical"].report, "dns")) == []


CONTROL_TEXT = "220 \x00\x01\x08\x0b\x0c\x1b[31m\x7f \udc80\udcff \ufffe end"


def control_report(report_factory: Callable[..., Report]) -> Report:
    """Build a report whose texts hold characters that XML 1.0 forbids."""
    finding = Finding(
        "connect.bad_reply",
        Severity.CRITICAL,
        f"title {CONTROL_TEXT}",
        "cause",
        "fix",
        facts={"reply_text": CONTROL_TEXT},
        evidence=(f"S: {CONTROL_TEXT}",),
    )
    return report_factory(
        CheckResult("connect", Status.CRITICAL, f"summary {CONTROL_TEXT}", (finding,)),
        CheckResult.unknown("clock", CONTROL_TEXT),
        CheckResult.skipped("token", CONTROL_TEXT),
        target={"name": f"relay{CONTROL_TEXT}", "host": "127.0.0.1"},
    )


ESCAPED_TEXT = "220 \\x00\\x01\\x08\\x0b\\x0c\\x1b[31m\\x7f \\x80\\xff \\ufffe end"


def test_junit_control_characters_parse(report_factory: Callable[..., Report]) -> None:
    assert parse(control_report(report_factory)).tag == "testsuites"


@pytest.mark.parametrize(
    ("path", "attribute", "expected"),
    [
        ("testsuite", "name", f"smtpdiag relay{ESCAPED_TEXT}"),
        ("testsuite/testcase[@name='connect']/failure", "message", f"summary {ESCAPED_TEXT}"),
        ("testsuite/testcase[@name='clock']/error", "message", ESCAPED_TEXT),
        ("testsuite/testcase[@name='token']/skipped", "message", ESCAPED_TEXT),
    ],
    ids=["suite_name", "failure_message", "error_message", "skipped_message"],
)
def test_junit_control_characters_escaped_in_attributes(
    report_factory: Callable[..., Report], path: str, attribute: str, expected: str
) -> None:
    element = parse(control_report(report_factory)).find(path)
    assert element is not None
    assert element.get(attribute) == expected


def test_junit_control_characters_escaped_in_text(
    report_factory: Callable[..., Report],
) -> None:
    failure = parse(control_report(report_factory)).find(
        "testsuite/testcase[@name='connect']/failure"
    )
    assert failure is not None
    assert f"  S: {ESCAPED_TEXT}" in (failure.text or "")
