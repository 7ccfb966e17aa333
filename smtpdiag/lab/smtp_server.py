"""Submission server of the lab: aiosmtpd on 127.0.0.1 with STARTTLS or implicit TLS.

The server accepts the lab user with the lab access token, or with an access token that the
lab token endpoint issued, through XOAUTH2, OAUTHBEARER, PLAIN and LOGIN (the token as
password). It rejects a wrong token as the providers do: a ``334`` challenge that carries a
base64 JSON error, then ``535`` after the client's next line. ``ServerOptions`` can make it
reject every token, change or drop the challenge, change the final reply, limit the length
of the AUTH command line, and check the audience and user of issued JWT access tokens as
Exchange Online does. Accepted messages are counted and discarded. The 220 greeting ends
with the lab time as an RFC 5322 date, as some servers' banners do.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import ssl
from base64 import b64decode
from collections import defaultdict
from collections.abc import Callable
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import (
    MISSING,
    SMTP,
    AuthResult,
    Envelope,
    Session,
    TLSSetupException,
    syntax,
)

from smtpdiag.lab.bearer_auth import (
    KVSEP,
    BearerResponse,
    MalformedResponseError,
    error_challenge,
    parse_oauthbearer,
    parse_xoauth2,
)
from smtpdiag.lab.certs import CertificateFiles
from smtpdiag.lab.lab_account import (
    AUTH_ACCEPTED,
    LabAccount,
    PasswordAuthenticator,
    token_accepted,
)
from smtpdiag.lab.lab_clock import LabClock
from smtpdiag.lab.options import AUTH_BUFFER_OCTETS, SUPPORTED_MECHANISMS, ServerOptions

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
SERVER_NAME = "localhost"
IDENT = "ESMTP smtpdiag lab"
"""Greeting text after the server name; the greeting adds ``; `` and the lab time."""

# Google's reply after a rejected XOAUTH2 token, as seen in Gmail transcripts.
XOAUTH2_REJECTED = "535 5.7.8 Username and Password not accepted"
# RFC 7628 section 4.4 fails OAUTHBEARER with 535 5.7.1 after the error challenge.
OAUTHBEARER_REJECTED = "535 5.7.1 Bearer token not accepted"
AUTH_REQUIRED = "530 5.7.0 Authentication required"
# Dovecot's reply to an over-long command line; RFC 4954 section 4 gives 500 5.5.6 for an
# over-long line inside the AUTH exchange.
AUTH_LINE_TOO_LONG = "500 5.5.2 Line too long"
AUTH_EXCHANGE_LINE_TOO_LONG = "500 5.5.6 Authentication Exchange line is too long"
STARTTLS_UNSUPPORTED = "502 5.5.1 STARTTLS not supported"
# Status that ``handle_exception`` must return; aiosmtpd 1.4.6 drops it for a failed STARTTLS
# handshake and closes the connection instead.
STARTTLS_HANDSHAKE_FAILED = "454 4.7.0 TLS handshake failed"

# Extensions that aiosmtpd handles but does not advertise.
_EXTRA_EXTENSIONS = ("PIPELINING", "ENHANCEDSTATUSCODES")


class _DropLoginDataWarning(logging.Filter):
    """Drop the deprecation warning that aiosmtpd 1.4.6 logs on every successful AUTH.

    aiosmtpd's own AUTH code sets the deprecated ``Session.login_data``, so the warning is not
    about the lab, and it would print a line per login on stderr.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Session.login_data is deprecated")


_AIOSMTPD_LOGGER = logging.getLogger("mail.log")
_LOGIN_DATA_FILTER = _DropLoginDataWarning()


def greeting_text(clock: LabClock) -> str:
    """Return the text of the 220 greeting after the server name, dated by ``clock``.

    For example ``ESMTP smtpdiag lab; Fri, 04 Dec 2026 10:00:00 +0000``: the date is in
    RFC 5322 form, in UTC, without fractions of a second.
    """
    return f"{IDENT}; {format_datetime(clock.now())}"


