"""Deployment chain Postfix -> relay -> msmtp -> submission server, and its token command."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from system_programs import require_program

from smtpdiag.lab.certs import CertificateFiles, write_certificates
from smtpdiag.lab.chain import ChainFault, run_chain
from smtpdiag.lab.dovecot import DovecotServer, DovecotSettings
from smtpdiag.lab.lab_account import LabAccount
from smtpdiag.lab.msmtp_client import (
    TOKEN_COMMAND_FAILED,
    TOKEN_EXPIRY_MARGIN_SECONDS,
    TokenCommandSettings,
    run_token_command,
    write_refresh_token_script,
)
from smtpdiag.lab.options import ServerOptions, TokenEndpointOptions, TokenProvider
from smtpdiag.lab.postfix import PostfixServer
from smtpdiag.lab.scenarios import MICROSOFT_SMTP_SCOPE
from smtpdiag.lab.sink import SinkServer
from smtpdiag.lab.smtp_server import LabServer
from smtpdiag.lab.token_server import TokenServer, new_client_credentials
from smtpdiag.secrets import Secret

USER = "lab.user@example.com"
MESSAGES = 3

# Fault -> Postfix status, the relay's reply and msmtp's exit status, for every message.
EXPECTED = {
    ChainFault.NONE: ("sent", "250 Ok, mail was piped", 0),
    ChainFault.REFRESH_REVOKED: ("bounced", "554 Pipe command reported error 77", 77),
    ChainFault.TOKEN_COMMAND_FAILS: ("bounced", "554 Pipe command reported error 78", 78),
    ChainFault.SERVER_DOWN: ("deferred", "451 Pipe command reported error 75", 75),
}
SERVERS = ("dovecot", "lab-server")
RUNS = [(server, fault) for server in SERVERS for fault in ChainFault]
RUN_IDS = [f"{server}-{fault}" for server, fault in RUNS]

_PIPE_ERROR = re.compile(r"pipe command reported error (\d+)")


@dataclass(frozen=True)
class ChainRun:
    """What one chain run left behind, read before its servers stopped."""

    statuses: tuple[str, ...]
    reasons: tuple[str, ...]
    msmtp_exit_statuses: tuple[int, ...]
    messages_sent: int
    delivered: int
    log_text: str
    secrets: tuple[str, ...]
    postfix_processes_after_stop: tuple[int, ...]


class _LabSubmission:
    """The lab server as the chain's submission server, with a ``stop`` that may run twice.

    The server-down fault and the exit stack both stop it, but aiosmtpd's stop runs once only.
    """

    def __init__(self, server: LabServer) -> None:
        self._server = server
        self._running = True

    @property
    def address(self) -> str:
        return self._server.address

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._server.stop()


class _CountingLabServer:
    """The lab server's message count in the shape of the sink that Dovecot relays to."""

    def __init__(self, server: LabServer) -> None:
        self._server = server

    @property
    def message_count(self) -> int:
        return self._server.messages_received

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._server.messages_received < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


def _exit_statuses(relay_log: str) -> tuple[int, ...]:
    """Return msmtp's exit status per message, from the relay's log lines."""
    statuses: list[int] = []
    for line in relay_log.splitlines():
        if "mail was piped successfully" in line:
            statuses.append(0)
        match = _PIPE_ERROR.search(line)
        if match is not None:
            statuses.append(int(match.group(1)))
    return tuple(statuses)


