"""The ``msmtp_config`` check: mistakes in an msmtp configuration that break OAuth2 submission.

The check reads the msmtprc the target came from, selects the account as msmtp does, looks at
the file's mode, the ``passwordeval`` program and the ``logfile``, and runs ``msmtp --version``
for the mechanisms the installed binary supports. A pure ``evaluate`` turns those facts into
findings. Every finding names the lines it rests on as ``FILE:LINE`` in its evidence.

msmtp's behaviour described here was read in msmtp's src/conf.c and src/smtp.c and checked by
running Debian 12's msmtp 1.8.23 against the smtpdiag lab. The check needs no network.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from smtpdiag.context import CheckContext, Target
from smtpdiag.errors import UsageError
from smtpdiag.knowledge.providers import provider_from_host
from smtpdiag.local.permissions import mode_text
from smtpdiag.models import CheckResult, Finding, Severity, worst_first
from smtpdiag.msmtprc.inspect import (
    PasswordLine,
    ProgramProblem,
    inspect_command,
    is_access_token,
    logfile_problem,
    read_password_lines,
    trust_file_problem,
)
from smtpdiag.msmtprc.kinds import (
    AUTH_NOT_OAUTH2,
    AUTH_OVERRIDDEN,
    CERTCHECK_OFF,
    COMMENT_WARNING_COMMANDS,
    FINDINGS,
    FROM_DIFFERS_FROM_USER,
    FROM_MISSING,
    FROM_NOT_ADDRESS,
    HOST_NOT_SET,
    IMPLICIT_TLS_ON_STARTTLS_PORT,
    INLINE_COMMENT,
    LOGFILE_NOT_WRITABLE,
    MECHANISM_NOT_SUPPORTED,
    MSMTP_NOT_FOUND,
    NO_AUTH,
    NO_DEFAULT_ACCOUNT,
    NO_TIMEOUT,
    OTHER_PROVIDER_RULE,
    PASSWORD_MISSING,
    PASSWORDEVAL_NOT_EXECUTABLE,
    PASSWORDEVAL_NOT_FOUND,
    PASSWORDEVAL_SCRIPT_CRLF,
    PROVIDER_RULES,
    READABLE_BY_OTHERS,
    REJECTED_BY_MSMTP,
    SENDER_CHECKING_PROVIDERS,
    STARTTLS_ON_IMPLICIT_PORT,
    TLS_OFF_WITH_AUTH,
    TOKEN_IN_PASSWORD,
    TRUST_FILE_MISSING,
    USER_MISSING,
    access_beyond_owner,
    comment_effect,
    mechanism_effect,
)
from smtpdiag.msmtprc.model import parse_c_integer
from smtpdiag.redact import MASK, mask_command
from smtpdiag.spec import CheckSpec

if TYPE_CHECKING:
    from smtpdiag.msmtprc.model import Account, Assignment, MsmtpFile
    from smtpdiag.msmtprc.version import MsmtpVersion

CHECK_ID = "msmtp_config"

NOT_CONFIGURED = "not run: no msmtp configuration; pass --msmtprc PATH or --msmtprc auto"

OAUTH_MECHANISMS = ("xoauth2", "oauthbearer")
"""``auth`` values that send an OAuth2 access token."""

STARTTLS_PORTS = (25, 587)
"""Ports that start in plaintext and upgrade with STARTTLS (RFC 3207, RFC 6409)."""

IMPLICIT_TLS_PORT = 465
"""Port that expects TLS from the first byte (RFC 8314)."""

CREDENTIAL_FREE_MECHANISMS = ("external", "gssapi")
"""``auth`` values that need no user and password from msmtp: EXTERNAL uses the TLS client
certificate, GSSAPI a Kerberos ticket."""

COMMENT_FREE_COMMANDS = frozenset({"passwordeval", "eval"})
"""Commands whose value is a shell command, where ``#`` starts a comment of the shell."""

_INLINE_COMMENT = re.compile(r"[ \t]#")

TOKEN_COMMAND_HINT = re.compile(r"oauth|token|bearer|pizauth|oama", re.IGNORECASE)
"""Words in a ``passwordeval`` command that show it prints an OAuth2 access token: the usual
helper names (mutt_oauth2.py, oama, pizauth, getmail-gmail-xoauth-tokens) and token files."""


