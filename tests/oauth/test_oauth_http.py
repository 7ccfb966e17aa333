"""The token endpoint client: URL rules, verified TLS, timeouts and bounded bodies."""

from __future__ import annotations

import http.server
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from smtpdiag.lab.certs import write_certificates
from smtpdiag.oauth.http import (
    MAX_BODY_BYTES,
    EndpointError,
    EndpointFailure,
    parse_endpoint_url,
    post_form,
)

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


@contextmanager
def serve(handler: Handler, tls_dir: Path | None = None) -> Iterator[str]:
    """Serve ``handler`` for POST on 127.0.0.1 and yield the base URL."""

    class Request(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            handler(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Request)
    server.daemon_threads = True
    scheme = "http"
    if tls_dir is not None:
        files = write_certificates(tls_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(files.chain_file, files.key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


def respond(
    request: http.server.BaseHTTPRequestHandler, status: int, body: bytes, content_type: str
) -> None:
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def reply(status: int, body: bytes, content_type: str = "application/json") -> Handler:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.rfile.read(int(request.headers.get("Content-Length", "0")))
        respond(request, status, body, content_type)

    return handle


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://login.example.com/token", "plain http"),
        ("ftp://127.0.0.1/token", "not an https:// URL"),
        ("https:///token", "not an https:// URL"),
        ("https://user:pw@login.example.com/token", "credentials in the URL"),
        ("https://login.example.com:99999/token", "not a valid URL"),
    ],
)
def test_rejected_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_endpoint_url(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/token", "http://[::1]/token", "http://localhost/t"]
)
def test_plain_http_allowed_on_loopback(url: str) -> None:
    assert parse_endpoint_url(url).scheme == "http"


def test_form_post_and_reply_fields() -> None:
    seen: dict[str, str] = {}

    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        length = int(request.headers["Content-Length"])
        seen["body"] = request.rfile.read(length).decode()
        seen["type"] = request.headers["Content-Type"]
        respond(request, 200, b'{"access_token": "x"}', "application/json")

    with serve(handle) as url:
        result = post_form(url, {"grant_type": "refresh_token", "scope": "a b"}, timeout=5)
    assert seen == {
        "body": "grant_type=refresh_token&scope=a+b",
        "type": "application/x-www-form-urlencoded",
    }
    assert result.status == 200
    assert result.content_type == "application/json"
    assert result.body == b'{"access_token": "x"}'
    assert result.truncated is False
    assert result.date is not None  # BaseHTTPRequestHandler sends a Date header


def test_https_verified_with_ca_file(tmp_path: Path) -> None:
    with serve(reply(400, b'{"error": "invalid_grant"}'), tls_dir=tmp_path) as url:
        result = post_form(url, {}, timeout=5, ca_file=str(tmp_path / "ca.pem"))
    assert result.status == 400


def test_https_unknown_ca_is_a_tls_error(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    write_certificates(other)
    with (
        serve(reply(200, b"{}"), tls_dir=tmp_path) as url,
        pytest.raises(EndpointError) as caught,
    ):
        post_form(url, {}, timeout=5, ca_file=str(other / "ca.pem"))
    assert caught.value.tls is True
    assert "certificate verification failed" in caught.value.reason


def test_refused_connection() -> None:
    with serve(reply(200, b"{}")) as url:
        pass
    with pytest.raises(EndpointError) as caught:
        post_form(url, {}, timeout=2)
    assert caught.value.tls is False
    assert "refused" in caught.value.reason


def test_silent_server_times_out() -> None:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        time.sleep(3)

    with serve(handle) as url, pytest.raises(EndpointError) as caught:
        post_form(url, {}, timeout=0.3)
    assert caught.value.reason == "the request was sent, but no reply came within 0.3 s"


def test_silent_tls_listener_times_out_in_handshake() -> None:
    # The kernel accepts the TCP connection into the backlog, and nothing replies to
    # the ClientHello.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(EndpointError) as caught:
            post_form(f"https://127.0.0.1:{port}/token", {}, timeout=0.3)
    assert caught.value.reason == "the connection and TLS handshake did not complete within 0.3 s"
    assert caught.value.tls is False


def test_body_is_cut_at_the_limit() -> None:
    with serve(reply(200, b"x" * (MAX_BODY_BYTES + 5000), "text/html")) as url:
        result = post_form(url, {}, timeout=5)
    assert result.truncated is True
    assert len(result.body) == MAX_BODY_BYTES
    assert result.content_type == "text/html"


def test_secret_in_query_is_rejected_and_masked() -> None:
    from smtpdiag.redact import REDACTOR

    with pytest.raises(ValueError, match="credentials in the URL"):
        parse_endpoint_url("https://login.example.com/token?client_secret=CanarySecretInQuery42")
    assert "CanarySecretInQuery42" not in REDACTOR.redact("x CanarySecretInQuery42")


def test_slow_body_names_the_status() -> None:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.rfile.read(int(request.headers.get("Content-Length", "0")))
        request.send_response(200)
        request.send_header("Content-Length", "100")
        request.end_headers()
        request.wfile.write(b"{")
        request.wfile.flush()
        time.sleep(2)

    with serve(handle) as url, pytest.raises(EndpointError) as caught:
        post_form(url, {}, timeout=0.3)
    assert caught.value.reason == (
        "the body of the HTTP 200 reply did not arrive in time (0.3 s per read, 0.9 s in all)"
    )


def test_failure_kind_of_refused_connection() -> None:
    with serve(reply(200, b"{}")) as url:
        pass
    with pytest.raises(EndpointError) as caught:
        post_form(url, {}, timeout=2)
    assert caught.value.failure is EndpointFailure.REFUSED


def test_failure_kind_of_silent_server() -> None:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        time.sleep(3)

    with serve(handle) as url, pytest.raises(EndpointError) as caught:
        post_form(url, {}, timeout=0.3)
    assert caught.value.failure is EndpointFailure.STALLED
    assert caught.value.tls is False


def test_failure_kind_of_handshake_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(EndpointError) as caught:
            post_form(f"https://127.0.0.1:{port}/token", {}, timeout=0.3)
    assert caught.value.failure is EndpointFailure.CONNECT_TIMEOUT


def test_failure_kind_of_untrusted_certificate(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    write_certificates(other)
    with (
        serve(reply(200, b"{}"), tls_dir=tmp_path) as url,
        pytest.raises(EndpointError) as caught,
    ):
        post_form(url, {}, timeout=5, ca_file=str(other / "ca.pem"))
    assert caught.value.failure is EndpointFailure.TLS


def test_failure_kind_of_closed_connection() -> None:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.rfile.read(int(request.headers.get("Content-Length", "0")))
        request.close_connection = True
        request.connection.shutdown(socket.SHUT_RDWR)

    with serve(handle) as url, pytest.raises(EndpointError) as caught:
        post_form(url, {}, timeout=2)
    assert caught.value.failure is EndpointFailure.CLOSED


# Debug log -----------------------------------------------------------------------------------

LOG_CANARY_SECRET = "client~secret~log~canary~0123456789"
LOG_CANARY_BODY = b'{"access_token": "body-text-log-canary", "token_type": "Bearer"}'


def http_debug_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage() for record in caplog.records if record.name == "smtpdiag.oauth.http"
    ]


def test_debug_log_names_request_and_reply(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="smtpdiag.oauth.http")
    with serve(reply(200, LOG_CANARY_BODY)) as url:
        post_form(url, {"client_secret": LOG_CANARY_SECRET}, timeout=5)
    lines = http_debug_lines(caplog)

    assert len(lines) == 2
    assert lines[0] == f"POST {url} sent (timeout 5 s per operation, 15 s in all)"
    assert lines[1].startswith(
        f"POST {url}: HTTP 200, application/json, {len(LOG_CANARY_BODY)} bytes in "
    )
    assert lines[1].endswith(" s")


def test_debug_log_has_no_form_headers_or_body(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="smtpdiag.oauth.http")
    with serve(reply(200, LOG_CANARY_BODY)) as url:
        post_form(
            url,
            {"client_secret": LOG_CANARY_SECRET},
            timeout=5,
            headers={"Authorization": "Basic header-log-canary"},
        )
    text = "\n".join(http_debug_lines(caplog))

    assert LOG_CANARY_SECRET not in text
    assert "client_secret" not in text
    assert "header-log-canary" not in text
    assert "body-text-log-canary" not in text


def test_debug_log_omits_query(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="smtpdiag.oauth.http")
    with serve(reply(200, b"{}")) as url:
        post_form(f"{url}?api-version=query-log-canary", {}, timeout=5)
    text = "\n".join(http_debug_lines(caplog))

    assert f"POST {url}?… sent" in text
    assert "query-log-canary" not in text


def test_debug_log_names_stall(caplog: pytest.LogCaptureFixture) -> None:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        time.sleep(3)

    caplog.set_level(logging.DEBUG, logger="smtpdiag.oauth.http")
    with serve(handle) as url, pytest.raises(EndpointError):
        post_form(url, {}, timeout=0.3)
    lines = http_debug_lines(caplog)

    assert lines[0] == f"POST {url} sent (timeout 0.3 s per operation, 0.9 s in all)"
    assert lines[1].startswith(f"POST {url} failed after ")
    assert lines[1].endswith(" s: stalled: the request was sent, but no reply came within 0.3 s")


def test_debug_log_names_refused_connection(caplog: pytest.LogCaptureFixture) -> None:
    with serve(reply(200, b"{}")) as url:
        pass
    caplog.set_level(logging.DEBUG, logger="smtpdiag.oauth.http")
    with pytest.raises(EndpointError):
        post_form(url, {}, timeout=2)
    lines = http_debug_lines(caplog)

    assert len(lines) == 1
    assert lines[0].startswith(f"POST {url} failed after ")
    assert "refused: connection to 127.0.0.1" in lines[0]
