"""Reasons of failures read from logs: replies, TLS texts, identity provider bodies."""

from __future__ import annotations

import pytest

from smtpdiag.logs.classify import (
    kind_for_reason,
    reply_reason,
    split_reply,
    tls_reason,
    token_body_reason,
)


@pytest.mark.parametrize(
    ("code", "enhanced", "text", "host", "expected"),
    [
        pytest.param(
            535,
            "5.7.8",
            "Username and Password not accepted.",
            "smtp.gmail.com",
            "auth.credentials_rejected",
            id="gmail-535",
        ),
        pytest.param(
            535,
            "5.7.3",
            "Authentication unsuccessful [XX0P281CA0094.DEUP281.PROD.OUTLOOK.COM]",
            "smtp.office365.com",
            "auth.exchange_refused",
            id="exchange-5.7.3",
        ),
        pytest.param(
            535,
            "5.7.139",
            "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
            "127.0.0.1",
            "auth.smtp_auth_disabled_tenant",
            id="5.7.139-tenant",
        ),
        # A translated text keeps its codes, so it classifies the same way.
        pytest.param(
            535,
            "5.7.8",
            "Benutzername und Passwort nicht akzeptiert.",
            None,
            "auth.credentials_rejected",
            id="translated-text",
        ),
        pytest.param(235, "2.7.0", "Accepted", None, "auth.accepted", id="accepted"),
        pytest.param(250, "2.0.0", "OK", None, None, id="positive-reply"),
    ],
)
def test_reply_reason(
    code: int, enhanced: str | None, text: str, host: str | None, expected: str | None
) -> None:
    assert reply_reason(code, enhanced, text, host) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "535 5.7.8 Error: authentication failed",
            (535, "5.7.8", "Error: authentication failed"),
            id="enhanced",
        ),
        pytest.param("535-5.7.1 Username", (535, "5.7.1", "Username"), id="continuation"),
        pytest.param(
            "535 Incorrect authentication data",
            (535, None, "Incorrect authentication data"),
            id="no-enhanced",
        ),
        pytest.param("Connection refused", None, id="no-code"),
    ],
)
def test_split_reply(text: str, expected: tuple[int, str | None, str] | None) -> None:
    assert split_reply(text) == expected


def test_tls_reason_reads_msmtp_gnutls_text() -> None:
    # Produced by Debian's msmtp 1.8.23 against the lab's cert-expired scenario.
    text = (
        "TLS certificate verification failed: The certificate is NOT trusted. "
        "The certificate chain uses expired certificate. "
    )
    assert tls_reason(text) == "tls.cert_expired"


def test_tls_reason_none_for_other_text() -> None:
    assert tls_reason("authentication failed (method XOAUTH2)") is None


def test_token_body_reason_inside_line() -> None:
    line = (
        'TokenStore::Refresh: code=400, response={"error":"invalid_grant",'
        '"error_description":"AADSTS700082: The refresh token has expired due to '
        'inactivity.","error_codes":[700082]}'
    )
    assert token_body_reason(line) == "token.refresh_token_expired"


@pytest.mark.parametrize("text", ["no body here", "response={not json}", 'response={"a": 1}'])
def test_token_body_reason_none(text: str) -> None:
    assert token_body_reason(text) is None


@pytest.mark.parametrize(
    "code",
    [
        "auth.credentials_rejected",
        "tls.cert_expired",
        "token.refresh_token_expired",
        "auth_failure_rate.pipe_command_failed",
        "secrets.token_in_log",
    ],
)
def test_every_reason_area_has_its_kind(code: str) -> None:
    kind = kind_for_reason(code)
    assert kind is not None and kind.code == code


def test_unknown_reason_has_no_kind() -> None:
    assert kind_for_reason("auth.no_such_reason") is None
