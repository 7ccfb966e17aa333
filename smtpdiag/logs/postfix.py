"""Postfix's smtp client and smtpd server lines about SASL AUTH.

Client side (``postfix/smtp``, ``postfix/relay/smtp``, bare ``smtp``), as ``smtp_sasl_proto.c``
and ``smtp_proto.c`` of Postfix 3.x write them::

    9BDCBA19EA: SASL authentication failed; server smtp.example.com[192.0.2.50] said: 535 ...
    9BDCBA19EA: to=<a@example.net>, relay=relay.example.com[192.0.2.50]:587, delay=0.4,
        delays=0.1/0/0.2/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4F3A21)

The ``maillog_file`` of Postfix 3.7 (written by ``postlogd``) has the syslog layout with a
zero-padded day, ``Dec 05 06:29:28 mail postfix/smtp[9730]: ...``. When a relay with one
address rejected AUTH, Postfix 3.7.11 logged no standalone ``SASL authentication failed`` line,
so the delivery line alone, ``status=deferred (SASL authentication failed; server
127.0.0.1[127.0.0.1] said: 535 5.7.8 ...)``, is the failed attempt with the reply's reason.

Only deliveries to a submission relay count: a relay address with a port other than 25 (and
other than content filter ports), never local transports such as ``relay=local`` or LMTP.

Server side (``postfix/smtpd``, ``postfix/submission/smtpd``, ...)::

    warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: authentication failure
    4F3A21: client=unknown[192.0.2.7], sasl_method=XOAUTH2, sasl_username=user@example.com

Counting rules, which make one attempt of one delivery one event:

* One delivery to several recipients logs one line per recipient. The parser remembers the
  last ``MEMORY_SIZE`` (pid, queue id, relay, status) groups and counts the first line of a
  group; a line of the same group within ``GROUP_SECONDS`` adds nothing. Postfix retries a
  deferred message at the earliest after ``minimal_backoff_time`` (300 s by default), so a
  retry by the same process is counted again.
* Postfix logs ``QUEUEID: SASL authentication failed; ...`` on its own line when it gives up
  on one server address and tries the next, and puts the failure of the last address into the
  delivery line's status. When the delivery line carries the same reason and the same server
  address as the remembered standalone line of the same pid and queue id, that delivery line
  is an ``Outcome.DELIVERY`` event (the fate of the message) and not a second failure; a
  failure at another address is another attempt.
* ``disconnect from ... auth=0/1`` summaries repeat the ``warning:`` and ``client=`` lines
  and give no event; like every other line of a Postfix program, they are attributed to
  Postfix.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from functools import lru_cache
from typing import TypeVar

from smtpdiag.logs import sasl_xoauth2
from smtpdiag.logs.classify import reply_reason, split_reply, tls_reason
from smtpdiag.logs.model import (
    Fate,
    LineResult,
    LogEvent,
    Outcome,
    Side,
    Source,
    SyslogRecord,
)

MEMORY_SIZE = 1024
"""Number of recent delivery groups and standalone failures the parser remembers."""

GROUP_SECONDS = 60.0
"""Lines of one (pid, queue id, relay, status) group this close in time are one delivery."""

EXCLUDED_PORTS = frozenset({24, 25, 10024, 10026})
"""Relay ports that are not submission: LMTP (24), SMTP relay to an MX (25), and the amavis
content filter ports (10024, 10026) that Postfix reaches through its smtp client.

