"""The seed deployment chain on loopback: Postfix -> msmtpd-style relay -> msmtp -> server.

Mail enters a private Postfix whose relayhost is the lab relay. The relay pipes each message
to the real msmtp, which authenticates with XOAUTH2 after STARTTLS. msmtp's ``passwordeval``
runs a token script that gets an access token from the lab token endpoint with the
refresh-token grant and caches it until shortly before it expires. The submission server
(Dovecot, or the lab's own STARTTLS server) hands accepted mail to a sink.

Exit statuses of msmtp 1.8.23, observed with the real program against the lab:

- 77 (EX_NOPERM) when the server rejects the token with 535; the relay replies
  ``554 Pipe command reported error 77``.
- 78 (EX_CONFIG) when the ``passwordeval`` command exits non-zero; msmtp then writes no line
  to its log file, and the relay replies ``554 Pipe command reported error 78``.
- 75 (EX_TEMPFAIL) when the connection to the server is refused; the relay replies
  ``451 Pipe command reported error 75`` and Postfix defers the message.
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from smtpdiag.lab.files import write_secret
from smtpdiag.lab.msmtp_client import (
    TokenCommandSettings,
    send,
    write_refresh_token_script,
    write_server_msmtprc,
)
from smtpdiag.lab.options import GOOGLE_MAIL_SCOPE, TokenProvider
from smtpdiag.lab.postfix import DeliveryFate, PostfixServer
from smtpdiag.lab.relay import RelayServer, msmtp_command, send_message
from smtpdiag.lab.token_server import TokenServer

logger = logging.getLogger(__name__)

CHAIN_RECIPIENT = "rcpt@example.com"
"""Recipient of every message sent into the chain."""

FATE_TIMEOUT_SECONDS = 60.0
"""Time Postfix gets to log a delivery attempt for every message. One attempt takes well
under a second on loopback; the bound covers msmtp's 30 s timeout toward the server."""

SINK_TIMEOUT_SECONDS = 10.0
"""Time the sink gets to count the delivered messages after Postfix logged them as sent."""

POSTFIX_DIRECTORY = "postfix"
MSMTPRC_NAME = "msmtprc"
MSMTP_LOG_NAME = "msmtp.log"
RELAY_LOG_NAME = "msmtpd.log"
TOKEN_SCRIPT_NAME = "token-command"  # noqa: S105 (a file name)
PRIMING_MSMTPRC_NAME = "msmtprc-priming"
PRIMING_MSMTP_LOG_NAME = "msmtp-priming.log"


class ChainFault(StrEnum):
    """Fault in the chain while the scenario's messages pass through it."""

    NONE = "none"
    """Healthy: every message reaches the sink behind the submission server."""
    REFRESH_REVOKED = "refresh-revoked"
    """The grant is revoked after the token script cached an access token: the server
    rejects the cached token (535), msmtp exits 77, the relay replies 554, Postfix bounces."""
    TOKEN_COMMAND_FAILS = "token-command-fails"  # noqa: S105 (a fault name)
    """The token script exits non-zero because the endpoint rejects the refresh token and no
    cached token exists: msmtp exits 78, the relay replies 554, Postfix bounces."""
    SERVER_DOWN = "server-down"
    """The submission server is stopped: msmtp cannot connect and exits 75, the relay
    replies 451, Postfix defers."""


@dataclass(frozen=True)
class ChainInfo:
    """Addresses and files of a chain run; contains no secret."""

    postfix: str
    """``HOST:PORT`` of Postfix's smtpd, where mail enters."""
    relay: str
    """``HOST:PORT`` of the msmtpd-style relay."""
    submission: str
    """``HOST:PORT`` of the submission server."""
    msmtprc: Path
    token_script: Path
    postfix_config_directory: Path
    postfix_log: Path
    relay_log: Path
    msmtp_log: Path
    dovecot_log: Path | None
    """Log of the submission server; None when it writes no log file (the lab's own server)."""
    messages_sent: int
    """Messages handed to Postfix."""
    delivered: int
    """Messages the sink received while the chain ran, without the priming message."""
    fates: tuple[DeliveryFate, ...] = ()
    """Postfix's delivery attempts, one per message sent."""


