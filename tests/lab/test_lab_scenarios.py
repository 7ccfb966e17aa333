"""Lab scenario table and lookup."""

from __future__ import annotations

import pytest

from smtpdiag.context import TlsMode
from smtpdiag.errors import UsageError
from smtpdiag.lab.chain import ChainFault
from smtpdiag.lab.options import ServerOptions, TokenEndpointOptions
from smtpdiag.lab.scenarios import (
    LONG_TOKEN_LENGTH,
    SCENARIOS,
    AccessTokenState,
    LabListener,
    Scenario,
    get_scenario,
    list_scenarios,
)


def test_scenario_order() -> None:
    assert list(SCENARIOS) == [
        "healthy",
        "starttls-missing",
        "greeting-421",
        "oauth-not-offered",
        "implicit-tls-only",
        "google-bad-token",
        "google-wrong-scope",
        "microsoft-5.7.3",
        "microsoft-auth-disabled",
        "rfc7628-invalid-token",
        "token-expires-soon",
        "line-too-long",
        "temporary-454",
        "microsoft-send-as-denied",
        "cert-expired",
        "cert-not-yet-valid",
        "cert-expiring-soon",
        "wrong-hostname",
        "missing-intermediate",
        "self-signed",
        "sni-required",
        "starttls-454",
        "black-hole",
        "slow-drip",
        "close-after-greeting",
        "close-after-ehlo",
        "close-after-starttls",
        "close-mid-handshake",
        "close-mid-reply",
        "reset-during-auth",
        "endless-continuation",
        "huge-line",
        "binary-garbage",
        "bare-lf",
        "endless-challenge",
        "token-hang",
        "token-500",
        "token-html-200",
        "token-10mb",
        "ntp-silent",
        "ntp-garbage",
        "relay",
        "relay-token-rejected",
        "dovecot",
        "dovecot-token-revoked",
        "dovecot-token-expired",
        "dovecot-user-mismatch",
        "dovecot-introspection-down",
        "chain",
        "chain-refresh-revoked",
        "chain-token-command-fails",
        "chain-dovecot-down",
        "token-healthy",
        "aadsts700082",
        "google-invalid-grant",
        "invalid-client",
        "invalid-scope",
        "graph-audience",
        "user-mismatch",
        "html-error-page",
        "slow-endpoint",
        "rotating-refresh-token",
        "clock-skew-90s",
        "clock-skew-minus-90s",
        "clock-skew-3s",
        "ntp-unreachable",
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("google-bad-token", ("auth.token_rejected",), id="google-bad-token"),
        pytest.param("google-wrong-scope", ("auth.insufficient_scope",), id="google-wrong-scope"),
        pytest.param("microsoft-5.7.3", ("auth.exchange_refused",), id="microsoft-5.7.3"),
        pytest.param(
            "microsoft-auth-disabled",
            ("auth.smtp_auth_disabled_tenant",),
            id="microsoft-auth-disabled",
        ),
        pytest.param("rfc7628-invalid-token", ("auth.token_rejected",), id="rfc7628"),
        pytest.param("token-expires-soon", ("auth.token_expires_soon",), id="token-expires-soon"),
        pytest.param("line-too-long", ("auth.line_too_long",), id="line-too-long"),
        pytest.param("temporary-454", ("auth.temporary_failure",), id="temporary-454"),
    ],
)
def test_auth_scenario_expected_codes(name: str, expected: tuple[str, ...]) -> None:
    assert SCENARIOS[name].expected_codes == expected


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_targets_starttls_lab_or_implicit(name: str) -> None:
    scenario = SCENARIOS[name]
    expected = LabListener.IMPLICIT if name == "implicit-tls-only" else LabListener.STARTTLS
    assert scenario.target_listener == expected


def test_only_line_too_long_has_long_token() -> None:
    lengths = {name: s.token_length for name, s in SCENARIOS.items() if s.token_length}
    assert lengths == {"line-too-long": LONG_TOKEN_LENGTH}


def test_token_length_minimum() -> None:
    with pytest.raises(ValueError, match="minimum of 32"):
        Scenario(name="x", description="x", token_length=8)


HEALTHY_SCENARIOS = ("healthy", "relay", "dovecot", "chain", "token-healthy", "clock-skew-3s")


@pytest.mark.parametrize("name", HEALTHY_SCENARIOS)
def test_healthy_expects_no_codes(name: str) -> None:
    assert SCENARIOS[name].expected_codes == ()


@pytest.mark.parametrize("name", [name for name in SCENARIOS if name not in HEALTHY_SCENARIOS])
def test_broken_scenario_expects_codes(name: str) -> None:
    assert SCENARIOS[name].expected_codes != ()