def build_ehlo_lines(lines: list[str], mechanisms: tuple[str, ...]) -> list[str]:
    """Rewrite aiosmtpd's EHLO reply: add PIPELINING and ENHANCEDSTATUSCODES, order AUTH.

    ``lines`` are the reply lines that aiosmtpd built (``250-domain`` ... ``250 HELP``);
    an AUTH line is kept only where aiosmtpd wrote one, which it does once TLS is up.
    """
    keywords = [line[4:] for line in lines[1:]]
    rewritten: list[str] = []
    for keyword in keywords:
        if keyword.startswith("AUTH"):
            if mechanisms:
                rewritten.append("AUTH " + " ".join(mechanisms))
            continue
        rewritten.append(keyword)
        if keyword.startswith("SIZE"):
            rewritten.extend(_EXTRA_EXTENSIONS)
    replies = [lines[0][4:], *rewritten]
    return [f"250-{text}" for text in replies[:-1]] + [f"250 {replies[-1]}"]


class SinkHandler:
    """aiosmtpd handler: shapes EHLO, requires AUTH before MAIL and counts accepted messages."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.messages_received = 0
        """Messages accepted since the server started; written by the server thread only."""

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Record the client's name and return the lab's EHLO reply."""
        # aiosmtpd leaves this assignment to the hook when a hook exists.
        session.host_name = hostname
        return build_ehlo_lines(responses, self.options.auth_mechanisms)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        """Reject MAIL before a successful AUTH, as a submission server does."""
        if not session.authenticated:
            return AUTH_REQUIRED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Count and discard the message, or send the scenario's refusal."""
        if self.options.data_reply is not None:
            return self.options.data_reply
        self.messages_received += 1
        return "250 2.0.0 OK: discarded by the lab"


