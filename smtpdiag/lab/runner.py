"""Start a lab: certificates, secrets, both submission servers, the token endpoint, the NTP
responder and a configuration file.

Everything lives in a temporary directory that is removed when the lab stops. The written
configuration has one target, ``lab``, that smtpdiag's commands can use directly
(``--config FILE --target lab``). It reads the access token file, or, in a scenario with
token endpoint options, fetches an access token from the lab token endpoint. In a relay
scenario the lab also runs an msmtpd-style relay that pipes to msmtp, sends one message
through it, and the target names the msmtprc, the relay and both log files in place of a
host. In a Dovecot scenario the lab also runs a real Dovecot with an SMTP sink as its relay
host, and the target names Dovecot's STARTTLS port. In a chain scenario the lab runs Dovecot
and the deployment in front of it (Postfix, the relay, msmtp with a refresh-token
script), sends ``CHAIN_MESSAGES`` messages into Postfix, and the target describes that
deployment as on a real host: the msmtprc, ``relay = "postfix"`` with Postfix's configuration
directory, and the four log files.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from secrets import token_urlsafe
from types import FrameType
from typing import TextIO

from smtpdiag.errors import UsageError
from smtpdiag.lab.certs import CertificateFiles, write_certificates
from smtpdiag.lab.chain import ChainFault, ChainInfo, run_chain
from smtpdiag.lab.dovecot import DovecotServer, DovecotSettings, find_dovecot
from smtpdiag.lab.faults import FaultServer
from smtpdiag.lab.files import write_secret
from smtpdiag.lab.lab_account import LabAccount
from smtpdiag.lab.lab_clock import LabClock
from smtpdiag.lab.msmtp_client import TEST_MESSAGE, find_msmtp, write_msmtprc, write_token_script
from smtpdiag.lab.ntp_server import LOOPBACK as NTP_HOST
from smtpdiag.lab.ntp_server import NtpServer, closed_udp_port
from smtpdiag.lab.options import NtpMode, TokenEndpointOptions, TokenProvider
from smtpdiag.lab.postfix import find_postfix
from smtpdiag.lab.relay import RelayServer, msmtp_command, send_message
from smtpdiag.lab.scenarios import (
    CHAIN_MESSAGES,
    EXPIRED_TOKEN_AGE,
    OTHER_TOKEN_USER,
    AccessTokenState,
    LabListener,
    Scenario,
    get_scenario,
    list_scenarios,
)
from smtpdiag.lab.sink import SinkServer
from smtpdiag.lab.smtp_server import LabServer
from smtpdiag.lab.token_server import (
    ACCESS_TOKEN_LIFETIME,
    LAB_TENANT_ID,
    ClientCredentials,
    TokenServer,
    jwt_access_token,
    new_client_credentials,
)
from smtpdiag.secrets import Secret

logger = logging.getLogger(__name__)

__all__ = ["LAB_USER", "LabInfo", "list_scenarios", "serve", "start_lab"]

LAB_USER = "lab.user@example.com"
"""Mailbox that the lab servers accept."""

TARGET_NAME = "lab"
"""Name of the target in the written configuration file."""

CONFIG_FILE_NAME = "smtpdiag.toml"
TOKEN_FILE_NAME = "access-token"  # noqa: S105 (a file name)
CLIENT_SECRET_FILE_NAME = "client-secret"  # noqa: S105 (a file name)
REFRESH_TOKEN_FILE_NAME = "refresh-token"  # noqa: S105 (a file name)
TOKEN_SCRIPT_NAME = "token-command"  # noqa: S105 (a file name)
MSMTPRC_NAME = "msmtprc"
MSMTP_LOG_NAME = "msmtp.log"
RELAY_LOG_NAME = "msmtpd.log"

RELAY_RECIPIENT = "rcpt@example.com"
"""Recipient of the message that a relay scenario sends through the relay."""

TIMEOUT_SECONDS = 5
"""``timeout`` written into the configuration; loopback peers reply at once or not at all."""

TomlValue = str | int | bool | list[str]
"""A value that ``_toml_value`` writes."""

# Prefix of Google access tokens, so the lab token looks like the real thing in transcripts.
_TOKEN_PREFIX = "ya29.lab-"  # noqa: S105 (a prefix; the rest is random)


@dataclass(frozen=True)
class LabInfo:
    """Addresses and files of a running lab that a client needs; contains no secret."""

    scenario: str
    config_file: Path
    smtp_starttls: str
    """``HOST:PORT`` of the STARTTLS server."""
    smtps: str
    """``HOST:PORT`` of the implicit TLS server."""
    ca_file: Path
    user: str
    access_token_file: Path
    token_endpoint: str
    """URL of the lab token endpoint's ``POST /token``."""
    tokeninfo_endpoint: str
    """URL of its Google-shaped ``POST /tokeninfo``."""
    introspection_endpoint: str
    """URL of its RFC 7662 ``POST /introspect``."""
    client_id: str
    """Client id that the token endpoint accepts; not a secret."""
    client_secret_file: Path
    refresh_token_file: Path
    ntp: str
    """``HOST:PORT`` of the NTP responder, written into the configuration as ``ntp_servers``
    and ``ntp_port``; in a scenario with ``NtpMode.CLOSED`` a UDP port where nothing
    listens."""
    relay: str | None = None
    """``HOST:PORT`` of the msmtpd-style relay. This field and the three below are None
    unless the scenario runs a relay or the chain."""
    msmtprc: Path | None = None
    """msmtp configuration of the relay's pipe command (mode 0600)."""
    relay_log_file: Path | None = None
    """msmtpd-format log of the relay."""
    msmtp_log_file: Path | None = None
    """msmtp's own log file (``logfile`` of the msmtprc)."""
    relay_reply: str | None = None
    """The relay's final reply to the message that a relay scenario sent through it, such
    as ``250 Ok, mail was piped``; None in other scenarios."""
    dovecot: str | None = None
    """``HOST:PORT`` of Dovecot's STARTTLS submission listener; this field and the next are
    None unless the scenario runs Dovecot, as the Dovecot and chain scenarios do."""
    dovecot_log_file: Path | None = None
    """Dovecot's ``log_path``."""
    postfix: str | None = None
    """``HOST:PORT`` of Postfix's smtpd, where a chain scenario's mail enters; this field and
    the five below are None unless the scenario runs the chain."""
    postfix_config_dir: Path | None = None
    """Postfix's configuration directory, for ``postconf -c``."""
    postfix_log_file: Path | None = None
    """Postfix's ``maillog_file``."""
    token_script: Path | None = None
    """msmtp's ``passwordeval`` program, which prints an access token from the refresh grant."""
    messages_sent: int | None = None
    """Messages handed to Postfix."""
    delivered: int | None = None
    """Messages that reached the SMTP sink behind Dovecot."""

    @property
    def ntp_port(self) -> int:
        """UDP port of ``ntp``."""
        return int(self.ntp.rsplit(":", 1)[1])

    def to_json_line(self) -> str:
        """Return the lab description as one JSON object on one line, without a newline."""
        document: dict[str, str | int | None] = {
            "scenario": self.scenario,
            "config_file": str(self.config_file),
            "smtp_starttls": self.smtp_starttls,
            "smtps": self.smtps,
            "ca_file": str(self.ca_file),
            "user": self.user,
            "access_token_file": str(self.access_token_file),
            "token_endpoint": self.token_endpoint,
            "tokeninfo_endpoint": self.tokeninfo_endpoint,
            "introspection_endpoint": self.introspection_endpoint,
            "client_id": self.client_id,
            "client_secret_file": str(self.client_secret_file),
            "refresh_token_file": str(self.refresh_token_file),
            "ntp": self.ntp,
        }
        if self.relay is not None:
            document |= {
                "relay": self.relay,
                "msmtprc": str(self.msmtprc),
                "relay_log_file": str(self.relay_log_file),
                "msmtp_log_file": str(self.msmtp_log_file),
            }
        if self.relay_reply is not None:
            document["relay_reply"] = self.relay_reply
        if self.dovecot is not None:
            document |= {
                "dovecot": self.dovecot,
                "dovecot_log_file": str(self.dovecot_log_file),
            }
        if self.postfix is not None:
            document |= {
                "postfix": self.postfix,
                "postfix_config_dir": str(self.postfix_config_dir),
                "postfix_log_file": str(self.postfix_log_file),
                "token_script": str(self.token_script),
                "messages_sent": self.messages_sent,
                "delivered": self.delivered,
            }
        return json.dumps(document)


