"""auth check against the lab's providers' behaviours, and its inputs and redaction."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from scripted_peer import Step, scripted_peer

from checks import REGISTRY
from checks import auth as auth_check
from smtpdiag.config import load
from smtpdiag.context import CheckContext, Settings, Target, TlsMode
from smtpdiag.engine import run_checks
from smtpdiag.knowledge import Provider
from smtpdiag.lab.runner import LabInfo, start_lab
from smtpdiag.lab.scenarios import get_scenario
from smtpdiag.models import CheckResult, Finding, Report, Severity, Status
from smtpdiag.redact import redact_report
from smtpdiag.secrets import Secret
from smtpdiag.smtp.reply import Reply
from smtpdiag.smtp.session import SmtpSession
from smtpdiag.smtp.transport import Channel

SPECS = tuple(spec for spec in REGISTRY if spec.id in {"dns", "connect", "auth"})

AUTH_SCENARIOS = [
    ("healthy", ()),
    ("google-bad-token", ("auth.token_rejected",)),
    ("google-wrong-scope", ("auth.insufficient_scope",)),
    ("microsoft-5.7.3", ("auth.exchange_refused",)),
    ("microsoft-auth-disabled", ("auth.smtp_auth_disabled_tenant",)),
    ("rfc7628-invalid-token", ("auth.token_rejected",)),
    ("token-expires-soon", ("auth.token_expires_soon",)),
    ("line-too-long", ("auth.line_too_long",)),
    ("temporary-454", ("auth.temporary_failure",)),
    ("microsoft-send-as-denied", ("auth.send_as_denied",)),
]


_REPORTS: dict[str, Report] = {}


def scenario_report(name: str) -> Report:
    """Run dns, connect and auth against scenario ``name`` once per test session."""
    if name not in _REPORTS:
        with start_lab(get_scenario(name)) as info:
            loaded = load({}, config_path=str(info.config_file), target_name="lab", environ={})
            _REPORTS[name] = run_checks(SPECS, loaded.target, loaded.settings)
    return _REPORTS[name]


@pytest.fixture(params=AUTH_SCENARIOS, ids=[name for name, _ in AUTH_SCENARIOS])
def lab_report(request: pytest.FixtureRequest) -> tuple[str, tuple[str, ...], Report]:
    name, expected = request.param
    return name, expected, scenario_report(name)


def auth_result(report: Report) -> CheckResult:
    return next(check for check in report.checks if check.id == "auth")


def test_scenario_expected_codes(lab_report: tuple[str, tuple[str, ...], Report]) -> None:
    _, expected, report = lab_report
    codes = [finding.code for finding in auth_result(report).findings]
    assert set(expected) <= set(codes), codes


def test_scenario_status(lab_report: tuple[str, tuple[str, ...], Report]) -> None:
    name, _, report = lab_report
    expected = {
        "healthy": Status.OK,
        "line-too-long": Status.WARNING,
        "temporary-454": Status.WARNING,
    }.get(name, Status.CRITICAL)
    assert auth_result(report).status is expected


def test_scenario_mechanism_fact(lab_report: tuple[str, tuple[str, ...], Report]) -> None:
    name, _, report = lab_report
    expected = "OAUTHBEARER" if name == "rfc7628-invalid-token" else "XOAUTH2"
    assert auth_result(report).facts["mechanism"] == expected


def test_scenario_token_never_in_report(lab_report: tuple[str, tuple[str, ...], Report]) -> None:
    _, _, report = lab_report
    text = repr(redact_report(report).to_dict())
    assert "ya29.lab" not in text


@pytest.mark.parametrize("name", ["google-bad-token", "google-wrong-scope"])
def test_google_challenge_fact(name: str) -> None:
    facts = auth_result(scenario_report(name)).facts
    assert facts["challenge"]["scope"] == "https://mail.google.com/"


@pytest.mark.parametrize("name", ["microsoft-5.7.3", "microsoft-auth-disabled"])
def test_microsoft_server_timestamp(name: str) -> None:
    facts = auth_result(scenario_report(name)).facts
    assert facts["server_timestamp"] == "2026-12-04T10:00:00.000Z"


def test_skipped_without_token() -> None:
    target = Target(host="127.0.0.1", port=2525, tls_mode=TlsMode.STARTTLS, user="a@example.com")
    result = auth_check.run(target, CheckContext(settings=Settings()))
    assert result.status is Status.SKIPPED
    assert "--access-token-file" in result.summary


def test_skipped_without_user() -> None:
    target = Target(
        host="127.0.0.1",
        port=2525,
        tls_mode=TlsMode.STARTTLS,
        access_token=Secret("ya29.only-a-token", "test"),
    )
    result = auth_check.run(target, CheckContext(settings=Settings()))
    assert result.status is Status.SKIPPED


@pytest.fixture
def healthy_lab() -> Iterator[LabInfo]:
    with start_lab(get_scenario("healthy")) as info:
        yield info


def test_wrong_token_against_healthy_lab(healthy_lab: LabInfo, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("ya29.not-the-lab-token-0123456789\n")
    loaded = load(
        {"access_token_file": str(token_file)},
        config_path=str(healthy_lab.config_file),
        target_name="lab",
        environ={},
    )
    report = run_checks(SPECS, loaded.target, loaded.settings)
    assert [finding.code for finding in auth_result(report).findings] == ["auth.token_rejected"]


def test_oauthbearer_when_configured(healthy_lab: LabInfo) -> None:
    loaded = load(
        {"auth_mechanism": "OAUTHBEARER"},
        config_path=str(healthy_lab.config_file),
        target_name="lab",
        environ={},
    )
    report = run_checks(SPECS, loaded.target, loaded.settings)
    assert auth_result(report).facts["mechanism"] == "OAUTHBEARER"
    assert auth_result(report).status is Status.OK


def test_transcript_hides_token(healthy_lab: LabInfo, tmp_path: Path) -> None:
    token = "ya29.transcript-canary-0123456789"
    token_file = tmp_path / "token"
    token_file.write_text(token)
    loaded = load(
        {"access_token_file": str(token_file)},
        config_path=str(healthy_lab.config_file),
        target_name="lab",
        environ={},
    )
    report = redact_report(run_checks(SPECS, loaded.target, loaded.settings))
    text = repr(report.to_dict())
    encoded = base64.b64encode(
        f"user={loaded.target.user}\x01auth=Bearer {token}\x01\x01".encode()
    ).decode()
    assert token not in text
    assert encoded[20:60] not in text


def test_line_too_long_is_warning_when_fallback_works() -> None:
    finding = auth_result(scenario_report("line-too-long")).findings[0]
    assert (finding.code, finding.severity) == ("auth.line_too_long", Severity.WARNING)


def test_line_too_long_fallback_reply_fact() -> None:
    finding = auth_result(scenario_report("line-too-long")).findings[0]
    assert finding.facts["two_step_reply_code"] == 235


def line_limit_result(tmp_path: Path, token: str) -> CheckResult:
    """Run dns, connect and auth with ``token`` against the line-too-long lab (512 octets)."""
    token_file = tmp_path / "token"
    token_file.write_text(token)
    with start_lab(get_scenario("line-too-long")) as info:
        loaded = load(
            {"access_token_file": str(token_file)},
            config_path=str(info.config_file),
            target_name="lab",
            environ={},
        )
        return auth_result(run_checks(SPECS, loaded.target, loaded.settings))


LINE_LIMIT_CASES = [
    pytest.param(
        "ya29.wrong-" + "x" * 600,
        ["auth.line_too_long", "auth.token_rejected"],
        [Severity.WARNING, Severity.CRITICAL],
        "Server rejected the OAuth2 token (status 401)",
        id="two-step-token-rejected",
    ),
    pytest.param(
        # The XOAUTH2 response in base64 is longer than the lab's 12288-octet AUTH buffer.
        "ya29.wrong-" + "x" * 9500,
        ["auth.line_too_long", "auth.line_too_long"],
        [Severity.CRITICAL, Severity.CRITICAL],
        "Server rejected the AUTH line as too long",
        id="two-step-line-too-long",
    ),
]


@pytest.mark.parametrize(("token", "codes", "severities", "summary"), LINE_LIMIT_CASES)
def test_line_limit_against_lab(
    tmp_path: Path,
    token: str,
    codes: list[str],
    severities: list[Severity],
    summary: str,
) -> None:
    result = line_limit_result(tmp_path, token)
    assert [finding.code for finding in result.findings] == codes
    assert [finding.severity for finding in result.findings] == severities
    assert result.summary == summary


def test_send_test_message_accepted(healthy_lab: LabInfo) -> None:
    loaded = load(
        {"send_test": True, "mail_from": "lab.user@example.com", "rcpt_to": "rcpt@example.com"},
        config_path=str(healthy_lab.config_file),
        target_name="lab",
        environ={},
    )
    report = run_checks(SPECS, loaded.target, loaded.settings)
    assert auth_result(report).facts["test_message"] == "accepted"


def test_send_as_denied_reported_at_data() -> None:
    result = auth_result(scenario_report("microsoft-send-as-denied"))
    assert result.facts["test_message"] == "refused"
    assert result.findings[0].facts["enhanced_code"] == "5.2.252"


def test_send_test_needs_addresses() -> None:
    from smtpdiag.errors import UsageError

    with pytest.raises(UsageError, match="needs mail_from and rcpt_to"):
        load({"send_test": True}, host_port="127.0.0.1", environ={})


def reply(line: str) -> Reply:
    from smtpdiag.smtp.reply import parse_reply_line

    code, _, text, _ = parse_reply_line(line.encode())
    return Reply(code, (text,), line.encode() + b"\r\n")


LAB_TARGET = Target(
    host="127.0.0.1",
    port=2525,
    tls_mode=TlsMode.STARTTLS,
    user="a@example.com",
    access_token=Secret("ya29.evaluate-only-token", "test"),
)


def evaluated_codes(exchange: auth_check.Exchange) -> list[str]:
    result = auth_check.evaluate(exchange, Provider.GENERIC, LAB_TARGET, [])
    return [finding.code for finding in result.findings]


def test_text_challenge_then_535_is_rejection() -> None:
    from smtpdiag.sasl import Mechanism, parse_challenge

    exchange = auth_check.Exchange(Mechanism.XOAUTH2)
    exchange.challenge = parse_challenge("aGVsbG8gd29ybGQ=")  # "hello world", not JSON
    exchange.replies = [reply("334 aGVsbG8gd29ybGQ="), reply("535 5.7.8 bad credentials")]
    assert evaluated_codes(exchange) == ["auth.credentials_rejected"]


def test_silent_server_after_challenge() -> None:
    from smtpdiag.sasl import Mechanism, parse_challenge

    exchange = auth_check.Exchange(Mechanism.XOAUTH2)
    exchange.challenge = parse_challenge("eyJzdGF0dXMiOiI0MDEifQ==")
    exchange.replies = [reply("334 eyJzdGF0dXMiOiI0MDEifQ==")]
    exchange.error = "no reply within 3 s"
    assert evaluated_codes(exchange) == ["auth.token_rejected", "auth.no_final_reply"]


TOO_LONG = "500 5.5.2 Line too long"
DOVECOT_CHALLENGE = "334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0="


def line_limit_exchange(
    two_step: str | None, replies: list[str], error: str | None = None
) -> auth_check.Exchange:
    """Build an exchange whose initial response was refused as too long."""
    from smtpdiag.sasl import Mechanism, parse_challenge

    exchange = auth_check.Exchange(Mechanism.XOAUTH2)
    exchange.line_too_long = reply(TOO_LONG)
    exchange.two_step_reply = reply(two_step) if two_step is not None else None
    exchange.replies = [reply(line) for line in replies]
    if replies and replies[0].startswith("334 "):
        exchange.challenge = parse_challenge(replies[0].removeprefix("334 "))
    exchange.error = error
    return exchange


LINE_TOO_LONG_CASES = [
    pytest.param(
        "235 2.7.0 Logged in.",
        ["235 2.7.0 Logged in."],
        None,
        Severity.WARNING,
        "Server rejected the AUTH line as too long",
        id="two-step-accepted",
    ),
    pytest.param(
        DOVECOT_CHALLENGE,
        [DOVECOT_CHALLENGE, "535 5.7.8 Authentication failed."],
        None,
        Severity.WARNING,
        "Server rejected the OAuth2 token (status 401)",
        id="two-step-token-rejected",
    ),
    pytest.param(
        "454 4.7.0 Temporary authentication failure.",
        ["454 4.7.0 Temporary authentication failure."],
        None,
        Severity.WARNING,
        "Server reported a temporary authentication failure (454)",
        id="two-step-temporary-failure",
    ),
    pytest.param(
        "500 5.5.6 Authentication Exchange line is too long",
        ["500 5.5.6 Authentication Exchange line is too long"],
        None,
        Severity.CRITICAL,
        "Server rejected the AUTH line as too long",
        id="two-step-too-long",
    ),
    pytest.param(
        None,
        ["504 5.5.4 Unrecognized authentication type"],
        None,
        Severity.CRITICAL,
        "Server rejected the AUTH line as too long",
        id="bare-auth-refused",
    ),
    pytest.param(
        None,
        [],
        "no reply within 3 s",
        Severity.CRITICAL,
        "Server rejected the AUTH line as too long",
        id="two-step-unanswered",
    ),
]


@pytest.mark.parametrize(
    ("two_step", "replies", "error", "severity", "summary"), LINE_TOO_LONG_CASES
)
def test_line_too_long_severity(
    two_step: str | None,
    replies: list[str],
    error: str | None,
    severity: Severity,
    summary: str,
) -> None:
    exchange = line_limit_exchange(two_step, replies, error)
    result = auth_check.evaluate(exchange, Provider.GENERIC, LAB_TARGET, [])
    finding = result.findings[0]
    assert (finding.code, finding.severity) == ("auth.line_too_long", severity)
    assert result.summary == summary


def test_line_too_long_keeps_rejection_critical() -> None:
    exchange = line_limit_exchange(
        DOVECOT_CHALLENGE, [DOVECOT_CHALLENGE, "535 5.7.8 Authentication failed."]
    )
    result = auth_check.evaluate(exchange, Provider.GENERIC, LAB_TARGET, [])
    assert result.status is Status.CRITICAL
    assert [finding.code for finding in result.findings] == [
        "auth.line_too_long",
        "auth.token_rejected",
    ]


def test_repeated_empty_challenge() -> None:
    from smtpdiag.sasl import Mechanism

    exchange = auth_check.Exchange(Mechanism.XOAUTH2)
    exchange.repeated_challenge = True
    exchange.replies = [reply("501 5.7.0 Authentication aborted")]
    assert evaluated_codes(exchange) == ["auth.repeated_challenge"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("Bearer ya29.abcdef0123456789", "starts with 'Bearer '", id="bearer-prefix"),
        pytest.param('{"access_token": "ya29.x"}', "is a JSON document", id="json-body"),
        pytest.param("ya29.first\nya29.second\n", "several lines", id="two-lines"),
    ],
)
def test_token_file_mistakes(tmp_path: Path, content: str, message: str) -> None:
    from smtpdiag.errors import UsageError

    token_file = tmp_path / "token"
    token_file.write_text(content)
    with pytest.raises(UsageError, match=message):
        load({"access_token_file": str(token_file)}, host_port="127.0.0.1", environ={})


def test_token_file_blanks_stripped(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("\ufeff  ya29.padded-token-value  \r\n")
    loaded = load({"access_token_file": str(token_file)}, host_port="127.0.0.1", environ={})
    assert loaded.target.access_token is not None
    assert loaded.target.access_token.reveal() == "ya29.padded-token-value"


def test_untrusted_certificate_is_unknown(healthy_lab: LabInfo) -> None:
    host, port = healthy_lab.smtp_starttls.rsplit(":", 1)
    target = Target(
        host=host,
        port=int(port),
        tls_mode=TlsMode.STARTTLS,
        user=healthy_lab.user,
        access_token=Secret("ya29.token-that-must-not-be-sent", "test"),
    )
    result = auth_check.run(target, CheckContext(settings=Settings(timeout=5.0)))
    assert result.status is Status.UNKNOWN
    assert result.summary == (
        "the TLS handshake or the certificate verification failed; the tls check has the details"
    )


def test_msmtprc_account_sends_xoauth2_like_msmtp(tmp_path: Path) -> None:
    # msmtp sends AUTH XOAUTH2 without an initial response, so the line limit of the
    # line-too-long lab does not affect an account read from an msmtprc.
    with start_lab(get_scenario("line-too-long")) as info:
        loaded = load({}, config_path=str(info.config_file), target_name="lab", environ={})
        msmtp = replace(loaded.target.msmtp, config_file=str(tmp_path / "msmtprc"))
        target = replace(loaded.target, msmtp=msmtp, auth_mechanism="XOAUTH2")
        result = auth_result(run_checks(SPECS, target, loaded.settings))
    assert result.status is Status.OK
    assert [finding.code for finding in result.findings] == []


def lost_reply_exchange(
    mechanism: str, ending: auth_check.Ending, *, challenge: bool = False
) -> auth_check.Exchange:
    """Build an exchange that ended with ``ending`` before any final reply."""
    from smtpdiag.sasl import Mechanism, parse_challenge

    exchange = auth_check.Exchange(Mechanism(mechanism))
    if challenge:
        exchange.challenge = parse_challenge("eyJzdGF0dXMiOiI0MDEifQ==")
        exchange.replies = [reply("334 eyJzdGF0dXMiOiI0MDEifQ==")]
    exchange.ending = ending
    exchange.error = "a TCP reset ended the connection"
    return exchange


def no_final_reply(exchange: auth_check.Exchange) -> Finding:
    result = auth_check.evaluate(exchange, Provider.GENERIC, LAB_TARGET, [])
    return next(f for f in result.findings if f.code == "auth.no_final_reply")


@pytest.mark.parametrize("ending", [auth_check.Ending.RESET, auth_check.Ending.CLOSED])
def test_dropped_connection_without_challenge_cause(ending: auth_check.Ending) -> None:
    finding = no_final_reply(lost_reply_exchange("XOAUTH2", ending))
    assert "dropped the connection at AUTH" in finding.cause
    assert "dummy response" not in finding.cause


@pytest.mark.parametrize("ending", [auth_check.Ending.RESET, auth_check.Ending.CLOSED])
def test_dropped_connection_without_challenge_fix(ending: auth_check.Ending) -> None:
    finding = no_final_reply(lost_reply_exchange("XOAUTH2", ending))
    assert "--mechanism OAUTHBEARER" in finding.fix
    assert "shorter token" in finding.fix
    assert "--challenge-answer" not in finding.fix


def test_dropped_oauthbearer_suggests_xoauth2() -> None:
    finding = no_final_reply(lost_reply_exchange("OAUTHBEARER", auth_check.Ending.RESET))
    assert "--mechanism XOAUTH2" in finding.fix


def test_silent_server_without_challenge_fix() -> None:
    finding = no_final_reply(lost_reply_exchange("XOAUTH2", auth_check.Ending.TIMEOUT))
    assert "--challenge-answer" not in finding.fix
    assert "No challenge came before it" in finding.cause


def test_lost_reply_after_challenge_suggests_answer() -> None:
    exchange = lost_reply_exchange("XOAUTH2", auth_check.Ending.RESET, challenge=True)
    finding = no_final_reply(exchange)
    assert "different dummy response" in finding.cause
    assert "--challenge-answer kvsep" in finding.fix


def reset_exchange() -> tuple[auth_check.Exchange, list[str]]:
    from smtpdiag.sasl import Mechanism

    with scripted_peer([("read_line", None), ("reset", None)]) as port:
        channel = Channel.connect("127.0.0.1", port, 5.0)
        with channel:
            session = SmtpSession(channel, 5.0)
            exchange = auth_check._authenticate(session, LAB_TARGET, Mechanism.XOAUTH2)
    return exchange, session.transcript


def test_reset_at_auth_ends_exchange() -> None:
    exchange, _ = reset_exchange()
    assert exchange.ending is auth_check.Ending.RESET
    assert exchange.connection_lost


def test_reset_at_auth_in_transcript() -> None:
    _, transcript = reset_exchange()
    assert transcript[-1] == "-- a TCP reset ended the connection"


def test_session_closed_at_ehlo_summary() -> None:
    script: list[Step] = [
        ("send", b"220 mx.example.test ESMTP\r\n"),
        ("read_line", None),
        ("close", None),
    ]
    with scripted_peer(script) as port:
        target = replace(LAB_TARGET, port=port)
        result = auth_check.run(target, CheckContext(settings=Settings(timeout=2.0)))
    assert result.summary.startswith("the session did not reach AUTH (closed during EHLO;")
