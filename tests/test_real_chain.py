"""The deployment chain end to end: ``smtpdiag check`` and ``smtpdiag logs`` on the real chain.

Each chain scenario runs Postfix 3.7, the msmtpd-style relay, msmtp 1.8 with a refresh-token
script and Dovecot 2.3 on loopback, and sends three messages into Postfix. The tests then run
the ``smtpdiag`` program on what the chain left: the written configuration, the same
deployment given by flags, and the four log files. Each chain runs once per module, on first
use.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

import pytest
from system_programs import require_program

from smtpdiag.lab.certs import write_certificates
from smtpdiag.lab.dovecot import DovecotServer, DovecotSettings
from smtpdiag.lab.lab_account import LabAccount
from smtpdiag.lab.options import TokenEndpointOptions, TokenProvider
from smtpdiag.lab.runner import LAB_USER, LabInfo, start_lab
from smtpdiag.lab.scenarios import CHAIN_MESSAGES, SCENARIOS, get_scenario
from smtpdiag.lab.sink import SinkServer
from smtpdiag.lab.token_server import TokenServer, new_client_credentials
from smtpdiag.logs.dispatch import LineParser
from smtpdiag.logs.model import Source
from smtpdiag.logs.timestamps import TimeReader
from smtpdiag.secrets import Secret

HEALTHY = "chain"
REVOKED = "chain-refresh-revoked"
COMMAND_FAILS = "chain-token-command-fails"
DOVECOT_DOWN = "chain-dovecot-down"
CHAIN_NAMES = (HEALTHY, REVOKED, COMMAND_FAILS, DOVECOT_DOWN)
BOUNCED = (REVOKED, COMMAND_FAILS)

COMMAND_TIMEOUT_SECONDS = 120
"""Limit for one ``smtpdiag`` run; each takes about a second on loopback."""

# Findings of ``smtpdiag check`` per scenario. The info findings come from the
# auth_failure_rate check, which reads the four logs.
CHECK_CODES = {
    HEALTHY: set(),
    REVOKED: {
        "scope.token_inactive",
        "auth.token_rejected",
        "relay.auth_failure_bounces_mail",
        "auth.credentials_rejected",
        "auth_failure_rate.failures_below_threshold",
        "auth_failure_rate.pipe_command_failed",
    },
    COMMAND_FAILS: {
        "token.not_a_refresh_token",
        "token.command_failed",
        "relay.auth_failure_bounces_mail",
        "auth_failure_rate.failures_below_threshold",
        "auth_failure_rate.pipe_command_failed",
    },
    DOVECOT_DOWN: {
        "connect.refused",
        "auth_failure_rate.failures_below_threshold",
        "auth_failure_rate.pipe_command_deferred",
        "auth_failure_rate.connection_failed",
    },
}
EXIT_CODES = {HEALTHY: 0, REVOKED: 2, COMMAND_FAILS: 2, DOVECOT_DOWN: 2}

# ``smtpdiag logs`` per scenario and source: (attempts, failures, fates). It runs before
# ``smtpdiag check``, whose own sessions would add lines to the logs.
SENT_ALL = {"sent": CHAIN_MESSAGES}
BOUNCED_ALL = {"bounced": CHAIN_MESSAGES}
DEFERRED_ALL = {"deferred": CHAIN_MESSAGES}
ALL_FAILED = (CHAIN_MESSAGES, CHAIN_MESSAGES)
LOG_COUNTS: dict[str, dict[str, tuple[int, int, dict[str, int]]]] = {
    HEALTHY: {
        "postfix": (CHAIN_MESSAGES, 0, SENT_ALL),
        "msmtpd": (CHAIN_MESSAGES, 0, SENT_ALL),
        "msmtp": (CHAIN_MESSAGES, 0, {}),
        "dovecot": (CHAIN_MESSAGES, 0, {}),
    },
    REVOKED: {
        "postfix": (*ALL_FAILED, BOUNCED_ALL),
        "msmtpd": (*ALL_FAILED, BOUNCED_ALL),
        "msmtp": (*ALL_FAILED, {}),
        # The priming message, sent with msmtp before the grant was revoked, logged in once.
        "dovecot": (CHAIN_MESSAGES + 1, CHAIN_MESSAGES, {}),
    },
    COMMAND_FAILS: {
        "postfix": (*ALL_FAILED, BOUNCED_ALL),
        "msmtpd": (*ALL_FAILED, BOUNCED_ALL),
    },
    DOVECOT_DOWN: {
        "postfix": (*ALL_FAILED, DEFERRED_ALL),
        "msmtpd": (*ALL_FAILED, DEFERRED_ALL),
        "msmtp": (*ALL_FAILED, {}),
    },
}
LOG_COUNT_CASES = [
    pytest.param(name, source, id=f"{name}-{source}")
    for name, sources in LOG_COUNTS.items()
    for source in sources
]

# ``smtpdiag logs`` per scenario: reason -> count.
LOG_REASONS = {
    HEALTHY: {},
    REVOKED: {
        "auth_failure_rate.pipe_command_failed": 2 * CHAIN_MESSAGES,
        "auth.credentials_rejected": CHAIN_MESSAGES,
        "auth.token_rejected": CHAIN_MESSAGES,
    },
    COMMAND_FAILS: {"auth_failure_rate.pipe_command_failed": 2 * CHAIN_MESSAGES},
    DOVECOT_DOWN: {
        "auth_failure_rate.pipe_command_deferred": 2 * CHAIN_MESSAGES,
        "auth_failure_rate.connection_failed": CHAIN_MESSAGES,
    },
}

# msmtp's exit status in the relay's reply, as Postfix logged it.
PIPE_REPLIES = {
    REVOKED: "554 Pipe command reported error 77",
    COMMAND_FAILS: "554 Pipe command reported error 78",
    DOVECOT_DOWN: "451 Pipe command reported error 75",
}

# Which source each log file of the chain belongs to, by file name.
FILE_SOURCES = {
    "postfix.log": Source.POSTFIX,
    "msmtpd.log": Source.MSMTPD,
    "msmtp.log": Source.MSMTP,
    "msmtp-priming.log": Source.MSMTP,
    "dovecot.log": Source.DOVECOT,
}


@dataclass(frozen=True)
class CliRun:
    """Exit code, standard output and standard error of one ``smtpdiag`` run."""

    exit_code: int
    stdout: str
    stderr: str

    def document(self) -> dict[str, Any]:
        return json.loads(self.stdout)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class LineAttribution:
    """One log line and the source the line dispatcher gave it."""

    file_name: str
    line: str
    source: Source | None
    parse_error: bool


@dataclass(frozen=True)
class ChainDiagnosis:
    """What one chain scenario left, read before its lab stopped."""

    info: LabInfo
    log_texts: dict[str, str]
    """Text of each log file of the chain by file name, read before smtpdiag ran."""
    attributions: tuple[LineAttribution, ...]
    logs: CliRun
    """``smtpdiag logs`` over the four log files of the target."""
    check: CliRun
    """``smtpdiag check -c CONFIG --format json``."""
    flags_check: CliRun
    """``smtpdiag check`` with the same deployment given by flags."""

    def findings(self, run: CliRun) -> list[dict[str, Any]]:
        return [item for check in run.document()["checks"] for item in check["findings"]]

    def finding(self, run: CliRun, code: str) -> dict[str, Any]:
        matches = [item for item in self.findings(run) if item["code"] == code]
        assert matches, f"{code} not in {[item['code'] for item in self.findings(run)]}"
        return matches[0]


def smtpdiag(*arguments: str) -> CliRun:
    """Run the smtpdiag program with an environment free of SMTPDIAG_ settings."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("SMTPDIAG_")}
    result = subprocess.run(
        [sys.executable, "-m", "smtpdiag", *arguments],
        capture_output=True,
        text=True,
        check=False,
        env=environ,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )
    return CliRun(result.returncode, result.stdout, result.stderr)


