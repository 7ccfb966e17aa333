"""connect check against scripted peers on loopback, and its pure evaluation."""

from __future__ import annotations

import time

import pytest
from scripted_peer import Step, scripted_peer, unused_port

from checks import connect
from smtpdiag.context import CheckContext, Settings, Target, TlsMode
from smtpdiag.lab.runner import start_lab
from smtpdiag.lab.scenarios import get_scenario
from smtpdiag.models import CheckResult, Severity, Status
from smtpdiag.smtp.capabilities import Capabilities
from smtpdiag.smtp.probe import Failure, ProbeOutcome, Stage
from smtpdiag.smtp.reply import Reply

GREETING = b"220 mx.example.test ESMTP ready\r\n"


def run_connect(port: int, mode: TlsMode = TlsMode.STARTTLS, timeout: float = 2.0) -> CheckResult:
    target = Target(host="127.0.0.1", port=port, tls_mode=mode)
    return connect.run(target, CheckContext(settings=Settings(timeout=timeout)))


def codes(result: CheckResult) -> list[str]:
    return [finding.code for finding in result.findings]


SCRIPTS: list[object] = [
    pytest.param(
        [("send", b"554 5.7.1 Your IP is on a block list\r\n"), ("close", None)],
        "connect.greeting_rejected",
        id="greeting-554",
    ),
    pytest.param(
        [("send", b"421-4.3.2 Service not available\r\n421 4.3.2 closing\r\n"), ("close", None)],
        "connect.greeting_rejected",
        id="greeting-421-multi-line",
    ),
    pytest.param(
        [("send", GREETING), ("read_line", None), ("send", b"501 5.5.4 Invalid EHLO domain\r\n")],
        "connect.ehlo_rejected",
        id="ehlo-501",
    ),
    pytest.param(
        [
            ("send", GREETING),
            ("read_line", None),
            ("send", b"250-mx.example.test\r\n250-STARTTLS\r\n250 SIZE 1000\r\n"),
            ("read_line", None),
            ("send", b"454 4.7.0 TLS not available due to local problem\r\n"),
        ],
        "connect.starttls_rejected",
        id="starttls-454",
    ),
    pytest.param(
        [
            ("send", GREETING),
            ("read_line", None),
            ("send", b"250-mx.example.test\r\n250 AUTH PLAIN LOGIN\r\n"),
        ],
        "connect.starttls_not_offered",
        id="starttls-missing",
    ),
    pytest.param(
        [("send", GREETING), ("read_line", None), ("close", None)],
        "connect.closed",
        id="closed-after-ehlo",
    ),
    pytest.param(
        [("send", b"HTTP/1.1 400 Bad Request\r\n\r\n")], "connect.not_smtp", id="http-server"
    ),
    pytest.param([("send", b"SSH-2.0-OpenSSH_9.2p1\r\n")], "connect.not_smtp", id="ssh-server"),
    pytest.param(
        [("send", b"\x00\xff" * 5_000_000)], "connect.not_smtp", id="ten-megabytes-garbage"
    ),
]


@pytest.mark.parametrize(("script", "expected"), SCRIPTS)
def test_scripted_peer_finding(script: list[Step], expected: str) -> None:
    with scripted_peer(script) as port:
        result = run_connect(port)
    assert codes(result)[0] == expected


@pytest.mark.parametrize(("script", "expected"), SCRIPTS)
def test_scripted_peer_is_critical(script: list[Step], expected: str) -> None:
    with scripted_peer(script) as port:
        result = run_connect(port)
    assert result.status is Status.CRITICAL


def test_refused_port() -> None:
    result = run_connect(unused_port())
    assert codes(result) == ["connect.refused"]


def test_rejected_greeting_facts() -> None:
    with scripted_peer([("send", b"554 5.7.1 Your IP is on a block list\r\n")]) as port:
        result = run_connect(port)
    facts = result.findings[0].facts
    assert (facts["reply_code"], facts["enhanced_code"]) == (554, "5.7.1")


def test_black_hole_ends_within_timeout() -> None:
    with scripted_peer([("hang", 30)]) as port:
        started = time.monotonic()
        result = run_connect(port, timeout=1.0)
        elapsed = time.monotonic() - started
    assert codes(result) == ["connect.timeout"]
    assert elapsed < 2.0


def test_black_hole_implicit_mode_times_out() -> None:
    with scripted_peer([("hang", 30)]) as port:
        result = run_connect(port, TlsMode.IMPLICIT, timeout=1.0)
    assert codes(result) == ["connect.timeout"]


def test_implicit_mode_on_starttls_port() -> None:
    with scripted_peer([("send", GREETING), ("read_line", None)]) as port:
        result = run_connect(port, TlsMode.IMPLICIT)
    assert codes(result) == ["connect.port_expects_starttls"]


