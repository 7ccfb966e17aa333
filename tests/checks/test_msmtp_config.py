"""msmtp_config check: evaluate over parsed msmtprc text, the file and program inspections,
msmtp --version parsing, and run() on real files with fake msmtp programs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from checks import msmtp_config
from checks.msmtp_config import MsmtpFacts
from smtpdiag.context import CheckContext, MsmtpSettings, Settings, Target, TlsMode
from smtpdiag.errors import UsageError
from smtpdiag.models import CheckResult, Severity, Status
from smtpdiag.msmtprc.inspect import (
    PasswordLine,
    ProgramProblem,
    access_token_kind,
    inspect_command,
    logfile_problem,
    read_password_lines,
    trust_file_problem,
)
from smtpdiag.msmtprc.kinds import access_beyond_owner
from smtpdiag.msmtprc.locate import select_account
from smtpdiag.msmtprc.parser import parse_text
from smtpdiag.msmtprc.version import MsmtpVersion, parse_version_output, read_msmtp_version
from smtpdiag.redact import mask_command, redact

PATH = "/etc/smtpdiag-test/msmtprc"

# `msmtp --version` of Debian 12's msmtp 1.8.23, as printed here with LC_ALL=C.
VERSION_1_8_23 = "\n".join(
    [
        "msmtp version 1.8.23",
        "Platform: x86_64-pc-linux-gnu",
        "TLS/SSL library: GnuTLS",
        "Authentication library: GNU SASL; oauthbearer and xoauth2: built-in",
        "Supported authentication methods:",
        "plain scram-sha-1 scram-sha-256 external gssapi cram-md5 digest-md5 login ntlm "
        "oauthbearer xoauth2 ",
        "IDN support: disabled",
        "NLS: enabled, LOCALEDIR is /usr/share/locale",
        "Keyring support: Gnome ",
        "System configuration file name: /etc/msmtprc",
        "User configuration file name: /root/.msmtprc",
        "",
    ]
)

# An msmtp 1.8.12 build: the layout of 1.8.23's output without xoauth2 and scram-sha-256,
# because msmtp's NEWS file dates XOAUTH2 to 1.8.13 and SCRAM-SHA-256 to 1.8.15. The
# layout of 1.8.12's own output is an assumption, not a recorded output.
VERSION_1_8_12 = "\n".join(
    [
        "msmtp version 1.8.12",
        "Platform: x86_64-pc-linux-gnu",
        "TLS/SSL library: GnuTLS",
        "Authentication library: GNU SASL",
        "Supported authentication methods:",
        "plain scram-sha-1 external gssapi cram-md5 digest-md5 login ntlm oauthbearer ",
        "System configuration file name: /etc/msmtprc",
        "",
    ]
)

INSTALLED = parse_version_output("msmtp", VERSION_1_8_23)

CLEAN = """\
defaults
tls on
tls_trust_file system
logfile ~/.msmtp.log
timeout 30

account work
host smtp.gmail.com
port 587
auth xoauth2
user alerts@example.com
from alerts@example.com
passwordeval /usr/local/bin/oauth2-token alerts