def log_files(info: LabInfo) -> list[Path]:
    """Return every log file that the chain wrote: the four of the target and msmtp's log of
    the priming message, when there is one."""
    assert info.postfix_log_file is not None
    assert info.relay_log_file is not None
    assert info.msmtp_log_file is not None
    assert info.dovecot_log_file is not None
    files = [info.postfix_log_file, info.relay_log_file, info.msmtp_log_file]
    priming_log = info.msmtp_log_file.with_name("msmtp-priming.log")
    if priming_log.exists():
        files.append(priming_log)
    files.append(info.dovecot_log_file)
    return files


def attribute_lines(files: list[Path]) -> tuple[LineAttribution, ...]:
    line_parser = LineParser(TimeReader(UTC))
    attributions = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            result = line_parser.parse(line)
            attributions.append(LineAttribution(path.name, line, result.source, result.parse_error))
    return tuple(attributions)


def flag_arguments(info: LabInfo, target_logs: list[str]) -> list[str]:
    """Return the ``smtpdiag check`` flags that describe the deployment of ``info``."""
    arguments = [
        "--msmtprc",
        str(info.msmtprc),
        "--relay",
        "postfix",
        "--postfix-config-dir",
        str(info.postfix_config_dir),
        "--introspect",
        "--introspection-endpoint",
        info.introspection_endpoint,
        "--token-ca-file",
        str(info.ca_file),
        "--ntp-server",
        "127.0.0.1",
        "--ntp-port",
        str(info.ntp_port),
    ]
    for path in target_logs:
        arguments += ["--log-file", path]
    return arguments


