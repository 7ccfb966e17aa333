"""Tests of the plain-text helpers shared by the renderers."""

from __future__ import annotations

from typing import Any

import pytest

from smtpdiag.render.text import (
    MAX_FACT_LENGTH,
    describe_target,
    escape_control,
    evidence_lines,
    format_fact_value,
    format_facts,
    format_host_port,
    one_line,
    target_name,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("250 OK", "250 OK", id="printable"),
        pytest.param("a\tb\nc", "a\tb\nc", id="tab_and_line_feed_kept"),
        pytest.param("a\rb", "a\\x0db", id="carriage_return"),
        pytest.param("\x00\x07\x08", "\\x00\\x07\\x08", id="c0_controls"),
        pytest.param("\x1b[2J", "\\x1b[2J", id="terminal_escape"),
        pytest.param("\x7f\x85\x9b", "\\x7f\\x85\\x9b", id="delete_and_c1"),
        pytest.param("\udc80\udcff", "\\x80\\xff", id="surrogate_escaped_bytes"),
        pytest.param("\ud800", "\\ud800", id="other_surrogate"),
        pytest.param("\ufffe\uffff", "\\ufffe\\uffff", id="noncharacters"),
        pytest.param("Grüße ошибка 認証", "Grüße ошибка 認証", id="non_ascii_letters"),
        pytest.param("[bold]", "[bold]", id="brackets"),
    ],
)
def test_escape_control(text: str, expected: str) -> None:
    assert escape_control(text) == expected


def test_escape_control_encodes_to_utf8() -> None:
    escaped = escape_control("".join(chr(code) for code in range(0xD7F0, 0xE010)))
    assert escaped.encode("utf-8").decode("utf-8") == escaped


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a\r\nb", "a b", id="crlf"),
        pytest.param("  a \t b  ", "a b", id="spaces_and_tabs"),
        pytest.param("a\x00b", "a\\x00b", id="nul_escaped"),
    ],
)
def test_one_line(text: str, expected: str) -> None:
    assert one_line(text) == expected


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        pytest.param("smtp.example.test", 587, "smtp.example.test:587", id="name"),
        pytest.param("127.0.0.1", 2525, "127.0.0.1:2525", id="ipv4"),
        pytest.param("::1", 465, "[::1]:465", id="ipv6"),
        pytest.param("smtp.example.test", None, "smtp.example.test", id="no_port"),
    ],
)
def test_format_host_port(host: str, port: int | None, expected: str) -> None:
    assert format_host_port(host, port) == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(
            {"name": "o365", "host": "smtp.office365.com", "port": 587, "tls_mode": "starttls"},
            "o365 (smtp.office365.com:587, starttls)",
            id="named",
        ),
        pytest.param(
            {"name": None, "host": "127.0.0.1", "port": 465, "tls_mode": "implicit"},
            "127.0.0.1:465, implicit",
            id="unnamed",
        ),
        pytest.param(
            {"host": "127.0.0.1", "port": 2525, "tls_mode": "starttls", "insecure": True},
            "127.0.0.1:2525, starttls, insecure",
            id="insecure",
        ),
        pytest.param(
            {"host": "", "port": 587, "domain": "example.test", "tls_mode": "starttls"},
            "example.test (starttls)",
            id="domain_only",
        ),
        pytest.param(
            {"host": "", "port": 587, "name": "/var/log/mail.log", "tls_mode": "starttls"},
            "/var/log/mail.log",
            id="log_files_only",
        ),
        pytest.param({}, "unnamed target", id="empty"),
    ],
)
def test_describe_target(target: dict[str, Any], expected: str) -> None:
    assert describe_target(target) == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param({"name": "relay", "host": "127.0.0.1"}, "relay", id="name"),
        pytest.param({"name": None, "host": "127.0.0.1"}, "127.0.0.1", id="host"),
        pytest.param({"host": "", "domain": "example.test"}, "example.test", id="domain"),
        pytest.param(
            {"host": "", "port": 587, "name": "/var/log/mail.log", "tls_mode": "starttls"},
            "/var/log/mail.log",
            id="log_files_only",
        ),
        pytest.param({}, "unnamed target", id="empty"),
    ],
)
def test_target_name(target: dict[str, Any], expected: str) -> None:
    assert target_name(target) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("5.7.139", "5.7.139", id="string_bare"),
        pytest.param(535, "535", id="integer"),
        pytest.param(None, "null", id="none"),
        pytest.param(True, "true", id="boolean"),
        pytest.param(["SMTP.Send", "offline_access"], '["SMTP.Send","offline_access"]', id="list"),
        pytest.param({"status": "401"}, '{"status":"401"}', id="object"),
        pytest.param("line\nbreak", "line break", id="line_break_folded"),
    ],
)
def test_format_fact_value(value: Any, expected: str) -> None:
    assert format_fact_value(value) == expected


def test_format_fact_value_cuts_long_value() -> None:
    shown = format_fact_value("x" * 200)
    assert shown == "x" * (MAX_FACT_LENGTH - 1) + "…"


def test_format_facts_joins_pairs() -> None:
    assert format_facts({"reply_code": 535, "enhanced_code": "5.7.3"}) == (
        "reply_code=535  enhanced_code=5.7.3"
    )


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [
        pytest.param(("S: 250 OK",), ["S: 250 OK"], id="one_line"),
        pytest.param(("S: 250-a\r\nS: 250 b\r\n",), ["S: 250-a", "S: 250 b"], id="crlf_lines"),
        pytest.param(("a", "b\nc"), ["a", "b", "c"], id="several_entries"),
        pytest.param(("a\x0cb",), ["a\x0cb"], id="form_feed_kept_in_line"),
        pytest.param(("",), [""], id="empty_entry"),
    ],
)
def test_evidence_lines(evidence: tuple[str, ...], expected: list[str]) -> None:
    assert evidence_lines(evidence) == expected