class SubmissionPeer(Protocol):
    """A running submission server: DovecotServer and the lab's LabServer fit."""

    @property
    def address(self) -> str:
        """``HOST:PORT`` of its STARTTLS listener."""
        ...

    def stop(self) -> None:
        """Stop the server."""
        ...


class MessageSink(Protocol):
    """The SMTP sink that the submission server relays to: SinkServer fits."""

    @property
    def message_count(self) -> int:
        """Messages accepted so far."""
        ...

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` messages were accepted; True when they were."""
        ...


class ChainError(RuntimeError):
    """The chain did not run as set up: a message was not queued or not logged in time."""


def run_chain(
    stack: ExitStack,
    directory: Path,
    *,
    submission: SubmissionPeer,
    token_server: TokenServer,
    sink: MessageSink,
    user: str,
    ca_file: Path,
    fault: ChainFault,
    messages: int = 3,
    msmtp: str,
    postfix: str,
) -> ChainInfo:
    """Start Postfix and the relay in ``stack``, apply the fault, send ``messages`` messages
    into Postfix, wait until Postfix logged a fate for each, and return where everything is.

    ``directory`` must be searchable by others (mode 0755 and parents alike), because the
    Postfix daemons run as the ``postfix`` user. ``ca_file`` signed both the token endpoint's
    and the submission server's certificates. Raises ``ChainError`` when Postfix does not
    queue a message or does not log its fate in time.
    """
    token_script = _write_token_script(directory, token_server, ca_file, fault)
    password_command = shlex.quote(str(token_script))
    msmtp_log = directory / MSMTP_LOG_NAME
    # msmtp writes no line when its passwordeval command fails, so the file may stay empty.
    msmtp_log.touch()
    msmtprc = write_server_msmtprc(
        directory / MSMTPRC_NAME,
        server=submission.address,
        user=user,
        ca_file=ca_file,
        logfile=msmtp_log,
        password_command=password_command,
    )
    relay = stack.enter_context(
        RelayServer(
            msmtp_command(msmtp, msmtprc),
            directory / RELAY_LOG_NAME,
            # HOME points into the directory, so msmtp reads no file of the user running it.
            environ={**os.environ, "HOME": str(directory)},
        )
    )
    postfix_directory = directory / POSTFIX_DIRECTORY
    postfix_directory.mkdir(exist_ok=True)
    postfix_server = stack.enter_context(PostfixServer(postfix_directory, relay.address, postfix))

    # The priming message of REFRESH_REVOKED reaches the sink before this count, so
    # ``delivered`` counts only the scenario's messages.
    _apply_fault(fault, directory, submission, token_server, user, ca_file, msmtp, password_command)
    delivered_before = sink.message_count
    _send_messages(postfix_server, user, messages)
    if not postfix_server.wait_for_fates(messages, FATE_TIMEOUT_SECONDS):
        raise ChainError(
            f"Postfix logged {len(postfix_server.fates())} of {messages} delivery attempts "
            f"within {FATE_TIMEOUT_SECONDS:g} s; see {postfix_server.log_file}"
        )
    # The relay writes its last lines after its reply; the returned logs must be complete.
    relay.wait_idle()
    if fault is ChainFault.NONE:
        sink.wait_for(delivered_before + messages, SINK_TIMEOUT_SECONDS)
    info = ChainInfo(
        postfix=postfix_server.address,
        relay=relay.address,
        submission=submission.address,
        msmtprc=msmtprc,
        token_script=token_script,
        postfix_config_directory=postfix_server.config_directory,
        postfix_log=postfix_server.log_file,
        relay_log=relay.log_file,
        msmtp_log=msmtp_log,
        dovecot_log=_log_file_of(submission),
        messages_sent=messages,
        delivered=sink.message_count - delivered_before,
        fates=postfix_server.fates(),
    )
    logger.info(
        "chain with fault %s: %d messages sent, %d delivered", fault, messages, info.delivered
    )
    return info


def _write_token_script(
    directory: Path, token_server: TokenServer, ca_file: Path, fault: ChainFault
) -> Path:
    """Write the client's secrets to files of mode 0600 and the token script next to them.

    With ``TOKEN_COMMAND_FAILS`` the refresh token file contains a value the endpoint never
    issued, so the endpoint rejects the grant with ``invalid_grant``.
    """
    # Imported here because the scenarios module imports ChainFault from this one.
    from smtpdiag.lab.scenarios import MICROSOFT_SMTP_SCOPE

    endpoint = token_server.endpoint
    credentials = endpoint.credentials
    refresh_token = credentials.refresh_token.reveal()
    if fault is ChainFault.TOKEN_COMMAND_FAILS:
        refresh_token = "0.lab-unknown-" + secrets.token_urlsafe(48)
    google = endpoint.options.provider is TokenProvider.GOOGLE
    settings = TokenCommandSettings(
        token_url=token_server.token_url,
        ca_file=ca_file,
        scope=GOOGLE_MAIL_SCOPE if google else MICROSOFT_SMTP_SCOPE,
        client_id_file=write_secret(directory / "client-id", credentials.client_id),
        client_secret_file=write_secret(
            directory / "client-secret", credentials.client_secret.reveal()
        ),
        refresh_token_file=write_secret(directory / "refresh-token", refresh_token),
        cache_file=directory / "access-token-cache.json",
    )
    return write_refresh_token_script(directory / TOKEN_SCRIPT_NAME, settings)


def _apply_fault(
    fault: ChainFault,
    directory: Path,
    submission: SubmissionPeer,
    token_server: TokenServer,
    user: str,
    ca_file: Path,
    msmtp: str,
    password_command: str,
) -> None:
    if fault is ChainFault.REFRESH_REVOKED:
        _prime_token_cache(directory, submission, user, ca_file, msmtp, password_command)
        token_server.revoke_grant()
        logger.info("chain: grant revoked after the token script cached an access token")
    elif fault is ChainFault.SERVER_DOWN:
        submission.stop()
        logger.info("chain: submission server %s stopped", submission.address)


def _prime_token_cache(
    directory: Path,
    submission: SubmissionPeer,
    user: str,
    ca_file: Path,
    msmtp: str,
    password_command: str,
) -> None:
    """Send one message with msmtp directly, so the token script caches an access token.

    msmtp logs it to its own log file, so the relay, Postfix and msmtp logs of the chain
    hold only the scenario's messages. Raises ``ChainError`` when the message fails.
    """
    priming_msmtprc = write_server_msmtprc(
        directory / PRIMING_MSMTPRC_NAME,
        server=submission.address,
        user=user,
        ca_file=ca_file,
        logfile=directory / PRIMING_MSMTP_LOG_NAME,
        password_command=password_command,
    )
    result = send(priming_msmtprc, msmtp, CHAIN_RECIPIENT)
    if result.returncode != 0:
        raise ChainError(
            f"the priming message failed: msmtp exited with {result.returncode}: "
            f"{result.stderr.strip()}"
        )


def _send_messages(postfix_server: PostfixServer, user: str, messages: int) -> None:
    """Hand ``messages`` messages to Postfix's smtpd; raise ``ChainError`` when one is refused."""
    for number in range(1, messages + 1):
        text = (
            f"From: <{user}>\r\nTo: <{CHAIN_RECIPIENT}>\r\n"
            f"Subject: smtpdiag chain message {number}\r\n\r\n"
            f"Message {number} of {messages} through Postfix, the relay and msmtp.\r\n"
        )
        reply = send_message(postfix_server.address, user, [CHAIN_RECIPIENT], text)
        if not reply.startswith("250"):
            raise ChainError(f"Postfix did not queue message {number}: {reply}")


def _log_file_of(submission: SubmissionPeer) -> Path | None:
    """Return the submission server's ``log_file`` when it has one (DovecotServer does)."""
    log_file = getattr(submission, "log_file", None)
    return log_file if isinstance(log_file, Path) else None