NOTE: other content filters on their own ports still count as submission relays."""

_RESULT = LineResult(source=Source.POSTFIX)
_K = TypeVar("_K")
_V = TypeVar("_V")

# Short queue ids are upper-case hex; long ones (enable_long_queue_ids) use a vowel-free
# alphabet, so words such as "warning" never match.
_QUEUE_ID = re.compile(r"([0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}): ")
_SERVER_SAID = re.compile(
    r"server (?P<name>[^\s\[]+)(?:\[(?P<address>[^\]]*)\])? said: (?P<reply>.*)"
)
_SERVER_ADDRESS = re.compile(r"server [^\s\[]+\[([^\]]*)\]")
_CANNOT_AUTHENTICATE = re.compile(
    r"cannot authenticate to server (?P<name>[^\s\[]+)(?:\[(?P<address>[^\]]*)\])?: (?P<text>.*)"
)
_HOST_SAID = re.compile(
    r"host (?P<name>[^\s\[]+)\[(?P<address>[^\]]*)\] said: (?P<reply>.*?)"
    r"(?: \(in reply to (?P<command>.+?) command\))?$"
)
_RELAY = re.compile(r"(?P<name>[^\s\[]+)\[(?P<address>[^\]]*)\]:(?P<port>\d+)$")
_CONNECT_TO = re.compile(r"connect to (?P<name>[^\s\[]+)\[(?P<address>[^\]]*)\]:(?P<port>\d+)")
_PIPE_ERROR = re.compile(r"[Pp]ipe command reported error (?P<exit_code>\d+)")
_IN_REPLY_TO = re.compile(r" \(in reply to .+? command\)$")
_SERVER_FAILURE = re.compile(
    r"warning: (?P<name>[^\s\[]*)\[(?P<address>[^\]]*)\]: SASL (?P<mechanism>[\w-]+) "
    r"authentication (?P<verb>failed|aborted)(?::? ?(?P<reason>.*))?$"
)
_SASL_METHOD = re.compile(
    r"client=(?P<name>[^\s\[]*)\[(?P<address>[^\]]*)\].*?, sasl_method=(?P<mechanism>[\w-]+)"
)

_NO_REPLY_MARKS = (
    "connect to ",
    "lost connection",
    "timed out",
    "Connection refused",
    "Network is unreachable",
    "No route to host",
    "Connection reset",
)
_AUTH_ONLY_REASONS = frozenset({"auth.local_error", "auth.temporary_failure"})
"""Kinds that mean an AUTH problem only in reply to AUTH: a 451 or 454 to RCPT or DATA
is greylisting or a full disk, and the session got past AUTH."""
_NOT_AUTH_REASONS = frozenset({"auth.unclassified", "auth.accepted"})


@lru_cache(maxsize=256)
def is_postfix(program: str) -> bool:
    """Return whether a syslog program name is a Postfix smtp client or smtpd server.

    Matches ``smtp``, ``smtpd`` and any ``postfix*/.../smtp`` or ``postfix*/.../smtpd``, such
    as ``postfix/relay/smtp``, ``postfix/submission/smtpd`` and ``postfix-incoming/smtpd``.
    """
    if program in ("smtp", "smtpd"):
        return True
    return program.startswith("postfix") and program.endswith(("/smtp", "/smtpd"))


@lru_cache(maxsize=256)
def is_postfix_program(program: str) -> bool:
    """Return whether a syslog program name is any Postfix program: ``postfix``, or a name
    starting with ``postfix`` and containing ``/``.

    Matches the tags that Postfix 3.7 writes to syslog and to ``maillog_file``, such as
    ``postfix/qmgr``, ``postfix/postfix-script``, ``postfix/master`` and ``postfix/postlogd``,
    and those of other instances (``postfix-out/cleanup``).
    """
    return program == "postfix" or (program.startswith("postfix") and "/" in program)


def _is_server(program: str) -> bool:
    return program.endswith("smtpd")


_FATES = {"sent": Fate.SENT, "deferred": Fate.DEFERRED, "bounced": Fate.BOUNCED}


@lru_cache(maxsize=1024)
def _submission_relay(relay: str) -> str | None:
    """Return the host name of a ``relay=`` value that is a submission relay, else None."""
    found = _RELAY.match(relay)
    if found is None or int(found["port"]) in EXCLUDED_PORTS:
        return None
    return found["name"]


class PostfixParser:
    """Reads Postfix smtp and smtpd lines; one instance per analysis, because it remembers
    recent deliveries to count each delivery once (see the module docstring)."""

    def __init__(self) -> None:
        self._groups: OrderedDict[tuple[int | None, str, str, str], float | None] = OrderedDict()
        self._standalone: OrderedDict[tuple[int | None, str], str] = OrderedDict()

    def parse(self, record: SyslogRecord) -> LineResult:
        """Return the events of one Postfix line, whose program ``is_postfix`` accepted."""
        message = record.message
        if message.startswith("sasl-xoauth2: "):
            return sasl_xoauth2.parse(record)
        if _is_server(record.program or ""):
            return self._parse_server(record, message)

        queue_id = ""
        found = _QUEUE_ID.match(message)
        if found is not None:
            queue_id = found[1]
            message = message[found.end() :]
        if message.startswith(("SASL authentication failed; ", "SASL [CACHED] authentication")):
            return self._parse_standalone(record, queue_id, message)
        if message.startswith("to=<") and "status=" in message:
            return self._parse_delivery(record, queue_id, message)
        if message.startswith("sasl-xoauth2: "):
            return sasl_xoauth2.parse(record)
        return _RESULT

    # Client side -------------------------------------------------------------------------

    def _parse_standalone(self, record: SyslogRecord, queue_id: str, message: str) -> LineResult:
        event = _sasl_failure(message, record.timestamp, None)
        if event is None:
            return LineResult(source=Source.POSTFIX, parse_error=True)
        if queue_id:
            _remember(self._standalone, (record.pid, queue_id), _session_mark(event, message))
        return LineResult((event,), Source.POSTFIX)

    def _parse_delivery(self, record: SyslogRecord, queue_id: str, message: str) -> LineResult:
        fields = _delivery_fields(message)
        if fields is None:
            return _RESULT
        relay, status, text = fields
        fate = _FATES.get(status)
        if fate is None:
            return _RESULT
        event = _delivery_event(relay, fate, text, record.timestamp)
        if event is None:
            return _RESULT

        if self._seen_group((record.pid, queue_id, relay, status), record.timestamp):
            return _RESULT
        if event.outcome is Outcome.FAILURE and queue_id:
            counted = self._standalone.pop((record.pid, queue_id), None)
            if counted is not None and counted == _session_mark(event, text):
                event = _as_delivery(event)
        return LineResult((event,), Source.POSTFIX)

    def _seen_group(self, key: tuple[int | None, str, str, str], timestamp: float | None) -> bool:
        """Record a delivery group; return whether an earlier line of it was counted."""
        last = self._groups.get(key, -1.0)
        _remember(self._groups, key, timestamp)
        if last == -1.0:
            return False
        if last is None or timestamp is None:
            return True
        return abs(timestamp - last) <= GROUP_SECONDS

    # Server side -------------------------------------------------------------------------

    def _parse_server(self, record: SyslogRecord, message: str) -> LineResult:
        if message.startswith("warning: ") and "SASL" in message:
            return _server_failure(record, message)
        if "sasl_method=" in message:
            found = _SASL_METHOD.search(message)
            if found is None:
                return LineResult(source=Source.POSTFIX, parse_error=True)
            event = LogEvent(
                Source.POSTFIX,
                Side.SERVER,
                Outcome.SUCCESS,
                timestamp=record.timestamp,
                host=found["address"],
                mechanism=found["mechanism"].upper(),
            )
            return LineResult((event,), Source.POSTFIX)
        return _RESULT


def _remember(memory: OrderedDict[_K, _V], key: _K, value: _V) -> None:
    memory[key] = value
    memory.move_to_end(key)
    if len(memory) > MEMORY_SIZE:
        memory.popitem(last=False)


def _delivery_fields(message: str) -> tuple[str, str, str] | None:
    """Split a delivery line into relay, status and the status text in brackets."""
    relay_at = message.find(", relay=")
    status_at = message.find(", status=", relay_at)
    if relay_at < 0 or status_at < 0:
        return None
    relay = message[relay_at + 8 : message.find(",", relay_at + 8)]
    rest = message[status_at + 9 :]
    status, _, text = rest.partition(" ")
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    return relay, status, text


def _delivery_event(relay: str, fate: Fate, text: str, timestamp: float | None) -> LogEvent | None:
    """Return the event of a delivery to a submission relay; None for other relays."""
    if relay == "none":
        return _unconnected_event(fate, text, timestamp)
    host = _submission_relay(relay)
    if host is None:
        return None
    if fate is Fate.SENT:
        return LogEvent(Source.POSTFIX, Side.CLIENT, Outcome.SUCCESS, timestamp, host, fate=fate)
    if text.startswith(("SASL authentication failed; ", "SASL [CACHED] authentication")):
        return _sasl_failure(text, timestamp, fate)
    said = _HOST_SAID.match(text)
    if said is not None:
        return _reply_event(said, fate, timestamp)
    return _no_reply_event(host, fate, text, timestamp)


def _unconnected_event(fate: Fate, text: str, timestamp: float | None) -> LogEvent | None:
    """Return the failure of a delivery that never connected (``relay=none``)."""
    found = _CONNECT_TO.search(text)
    if found is None or int(found["port"]) in EXCLUDED_PORTS:
        return None
    outcome = Outcome.FAILURE
    if text.startswith("delivery temporarily suspended"):
        # The queue manager skipped a destination that failed before: no connection was tried.
        outcome = Outcome.DELIVERY
    return _client_failure(
        timestamp,
        found["name"],
        "auth_failure_rate.connection_failed",
        fate,
        text,
        outcome=outcome,
    )


def _reply_event(said: re.Match[str], fate: Fate, timestamp: float | None) -> LogEvent:
    """Return the event of a delivery that a server reply ended."""
    host = said["name"]
    reply = said["reply"]
    parts = split_reply(reply)
    code, enhanced, text = parts if parts is not None else (None, None, reply)
    pipe = _PIPE_ERROR.search(reply)
    if pipe is not None:
        # msmtpd replies 451 for a temporary exit status of msmtp: the message stays queued.
        temporary = code is not None and 400 <= code < 500
        reason: str | None = (
            "auth_failure_rate.pipe_command_deferred"
            if temporary
            else "auth_failure_rate.pipe_command_failed"
        )
    elif code is None:
        reason = None
    else:
        reason = reply_reason(code, enhanced, text, host)
        command = said["command"] or ""
        if reason in _AUTH_ONLY_REASONS and not command.startswith("AUTH"):
            reason = None
    if reason is None or reason in _NOT_AUTH_REASONS:
        # The reply is not about AUTH: the session got past AUTH.
        return LogEvent(Source.POSTFIX, Side.CLIENT, Outcome.SUCCESS, timestamp, host, fate=fate)
    return _client_failure(timestamp, host, reason, fate, reply, code, enhanced)


def _no_reply_event(host: str, fate: Fate, text: str, timestamp: float | None) -> LogEvent:
    """Return the failure of a delivery that ended without a server reply."""
    reason = tls_reason(text) if "TLS" in text or "certificate" in text else None
    if reason is None:
        if any(mark in text for mark in _NO_REPLY_MARKS):
            reason = "auth_failure_rate.connection_failed"
        else:
            reason = "auth_failure_rate.submission_failed"
    return _client_failure(timestamp, host, reason, fate, text)


def _sasl_failure(text: str, timestamp: float | None, fate: Fate | None) -> LogEvent | None:
    """Return the failure that a ``SASL authentication failed; ...`` text describes."""
    said = _SERVER_SAID.search(text)
    if said is not None:
        host = said["name"]
        reply = _IN_REPLY_TO.sub("", said["reply"])
        parts = split_reply(reply)
        if parts is None:
            return None
        code, enhanced, reply_body = parts
        reason = reply_reason(code, enhanced, reply_body, host) or "auth.unclassified"
        return _client_failure(timestamp, host, reason, fate, reply, code, enhanced)

    local = _CANNOT_AUTHENTICATE.search(text)
    if local is None:
        return None
    sasl_text = local["text"]
    reason = "auth_failure_rate.local_sasl_failure"
    if "no mechanism available" in sasl_text:
        reason = "auth_failure_rate.no_sasl_mechanism"
    # reply_text contains the Cyrus SASL library's message because the server sent no reply.
    return _client_failure(timestamp, local["name"], reason, fate, sasl_text)


def _client_failure(
    timestamp: float | None,
    host: str | None,
    reason: str,
    fate: Fate | None,
    reply_text: str,
    reply_code: int | None = None,
    enhanced_code: str | None = None,
    *,
    outcome: Outcome = Outcome.FAILURE,
) -> LogEvent:
    """Return a failure that Postfix's SMTP client logged; ``reply_text`` is the server's
    reply, or Postfix's own text when there was none."""
    return LogEvent(
        Source.POSTFIX,
        Side.CLIENT,
        outcome,
        timestamp,
        host,
        reason=reason,
        reply_code=reply_code,
        enhanced_code=enhanced_code,
        reply_text=reply_text,
        fate=fate,
    )


