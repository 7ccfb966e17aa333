"""Lab submission server: EHLO, STARTTLS, the AUTH mechanisms, the sink and the behaviour knobs."""

from __future__ import annotations

import base64
import json
import logging
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from smtpdiag.lab.certs import CertificateFiles
from smtpdiag.lab.lab_account import LabAccount
from smtpdiag.lab.options import GOOGLE_MAIL_SCOPE, ServerOptions
from smtpdiag.lab.smtp_server import LabServer, build_ehlo_lines
from smtpdiag.redact import secret_forms
from smtpdiag.secrets import Secret

LAB_USER = "tester@example.com"
LAB_TOKEN = "ya29.test-token-0123456789"

ServerFactory = Callable[..., AbstractContextManager[LabServer]]


@pytest.fixture(scope="module")
def lab_server(certificates: CertificateFiles) -> ServerFactory:
    account = LabAccount(LAB_USER, Secret(LAB_TOKEN, "test"))

    @contextmanager
    def start(
        options: ServerOptions | None = None, *, implicit_tls: bool = False
    ) -> Iterator[LabServer]:
        options = options or ServerOptions()
        with LabServer(options, account, certificates, implicit_tls=implicit_tls) as server:
            yield server

    return start


@pytest.fixture(scope="module")
def starttls_server(lab_server: ServerFactory) -> Iterator[LabServer]:
    with lab_server() as server:
        yield server


@pytest.fixture(scope="module")
def implicit_server(lab_server: ServerFactory) -> Iterator[LabServer]:
    with lab_server(implicit_tls=True) as server:
        yield server


@pytest.fixture(scope="module")
def no_starttls_server(lab_server: ServerFactory) -> Iterator[LabServer]:
    with lab_server(ServerOptions(offer_starttls=False)) as server:
        yield server


@pytest.fixture(scope="module")
def password_only_server(lab_server: ServerFactory) -> Iterator[LabServer]:
    with lab_server(ServerOptions(auth_mechanisms=("PLAIN", "LOGIN"))) as server:
        yield server


@pytest.fixture
def tls_client(
    starttls_server: LabServer, client_context: ssl.SSLContext
) -> Iterator[smtplib.SMTP]:
    """Client on the STARTTLS server, after STARTTLS and the second EHLO."""
    with smtplib.SMTP(starttls_server.host, starttls_server.port, timeout=5) as client:
        client.starttls(context=client_context)
        client.ehlo()
        yield client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def xoauth2(user: str, token: str) -> str:
    return b64(f"user={user}\x01auth=Bearer {token}\x01\x01".encode())


def oauthbearer(header: str, *pairs: str) -> str:
    return b64((header + "\x01" + "".join(pair + "\x01" for pair in pairs) + "\x01").encode())


def mechanisms(client: smtplib.SMTP) -> list[str]:
    """Return the AUTH mechanisms of the client's last EHLO reply, in order."""
    return client.esmtp_features.get("auth", "").split()


def converse(
    client: smtplib.SMTP, command: str, follow_ups: tuple[str, ...]
) -> list[tuple[int, bytes]]:
    """Send ``command`` then each follow-up line; return every reply."""
    replies = [client.docmd(command)]
    for line in follow_ups:
        replies.append(client.docmd(line))
    return replies


