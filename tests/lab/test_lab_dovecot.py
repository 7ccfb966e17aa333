"""Lab Dovecot: the written configuration, start and stop, and real AUTH replies on loopback."""

from __future__ import annotations

import base64
import json
import smtplib
import socket
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pytest
from system_programs import require_program

from smtpdiag.lab.certs import CertificateFiles
from smtpdiag.lab.dovecot import (
    DovecotError,
    DovecotServer,
    DovecotSettings,
    dovecot_config_text,
    find_dovecot,
    oauth2_config_text,
)
from smtpdiag.lab.lab_account import LabAccount
from smtpdiag.lab.options import RecordedReply, TokenEndpointOptions
from smtpdiag.lab.sink import SinkServer
from smtpdiag.lab.token_server import TokenServer, new_client_credentials
from smtpdiag.secrets import Secret

USER = "lab.user@example.com"
TOKEN = "ya29.dovecot-test-token-0123456789abcdef"
GREETING = "localhost Dovecot (Debian) ready."
CHALLENGE = {"status": "401", "schemes": "bearer", "scope": "mail"}
MESSAGE = "Subject: dovecot test\r\n\r\nbody\r\n"


def settings_for(files: CertificateFiles, **changes: object) -> DovecotSettings:
    settings = DovecotSettings(
        introspection_url="https://127.0.0.1:8443/introspect",
        token_ca_file=files.ca_file,
        certificates=files,
        relay_address="127.0.0.1:2525",
    )
    return replace(settings, **changes)  # type: ignore[arg-type]


