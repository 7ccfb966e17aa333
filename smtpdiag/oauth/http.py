"""A small HTTPS client for token, tokeninfo and introspection endpoints.

Requests are form-encoded POSTs over verified TLS; plain http is allowed only to a loopback
address. Every call has a per-operation timeout and an overall deadline, and the body is
read up to ``MAX_BODY_BYTES``, so a hanging or flooding endpoint cannot stall a check.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from smtpdiag import __version__
from smtpdiag.oauth.model import HttpReply
from smtpdiag.redact import REDACTOR

if TYPE_CHECKING:
    import http.client

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_048_576
"""Maximum body size read, in bytes; token replies are a few kilobytes."""

USER_AGENT = f"smtpdiag/{__version__}"

_LOOPBACK_NAMES = ("localhost", "localhost.")

_SECRET_QUERY_KEYS = frozenset(
    {"client_secret", "refresh_token", "access_token", "code", "password", "assertion"}
)
"""Query parameters that carry a secret; the form body is their place."""


class EndpointFailure(StrEnum):
    """Reason that no complete HTTP reply arrived, as stored in the ``endpoint_failure`` fact."""

    NAME_NOT_RESOLVED = "name_not_resolved"
    """The host name does not resolve, so no connection was attempted."""
    REFUSED = "refused"
    """The host rejected the TCP connection (RST): nothing listens on the port, or a
    firewall rejects the connection."""
    CONNECT_TIMEOUT = "connect_timeout"
    """The TCP connection or the TLS handshake did not complete within the timeout."""
    NETWORK = "network"
    """Another OS error before the request was sent, such as "Network is unreachable"."""
    TLS = "tls"
    """The TLS handshake failed or the certificate was not trusted."""
    STALLED = "stalled"
    """The connection was established, and then the request or the reply made no progress
    within the timeout."""
    CLOSED = "closed"
    """The connection was established, and the peer closed or reset it, or sent something
    other than HTTP, before the reply was complete."""


class EndpointError(Exception):
    """The endpoint gave no complete HTTP reply: no connection, failed TLS, or no reply."""

    def __init__(
        self, reason: str, failure: EndpointFailure, *, http_status: int | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.failure = failure
        self.http_status = http_status
        """Status code of a reply whose body did not arrive in full, or None."""

    @property
    def tls(self) -> bool:
        """Whether TLS failed (certificate, handshake) rather than the connection."""
        return self.failure is EndpointFailure.TLS


@dataclass(frozen=True)
class EndpointUrl:
    """A checked endpoint URL split into the parts a connection needs."""

    url: str
    scheme: str
    host: str
    port: int
    path: str


def is_loopback(host: str) -> bool:
    """Return whether ``host`` is a loopback IP literal or the name localhost."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_endpoint_url(url: str) -> EndpointUrl:
    """Check that ``url`` is https, or http on loopback, and split it.

    Raises ``ValueError`` with a message that names the problem.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError as error:
        raise ValueError(f"not a valid URL ({error})") from None
    # Mask secrets in the URL first, because the error message repeats the value.
    secret_query = [
        value for key, value in parse_qsl(parts.query) if key.lower() in _SECRET_QUERY_KEYS
    ]
    for secret in (parts.password, *secret_query):
        if secret:
            REDACTOR.register(secret)
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(f"not a valid URL ({error})") from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in ("https", "http") or not host:
        raise ValueError("not an https:// URL with a host name")
    if scheme == "http" and not is_loopback(host):
        raise ValueError("plain http sends the client secret and tokens unencrypted")
    if parts.username or parts.password or secret_query:
        raise ValueError("credentials in the URL would be sent and logged")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default_port = 443 if scheme == "https" else 80
    return EndpointUrl(url.strip(), scheme, host, port or default_port, path)


def post_form(
    url: str,
    fields: Mapping[str, str],
    *,
    timeout: float,
    ca_file: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpReply:
    """POST ``fields`` form-encoded to ``url`` and return the reply, whatever its status.

    ``timeout`` bounds each network operation and, three times over, the whole request.
    Raises ``EndpointError`` when no HTTP reply arrives, and ``ValueError`` for a URL that
    ``parse_endpoint_url`` rejects.
    """
    import http.client  # about 5 ms with the email modules; only a run that posts needs it

    endpoint = parse_endpoint_url(url)
    body = urlencode(dict(fields)).encode("ascii")
    request_headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        **(headers or {}),
    }
    connection = _connection(endpoint, timeout, ca_file)
    log_url = _log_url(endpoint.url)
    started = time.monotonic()
    deadline = started + 3 * timeout
    stage = _Stage.CONNECT
    status: int | None = None
    response: http.client.HTTPResponse | None = None
    try:
        # Connecting first lets a timeout in the TCP or TLS setup be reported apart from one
        # after the request.
        connection.connect()
        stage = _Stage.SEND
        connection.request("POST", endpoint.path, body=body, headers=request_headers)
        # The form and the headers are not logged, because they contain the secrets.
        logger.debug(
            "POST %s sent (timeout %g s per operation, %g s in all)",
            log_url,
            timeout,
            3 * timeout,
        )
        stage = _Stage.REPLY
        response = connection.getresponse()
        status = response.status
        data, truncated = _read_body(response, deadline)
        reply = _http_reply(response, data, truncated, time.monotonic() - started)
        logger.debug(
            "POST %s: HTTP %d, %s, %d bytes%s in %.3f s",
            log_url,
            reply.status,
            reply.content_type or "no Content-Type",
            len(data),
            " (read cut there)" if truncated else "",
            reply.latency_seconds,
        )
        return reply
    except (http.client.HTTPException, OSError) as error:
        # OSError covers the ssl errors, TimeoutError and socket.gaierror.
        endpoint_error = _endpoint_error(error, endpoint, stage, status, timeout)
        elapsed = time.monotonic() - started
        logger.debug(
            "POST %s failed after %.3f s: %s: %s",
            log_url,
            elapsed,
            endpoint_error.failure.value,
            endpoint_error.reason,
        )
        raise endpoint_error from None
    finally:
        if response is not None:
            response.close()
        connection.close()


def _log_url(url: str) -> str:
    """Return ``url`` for the log, with its query replaced by ``?…``.

    Secret parameters in the query are rejected before this, but other values may still be
    private, and the path alone identifies the endpoint.
    """
    parts = urlsplit(url.strip())
    without_query = parts._replace(query="", fragment="").geturl()
    return f"{without_query}?…" if parts.query else without_query


def _http_reply(
    response: http.client.HTTPResponse, body: bytes, truncated: bool, latency: float
) -> HttpReply:
    return HttpReply(
        status=response.status,
        reason=response.reason,
        headers={name.lower(): value for name, value in response.getheaders()},
        body=body,
        truncated=truncated,
        latency_seconds=latency,
    )


def _connection(
    endpoint: EndpointUrl, timeout: float, ca_file: str | None
) -> http.client.HTTPConnection:
    """Create an unconnected HTTP or HTTPS connection to ``endpoint``."""
    import http.client

    if endpoint.scheme == "https":
        context = ssl.create_default_context(cafile=ca_file)
        return http.client.HTTPSConnection(
            endpoint.host, endpoint.port, timeout=timeout, context=context
        )
    return http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout)


def _endpoint_error(
    error: Exception, endpoint: EndpointUrl, stage: _Stage, status: int | None, timeout: float
) -> EndpointError:
    """Translate the exception that ended a request at ``stage`` into an ``EndpointError``."""
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = f"certificate verification failed: {error.verify_message or error.reason}"
        return EndpointError(reason, EndpointFailure.TLS)
    if isinstance(error, ssl.SSLError):
        if stage is not _Stage.CONNECT:
            reason = f"the TLS session failed after the handshake ({error.reason or error})"
            return EndpointError(reason, EndpointFailure.CLOSED, http_status=status)
        return EndpointError(f"TLS handshake failed: {error.reason or error}", EndpointFailure.TLS)
    if isinstance(error, TimeoutError):
        reason = _timeout_reason(stage, status, timeout, endpoint.scheme)
        if stage is _Stage.CONNECT:
            return EndpointError(reason, EndpointFailure.CONNECT_TIMEOUT)
        return EndpointError(reason, EndpointFailure.STALLED, http_status=status)
    if isinstance(error, socket.gaierror):
        reason = f"the name {endpoint.host} does not resolve ({error.strerror})"
        return EndpointError(reason, EndpointFailure.NAME_NOT_RESOLVED)
    if isinstance(error, ConnectionRefusedError):
        reason = f"connection to {endpoint.host}:{endpoint.port} refused"
        return EndpointError(reason, EndpointFailure.REFUSED)

    detail = getattr(error, "strerror", None) or error.__class__.__name__
    failure = EndpointFailure.NETWORK if stage is _Stage.CONNECT else EndpointFailure.CLOSED
    return EndpointError(f"the connection failed ({detail})", failure, http_status=status)


class _Stage(Enum):
    """Step of a request at which it failed."""

    CONNECT = "connect"
    """TCP connection and, for https, the TLS handshake."""
    SEND = "send"
    REPLY = "reply"
    """From the sent request to the end of the body."""


def _timeout_reason(stage: _Stage, status: int | None, timeout: float, scheme: str) -> str:
    """Return what timed out, as a phrase that names the timeout."""
    if stage is _Stage.CONNECT:
        handshake = " and TLS handshake" if scheme == "https" else ""
        return f"the connection{handshake} did not complete within {timeout:g} s"
    if stage is _Stage.SEND:
        return f"sending the request took longer than {timeout:g} s"
    if status is None:
        return f"the request was sent, but no reply came within {timeout:g} s"
    return (
        f"the body of the HTTP {status} reply did not arrive in time "
        f"({timeout:g} s per read, {3 * timeout:g} s in all)"
    )


def _read_body(response: http.client.HTTPResponse, deadline: float) -> tuple[bytes, bool]:
    """Read the body up to ``MAX_BODY_BYTES`` and before ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY_BYTES:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = response.read1(65536)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:MAX_BODY_BYTES], True