@dataclass(frozen=True)
class MsmtpFacts:
    """Everything ``evaluate`` needs: the parsed file and what ``run`` found around it."""

    config: MsmtpFile
    account: Account | None
    """Account msmtp would use; None when none could be selected."""
    account_name: str
    """Account requested: ``--account``, else ``default``."""
    fell_back: bool = False
    """Whether the only account stood in for a missing ``default`` account, which
    ``select_account`` reports when no account was named."""
    mode: int | None = None
    """Permission bits of the file (``st_mode & 0o7777``); None when unknown."""
    password_lines: tuple[PasswordLine, ...] = ()
    command_problem: ProgramProblem | None = None
    logfile_problem: str | None = None
    """Reason msmtp cannot append to ``logfile``; None when it can or no file is set."""
    trust_file_problem: str | None = None
    """Reason msmtp cannot load ``tls_trust_file``; None when it can or none is set."""
    user_name: str = ""
    """User that smtpdiag runs as, named in the logfile finding."""
    version: MsmtpVersion | None = None
    system_config: bool = False
    """Whether the file is msmtp's system configuration file, whose mode msmtp never tests."""


def run(target: Target, ctx: CheckContext) -> CheckResult:
    """Read the msmtp configuration, its files and the msmtp binary, then judge them."""
    path = target.msmtp.config_file
    if path is None:
        return CheckResult.skipped(CHECK_ID, NOT_CONFIGURED)

    from smtpdiag.msmtprc.locate import select_account
    from smtpdiag.msmtprc.parser import parse_file

    try:
        config = parse_file(path)
    except UsageError as error:
        return CheckResult.unknown(CHECK_ID, f"cannot read {path}: {error.problem}")
    try:
        # Configuration loading selects the same account first and stops with a usage error
        # (exit 3) when there is none, so this is reached only by direct callers.
        select_account(config, target.msmtp.account)
    except UsageError as error:
        return CheckResult.unknown(CHECK_ID, error.problem)
    return evaluate(gather(config, target, ctx))


def gather(config: MsmtpFile, target: Target, ctx: CheckContext) -> MsmtpFacts:
    """Collect the facts around the parsed file: account, mode, programs and msmtp itself."""
    from smtpdiag.msmtprc.version import read_msmtp_version

    account, fell_back = _select(config, target.msmtp.account)
    # NOTE: programs are looked up in smtpdiag's own PATH. msmtpd started by systemd gets
    # systemd's default PATH instead, so a program found here may still be missing there.
    search_path = os.environ.get("PATH", os.defpath)
    version = read_msmtp_version(target.msmtp.program, ctx.io_timeout(), search_path)
    mode = _mode(config.path)
    command = account.get("passwordeval") if account else None
    logfile = account.get("logfile") if account else None
    trust_file = account.get("tls_trust_file") if account and account.tls else None
    return MsmtpFacts(
        config=config,
        account=account,
        account_name=target.msmtp.account or "default",
        fell_back=fell_back,
        mode=mode,
        password_lines=read_password_lines(config.path),
        command_problem=inspect_command(command, search_path) if command else None,
        logfile_problem=logfile_problem(logfile) if logfile else None,
        trust_file_problem=trust_file_problem(trust_file) if trust_file else None,
        user_name=_user_name(),
        version=version,
        system_config=_is_system_config(config.path, version),
    )


def _user_name() -> str:
    import pwd

    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _select(config: MsmtpFile, name: str | None) -> tuple[Account | None, bool]:
    """Return the account msmtp would use, and whether it is the only account of a file without
    ``default``, which happens only when no account was named."""
    from smtpdiag.msmtprc.locate import select_account

    try:
        return select_account(config, name)
    except UsageError:
        return None, False


def _mode(path: str) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def _is_system_config(path: str, version: MsmtpVersion | None) -> bool:
    system_file = version.system_config_file if version else None
    if system_file is None:
        return False
    return os.path.abspath(path) == os.path.abspath(system_file)


