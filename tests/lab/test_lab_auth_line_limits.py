"""Lab server line limits in the AUTH exchange: the command line and the lines after ``334``."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from lab_line_client import LineClient, starttls_client, xoauth2_response

from smtpdiag.lab.certs import CertificateFiles
from smtpdiag.lab.lab_account import LabAccount
from smtpdiag.lab.options import AUTH_BUFFER_OCTETS, ServerOptions
from smtpdiag.lab.smtp_server import LabServer
from smtpdiag.redact import secret_forms
from smtpdiag.secrets import Secret

pytestmark = pytest.mark.lab

LAB_USER = "tester@example.com"
SHORT_TOKEN = "ya29.test-token-0123456789"
# A token whose XOAUTH2 response is over 4096 octets in base64.
LONG_TOKEN = "EwB" + "x" * 3100


@contextmanager
def client_on(
    certificates: CertificateFiles,
    context: ssl.SSLContext,
    options: ServerOptions,
    token: str,
) -> Iterator[LineClient]:
    """Start a STARTTLS lab server that accepts ``token``; yield a client after EHLO."""
    account = LabAccount(LAB_USER, Secret(token, "test"))
    with (
        LabServer(options, account, certificates, implicit_tls=False) as server,
        starttls_client(server.host, server.port, context) as client,
    ):
        yield client


def auth_line(token: str) -> str:
    return f"AUTH XOAUTH2 {xoauth2_response(LAB_USER, token)}"


def octets_with_crlf(line: str) -> int:
    return len(line.encode()) + 2


@pytest.mark.parametrize(
    ("limit_offset", "expected_code"),
    [
        pytest.param(0, 235, id="line-at-limit"),
        pytest.param(-1, 500, id="line-one-over-limit"),
    ],
)
def test_max_auth_line_length_boundary(
    certificates: CertificateFiles,
    client_context: ssl.SSLContext,
    limit_offset: int,
    expected_code: int,
) -> None:
    line = auth_line(SHORT_TOKEN)
    options = ServerOptions(max_auth_line_length=octets_with_crlf(line) + limit_offset)
    with client_on(certificates, client_context, options, SHORT_TOKEN) as client:
        assert client.command(line).code == expected_code


def test_default_limit_is_512_octets(
    certificates: CertificateFiles, client_context: ssl.SSLContext
) -> None:
    token = "ya29." + "x" * 400
    line = auth_line(token)
    assert octets_with_crlf(line) > 512
    with client_on(certificates, client_context, ServerOptions(), token) as client:
        assert client.command(line).code == 500


def test_continuation_line_over_4096_octets_accepted(
    certificates: CertificateFiles, client_context: ssl.SSLContext
) -> None:
    response = xoauth2_response(LAB_USER, LONG_TOKEN)
    assert len(response) > 4096
    with client_on(certificates, client_context, ServerOptions(), LONG_TOKEN) as client:
        client.command("AUTH XOAUTH2")
        assert client.command(response).code == 235


def test_raised_limit_accepts_long_initial_response(
    certificates: CertificateFiles, client_context: ssl.SSLContext
) -> None:
    options = ServerOptions(max_auth_line_length=AUTH_BUFFER_OCTETS)
    with client_on(certificates, client_context, options, LONG_TOKEN) as client:
        assert client.command(auth_line(LONG_TOKEN)).code == 235


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        pytest.param("NOOP " + "x" * 600, "500 Command line too long", id="long-noop"),
        pytest.param("NOOP " + "x" * 2000, "500 Command line too long", id="noop-over-1001"),
        pytest.param("NOOP", "250 OK", id="short-noop"),
    ],
)
def test_other_command_limits_unchanged(
    certificates: CertificateFiles, client_context: ssl.SSLContext, command: str, expected: str
) -> None:
    with client_on(certificates, client_context, ServerOptions(), SHORT_TOKEN) as client:
        reply = client.command(command)
        assert f"{reply.code} {reply.text}" == expected


def test_exchange_line_over_buffer_rejected(
    certificates: CertificateFiles, client_context: ssl.SSLContext
) -> None:
    with client_on(certificates, client_context, ServerOptions(), SHORT_TOKEN) as client:
        client.command("AUTH XOAUTH2")
        reply = client.command("A" * (AUTH_BUFFER_OCTETS + 100))
        assert f"{reply.code} {reply.text}" == "500 5.5.6 Authentication Exchange line is too long"


def test_session_usable_after_buffer_overrun(
    certificates: CertificateFiles, client_context: ssl.SSLContext
) -> None:
    with client_on(certificates, client_context, ServerOptions(), SHORT_TOKEN) as client:
        client.command("AUTH XOAUTH2")
        client.command("A" * (AUTH_BUFFER_OCTETS + 100))
        assert client.command(auth_line(SHORT_TOKEN)).code == 235


def test_data_line_limit_unchanged(
    certificates: CertificateFiles, client_context: ssl.SSLContext
) -> None:
    with client_on(certificates, client_context, ServerOptions(), SHORT_TOKEN) as client:
        client.command(auth_line(SHORT_TOKEN))
        client.command("MAIL FROM:<a@example.com>")
        client.command("RCPT TO:<b@example.com>")
        client.command("DATA")
        client.send("x" * 1200)
        reply = client.command(".")
        assert reply.code == 500


def test_long_line_logs_omit_token(
    certificates: CertificateFiles,
    client_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with client_on(certificates, client_context, ServerOptions(), LONG_TOKEN) as client:
        client.command(auth_line(LONG_TOKEN))
        client.command("AUTH XOAUTH2")
        client.command(xoauth2_response(LAB_USER, LONG_TOKEN))
    leaked = [form for form in secret_forms(LONG_TOKEN) if form in caplog.text]
    assert leaked == []
