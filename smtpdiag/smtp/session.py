"""Command/reply exchange over a ``Channel`` with a redacted transcript."""

from __future__ import annotations

import logging

from smtpdiag.errors import SmtpClosedError, escape_bytes
from smtpdiag.redact import redact
from smtpdiag.smtp.reply import Reply, ReplyReader, describe_partial_reply
from smtpdiag.smtp.transport import Channel

logger = logging.getLogger(__name__)


class SmtpSession:
    """Send commands and read replies; every line goes into ``transcript`` after redaction."""

    def __init__(self, channel: Channel, timeout: float) -> None:
        self.channel = channel
        self.timeout = timeout
        """Seconds to wait for each reply."""
        self.transcript: list[str] = []
        self._reader = ReplyReader(channel.receive)

    def read_reply(self) -> Reply:
        """Read the next reply; raises ``SmtpReplyError``, ``SmtpClosedError``, ``TimeoutError``."""
        self.channel.set_timeout(self.timeout)
        try:
            reply = self._reader.read_reply()
        except (TimeoutError, SmtpClosedError):
            if self._reader.partial:
                self._log(redact(f"S (incomplete): {escape_bytes(self._reader.partial)}"))
            raise
        for line in reply.transcript():
            self._log(redact(line))
        return reply

    def command(self, line: str, *, shown: str | None = None) -> Reply:
        """Send one command and read its reply; ``shown`` replaces the line in the transcript."""
        self._log(redact(f"C: {shown if shown is not None else line}"))
        self.channel.set_timeout(self.timeout)
        self.channel.send(line.encode("utf-8") + b"\r\n")
        return self.read_reply()

    def note(self, text: str) -> None:
        """Add a non-wire event, such as a completed TLS handshake, to the transcript."""
        self._log(redact(f"-- {text}"))

    def _log(self, line: str) -> None:
        self.transcript.append(line)
        logger.debug("%s", line)

    def timeout_text(self) -> str:
        """Describe a read that timed out, with what arrived of the unfinished reply."""
        if not self.partial:
            return f"no reply within {self.timeout:g} s"
        return f"within {self.timeout:g} s only {describe_partial_reply(self.partial)} arrived"

    @property
    def partial(self) -> bytes:
        """Bytes of a reply that is still incomplete, as received."""
        return self._reader.partial

    @property
    def pending(self) -> bytes:
        """Bytes received after the last complete reply."""
        return self._reader.pending

    def reset_reader(self) -> None:
        """Drop buffered plaintext before TLS starts; RFC 3207 §4.2 forbids using pre-TLS data."""
        self._reader = ReplyReader(self.channel.receive)