def _session_mark(event: LogEvent, text: str) -> str:
    """Return the key that separates failed AUTH sessions: the reason and the server address.

    A failure at another address of the same relay is another attempt.
    """
    address = _SERVER_ADDRESS.search(text)
    return f"{event.reason} {address[1] if address is not None else ''}"


def _as_delivery(event: LogEvent) -> LogEvent:
    return LogEvent(
        event.source,
        event.side,
        Outcome.DELIVERY,
        event.timestamp,
        event.host,
        event.reason,
        event.reply_code,
        event.enhanced_code,
        event.reply_text,
        event.mechanism,
        event.fate,
    )


def _server_failure(record: SyslogRecord, message: str) -> LineResult:
    """Return the failure of a client's AUTH that smtpd logged as a warning."""
    found = _SERVER_FAILURE.match(message)
    if found is None:
        return _RESULT
    text = found["reason"] or ""
    if found["verb"] == "aborted":
        reason = "auth_failure_rate.client_aborted"
    elif text.startswith("Connection lost to authentication server"):
        reason = "auth_failure_rate.backend_unavailable"
    else:
        reason = "auth.credentials_rejected"
    event = LogEvent(
        Source.POSTFIX,
        Side.SERVER,
        Outcome.FAILURE,
        record.timestamp,
        found["address"],
        reason=reason,
        reply_text=text or None,
        mechanism=found["mechanism"].upper(),
    )
    return LineResult((event,), Source.POSTFIX)