def diagnose(name: str, parent: Path) -> ChainDiagnosis:
    with start_lab(get_scenario(name), workdir=parent) as info:
        files = log_files(info)
        target_logs = [str(path) for path in files if path.name != "msmtp-priming.log"]
        log_texts = {path.name: path.read_text(encoding="utf-8") for path in files}
        attributions = attribute_lines(files)
        logs = smtpdiag("logs", *target_logs, "--format", "json")
        check = smtpdiag("check", "-c", str(info.config_file), "--format", "json")
        flags_check = smtpdiag("check", *flag_arguments(info, target_logs), "--format", "json")
    return ChainDiagnosis(info, log_texts, attributions, logs, check, flags_check)


class LazyDiagnoses(dict[str, ChainDiagnosis]):
    """Chain diagnoses by scenario name, each made on first use."""

    def __init__(self, parent: Path) -> None:
        super().__init__()
        self._parent = parent

    def __missing__(self, name: str) -> ChainDiagnosis:
        diagnosis = diagnose(name, self._parent)
        self[name] = diagnosis
        return diagnosis


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> LazyDiagnoses:
    for program in ("postfix", "msmtp", "dovecot"):
        require_program(program)
    return LazyDiagnoses(tmp_path_factory.mktemp("chain"))


# --- smtpdiag check -c CONFIG ---


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_check_codes(chains: LazyDiagnoses, name: str) -> None:
    diagnosis = chains[name]
    codes = {item["code"] for item in diagnosis.findings(diagnosis.check)}
    assert codes == CHECK_CODES[name]


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_check_exit_code(chains: LazyDiagnoses, name: str) -> None:
    assert chains[name].check.exit_code == EXIT_CODES[name]


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_check_codes_match_scenario(chains: LazyDiagnoses, name: str) -> None:
    diagnosis = chains[name]
    codes = {
        item["code"] for item in diagnosis.findings(diagnosis.check) if item["severity"] != "info"
    }
    assert codes == set(SCENARIOS[name].expected_codes)


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_check_relay_read_with_postconf(chains: LazyDiagnoses, name: str) -> None:
    diagnosis = chains[name]
    relay = next(c for c in diagnosis.check.document()["checks"] if c["id"] == "relay")
    facts = relay["facts"]
    assert (facts["relay_source"], facts["relay_value"]) == (
        "postconf",
        f"[127.0.0.1]:{str(diagnosis.info.relay).rsplit(':', 1)[1]}",
    )


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_flags_form_same_causes(chains: LazyDiagnoses, name: str) -> None:
    diagnosis = chains[name]
    codes = {item["code"] for item in diagnosis.findings(diagnosis.flags_check)}
    assert codes == CHECK_CODES[name]


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_flags_form_exit_code(chains: LazyDiagnoses, name: str) -> None:
    assert chains[name].flags_check.exit_code == EXIT_CODES[name]


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_check_writes_nothing_to_stderr(chains: LazyDiagnoses, name: str) -> None:
    assert (chains[name].check.stderr, chains[name].flags_check.stderr) == ("", "")


def test_revoked_introspection_inactive(chains: LazyDiagnoses) -> None:
    diagnosis = chains[REVOKED]
    facts = diagnosis.finding(diagnosis.check, "scope.token_inactive")["facts"]
    assert (facts["active"], facts["http_status"]) == (False, 200)


def test_revoked_dovecot_rejection(chains: LazyDiagnoses) -> None:
    diagnosis = chains[REVOKED]
    facts = diagnosis.finding(diagnosis.check, "auth.token_rejected")["facts"]
    assert (facts["reply_code"], facts["enhanced_code"]) == (535, "5.7.8")


