"""Properties of the knowledge base: any reply code, enhanced code, text, host or challenge
payload classifies without raising, and every 4xx or 5xx reply gets a finding kind."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from smtpdiag.knowledge import (
    Provider,
    classify_challenge,
    classify_challenge_response,
    classify_reply,
    details_for_challenge,
    details_for_reply,
    detect_provider,
    server_id,
    server_timestamp,
)

# Enhanced codes as servers send them, mixed with arbitrary text in the same place.
ENHANCED_CODE = (
    st.none()
    | st.builds("{}.{}.{}".format, st.integers(0, 9), st.integers(0, 999), st.integers(0, 999))
    | st.text(max_size=20)
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
CHALLENGE_PAYLOAD = st.none() | st.dictionaries(
    st.sampled_from(["status", "scope", "schemes", "openid-configuration"]) | st.text(max_size=10),
    JSON_VALUE,
    max_size=5,
)


@given(st.integers(-1000, 100_000), ENHANCED_CODE, st.text(), st.sampled_from(Provider))
def test_reply_classifies_without_raising(
    code: int, enhanced_code: str | None, text: str, provider: Provider
) -> None:
    kind = classify_reply(code, enhanced_code, text, provider)
    details = details_for_reply(code, enhanced_code, text)
    if code >= 400:
        assert kind is not None
    if kind is not None:
        assert kind.make(details=details).title


@given(st.none() | st.text(), st.none() | st.text())
def test_provider_detection_without_raising(host: str | None, text: str | None) -> None:
    assert detect_provider(host, text) in set(Provider)


@given(CHALLENGE_PAYLOAD, st.booleans())
def test_challenge_classifies_without_raising(payload: dict[str, Any] | None, empty: bool) -> None:
    kind = classify_challenge(payload, empty=empty)
    details = details_for_challenge(payload)
    if empty or payload is not None:
        assert kind is not None
    if kind is not None:
        assert kind.make(details=details).title


@given(st.text(), st.text())
def test_challenge_response_classifies_without_raising(mechanism: str, response: str) -> None:
    classify_challenge_response(mechanism, response)


@given(st.text())
def test_server_id_reads_any_text(text: str) -> None:
    identifier = server_id(text)
    timestamp = server_timestamp(text)
    if identifier is not None:
        assert identifier in text
    if timestamp is not None:
        assert timestamp in text
