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
from smtpdiag.clock.kinds import SYNC_FIX
from smtpdiag.clock.ntp import NtpFailure, NtpResult
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


def failed_ntp(
    reason: str = "no reply within 1 s", failure: NtpFailure = NtpFailure.NO_REPLY
) -> NtpResult:
    return NtpResult("127.0.0.1:4123", NOW, error=reason, failure=failure)


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
        # The thresholds apply to the offset minus its precision of 0.001 s.
        (5.0, Status.OK, []),
        (5.001, Status.WARNING, ["clock.skew"]),
        (-59.9, Status.WARNING, ["clock.skew"]),
        (60.0, Status.WARNING, ["clock.skew"]),
        (60.001, Status.CRITICAL, ["clock.skew"]),
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
    assert "the offset is 89.999 s, at or above" in ahead.cause


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
    assert margin.title == (
        "Clock offset of 400 s (6.7 min) exceeds the token refresh margin of 300 s"
    )
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
            "server_timestamp_received_at": "2026-12-04T09:00:00.500000+00:00",
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
    # Both times are truncated, so they are centred in their second and millisecond.
    assert estimates[0].offset_seconds == pytest.approx(89.4)
    assert estimates[1].offset_seconds == pytest.approx(89.9995)
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
    assert estimates[0].offset_seconds == pytest.approx(89.9995)


def greeting_estimate(timestamp: str, received_at: str) -> list[OffsetEstimate]:
    connect = upstream_result(
        "connect",
        {"server_timestamp": timestamp, "server_timestamp_received_at": received_at},
    )
    estimates, _ = clock.fallback_estimates({"connect": connect})
    return estimates


# Jakarta wall time (+0700) written with the zone +0000, read 0.7 s into the second.
JAKARTA_AS_UTC = greeting_estimate(
    "Fri, 04 Dec 2026 16:00:00 +0000", "2026-12-04T09:00:00.700000+00:00"
)


def test_wrong_zone_greeting_is_not_skew() -> None:
    result = clock.evaluate([], JAKARTA_AS_UTC, DEFAULTS, NOW)
    assert codes(result) == ["clock.server_time_zone_suspect", "clock.no_time_source"]
    assert result.status is Status.WARNING
    suspect = result.findings[0]
    assert suspect.title == (
        "Server time in the greeting of the SMTP server is off by 7 h: "
        "a time zone error, not clock skew"
    )
    assert "by 25199.8 s (7 h), within 4 s of 7 h" in suspect.cause
    assert "cannot tell which clock is wrong" in suspect.cause
    assert "Pass --ntp-server HOST" in suspect.fix
    assert "off by a time zone offset" in result.findings[1].cause
    assert result.facts["clock_zone_suspects"] == ["the greeting of the SMTP server"]
    assert "clock_offset_seconds" not in result.facts


def test_wrong_zone_greeting_is_excluded_from_best() -> None:
    result = clock.evaluate([], [*JAKARTA_AS_UTC, date_header(0.3)], DEFAULTS, NOW)
    assert codes(result) == ["clock.server_time_zone_suspect", "clock.ntp_not_configured"]
    assert result.facts["clock_source"] == "http_date"
    assert result.facts["clock_offset_seconds"] == 0.3


@pytest.mark.parametrize("offset", [19800.4, -20701.1])
def test_quarter_hour_zones_are_suspect(offset: float) -> None:
    result = clock.evaluate([], [date_header(offset)], DEFAULTS, NOW)
    assert codes(result) == ["clock.server_time_zone_suspect", "clock.no_time_source"]


def test_wrong_zone_greeting_against_ntp() -> None:
    result = clock.evaluate([ntp(0.012)], JAKARTA_AS_UTC, DEFAULTS, NOW)
    assert codes(result) == ["clock.server_time_zone_suspect"]
    cause = result.findings[0].cause
    assert "NTP server 127.0.0.1:4123 measures the local clock at +0.012 s" in cause
    assert "the server's time zone is wrong, not this machine's clock" in cause
    assert result.facts["clock_source"] == "ntp"
    assert result.facts["clock_source_disagreements"] == [
        {
            "reference": "the greeting of the SMTP server",
            "difference_seconds": -25199.8,
            "ntp_reference": "NTP server 127.0.0.1:4123",
        }
    ]