@contextmanager
def start_lab(scenario: Scenario, workdir: Path | None = None) -> Iterator[LabInfo]:
    """Run the lab of ``scenario`` until the block ends, then stop it and remove its files.

    The lab's temporary directory is created inside ``workdir``, or in the system temporary
    directory when ``workdir`` is None. Dovecot's directory is always created in the system
    temporary directory, because Dovecot's unprivileged users must be able to reach it.
    A chain scenario's directory is created there too, because the postfix user must reach it.
    Raises ``UsageError`` before starting anything when the scenario needs msmtp, Dovecot or
    Postfix and it is not installed, or Dovecot and the process does not run as root.
    """
    if scenario.chain is not None:
        chain_programs = _require_chain_programs(scenario)
        msmtp, dovecot = None, None
    else:
        chain_programs = None
        msmtp = _require_msmtp(scenario) if scenario.needs_msmtp else None
        dovecot = _require_dovecot(scenario) if scenario.needs_dovecot else None
    with ExitStack() as stack:
        directory = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="smtpdiag-lab-", dir=workdir))
        )
        certificates = write_certificates(directory, scenario.certificate)
        endpoint_options = scenario.token_endpoint or TokenEndpointOptions()
        if scenario.introspection_reply is not None:
            endpoint_options = replace(
                endpoint_options, introspection_reply=scenario.introspection_reply
            )
        credentials = new_client_credentials(endpoint_options.provider)
        secret_file = directory / CLIENT_SECRET_FILE_NAME
        refresh_token_file = directory / REFRESH_TOKEN_FILE_NAME
        write_secret(secret_file, credentials.client_secret.reveal())
        write_secret(refresh_token_file, credentials.refresh_token.reveal())

        clock = LabClock(scenario.clock_offset_seconds)
        token_file = directory / TOKEN_FILE_NAME
        account = _new_account(scenario, token_file, credentials, clock)
        servers = {
            LabListener.STARTTLS: _submission_server(
                scenario, account, certificates, implicit_tls=False, clock=clock
            ),
            LabListener.IMPLICIT: _submission_server(
                scenario, account, certificates, implicit_tls=True, clock=clock
            ),
        }
        for server in servers.values():
            stack.enter_context(server)
        token_server = stack.enter_context(
            TokenServer(endpoint_options, account, credentials, certificates, clock)
        )
        if scenario.access_token is AccessTokenState.REVOKED:
            token_server.revoke_grant()
        if scenario.ntp_mode is NtpMode.CLOSED:
            ntp_address = f"{NTP_HOST}:{closed_udp_port()}"
        else:
            ntp_address = stack.enter_context(NtpServer(clock, scenario.ntp_mode)).address

        info = LabInfo(
            scenario=scenario.name,
            config_file=directory / CONFIG_FILE_NAME,
            smtp_starttls=servers[LabListener.STARTTLS].address,
            smtps=servers[LabListener.IMPLICIT].address,
            ca_file=certificates.ca_file,
            user=LAB_USER,
            access_token_file=token_file,
            token_endpoint=token_server.token_url,
            tokeninfo_endpoint=token_server.tokeninfo_url,
            introspection_endpoint=token_server.introspection_url,
            client_id=credentials.client_id,
            client_secret_file=secret_file,
            refresh_token_file=refresh_token_file,
            ntp=ntp_address,
        )
        target_port = servers[scenario.target_listener].port
        if msmtp is not None:
            info = _start_relay(stack, directory, info, msmtp)
        if dovecot is not None:
            info = _start_dovecot(stack, info, certificates, dovecot)[0]
            target_port = int(str(info.dovecot).rsplit(":", 1)[1])
        if chain_programs is not None and scenario.chain is not None:
            info = _start_chain(
                stack, info, certificates, token_server, chain_programs, scenario.chain
            )
        info.config_file.write_text(_config_text(scenario, info, target_port), encoding="utf-8")
        logger.info("lab for scenario %s running in %s", scenario.name, directory)
        yield info
    logger.info("lab for scenario %s stopped", scenario.name)