def evaluate(facts: MsmtpFacts) -> CheckResult:
    """Turn the facts about an msmtp configuration into the check result. Pure.

    A file that msmtp rejects gets only the findings about the file itself: msmtp stops at
    the first invalid line and runs nothing, so findings about the account would point at
    the wrong fix.
    """
    findings = _file_findings(facts)
    account = facts.account
    if not facts.config.problems:
        if account is not None:
            findings += _account_findings(facts, account)
        findings += _program_findings(facts)
    summary = _summary(facts, findings)
    return CheckResult.from_findings(CHECK_ID, summary, _ordered(findings), result_facts(facts))


def result_facts(facts: MsmtpFacts) -> dict[str, Any]:
    """Return the check's facts: the account's settings in force, without any secret."""
    account = facts.account
    result: dict[str, Any] = {
        "config_file": facts.config.path,
        "account": account.name if account else facts.account_name,
    }
    if account is not None:
        result |= {
            "host": account.get("host"),
            "port": account.port,
            "tls": account.tls,
            "starttls": account.starttls,
            "auth": account.auth,
            "user": account.get("user"),
            "from": account.get("from"),
            "passwordeval": _masked(account.get("passwordeval")),
            "logfile": account.get("logfile"),
        }
    version = facts.version
    result["msmtp_version"] = version.version if version else None
    result["msmtp_mechanisms"] = list(version.mechanisms or ()) if version else None
    return result


def _masked(text: str | None) -> str | None:
    """Return a value for output with its secrets masked (``mask_command``)."""
    return None if text is None else mask_command(text)


def _shown_value(assignment: Assignment) -> str:
    return MASK if assignment.command == "password" else mask_command(assignment.value)


def _evidence(config: MsmtpFile, assignment: Assignment | None) -> str:
    if assignment is None:
        return ""
    return (
        f"{config.path}:{assignment.line}: {assignment.command} {_shown_value(assignment)}".rstrip()
    )