def test_zone_sized_skew_confirmed_by_ntp_is_skew() -> None:
    result = clock.evaluate([ntp(-25199.9)], JAKARTA_AS_UTC, DEFAULTS, NOW)
    assert codes(result) == ["clock.skew", "clock.skew_exceeds_refresh_margin"]
    assert "clock_source_disagreements" not in result.facts
    assert result.findings[0].title == (
        "Local clock is 25199.9 s (7 h) behind NTP server 127.0.0.1:4123"
    )


def test_fallback_far_from_ntp_is_named() -> None:
    result = clock.evaluate([ntp(0.0)], [date_header(40.0)], DEFAULTS, NOW)
    assert codes(result) == []
    disagreement = result.facts["clock_source_disagreements"][0]
    assert disagreement["reference"] == "the Date header of the endpoint"
    assert disagreement["difference_seconds"] == 40.0
    close = clock.evaluate([ntp(0.0)], [date_header(1.5)], DEFAULTS, NOW)
    assert "clock_source_disagreements" not in close.facts


@pytest.mark.parametrize(
    ("failure", "reason", "title", "cause", "fix"),
    [
        (
            NtpFailure.NO_REPLY,
            "no reply within 1 s",
            "No usable NTP reply (127.0.0.1:4123): no reply",
            "block outgoing UDP port 4123",
            "Open UDP port 4123",
        ),
        (
            NtpFailure.KISS_OF_DEATH,
            "kiss-o'-death reply (stratum 0) with code RATE",
            "No usable NTP reply (127.0.0.1:4123): kiss-o'-death reply",
            "code RATE means this host queries too often",
            "Back off",
        ),
        (
            NtpFailure.UNSYNCHRONISED,
            "leap indicator 3: the server's clock is not synchronised",
            "No usable NTP reply (127.0.0.1:4123): server not synchronised",
            "leap indicator 3 or stratum 16",
            "Choose another NTP server",
        ),
        (
            NtpFailure.INVALID_REPLY,
            "invalid reply: mode 0 is not a server reply",
            "No usable NTP reply (127.0.0.1:4123): invalid reply",
            "probably not an NTP server",
            "ntp_port (4123)",
        ),
    ],
)
def test_ntp_failure_advice_follows_reason(
    failure: NtpFailure, reason: str, title: str, cause: str, fix: str
) -> None:
    result = clock.evaluate(
        [failed_ntp(reason, failure)], [date_header(0.2)], DEFAULTS, NOW, ntp_port=4123
    )
    finding = result.findings[0]
    assert finding.code == "clock.ntp_unreachable"
    assert finding.title == title
    assert f"127.0.0.1:4123: {reason}" in finding.cause
    assert cause in finding.cause
    assert fix in finding.fix
    assert "UDP port 123 " not in finding.cause + finding.fix
    if failure is not NtpFailure.NO_REPLY:
        assert "Firewall" not in finding.cause
        assert "Open UDP port" not in finding.fix


def test_mixed_ntp_failures_give_each_fix() -> None:
    results = [
        failed_ntp("no reply within 1 s"),
        failed_ntp("stratum 16: the server's clock is not synchronised", NtpFailure.UNSYNCHRONISED),
    ]
    finding = clock.evaluate(results, [], DEFAULTS, NOW).findings[0]
    assert finding.title.endswith(": several reasons")
    assert "Open UDP port 123 " in finding.fix
    assert "Choose another NTP server" in finding.fix