def test_command_fails_names_invalid_grant(chains: LazyDiagnoses) -> None:
    diagnosis = chains[COMMAND_FAILS]
    facts = diagnosis.finding(diagnosis.check, "token.command_failed")["facts"]
    assert (facts["exit_status"], "HTTP 400 invalid_grant" in facts["command_stderr"]) == (
        1,
        True,
    )


def test_dovecot_down_names_port(chains: LazyDiagnoses) -> None:
    diagnosis = chains[DOVECOT_DOWN]
    facts = diagnosis.finding(diagnosis.check, "connect.refused")["facts"]
    assert f"{facts['address']}:{facts['port']}" == diagnosis.info.dovecot


# --- the relay check's bounce finding ---


@pytest.mark.parametrize("name", BOUNCED)
def test_relay_finding_counts_bounces(chains: LazyDiagnoses, name: str) -> None:
    diagnosis = chains[name]
    finding = diagnosis.finding(diagnosis.check, "relay.auth_failure_bounces_mail")
    assert (finding["facts"]["bounces"], finding["title"].startswith("3 messages bounced")) == (
        CHAIN_MESSAGES,
        True,
    )


@pytest.mark.parametrize(
    ("name", "exit_statuses"),
    [
        pytest.param(REVOKED, {"77": CHAIN_MESSAGES}, id="revoked"),
        pytest.param(COMMAND_FAILS, {"78": CHAIN_MESSAGES}, id="command-fails"),
    ],
)
def test_relay_finding_exit_statuses(
    chains: LazyDiagnoses, name: str, exit_statuses: dict[str, int]
) -> None:
    diagnosis = chains[name]
    facts = diagnosis.finding(diagnosis.check, "relay.auth_failure_bounces_mail")["facts"]
    assert facts["exit_statuses"] == exit_statuses


@pytest.mark.parametrize("name", BOUNCED)
@pytest.mark.parametrize("words", ["EX_TEMPFAIL", "451", "defer"])
def test_relay_fix_names_deferral(chains: LazyDiagnoses, name: str, words: str) -> None:
    diagnosis = chains[name]
    fix = diagnosis.finding(diagnosis.check, "relay.auth_failure_bounces_mail")["fix"]
    assert words in fix


def test_relay_no_bounce_when_deferred(chains: LazyDiagnoses) -> None:
    diagnosis = chains[DOVECOT_DOWN]
    relay = next(c for c in diagnosis.check.document()["checks"] if c["id"] == "relay")
    assert (relay["status"], relay["findings"]) == ("ok", [])


# --- smtpdiag logs over the four logs ---


# Bounced mail is a warning; a low-volume failure alone is information.
LOGS_EXIT_CODES = {HEALTHY: 0, REVOKED: 1, COMMAND_FAILS: 1, DOVECOT_DOWN: 0}


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_logs_exit_code(chains: LazyDiagnoses, name: str) -> None:
    assert (chains[name].logs.exit_code, chains[name].logs.stderr) == (LOGS_EXIT_CODES[name], "")


@pytest.mark.parametrize("name", [REVOKED, COMMAND_FAILS])
def test_logs_bounces_counted_once(chains: LazyDiagnoses, name: str) -> None:
    # Postfix and msmtpd each log every bounce; the finding counts each message once.
    findings = chains[name].logs.document()["findings"]
    bounced = next(f for f in findings if f["code"] == "auth_failure_rate.mail_bounced")
    assert bounced["facts"]["bounced"] == CHAIN_MESSAGES
    assert bounced["facts"]["bounced_by_source"] == {
        "postfix": CHAIN_MESSAGES,
        "msmtpd": CHAIN_MESSAGES,
    }


def test_logs_no_bounce_warning_when_deferred(chains: LazyDiagnoses) -> None:
    findings = chains[DOVECOT_DOWN].logs.document()["findings"]
    assert "auth_failure_rate.mail_bounced" not in [finding["code"] for finding in findings]