# --- EHLO -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keyword", ["starttls", "pipelining", "enhancedstatuscodes", "size", "8bitmime"]
)
def test_plain_ehlo_advertises(starttls_server: LabServer, keyword: str) -> None:
    with smtplib.SMTP(starttls_server.host, starttls_server.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn(keyword)


def test_plain_ehlo_hides_auth(starttls_server: LabServer) -> None:
    with smtplib.SMTP(starttls_server.host, starttls_server.port, timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("auth")


def test_ehlo_after_starttls_lists_mechanisms(tls_client: smtplib.SMTP) -> None:
    assert mechanisms(tls_client) == ["PLAIN", "XOAUTH2", "OAUTHBEARER"]


def test_ehlo_after_starttls_drops_starttls(tls_client: smtplib.SMTP) -> None:
    assert not tls_client.has_extn("starttls")


def test_implicit_tls_ehlo_lists_mechanisms(
    implicit_server: LabServer, client_context: ssl.SSLContext
) -> None:
    with smtplib.SMTP_SSL(
        implicit_server.host, implicit_server.port, timeout=5, context=client_context
    ) as client:
        client.ehlo()
        assert mechanisms(client) == ["PLAIN", "XOAUTH2", "OAUTHBEARER"]


def test_implicit_tls_rejects_starttls(
    implicit_server: LabServer, client_context: ssl.SSLContext
) -> None:
    with smtplib.SMTP_SSL(
        implicit_server.host, implicit_server.port, timeout=5, context=client_context
    ) as client:
        client.ehlo()
        assert client.docmd("STARTTLS")[0] == 502


def test_auth_before_tls_is_refused(starttls_server: LabServer) -> None:
    with smtplib.SMTP(starttls_server.host, starttls_server.port, timeout=5) as client:
        client.ehlo()
        assert client.docmd("AUTH", "XOAUTH2 " + xoauth2(LAB_USER, LAB_TOKEN))[0] == 538


def test_build_ehlo_lines_reorders_auth() -> None:
    lines = ["250-localhost", "250-SIZE 100", "250-8BITMIME", "250-AUTH LOGIN PLAIN", "250 HELP"]
    assert build_ehlo_lines(lines, ("XOAUTH2", "PLAIN")) == [
        "250-localhost",
        "250-SIZE 100",
        "250-PIPELINING",
        "250-ENHANCEDSTATUSCODES",
        "250-8BITMIME",
        "250-AUTH XOAUTH2 PLAIN",
        "250 HELP",
    ]


# --- AUTH -------------------------------------------------------------------------------------

AUTH_CASES = [
    pytest.param(
        "AUTH XOAUTH2 " + xoauth2(LAB_USER, LAB_TOKEN), (), 235, id="xoauth2-initial-response"
    ),
    pytest.param("AUTH XOAUTH2", (xoauth2(LAB_USER, LAB_TOKEN),), 235, id="xoauth2-after-334"),
    pytest.param("AUTH XOAUTH2 " + xoauth2(LAB_USER, "wrong"), ("",), 535, id="xoauth2-bad-token"),
    pytest.param(
        "AUTH XOAUTH2 " + xoauth2("other@example.com", LAB_TOKEN),
        ("",),
        535,
        id="xoauth2-other-user",
    ),
    pytest.param("AUTH XOAUTH2 " + b64(b"user=x\x01"), (), 501, id="xoauth2-malformed"),
    pytest.param("AUTH XOAUTH2 !!!", (), 501, id="xoauth2-bad-base64"),
    pytest.param("AUTH XOAUTH2 " + xoauth2(LAB_USER, "wrong"), ("*",), 501, id="xoauth2-abort"),
    pytest.param(
        "AUTH OAUTHBEARER "
        + oauthbearer(f"n,a={LAB_USER},", "host=localhost", "port=587", f"auth=Bearer {LAB_TOKEN}"),
        (),
        235,
        id="oauthbearer-host-port",
    ),
    pytest.param(
        "AUTH OAUTHBEARER " + oauthbearer("n,,", f"auth=Bearer {LAB_TOKEN}"),
        (),
        235,
        id="oauthbearer-no-authzid",
    ),
    pytest.param(
        "AUTH OAUTHBEARER",
        (oauthbearer(f"n,a={LAB_USER},", f"auth=bearer {LAB_TOKEN}"),),
        235,
        id="oauthbearer-after-334",
    ),
    pytest.param(
        "AUTH OAUTHBEARER " + oauthbearer(f"n,a={LAB_USER},", "auth=Bearer wrong"),
        ("AQ==",),
        535,
        id="oauthbearer-bad-token",
    ),
    pytest.param("AUTH OAUTHBEARER AQ==", (), 501, id="oauthbearer-lone-kvsep"),
    pytest.param(
        "AUTH PLAIN " + b64(f"\0{LAB_USER}\0{LAB_TOKEN}".encode()), (), 235, id="plain-token"
    ),
    pytest.param(
        "AUTH PLAIN " + b64(f"\0{LAB_USER}\0wrong".encode()), (), 535, id="plain-bad-password"
    ),
    pytest.param("AUTH LOGIN", (), 504, id="login-not-advertised"),
]


@pytest.mark.parametrize(("command", "follow_ups", "final_code"), AUTH_CASES)
def test_auth_final_reply(
    tls_client: smtplib.SMTP, command: str, follow_ups: tuple[str, ...], final_code: int
) -> None:
    replies = converse(tls_client, command, follow_ups)
    assert replies[-1][0] == final_code


@pytest.mark.parametrize(
    ("command", "follow_up", "final_reply"),
    [
        pytest.param(
            "AUTH XOAUTH2 " + xoauth2(LAB_USER, "wrong"),
            "",
            b"5.7.8 Username and Password not accepted",
            id="xoauth2",
        ),
        pytest.param(
            "AUTH OAUTHBEARER " + oauthbearer(f"n,a={LAB_USER},", "auth=Bearer wrong"),
            "AQ==",
            b"5.7.1 Bearer token not accepted",
            id="oauthbearer",
        ),
    ],
)
def test_rejection_text(
    tls_client: smtplib.SMTP, command: str, follow_up: str, final_reply: bytes
) -> None:
    replies = converse(tls_client, command, (follow_up,))
    assert replies[-1][1] == final_reply


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        pytest.param(
            "AUTH XOAUTH2 " + xoauth2(LAB_USER, "wrong"),
            {"status": "401", "schemes": "bearer", "scope": GOOGLE_MAIL_SCOPE},
            id="xoauth2-google-shape",
        ),
        pytest.param(
            "AUTH OAUTHBEARER " + oauthbearer(f"n,a={LAB_USER},", "auth=Bearer wrong"),
            {"status": "invalid_token", "scope": GOOGLE_MAIL_SCOPE},
            id="oauthbearer-rfc7628-shape",
        ),
    ],
)
def test_error_challenge_json(
    tls_client: smtplib.SMTP, command: str, expected: dict[str, str]
) -> None:
    code, text = tls_client.docmd(command)
    tls_client.docmd("")
    assert (code, json.loads(base64.b64decode(text))) == (334, expected)


