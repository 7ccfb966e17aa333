"""SMTP sink on 127.0.0.1: accepts every message without AUTH or TLS, counts and drops it.

Dovecot's submission service relays each accepted message to its ``submission_relay_host``
at once, and it ends the client's session when nothing listens there. In the lab the sink
is that host.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

ACCEPTED = "250 2.0.0 Ok: queued by the smtpdiag lab sink"


class _CountingHandler:
    """aiosmtpd handler that counts each message at the end of DATA and wakes waiters."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.changed:
            self.count += 1
            self.changed.notify_all()
        logger.debug(
            "lab sink accepted a message from %s for %d recipients",
            envelope.mail_from,
            len(envelope.rcpt_tos),
        )
        return ACCEPTED


class _SinkController(Controller):
    """Controller that binds port 0 and records the port it got."""

    def __init__(self, handler: _CountingHandler) -> None:
        super().__init__(handler, hostname=LOOPBACK, port=0, server_hostname="localhost")
        self.bound_port = 0

    def _trigger_server(self) -> None:
        # aiosmtpd connects to ``self.port`` to check readiness; with port 0 that is the
        # bound port, which is known only now.
        if not isinstance(self.server, asyncio.Server):
            raise RuntimeError("aiosmtpd controller checked readiness before it bound a port")
        self.bound_port = self.server.sockets[0].getsockname()[1]
        self.port = self.bound_port
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SinkServer:
    """SMTP sink on 127.0.0.1 and a free port, served by a background thread.

    Use as a context manager, or call ``start`` and ``stop``.
    """

    def __init__(self) -> None:
        self._handler = _CountingHandler()
        # Created by ``start``, because aiosmtpd's controller opens an event loop at once.
        self._controller: _SinkController | None = None
        self._port = 0

    @property
    def port(self) -> int:
        """Port the sink listens on; 0 before ``start``."""
        return self._port

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` of the sink."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def message_count(self) -> int:
        """Messages accepted (``250`` after DATA) since the sink started."""
        with self._handler.changed:
            return self._handler.count

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until ``count`` messages arrived; True when they did."""
        with self._handler.changed:
            return self._handler.changed.wait_for(
                lambda: self._handler.count >= count, timeout=timeout
            )

    def start(self) -> None:
        """Bind a free port and start serving."""
        controller = _SinkController(self._handler)
        controller.start()
        self._controller = controller
        self._port = controller.bound_port
        logger.info("lab sink started on %s", self.address)

    def stop(self) -> None:
        """Stop serving and close the listening socket; idempotent."""
        controller = self._controller
        if controller is None:
            return
        self._controller = None
        controller.stop()
        logger.info("lab sink on %s stopped after %d messages", self.address, self.message_count)

    def __enter__(self) -> SinkServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