class LabSMTP(SMTP):
    """aiosmtpd's SMTP with the lab's greeting, STARTTLS, line limits and bearer mechanisms."""

    # aiosmtpd sizes the stream reader of a connection from this class attribute, so lines of
    # an AUTH exchange up to the RFC 4954 buffer size can be read at all. __init__ puts
    # aiosmtpd's own limit back for DATA.
    line_length_limit = AUTH_BUFFER_OCTETS

    def __init__(
        self, handler: SinkHandler, *, options: ServerOptions, account: LabAccount, **kwargs: Any
    ) -> None:
        super().__init__(handler, **kwargs)
        self.options = options
        self.account = account

        # aiosmtpd 1.4.6 compares each DATA line with this attribute: 1001 octets, RFC 5321
        # section 4.5.3.1.6. Longer command lines still get aiosmtpd's 500 reply, because the
        # command limits below stay at 512 octets for every command but AUTH.
        self.line_length_limit = SMTP.line_length_limit

        # aiosmtpd's command limits are one dict shared by every SMTP instance. This
        # connection gets its own, in which AUTH lines reach smtp_AUTH, which applies
        # ``max_auth_line_length`` and its own reply.
        self.command_size_limits = defaultdict(
            lambda: SMTP.command_size_limit, {"AUTH": AUTH_BUFFER_OCTETS}
        )

    async def _handle_client(self) -> None:
        # aiosmtpd 1.4.6 writes the 220 banner in this private method and offers no hook
        # for another greeting, so the method is overridden.
        if self.options.greeting_reply is None:
            await super()._handle_client()
            return
        # A server that refuses service greets with 421 and closes (RFC 5321 section 3.1).
        await self.push(self.options.greeting_reply)
        if self.transport is not None:
            self.transport.close()

    async def smtp_STARTTLS(self, arg: str) -> None:
        """Start TLS, reply 502 on a server that does not offer STARTTLS, or send the
        scenario's ``starttls_reply``."""
        if self.tls_context is None:
            await self.push(STARTTLS_UNSUPPORTED)
            return
        if self.options.starttls_reply is not None:
            # RFC 3207 section 4: 454 means TLS is not available for a temporary reason, and
            # the client stays on the plain connection.
            await self.push(self.options.starttls_reply)
            return
        await super().smtp_STARTTLS(arg)

    async def handle_exception(self, error: Exception) -> str:
        """Log a failed STARTTLS handshake in one line; leave other errors to aiosmtpd.

        In the TLS scenarios a client that rejects the lab's certificate aborts the handshake,
        which is the expected outcome, so it gets no traceback. aiosmtpd closes the connection
        after a ``TLSSetupException`` and sends no reply.
        """
        if not isinstance(error, TLSSetupException):
            return await super().handle_exception(error)
        cause = error.__cause__
        logger.info(
            "%s: TLS handshake after STARTTLS failed: %s",
            self._peer(),
            f"{type(cause).__name__}: {cause}" if cause is not None else "no cause given",
        )
        return STARTTLS_HANDSHAKE_FAILED

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:
        """Reply ``500 5.5.2`` to an AUTH line over ``max_auth_line_length``, else authenticate."""
        # aiosmtpd passes the arguments without the command word and the outer blanks, so
        # the length is counted as if the client sent one space and CRLF.
        line_octets = len("AUTH ") + len(arg or "") + len("\r\n")
        if line_octets > self.options.max_auth_line_length:
            logger.info(
                "%s: AUTH line of %d octets is over the limit of %d",
                self._peer(),
                line_octets,
                self.options.max_auth_line_length,
            )
            await self.push(AUTH_LINE_TOO_LONG)
            return
        await super().smtp_AUTH(arg)

    async def auth_XOAUTH2(self, _: object, args: list[str]) -> AuthResult:
        """Authenticate with a Google or Microsoft XOAUTH2 response."""
        return await self._authenticate_bearer("XOAUTH2", args, parse_xoauth2, XOAUTH2_REJECTED)

    async def auth_OAUTHBEARER(self, _: object, args: list[str]) -> AuthResult:
        """Authenticate with an RFC 7628 OAUTHBEARER response."""
        return await self._authenticate_bearer(
            "OAUTHBEARER", args, parse_oauthbearer, OAUTHBEARER_REJECTED
        )

    async def _authenticate_bearer(
        self,
        mechanism: str,
        args: list[str],
        parse: Callable[[bytes], BearerResponse],
        default_rejection: str,
    ) -> AuthResult:
        payload = await self._read_client_response(args)
        if payload is None:
            return AuthResult(success=False, handled=True)
        try:
            response = parse(payload)
        except MalformedResponseError as error:
            logger.info("%s: invalid %s response: %s", self._peer(), mechanism, error)
            await self.push(f"501 5.5.2 {error}")
            return AuthResult(success=False, handled=True)
        if token_accepted(self.options, self.account, response.user, response.token):
            return AuthResult(success=True, message=AUTH_ACCEPTED, auth_data=response.user)
        logger.info("%s: %s token rejected for user %s", self._peer(), mechanism, response.user)
        return await self._reject_bearer(mechanism, default_rejection)

    async def _reject_bearer(self, mechanism: str, default_rejection: str) -> AuthResult:
        """Send the error challenge, if any, and return the final reply."""
        rejection = self.options.rejection_reply or default_rejection
        challenge = error_challenge(
            self.options.error_challenge, mechanism, self.options.oauth_scope
        )
        if challenge is None:
            return AuthResult(success=False, handled=False, message=rejection)

        # RFC 7628 section 3.2.3 sends the error in a challenge. The client's next line ends
        # the exchange: 0x01 for OAUTHBEARER, an empty line from Gmail's XOAUTH2 clients.
        response = await self._challenge(challenge)
        if response is None:
            return AuthResult(success=False, handled=True)
        if response not in (b"", KVSEP.encode()):
            logger.info(
                "%s: client response to the error challenge has %d octets, expected none or 0x01",
                self._peer(),
                len(response),
            )
        return AuthResult(success=False, handled=False, message=rejection)

    async def _read_client_response(self, args: list[str]) -> bytes | None:
        """Return the decoded initial response, or ask for it with an empty ``334``.

        Returns None, after sending the error reply, when the client aborted or sent invalid
        base64.
        """
        if len(args) == 1:
            return await self._challenge(b"")
        # RFC 4954 section 4: "=" is a zero-length initial response.
        if args[1] == "=":
            return b""
        try:
            return b64decode(args[1], validate=True)
        except binascii.Error:
            logger.info("%s: AUTH initial response is not valid base64", self._peer())
            await self.push("501 5.5.2 Cannot decode base64")
            return None

    async def _challenge(self, challenge: bytes) -> bytes | None:
        """Send ``334`` with ``challenge`` in base64; return the decoded client line.

        Returns None, after sending the error reply, when the client aborted, sent invalid
        base64 or a line longer than the stream reader's limit.
        """
        try:
            answer = await self.challenge_auth(challenge)
        except ValueError:
            # asyncio's readline raises ValueError for a line over the reader's limit.
            # NOTE: when the line has not fully arrived yet, its rest is read as a command.
            logger.info("%s: AUTH exchange line is over the limit", self._peer())
            await self.push(AUTH_EXCHANGE_LINE_TOO_LONG)
            return None
        return None if answer is MISSING else bytes(answer)

    def _peer(self) -> str:
        """Return the client's address for log lines."""
        peer = self.session.peer if self.session is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