def test_second_auth_is_refused(tls_client: smtplib.SMTP) -> None:
    tls_client.docmd("AUTH XOAUTH2 " + xoauth2(LAB_USER, LAB_TOKEN))
    assert tls_client.docmd("AUTH XOAUTH2 " + xoauth2(LAB_USER, LAB_TOKEN))[0] == 503


# --- Mail sink --------------------------------------------------------------------------------


def test_mail_before_auth_is_refused(tls_client: smtplib.SMTP) -> None:
    assert tls_client.docmd("MAIL FROM:<a@example.com>")[0] == 530


def test_sink_counts_messages(lab_server: ServerFactory, client_context: ssl.SSLContext) -> None:
    with lab_server() as server, smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.starttls(context=client_context)
        client.ehlo()
        client.docmd("AUTH XOAUTH2 " + xoauth2(LAB_USER, LAB_TOKEN))
        client.sendmail("a@example.com", ["b@example.com"], "Subject: lab\r\n\r\nbody\r\n")
        client.sendmail("a@example.com", ["c@example.com"], "Subject: lab\r\n\r\nbody\r\n")
        assert server.messages_received == 2


# --- Behaviour knobs --------------------------------------------------------------------------


def test_greeting_reply_replaces_greeting(lab_server: ServerFactory) -> None:
    options = ServerOptions(greeting_reply="421 4.3.2 Service not available")
    with lab_server(options) as server, pytest.raises(smtplib.SMTPConnectError) as caught:
        smtplib.SMTP(server.host, server.port, timeout=5)
    assert (caught.value.smtp_code, caught.value.smtp_error) == (
        421,
        b"4.3.2 Service not available",
    )


