"""clock check: evaluation of measured offsets and token claims, runs against a loopback NTP
responder, and the configuration keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ntp_responder import closed_udp_port, ntp_responder

from checks import auth as auth_check
from checks import clock
from checks import connect as connect_check
from smtpdiag import config as configuration
from smtpdiag.cli import main
from smtpdiag.clock.ntp import NtpResult
from smtpdiag.clock.sources import ClockSource, OffsetEstimate
from smtpdiag.context import CheckContext, OAuthSettings, Settings, Target, TlsMode
from smtpdiag.errors import ConfigError, UsageError
from smtpdiag.knowledge import Provider
from smtpdiag.models import CheckResult, Severity, Status
from smtpdiag.oauth.model import ACCESS_TOKEN_OUTPUT, AccessToken, Grant
from smtpdiag.sasl import Mechanism
from smtpdiag.secrets import Secret
from smtpdiag.smtp.probe import ProbeOutcome, Stage
from smtpdiag.smtp.reply import Reply

NOW = datetime(2026, 12, 4, 9, 0, 0, tzinfo=UTC)
DEFAULTS = clock.Thresholds()
TARGET = Target(host="127.0.0.1", port=587, tls_mode=TlsMode.STARTTLS)


def ntp(offset: float, delay: float = 0.002) -> NtpResult:
    return NtpResult("127.0.0.1:4123", NOW, offset_seconds=offset, delay_seconds=delay, stratum=2)


def failed_ntp(reason: str = "no reply within 1 s") -> NtpResult:
    return NtpResult("127.0.0.1:4123", NOW, error=reason)


def date_header(offset: float) -> OffsetEstimate:
    return OffsetEstimate(ClockSource.HTTP_DATE, offset, 1.2, "the Date header of the endpoint")


def codes(result: CheckResult) -> list[str]:
    return [finding.code for finding in result.findings]


def severity_of(result: CheckResult, code: str) -> Severity:
    return next(finding.severity for finding in result.findings if finding.code == code)


@pytest.mark.parametrize(
    ("offset", "status", "expected"),
    [
        (90.0, Status.CRITICAL, ["clock.skew"]),
        (-90.0, Status.CRITICAL, ["clock.skew"]),
        (3.0, Status.OK, []),
        (-3.0, Status.OK, []),
        (5.0, Status.WARNING, ["clock.skew"]),
        (-59.9, Status.WARNING, ["clock.skew"]),
        (60.0, Status.CRITICAL, ["clock.skew"]),
        (0.0, Status.OK, []),
    ],
)
def test_default_thresholds(offset: float, status: Status, expected: list[str]) -> None:
    result = clock.evaluate([ntp(offset)], [], DEFAULTS, NOW)
    assert result.status is status
    assert codes(result) == expected
    assert result.facts["clock_offset_seconds"] == offset
    assert result.facts["clock_source"] == "ntp"
    assert result.facts["ntp_server"] == "127.0.0.1:4123"
    assert result.facts["ntp_stratum"] == 2
    assert result.facts["clock_precision_seconds"] == 0.001


def test_skew_names_direction_and_source() -> None:
    ahead = clock.evaluate([ntp(90.0)], [], DEFAULTS, NOW).findings[0]
    behind = clock.evaluate([ntp(-90.0)], [], DEFAULTS, NOW).findings[0]
    assert ahead.title == "Local clock is 90 s ahead of NTP server 127.0.0.1:4123"
    assert behind.title == "Local clock is 90 s behind NTP server 127.0.0.1:4123"
    assert "critical threshold of 60 s" in ahead.cause
    assert "precision ±0.001 s" in ahead.cause


@pytest.mark.parametrize(
    ("thresholds", "offset", "status"),
    [
        (clock.Thresholds(1.0, 2.0), 1.5, Status.WARNING),
        (clock.Thresholds(1.0, 2.0), 3.0, Status.CRITICAL),
        (clock.Thresholds(30.0, 120.0), 90.0, Status.WARNING),
        (clock.Thresholds(30.0, 120.0), -20.0, Status.OK),
    ],
)
def test_configurable_thresholds(
    thresholds: clock.Thresholds, offset: float, status: Status
) -> None:
    assert clock.evaluate([ntp(offset)], [], thresholds, NOW).status is status


def test_offset_beyond_refresh_margin_behind_is_critical() -> None:
    result = clock.evaluate([ntp(-400.0)], [], DEFAULTS, NOW)
    assert codes(result) == ["clock.skew", "clock.skew_exceeds_refresh_margin"]
    assert severity_of(result, "clock.skew_exceeds_refresh_margin") is Severity.CRITICAL
    margin = result.findings[1]
    assert margin.title == "Clock offset of 400 s exceeds the token refresh margin of 300 s"
    assert "expired tokens" in margin.cause


def test_offset_beyond_small_refresh_margin_ahead_is_warning() -> None:
    thresholds = clock.Thresholds(5.0, 60.0, refresh_margin_seconds=30.0)
    result = clock.evaluate([ntp(45.0)], [], thresholds, NOW)
    assert result.status is Status.WARNING
    assert codes(result) == ["clock.skew", "clock.skew_exceeds_refresh_margin"]
    assert severity_of(result, "clock.skew_exceeds_refresh_margin") is Severity.WARNING


def test_ntp_unreachable_falls_back_to_date_header() -> None:
    result = clock.evaluate([failed_ntp()], [date_header(89.5)], DEFAULTS, NOW)
    assert result.status is Status.CRITICAL
    assert codes(result) == ["clock.skew", "clock.ntp_unreachable"]
    unreachable = result.findings[1]
    assert unreachable.severity is Severity.WARNING
    assert "fell back to the Date header of the endpoint" in unreachable.cause
    assert "127.0.0.1:4123: no reply within 1 s" in unreachable.cause
    assert result.facts["clock_source"] == "http_date"
    assert result.facts["ntp_error"] == "127.0.0.1:4123: no reply within 1 s"


def test_ntp_unreachable_and_nothing_else() -> None:
    result = clock.evaluate([failed_ntp()], [], DEFAULTS, NOW)
    assert codes(result) == ["clock.ntp_unreachable", "clock.no_time_source"]
    assert result.status is Status.WARNING
    assert "No other time source" in result.findings[0].cause
    assert "clock_offset_seconds" not in result.facts


def test_no_time_source_at_all() -> None:
    result = clock.evaluate([], [], DEFAULTS, NOW)
    assert codes(result) == ["clock.no_time_source"]
    assert result.findings[0].cause.startswith("No NTP server is configured")
    assert result.summary == "clock offset not measured: no time source"


def test_fallback_without_ntp_configured_says_so() -> None:
    result = clock.evaluate([], [date_header(0.5)], DEFAULTS, NOW)
    assert result.status is Status.OK
    assert codes(result) == ["clock.ntp_not_configured"]
    assert "the token endpoint's HTTP Date header" in result.findings[0].title


def test_second_ntp_server_answers() -> None:
    result = clock.evaluate([failed_ntp("port unreachable"), ntp(1.0)], [], DEFAULTS, NOW)
    assert codes(result) == []
    assert result.facts["ntp_error"] == "127.0.0.1:4123: port unreachable"
    assert result.facts["clock_source"] == "ntp"


def token(payload: dict[str, Any], grant: Grant | None = Grant.REFRESH_TOKEN) -> AccessToken:
    return AccessToken(
        value=Secret("header.payload.signature-canary", "test"),
        source="test",
        grant=grant,
        claims={"header": {"alg": "RS256"}, "payload": payload},
    )


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_token_issued_in_future(claim: str) -> None:
    ahead = epoch(NOW + timedelta(seconds=30))
    payload = {claim: ahead, "exp": ahead + 3600}
    result = clock.evaluate([ntp(-30.0)], [], DEFAULTS, NOW, token(payload))
    assert "clock.token_issued_in_future" in codes(result)
    finding = next(f for f in result.findings if f.code == "clock.token_issued_in_future")
    assert finding.title == f"Access token's {claim} is 30 s after the local time"
    assert "2026-12-04T09:00:30Z" in finding.cause


def test_token_issued_now_is_fine() -> None:
    payload = {"iat": epoch(NOW), "nbf": epoch(NOW) + 1, "exp": epoch(NOW) + 3600}
    result = clock.evaluate([ntp(0.0)], [], DEFAULTS, NOW, token(payload))
    assert codes(result) == []


def test_fresh_token_expired_locally() -> None:
    issued = epoch(NOW - timedelta(hours=2))
    payload = {"iat": issued, "exp": issued + 3600}
    result = clock.evaluate([ntp(7200.0)], [], DEFAULTS, NOW, token(payload))
    assert "clock.token_expired_locally" in codes(result)
    # A token from a file may simply be old, so only a grant's token counts.
    from_file = clock.evaluate([ntp(7200.0)], [], DEFAULTS, NOW, token(payload, grant=None))
    assert "clock.token_expired_locally" not in codes(from_file)


def test_token_expired_at_server() -> None:
    payload = {"iat": epoch(NOW) - 3540, "exp": epoch(NOW) + 60}
    result = clock.evaluate([ntp(-120.0)], [], DEFAULTS, NOW, token(payload))
    assert "clock.token_expired_at_server" in codes(result)
    finding = next(f for f in result.findings if f.code == "clock.token_expired_at_server")
    assert finding.severity is Severity.CRITICAL
    assert "remaining lifetime of 60 s" in finding.cause


def upstream_result(check_id: str, facts: dict[str, Any], **outputs: Any) -> CheckResult:
    return CheckResult.from_findings(check_id, "done", [], facts, outputs=outputs)


def test_banner_in_another_zone_is_no_skew() -> None:
    connect = upstream_result(
        "connect",
        {
            "server_timestamp": "Fri, 04 Dec 2026 16:00:00 +0700",
            "server_timestamp_received_at": "2026-12-04T09:00:00+00:00",
        },
    )
    estimates, facts = clock.fallback_estimates({"connect": connect})
    result = clock.evaluate([], estimates, DEFAULTS, NOW, source_facts=facts)
    assert result.facts["clock_offset_seconds"] == 0.0
    assert result.facts["clock_source"] == "smtp_reply"
    assert result.facts["server_timestamp"] == "Fri, 04 Dec 2026 16:00:00 +0700"
    assert result.status is Status.OK


def test_fallback_estimates_from_token_and_auth() -> None:
    token_result = upstream_result(
        "token",
        {
            "server_date": "2026-12-04T08:58:30Z",
            "server_date_offset_seconds": -90.0,
            "latency_seconds": 0.2,
            "token_endpoint": "http://127.0.0.1:8080/token",
        },
    )
    auth = upstream_result(
        "auth",
        {
            "server_timestamp": "2026-12-04T08:58:30.000Z",
            "server_timestamp_received_at": "2026-12-04T09:00:00+00:00",
        },
    )
    estimates, facts = clock.fallback_estimates({"token": token_result, "auth": auth})
    assert [estimate.source for estimate in estimates] == [
        ClockSource.HTTP_DATE,
        ClockSource.SMTP_REPLY,
    ]
    assert estimates[0].origin == "the Date header of http://127.0.0.1:8080/token"
    assert estimates[0].offset_seconds == pytest.approx(89.9)
    assert estimates[1].offset_seconds == pytest.approx(90.0)
    assert facts == {
        "server_date": "2026-12-04T08:58:30Z",
        "server_timestamp": "2026-12-04T08:58:30.000Z",
    }


def run_clock(
    port: int, upstream: dict[str, CheckResult] | None = None, offset: float = 0.0
) -> CheckResult:
    settings = Settings(timeout=1.0, ntp_servers=("127.0.0.1",), ntp_port=port)

    def now() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=offset)

    return clock.run(TARGET, CheckContext(settings=settings, upstream=upstream or {}, now=now))


@pytest.mark.parametrize(
    ("server_offset", "status"),
    [(-90.0, Status.CRITICAL), (90.0, Status.CRITICAL), (-3.0, Status.OK)],
)
def test_run_against_ntp_responder(server_offset: float, status: Status) -> None:
    with ntp_responder(offset_seconds=server_offset) as responder:
        result = run_clock(responder.port)
    assert result.status is status
    assert result.facts["clock_source"] == "ntp"
    assert result.facts["ntp_server"] == f"127.0.0.1:{responder.port}"
    assert abs(result.facts["clock_offset_seconds"] + server_offset) < 0.5


def test_run_ntp_unreachable_uses_token_date() -> None:
    token_result = upstream_result(
        "token",
        {"server_date_offset_seconds": -90.0, "latency_seconds": 0.1, "token_endpoint": "E"},
    )
    result = run_clock(closed_udp_port(), {"token": token_result})
    assert result.status is Status.CRITICAL
    assert codes(result) == ["clock.skew", "clock.ntp_unreachable"]
    assert result.facts["clock_source"] == "http_date"
    assert "fell back to the Date header of E" in result.findings[1].cause


def test_run_reads_token_claims_from_upstream() -> None:
    issued = epoch(datetime.now(UTC)) + 120
    access = token({"iat": issued, "nbf": issued, "exp": issued + 3600})
    token_result = upstream_result("token", {}, **{ACCESS_TOKEN_OUTPUT: access})
    with ntp_responder(offset_seconds=120.0) as responder:
        result = run_clock(responder.port, {"token": token_result})
    assert "clock.token_issued_in_future" in codes(result)
    assert "clock.skew" in codes(result)


def test_spec_follows_token_checks() -> None:
    assert clock.SPEC.id == "clock"
    assert clock.SPEC.follows == ("connect", "token", "auth")
    assert clock.SPEC.requires == ()
    assert {"clock.skew", "clock.no_time_source"} <= {kind.code for kind in clock.SPEC.findings}


def write_config(tmp_path: Path, body: str) -> str:
    path = tmp_path / "smtpdiag.toml"
    path.write_text('[defaults]\nhost = "127.0.0.1"\n' + body)
    return str(path)


def test_config_keys_from_toml(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        'ntp_servers = ["127.0.0.1", "ntp.example.test"]\nntp_port = 4123\n'
        "clock_warning_seconds = 2\nclock_critical_seconds = 30.5\n",
    )
    settings = configuration.load({}, config_path=path, environ={}).settings
    assert settings.ntp_servers == ("127.0.0.1", "ntp.example.test")
    assert settings.ntp_port == 4123
    assert settings.clock_warning_seconds == 2.0
    assert settings.clock_critical_seconds == 30.5


def test_config_defaults_have_no_ntp_server() -> None:
    settings = configuration.load({}, host_port="127.0.0.1", environ={}).settings
    assert settings.ntp_servers == ()
    assert settings.ntp_port == 123
    assert settings.clock_warning_seconds == 5.0
    assert settings.clock_critical_seconds == 60.0


@pytest.mark.parametrize(
    "body",
    ['ntp_servers = "127.0.0.1"\n', 'ntp_port = "123"\n', 'clock_warning_seconds = "5"\n'],
)
def test_config_wrong_toml_types(tmp_path: Path, body: str) -> None:
    with pytest.raises(ConfigError, match="has the wrong type"):
        configuration.load({}, config_path=write_config(tmp_path, body), environ={})


def test_config_from_environment_and_cli() -> None:
    environ = {"SMTPDIAG_NTP_SERVERS": "127.0.0.1, ::1", "SMTPDIAG_NTP_PORT": "4123"}
    cli = {"clock_critical_seconds": "120"}
    settings = configuration.load(cli, host_port="127.0.0.1", environ=environ).settings
    assert settings.ntp_servers == ("127.0.0.1", "::1")
    assert settings.ntp_port == 4123
    assert settings.clock_critical_seconds == 120.0


def test_warning_above_critical_is_rejected() -> None:
    cli = {"clock_warning_seconds": "90", "clock_critical_seconds": "60"}
    with pytest.raises(UsageError) as raised:
        configuration.load(cli, host_port="127.0.0.1", environ={})
    message = str(raised.value)
    assert "clock_warning_seconds (90)" in message
    assert "clock_critical_seconds (60)" in message


@pytest.mark.parametrize(
    ("cli", "fragment"),
    [
        ({"clock_warning_seconds": "0"}, "above 0"),
        ({"clock_critical_seconds": "abc"}, "number of seconds"),
        ({"ntp_servers": "ntp server"}, "Invalid ntp_servers"),
        ({"ntp_port": "70000"}, "Invalid ntp_port"),
    ],
)
def test_invalid_values(cli: dict[str, str], fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        configuration.load(cli, host_port="127.0.0.1", environ={})


def test_cli_exit_3_when_warning_above_critical(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "check",
            "127.0.0.1:1",
            "--only",
            "dns",
            "--clock-warning-seconds",
            "90",
            "--clock-critical-seconds",
            "60",
        ]
    )
    assert code == 3
    error = capsys.readouterr().err
    assert "clock_warning_seconds" in error
    assert "clock_critical_seconds" in error


def test_cli_repeated_ntp_server(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []

    def fake_load(values: dict[str, Any], **kwargs: Any) -> configuration.Loaded:
        loaded = real_load(values, **kwargs, environ={})
        seen.append(loaded.settings)
        raise UsageError("stop here", "nothing to do")

    real_load = configuration.load
    monkeypatch.setattr(configuration, "load", fake_load)
    code = main(
        [
            "check",
            "127.0.0.1",
            "--ntp-server",
            "127.0.0.1",
            "--ntp-server",
            "::1",
            "--ntp-port",
            "4123",
        ]
    )
    assert code == 3
    assert seen[0].ntp_servers == ("127.0.0.1", "::1")
    assert seen[0].ntp_port == 4123


def test_oauth_margin_reaches_thresholds() -> None:
    target = Target(
        host="127.0.0.1",
        port=587,
        tls_mode=TlsMode.STARTTLS,
        oauth=OAuthSettings(refresh_margin=10.0),
    )
    with ntp_responder(offset_seconds=-20.0) as responder:
        settings = Settings(timeout=1.0, ntp_servers=("127.0.0.1",), ntp_port=responder.port)
        result = clock.run(target, CheckContext(settings=settings))
    assert "clock.skew_exceeds_refresh_margin" in codes(result)


def test_connect_records_greeting_time() -> None:
    banner = "mx.example.com ESMTP Postfix; Fri, 04 Dec 2026 10:00:00 +0100"
    greeting = Reply(220, (banner,), f"220 {banner}\r\n".encode())
    outcome = ProbeOutcome(
        address="192.0.2.25",
        port=587,
        implicit_tls=False,
        stage=Stage.DONE,
        greeting=greeting,
        elapsed_seconds=0.25,
    )
    result = connect_check.evaluate([outcome], 10.0, NOW)
    assert result.facts["server_timestamp"] == "Fri, 04 Dec 2026 10:00:00 +0100"
    assert result.facts["server_timestamp_received_at"] == "2026-12-04T09:00:00.250000+00:00"
    without_start = connect_check.evaluate([outcome], 10.0)
    assert "server_timestamp" not in without_start.facts


def test_auth_records_reply_receipt_time() -> None:
    text = (
        "2.7.0 Authentication successful "
        "[XX0PR00CA0000.namprd00.prod.outlook.com 2026-12-04T08:58:30.000Z 08DBB3C7B1F2A3D4]"
    )
    exchange = auth_check.Exchange(Mechanism.XOAUTH2)
    exchange.replies.append(Reply(235, (text,), f"235 {text}\r\n".encode()))
    exchange.final_received_at = NOW
    target = Target(
        host="127.0.0.1",
        port=587,
        tls_mode=TlsMode.STARTTLS,
        user="user@example.com",
        access_token=Secret("opaque-access-token-canary", "test"),
    )
    result = auth_check.evaluate(exchange, Provider.MICROSOFT, target, [])
    assert result.facts["server_timestamp"] == "2026-12-04T08:58:30.000Z"
    assert result.facts["server_timestamp_received_at"] == "2026-12-04T09:00:00+00:00"
    estimates, _ = clock.fallback_estimates({"auth": result})
    assert estimates[0].offset_seconds == pytest.approx(90.0)