def test_implicit_mode_fix_names_starttls() -> None:
    with scripted_peer([("send", GREETING), ("read_line", None)]) as port:
        result = run_connect(port, TlsMode.IMPLICIT)
    assert "--tls-mode starttls" in result.findings[0].fix


def test_garbage_evidence_is_escaped() -> None:
    with scripted_peer([("send", b"\x00\x01\x02binary\r\n")]) as port:
        result = run_connect(port)
    assert any("\\x00\\x01\\x02binary" in line for line in result.findings[0].evidence)


def ehlo(*lines: str) -> Capabilities:
    raw = [f"250-{line}" for line in ("mx.example.test", *lines[:-1])] + [f"250 {lines[-1]}"]
    return Capabilities.from_reply(
        Reply(250, ("mx.example.test", *lines), "\r\n".join(raw).encode())
    )


def outcome(
    before: Capabilities | None,
    after: Capabilities | None,
    oddities: tuple[str, ...] = (),
    address: str = "192.0.2.25",
) -> ProbeOutcome:
    return ProbeOutcome(
        address=address,
        port=587,
        implicit_tls=False,
        stage=Stage.DONE,
        capabilities_before_tls=before,
        capabilities_after_tls=after,
        oddities=list(oddities),
    )


EVALUATE = [
    pytest.param(
        outcome(ehlo("STARTTLS"), ehlo("AUTH LOGIN XOAUTH2")), [], id="microsoft-style-ok"
    ),
    pytest.param(
        outcome(
            ehlo("STARTTLS"), ehlo("AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH")
        ),
        [],
        id="gmail-style-ok",
    ),
    pytest.param(
        outcome(ehlo("STARTTLS"), ehlo("AUTH PLAIN LOGIN")),
        ["connect.oauth_not_offered"],
        id="no-oauth",
    ),
    pytest.param(
        outcome(ehlo("STARTTLS"), ehlo("SIZE 1000")), ["connect.auth_not_offered"], id="no-auth"
    ),
    pytest.param(
        outcome(ehlo("STARTTLS"), ehlo("AUTH=LOGIN XOAUTH2")), [], id="legacy-auth-equals"
    ),
    pytest.param(
        outcome(ehlo("STARTTLS", "AUTH PLAIN"), ehlo("AUTH PLAIN XOAUTH2")),
        ["connect.auth_before_tls"],
        id="auth-before-tls",
    ),
    pytest.param(
        outcome(ehlo("STARTTLS", "AUTH XOAUTH2"), ehlo("AUTH XOAUTH2"), address="127.0.0.1"),
        [],
        id="auth-before-tls-on-loopback-ipv4",
    ),
    pytest.param(
        outcome(ehlo("STARTTLS", "AUTH XOAUTH2"), ehlo("AUTH XOAUTH2"), address="::1"),
        [],
        id="auth-before-tls-on-loopback-ipv6",
    ),
    pytest.param(
        outcome(
            ehlo("STARTTLS"), ehlo("AUTH XOAUTH2"), ("line ends with a bare LF instead of CRLF",)
        ),
        ["connect.protocol_oddities"],
        id="oddities",
    ),
]


@pytest.mark.parametrize(("probe_outcome", "expected"), EVALUATE)
def test_evaluate_capabilities(probe_outcome: ProbeOutcome, expected: list[str]) -> None:
    assert codes(connect.evaluate([probe_outcome], 10.0)) == expected


def test_evaluate_merges_addresses() -> None:
    first = outcome(ehlo("STARTTLS"), ehlo("AUTH PLAIN"))
    second = outcome(ehlo("STARTTLS"), ehlo("AUTH PLAIN"))
    second.address = "2001:db8::25"
    result = connect.evaluate([first, second], 10.0)
    assert result.findings[0].facts["addresses"] == ["192.0.2.25", "2001:db8::25"]


def test_oauth_finding_lists_mechanisms() -> None:
    result = connect.evaluate([outcome(ehlo("STARTTLS"), ehlo("AUTH PLAIN LOGIN"))], 10.0)
    assert "PLAIN LOGIN" in result.findings[0].title


def test_one_failing_address_is_warning() -> None:
    good = outcome(ehlo("STARTTLS"), ehlo("AUTH XOAUTH2"))
    bad = ProbeOutcome(
        address="::1", port=587, implicit_tls=False, failure=Failure.REFUSED, error="refused"
    )
    result = connect.evaluate([good, bad], 10.0)
    assert [(f.code, f.severity) for f in result.findings] == [
        ("connect.address_failed", Severity.WARNING)
    ]
    assert result.findings[0].facts["failure_code"] == "connect.refused"


def test_all_addresses_failing_is_critical() -> None:
    first = ProbeOutcome(
        address="127.0.0.1", port=587, implicit_tls=False, failure=Failure.REFUSED, error="refused"
    )
    second = ProbeOutcome(
        address="::1", port=587, implicit_tls=False, failure=Failure.REFUSED, error="refused"
    )
    result = connect.evaluate([first, second], 10.0)
    assert result.status is Status.CRITICAL