def _submission_server(
    scenario: Scenario,
    account: LabAccount,
    certificates: CertificateFiles,
    *,
    implicit_tls: bool,
    clock: LabClock,
) -> LabServer | FaultServer:
    """Return one of the lab's two submission servers, not yet started: the raw fault server
    when the scenario's server options name a fault, else the aiosmtpd server."""
    fault = scenario.server.fault
    if fault is not None:
        return FaultServer(fault, account, certificates, implicit_tls=implicit_tls)
    return LabServer(scenario.server, account, certificates, implicit_tls=implicit_tls, clock=clock)


def _require_msmtp(scenario: Scenario) -> str:
    """Return the path of msmtp; raise ``UsageError`` when it is not installed."""
    msmtp = find_msmtp()
    if msmtp is None:
        raise UsageError(
            f"The lab scenario {scenario.name!r} pipes mail to msmtp, which is not installed.",
            "Install the Debian package msmtp, or choose a scenario without a relay.",
            value=scenario.name,
        )
    return msmtp


def _require_dovecot(scenario: Scenario) -> str:
    """Return the path of dovecot; raise ``UsageError`` when it cannot run here."""
    dovecot = find_dovecot()
    if dovecot is None:
        raise UsageError(
            f"The lab scenario {scenario.name!r} runs Dovecot, which is not installed.",
            "Install the Debian packages dovecot-core and dovecot-submissiond, or choose a "
            "scenario without Dovecot.",
            value=scenario.name,
        )
    if os.geteuid() != 0:
        raise UsageError(
            f"The lab scenario {scenario.name!r} runs Dovecot, which needs root to switch to "
            "its own users.",
            "Run the lab as root, or choose a scenario without Dovecot.",
            value=scenario.name,
        )
    return dovecot