def test_greeting_reply_closes_connection(lab_server: ServerFactory) -> None:
    options = ServerOptions(greeting_reply="421 4.3.2 Service not available")
    with lab_server(options) as server:
        received = read_until_closed(server)
    assert received == b"421 4.3.2 Service not available\r\n"


def read_until_closed(server: LabServer) -> bytes:
    """Connect, send nothing and return every byte the server sends before it closes."""
    chunks = []
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        while chunk := sock.recv(1024):
            chunks.append(chunk)
    return b"".join(chunks)


def test_starttls_not_advertised(no_starttls_server: LabServer) -> None:
    with smtplib.SMTP(no_starttls_server.host, no_starttls_server.port, timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("starttls")


def test_starttls_answered_502(no_starttls_server: LabServer) -> None:
    with smtplib.SMTP(no_starttls_server.host, no_starttls_server.port, timeout=5) as client:
        client.ehlo()
        assert client.docmd("STARTTLS")[0] == 502


def test_password_only_advertises(
    password_only_server: LabServer, client_context: ssl.SSLContext
) -> None:
    with smtplib.SMTP(password_only_server.host, password_only_server.port, timeout=5) as client:
        client.starttls(context=client_context)
        client.ehlo()
        assert mechanisms(client) == ["PLAIN", "LOGIN"]


def test_password_only_refuses_xoauth2(
    password_only_server: LabServer, client_context: ssl.SSLContext
) -> None:
    with smtplib.SMTP(password_only_server.host, password_only_server.port, timeout=5) as client:
        client.starttls(context=client_context)
        client.ehlo()
        assert client.docmd("AUTH XOAUTH2 " + xoauth2(LAB_USER, LAB_TOKEN))[0] == 504


def test_unsupported_mechanism_option_rejected() -> None:
    with pytest.raises(ValueError, match="CRAM-MD5"):
        ServerOptions(auth_mechanisms=("CRAM-MD5",))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"rejection_reply": "235 2.7.0 Accepted"}, "not a one-line 4xx", id="2xx"),
        pytest.param({"rejection_reply": "535"}, "not a one-line 4xx", id="code-only"),
        pytest.param(
            {"rejection_reply": "535 5.7.8 a\r\n535 5.7.8 b"}, "not a one-line 4xx", id="two-lines"
        ),
        pytest.param({"max_auth_line_length": 13}, "outside 14..12288", id="limit-too-small"),
        pytest.param({"max_auth_line_length": 12289}, "outside 14..12288", id="limit-too-large"),
    ],
)
def test_invalid_auth_option_rejected(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerOptions(**options)  # type: ignore[arg-type]


def test_advertised_only_mechanism_option_allowed() -> None:
    options = ServerOptions(auth_mechanisms=("XOAUTH2", "XOAUTH", "PLAIN-CLIENTTOKEN"))
    assert options.auth_mechanisms == ("XOAUTH2", "XOAUTH", "PLAIN-CLIENTTOKEN")


def test_reject_all_tokens_rejects_lab_token(
    lab_server: ServerFactory, client_context: ssl.SSLContext
) -> None:
    options = ServerOptions(reject_all_tokens=True)
    with lab_server(options) as server, smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.starttls(context=client_context)
        client.ehlo()
        replies = converse(client, "AUTH XOAUTH2 " + xoauth2(LAB_USER, LAB_TOKEN), ("",))
        assert [code for code, _ in replies] == [334, 535]


# --- Secrets ----------------------------------------------------------------------------------


def test_server_logs_omit_token(tls_client: smtplib.SMTP, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    converse(tls_client, "AUTH XOAUTH2", ("",))
    converse(
        tls_client, "AUTH OAUTHBEARER " + oauthbearer("n,,", f"auth=Bearer {LAB_TOKEN}x"), ("AQ==",)
    )
    converse(tls_client, "AUTH XOAUTH2 " + xoauth2(LAB_USER, LAB_TOKEN), ())
    leaked = [form for form in secret_forms(LAB_TOKEN) if form in caplog.text]
    assert leaked == []
    assert "OAUTHBEARER token rejected" in caplog.text