def _details(facts: MsmtpFacts, account: Account | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {
        "config_file": facts.config.path,
        "account": account.name if account else facts.account_name,
    }
    if account is not None:
        details |= {"host": account.get("host") or "the server", "port": account.port}
    return details


# Findings about the file as a whole.


def _file_findings(facts: MsmtpFacts) -> list[Finding]:
    findings: list[Finding] = []
    config = facts.config
    if config.problems:
        first = config.problems[0]
        evidence = [
            f"{config.path}:{problem.line}: {problem.message}" for problem in config.problems
        ]
        details = _details(facts) | {"message": first.message, "count": len(config.problems)}
        findings.append(REJECTED_BY_MSMTP.make(details=details, evidence=evidence))
    elif facts.account is not None and facts.fell_back:
        account = facts.account
        evidence = [f"{config.path}:{account.line}: account {account.name}"]
        findings.append(
            NO_DEFAULT_ACCOUNT.make(details=_details(facts, account), evidence=evidence)
        )
    findings += _token_in_password(facts)
    readable = _readable_by_others(facts)
    if readable is not None:
        findings.append(readable)
    return findings


def _token_in_password(facts: MsmtpFacts) -> list[Finding]:
    findings: list[Finding] = []
    for password in facts.password_lines:
        if not password.token_shaped:
            continue
        if password.too_long:
            consequence = (
                f"The line is {password.length} characters long, and msmtp rejects any line "
                'of 500 characters or more ("line longer than 500 characters"), so it '
                "refuses the whole file."
            )
            severity = Severity.CRITICAL
        else:
            consequence = (
                "Access tokens expire, from Google and Microsoft about an hour after they "
                "are issued, so mail fails with 535 from then on. The file also stores a "
                "live credential."
            )
            severity = Severity.WARNING
        details = _details(facts) | {
            "line": password.line,
            "length": password.value_length,
            "kind": password.token_kind,
            "consequence": consequence,
        }
        evidence = [f"{facts.config.path}:{password.line}: password {MASK}"]
        findings.append(
            TOKEN_IN_PASSWORD.make(details=details, evidence=evidence, severity=severity)
        )
    return findings


def _readable_by_others(facts: MsmtpFacts) -> Finding | None:
    mode = facts.mode
    if mode is None:
        return None
    path = facts.config.path
    lines = ", ".join(str(password.line) for password in facts.password_lines)
    details = _details(facts) | {"mode": mode_text(mode), "access": access_beyond_owner(mode)}
    evidence = [f"{path}: mode {mode_text(mode)}"]
    evidence += [f"{path}:{password.line}: password {MASK}" for password in facts.password_lines]
    if facts.password_lines and mode & 0o177:
        if facts.system_config:
            msmtp_behaviour = (
                "msmtp does not test the mode of its system configuration file, so mail "
                "still goes out, but every local user can read the password."
            )
        else:
            msmtp_behaviour = (
                "msmtp rejects such a file unless it allows nothing beyond user read and "
                'write (0600): "contains secrets and therefore must have no more than user '
                'read/write permissions". msmtp 1.8.23 run as root skips this test.'
            )
        details |= {
            "exposure": f"The file contains a password (line {lines}). {msmtp_behaviour}",
            "remedy": f"Run `chmod 600 {path}` and give the file to the user that runs msmtp.",
        }
        return READABLE_BY_OTHERS.make(
            details=details, evidence=evidence, severity=Severity.CRITICAL
        )
    if mode & stat.S_IROTH:
        details |= {
            "exposure": (
                "The file contains no password, but every local user can read its accounts, "
                "user names and the passwordeval command that leads to the token."
            ),
            "remedy": (
                f"Run `chmod 640 {path}` and give the group to the user that runs msmtp, "
                "such as msmtpd's user."
            ),
        }
        return READABLE_BY_OTHERS.make(details=details, evidence=evidence[:1])
    return None


# Findings about the selected account.


def _account_findings(facts: MsmtpFacts, account: Account) -> list[Finding]:
    commented = _inline_comments(facts, account)
    findings: list[Finding] = [finding for finding, _ in commented]
    skip = {command for _, command in commented}
    findings += _presence_findings(facts, account, skip)
    findings += _credential_findings(facts, account)
    findings += _auth_findings(facts, account)
    findings += _tls_findings(facts, account, skip)
    sender = _from_differs(facts, account) if "from" not in skip else None
    if sender is not None:
        findings.append(sender)
    findings += _timeout_findings(facts, account)
    return findings


def _presence_findings(facts: MsmtpFacts, account: Account, skip: set[str]) -> list[Finding]:
    findings: list[Finding] = []
    details = _details(facts, account)
    evidence = [f"{facts.config.path}:{account.line}: account {account.name}"]
    if not account.get("host"):
        findings.append(HOST_NOT_SET.make(details=details, evidence=evidence))
    sender = account.get("from")
    if not sender and account.get("auto_from") not in ("", "on"):
        suggested = account.get("user") or "ADDRESS"
        findings.append(
            FROM_MISSING.make(details=details | {"suggested_from": suggested}, evidence=evidence)
        )
    elif sender and "from" not in skip and not _is_bare_address(sender):
        findings.append(_from_not_address(facts, account, sender))
    return findings


_ADDRESS_IN_BRACKETS = re.compile(r"<([^<>\s]+)>")


def _is_bare_address(sender: str) -> bool:
    """Tell whether a ``from`` value can go into MAIL FROM:<...> as it is."""
    return not any(character in sender for character in '<> \t"')


def _from_not_address(facts: MsmtpFacts, account: Account, sender: str) -> Finding:
    """Report a display name or angle brackets in ``from``. It is critical when
    ``allow_from_override off`` keeps the callers' ``-f`` from replacing the value."""
    inside = _ADDRESS_IN_BRACKETS.search(sender)
    suggested = inside.group(1) if inside else account.get("user") or "ADDRESS"
    fixed = account.get("allow_from_override") == "off"
    if fixed:
        callers = (
            "allow_from_override off makes msmtp use it even when the caller passes -f, so no "
            "mail goes out."
        )
    else:
        callers = (
            "msmtpd and other callers that pass -f replace it, so relayed mail still goes "
            "out, but cron jobs and scripts that run msmtp without -f fail."
        )
    details = _details(facts, account) | {
        "from_value": sender,
        "suggested_from": suggested,
        "callers": callers,
    }
    evidence = [_evidence(facts.config, account.assignment("from"))]
    severity = Severity.CRITICAL if fixed else None
    return FROM_NOT_ADDRESS.make(details=details, evidence=evidence, severity=severity)


def _inline_comments(facts: MsmtpFacts, account: Account) -> list[tuple[Finding, str]]:
    """Report each value in force that contains a ``#`` after a blank, with its command."""
    found: list[tuple[Finding, str]] = []
    for command in account.history:
        assignment = account.assignment(command)
        if assignment is None or command in COMMENT_FREE_COMMANDS:
            continue
        if _INLINE_COMMENT.search(assignment.value) is None:
            continue
        details = _details(facts, account) | {
            "line": assignment.line,
            "command": command,
            "effect": comment_effect(command, _shown_value(assignment)),
        }
        severity = Severity.WARNING if command in COMMENT_WARNING_COMMANDS else None
        evidence = [_evidence(facts.config, assignment)]
        finding = INLINE_COMMENT.make(details=details, evidence=evidence, severity=severity)
        found.append((finding, command))
    return found


def _credential_findings(facts: MsmtpFacts, account: Account) -> list[Finding]:
    """Report a missing user or password for a mechanism that needs both."""
    mechanism = account.auth
    if mechanism is None or mechanism in CREDENTIAL_FREE_MECHANISMS:
        return []
    assignment = account.assignment("auth")
    # With auth on msmtp's message names the mechanism it chose: PLAIN when the server offers
    # it (msmtp 1.8.23 against the lab), another one otherwise.
    named = mechanism.upper() if mechanism else "PLAIN"
    details = _details(facts, account) | {
        "value": assignment.value if assignment else "on",
        "mechanism": named,
        "suggested_user": account.get("from") or "ADDRESS",
    }
    evidence = [_evidence(facts.config, assignment)]
    findings: list[Finding] = []
    if not account.get("user"):
        findings.append(USER_MISSING.make(details=details, evidence=evidence))
    if account.get("password") is None and account.get("passwordeval") is None:
        findings.append(PASSWORD_MISSING.make(details=details, evidence=evidence))
    return findings


def _timeout_findings(facts: MsmtpFacts, account: Account) -> list[Finding]:
    if _timeout_seconds(account) is not None:
        return []
    evidence = [
        _evidence(facts.config, account.assignment("timeout"))
        or f"{facts.config.path}:{account.line}: account {account.name}"
    ]
    return [NO_TIMEOUT.make(details=_details(facts, account), evidence=evidence)]


def _timeout_seconds(account: Account) -> int | None:
    """Return the ``timeout`` in force in seconds, or None when it is off (msmtp's default)."""
    value = account.get("timeout")
    return None if value is None or value == "off" else parse_c_integer(value)


def _auth_findings(facts: MsmtpFacts, account: Account) -> list[Finding]:
    """Report an overridden OAuth2 mechanism, else a missing or non-OAuth2 one."""
    overridden = _auth_overridden(facts, account)
    if overridden is not None:
        return [overridden]
    if account.auth is None:
        return _no_auth(facts, account)
    if account.auth in OAUTH_MECHANISMS:
        return []

    source = _token_source(account)
    if source is None:
        return []
    text, token_assignment = source
    assignment = account.assignment("auth")
    details = _details(facts, account) | {
        "value": assignment.value if assignment else account.auth,
        "line": assignment.line if assignment else 0,
        "source": text,
        "effect": mechanism_effect(account.auth),
    }
    evidence = [
        _evidence(facts.config, assignment),
        _evidence(facts.config, token_assignment),
    ]
    return [AUTH_NOT_OAUTH2.make(details=details, evidence=evidence)]


def _token_source(account: Account) -> tuple[str, Assignment | None] | None:
    """Say where an access token comes from: a token-shaped ``password`` in force, or a
    ``passwordeval`` command whose words point at a token helper. None when neither."""
    password = account.get("password")
    if password is not None and is_access_token(password):
        assignment = account.assignment("password")
        line = assignment.line if assignment else 0
        return f"The password on line {line} is an OAuth2 access token.", assignment
    command = account.get("passwordeval")
    if command is None:
        return None
    hint = TOKEN_COMMAND_HINT.search(command)
    if hint is None:
        return None
    text = (
        "The passwordeval command looks like it prints an OAuth2 access token (it contains "
        f'"{hint.group(0)}").'
    )
    return text, account.assignment("passwordeval")


def _no_auth(facts: MsmtpFacts, account: Account) -> list[Finding]:
    credentials = [name for name in ("user", "passwordeval", "password") if account.get(name)]
    if not credentials:
        return []
    evidence = [_evidence(facts.config, account.assignment(name)) for name in credentials]
    details = _details(facts, account) | {"credentials": " and ".join(credentials)}
    return [NO_AUTH.make(details=details, evidence=evidence)]


def _auth_overridden(facts: MsmtpFacts, account: Account) -> Finding | None:
    history = account.history.get("auth", ())
    in_force = history[-1] if history else None
    if in_force is None or _mechanism(in_force.value) in OAUTH_MECHANISMS:
        return None
    earlier = [item for item in history[:-1] if _mechanism(item.value) in OAUTH_MECHANISMS]
    if not earlier:
        return None
    oauth = earlier[-1]
    details = _details(facts, account) | {
        "oauth_value": oauth.value,
        "oauth_shown": oauth.value.upper(),
        "oauth_line": oauth.line,
        "value": in_force.value or "on",
        "line": in_force.line,
        "effect": mechanism_effect(_mechanism(in_force.value)),
    }
    evidence = [_evidence(facts.config, oauth), _evidence(facts.config, in_force)]
    return AUTH_OVERRIDDEN.make(details=details, evidence=evidence)


def _mechanism(value: str) -> str | None:
    """Return the mechanism an ``auth`` value selects, as ``Account.auth`` does."""
    if value == "off":
        return None
    return "" if value in ("", "on") else value.lower()


def _tls_findings(facts: MsmtpFacts, account: Account, skip: set[str]) -> list[Finding]:
    findings: list[Finding] = []
    config = facts.config
    details = _details(facts, account)
    evidence = [
        line
        for line in (
            _evidence(config, account.assignment(name))
            for name in ("tls", "tls_starttls", "tls_nostarttls", "port")
        )
        if line
    ]

    port = account.port
    if account.tls and account.starttls and port == IMPLICIT_TLS_PORT:
        findings.append(
            STARTTLS_ON_IMPLICIT_PORT.make(
                details=details | _wait_texts(account), evidence=evidence
            )
        )
    if account.tls and not account.starttls and port in STARTTLS_PORTS:
        findings.append(IMPLICIT_TLS_ON_STARTTLS_PORT.make(details=details, evidence=evidence))
    if not account.tls and account.auth is not None:
        auth_line = _evidence(config, account.assignment("auth"))
        severity = Severity.WARNING if _is_loopback(account.get("host")) else None
        findings.append(
            TLS_OFF_WITH_AUTH.make(
                details=details, evidence=[*evidence, auth_line], severity=severity
            )
        )

    trust = account.assignment("tls_trust_file")
    if facts.trust_file_problem is not None and trust is not None and "tls_trust_file" not in skip:
        trust_details = details | {
            "reason": facts.trust_file_problem,
            "trust_file": trust.value,
            "line": trust.line,
        }
        evidence = [_evidence(config, trust)]
        findings.append(TRUST_FILE_MISSING.make(details=trust_details, evidence=evidence))

    certcheck = account.assignment("tls_certcheck")
    if account.tls and certcheck is not None and certcheck.value == "off":
        evidence = [_evidence(config, certcheck)]
        findings.append(CERTCHECK_OFF.make(details=details, evidence=evidence))
    return findings


def _wait_texts(account: Account) -> dict[str, str]:
    """Say how long msmtp waits for a greeting that never comes, and the fix for it."""
    seconds = _timeout_seconds(account)
    if seconds is not None:
        wait = (
            f'msmtp fails after its timeout of {seconds} s with "network read error: the '
            'operation timed out" (exit 74).'
        )
        return {"wait": wait, "timeout_fix": ""}
    wait = (
        "The account sets no timeout and msmtp's default is none, so msmtp waits without end, "
        "and msmtpd with it."
    )
    fix = " Add `timeout 30` as well, so that a silent server cannot keep msmtp waiting."
    return {"wait": wait, "timeout_fix": fix}


def _is_loopback(host: str | None) -> bool:
    """Tell whether ``host`` is this machine, where no one else can read the connection."""
    return host in ("localhost", "::1") or bool(host and host.startswith("127."))


def _from_differs(facts: MsmtpFacts, account: Account) -> Finding | None:
    sender = account.get("from")
    user = account.get("user")
    host = account.get("host")
    if not sender or not user or not host or "@" not in user:
        return None
    if not _is_bare_address(sender):
        return None  # from_not_address reports it
    # Patterns (msmtp 1.8.16) and %U/%H/%C/%M substitutions are not one plain address.
    if re.search(r"[*?\[%]", sender) or sender.lower() == user.lower():
        return None
    provider = provider_from_host(host)
    if provider not in SENDER_CHECKING_PROVIDERS:
        return None
    rule, remedy = PROVIDER_RULES.get(provider, OTHER_PROVIDER_RULE)
    details = _details(facts, account) | {
        "from_address": sender,
        "user": user,
        "provider_rule": rule.format(provider=provider.value.capitalize()),
        "provider_remedy": remedy,
    }
    evidence = [
        _evidence(facts.config, account.assignment("from")),
        _evidence(facts.config, account.assignment("user")),
    ]
    finding_facts = {"provider": provider.value}
    return FROM_DIFFERS_FROM_USER.make(details=details, evidence=evidence, facts=finding_facts)


# Findings about the programs msmtp runs.


def _program_findings(facts: MsmtpFacts) -> list[Finding]:
    findings: list[Finding] = []
    account = facts.account
    config = facts.config
    problem = facts.command_problem
    if account is not None and problem is not None:
        assignment = account.assignment("passwordeval")
        line = assignment.line if assignment else 0
        details = _details(facts, account) | {
            "path": problem.path,
            "role": problem.role,
            "line": line,
            "correct": (
                "the #! line of the script"
                if problem.role == "interpreter"
                else f"passwordeval on line {line}"
            ),
            "where": (
                " smtpdiag looked it up in its own PATH, and msmtpd's PATH may differ."
                if problem.searched_path
                else ""
            ),
        }
        if problem.crlf:
            kind = PASSWORDEVAL_SCRIPT_CRLF
        elif problem.missing:
            kind = PASSWORDEVAL_NOT_FOUND
        else:
            kind = PASSWORDEVAL_NOT_EXECUTABLE
        findings.append(kind.make(details=details, evidence=[_evidence(config, assignment)]))
    if account is not None and facts.logfile_problem is not None:
        assignment = account.assignment("logfile")
        details = _details(facts, account) | {
            "logfile": account.get("logfile"),
            "reason": facts.logfile_problem,
            "user": facts.user_name,
        }
        evidence = [_evidence(config, assignment)]
        findings.append(LOGFILE_NOT_WRITABLE.make(details=details, evidence=evidence))
    findings += _version_findings(facts)
    return findings


def _version_findings(facts: MsmtpFacts) -> list[Finding]:
    version = facts.version
    account = facts.account
    if version is None:
        return []
    details = _details(facts, account) | {"program": version.program}
    if version.error is not None:
        return [MSMTP_NOT_FOUND.make(details=details | {"error": version.error})]
    mechanism = account.auth if account else None
    if not mechanism or version.mechanisms is None or mechanism in version.mechanisms:
        return []
    assignment = account.assignment("auth") if account else None
    details |= {
        "version": version.version or "",
        "mechanism": mechanism.upper(),
        "value": mechanism,
        "mechanisms": " ".join(version.mechanisms) or "none",
    }
    evidence = [_evidence(facts.config, assignment)]
    return [MECHANISM_NOT_SUPPORTED.make(details=details, evidence=evidence)]


def _summary(facts: MsmtpFacts, findings: Sequence[Finding]) -> str:
    account = facts.account.name if facts.account else facts.account_name
    where = f"account {account} of {facts.config.path}"
    if not findings:
        return f"{where}: no problems found"
    problems = sum(finding.severity is not Severity.INFO for finding in findings)
    return f"{where}: {problems} {'problem' if problems == 1 else 'problems'} found"


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Sort by severity and drop the empty evidence lines of settings that were never set."""
    return worst_first(
        replace(finding, evidence=tuple(line for line in finding.evidence if line))
        for finding in findings
    )


SPEC = CheckSpec(
    id=CHECK_ID,
    title="msmtp configuration",
    run=run,
    findings=FINDINGS,
)