def test_implicit_tls_only_targets_implicit_port() -> None:
    scenario = SCENARIOS["implicit-tls-only"]
    assert (scenario.target_listener, scenario.target_tls_mode) == (
        LabListener.IMPLICIT,
        TlsMode.STARTTLS,
    )


def test_get_scenario_returns_entry() -> None:
    assert get_scenario("greeting-421") is SCENARIOS["greeting-421"]


def test_get_scenario_unknown_names_value() -> None:
    with pytest.raises(UsageError, match="'nope'"):
        get_scenario("nope")


def test_get_scenario_unknown_lists_names() -> None:
    with pytest.raises(UsageError) as caught:
        get_scenario("nope")
    assert caught.value.fix == f"Use one of: {', '.join(SCENARIOS)}."


def test_list_scenarios_pairs() -> None:
    assert list_scenarios()[0] == ("healthy", SCENARIOS["healthy"].description)


def test_list_scenarios_covers_all() -> None:
    assert [name for name, _ in list_scenarios()] == list(SCENARIOS)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_target_host(name: str) -> None:
    expected = "localhost" if name == "sni-required" else "127.0.0.1"
    assert SCENARIOS[name].target_host == expected


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param("220 2.0.0 Ready to start TLS", id="success-code"),
        pytest.param("454 4.7.0 first\r\n454 4.7.0 second", id="two-lines"),
        pytest.param("TLS not available", id="no-code"),
    ],
)
def test_starttls_reply_must_be_failure_line(reply: str) -> None:
    with pytest.raises(ValueError, match="starttls_reply"):
        ServerOptions(starttls_reply=reply)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"relay": True}, "cannot also run the relay", id="dovecot-and-relay"),
        pytest.param(
            {"target_tls_mode": TlsMode.IMPLICIT}, "STARTTLS port", id="dovecot-implicit-tls"
        ),
        pytest.param(
            {"access_token": AccessTokenState.EXPIRED, "token_endpoint": TokenEndpointOptions()},
            "drop token_endpoint",
            id="expired-with-endpoint",
        ),
        pytest.param(
            {
                "access_token": AccessTokenState.OTHER_USER,
                "token_endpoint": TokenEndpointOptions(),
            },
            "drop token_endpoint",
            id="other-user-with-endpoint",
        ),
    ],
)
def test_dovecot_scenario_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scenario(name="x", description="x", dovecot=True, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "state"),
    [
        pytest.param("dovecot", AccessTokenState.VALID, id="dovecot"),
        pytest.param("dovecot-token-revoked", AccessTokenState.REVOKED, id="revoked"),
        pytest.param("dovecot-token-expired", AccessTokenState.EXPIRED, id="expired"),
        pytest.param("dovecot-user-mismatch", AccessTokenState.OTHER_USER, id="other-user"),
    ],
)
def test_dovecot_access_token_state(name: str, state: AccessTokenState) -> None:
    assert SCENARIOS[name].access_token is state


def test_only_introspection_down_replaces_introspection() -> None:
    names = [name for name, s in SCENARIOS.items() if s.introspection_reply is not None]
    assert names == ["dovecot-introspection-down"]


def test_introspection_down_reply_is_500() -> None:
    reply = SCENARIOS["dovecot-introspection-down"].introspection_reply
    assert reply is not None
    assert reply.status == 500


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"relay": True}, "drop both flags", id="chain-and-relay"),
        pytest.param({"dovecot": True}, "drop both flags", id="chain-and-dovecot"),
        pytest.param(
            {"token_endpoint": TokenEndpointOptions()}, "drop token_endpoint", id="endpoint"
        ),
    ],
)
def test_chain_scenario_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scenario(name="x", description="x", chain=ChainFault.NONE, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        pytest.param("chain", ChainFault.NONE, id="healthy"),
        pytest.param("chain-refresh-revoked", ChainFault.REFRESH_REVOKED, id="revoked"),
        pytest.param("chain-token-command-fails", ChainFault.TOKEN_COMMAND_FAILS, id="command"),
        pytest.param("chain-dovecot-down", ChainFault.SERVER_DOWN, id="dovecot-down"),
    ],
)
def test_chain_scenario_fault(name: str, fault: ChainFault) -> None:
    assert SCENARIOS[name].chain is fault


@pytest.mark.parametrize(
    ("name", "programs"),
    [
        pytest.param("healthy", (False, False, False), id="healthy"),
        pytest.param("relay", (False, True, False), id="relay"),
        pytest.param("dovecot", (False, False, True), id="dovecot"),
        pytest.param("chain-refresh-revoked", (True, True, True), id="chain"),
    ],
)
def test_scenario_needs_programs(name: str, programs: tuple[bool, bool, bool]) -> None:
    scenario = SCENARIOS[name]
    needs = (scenario.needs_postfix, scenario.needs_msmtp, scenario.needs_dovecot)
    assert needs == programs
