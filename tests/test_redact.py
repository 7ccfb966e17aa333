"""Redaction: secrets and their encoded forms are masked everywhere."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from urllib.parse import quote

import pytest

from smtpdiag.redact import MASK, RedactingFilter, mask_command, mask_pairs, redact
from smtpdiag.secrets import Secret

TOKEN = "ya29.a0AfB_canary-token+with/odd=chars"


@pytest.fixture(autouse=True)
def canary() -> Secret:
    return Secret(TOKEN, "test")


def xoauth2(user: str) -> str:
    return base64.b64encode(f"user={user}\x01auth=Bearer {TOKEN}\x01\x01".encode()).decode()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(TOKEN, id="raw"),
        pytest.param(quote(TOKEN, safe=""), id="url-encoded"),
        pytest.param(base64.b64encode(TOKEN.encode()).decode(), id="base64"),
        pytest.param(xoauth2("a@example.com"), id="xoauth2-alignment-1"),
        pytest.param(xoauth2("ab@example.com"), id="xoauth2-alignment-2"),
        pytest.param(xoauth2("abc@example.com"), id="xoauth2-alignment-3"),
    ],
)
def test_secret_form_masked(text: str) -> None:
    assert MASK in redact(f"C: AUTH XOAUTH2 {text}")


@pytest.mark.parametrize("user", ["a@example.com", "ab@example.com", "abc@example.com"])
def test_no_long_token_fragment_survives(user: str) -> None:
    redacted = redact(xoauth2(user))
    token_b64_middle = base64.b64encode(TOKEN.encode()).decode()[8:20]
    assert token_b64_middle not in redacted


def test_repr_masks_value() -> None:
    assert TOKEN not in repr(Secret(TOKEN, "file /run/token"))


def test_str_masks_value() -> None:
    assert str(Secret(TOKEN, "file /run/token")) == "[secret]"


def test_log_filter_masks_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("smtpdiag.test")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="smtpdiag.test"):
            logger.info("sending %s", TOKEN)
    finally:
        logger.filters.clear()
    assert TOKEN not in caplog.text


def test_short_values_not_registered() -> None:
    Secret("abc", "test")
    assert redact("abc") == "abc"


def test_token_file_directory_named(tmp_path: Path) -> None:
    from smtpdiag.errors import SecretError
    from smtpdiag.secrets import secret_from_file

    with pytest.raises(SecretError, match="is a directory"):
        secret_from_file(tmp_path)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Authorization: Basic YWJjOmNsaWVudHNlY3JldHZhbHVl", "Authorization: Basic [REDACTED]"),
        ("basic authentication is disabled", "basic authentication is disabled"),
    ],
    ids=["credentials", "prose"],
)
def test_mask_command_basic_credentials(text: str, kept: str) -> None:
    assert mask_command(text) == kept


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            '"error_description": "refresh_token=R1x&client_secret=S3cretValue", "a"', id="json"
        ),
        pytest.param("(client_secret=S3cretValue)", id="brackets"),
        pytest.param("client_secret=S3cretValue, then more", id="comma"),
    ],
)
def test_pair_value_ends_at_quote_comma_bracket(text: str) -> None:
    masked = mask_command(text)
    assert "S3cretValue" not in masked
    assert redact("S3cretValue") == MASK
    assert redact("S3cretValue,") == MASK + ","


def test_mask_pairs_keeps_other_text() -> None:
    text = "AADSTS50173: grant revoked for refresh_token=R0tokenValue&client_id=abc"
    assert mask_pairs(text) == f"AADSTS50173: grant revoked for refresh_token={MASK}&client_id=abc"