@dataclass(frozen=True)
class ChainPrograms:
    """Paths of the programs that a chain scenario runs."""

    postfix: str
    msmtp: str
    dovecot: str


_CHAIN_PACKAGES = {
    "postfix": ("postfix",),
    "msmtp": ("msmtp",),
    "dovecot": ("dovecot-core", "dovecot-submissiond"),
}
"""Debian packages that install each program of the chain."""


def _require_chain_programs(scenario: Scenario) -> ChainPrograms:
    """Return the paths of Postfix, msmtp and Dovecot.

    Raises ``UsageError`` that names the Debian packages of every missing program, or when
    the process does not run as root.
    """
    found = {"postfix": find_postfix(), "msmtp": find_msmtp(), "dovecot": find_dovecot()}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        packages = [package for name in missing for package in _CHAIN_PACKAGES[name]]
        raise UsageError(
            f"The lab scenario {scenario.name!r} runs Postfix, msmtp and Dovecot, but "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed.",
            f"Install the Debian packages {' '.join(packages)}, or choose a scenario "
            "without the chain.",
            value=scenario.name,
        )
    if os.geteuid() != 0:
        raise UsageError(
            f"The lab scenario {scenario.name!r} runs Postfix and Dovecot, which need root to "
            "switch to their own users.",
            "Run the lab as root, or choose a scenario without the chain.",
            value=scenario.name,
        )
    return ChainPrograms(
        postfix=str(found["postfix"]), msmtp=str(found["msmtp"]), dovecot=str(found["dovecot"])
    )