@pytest.mark.parametrize(("name", "source"), LOG_COUNT_CASES)
def test_logs_source_counts(chains: LazyDiagnoses, name: str, source: str) -> None:
    counts = chains[name].logs.document()["by_source"][source]
    assert (counts["attempts"], counts["failures"], counts["fates"]) == LOG_COUNTS[name][source]


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_logs_no_parse_errors(chains: LazyDiagnoses, name: str) -> None:
    assert chains[name].logs.document()["totals"]["parse_errors"] == 0


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_logs_reasons(chains: LazyDiagnoses, name: str) -> None:
    reasons = chains[name].logs.document()["by_reason"]
    assert {code: reason["count"] for code, reason in reasons.items()} == LOG_REASONS[name]


@pytest.mark.parametrize(
    ("name", "fates"),
    [
        # Postfix and the relay each log the fate of every message.
        pytest.param(HEALTHY, {"sent": 2 * CHAIN_MESSAGES}, id="healthy"),
        pytest.param(REVOKED, {"bounced": 2 * CHAIN_MESSAGES}, id="revoked"),
        pytest.param(COMMAND_FAILS, {"bounced": 2 * CHAIN_MESSAGES}, id="command-fails"),
        pytest.param(DOVECOT_DOWN, {"deferred": 2 * CHAIN_MESSAGES}, id="dovecot-down"),
    ],
)
def test_logs_fates(chains: LazyDiagnoses, name: str, fates: dict[str, int]) -> None:
    assert chains[name].logs.document()["fates"] == fates


@pytest.mark.parametrize("name", list(PIPE_REPLIES))
def test_logs_pipe_reply_example(chains: LazyDiagnoses, name: str) -> None:
    code = "auth_failure_rate.pipe_command_" + ("deferred" if name == DOVECOT_DOWN else "failed")
    reason = chains[name].logs.document()["by_reason"][code]
    assert PIPE_REPLIES[name] in reason["example"]


def test_command_fails_msmtp_log_empty(chains: LazyDiagnoses) -> None:
    # msmtp 1.8.23 writes no log line when its passwordeval command fails.
    diagnosis = chains[COMMAND_FAILS]
    assert (
        diagnosis.log_texts["msmtp.log"],
        "msmtp" in diagnosis.logs.document()["by_source"],
    ) == (
        "",
        False,
    )


def test_command_fails_dovecot_saw_no_auth(chains: LazyDiagnoses) -> None:
    diagnosis = chains[COMMAND_FAILS]
    assert "method=XOAUTH2" not in diagnosis.log_texts["dovecot.log"]


def test_revoked_priming_login_in_dovecot_log(chains: LazyDiagnoses) -> None:
    log = chains[REVOKED].log_texts["dovecot.log"]
    logins = [line for line in log.splitlines() if "submission-login: Info: Login:" in line]
    assert len(logins) == 1


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_delivered_count(chains: LazyDiagnoses, name: str) -> None:
    info = chains[name].info
    expected = CHAIN_MESSAGES if name == HEALTHY else 0
    assert (info.messages_sent, info.delivered) == (CHAIN_MESSAGES, expected)


# --- every line of every log file has its source ---


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_every_line_has_its_source(chains: LazyDiagnoses, name: str) -> None:
    wrong = [
        f"{item.file_name}: {item.line}"
        for item in chains[name].attributions
        if item.source is not FILE_SOURCES[item.file_name]
    ]
    assert wrong == []


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_no_line_parse_errors(chains: LazyDiagnoses, name: str) -> None:
    errors = [item.line for item in chains[name].attributions if item.parse_error]
    assert errors == []


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_every_log_file_read(chains: LazyDiagnoses, name: str) -> None:
    names = {item.file_name for item in chains[name].attributions}
    expected = {"postfix.log", "msmtpd.log", "dovecot.log"}
    if name != COMMAND_FAILS:
        expected.add("msmtp.log")
    if name == REVOKED:
        expected.add("msmtp-priming.log")
    assert names == expected


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_chain_directories_removed(chains: LazyDiagnoses, name: str) -> None:
    info = chains[name].info
    assert info.postfix_log_file is not None
    assert info.dovecot_log_file is not None
    assert (info.postfix_log_file.exists(), info.dovecot_log_file.parent.exists()) == (
        False,
        False,
    )


# --- Dovecot with auth_debug writes the token into its log ---


@dataclass(frozen=True)
class LeakRun:
    """The ``smtpdiag`` runs over the log of a Dovecot with ``auth_debug = yes``."""

    token: str
    encoded_response: str
    """The base64 XOAUTH2 initial response, which contains the token."""
    dovecot_log: str
    auth: CliRun
    """``smtpdiag check`` that sent the token to Dovecot."""
    logs_json: CliRun
    logs_table: CliRun
    check: CliRun
    """``smtpdiag check --only secrets --log-file dovecot.log``, without the token."""

    def runs(self) -> list[CliRun]:
        return [self.auth, self.logs_json, self.logs_table, self.check]