def test_drip_fed_greeting_ends_at_timeout() -> None:
    with scripted_peer([("drip", b"220-a greeting sent one byte at a time\r\n" * 20)]) as port:
        started = time.monotonic()
        result = run_connect(port, timeout=1.0)
        elapsed = time.monotonic() - started
    assert codes(result) == ["connect.timeout"]
    assert elapsed < 2.0


def test_drip_fed_greeting_evidence_shows_bytes() -> None:
    with scripted_peer([("drip", b"220-slow greeting\r\n" * 20)]) as port:
        result = run_connect(port, timeout=1.0)
    assert any(line.startswith("S (incomplete): 220-") for line in result.findings[0].evidence)


def test_untrusted_certificate_does_not_stop_session() -> None:
    # connect does not verify certificates, so a CA that no store trusts passes here.
    with start_lab(get_scenario("healthy")) as info:
        _host, port = info.smtp_starttls.rsplit(":", 1)
        result = run_connect(int(port))
    assert result.status is Status.OK
    assert result.facts["addresses"][0]["stage"] == "done"


def test_plaintext_after_starttls_is_tls_failure() -> None:
    script: list[Step] = [
        ("send", GREETING),
        ("read_line", None),
        ("send", b"250-mx.example.test\r\n250 STARTTLS\r\n"),
        ("read_line", None),
        ("send", b"220 go ahead\r\n"),
        ("hang", 0.3),  # so the plaintext arrives after the ClientHello, not with the reply
        ("send", b"this is not TLS at all\r\n"),
        ("hang", 1),
    ]
    with scripted_peer(script) as port:
        result = run_connect(port)
    assert codes(result)[0] == "connect.tls_handshake_failed"
    assert "accepted STARTTLS, then sent plaintext" in result.findings[0].title


def test_not_smtp_at_greeting_names_other_service() -> None:
    with scripted_peer([("send", b"SSH-2.0-OpenSSH_9.2p1\r\n")]) as port:
        result = run_connect(port)
    finding = result.findings[0]
    assert "Another service listens on this port" in finding.cause
    assert finding.fix.startswith("Check the host and port.")


def test_not_smtp_after_greeting_names_line_count() -> None:
    endless = b"".join(b"250-line %d\r\n" % number for number in range(300))
    script: list[Step] = [("send", GREETING), ("read_line", None), ("send", endless)]
    with scripted_peer(script) as port:
        result = run_connect(port)
    finding = result.findings[0]
    assert finding.code == "connect.not_smtp"
    assert "reply longer than 256 lines" in finding.cause
    assert "the reply went on past 256 lines without a last line" in finding.cause
    assert "during EHLO" in finding.cause
    assert "512 octets" not in finding.cause
    assert "Another service" not in finding.cause
    assert finding.fix.startswith("Send the evidence to the server's operator")


def test_line_count_excerpt_marks_cut() -> None:
    endless = b"".join(b"250-line %d\r\n" % number for number in range(300))
    script: list[Step] = [("send", GREETING), ("read_line", None), ("send", endless)]
    with scripted_peer(script) as port:
        result = run_connect(port)
    finding = result.findings[0]
    assert finding.evidence[-1].startswith("S: …250-line ")
    assert "256 lines: …250-line " in finding.cause


def test_not_smtp_after_greeting_names_line_length() -> None:
    script: list[Step] = [
        ("send", GREETING),
        ("read_line", None),
        ("send", b"250-" + b"x" * 5000),
        ("hang", 1),
    ]
    with scripted_peer(script) as port:
        result = run_connect(port)
    finding = result.findings[0]
    assert finding.code == "connect.not_smtp"
    assert "a line of more than 4096 octets during EHLO" in finding.cause
    assert "went on past 256 lines" not in finding.cause
    assert finding.evidence[-1].endswith("xx…")


def test_endless_greeting_is_not_other_service() -> None:
    endless = b"".join(b"220-line %d\r\n" % number for number in range(300))
    with scripted_peer([("send", endless)]) as port:
        result = run_connect(port)
    finding = result.findings[0]
    assert "went on past 256 lines" in finding.cause
    assert "during the greeting" in finding.cause
    assert "Another service" not in finding.cause


def test_close_mid_reply_evidence_shows_lines() -> None:
    script: list[Step] = [
        ("send", GREETING),
        ("read_line", None),
        ("send", b"250-mx.example.test\r\n250-PIPELINING\r\n"),
        ("close", None),
    ]
    with scripted_peer(script) as port:
        result = run_connect(port)
    finding = result.findings[0]
    assert finding.code == "connect.closed"
    assert finding.evidence[-2] == "C: EHLO localhost"
    assert finding.evidence[-1] == ("S (incomplete): 250-mx.example.test\\r\\n250-PIPELINING\\r\\n")


