"""Lab scenarios: one broken (or healthy) submission setup each, and what diagnosing it must find.

A lab always runs two servers, one with STARTTLS and one with implicit TLS, both with the
scenario's server options. The scenario names which of them the written ``lab`` target points
at and which ``tls_mode`` the configuration claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from smtpdiag.context import TlsMode
from smtpdiag.errors import UsageError
from smtpdiag.lab.options import LeafOptions, ServerOptions


class LabListener(StrEnum):
    """One of the lab's two servers, as the server that a target points at."""

    STARTTLS = "starttls"
    """Plain connection upgraded with STARTTLS, like port 587."""
    IMPLICIT = "implicit"
    """TLS from the first byte, like port 465."""


@dataclass(frozen=True)
class Scenario:
    """One lab setup and the finding codes that a correct diagnosis of it contains."""

    name: str
    description: str
    """One line for ``--list-scenarios`` and the demo."""
    server: ServerOptions = field(default_factory=ServerOptions)
    """Behaviour of both lab servers."""
    certificate: LeafOptions = field(default_factory=LeafOptions)
    """Server certificate of both lab servers."""
    target_listener: LabListener = LabListener.STARTTLS
    target_tls_mode: TlsMode = TlsMode.STARTTLS
    """``tls_mode`` written into the configuration, which may disagree with the listener."""
    expected_codes: tuple[str, ...] = ()
    """Finding codes the diagnosis must report; empty means the overall status must be ok."""


_ALL = (
    Scenario(
        name="healthy",
        description="STARTTLS server that accepts the lab token over XOAUTH2 and OAUTHBEARER",
    ),
    Scenario(
        name="starttls-missing",
        description="server that does not offer STARTTLS and replies 502 to it",
        server=ServerOptions(offer_starttls=False),
        expected_codes=("connect.starttls_not_offered",),
    ),
    Scenario(
        name="greeting-421",
        description="server that greets with 421 4.3.2 and closes the connection",
        server=ServerOptions(greeting_reply="421 4.3.2 Service not available"),
        expected_codes=("connect.greeting_rejected",),
    ),
    Scenario(
        name="oauth-not-offered",
        description="server that offers only AUTH PLAIN LOGIN after TLS",
        server=ServerOptions(auth_mechanisms=("PLAIN", "LOGIN")),
        expected_codes=("connect.oauth_not_offered",),
    ),
    Scenario(
        name="implicit-tls-only",
        description="configuration uses STARTTLS on a port that expects implicit TLS",
        target_listener=LabListener.IMPLICIT,
        target_tls_mode=TlsMode.STARTTLS,
        expected_codes=("connect.port_expects_implicit_tls",),
    ),
)

SCENARIOS: Mapping[str, Scenario] = MappingProxyType({scenario.name: scenario for scenario in _ALL})
"""Every scenario by name, in the order the demo runs them."""


def get_scenario(name: str) -> Scenario:
    """Return the scenario called ``name``; raise ``UsageError`` listing the valid names."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UsageError(
            f"Unknown lab scenario {name!r}.",
            f"Use one of: {', '.join(SCENARIOS)}.",
            value=name,
        ) from None


def list_scenarios() -> list[tuple[str, str]]:
    """Return the name and description of every scenario, in demo order."""
    return [(scenario.name, scenario.description) for scenario in SCENARIOS.values()]
