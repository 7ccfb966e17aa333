"""Parsers never raise: random bytes, empty input, control characters and 1 MB inputs."""

from __future__ import annotations

import base64
import random

import pytest

from smtpdiag.sasl import (
    Challenge,
    ClientResponse,
    Mechanism,
    parse_challenge,
    parse_client_response,
)

SEEDS = range(40)
MEGABYTE = 1024 * 1024


def random_bytes(seed: int) -> bytes:
    generator = random.Random(seed)
    return bytes(generator.randrange(256) for _ in range(generator.randrange(1, 200)))


def random_text(seed: int) -> str:
    # Mostly base64 and SASL characters, so that the parsers get past their first checks.
    generator = random.Random(seed)
    alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n\x01\0,.{}"'
    return "".join(generator.choice(alphabet) for _ in range(generator.randrange(0, 300)))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mechanism", [None, *Mechanism], ids=str)
def test_response_random_bytes(seed: int, mechanism: Mechanism | None) -> None:
    assert isinstance(parse_client_response(random_bytes(seed), mechanism), ClientResponse)


@pytest.mark.parametrize("seed", SEEDS)
def test_response_random_text(seed: int) -> None:
    assert isinstance(parse_client_response(random_text(seed)), ClientResponse)


@pytest.mark.parametrize("seed", SEEDS)
def test_response_base64_of_random_bytes(seed: int) -> None:
    text = base64.b64encode(random_bytes(seed)).decode()
    assert isinstance(parse_client_response(text, Mechanism.XOAUTH2), ClientResponse)


@pytest.mark.parametrize("seed", SEEDS)
def test_challenge_random_text(seed: int) -> None:
    assert isinstance(parse_challenge(random_text(seed)), Challenge)


@pytest.mark.parametrize("seed", SEEDS)
def test_challenge_base64_of_random_bytes(seed: int) -> None:
    assert isinstance(parse_challenge(base64.b64encode(random_bytes(seed)).decode()), Challenge)


LARGE_RESPONSES = [
    pytest.param("A" * MEGABYTE, id="base64-zeros"),
    pytest.param("!" * MEGABYTE, id="not-base64"),
    pytest.param(
        base64.b64encode(b"user=a\x01auth=Bearer " + b"t" * MEGABYTE).decode(), id="token"
    ),
    pytest.param(b"\x01" * MEGABYTE, id="separators"),
    pytest.param(b"\0" * MEGABYTE, id="nul-bytes"),
]


@pytest.mark.parametrize("text", LARGE_RESPONSES)
def test_response_megabyte(text: str | bytes) -> None:
    assert isinstance(parse_client_response(text), ClientResponse)


LARGE_CHALLENGES = [
    pytest.param("A" * MEGABYTE, id="base64-zeros"),
    pytest.param(base64.b64encode(b"[" * MEGABYTE).decode(), id="deep-json"),
    pytest.param(base64.b64encode(b'{"status":"' + b"9" * MEGABYTE + b'"}').decode(), id="long"),
    pytest.param(base64.b64encode(b'{"status":' + b"9" * 5000 + b"}").decode(), id="huge-int"),
]


@pytest.mark.parametrize("text", LARGE_CHALLENGES)
def test_challenge_megabyte(text: str) -> None:
    assert isinstance(parse_challenge(text), Challenge)


@pytest.mark.parametrize("text", ["\x00", "\x01", "\udcff", "é" * 10, "=" * 7, "A==="])
def test_odd_small_inputs(text: str) -> None:
    assert isinstance(parse_client_response(text), ClientResponse)
    assert isinstance(parse_challenge(text), Challenge)