def test_close_mid_reply_error_counts_lines() -> None:
    script: list[Step] = [
        ("send", GREETING),
        ("read_line", None),
        ("send", b"250-mx.example.test\r\n250-PIPELINING\r\n"),
        ("close", None),
    ]
    with scripted_peer(script) as port:
        result = run_connect(port)
    finding = result.findings[0]
    assert "after 37 bytes of a reply (2 continuation lines without" in finding.cause
    assert "no bytes" not in finding.cause
    assert finding.title.endswith("closed the connection during EHLO")


def test_close_before_reply_error() -> None:
    with scripted_peer([("send", GREETING), ("read_line", None), ("close", None)]) as port:
        result = run_connect(port)
    assert "before any byte of a reply arrived" in result.findings[0].cause


def test_silent_server_cause_names_accepted_connection() -> None:
    with scripted_peer([("hang", 30)]) as port:
        result = run_connect(port, timeout=1.0)
    finding = result.findings[0]
    assert finding.code == "connect.timeout"
    assert "accepted the TCP connection" in finding.cause
    assert "firewall" not in finding.cause
    assert "firewall" not in finding.fix
    assert finding.title.endswith("within 1 s during the greeting")


def test_silent_server_evidence_names_tls_probe_result() -> None:
    with scripted_peer([("hang", 30)]) as port:
        result = run_connect(port, timeout=1.0)
    evidence = result.findings[0].evidence
    assert evidence[0] == "-- no greeting after 0.5 s; trying a TLS handshake"
    assert evidence[-1].startswith("-- no answer to the TLS ClientHello within ")


def test_drip_fed_greeting_cause_counts_bytes() -> None:
    with scripted_peer([("drip", b"220-slow greeting\r\n" * 20)]) as port:
        result = run_connect(port, timeout=1.0)
    finding = result.findings[0]
    assert "bytes of a reply (part of its first line) arrived" in finding.cause
    assert "accepted the TCP connection" in finding.cause


def test_tcp_timeout_keeps_firewall_text() -> None:
    timed_out = ProbeOutcome(
        "192.0.2.25", 587, False, stage=Stage.TCP, failure=Failure.TIMEOUT, error="x"
    )
    finding = connect.evaluate([timed_out], 10.0).findings[0]
    assert "a firewall drops the traffic" in finding.cause
    assert "outbound TCP 587" in finding.fix
    assert "accepted the TCP connection" not in finding.cause


STAGE_TITLES = [
    pytest.param(Stage.GREETING, "during the greeting", id="greeting"),
    pytest.param(Stage.EHLO, "during EHLO", id="ehlo"),
    pytest.param(Stage.STARTTLS, "during STARTTLS", id="starttls"),
    pytest.param(Stage.TLS_HANDSHAKE, "during the TLS handshake", id="tls-handshake"),
    pytest.param(Stage.EHLO_AFTER_TLS, "during the EHLO after TLS", id="ehlo-after-tls"),
]


@pytest.mark.parametrize(("stage", "words"), STAGE_TITLES)
def test_closed_title_names_stage_in_words(stage: Stage, words: str) -> None:
    closed = ProbeOutcome("192.0.2.25", 587, False, stage=stage, failure=Failure.CLOSED, error="x")
    finding = connect.evaluate([closed], 10.0).findings[0]
    assert finding.title == f"192.0.2.25:587 closed the connection {words}"


def test_reset_after_connect_is_closed() -> None:
    with scripted_peer([("reset", None)]) as port:
        result = run_connect(port)
    finding = result.findings[0]
    assert finding.code == "connect.closed"
    assert "a TCP reset ended the connection" in finding.cause
    assert finding.evidence[-1] == "-- a TCP reset ended the connection"


def test_tls_failure_fix_gives_openssl_command() -> None:
    script: list[Step] = [
        ("send", GREETING),
        ("read_line", None),
        ("send", b"250-mx.example.test\r\n250 STARTTLS\r\n"),
        ("read_line", None),
        ("send", b"220 go ahead\r\n"),
        ("close", None),
    ]
    with scripted_peer(script) as port:
        result = run_connect(port)
    finding = result.findings[0]
    assert finding.code == "connect.tls_handshake_failed"
    assert f"openssl s_client -starttls smtp -connect 127.0.0.1:{port} and" in finding.fix
    assert "tls check's finding" not in finding.fix


def test_openssl_command_implicit_tls_with_sni() -> None:
    outcome = ProbeOutcome("192.0.2.7", 465, True, server_hostname="smtp.example.test")
    assert connect._openssl_command(outcome) == (
        "openssl s_client -connect 192.0.2.7:465 -servername smtp.example.test"
    )