def _start_chain(
    stack: ExitStack,
    info: LabInfo,
    certificates: CertificateFiles,
    token_server: TokenServer,
    programs: ChainPrograms,
    fault: ChainFault,
) -> LabInfo:
    """Start Dovecot and its sink, run the chain with ``fault`` in ``stack``, and return
    ``info`` with the chain's addresses, files and counts."""
    info, dovecot, sink = _start_dovecot(stack, info, certificates, programs.dovecot)
    # The postfix user must enter this directory, so it lies in the system temporary
    # directory with mode 0755, never below the lab's private directory.
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smtpdiag-chain-")))
    directory.chmod(0o755)
    chain = run_chain(
        stack,
        directory,
        submission=dovecot,
        token_server=token_server,
        sink=sink,
        user=info.user,
        ca_file=info.ca_file,
        fault=fault,
        messages=CHAIN_MESSAGES,
        msmtp=programs.msmtp,
        postfix=programs.postfix,
    )
    return _with_chain(info, chain)


def _with_chain(info: LabInfo, chain: ChainInfo) -> LabInfo:
    """Return ``info`` with the addresses, files and counts of ``chain``."""
    return replace(
        info,
        relay=chain.relay,
        msmtprc=chain.msmtprc,
        relay_log_file=chain.relay_log,
        msmtp_log_file=chain.msmtp_log,
        postfix=chain.postfix,
        postfix_config_dir=chain.postfix_config_directory,
        postfix_log_file=chain.postfix_log,
        token_script=chain.token_script,
        messages_sent=chain.messages_sent,
        delivered=chain.delivered,
    )


def _start_dovecot(
    stack: ExitStack, info: LabInfo, certificates: CertificateFiles, program: str
) -> tuple[LabInfo, DovecotServer, SinkServer]:
    """Start the SMTP sink and Dovecot in ``stack``; return ``info`` with Dovecot's address,
    Dovecot and the sink."""
    sink = stack.enter_context(SinkServer())
    # Dovecot's dovecot, dovenull and mail users must reach this directory; the lab's own
    # directory is private and may lie under another private directory (pytest's tmp_path).
    dovecot_directory = Path(
        stack.enter_context(tempfile.TemporaryDirectory(prefix="smtpdiag-dovecot-"))
    )
    settings = DovecotSettings(
        introspection_url=info.introspection_endpoint,
        token_ca_file=info.ca_file,
        certificates=certificates,
        relay_address=sink.address,
    )
    server = stack.enter_context(DovecotServer(dovecot_directory, settings, program))
    return replace(info, dovecot=server.address, dovecot_log_file=server.log_file), server, sink


def _start_relay(stack: ExitStack, directory: Path, info: LabInfo, msmtp: str) -> LabInfo:
    """Start the relay in front of the STARTTLS server, send one message through it, and
    return ``info`` with the relay's address, files and reply.

    msmtp gets its token from a script of mode 0700 that prints the access token file, as
    a site's ``passwordeval`` runs its token script.
    """
    token_script = write_token_script(directory / TOKEN_SCRIPT_NAME, info.access_token_file)
    msmtp_log = directory / MSMTP_LOG_NAME
    msmtprc = write_msmtprc(
        directory,
        info,
        logfile=msmtp_log,
        name=MSMTPRC_NAME,
        password_command=shlex.quote(str(token_script)),
    )
    relay = stack.enter_context(
        RelayServer(
            msmtp_command(msmtp, msmtprc),
            directory / RELAY_LOG_NAME,
            # HOME points into the lab, so msmtp reads no file of the user who runs it.
            environ={**os.environ, "HOME": str(directory)},
        )
    )
    reply = send_message(relay.address, info.user, [RELAY_RECIPIENT], TEST_MESSAGE)
    logger.info("lab relay %s replied %s to the scenario's message", relay.address, reply)
    # The session logs its last lines after the reply; the written logs must be complete.
    if not relay.wait_idle():
        logger.warning(
            "lab relay %s: the session of the scenario's message has not ended", relay.address
        )
    return replace(
        info,
        relay=relay.address,
        msmtprc=msmtprc,
        relay_log_file=relay.log_file,
        msmtp_log_file=msmtp_log,
        relay_reply=reply,
    )