def _run(directory: Path, server_kind: str, fault: ChainFault) -> ChainRun:
    postfix = require_program("postfix")
    msmtp = require_program("msmtp")
    if server_kind == "dovecot":
        require_program("dovecot")

    (directory / "certs").mkdir()
    certificates = write_certificates(directory / "certs")
    account = LabAccount(USER, Secret("ya29.lab-own-token-not-used", "test token"))
    credentials = new_client_credentials(TokenProvider.MICROSOFT)
    chain_directory = directory / "chain"
    chain_directory.mkdir(mode=0o755)

    with ExitStack() as stack:
        token_server = stack.enter_context(
            TokenServer(TokenEndpointOptions(), account, credentials, certificates)
        )
        submission, sink = _submission(
            stack, directory, server_kind, certificates, account, token_server
        )
        info = run_chain(
            stack,
            chain_directory,
            submission=submission,
            token_server=token_server,
            sink=sink,
            user=USER,
            ca_file=certificates.ca_file,
            fault=fault,
            messages=MESSAGES,
            msmtp=msmtp,
            postfix=postfix,
        )

        log_files = [info.postfix_log, info.relay_log, info.msmtp_log]
        if info.dovecot_log is not None:
            log_files.append(info.dovecot_log)
        issued = [credentials.refresh_token.reveal(), credentials.client_secret.reveal()]
        cache = chain_directory / "access-token-cache.json"
        if cache.exists():
            issued.append(json.loads(cache.read_text())["access_token"])
        log_text = "\n".join(path.read_text() for path in log_files)
        relay_log = info.relay_log.read_text()

    postfix_processes = _postfix_processes(chain_directory)
    return ChainRun(
        statuses=tuple(fate.status for fate in info.fates),
        reasons=tuple(fate.reason for fate in info.fates),
        msmtp_exit_statuses=_exit_statuses(relay_log),
        messages_sent=info.messages_sent,
        delivered=info.delivered,
        log_text=log_text,
        secrets=tuple(issued),
        postfix_processes_after_stop=postfix_processes,
    )


def _submission(
    stack: ExitStack,
    directory: Path,
    server_kind: str,
    certificates: CertificateFiles,
    account: LabAccount,
    token_server: TokenServer,
) -> tuple[DovecotServer | _LabSubmission, SinkServer | _CountingLabServer]:
    """Start the submission server and the sink behind it; the lab server is its own sink."""
    if server_kind == "dovecot":
        sink = stack.enter_context(SinkServer())
        settings = DovecotSettings(
            introspection_url=token_server.introspection_url,
            token_ca_file=certificates.ca_file,
            certificates=certificates,
            relay_address=sink.address,
        )
        dovecot = stack.enter_context(DovecotServer(directory / "dovecot", settings))
        return dovecot, sink
    server = LabServer(ServerOptions(), account, certificates, implicit_tls=False)
    server.start()
    submission = _LabSubmission(server)
    stack.callback(submission.stop)
    return submission, _CountingLabServer(server)


def _postfix_processes(chain_directory: Path) -> tuple[int, ...]:
    server = PostfixServer(chain_directory / "postfix", "127.0.0.1:9")
    return server.running_processes()


class _LazyRuns(dict[tuple[str, ChainFault], ChainRun]):
    """Chain runs by (server, fault), each made on first use in a directory below /tmp of
    mode 0755, because the postfix and dovecot users must enter it."""

    def __init__(self, directories: list[Path]) -> None:
        super().__init__()
        self._directories = directories

    def __missing__(self, key: tuple[str, ChainFault]) -> ChainRun:
        directory = Path(tempfile.mkdtemp(prefix="smtpdiag-chain-test-", dir="/tmp"))
        directory.chmod(0o755)
        self._directories.append(directory)
        run = _run(directory, *key)
        self[key] = run
        return run


@pytest.fixture(scope="module")
def chain_runs() -> Iterator[_LazyRuns]:
    directories: list[Path] = []
    yield _LazyRuns(directories)
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize(("server", "fault"), RUNS, ids=RUN_IDS)
def test_chain_postfix_status(chain_runs: _LazyRuns, server: str, fault: ChainFault) -> None:
    status, _, _ = EXPECTED[fault]
    assert chain_runs[server, fault].statuses == (status,) * MESSAGES


@pytest.mark.parametrize(("server", "fault"), RUNS, ids=RUN_IDS)
def test_chain_relay_reply(chain_runs: _LazyRuns, server: str, fault: ChainFault) -> None:
    _, reply, _ = EXPECTED[fault]
    reasons = chain_runs[server, fault].reasons
    assert [reply in reason for reason in reasons] == [True] * MESSAGES


@pytest.mark.parametrize(("server", "fault"), RUNS, ids=RUN_IDS)
def test_chain_msmtp_exit_status(chain_runs: _LazyRuns, server: str, fault: ChainFault) -> None:
    _, _, exit_status = EXPECTED[fault]
    assert chain_runs[server, fault].msmtp_exit_statuses == (exit_status,) * MESSAGES


@pytest.mark.parametrize(("server", "fault"), RUNS, ids=RUN_IDS)
def test_chain_delivered_count(chain_runs: _LazyRuns, server: str, fault: ChainFault) -> None:
    run = chain_runs[server, fault]
    expected = run.messages_sent if fault is ChainFault.NONE else 0
    assert run.delivered == expected