account default : work
"""


def facts_for(text: str, account: str | None = None, **fields: Any) -> MsmtpFacts:
    """Parse ``text`` and select the account as run() does, with ``fields`` on top."""
    config = parse_text(text, PATH)
    try:
        selected, fell_back = select_account(config, account)
    except UsageError:
        selected, fell_back = None, False
    base = MsmtpFacts(
        config=config,
        account=selected,
        account_name=account or "default",
        fell_back=fell_back,
        mode=0o600,
        version=INSTALLED,
    )
    return replace(base, **fields)


def codes(result: CheckResult) -> list[str]:
    return [finding.code for finding in result.findings]


def finding(result: CheckResult, code: str) -> Any:
    matches = [item for item in result.findings if item.code == code]
    assert len(matches) == 1, codes(result)
    return matches[0]


def replace_line(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


@dataclass(frozen=True)
class Row:
    """One evaluate case: msmtprc text and extra facts, the expected code and severity."""

    text: str
    code: str
    severity: Severity
    fields: dict[str, Any] = field(default_factory=dict)
    account: str | None = None


TOKEN = "ya29.a0AfH6SMBx" + "k" * 60

ROWS = [
    pytest.param(
        Row(CLEAN + "foo bar\n", "msmtp_config.rejected_by_msmtp", Severity.CRITICAL),
        id="unknown-command",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "account default : work\n", ""),
            "msmtp_config.no_default_account",
            Severity.WARNING,
        ),
        id="no-default-account",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "host smtp.gmail.com\n", ""),
            "msmtp_config.host_not_set",
            Severity.CRITICAL,
        ),
        id="host-not-set",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "from alerts@example.com\n", ""),
            "msmtp_config.from_missing",
            Severity.WARNING,
        ),
        id="from-missing",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "passwordeval", "auth on\npasswordeval"),
            "msmtp_config.auth_overridden",
            Severity.CRITICAL,
        ),
        id="auth-overridden-by-on",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "tls on\n", "tls on\nauth xoauth2\n").replace(
                "auth xoauth2\nuser", "auth plain\nuser"
            ),
            "msmtp_config.auth_overridden",
            Severity.CRITICAL,
        ),
        id="defaults-overridden-by-plain",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "auth xoauth2", "auth on"),
            "msmtp_config.auth_not_oauth2",
            Severity.CRITICAL,
        ),
        id="auth-on-with-token-command",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "auth xoauth2", "auth login"),
            "msmtp_config.auth_not_oauth2",
            Severity.CRITICAL,
        ),
        id="auth-login-with-token-command",
    ),
    pytest.param(
        Row(replace_line(CLEAN, "auth xoauth2\n", ""), "msmtp_config.no_auth", Severity.WARNING),
        id="no-auth",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "port 587", "port 465"),
            "msmtp_config.starttls_on_implicit_port",
            Severity.CRITICAL,
        ),
        id="starttls-on-465",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "port 587", "port 587\ntls_starttls off"),
            "msmtp_config.implicit_tls_on_starttls_port",
            Severity.CRITICAL,
        ),
        id="implicit-tls-on-587",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "port 587", "port 25\ntls_nostarttls"),
            "msmtp_config.implicit_tls_on_starttls_port",
            Severity.CRITICAL,
        ),
        id="implicit-tls-on-25",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "tls on\ntls_trust_file system\n", ""),
            "msmtp_config.tls_off_with_auth",
            Severity.CRITICAL,
        ),
        id="tls-off-with-auth",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "tls on\ntls_trust_file system\n", "").replace(
                "smtp.gmail.com", "127.0.0.1"
            ),
            "msmtp_config.tls_off_with_auth",
            Severity.WARNING,
        ),
        id="tls-off-to-loopback",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "tls_trust_file system", "tls_certcheck off"),
            "msmtp_config.certcheck_off",
            Severity.WARNING,
        ),
        id="certcheck-off",
    ),
    pytest.param(
        Row(
            CLEAN,
            "msmtp_config.token_in_password",
            Severity.WARNING,
            {"password_lines": (PasswordLine(13, 90, token_shaped=True),)},
        ),
        id="token-in-password",
    ),
    pytest.param(
        Row(
            CLEAN,
            "msmtp_config.token_in_password",
            Severity.CRITICAL,
            {"password_lines": (PasswordLine(13, 500, token_shaped=True),)},
        ),
        id="token-in-password-too-long",
    ),
    pytest.param(
        Row(
            CLEAN,
            "msmtp_config.passwordeval_not_found",
            Severity.CRITICAL,
            {"command_problem": ProgramProblem("/usr/local/bin/oauth2-token", missing=True)},
        ),
        id="passwordeval-not-found",
    ),
    pytest.param(
        Row(
            CLEAN,
            "msmtp_config.passwordeval_not_executable",
            Severity.CRITICAL,
            {"command_problem": ProgramProblem("/usr/local/bin/oauth2-token", missing=False)},
        ),
        id="passwordeval-not-executable",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "from alerts@example.com", "from noreply@example.com"),
            "msmtp_config.from_differs_from_user",
            Severity.WARNING,
        ),
        id="from-differs-google",
    ),
    pytest.param(
        Row(
            CLEAN,
            "msmtp_config.logfile_not_writable",
            Severity.WARNING,
            {"logfile_problem": "/root/.msmtp.log is not writable", "user_name": "msmtp"},
        ),
        id="logfile-not-writable",
    ),
    pytest.param(
        Row(
            CLEAN,
            "msmtp_config.mechanism_not_supported",
            Severity.CRITICAL,
            {"version": parse_version_output("msmtp", VERSION_1_8_12)},
        ),
        id="xoauth2-not-in-1.8.12",
    ),
    pytest.param(
        Row(
            CLEAN,
            "msmtp_config.msmtp_not_found",
            Severity.WARNING,
            {"version": MsmtpVersion("msmtp", error="not found")},
        ),
        id="msmtp-not-found",
    ),
    pytest.param(
        Row(
            CLEAN,
            "msmtp_config.readable_by_others",
            Severity.CRITICAL,
            {"mode": 0o644, "password_lines": (PasswordLine(13, 20, token_shaped=False),)},
        ),
        id="password-file-0644",
    ),
    pytest.param(
        Row(
            CLEAN,
            "msmtp_config.readable_by_others",
            Severity.CRITICAL,
            {"mode": 0o640, "password_lines": (PasswordLine(13, 20, token_shaped=False),)},
        ),
        id="password-file-0640",
    ),
    pytest.param(
        Row(CLEAN, "msmtp_config.readable_by_others", Severity.WARNING, {"mode": 0o644}),
        id="file-0644-without-password",
    ),
]


@pytest.mark.parametrize("row", ROWS)
def test_evaluate_reports_code(row: Row) -> None:
    result = msmtp_config.evaluate(facts_for(row.text, row.account, **row.fields))
    assert row.code in codes(result)


@pytest.mark.parametrize("row", ROWS)
def test_evaluate_severity(row: Row) -> None:
    result = msmtp_config.evaluate(facts_for(row.text, row.account, **row.fields))
    assert finding(result, row.code).severity is row.severity


@pytest.mark.parametrize("row", ROWS)
def test_evaluate_reports_only_that_code(row: Row) -> None:
    result = msmtp_config.evaluate(facts_for(row.text, row.account, **row.fields))
    assert set(codes(result)) == {row.code}


@pytest.mark.parametrize("row", ROWS)
def test_evaluate_evidence_names_lines(row: Row) -> None:
    result = msmtp_config.evaluate(facts_for(row.text, row.account, **row.fields))
    evidence = finding(result, row.code).evidence
    if row.code == "msmtp_config.msmtp_not_found":
        assert evidence == ()  # not tied to a line
    else:
        assert evidence and all(line.startswith(f"{PATH}:") for line in evidence)


CLEAN_CONFIGS = [
    pytest.param(CLEAN, id="starttls-587"),
    pytest.param(
        replace_line(CLEAN, "port 587", "port 465\ntls_starttls off").replace(
            "smtp.gmail.com", "smtp.yandex.ru"
        ),
        id="implicit-465",
    ),
    pytest.param(
        "defaults\ntls on\ntimeout 30\nauth oauthbearer\nport 587\nuser a@example.com\n"
        "from a@example.com\npasswordeval oama access a@example.com\n"
        "account base\nhost smtp.gmail.com\naccount default : base\n",
        id="all-from-defaults",
    ),
    pytest.param(
        replace_line(CLEAN, "auth xoauth2\n", "auth on\nauth xoauth2\n"),
        id="oauth-after-on",
    ),
    pytest.param(
        replace_line(CLEAN, "from alerts@example.com", "from *@example.com"),
        id="from-pattern",
    ),
    pytest.param(
        replace_line(CLEAN, "auth xoauth2", "auth plain").replace(
            "passwordeval /usr/local/bin/oauth2-token alerts", "passwordeval pass show smtp"
        ),
        id="app-password",
    ),
]


@pytest.mark.parametrize("text", CLEAN_CONFIGS)
def test_clean_config_no_findings(text: str) -> None:
    result = msmtp_config.evaluate(facts_for(text))
    assert codes(result) == []


@pytest.mark.parametrize("text", CLEAN_CONFIGS)
def test_clean_config_status_ok(text: str) -> None:
    assert msmtp_config.evaluate(facts_for(text)).status is Status.OK


def test_overridden_names_both_lines() -> None:
    text = replace_line(CLEAN, "passwordeval", "auth on\npasswordeval")
    result = msmtp_config.evaluate(facts_for(text))
    assert finding(result, "msmtp_config.auth_overridden").evidence == (
        f"{PATH}:10: auth xoauth2",
        f"{PATH}:13: auth on",
    )


def test_overridden_title_names_lines() -> None:
    text = replace_line(CLEAN, "passwordeval", "auth on\npasswordeval")
    result = msmtp_config.evaluate(facts_for(text))
    title = finding(result, "msmtp_config.auth_overridden").title
    assert title == "auth xoauth2 on line 10 is overridden by auth on on line 13"


def test_overridden_cause_says_no_automatic_oauth() -> None:
    text = replace_line(CLEAN, "passwordeval", "auth on\npasswordeval")
    cause = finding(msmtp_config.evaluate(facts_for(text)), "msmtp_config.auth_overridden").cause
    assert "never chooses XOAUTH2 or OAUTHBEARER" in cause


def test_inherited_override_names_parent_line() -> None:
    text = (
        "account base\nhost smtp.gmail.com\nauth on\ntimeout 30\n"
        "account work : base\nauth xoauth2\nuser a@example.com\nfrom a@example.com\n"
        "passwordeval oama access a@example.com\ntls on\n"
        "account mail : work\nauth on\naccount default : mail\n"
    )
    result = msmtp_config.evaluate(facts_for(text))
    assert finding(result, "msmtp_config.auth_overridden").evidence == (
        f"{PATH}:6: auth xoauth2",
        f"{PATH}:12: auth on",
    )


def test_not_oauth2_cause_names_hint() -> None:
    text = replace_line(CLEAN, "auth xoauth2", "auth on")
    cause = finding(msmtp_config.evaluate(facts_for(text)), "msmtp_config.auth_not_oauth2").cause
    assert '(it contains "oauth")' in cause


def test_mechanism_cause_lists_installed_methods() -> None:
    old = parse_version_output("msmtp", VERSION_1_8_12)
    result = msmtp_config.evaluate(facts_for(CLEAN, version=old))
    cause = finding(result, "msmtp_config.mechanism_not_supported").cause
    assert "plain scram-sha-1 external gssapi cram-md5 digest-md5 login ntlm oauthbearer" in cause


def test_system_config_readable_cause() -> None:
    fields = {
        "mode": 0o644,
        "password_lines": (PasswordLine(13, 20, token_shaped=False),),
        "system_config": True,
    }
    result = msmtp_config.evaluate(facts_for(CLEAN, **fields))
    cause = finding(result, "msmtp_config.readable_by_others").cause
    assert "does not test the mode of its system configuration file" in cause


def test_group_readable_without_password_is_fine() -> None:
    assert codes(msmtp_config.evaluate(facts_for(CLEAN, mode=0o640))) == []


def test_facts_of_account() -> None:
    facts = msmtp_config.evaluate(facts_for(CLEAN)).facts
    assert facts == {
        "config_file": PATH,
        "account": "default",
        "host": "smtp.gmail.com",
        "port": 587,
        "tls": True,
        "starttls": True,
        "auth": "xoauth2",
        "user": "alerts@example.com",
        "from": "alerts@example.com",
        "passwordeval": "/usr/local/bin/oauth2-token alerts",
        "logfile": "~/.msmtp.log",
        "msmtp_version": "1.8.23",
        "msmtp_mechanisms": list(INSTALLED.mechanisms or ()),
    }


def test_passwordeval_fact_masks_token() -> None:
    text = replace_line(CLEAN, "/usr/local/bin/oauth2-token alerts", f"echo {TOKEN}")
    facts = msmtp_config.evaluate(facts_for(text)).facts
    assert facts["passwordeval"] == "echo [REDACTED]"


def test_token_never_in_result() -> None:
    text = replace_line(CLEAN, "/usr/local/bin/oauth2-token alerts", f"echo {TOKEN}")
    text = replace_line(text, "auth xoauth2", "auth on")
    result = msmtp_config.evaluate(facts_for(text))
    assert TOKEN not in json.dumps(result.to_dict())


def test_summary_counts_problems() -> None:
    text = replace_line(CLEAN, "port 587", "port 465")
    summary = msmtp_config.evaluate(facts_for(text)).summary
    assert summary == f"account default of {PATH}: 1 problem found"


# Programs, files and versions that run() inspects.


def write_program(path: Path, text: str, mode: int = 0o755) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_command_missing_program(tmp_path: Path) -> None:
    problem = inspect_command(f"{tmp_path}/nothing --flag", str(tmp_path))
    assert problem == ProgramProblem(f"{tmp_path}/nothing", missing=True)


def test_command_not_executable(tmp_path: Path) -> None:
    script = write_program(tmp_path / "token.sh", "#!/bin/sh\necho x\n", 0o644)
    problem = inspect_command(str(script), str(tmp_path))
    assert problem == ProgramProblem(str(script), missing=False)


def test_command_found_in_path(tmp_path: Path) -> None:
    write_program(tmp_path / "get-token", "#!/bin/sh\necho x\n")
    assert inspect_command("get-token work | head -1", str(tmp_path)) is None


def test_command_not_in_path(tmp_path: Path) -> None:
    problem = inspect_command("get-token work", str(tmp_path))
    assert problem == ProgramProblem("get-token", missing=True, searched_path=True)


def test_command_interpreter_script_missing(tmp_path: Path) -> None:
    problem = inspect_command(f"sh -e {tmp_path}/gone.sh", os.defpath)
    assert problem == ProgramProblem(f"{tmp_path}/gone.sh", missing=True, role="script")


def test_command_interpreter_script_needs_no_execute_bit(tmp_path: Path) -> None:
    script = write_program(tmp_path / "token.sh", "echo x\n", 0o644)
    assert inspect_command(f"sh {script}", os.defpath) is None


def test_command_env_program(tmp_path: Path) -> None:
    problem = inspect_command("env -i HOME=/x nothing-here arg", str(tmp_path))
    assert problem == ProgramProblem("nothing-here", missing=True, searched_path=True)


def test_command_shebang_interpreter_missing(tmp_path: Path) -> None:
    script = write_program(tmp_path / "token", f"#!{tmp_path}/python9\nprint(1)\n")
    problem = inspect_command(str(script), str(tmp_path))
    assert problem == ProgramProblem(f"{tmp_path}/python9", missing=True, role="interpreter")


@pytest.mark.parametrize(
    "command",
    ["echo abc", "cat /nonexistent/token", "$HOME/bin/token", "sh -c 'exit 1'", "'unbalanced"],
    ids=["builtin", "cat", "variable", "inline-script", "bad-quotes"],
)
def test_command_not_judged(command: str) -> None:
    assert inspect_command(command, os.defpath) is None


@pytest.mark.parametrize(
    "template",
    ["exec {}/nothing", "nohup {}/nothing --flag", "command {}/nothing", "env -S '{}/nothing -v'"],
    ids=["exec", "nohup", "command", "env-split-string"],
)
def test_command_after_prefix_judged(tmp_path: Path, template: str) -> None:
    problem = inspect_command(template.format(tmp_path), os.defpath)
    assert problem == ProgramProblem(f"{tmp_path}/nothing", missing=True)


def test_command_versioned_interpreter_script(tmp_path: Path) -> None:
    write_program(tmp_path / "python3.11", "#!/bin/sh\n")
    problem = inspect_command(f"python3.11 -u {tmp_path}/gone.py", str(tmp_path))
    assert problem == ProgramProblem(f"{tmp_path}/gone.py", missing=True, role="script")


@pytest.mark.parametrize(
    "command",
    ["sh -ec 'exit 1'", "./token.sh", "sh token.sh", "bash -o pipefail -c 'exit 1'"],
    ids=["combined-inline-option", "relative-program", "relative-script", "option-argument"],
)
def test_command_not_judged_by_shape(command: str) -> None:
    assert inspect_command(command, os.defpath) is None


def test_logfile_missing_directory(tmp_path: Path) -> None:
    problem = logfile_problem(f"{tmp_path}/no/msmtp.log")
    assert (
        problem
        == f"{tmp_path}/no/msmtp.log does not exist and neither does its directory {tmp_path}/no"
    )


def test_logfile_is_directory(tmp_path: Path) -> None:
    assert logfile_problem(str(tmp_path)) == f"{tmp_path} is a directory"


@pytest.mark.parametrize("name", ["-", "new.log"], ids=["stdout", "creatable"])
def test_logfile_usable(tmp_path: Path, name: str) -> None:
    logfile = name if name == "-" else str(tmp_path / name)
    assert logfile_problem(logfile) is None


def test_password_lines_read(tmp_path: Path) -> None:
    config = tmp_path / "msmtprc"
    config.write_text(f'account a\n  password "{TOKEN}"\npassword secret1\npasswordeval x\n')
    lines = read_password_lines(str(config))
    assert lines == (
        PasswordLine(2, len(TOKEN) + 13, True, len(TOKEN), "a Google ya29. token"),
        PasswordLine(3, 16, False, 7, ""),
    )


def test_password_lines_registered(tmp_path: Path) -> None:
    config = tmp_path / "msmtprc"
    config.write_text("password secret1\n")
    read_password_lines(str(config))
    assert redact("pw=secret1") == "pw=[REDACTED]"


def test_version_parsed() -> None:
    assert (INSTALLED.version, INSTALLED.system_config_file) == ("1.8.23", "/etc/msmtprc")


def test_version_mechanisms_parsed() -> None:
    assert INSTALLED.mechanisms is not None
    assert "xoauth2" in INSTALLED.mechanisms


def test_version_without_mechanism_line() -> None:
    assert parse_version_output("msmtp", "msmtp version 1.4.32\n").mechanisms is None


def test_read_version_of_fake_program(tmp_path: Path) -> None:
    program = write_program(tmp_path / "msmtp", f"#!/bin/sh\ncat <<'EOF'\n{VERSION_1_8_12}EOF\n")
    version = read_msmtp_version(str(program), 5.0)
    assert version == parse_version_output(str(program), VERSION_1_8_12)


def test_read_version_missing_program(tmp_path: Path) -> None:
    version = read_msmtp_version("msmtp-not-here", 5.0, str(tmp_path))
    assert version.error == "not found"


def test_read_version_failing_program(tmp_path: Path) -> None:
    program = write_program(tmp_path / "msmtp", "#!/bin/sh\nexit 3\n")
    assert read_msmtp_version(str(program), 5.0).error == "exited with status 3"


def test_read_version_timeout(tmp_path: Path) -> None:
    program = write_program(tmp_path / "msmtp", "#!/bin/sh\nexec sleep 30\n")
    assert read_msmtp_version(str(program), 0.05).error == "did not finish within 0.05 s"


def test_read_version_output_capped(tmp_path: Path) -> None:
    text = (
        "#!/bin/sh\necho 'msmtp version 9.9'\nexec yes 'Supported authentication methods: plain'\n"
    )
    program = write_program(tmp_path / "msmtp", text)
    assert read_msmtp_version(str(program), 5.0).version == "9.9"


# run() against real files.


def run_check(
    config: Path | None, program: str = "msmtp", account: str | None = None
) -> CheckResult:
    settings = MsmtpSettings(
        config_file=str(config) if config else None, account=account, program=program
    )
    target = Target(host="", port=0, tls_mode=TlsMode.STARTTLS, msmtp=settings)
    return msmtp_config.run(target, CheckContext(settings=Settings(timeout=5.0)))


def test_run_skipped_without_file() -> None:
    result = run_check(None)
    assert (result.status, result.summary) == (Status.SKIPPED, msmtp_config.NOT_CONFIGURED)


def test_run_unknown_for_directory(tmp_path: Path) -> None:
    assert run_check(tmp_path).status is Status.UNKNOWN


def write_config(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    config = tmp_path / "msmtprc"
    config.write_text(text)
    config.chmod(mode)
    return config


def fake_msmtp(tmp_path: Path, output: str = VERSION_1_8_23) -> str:
    program = write_program(tmp_path / "fake-msmtp", f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\n")
    return str(program)


def clean_on_disk(tmp_path: Path) -> str:
    script = write_program(tmp_path / "oauth2-token", "#!/bin/sh\necho token\n", 0o700)
    text = replace_line(CLEAN, "/usr/local/bin/oauth2-token", str(script))
    return replace_line(text, "~/.msmtp.log", str(tmp_path / "msmtp.log"))


def test_run_clean_file_ok(tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_on_disk(tmp_path))
    result = run_check(config, fake_msmtp(tmp_path))
    assert (result.status, codes(result)) == (Status.OK, [])


def test_run_old_msmtp_lacks_xoauth2(tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_on_disk(tmp_path))
    result = run_check(config, fake_msmtp(tmp_path, VERSION_1_8_12))
    assert codes(result) == ["msmtp_config.mechanism_not_supported"]


def test_run_missing_msmtp(tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_on_disk(tmp_path))
    result = run_check(config, str(tmp_path / "no-msmtp"))
    assert codes(result) == ["msmtp_config.msmtp_not_found"]


def test_run_reports_file_problems(tmp_path: Path) -> None:
    text = clean_on_disk(tmp_path) + f"password {TOKEN}\n"
    text = replace_line(text, str(tmp_path / "oauth2-token"), str(tmp_path / "gone"))
    config = write_config(tmp_path, text, 0o644)
    result = run_check(config, fake_msmtp(tmp_path))
    assert codes(result) == [
        "msmtp_config.readable_by_others",
        "msmtp_config.passwordeval_not_found",
        "msmtp_config.token_in_password",
    ]


def test_run_never_shows_password(tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_on_disk(tmp_path) + f"password {TOKEN}\n", 0o644)
    result = run_check(config, fake_msmtp(tmp_path))
    assert TOKEN not in json.dumps(result.to_dict())


def test_run_named_account_missing(tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_on_disk(tmp_path))
    result = run_check(config, fake_msmtp(tmp_path), account="personal")
    assert (result.status, result.findings) == (Status.UNKNOWN, ())


def test_run_lone_account_named(tmp_path: Path) -> None:
    text = replace_line(clean_on_disk(tmp_path), "account default : work\n", "")
    config = write_config(tmp_path, text)
    result = run_check(config, fake_msmtp(tmp_path), account="work")
    assert codes(result) == []


def test_run_lone_account_fallback(tmp_path: Path) -> None:
    text = replace_line(clean_on_disk(tmp_path), "account default : work\n", "")
    config = write_config(tmp_path, text)
    result = run_check(config, fake_msmtp(tmp_path))
    assert codes(result) == ["msmtp_config.no_default_account"]


# Findings added for traps that msmtp 1.8.23 reports only when it sends.

NEW_ROWS = [
    pytest.param(
        Row(
            replace_line(CLEAN, "user alerts@example.com\n", ""),
            "msmtp_config.user_missing",
            Severity.CRITICAL,
        ),
        id="user-missing",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "passwordeval /usr/local/bin/oauth2-token alerts\n", ""),
            "msmtp_config.password_missing",
            Severity.WARNING,
        ),
        id="password-missing",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "tls_trust_file system", "tls_trust_file /nonexistent/ca.pem"),
            "msmtp_config.trust_file_missing",
            Severity.CRITICAL,
            {"trust_file_problem": "/nonexistent/ca.pem does not exist"},
        ),
        id="trust-file-missing",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "from alerts@example.com", 'from "Alerts <alerts@example.com>"'),
            "msmtp_config.from_not_address",
            Severity.WARNING,
        ),
        id="from-display-name",
    ),
    pytest.param(
        Row(
            replace_line(
                CLEAN,
                "from alerts@example.com",
                "from <alerts@example.com>\nallow_from_override off",
            ),
            "msmtp_config.from_not_address",
            Severity.CRITICAL,
        ),
        id="from-brackets-not-overridable",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "host smtp.gmail.com", "host smtp.gmail.com # Gmail"),
            "msmtp_config.inline_comment",
            Severity.CRITICAL,
        ),
        id="comment-after-host",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "logfile ~/.msmtp.log", "logfile ~/.msmtp.log\t# log"),
            "msmtp_config.inline_comment",
            Severity.WARNING,
        ),
        id="comment-after-logfile",
    ),
    pytest.param(
        Row(replace_line(CLEAN, "timeout 30\n", ""), "msmtp_config.no_timeout", Severity.WARNING),
        id="no-timeout",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "timeout 30", "timeout off"),
            "msmtp_config.no_timeout",
            Severity.WARNING,
        ),
        id="timeout-off",
    ),
    pytest.param(
        Row(
            CLEAN,
            "msmtp_config.passwordeval_script_crlf",
            Severity.CRITICAL,
            {
                "command_problem": ProgramProblem(
                    "/usr/local/bin/oauth2-token", missing=True, role="script", crlf=True
                )
            },
        ),
        id="script-crlf",
    ),
    pytest.param(
        Row(
            replace_line(CLEAN, "auth xoauth2", "auth on").replace(
                "passwordeval /usr/local/bin/oauth2-token alerts", f"password {TOKEN}"
            ),
            "msmtp_config.auth_not_oauth2",
            Severity.CRITICAL,
        ),
        id="auth-on-with-token-password",
    ),
]


@pytest.mark.parametrize("row", NEW_ROWS)
def test_new_finding_reported_alone(row: Row) -> None:
    result = msmtp_config.evaluate(facts_for(row.text, row.account, **row.fields))
    assert set(codes(result)) == {row.code}


@pytest.mark.parametrize("row", NEW_ROWS)
def test_new_finding_severity(row: Row) -> None:
    result = msmtp_config.evaluate(facts_for(row.text, row.account, **row.fields))
    assert finding(result, row.code).severity is row.severity


@pytest.mark.parametrize("row", NEW_ROWS)
def test_new_finding_evidence_names_lines(row: Row) -> None:
    result = msmtp_config.evaluate(facts_for(row.text, row.account, **row.fields))
    evidence = finding(result, row.code).evidence
    assert evidence and all(line.startswith(f"{PATH}:") for line in evidence)


def test_user_missing_quotes_msmtp() -> None:
    text = replace_line(CLEAN, "user alerts@example.com\n", "")
    cause = finding(msmtp_config.evaluate(facts_for(text)), "msmtp_config.user_missing").cause
    assert '"authentication method XOAUTH2 needs a user name" (exit 69)' in cause


def test_password_missing_quotes_msmtp() -> None:
    text = replace_line(CLEAN, "passwordeval /usr/local/bin/oauth2-token alerts\n", "")
    result = msmtp_config.evaluate(facts_for(text))
    cause = finding(result, "msmtp_config.password_missing").cause
    assert '"authentication method XOAUTH2 needs a password" (exit 69)' in cause


@pytest.mark.parametrize("mechanism", ["external", "gssapi"])
def test_credential_free_mechanism_no_user_needed(mechanism: str) -> None:
    text = replace_line(CLEAN, "auth xoauth2", f"auth {mechanism}")
    text = replace_line(text, "user alerts@example.com\n", "")
    text = replace_line(text, "passwordeval /usr/local/bin/oauth2-token alerts\n", "")
    assert codes(msmtp_config.evaluate(facts_for(text))) == []


def test_from_display_name_suggests_address() -> None:
    text = replace_line(CLEAN, "from alerts@example.com", 'from "Alerts <alerts@example.com>"')
    fix = finding(msmtp_config.evaluate(facts_for(text)), "msmtp_config.from_not_address").fix
    assert fix.startswith("Write the bare address, such as `from alerts@example.com`.")


def test_comment_after_host_effect() -> None:
    text = replace_line(CLEAN, "host smtp.gmail.com", "host smtp.gmail.com # Gmail")
    cause = finding(msmtp_config.evaluate(facts_for(text)), "msmtp_config.inline_comment").cause
    assert 'looks up the host name "smtp.gmail.com # Gmail"' in cause


def test_comment_after_from_not_double_reported() -> None:
    text = replace_line(CLEAN, "from alerts@example.com", "from alerts@example.com # me")
    assert codes(msmtp_config.evaluate(facts_for(text))) == ["msmtp_config.inline_comment"]


def test_comment_in_passwordeval_ignored() -> None:
    text = replace_line(CLEAN, "oauth2-token alerts", "oauth2-token alerts # shell comment")
    assert codes(msmtp_config.evaluate(facts_for(text))) == []


def test_comment_after_password_masked() -> None:
    text = CLEAN.replace("account default", "password Hunter2Hunter2 # old\naccount default")
    result = msmtp_config.evaluate(facts_for(text))
    assert "Hunter2" not in json.dumps(result.to_dict())


@pytest.mark.parametrize(
    "line",
    ["auth XOAUTH2", "auth xoauth2 # oauth", "tls On", "auth xoauth"],
    ids=["upper-auth", "auth-comment", "upper-on", "auth-typo"],
)
def test_rejected_file_only_file_findings(line: str) -> None:
    text = replace_line(CLEAN, "auth xoauth2", line)
    text = replace_line(text, "tls on\n", "") if line.startswith("tls") else text
    text += "tls On\n" if line == "tls On" else ""
    assert codes(msmtp_config.evaluate(facts_for(text))) == ["msmtp_config.rejected_by_msmtp"]


def test_rejected_file_keeps_mode_finding() -> None:
    fields = {"mode": 0o644, "password_lines": (PasswordLine(13, 20, token_shaped=False),)}
    result = msmtp_config.evaluate(facts_for(CLEAN + "foo bar\n", **fields))
    assert codes(result) == ["msmtp_config.rejected_by_msmtp", "msmtp_config.readable_by_others"]


def test_rejected_file_skips_program_findings() -> None:
    problem = ProgramProblem("/usr/local/bin/oauth2-token", missing=True)
    result = msmtp_config.evaluate(facts_for(CLEAN + "foo bar\n", command_problem=problem))
    assert codes(result) == ["msmtp_config.rejected_by_msmtp"]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl", "a JWT"),
        ("ya29.a0AfH6SMBx", "a Google ya29. token"),
        ("EwB" + "A" * 120, "a Microsoft EwB token"),
        ("x" * 200, "200 or more token characters"),
        ("SG." + "a" * 22 + "." + "b" * 43, None),
        ("BPx7Ky0a2lYNZrC3x9oNyQXh3f0mRwT5a1ZCy6kq/5Vd", None),
        ("k3Jx9Qm2Lw8Vt5Rb7Np4Hs6Fd1Gz0Yc2Xa9We3Ui", None),
        ("EwB" + "A" * 40, None),
    ],
    ids=["jwt", "google", "microsoft", "long", "sendgrid", "aws-ses", "random-40", "short-ewb"],
)
def test_access_token_kind(value: str, kind: str | None) -> None:
    assert access_token_kind(value) == kind


def test_token_in_password_reports_value_length() -> None:
    line = PasswordLine(14, 78, token_shaped=True, value_length=69, token_kind="a JWT")
    result = msmtp_config.evaluate(facts_for(CLEAN, password_lines=(line,)))
    cause = finding(result, "msmtp_config.token_in_password").cause
    assert "(a JWT, 69 characters long)" in cause


def test_readable_title_names_owner_execute() -> None:
    fields = {"mode": 0o700, "password_lines": (PasswordLine(13, 20, token_shaped=False),)}
    result = msmtp_config.evaluate(facts_for(CLEAN, **fields))
    title = finding(result, "msmtp_config.readable_by_others").title
    assert title == f"Mode 0700 of {PATH} lets its owner execute it"


@pytest.mark.parametrize(
    ("mode", "access"),
    [
        (0o644, "its group read it, other users read it"),
        (0o660, "its group read and write it"),
        (
            0o777,
            "its owner execute it, its group read, write and execute it, "
            "other users read, write and execute it",
        ),
        (0o600, "nothing beyond user read and write"),
    ],
    ids=["0644", "0660", "0777", "0600"],
)
def test_access_beyond_owner(mode: int, access: str) -> None:
    assert access_beyond_owner(mode) == access


def test_overridden_fix_quotes_pretend_output() -> None:
    text = replace_line(CLEAN, "passwordeval", "auth on\npasswordeval")
    fix = finding(msmtp_config.evaluate(facts_for(text)), "msmtp_config.auth_overridden").fix
    assert "prints `auth = XOAUTH2`" in fix


def test_starttls_465_without_timeout_fix() -> None:
    text = replace_line(CLEAN, "port 587", "port 465").replace("timeout 30\n", "")
    result = msmtp_config.evaluate(facts_for(text))
    fix = finding(result, "msmtp_config.starttls_on_implicit_port").fix
    assert "Add `timeout 30` as well" in fix


def test_starttls_465_with_timeout_cause() -> None:
    text = replace_line(CLEAN, "port 587", "port 465")
    result = msmtp_config.evaluate(facts_for(text))
    cause = finding(result, "msmtp_config.starttls_on_implicit_port").cause
    assert "fails after its timeout of 30 s" in cause


# Secrets in passwordeval commands.

CURL_COMMAND = (
    "curl -s -d client_id=123-abc.apps.googleusercontent.com "
    "-d client_secret=GOCSPX-SECRETCANARYabcdefghijk12 "
    "-d refresh_token=1//0gREFRESHCANARYxyzABCDEFGHIJ "
    "-d grant_type=refresh_token https://oauth2.googleapis.com/token | jq -r .access_token"
)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            CURL_COMMAND,
            "curl -s -d client_id=123-abc.apps.googleusercontent.com "
            "-d client_secret=[REDACTED] -d refresh_token=[REDACTED] "
            "-d grant_type=refresh_token https://oauth2.googleapis.com/token "
            "| jq -r .access_token",
        ),
        (
            "oama access a@gmail.com --client-secret s3cr3tPASS99 || echo hunter2hunter2",
            "oama access a@gmail.com --client-secret [REDACTED] || echo [REDACTED]",
        ),
        ("tool --password=pw123456 -p pw654321", "tool --password=[REDACTED] -p [REDACTED]"),
        ("curl --data refresh_token=RT123456", "curl --data refresh_token=[REDACTED]"),
        (
            "curl -d 'client_id=a&client_secret=CS123456&x=1'",
            "curl -d 'client_id=a&client_secret=[REDACTED]&x=1'",
        ),
        (
            'curl -H "Authorization: Bearer abcdefgh12345678"',
            'curl -H "Authorization: Bearer [REDACTED]"',
        ),
        ("CLIENT_SECRET=abc123def tok", "CLIENT_SECRET=[REDACTED] tok"),
        (f"printf %s {TOKEN}", "printf [REDACTED] [REDACTED]"),
        (
            "python3 /home/alice/.config/mutt/mutt_oauth2.py /home/alice/.config/mutt/token-file",
            "python3 /home/alice/.config/mutt/mutt_oauth2.py /home/alice/.config/mutt/token-file",
        ),
        ("tok --token-file ~/secret/token", "tok --token-file ~/secret/token"),
        ("tok --client-secret-file ./cs.txt", "tok --client-secret-file ./cs.txt"),
        ("tok --refresh-token $REFRESH_TOKEN", "tok --refresh-token $REFRESH_TOKEN"),
        ("pass show email/gmail", "pass show email/gmail"),
        ("cd /srv/tok && ./get", "cd /srv/tok && ./get"),
    ],
    ids=[
        "curl-form",
        "option-and-echo",
        "password-options",
        "data-option",
        "form-body",
        "bearer",
        "assignment",
        "printf",
        "long-paths",
        "tilde-path",
        "relative-path",
        "variable",
        "pass",
        "cd",
    ],
)
def test_mask_command(command: str, expected: str) -> None:
    assert mask_command(command) == expected


def test_passwordeval_fact_masks_secrets() -> None:
    text = replace_line(CLEAN, "/usr/local/bin/oauth2-token alerts", CURL_COMMAND)
    fact = msmtp_config.evaluate(facts_for(text)).facts["passwordeval"]
    assert "CANARY" not in fact


def test_passwordeval_fact_keeps_long_path() -> None:
    path = "/tmp/smtpdiag-lab-abcdefgh/token-command-of-the-lab-relay"
    text = replace_line(CLEAN, "/usr/local/bin/oauth2-token alerts", path)
    assert msmtp_config.evaluate(facts_for(text)).facts["passwordeval"] == path


def test_not_found_evidence_masks_secret() -> None:
    command = "oama access a@gmail.com --client-secret s3cr3tPASS99"
    text = replace_line(CLEAN, "/usr/local/bin/oauth2-token alerts", command)
    problem = ProgramProblem("oama", missing=True, searched_path=True)
    result = msmtp_config.evaluate(facts_for(text, command_problem=problem))
    evidence = finding(result, "msmtp_config.passwordeval_not_found").evidence
    assert evidence == (
        f"{PATH}:13: passwordeval oama access a@gmail.com --client-secret [REDACTED]",
    )


LEAK_FILES = {
    "curl": "account default\nhost smtp.gmail.com\nport 587\ntls on\nauth oauthbearer\n"
    "user a@gmail.com\nfrom a@gmail.com\n"
    f'passwordeval "{CURL_COMMAND}"\n',
    "client-secret-option": "account default\nhost smtp.gmail.com\nport 587\ntls on\n"
    "auth xoauth2\nuser a@gmail.com\nfrom a@gmail.com\n"
    'passwordeval "oama access a@gmail.com --client-secret s3cr3tPASS99 || echo hunter2hunter2"\n',
    "env-file": "# read by the token script only\n"
    "TOKEN_ENDPOINT=https://login.microsoftonline.com/contoso/oauth2/v2.0/token\n"
    "CLIENT_ID=00000000-0000-0000-0000-000000000000\n"
    "CLIENT_SECRET=abc8Q~ENVSECRETCANARY.xyz\n"
    "REFRESH_TOKEN=0.AXEAENVREFRESHCANARY-abcdefghijklmnopqrstuvwxyz0123456789\n",
    "cr-line-ends": "\r".join(
        [
            "account default",
            "host smtp.gmail.com",
            "port 587",
            "tls on",
            "auth xoauth2",
            "user a@gmail.com",
            "from a@gmail.com",
            "password Sup3rS3cretCRLEAK",
            "",
        ]
    ),
}
CANARIES = ("CANARY", "s3cr3tPASS99", "hunter2hunter2", "Sup3rS3cretCRLEAK")


@pytest.mark.parametrize("output_format", ["table", "json", "nagios", "junit"])
@pytest.mark.parametrize("name", list(LEAK_FILES))
def test_cli_output_has_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, output_format: str
) -> None:
    from smtpdiag.cli import main

    config = write_config(tmp_path, LEAK_FILES[name])
    args = ["-vv", "check", "--only", "msmtp_config", "--msmtprc", str(config)]
    main([*args, "-f", output_format])
    captured = capsys.readouterr()
    leaked = [canary for canary in CANARIES if canary in captured.out + captured.err]
    assert leaked == []


# Programs that passwordeval runs.


@pytest.mark.parametrize(
    "command",
    [
        "cd {dir} && ./ok",
        "cd {dir}; ./ok",
        "export TOKEN_DIR={dir}; ./ok",
        ": ; ./ok",
        "umask 077 && ./ok",
        "set -e; ./ok",
    ],
    ids=["cd-and", "cd-semicolon", "export", "colon", "umask", "set"],
)
def test_command_builtin_not_judged(tmp_path: Path, command: str) -> None:
    assert inspect_command(command.format(dir=tmp_path), str(tmp_path)) is None


def test_command_shebang_crlf(tmp_path: Path) -> None:
    script = write_program(tmp_path / "token", "#!/bin/sh\r\necho x\r\n")
    problem = inspect_command(str(script), os.defpath)
    assert problem == ProgramProblem(str(script), missing=True, role="script", crlf=True)


def test_command_shebang_env_name_missing(tmp_path: Path) -> None:
    script = write_program(tmp_path / "token", "#!/usr/bin/env python9\nprint(1)\n")
    problem = inspect_command(str(script), str(tmp_path))
    assert problem == ProgramProblem(
        "python9", missing=True, role="interpreter", searched_path=True
    )


@pytest.mark.parametrize(
    "shebang",
    ["#!/usr/bin/env sh", "#!/usr/bin/env -S sh -e", "#!/usr/bin/env sh -e"],
    ids=["found", "split-string", "two-words"],
)
def test_command_shebang_env_not_reported(tmp_path: Path, shebang: str) -> None:
    script = write_program(tmp_path / "token", f"{shebang}\necho x\n")
    assert inspect_command(str(script), "/usr/bin:/bin") is None


def test_not_found_interpreter_fix_names_shebang() -> None:
    problem = ProgramProblem("python9", missing=True, role="interpreter", searched_path=True)
    result = msmtp_config.evaluate(facts_for(CLEAN, command_problem=problem))
    fix = finding(result, "msmtp_config.passwordeval_not_found").fix
    assert fix.startswith("Install python9 or correct the #! line of the script,")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missing", "{dir}/missing does not exist"),
        ("", "{dir} is a directory"),
        ("ca.pem", None),
    ],
    ids=["missing", "directory", "present"],
)
def test_trust_file_problem(tmp_path: Path, name: str, expected: str | None) -> None:
    (tmp_path / "ca.pem").write_text("certificate\n")
    path = str(tmp_path / name) if name else str(tmp_path)
    assert trust_file_problem(path) == (expected.format(dir=tmp_path) if expected else None)


def test_trust_file_system_store() -> None:
    assert trust_file_problem("system") is None


def test_run_reports_missing_trust_file(tmp_path: Path) -> None:
    text = replace_line(clean_on_disk(tmp_path), "tls_trust_file system", "tls_trust_file ~/ca.pem")
    config = write_config(tmp_path, text)
    result = run_check(config, fake_msmtp(tmp_path))
    assert codes(result) == ["msmtp_config.trust_file_missing"]