def _new_account(
    scenario: Scenario, token_file: Path, credentials: ClientCredentials, clock: LabClock
) -> LabAccount:
    """Write the account's access token file and return the account.

    The token is random, or a Microsoft-like JWT: for ``AccessTokenState.EXPIRED`` one for
    the lab user whose ``exp`` lies ``EXPIRED_TOKEN_AGE`` in the past of the lab clock, for
    ``AccessTokenState.OTHER_USER`` a valid one for ``OTHER_TOKEN_USER``.
    """
    state = scenario.access_token
    if state not in (AccessTokenState.EXPIRED, AccessTokenState.OTHER_USER):
        return LabAccount(LAB_USER, _write_token(token_file, scenario.token_length))

    now = clock.time()
    if state is AccessTokenState.EXPIRED:
        user, expires_at = LAB_USER, now - EXPIRED_TOKEN_AGE.total_seconds()
    else:
        user, expires_at = OTHER_TOKEN_USER, now + ACCESS_TOKEN_LIFETIME
    issued = jwt_access_token(
        TokenEndpointOptions(),
        credentials.client_id,
        user,
        expires_at - ACCESS_TOKEN_LIFETIME,
        expires_at,
        refresh_grant=True,
    )
    write_secret(token_file, issued.token.reveal())
    return LabAccount(
        LAB_USER,
        Secret(issued.token.reveal(), f"file {token_file}"),
        token_scope=issued.scope,
        token_expires_at=expires_at,
        token_user=user,
    )


def _write_token(path: Path, length: int | None) -> Secret:
    """Create a random access token and write it to a new file of mode 0600.

    The token has ``length`` characters, or 32 random bytes after the prefix when ``length``
    is None.
    """
    if length is None:
        value = _TOKEN_PREFIX + token_urlsafe(32)
    else:
        # token_urlsafe(n) returns at least n characters for n > 0.
        random_length = length - len(_TOKEN_PREFIX)
        value = _TOKEN_PREFIX + token_urlsafe(random_length)[:random_length]
    token = Secret(value, f"file {path}")
    write_secret(path, token.reveal())
    return token


def _config_text(scenario: Scenario, info: LabInfo, target_port: int) -> str:
    """Return the TOML configuration: the NTP settings and the ``lab`` target."""
    if info.postfix is not None:
        values = _chain_values(info)
    elif info.relay is not None:
        values = _relay_values(info)
    else:
        values = _server_values(scenario, info, target_port)
    lines = [
        f"# smtpdiag lab, scenario {scenario.name}: {scenario.description}",
        "# Removed when the lab stops.",
        "",
        "[defaults]",
        f"timeout = {scenario.timeout or TIMEOUT_SECONDS}",
        f"ntp_servers = {_toml_value([NTP_HOST])}",
        f"ntp_port = {info.ntp_port}",
        "",
        f"[targets.{TARGET_NAME}]",
    ]
    lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _server_values(scenario: Scenario, info: LabInfo, port: int) -> dict[str, TomlValue]:
    """Return the keys of a target that names the server on ``port`` itself."""
    values: dict[str, TomlValue] = {
        "host": scenario.target_host,
        "port": port,
        "tls_mode": scenario.target_tls_mode.value,
        "ca_file": str(info.ca_file),
        "user": info.user,
    }
    if scenario.token_endpoint is None:
        values["access_token_file"] = str(info.access_token_file)
    else:
        values |= _token_endpoint_values(scenario, info)
    if scenario.dovecot:
        # smtpdiag queries the endpoint that Dovecot's oauth2 passdb queries.
        values |= {
            "introspect": True,
            "introspection_endpoint": info.introspection_endpoint,
            "token_ca_file": str(info.ca_file),
        }
    if scenario.send_test:
        values["send_test"] = True
        values["mail_from"] = "other@example.com"
        values["rcpt_to"] = "rcpt@example.com"
    return values