def run_leak(directory: Path) -> LeakRun:
    token = "ya29.lab-" + token_urlsafe(32)
    token_file = directory / "access-token"
    token_file.write_text(token + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    certificates = write_certificates(directory)
    account = LabAccount(LAB_USER, Secret(token, "test token"))
    credentials = new_client_credentials(TokenProvider.MICROSOFT)
    with ExitStack() as stack:
        tokens = stack.enter_context(
            TokenServer(TokenEndpointOptions(), account, credentials, certificates)
        )
        sink = stack.enter_context(SinkServer())
        dovecot_directory = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="smtpdiag-test-")
        )
        settings = DovecotSettings(
            introspection_url=tokens.introspection_url,
            token_ca_file=certificates.ca_file,
            certificates=certificates,
            relay_address=sink.address,
            auth_debug=True,
        )
        server = stack.enter_context(DovecotServer(Path(dovecot_directory), settings))
        auth = smtpdiag(
            "check",
            server.address,
            "--ca-file",
            str(certificates.ca_file),
            "--user",
            LAB_USER,
            "--access-token-file",
            str(token_file),
            "--mechanism",
            "XOAUTH2",
            "--only",
            "connect,tls,auth",
        )
        log_file = str(server.log_file)
        dovecot_log = server.log_file.read_text(encoding="utf-8")
        logs_json = smtpdiag("logs", log_file, "--format", "json")
        logs_table = smtpdiag("logs", log_file)
        check = smtpdiag("check", "--only", "secrets", "--log-file", log_file, "--format", "json")
    response = f"user={LAB_USER}\x01auth=Bearer {token}\x01\x01"
    encoded = base64.b64encode(response.encode()).decode()
    return LeakRun(token, encoded, dovecot_log, auth, logs_json, logs_table, check)


@pytest.fixture(scope="module")
def leak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LeakRun]:
    require_program("dovecot")
    yield run_leak(tmp_path_factory.mktemp("leak"))


def test_leak_auth_accepted(leak: LeakRun) -> None:
    assert leak.auth.exit_code == 0


def test_leak_token_in_dovecot_log(leak: LeakRun) -> None:
    assert leak.token in leak.dovecot_log


def test_leak_logs_reports_token(leak: LeakRun) -> None:
    # auth_debug logs the passdb reply with token=..., and submission-login's smtp-server
    # debug logs the whole AUTH command with the base64 initial response.
    kinds = {item["kind"] for item in leak.logs_json.document()["leaks"]}
    assert kinds == {"google_access_token", "xoauth2_response"}


def test_leak_logs_finding(leak: LeakRun) -> None:
    codes = [item["code"] for item in leak.logs_json.document()["findings"]]
    assert codes.count("secrets.token_in_log") == 2


def test_leak_logs_exit_code(leak: LeakRun) -> None:
    assert (leak.logs_json.exit_code, leak.logs_table.exit_code) == (2, 2)


def test_leak_logs_names_log_file(leak: LeakRun) -> None:
    paths = {Path(item["path"]).name for item in leak.logs_json.document()["leaks"]}
    assert paths == {"dovecot.log"}


def test_leak_check_reports_token(leak: LeakRun) -> None:
    document = leak.check.document()
    kinds = {
        item["facts"]["secret_kind"]
        for check in document["checks"]
        for item in check["findings"]
        if item["code"] == "secrets.token_in_log"
    }
    assert kinds == {"google_access_token", "xoauth2_response"}


def test_leak_check_exit_code(leak: LeakRun) -> None:
    assert leak.check.exit_code == 2


@pytest.mark.parametrize("field", ["stdout", "stderr"])
def test_leak_token_not_in_output(leak: LeakRun, field: str) -> None:
    found = [run for run in leak.runs() if leak.token in getattr(run, field)]
    assert found == []


@pytest.mark.parametrize("field", ["stdout", "stderr"])
def test_leak_encoded_token_not_in_output(leak: LeakRun, field: str) -> None:
    found = [run for run in leak.runs() if leak.encoded_response in getattr(run, field)]
    assert found == []
