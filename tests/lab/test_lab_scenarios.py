"""Lab scenario table and lookup."""

from __future__ import annotations

import pytest

from smtpdiag.context import TlsMode
from smtpdiag.errors import UsageError
from smtpdiag.lab.scenarios import SCENARIOS, LabListener, get_scenario, list_scenarios


def test_scenario_order() -> None:
    assert list(SCENARIOS) == [
        "healthy",
        "starttls-missing",
        "greeting-421",
        "oauth-not-offered",
        "implicit-tls-only",
    ]


def test_healthy_expects_no_codes() -> None:
    assert SCENARIOS["healthy"].expected_codes == ()


@pytest.mark.parametrize("name", [name for name in SCENARIOS if name != "healthy"])
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