def _relay_values(info: LabInfo) -> dict[str, TomlValue]:
    """Return the keys of a relay scenario's target: smtpdiag reads the server from the
    msmtprc, so the target has no host of its own."""
    return {
        "msmtprc": str(info.msmtprc),
        "relay": str(info.relay),
        "log_files": [str(info.relay_log_file), str(info.msmtp_log_file)],
    }


def _chain_values(info: LabInfo) -> dict[str, TomlValue]:
    """Return the keys of a chain scenario's target, as for the deployment on a real host.

    smtpdiag reads the server and the token command from the msmtprc, and the relay check
    reads Postfix's relayhost with ``postconf -c``. smtpdiag also queries the introspection
    endpoint that Dovecot's oauth2 passdb queries.
    """
    log_files = (
        info.postfix_log_file,
        info.relay_log_file,
        info.msmtp_log_file,
        info.dovecot_log_file,
    )
    return {
        "msmtprc": str(info.msmtprc),
        "relay": "postfix",
        "postfix_config_dir": str(info.postfix_config_dir),
        "log_files": [str(path) for path in log_files if path is not None],
        "introspect": True,
        "introspection_endpoint": info.introspection_endpoint,
        "token_ca_file": str(info.ca_file),
    }


def _token_endpoint_values(scenario: Scenario, info: LabInfo) -> dict[str, TomlValue]:
    """Return the keys that make smtpdiag fetch its access token from the lab endpoint.

    The provider profile supplies what a correct token contains; ``host`` and ``port`` stay
    the lab's, because explicit values override the profile's.
    """
    options = scenario.token_endpoint or TokenEndpointOptions()
    values: dict[str, TomlValue] = {"provider": options.provider.value}
    if options.provider is TokenProvider.MICROSOFT:
        values["tenant"] = LAB_TENANT_ID
    values |= {
        "token_endpoint": info.token_endpoint,
        "client_id": info.client_id,
        "client_secret_file": str(info.client_secret_file),
        "refresh_token_file": str(info.refresh_token_file),
        "token_ca_file": str(info.ca_file),
    }
    if scenario.token_scope is not None:
        values["scope"] = scenario.token_scope
    return values


def _toml_value(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    # An ASCII-only JSON string is also a valid TOML basic string: both use the same escapes.
    return json.dumps(value, ensure_ascii=True)


_SIGNAL_POLL_SECONDS = 0.5
"""Maximum time between two checks for a pending signal handler while the lab runs."""


def serve(scenario_name: str, out: TextIO) -> int:
    """Run a lab until SIGINT, SIGTERM or SIGHUP; write its JSON line to ``out`` once it is up.

    SIGHUP arrives when the terminal closes or an SSH session drops. Without a handler it
    would end the process and leave Dovecot, Postfix and the lab's secrets behind.

    Must be called from the main thread, because only that thread can install signal
    handlers. Raises ``UsageError`` for an unknown scenario name.
    """
    scenario = get_scenario(scenario_name)
    stop_requested = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping the lab", signal.Signals(signal_number).name)
        stop_requested.set()

    # Handlers go in before the lab starts, so an early signal still removes the lab's files.
    previous = {
        number: signal.signal(number, request_stop)
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        with start_lab(scenario) as info:
            out.write(info.to_json_line() + "\n")
            out.flush()
            # The kernel may deliver a signal to a server thread. Python then runs the handler
            # only when the main thread next executes bytecode, which a wait without a
            # timeout never does, so the main thread wakes up twice a second.
            while not stop_requested.wait(_SIGNAL_POLL_SECONDS):
                pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0
