"""secrets check: rules table-tested from file facts, token command parsing, script scanning,
and runs on real files, links and logs made in a temporary directory."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from checks import secrets
from checks.secrets import MSMTP_CONFIG, InspectedFile, Inspection, LogScan
from smtpdiag.cli import main
from smtpdiag.context import (
    CheckContext,
    LogSettings,
    MsmtpSettings,
    OAuthSettings,
    SecretFile,
    SecretRole,
    SecretSettings,
    Settings,
    Target,
    TlsMode,
)
from smtpdiag.local.permissions import FileFacts, mode_text, read_file_facts
from smtpdiag.local.token_command import TOKEN_PROGRAM, TOKEN_SCRIPT
from smtpdiag.logs.reader import DEADLINE_CHECK_LINES
from smtpdiag.models import CheckResult, Severity, Status

RUN_AS_UID = 1000


def file_facts(
    path: str = "/etc/msmtp/refresh-token",
    mode: int = 0o600,
    uid: int = RUN_AS_UID,
    **fields: Any,
) -> FileFacts:
    values: dict[str, Any] = {
        "exists": True,
        "file_type": "regular file",
        "uid": uid,
        "gid": uid,
        "owner": "mailer" if uid == RUN_AS_UID else f"user{uid}",
        "group": "mailer" if uid == RUN_AS_UID else f"group{uid}",
        "mode": mode,
    }
    values.update(fields)
    return FileFacts(path=path, **values)


def missing(path: str = "/etc/msmtp/refresh-token", **fields: Any) -> FileFacts:
    values: dict[str, Any] = {"error": "No such file or directory", "missing": True}
    values.update(fields)
    return FileFacts(path=path, exists=False, **values)


SYSTEM_DIRECTORY = file_facts("/usr/bin", 0o755, uid=0, file_type="directory")
SCRIPT_DIRECTORY = file_facts("/usr/local/bin", 0o755, uid=0, file_type="directory")


def evaluate_one(item: InspectedFile) -> CheckResult:
    return secrets.evaluate(Inspection(files=(item,), run_as_uid=RUN_AS_UID, run_as="mailer"))


def codes(result: CheckResult) -> list[str]:
    return [finding.code for finding in result.findings]


def finding(result: CheckResult, code: str) -> Any:
    return next(item for item in result.findings if item.code == code)


REFRESH = SecretRole.REFRESH_TOKEN.value
CACHE = SecretRole.TOKEN_CACHE.value


@dataclass(frozen=True)
class Case:
    item: InspectedFile
    codes: list[str]
    status: Status


def secret(facts: FileFacts, role: str = REFRESH, **fields: Any) -> InspectedFile:
    return InspectedFile(facts=facts, role=role, **fields)


def program(
    facts: FileFacts,
    role: str = TOKEN_SCRIPT,
    directory: FileFacts = SCRIPT_DIRECTORY,
    secret_kinds: tuple[str, ...] = (),
) -> InspectedFile:
    return InspectedFile(
        facts=facts, role=role, directories=(directory,), secret_kinds=secret_kinds
    )


SCRIPT = "/usr/local/bin/msmtp-token"
K8S_LINK = {"symlink_target": "..data/refresh-token", "resolved_path": "/var/run/x/..2026/t"}

CASES = {
    # Secret files.
    "secret-0600-own": Case(secret(file_facts()), [], Status.OK),
    "secret-0400-root": Case(secret(file_facts(mode=0o400, uid=0)), [], Status.OK),
    "secret-0644": Case(
        secret(file_facts(mode=0o644)), ["secrets.readable_by_others"], Status.CRITICAL
    ),
    "secret-0640": Case(
        secret(file_facts(mode=0o640)), ["secrets.readable_by_group"], Status.WARNING
    ),
    "secret-0660": Case(
        secret(file_facts(mode=0o660)),
        ["secrets.readable_by_group", "secrets.writable_by_group"],
        Status.WARNING,
    ),
    "secret-0666": Case(
        secret(file_facts(mode=0o666)),
        ["secrets.readable_by_others", "secrets.writable_by_others"],
        Status.CRITICAL,
    ),
    "secret-0602-write-only-others": Case(
        secret(file_facts(mode=0o602)), ["secrets.writable_by_others"], Status.CRITICAL
    ),
    "secret-other-owner": Case(
        secret(file_facts(uid=1234)), ["secrets.owned_by_other_user"], Status.WARNING
    ),
    "kubernetes-0644": Case(
        secret(file_facts(mode=0o644, uid=0, **K8S_LINK), kubernetes=True),
        ["secrets.kubernetes_secret_volume"],
        Status.WARNING,
    ),
    "kubernetes-0400": Case(
        secret(file_facts(mode=0o400, uid=0, **K8S_LINK), kubernetes=True), [], Status.OK
    ),
    "kubernetes-0666": Case(
        secret(file_facts(mode=0o666, uid=0, **K8S_LINK), kubernetes=True),
        ["secrets.readable_by_others", "secrets.writable_by_others"],
        Status.CRITICAL,
    ),
    "systemd-credential-0400": Case(
        secret(file_facts(mode=0o400, uid=0), systemd_credential=True), [], Status.OK
    ),
    "systemd-credential-0666": Case(
        secret(file_facts(mode=0o666, uid=0), systemd_credential=True),
        ["secrets.readable_by_others", "secrets.writable_by_others"],
        Status.CRITICAL,
    ),
    "secret-in-world-writable-directory": Case(
        secret(
            file_facts(mode=0o600),
            directories=(file_facts("/srv/drop", 0o777, uid=0, file_type="directory"),),
        ),
        ["secrets.directory_writable"],
        Status.CRITICAL,
    ),
    "secret-in-sticky-directory": Case(
        secret(
            file_facts(mode=0o600),
            directories=(file_facts("/tmp", 0o1777, uid=0, file_type="directory"),),
        ),
        [],
        Status.OK,
    ),
    "refresh-token-missing": Case(secret(missing()), ["secrets.file_missing"], Status.WARNING),
    "token-cache-missing": Case(secret(missing(), role=CACHE), [], Status.OK),
    "dangling-link": Case(
        secret(missing(symlink_target="/srv/gone")), ["secrets.file_missing"], Status.WARNING
    ),
    "permission-denied": Case(
        secret(FileFacts("/home/a/.token", exists=False, error="Permission denied")),
        ["secrets.file_inaccessible"],
        Status.WARNING,
    ),
    "directory-as-secret": Case(
        secret(file_facts(mode=0o700, file_type="directory")),
        ["secrets.not_regular_file"],
        Status.WARNING,
    ),
    # Token program and script.
    "system-program-0755": Case(
        program(file_facts("/usr/bin/cat", 0o755, uid=0), TOKEN_PROGRAM, SYSTEM_DIRECTORY),
        [],
        Status.OK,
    ),
    "script-0700": Case(program(file_facts(SCRIPT, 0o700)), [], Status.OK),
    "script-0770-group-writable": Case(
        program(file_facts(SCRIPT, 0o770)), ["secrets.program_writable"], Status.CRITICAL
    ),
    "script-0757-other-writable": Case(
        program(file_facts(SCRIPT, 0o757)), ["secrets.program_writable"], Status.CRITICAL
    ),
    "interpreter-0775": Case(
        program(file_facts("/usr/bin/python3", 0o775, uid=0), TOKEN_PROGRAM, SYSTEM_DIRECTORY),
        ["secrets.program_writable"],
        Status.CRITICAL,
    ),
    "script-other-owner": Case(
        program(file_facts(SCRIPT, 0o700, uid=1234)),
        ["secrets.owned_by_other_user"],
        Status.WARNING,
    ),
    "script-directory-0777": Case(
        program(file_facts(SCRIPT, 0o700), directory=replace(SCRIPT_DIRECTORY, mode=0o777)),
        ["secrets.directory_writable"],
        Status.CRITICAL,
    ),
    "script-directory-0775": Case(
        program(file_facts(SCRIPT, 0o700), directory=replace(SCRIPT_DIRECTORY, mode=0o775)),
        ["secrets.directory_writable"],
        Status.CRITICAL,
    ),
    "script-directory-1777-sticky": Case(
        program(file_facts(SCRIPT, 0o700), directory=replace(SCRIPT_DIRECTORY, mode=0o1777)),
        [],
        Status.OK,
    ),
    "script-secret-0755": Case(
        program(file_facts(SCRIPT, 0o755), secret_kinds=("client_secret",)),
        ["secrets.program_contains_secret"],
        Status.CRITICAL,
    ),
    "script-secret-0750": Case(
        program(file_facts(SCRIPT, 0o750), secret_kinds=("client_secret",)),
        ["secrets.program_contains_secret"],
        Status.WARNING,
    ),
    "script-secret-0700": Case(
        program(file_facts(SCRIPT, 0o700), secret_kinds=("client_secret",)), [], Status.OK
    ),
    "script-missing": Case(program(missing(SCRIPT)), ["secrets.file_missing"], Status.WARNING),
    "program-path-missing": Case(
        program(missing("/opt/token/get"), TOKEN_PROGRAM),
        ["secrets.program_not_found"],
        Status.WARNING,
    ),
    # msmtp configuration.
    "msmtprc-0600": Case(program(file_facts("/etc/msmtprc", 0o600), MSMTP_CONFIG), [], Status.OK),
    "msmtprc-0644-readability-not-judged": Case(
        program(file_facts("/etc/msmtprc", 0o644), MSMTP_CONFIG), [], Status.OK
    ),
    "msmtprc-0620": Case(
        program(file_facts("/etc/msmtprc", 0o620), MSMTP_CONFIG),
        ["secrets.msmtprc_writable"],
        Status.CRITICAL,
    ),
    "msmtprc-directory-0777": Case(
        program(
            file_facts("/srv/mail/msmtprc", 0o600),
            MSMTP_CONFIG,
            file_facts("/srv/mail", 0o777, uid=0, file_type="directory"),
        ),
        ["secrets.directory_writable"],
        Status.CRITICAL,
    ),
    "msmtprc-missing": Case(program(missing("/etc/msmtprc"), MSMTP_CONFIG), [], Status.OK),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rule_codes(case: Case) -> None:
    assert sorted(codes(evaluate_one(case.item))) == sorted(case.codes)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rule_status(case: Case) -> None:
    assert evaluate_one(case.item).status is case.status


def test_group_writable_script_title() -> None:
    result = evaluate_one(CASES["script-0770-group-writable"].item)
    assert result.findings[0].title == (
        "The token script /usr/local/bin/msmtp-token is writable by group mailer (mode 0770)"
    )


def test_group_writable_script_fix() -> None:
    result = evaluate_one(CASES["script-0770-group-writable"].item)
    assert result.findings[0].fix.startswith("chmod go-w /usr/local/bin/msmtp-token")


def test_readable_secret_fix_names_path() -> None:
    result = evaluate_one(CASES["secret-0644"].item)
    assert result.findings[0].fix.startswith("chmod 600 /etc/msmtp/refresh-token")


def test_readable_secret_facts() -> None:
    result = evaluate_one(CASES["secret-0644"].item)
    assert result.findings[0].facts == {
        "path": "/etc/msmtp/refresh-token",
        "role": "refresh token",
        "mode": "0644",
        "owner": "mailer",
        "group": "mailer",
    }


def test_other_owner_names_both_accounts() -> None:
    result = evaluate_one(CASES["secret-other-owner"].item)
    assert result.findings[0].title == (
        "The refresh token /etc/msmtp/refresh-token belongs to user1234, not to mailer or root"
    )


def test_kubernetes_fix_names_volume_settings() -> None:
    fix = evaluate_one(CASES["kubernetes-0644"].item).findings[0].fix
    assert "defaultMode: 0400" in fix
    assert "items[]" in fix
    assert "fsGroup" in fix
    assert "runAsUser" in fix


def test_dangling_link_cause_names_target() -> None:
    cause = evaluate_one(CASES["dangling-link"].item).findings[0].cause
    assert "points at /srv/gone, which does not exist" in cause


def test_directory_finding_names_directory() -> None:
    result = evaluate_one(CASES["script-directory-0777"].item)
    assert result.findings[0].facts["directory"] == "/usr/local/bin"
    assert result.findings[0].fix.startswith("chmod go-w /usr/local/bin")


def test_contained_secret_names_kind() -> None:
    result = evaluate_one(CASES["script-secret-0755"].item)
    assert "an OAuth2 client secret" in result.findings[0].title


def test_contained_secret_at_0700_in_facts() -> None:
    result = evaluate_one(CASES["script-secret-0700"].item)
    assert result.facts["files"][0]["secret_kinds"] == ["client_secret"]


def test_file_facts_listed() -> None:
    result = evaluate_one(CASES["secret-0640"].item)
    assert result.facts["files"] == [
        {
            "path": "/etc/msmtp/refresh-token",
            "exists": True,
            "file_type": "regular file",
            "owner": "mailer",
            "uid": RUN_AS_UID,
            "group": "mailer",
            "gid": RUN_AS_UID,
            "mode": "0640",
            "role": "refresh token",
        }
    ]


def test_program_not_found_from_inspection() -> None:
    inspection = Inspection(
        files=(), run_as_uid=RUN_AS_UID, run_as="mailer", programs_not_found=("get-token",)
    )
    result = secrets.evaluate(inspection)
    assert codes(result) == ["secrets.program_not_found"]
    assert result.findings[0].title == "The program get-token of the token command was not found"


def test_critical_findings_first() -> None:
    items = (CASES["secret-0640"].item, CASES["script-0770-group-writable"].item)
    result = secrets.evaluate(Inspection(files=items, run_as_uid=RUN_AS_UID, run_as="mailer"))
    assert [item.severity for item in result.findings] == [Severity.CRITICAL, Severity.WARNING]


@pytest.mark.parametrize(
    ("items", "logs", "summary"),
    [
        pytest.param((), None, "No problem found in 0 files", id="nothing"),
        pytest.param(
            ("secret-0600-own",),
            LogScan(files=("/var/log/mail.log",)),
            "No problem found in 1 file and 1 log file",
            id="clean",
        ),
        pytest.param(
            ("secret-0640", "script-0770-group-writable"),
            None,
            "1 critical and 1 warning findings in 2 files",
            id="findings",
        ),
        pytest.param(
            ("secret-0600-own",),
            LogScan(files=("/a.log", "/b.log"), complete=False),
            "No problem found in 1 file and 2 log files; the deadline came before the end of "
            "the log files",
            id="deadline",
        ),
        pytest.param(
            ("secret-0600-own",),
            LogScan(files=("/a.log", "/b.log"), unreadable=(("/b.log", "Is a directory"),)),
            "0 critical and 1 warning findings in 1 file and 1 of 2 log files; some log files "
            "could not be read to their end",
            id="unreadable log",
        ),
    ],
)
def test_summary_text(items: tuple[str, ...], logs: LogScan | None, summary: str) -> None:
    files = tuple(CASES[name].item for name in items)
    inspection = Inspection(files=files, run_as_uid=RUN_AS_UID, run_as="mailer")
    assert secrets.evaluate(inspection, logs).summary == summary


def test_incomplete_log_scan_is_unknown() -> None:
    inspection = Inspection(files=(), run_as_uid=RUN_AS_UID, run_as="mailer")
    result = secrets.evaluate(inspection, LogScan(files=("/a.log",), complete=False))
    assert result.status is Status.UNKNOWN


def test_incomplete_log_scan_keeps_critical() -> None:
    items = (CASES["secret-0644"].item,)
    inspection = Inspection(files=items, run_as_uid=RUN_AS_UID, run_as="mailer")
    result = secrets.evaluate(inspection, LogScan(files=("/a.log",), complete=False))
    assert result.status is Status.CRITICAL


# Real files.


def context(deadline: float = float("inf")) -> CheckContext:
    return CheckContext(settings=Settings(), deadline=deadline)


def target(
    files: tuple[SecretFile, ...] = (),
    token_command: str | None = None,
    msmtprc: str | None = None,
    logs: tuple[str, ...] = (),
    credentials_directory: str | None = None,
) -> Target:
    return Target(
        host="",
        port=587,
        tls_mode=TlsMode.STARTTLS,
        oauth=OAuthSettings(token_command=token_command),
        msmtp=MsmtpSettings(config_file=msmtprc),
        logs=LogSettings(files=logs),
        secrets=SecretSettings(files=files, credentials_directory=credentials_directory),
    )


def write(path: Path, text: str, mode: int) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_nothing_to_check_skipped() -> None:
    result = secrets.run(target(), context())
    assert result.status is Status.SKIPPED
    assert result.summary == secrets.NOTHING_TO_CHECK


def test_run_group_writable_token_script(tmp_path: Path) -> None:
    script = write(tmp_path / "token.sh", "#!/bin/sh\nexec oauth2-refresh\n", 0o770)
    result = secrets.run(target(token_command=str(script)), context())
    assert codes(result) == ["secrets.program_writable"]
    assert result.status is Status.CRITICAL


def test_run_interpreter_script(tmp_path: Path) -> None:
    script = write(tmp_path / "token.sh", "exec oauth2-refresh\n", 0o775)
    result = secrets.run(target(token_command=f"/bin/sh {script}"), context())
    writable = finding(result, "secrets.program_writable")
    assert writable.facts["path"] == str(script)
    assert writable.facts["role"] == TOKEN_SCRIPT


def test_run_script_with_secret(tmp_path: Path) -> None:
    text = "#!/bin/sh\nCLIENT_SECRET='GOCSPX-AbCdEfGhIjKlMnOp1234'\n"
    script = write(tmp_path / "token.sh", text, 0o755)
    result = secrets.run(target(token_command=str(script)), context())
    assert codes(result) == ["secrets.program_contains_secret"]
    assert "GOCSPX-AbCdEfGhIjKlMnOp1234" not in json.dumps(result.to_dict())


def test_run_writable_script_directory(tmp_path: Path) -> None:
    directory = tmp_path / "bin"
    directory.mkdir()
    directory.chmod(0o777)
    script = write(directory / "token.sh", "exec oauth2-refresh\n", 0o700)
    result = secrets.run(target(token_command=str(script)), context())
    assert codes(result) == ["secrets.directory_writable"]


def test_run_sticky_script_directory(tmp_path: Path) -> None:
    directory = tmp_path / "bin"
    directory.mkdir()
    directory.chmod(0o1777)
    script = write(directory / "token.sh", "exec oauth2-refresh\n", 0o700)
    result = secrets.run(target(token_command=str(script)), context())
    assert result.findings == ()


def test_run_system_program_fine() -> None:
    result = secrets.run(target(token_command="cat /dev/null"), context())
    assert result.findings == ()
    assert result.facts["files"][0]["role"] == TOKEN_PROGRAM


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param(0o600, [], id="0600"),
        pytest.param(0o400, [], id="0400"),
        pytest.param(0o640, ["secrets.readable_by_group"], id="0640"),
        pytest.param(0o644, ["secrets.readable_by_others"], id="0644"),
        pytest.param(0o620, ["secrets.writable_by_group"], id="0620"),
    ],
)
def test_run_secret_file_modes(tmp_path: Path, mode: int, expected: list[str]) -> None:
    token = write(tmp_path / "refresh-token", "1//0gAbCdEf\n", mode)
    files = (SecretFile(str(token), SecretRole.REFRESH_TOKEN),)
    assert codes(secrets.run(target(files), context())) == expected


def test_run_secret_file_facts(tmp_path: Path) -> None:
    token = write(tmp_path / "refresh-token", "1//0gAbCdEf\n", 0o640)
    files = (SecretFile(str(token), SecretRole.REFRESH_TOKEN),)
    listed = secrets.run(target(files), context()).facts["files"][0]
    assert listed["mode"] == "0640"
    assert listed["role"] == "refresh token"
    assert listed["uid"] == os.geteuid()


def test_run_symlink_reports_link_and_target(tmp_path: Path) -> None:
    token = write(tmp_path / "real-token", "1//0gAbCdEf\n", 0o644)
    link = tmp_path / "refresh-token"
    link.symlink_to(token)
    files = (SecretFile(str(link), SecretRole.REFRESH_TOKEN),)
    result = secrets.run(target(files), context())
    assert codes(result) == ["secrets.readable_by_others"]
    assert result.findings[0].facts["symlink_target"] == str(token)
    assert result.facts["files"][0]["resolved_path"] == str(token)


def test_run_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "refresh-token"
    link.symlink_to(tmp_path / "gone")
    files = (SecretFile(str(link), SecretRole.REFRESH_TOKEN),)
    assert codes(secrets.run(target(files), context())) == ["secrets.file_missing"]


def test_run_missing_token_cache_fine(tmp_path: Path) -> None:
    files = (SecretFile(str(tmp_path / "cache.json"), SecretRole.TOKEN_CACHE),)
    result = secrets.run(target(files), context())
    assert result.findings == ()
    assert result.facts["files"][0]["exists"] is False


def test_run_other_owner_as_root_only_in_facts(tmp_path: Path) -> None:
    token = write(tmp_path / "client-secret", "secret\n", 0o600)
    os.chown(token, 4321, 4321)
    files = (SecretFile(str(token), SecretRole.CLIENT_SECRET),)
    result = secrets.run(target(files), context())
    assert codes(result) == []
    assert result.facts["files"][0]["uid"] == 4321


def kubelet_volume(root: Path, name: str, mode: int) -> Path:
    """Build the kubelet atomic-writer layout: NAME -> ..data/NAME, ..data -> ..TIMESTAMP."""
    version = root / "..2026_12_05_10_00_00.123456789"
    version.mkdir(parents=True)
    write(version / name, "1//0gAbCdEf\n", mode)
    (root / "..data").symlink_to(version.name)
    (root / name).symlink_to(f"..data/{name}")
    return root / name


def test_run_kubernetes_secret_volume(tmp_path: Path) -> None:
    token = kubelet_volume(tmp_path / "secret", "refresh-token", 0o644)
    files = (SecretFile(str(token), SecretRole.REFRESH_TOKEN),)
    result = secrets.run(target(files), context())
    assert codes(result) == ["secrets.kubernetes_secret_volume"]
    assert result.status is Status.WARNING
    assert result.facts["files"][0]["kubernetes_secret_volume"] is True


def test_run_kubernetes_secret_volume_0400(tmp_path: Path) -> None:
    token = kubelet_volume(tmp_path / "secret", "refresh-token", 0o400)
    files = (SecretFile(str(token), SecretRole.REFRESH_TOKEN),)
    assert secrets.run(target(files), context()).findings == ()


def test_run_systemd_credential(tmp_path: Path) -> None:
    directory = tmp_path / "credentials"
    directory.mkdir(mode=0o500)
    credential = write(directory / "smtpdiag.refresh_token", "1//0gAbCdEf\n", 0o400)
    files = (SecretFile(str(credential), SecretRole.REFRESH_TOKEN),)
    result = secrets.run(target(files, credentials_directory=str(directory)), context())
    assert result.findings == ()
    assert result.facts["files"][0]["systemd_credential"] is True


def test_run_systemd_credential_judged_by_mode(tmp_path: Path) -> None:
    directory = tmp_path / "credentials"
    directory.mkdir()
    directory.chmod(0o777)
    credential = write(directory / "smtpdiag.refresh_token", "1//0gAbCdEf\n", 0o666)
    files = (SecretFile(str(credential), SecretRole.REFRESH_TOKEN),)
    result = secrets.run(target(files, credentials_directory=str(directory)), context())
    assert codes(result) == [
        "secrets.readable_by_others",
        "secrets.writable_by_others",
        "secrets.directory_writable",
    ]
    assert result.facts["files"][0]["systemd_credential"] is True


def test_run_secret_in_writable_directory(tmp_path: Path) -> None:
    directory = tmp_path / "drop"
    directory.mkdir()
    directory.chmod(0o777)
    token = write(directory / "refresh-token", "1//0gAbCdEf\n", 0o600)
    files = (SecretFile(str(token), SecretRole.REFRESH_TOKEN),)
    result = secrets.run(target(files), context())
    assert codes(result) == ["secrets.directory_writable"]
    assert result.findings[0].facts["directory"] == str(directory)


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        pytest.param("get-token 'unbalanced", "unbalanced quotes", id="unbalanced quotes"),
        pytest.param("$HOME/bin/get-token", "shell expansion", id="variable"),
        pytest.param("sh -c 'cat /etc/token'", "inline code", id="sh -c"),
    ],
)
def test_run_token_command_not_judged(command: str, reason: str) -> None:
    result = secrets.run(target(token_command=command), context())
    assert "token command (passwordeval) was not judged" in result.summary
    assert reason in result.facts["token_command_not_judged"]


def test_run_unreadable_log_files(tmp_path: Path) -> None:
    broken = tmp_path / "mail.log.1.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00\x00\x00")
    paths = (str(tmp_path / "absent.log"), str(tmp_path), str(broken))
    result = secrets.run(target(logs=paths), context())
    assert codes(result) == ["secrets.log_unreadable"] * 3
    assert [finding.facts["path"] for finding in result.findings] == list(paths)
    assert "0 of 3 log files" in result.summary


def test_run_writable_msmtprc(tmp_path: Path) -> None:
    msmtprc = write(tmp_path / "msmtprc", "account default\n", 0o664)
    result = secrets.run(target(msmtprc=str(msmtprc)), context())
    assert codes(result) == ["secrets.msmtprc_writable"]


def test_run_readable_msmtprc_not_judged(tmp_path: Path) -> None:
    msmtprc = write(tmp_path / "msmtprc", "account default\n", 0o644)
    assert secrets.run(target(msmtprc=str(msmtprc)), context()).findings == ()


def test_run_same_file_listed_once(tmp_path: Path) -> None:
    token = write(tmp_path / "refresh-token", "1//0gAbCdEf\n", 0o600)
    files = (
        SecretFile(str(token), SecretRole.REFRESH_TOKEN),
        SecretFile(str(token), SecretRole.SECRET_FILE),
    )
    assert len(secrets.run(target(files), context()).facts["files"]) == 1


def test_run_unbalanced_token_command() -> None:
    result = secrets.run(target(token_command="cat '/etc/x"), context())
    assert result.facts["token_command_unreadable"] is True


def test_run_program_not_on_path() -> None:
    result = secrets.run(target(token_command="smtpdiag-no-such-program-x1"), context())
    assert codes(result) == ["secrets.program_not_found"]


# Secrets in log files. A client's debug output: AUTH XOAUTH2 with its base64 response
# (user=alerts@example.com, auth=Bearer ya29.<fake token>). Constructed, not from a real log.
XOAUTH2_RESPONSE = (
    "dXNlcj1hbGVydHNAZXhhbXBsZS5jb20BYXV0aD1CZWFyZXIgeWEyOS5hMEFmSDZTTWJmYWtldG9rZW5mb3J0ZXN0cwEB"
)
LEAK_LINE = f"Dec  4 09:58:00 relay app[99]: smtp debug: AUTH XOAUTH2 {XOAUTH2_RESPONSE}"
OK_LINE = (
    "Dec 04 09:50:00 host=smtp.example.com tls=on auth=on user=alerts@example.com "
    "from=alerts@example.com recipients=ops@example.net smtpstatus=250 exitcode=EX_OK"
)


def run_on_log(tmp_path: Path, lines: list[str]) -> CheckResult:
    log = tmp_path / "mail.log"
    log.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return secrets.run(target(logs=(str(log),)), context())


def test_log_leak_reported(tmp_path: Path) -> None:
    result = run_on_log(tmp_path, [OK_LINE, LEAK_LINE, LEAK_LINE])
    assert codes(result) == ["secrets.token_in_log"]
    assert result.status is Status.CRITICAL


def test_log_leak_facts(tmp_path: Path) -> None:
    result = run_on_log(tmp_path, [OK_LINE, LEAK_LINE, LEAK_LINE])
    facts = result.findings[0].facts
    assert facts["line_number"] == 2
    assert facts["count"] == 2
    assert facts["secret_kind"] == "xoauth2_response"


def test_log_leak_never_shows_secret(tmp_path: Path) -> None:
    result = run_on_log(tmp_path, [LEAK_LINE])
    assert XOAUTH2_RESPONSE not in json.dumps(result.to_dict())


def test_log_without_leak(tmp_path: Path) -> None:
    result = run_on_log(tmp_path, [OK_LINE])
    assert result.findings == ()
    assert result.facts["log_lines"] == 1


def test_log_unreadable_in_facts(tmp_path: Path) -> None:
    missing_log = str(tmp_path / "absent.log")
    result = secrets.run(target(logs=(missing_log,)), context())
    assert result.facts["log_files_unreadable"][0]["path"] == missing_log


def test_log_deadline_gives_unknown(tmp_path: Path) -> None:
    lines = [OK_LINE] * (DEADLINE_CHECK_LINES + 10)
    log = tmp_path / "mail.log"
    log.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    result = secrets.run(target(logs=(str(log),)), context(deadline=0.0))
    assert result.status is Status.UNKNOWN
    assert result.facts["log_scan_complete"] is False


# File facts of the local module.


@pytest.mark.parametrize(
    ("mode", "text"),
    [(0o600, "0600"), (0o1777, "1777"), (0o100644, "0644"), (0o4755, "4755")],
    ids=str,
)
def test_mode_text(mode: int, text: str) -> None:
    assert mode_text(mode) == text


def test_read_file_facts_missing(tmp_path: Path) -> None:
    facts = read_file_facts(str(tmp_path / "absent"))
    assert facts.exists is False
    assert facts.missing is True


def test_read_file_facts_directory(tmp_path: Path) -> None:
    tmp_path.chmod(0o1777)
    facts = read_file_facts(str(tmp_path))
    assert facts.file_type == "directory"
    assert facts.sticky is True


# Through the CLI, with no server.


def test_cli_secret_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = write(tmp_path / "refresh-token", "1//0gAbCdEf\n", 0o644)
    code = main(["check", "--only", "secrets", "--secret-file", str(token), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 2
    assert report["checks"][0]["findings"][0]["code"] == "secrets.readable_by_others"


def test_run_kubernetes_path_through_data_link(tmp_path: Path) -> None:
    volume = tmp_path / "secret-volume"
    version = volume / "..2026_12_05_10_00_00.123456789"
    version.mkdir(parents=True)
    write(version / "oauth.env", "CLIENT_SECRET=x\n", 0o644)
    (volume / "..data").symlink_to(version.name)
    files = (SecretFile(str(volume / "..data" / "oauth.env"), SecretRole.SECRET_FILE),)
    result = secrets.run(target(files), context())
    assert codes(result) == ["secrets.kubernetes_secret_volume"]


def test_other_owner_not_reported_as_root() -> None:
    # Run as root, smtpdiag cannot tell msmtp's service account from any other owner.
    item = secret(file_facts(mode=0o600, uid=RUN_AS_UID + 1))
    result = secrets.evaluate(Inspection(files=(item,), run_as_uid=0, run_as="root"))
    assert codes(result) == []


def test_owned_by_other_user_fix_has_one_chown() -> None:
    item = secret(file_facts(mode=0o600, uid=RUN_AS_UID + 1))
    result = secrets.evaluate(Inspection(files=(item,), run_as_uid=RUN_AS_UID, run_as="alice"))
    owned = finding(result, "secrets.owned_by_other_user")
    assert owned.title.endswith("not to alice or root")
    assert owned.fix.count("chown") == 2


def test_not_regular_file_fix_names_setting() -> None:
    result = evaluate_one(CASES["directory-as-secret"].item)
    assert result.findings[0].fix.startswith("Change refresh_token_file to the path")