@pytest.mark.parametrize(("server", "fault"), RUNS, ids=RUN_IDS)
def test_chain_logs_hold_no_secret(chain_runs: _LazyRuns, server: str, fault: ChainFault) -> None:
    run = chain_runs[server, fault]
    assert [secret for secret in run.secrets if secret in run.log_text] == []


@pytest.mark.parametrize(("server", "fault"), RUNS, ids=RUN_IDS)
def test_chain_leaves_no_postfix_process(
    chain_runs: _LazyRuns, server: str, fault: ChainFault
) -> None:
    assert chain_runs[server, fault].postfix_processes_after_stop == ()


# Token command of the chain's passwordeval, run in-process against the lab token endpoint.


@pytest.fixture
def token_endpoint(certificates: CertificateFiles) -> Iterator[TokenServer]:
    account = LabAccount(USER, Secret("ya29.lab-own-token-not-used", "test token"))
    credentials = new_client_credentials(TokenProvider.MICROSOFT)
    with TokenServer(TokenEndpointOptions(), account, credentials, certificates) as server:
        yield server


def _token_settings(
    directory: Path, server: TokenServer, certificates: CertificateFiles, refresh_token: str
) -> Path:
    credentials = server.endpoint.credentials
    files = {
        "client-id": credentials.client_id,
        "client-secret": credentials.client_secret.reveal(),
        "refresh-token": refresh_token,
    }
    for name, value in files.items():
        (directory / name).write_text(value + "\n")
        (directory / name).chmod(0o600)
    settings = TokenCommandSettings(
        token_url=server.token_url,
        ca_file=certificates.ca_file,
        scope=MICROSOFT_SMTP_SCOPE,
        client_id_file=directory / "client-id",
        client_secret_file=directory / "client-secret",
        refresh_token_file=directory / "refresh-token",
        cache_file=directory / "cache.json",
    )
    script = write_refresh_token_script(directory / "token-command", settings)
    return script.with_name(script.name + ".json")


def test_token_command_reuses_cached_token(
    tmp_path: Path,
    token_endpoint: TokenServer,
    certificates: CertificateFiles,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refresh_token = token_endpoint.endpoint.credentials.refresh_token.reveal()
    settings = _token_settings(tmp_path, token_endpoint, certificates, refresh_token)
    first = run_token_command(settings)
    second = run_token_command(settings)
    tokens = capsys.readouterr().out.split()
    assert (first, second) == (0, 0)
    assert tokens[0] == tokens[1]
    assert token_endpoint.endpoint.token_requests == 1
    assert (tmp_path / "cache.json").stat().st_mode & 0o777 == 0o600


def test_token_command_refreshes_near_expiry(
    tmp_path: Path,
    token_endpoint: TokenServer,
    certificates: CertificateFiles,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refresh_token = token_endpoint.endpoint.credentials.refresh_token.reveal()
    settings = _token_settings(tmp_path, token_endpoint, certificates, refresh_token)
    expires_at = time.time() + TOKEN_EXPIRY_MARGIN_SECONDS - 1
    (tmp_path / "cache.json").write_text(
        json.dumps({"access_token": "old", "expires_at": expires_at})
    )
    status = run_token_command(settings)
    assert status == 0
    assert capsys.readouterr().out.strip() != "old"
    assert token_endpoint.endpoint.token_requests == 1


def test_token_command_rejected_grant(
    tmp_path: Path,
    token_endpoint: TokenServer,
    certificates: CertificateFiles,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = _token_settings(tmp_path, token_endpoint, certificates, "0.lab-never-issued")
    status = run_token_command(settings)
    captured = capsys.readouterr()
    assert status == TOKEN_COMMAND_FAILED
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert "HTTP 400 invalid_grant" in captured.err
    assert "0.lab-never-issued" not in captured.err


def test_token_script_runs_as_program(
    tmp_path: Path, token_endpoint: TokenServer, certificates: CertificateFiles
) -> None:
    refresh_token = token_endpoint.endpoint.credentials.refresh_token.reveal()
    _token_settings(tmp_path, token_endpoint, certificates, refresh_token)
    script = tmp_path / "token-command"
    result = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert token_endpoint.endpoint.account.issued_tokens.find(result.stdout.strip()) is not None
    assert script.stat().st_mode & 0o777 == 0o700
