"""Placeholders of ``token.endpoint_unreachable`` for each way a token request fails."""

from __future__ import annotations

import pytest

from smtpdiag.oauth.endpoint_failure import endpoint_failure_details
from smtpdiag.oauth.http import EndpointError, EndpointFailure
from smtpdiag.oauth.token_kinds import ENDPOINT_UNREACHABLE

LITERAL_ENDPOINT = "https://127.0.0.1:8443/token"
NAMED_ENDPOINT = "https://login.example.com/oauth2/v2.0/token"

SENT_FAILURES = (EndpointFailure.STALLED, EndpointFailure.CLOSED)
NOT_SENT_FAILURES = (
    EndpointFailure.NAME_NOT_RESOLVED,
    EndpointFailure.REFUSED,
    EndpointFailure.CONNECT_TIMEOUT,
    EndpointFailure.NETWORK,
)


def texts(failure: EndpointFailure, endpoint: str, http_status: int | None = None) -> str:
    """Return the cause and fix of the finding for ``failure`` at ``endpoint``."""
    error = EndpointError("the test reason", failure, http_status=http_status)
    finding = ENDPOINT_UNREACHABLE.make(details=endpoint_failure_details(error, endpoint))
    return f"{finding.cause}\n{finding.fix}"


@pytest.mark.parametrize("failure", list(EndpointFailure))
def test_literal_endpoint_no_name_advice(failure: EndpointFailure) -> None:
    assert "name resolution" not in texts(failure, LITERAL_ENDPOINT)


@pytest.mark.parametrize("failure", list(EndpointFailure))
def test_every_placeholder_filled(failure: EndpointFailure) -> None:
    assert "{" not in texts(failure, NAMED_ENDPOINT)


def test_unresolved_name_gets_name_advice() -> None:
    text = texts(EndpointFailure.NAME_NOT_RESOLVED, NAMED_ENDPOINT)
    assert "name resolution of login.example.com" in text


@pytest.mark.parametrize("failure", SENT_FAILURES)
def test_sent_request_has_no_network_advice(failure: EndpointFailure) -> None:
    text = texts(failure, NAMED_ENDPOINT)
    assert "name resolution" not in text
    assert "firewall rules" not in text
    assert "before the request was sent" not in text


@pytest.mark.parametrize("failure", NOT_SENT_FAILURES)
def test_unsent_request_has_no_stall_advice(failure: EndpointFailure) -> None:
    text = texts(failure, NAMED_ENDPOINT)
    assert "and the request was sent" not in text
    assert "service status" not in text


def test_stall_names_started_reply() -> None:
    text = texts(EndpointFailure.STALLED, NAMED_ENDPOINT, http_status=200)
    assert "started an HTTP 200 reply, but did not finish the reply in time" in text


def test_https_names_handshake() -> None:
    text = texts(EndpointFailure.STALLED, NAMED_ENDPOINT)
    assert "The connection and TLS handshake completed" in text


def test_http_names_no_handshake() -> None:
    text = texts(EndpointFailure.STALLED, "http://127.0.0.1:8080/token")
    assert "The connection completed" in text


def test_ipv6_host_in_brackets() -> None:
    details = endpoint_failure_details(
        EndpointError("refused", EndpointFailure.REFUSED), "https://[::1]:8443/token"
    )
    assert (details["host"], details["port"]) == ("[::1]", "8443")