def group_members(group: int) -> list[int]:
    """Live processes whose process group is ``group``, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(entry.name))
    return members


def master_pid(server: DovecotServer) -> int:
    return int((server.directory / "run" / "master.pid").read_text().strip())


def connection_refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def dovecot_directory() -> Iterator[Path]:
    # Dovecot's users must reach the directory, which pytest's private tmp_path denies.
    # DovecotServer opens the directory itself up to mode 0755.
    with tempfile.TemporaryDirectory(prefix="smtpdiag-test-dovecot-") as name:
        yield Path(name)


# --- written configuration ---


def test_config_listens_on_loopback_only(certificates: CertificateFiles, tmp_path: Path) -> None:
    text = dovecot_config_text(settings_for(certificates), tmp_path, 2587)
    bindings = [line.strip() for line in text.splitlines()]
    assert [line for line in bindings if line.startswith(("listen", "address"))] == [
        "listen = 127.0.0.1",
        "address = 127.0.0.1",
    ]


def test_config_names_port(certificates: CertificateFiles, tmp_path: Path) -> None:
    text = dovecot_config_text(settings_for(certificates), tmp_path, 2587)
    assert "    port = 2587" in text.splitlines()


def test_config_relay_host_and_port(certificates: CertificateFiles, tmp_path: Path) -> None:
    lines = dovecot_config_text(settings_for(certificates), tmp_path, 2587).splitlines()
    relay = [line for line in lines if line.startswith("submission_relay_")]
    assert relay == [
        "submission_relay_host = 127.0.0.1",
        "submission_relay_port = 2525",
        "submission_relay_trusted = yes",
    ]


@pytest.mark.parametrize(("auth_debug", "expected"), [(False, []), (True, ["auth_debug = yes"])])
def test_config_auth_debug(
    certificates: CertificateFiles, tmp_path: Path, auth_debug: bool, expected: list[str]
) -> None:
    settings = settings_for(certificates, auth_debug=auth_debug)
    lines = dovecot_config_text(settings, tmp_path, 2587).splitlines()
    assert [line for line in lines if line.startswith("auth_debug")] == expected


def test_config_instance_names_differ(certificates: CertificateFiles, tmp_path: Path) -> None:
    def instance() -> str:
        text = dovecot_config_text(settings_for(certificates), tmp_path, 2587)
        return next(line for line in text.splitlines() if line.startswith("instance_name"))

    assert instance() != instance()


def test_config_disables_auth_penalty(certificates: CertificateFiles, tmp_path: Path) -> None:
    text = dovecot_config_text(settings_for(certificates), tmp_path, 2587)
    assert "  unix_listener anvil-auth-penalty {\n    mode = 0\n  }" in text


def test_oauth2_config(certificates: CertificateFiles, tmp_path: Path) -> None:
    text = oauth2_config_text(settings_for(certificates), tmp_path)
    assert text.splitlines() == [
        "introspection_mode = post",
        "introspection_url = https://127.0.0.1:8443/introspect",
        "username_attribute = username",
        "active_attribute = active",
        "active_value = true",
        f"tls_ca_cert_file = {tmp_path / 'token-ca.pem'}",
    ]


# --- start and stop ---


def test_find_dovecot() -> None:
    expected = require_program("dovecot")
    assert find_dovecot() == expected


@pytest.fixture
def running(certificates: CertificateFiles, dovecot_directory: Path) -> Iterator[DovecotServer]:
    require_program("dovecot")
    with DovecotServer(dovecot_directory, settings_for(certificates)) as server:
        yield server


def test_start_greets(running: DovecotServer) -> None:
    with smtplib.SMTP("127.0.0.1", running.port, timeout=5) as client:
        assert client.noop()[0] == 250


def test_greeting_text(running: DovecotServer) -> None:
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as connection:
        line = connection.makefile("rb").readline()
    assert line == f"220 {GREETING}\r\n".encode()


def test_address_is_loopback(running: DovecotServer) -> None:
    assert running.address == f"127.0.0.1:{running.port}"


def test_log_file_written(running: DovecotServer) -> None:
    assert "master: Info: Dovecot v2.3" in running.log_file.read_text()


def test_token_ca_copy_readable(running: DovecotServer) -> None:
    assert (running.directory / "token-ca.pem").stat().st_mode & 0o777 == 0o644


def test_stop_leaves_no_process(certificates: CertificateFiles, dovecot_directory: Path) -> None:
    require_program("dovecot")
    server = DovecotServer(dovecot_directory, settings_for(certificates))
    with server:
        group = master_pid(server)
        assert len(group_members(group)) > 1
    assert group_members(group) == []


def test_stop_closes_port(certificates: CertificateFiles, dovecot_directory: Path) -> None:
    require_program("dovecot")
    with DovecotServer(dovecot_directory, settings_for(certificates)) as server:
        port = server.port
    assert connection_refused(port) is True


def test_stop_logs_signal(certificates: CertificateFiles, dovecot_directory: Path) -> None:
    require_program("dovecot")
    with DovecotServer(dovecot_directory, settings_for(certificates)) as server:
        pass
    assert "master: Warning: Killed with signal 15" in server.log_file.read_text()


def test_stop_is_idempotent(running: DovecotServer) -> None:
    running.stop()
    running.stop()
    assert connection_refused(running.port) is True


def test_two_instances_in_parallel(certificates: CertificateFiles) -> None:
    require_program("dovecot")
    with ExitStack() as stack:
        servers = []
        for _ in range(2):
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smtpdiag-")))
            servers.append(
                stack.enter_context(DovecotServer(directory, settings_for(certificates)))
            )
        greetings = []
        for server in servers:
            with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
                greetings.append(client.noop()[0])
        ports = {server.port for server in servers}
        assert (greetings, len(ports)) == ([250, 250], 2)


def test_failed_start_quotes_log(dovecot_directory: Path, certificates: CertificateFiles) -> None:
    require_program("dovecot")
    broken = replace(certificates, chain_file=Path("/nonexistent/missing.pem"))
    server = DovecotServer(dovecot_directory, settings_for(certificates, certificates=broken))
    with pytest.raises(DovecotError, match=r"missing\.pem"):
        server.start()


def test_failed_start_leaves_no_process(
    dovecot_directory: Path, certificates: CertificateFiles
) -> None:
    require_program("dovecot")
    broken = replace(certificates, chain_file=Path("/nonexistent/missing.pem"))
    server = DovecotServer(dovecot_directory, settings_for(certificates, certificates=broken))
    with pytest.raises(DovecotError) as raised:
        server.start()
    assert "exited with status" in str(raised.value)


def test_private_directory_rejected(certificates: CertificateFiles, tmp_path: Path) -> None:
    # pytest's base temporary directory has mode 0700.
    require_program("dovecot")
    server = DovecotServer(tmp_path / "dovecot", settings_for(certificates))
    with pytest.raises(DovecotError, match="not searchable by other users"):
        server.start()


def test_missing_program(certificates: CertificateFiles, dovecot_directory: Path) -> None:
    server = DovecotServer(
        dovecot_directory, settings_for(certificates), program="/nonexistent/dovecot"
    )
    with pytest.raises(DovecotError, match="cannot run /nonexistent/dovecot"):
        server.start()


# --- AUTH against the lab token service's introspection ---


def xoauth2(user: str, token: str) -> str:
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()


class Submission:
    """Dovecot with a sink and the lab token service; ``auth`` runs one XOAUTH2 exchange."""

    def __init__(self, server: DovecotServer, sink: SinkServer, tokens: TokenServer) -> None:
        self.server = server
        self.sink = sink
        self.tokens = tokens

    def auth(self, ca_file: Path, token: str = TOKEN) -> list[tuple[int, bytes]]:
        context = ssl.create_default_context(cafile=str(ca_file))
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as client:
            client.starttls(context=context)
            client.ehlo()
            replies = [client.docmd("AUTH", f"XOAUTH2 {xoauth2(USER, token)}")]
            if replies[0][0] == 334:
                replies.append(client.docmd(""))
            if replies[-1][0] == 235:
                client.sendmail(USER, ["rcpt@example.com"], MESSAGE)
            return replies


def submission(
    stack: ExitStack,
    certificates: CertificateFiles,
    options: TokenEndpointOptions | None = None,
    *,
    auth_debug: bool = False,
) -> Submission:
    require_program("dovecot")
    options = options or TokenEndpointOptions()
    account = LabAccount(USER, Secret(TOKEN, "test"))
    credentials = new_client_credentials(options.provider)
    tokens = stack.enter_context(TokenServer(options, account, credentials, certificates))
    sink = stack.enter_context(SinkServer())
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smtpdiag-test-")))
    settings = DovecotSettings(
        introspection_url=tokens.introspection_url,
        token_ca_file=certificates.ca_file,
        certificates=certificates,
        relay_address=sink.address,
        auth_debug=auth_debug,
    )
    server = stack.enter_context(DovecotServer(directory, settings))
    return Submission(server, sink, tokens)


def test_auth_accepted(certificates: CertificateFiles) -> None:
    with ExitStack() as stack:
        replies = submission(stack, certificates).auth(certificates.ca_file)
    assert replies == [(235, b"2.7.0 Logged in.")]


def test_accepted_mail_reaches_sink(certificates: CertificateFiles) -> None:
    with ExitStack() as stack:
        lab = submission(stack, certificates)
        lab.auth(certificates.ca_file)
        assert lab.sink.wait_for(1, timeout=5) is True


def test_revoked_token_challenge(certificates: CertificateFiles) -> None:
    with ExitStack() as stack:
        lab = submission(stack, certificates)
        lab.tokens.revoke_grant()
        replies = lab.auth(certificates.ca_file)
    assert json.loads(base64.b64decode(replies[0][1])) == CHALLENGE


def test_revoked_token_final_reply(certificates: CertificateFiles) -> None:
    with ExitStack() as stack:
        lab = submission(stack, certificates)
        lab.tokens.revoke_grant()
        replies = lab.auth(certificates.ca_file)
    assert replies[-1] == (535, b"5.7.8 Authentication failed.")


def test_unknown_token_rejected(certificates: CertificateFiles) -> None:
    with ExitStack() as stack:
        replies = submission(stack, certificates).auth(certificates.ca_file, "ya29.unknown-0")
    assert [code for code, _ in replies] == [334, 535]


def test_introspection_down_temporary_failure(certificates: CertificateFiles) -> None:
    options = TokenEndpointOptions(introspection_reply=RecordedReply(status=500, body="{}"))
    with ExitStack() as stack:
        replies = submission(stack, certificates, options).auth(certificates.ca_file)
    assert (
        replies[0][0],
        replies[0][1].startswith(b"4.7.0 Temporary authentication failure."),
    ) == (
        454,
        True,
    )


def test_introspection_down_logged(certificates: CertificateFiles) -> None:
    options = TokenEndpointOptions(introspection_reply=RecordedReply(status=500, body="{}"))
    with ExitStack() as stack:
        lab = submission(stack, certificates, options)
        lab.auth(certificates.ca_file)
        log = lab.server.log_file.read_text()
    assert "oauth2 failed: Introspection failed: 500 Internal Server Error" in log


def test_repeated_failures_not_delayed(certificates: CertificateFiles) -> None:
    # Dovecot's auth penalty is off, so the third failure from 127.0.0.1 still gets its
    # 535; with the penalty it would be held for 8 s, longer than the client's timeout.
    with ExitStack() as stack:
        lab = submission(stack, certificates)
        lab.tokens.revoke_grant()
        for _ in range(2):
            lab.auth(certificates.ca_file)
        context = ssl.create_default_context(cafile=str(certificates.ca_file))
        with smtplib.SMTP("127.0.0.1", lab.server.port, timeout=10) as client:
            client.starttls(context=context)
            client.ehlo()
            client.sock.settimeout(3)  # type: ignore[union-attr]
            client.docmd("AUTH", f"XOAUTH2 {xoauth2(USER, TOKEN)}")
            assert client.docmd("")[0] == 535


def test_auth_debug_logs_token(certificates: CertificateFiles) -> None:
    # With auth_debug Dovecot writes the token into its log: the leak the log checks find.
    with ExitStack() as stack:
        lab = submission(stack, certificates, auth_debug=True)
        lab.auth(certificates.ca_file)
        log = lab.server.log_file.read_text()
    assert f"token={TOKEN}" in log
