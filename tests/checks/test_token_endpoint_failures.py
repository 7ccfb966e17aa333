"""token check: the cause and fix of ``token.endpoint_unreachable`` fit the step that failed.

Every endpoint here listens on 127.0.0.1 or is a closed port there. A hanging endpoint reads
the request and sleeps, so the check runs into its own short timeout.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from scripted_peer import unused_port

from checks import token as token_check
from smtpdiag.context import CheckContext, OAuthSettings, Settings, Target, TlsMode
from smtpdiag.models import CheckResult, Finding
from smtpdiag.secrets import Secret

TIMEOUT = 0.3
"""Seconds the check waits for each network operation."""

HANG_SECONDS = 3
"""Seconds a hanging endpoint sleeps before it closes the connection, longer than TIMEOUT."""

STALL_WORDS = "accepted the request and did not reply in time"

CONNECT_FAILURE_WORDS = (
    "name resolution",
    "does not resolve",
    "firewall rules",
    "before the request was sent",
)
"""Phrases of the connection-failure advice, which a stalled request must not get."""


@contextmanager
def hanging_endpoint(reply: bool) -> Iterator[str]:
    """Serve a token endpoint on http://127.0.0.1 that reads the request and then hangs.

    With ``reply`` True it sends a status line and headers first, then hangs in the body.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if reply:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"{")
                self.wfile.flush()
            time.sleep(HANG_SECONDS)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/oauth2/v2.0/token"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def closing_endpoint() -> Iterator[str]:
    """Serve a port on 127.0.0.1 that reads the request and closes without a reply."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(5)

    def serve() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(5)
            connection.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/token"
    finally:
        thread.join(timeout=5)
        listener.close()


def target(url: str) -> Target:
    oauth = OAuthSettings(
        provider="microsoft",  # type: ignore[arg-type]
        client_id="00000000-0000-0000-0000-00000000c1d0",
        client_secret=Secret("client~secret~canary~1234567890", "test"),
        refresh_token=Secret("0.AXoA-refresh-token-canary-1234567890", "test"),
        token_endpoint=url,
    )
    return Target(host="127.0.0.1", port=587, tls_mode=TlsMode.STARTTLS, oauth=oauth)


def run(url: str) -> CheckResult:
    return token_check.run(target(url), CheckContext(settings=Settings(timeout=TIMEOUT)))


def only_finding(result: CheckResult) -> Finding:
    assert [finding.code for finding in result.findings] == ["token.endpoint_unreachable"]
    return result.findings[0]


@pytest.fixture(scope="module")
def stalled() -> Finding:
    with hanging_endpoint(reply=False) as url:
        return only_finding(run(url))


def test_stalled_reason_in_title(stalled: Finding) -> None:
    assert stalled.title.endswith(f"the request was sent, but no reply came within {TIMEOUT:g} s")


def test_stalled_cause_names_stall(stalled: Finding) -> None:
    assert STALL_WORDS in stalled.cause


@pytest.mark.parametrize("words", CONNECT_FAILURE_WORDS)
def test_stalled_cause_has_no_connect_advice(stalled: Finding, words: str) -> None:
    assert words not in stalled.cause


@pytest.mark.parametrize("words", CONNECT_FAILURE_WORDS)
def test_stalled_fix_has_no_connect_advice(stalled: Finding, words: str) -> None:
    assert words not in stalled.fix


@pytest.mark.parametrize("words", ["service status", "proxy", "--timeout"])
def test_stalled_fix_names_next_steps(stalled: Finding, words: str) -> None:
    assert words in stalled.fix


def test_stalled_body_gets_stall_text() -> None:
    with hanging_endpoint(reply=True) as url:
        finding = only_finding(run(url))

    assert "the body of the HTTP 200 reply did not arrive in time" in finding.title
    assert "did not finish the reply in time" in finding.cause
    assert "name resolution" not in finding.fix


def test_closed_without_reply() -> None:
    with closing_endpoint() as url:
        finding = only_finding(run(url))

    assert "closed the connection without a complete reply" in finding.cause
    assert "name resolution" not in finding.fix


def test_refused_literal_has_no_name_advice() -> None:
    finding = only_finding(run(f"http://127.0.0.1:{unused_port()}/token"))

    assert "refused" in finding.cause
    assert "before the request was sent" in finding.cause
    assert "name resolution" not in finding.fix
    assert STALL_WORDS not in finding.cause


def test_refused_fix_names_port() -> None:
    port = unused_port()
    finding = only_finding(run(f"http://127.0.0.1:{port}/token"))

    assert f"127.0.0.1 port {port}" in finding.fix


def test_stalled_facts_name_failure(stalled: Finding) -> None:
    assert stalled.facts["endpoint_failure"] == "stalled"