class LabServer:
    """One lab submission server on 127.0.0.1 and a free port, run in a background thread.

    Use as a context manager, or call ``start`` and ``stop``.
    """

    def __init__(
        self,
        options: ServerOptions,
        account: LabAccount,
        certificates: CertificateFiles,
        *,
        implicit_tls: bool,
        clock: LabClock | None = None,
    ) -> None:
        self.options = options
        self.implicit_tls = implicit_tls
        self.handler = SinkHandler(options)
        self._controller = _LabController(
            self.handler,
            options,
            account,
            server_tls_context(certificates),
            implicit_tls,
            clock or LabClock(),
        )

    @property
    def host(self) -> str:
        """Address the server listens on."""
        return LOOPBACK

    @property
    def port(self) -> int:
        """Port the server listens on; 0 before ``start``."""
        return self._controller.bound_port

    @property
    def address(self) -> str:
        """``HOST:PORT`` of the server."""
        return f"{self.host}:{self.port}"

    @property
    def messages_received(self) -> int:
        """Messages accepted since the server started."""
        return self.handler.messages_received

    def start(self) -> None:
        """Bind a free port and start serving."""
        # addFilter ignores a filter that is already installed.
        _AIOSMTPD_LOGGER.addFilter(_LOGIN_DATA_FILTER)
        self._controller.start()
        logger.info(
            "lab server started on %s (%s)",
            self.address,
            "implicit TLS" if self.implicit_tls else "STARTTLS",
        )

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        address = self.address
        self._controller.stop()
        logger.info("lab server on %s stopped", address)

    def __enter__(self) -> LabServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class _LabController(Controller):
    """Controller that binds port 0 on 127.0.0.1 and builds ``LabSMTP`` servers."""

    def __init__(
        self,
        handler: SinkHandler,
        options: ServerOptions,
        account: LabAccount,
        tls_context: ssl.SSLContext,
        implicit_tls: bool,
        clock: LabClock,
    ) -> None:
        # Every mechanism that is not advertised is also refused (504).
        excluded = [name for name in SUPPORTED_MECHANISMS if name not in options.auth_mechanisms]
        offers_starttls = options.offer_starttls and not implicit_tls
        super().__init__(
            handler,
            hostname=LOOPBACK,
            port=0,
            ssl_context=tls_context if implicit_tls else None,
            server_hostname=SERVER_NAME,
            ident=IDENT,
            tls_context=tls_context if offers_starttls else None,
            # On the implicit TLS port every connection is encrypted, but aiosmtpd only
            # detects TLS started with STARTTLS, so its own TLS requirement is lifted.
            auth_require_tls=not implicit_tls,
            auth_exclude_mechanism=excluded,
            authenticator=PasswordAuthenticator(account, options),
        )
        self._options = options
        self._account = account
        self._clock = clock
        self.bound_port = 0

    def factory(self) -> LabSMTP:
        """Build the protocol object of one connection, whose greeting carries the lab time.

        aiosmtpd calls this when it accepts a connection, just before the greeting.
        """
        arguments = {**self.SMTP_kwargs, "ident": greeting_text(self._clock)}
        return LabSMTP(self.handler, options=self._options, account=self._account, **arguments)

    def _trigger_server(self) -> None:
        # aiosmtpd connects to ``self.port`` to check readiness; with port 0 that is the
        # bound port, which is known only now.
        if not isinstance(self.server, asyncio.Server):
            raise RuntimeError("aiosmtpd controller checked readiness before it bound a port")
        self.bound_port = self.server.sockets[0].getsockname()[1]
        self.port = self.bound_port
        super()._trigger_server()  # type: ignore[no-untyped-call]


def server_tls_context(certificates: CertificateFiles) -> ssl.SSLContext:
    """Return the server context; with a fallback leaf it serves the normal leaf by SNI only."""
    named = _context_for(certificates.chain_file, certificates.key_file)
    if certificates.fallback_chain_file is None or certificates.fallback_key_file is None:
        return named
    fallback = _context_for(certificates.fallback_chain_file, certificates.fallback_key_file)
    sni_names = {name.lower() for name in certificates.sni_names}

    def select_certificate(
        connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        # Called during the handshake with the client's SNI name, or None without SNI.
        # Returning None lets the handshake go on with whatever context is set now.
        if server_name is not None and server_name.lower() in sni_names:
            connection.context = named

    fallback.sni_callback = select_certificate
    return fallback


def _context_for(chain_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(chain_file, key_file)
    return context