def test_no_time_source_with_ntp_configured() -> None:
    result = clock.evaluate([failed_ntp()], [], DEFAULTS, NOW)
    finding = result.findings[1]
    assert finding.code == "clock.no_time_source"
    assert "Pass --ntp-server" not in finding.fix
    assert "clock.ntp_unreachable" in finding.fix
    unconfigured = clock.evaluate([], [], DEFAULTS, NOW).findings[0]
    assert "Pass --ntp-server HOST" in unconfigured.fix


def test_offsets_shown_to_source_precision() -> None:
    date = clock.evaluate([], [date_header(89.4567)], DEFAULTS, NOW)
    skew = next(f for f in date.findings if f.code == "clock.skew")
    assert skew.title == "Local clock is 89.5 s ahead of the Date header of the endpoint"
    assert date.facts["clock_offset_seconds"] == 89.5
    large = clock.evaluate([ntp(-25000.1234)], [], DEFAULTS, NOW).findings[0]
    assert large.title == "Local clock is 25000.123 s (6.9 h) behind NTP server 127.0.0.1:4123"
    days = clock.evaluate([ntp(200000.0)], [], DEFAULTS, NOW).findings[0]
    assert days.title.startswith("Local clock is 200000 s (2.3 d) ahead")


def test_tiny_offsets_have_no_negative_zero() -> None:
    result = clock.evaluate([ntp(-0.0001, delay=0.0)], [], DEFAULTS, NOW)
    assert str(result.facts["clock_offset_seconds"]) == "0.0"
    assert result.facts["clock_precision_seconds"] == 0.001
    assert result.summary == "local clock +0 s against NTP server 127.0.0.1:4123 (±0.001 s)"
    assert "e-" not in result.summary


def test_token_gap_in_whole_seconds() -> None:
    now = NOW + timedelta(seconds=0.571)
    payload = {"iat": epoch(NOW) + 90, "exp": epoch(NOW) + 3690}
    result = clock.evaluate([ntp(-90.0)], [], DEFAULTS, now, token(payload))
    finding = next(f for f in result.findings if f.code == "clock.token_issued_in_future")
    assert finding.title == "Access token's iat is 89 s after the local time"


def test_thresholds_apply_to_offset_minus_precision() -> None:
    tight = clock.Thresholds(0.1, 0.5)
    coarse = clock.evaluate([], [date_header(1.0)], tight, NOW)
    assert "clock.skew" not in codes(coarse)
    assert coarse.facts["clock_offset_lower_bound_seconds"] == 0.0
    precise = clock.evaluate([ntp(0.6)], [], tight, NOW)
    assert severity_of(precise, "clock.skew") is Severity.CRITICAL
    assert precise.facts["clock_offset_lower_bound_seconds"] == 0.599


def test_ntp_advice_given_once() -> None:
    payload = {"iat": epoch(NOW) + 400, "exp": epoch(NOW) + 4000}
    result = clock.evaluate([ntp(-400.0)], [], DEFAULTS, NOW, token(payload))
    fixes = {finding.code: finding.fix for finding in result.findings}
    assert SYNC_FIX in fixes["clock.skew"]
    for code in ("clock.skew_exceeds_refresh_margin", "clock.token_issued_in_future"):
        assert "as clock.skew describes" in fixes[code]
        assert "timedatectl" not in fixes[code]


def test_ntp_advice_in_full_without_skew_finding() -> None:
    thresholds = clock.Thresholds(100.0, 1000.0, refresh_margin_seconds=30.0)
    result = clock.evaluate([ntp(-45.0)], [], thresholds, NOW)
    assert codes(result) == ["clock.skew_exceeds_refresh_margin"]
    assert SYNC_FIX in result.findings[0].fix


@pytest.mark.parametrize("server", ["127.0.0.1:40123", "[::1]:40123", "[::1]"])
def test_ntp_server_with_port_names_ntp_port(server: str) -> None:
    with pytest.raises(UsageError) as raised:
        configuration.load({"ntp_servers": server}, host_port="127.0.0.1", environ={})
    message = str(raised.value)
    assert "--ntp-port" in message
    assert "[IPV6]:PORT" not in message
