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
import shlex
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from smtpdiag.context import CheckContext, Target
from smtpdiag.errors import UsageError
from smtpdiag.knowledge.providers import Provider, provider_from_host
from smtpdiag.models import CheckResult, Finding, Severity
from smtpdiag.redact import MASK, REDACTOR
from smtpdiag.sasl.tokens import looks_like_token
from smtpdiag.spec import CheckSpec, FindingKind

if TYPE_CHECKING:
    from smtpdiag.msmtprc.model import Account, Assignment, MsmtpFile
    from smtpdiag.msmtprc.version import MsmtpVersion

CHECK_ID = "msmtp_config"

NOT_CONFIGURED = "not run: no msmtp configuration; pass --msmtprc PATH or --msmtprc auto"

OAUTH_MECHANISMS = ("xoauth2", "oauthbearer")
"""``auth`` values that send an OAuth2 access token."""

MAX_LINE_BYTES = 500
"""Lines of this many bytes or more make msmtp reject the file: src/conf.c reads lines with
``fgets`` into a 501-byte buffer and reports "line longer than 500 characters" whenever the
newline does not fit. A line of 499 bytes is accepted and one of 500 rejected (msmtp 1.8.23)."""

STARTTLS_PORTS = (25, 587)
"""Ports that start in plaintext and upgrade with STARTTLS (RFC 3207, RFC 6409)."""

IMPLICIT_TLS_PORT = 465
"""Port that expects TLS from the first byte (RFC 8314)."""

INTERPRETERS = {
    **dict.fromkeys(("sh", "bash", "dash", "zsh", "ksh"), ("-c",)),
    **dict.fromkeys(("python", "python3"), ("-c", "-m")),
    **dict.fromkeys(("perl", "ruby", "node"), ("-e", "-E")),
}
"""Programs whose first non-option argument is the script that ``passwordeval`` really runs,
with the options after which the code comes from the command line instead of a file."""

SHELL_BUILTINS = frozenset(
    {"echo", "printf", "cat", "eval", "exec", "command", "test", "[", ".", "source", "true"}
)
"""First words that are shell builtins or part of coreutils, so there is nothing to test.
The program after ``exec`` or ``command`` is not judged either."""

TOKEN_COMMAND_HINT = re.compile(r"oauth|token|bearer|pizauth|oama", re.IGNORECASE)
"""Words in a ``passwordeval`` command that show it prints an OAuth2 access token: the usual
helper names (mutt_oauth2.py, oama, pizauth, getmail-gmail-xoauth-tokens) and token files."""

_PASSWORD_LINE = re.compile(rb"^[ \t]*password(?:[ \t]+(.*?))?[ \t]*\r?$")

# Kinds of the file and account as msmtp reads them.

REJECTED_BY_MSMTP = FindingKind(
    "msmtp_config.rejected_by_msmtp",
    Severity.CRITICAL,
    "msmtp rejects {config_file}: {message}",
    "msmtp reads the whole configuration file before it sends anything and stops at the "
    "first invalid line, so no account of this file can send mail. The evidence lists "
    "{count} problem(s), each with its line.",
    "Correct the lines in the evidence, then run `msmtp --pretend -C {config_file}` to "
    "confirm that msmtp reads the file.",
)
ACCOUNT_NOT_FOUND = FindingKind(
    "msmtp_config.account_not_found",
    Severity.CRITICAL,
    "Account {account} is not defined in {config_file}",
    'msmtp stops with "account {account} not found in {config_file}" before it connects. '
    "The file defines: {accounts}.",
    "Pass --account with one of the defined accounts, or add `account default : NAME` after "
    "the block of the account that msmtp should use without -a.",
)
NO_DEFAULT_ACCOUNT = FindingKind(
    "msmtp_config.no_default_account",
    Severity.WARNING,
    "{config_file} has no account named default",
    "smtpdiag checked the only account, {account}. msmtp run without -a, as msmtpd and "
    'sendmail-style callers run it, stops with "account default not found".',
    "Add the line `account default : {account}` after the block of account {account}, or "
    "start msmtp with -a {account} (msmtpd: --command='msmtp -a {account} -f %F --').",
)
HOST_NOT_SET = FindingKind(
    "msmtp_config.host_not_set",
    Severity.CRITICAL,
    "Account {account} has no host",
    "Neither the account, the accounts it inherits from nor the defaults before it set "
    'host, so msmtp stops with "account {account} from {config_file}: host not set".',
    "Add a `host` line with the submission server's name, such as smtp.gmail.com, to "
    "account {account}.",
)
FROM_MISSING = FindingKind(
    "msmtp_config.from_missing",
    Severity.WARNING,
    "Account {account} has no from address",
    'msmtp started without -f stops with "envelope-from address is missing". msmtpd '
    "passes the sender with -f, so relayed mail still goes out, but cron jobs and scripts "
    "that call msmtp or sendmail directly fail.",
    "Add `from {suggested_from}` to account {account}.",
)

# Kinds of authentication.

AUTH_OVERRIDDEN = FindingKind(
    "msmtp_config.auth_overridden",
    Severity.CRITICAL,
    "auth {oauth_value} on line {oauth_line} is overridden by auth {value} on line {line}",
    "msmtp uses the last auth line that reaches an account: defaults written before the "
    "account, then the accounts it inherits from, then its own lines. The one in force for "
    "account {account} is `auth {value}`. {effect}",
    "Remove the later auth line, or write `auth {oauth_value}` in account {account} after "
    "it; `msmtp --pretend -a {account}` then shows auth = {oauth_value}.",
)
AUTH_NOT_OAUTH2 = FindingKind(
    "msmtp_config.auth_not_oauth2",
    Severity.CRITICAL,
    "Account {account} sends its access token with auth {value}",
    "The passwordeval command looks like it prints an OAuth2 access token (it contains "
    '"{hint}"). {effect}',
    "Set `auth xoauth2` (Google, Microsoft) or `auth oauthbearer` (Google, RFC 7628 servers) "
    "in account {account} in place of line {line}.",
)
NO_AUTH = FindingKind(
    "msmtp_config.no_auth",
    Severity.WARNING,
    "Account {account} sets {credentials} but no auth",
    "Without an auth line, or with auth off, msmtp sends no AUTH command, so the user and "
    "the token are never used. Submission servers reject the sender of an unauthenticated "
    "session, Microsoft 365 with 530 5.7.57.",
    "Add `auth xoauth2` (or `auth oauthbearer`) to account {account}.",
)
MECHANISM_NOT_SUPPORTED = FindingKind(
    "msmtp_config.mechanism_not_supported",
    Severity.CRITICAL,
    "{program} {version} does not support {mechanism}",
    "Account {account} sets auth {value}, but the supported authentication methods that "
    "`{program} --version` lists are: {mechanisms}. msmtp supports XOAUTH2 since 1.8.13 and "
    'OAUTHBEARER since 1.8.4, and fails with "authentication method {mechanism} not '
    'supported" otherwise.',
    "Upgrade msmtp to 1.8.13 or later (Debian 12 ships 1.8.23), or set msmtp_program to the "
    "msmtp binary that msmtpd runs.",
)

# Kinds of TLS.

STARTTLS_ON_IMPLICIT_PORT = FindingKind(
    "msmtp_config.starttls_on_implicit_port",
    Severity.CRITICAL,
    "Account {account} uses STARTTLS on port 465",
    "Port 465 expects TLS from the first byte (RFC 8314), but with tls_starttls on msmtp "
    "waits for a plaintext greeting first. Neither side sends, and msmtp fails after its "
    'timeout with "network read error: the operation timed out".',
    "Set `tls_starttls off` in account {account} for port 465, or use port 587 with STARTTLS.",
)
IMPLICIT_TLS_ON_STARTTLS_PORT = FindingKind(
    "msmtp_config.implicit_tls_on_starttls_port",
    Severity.CRITICAL,
    "Account {account} uses implicit TLS on port {port}",
    "Port {port} starts in plaintext and upgrades with STARTTLS (RFC 3207), but with "
    "tls_starttls off msmtp starts a TLS handshake at once. The server's plaintext greeting "
    'breaks the handshake: "TLS handshake failed: An unexpected TLS packet was received".',
    "Set `tls_starttls on` in account {account} for port {port}, or use port 465 with "
    "implicit TLS.",
)
TLS_OFF_WITH_AUTH = FindingKind(
    "msmtp_config.tls_off_with_auth",
    Severity.CRITICAL,
    "Account {account} authenticates without TLS",
    "tls is off for account {account}, so the access token would cross the network in "
    "clear text to {host}. Providers offer AUTH only after STARTTLS, and msmtp then stops "
    'with "the server does not support authentication".',
    "Add `tls on` to account {account}, with `tls_starttls on` for port 587 or "
    "`tls_starttls off` for port 465.",
)
CERTCHECK_OFF = FindingKind(
    "msmtp_config.certcheck_off",
    Severity.WARNING,
    "Account {account} does not verify the server's certificate",
    "With tls_certcheck off msmtp accepts any certificate, so whoever can intercept the "
    "connection to {host} receives the access token.",
    "Remove the `tls_certcheck off` line; for a server whose certificate comes from a private "
    "CA, set tls_trust_file to that CA's certificate.",
)

# Kinds of secrets and files.

TOKEN_IN_PASSWORD = FindingKind(
    "msmtp_config.token_in_password",
    Severity.WARNING,
    "Line {line} of {config_file} stores an access token as the password",
    "The password on line {line} looks like an OAuth2 access token ({length} characters). "
    "{consequence}",
    "Remove the password line and use `passwordeval` with a command that prints a fresh "
    "access token, such as a script that exchanges the refresh token; keep the refresh "
    "token in a file that only msmtp's user can read.",
)
PASSWORDEVAL_NOT_FOUND = FindingKind(
    "msmtp_config.passwordeval_not_found",
    Severity.CRITICAL,
    "The passwordeval {role} {path} does not exist",
    "msmtp runs passwordeval with /bin/sh -c and reads the first line of its output. The "
    'shell reports that the {role} is not found, and msmtp stops with "cannot read output '
    "of '...'\" before it connects.{where}",
    "Install {path} or correct passwordeval on line {line}, then run the command as the user "
    "that runs msmtp and check that it prints the token.",
)
PASSWORDEVAL_NOT_EXECUTABLE = FindingKind(
    "msmtp_config.passwordeval_not_executable",
    Severity.CRITICAL,
    "The passwordeval program {path} is not executable",
    "msmtp runs passwordeval with /bin/sh -c, and {path} has no execute permission for "
    'smtpdiag\'s user. The shell reports "Permission denied" and msmtp stops with '
    "\"cannot read output of '...'\" before it connects.",
    "Run `chmod 0750 {path}` (or 0700 when only msmtp's user runs it), or call it through "
    "its interpreter, such as `passwordeval sh {path}`.",
)
LOGFILE_NOT_WRITABLE = FindingKind(
    "msmtp_config.logfile_not_writable",
    Severity.WARNING,
    "msmtp cannot append to its log file {logfile}",
    '{reason}. msmtp then prints "cannot log to {logfile}" on standard error, still sends '
    "the mail, and the record is missing from the file, so the auth_failure_rate check and "
    "smtpdiag logs do not see it. smtpdiag tested this as the user it runs as ({user}); "
    "the user that runs msmtp may have other rights.",
    "Create the file for the user that runs msmtp, such as `install -o msmtp -m 0640 "
    "/dev/null {logfile}` for msmtpd's user, or point logfile into a directory that user "
    "can write.",
)
READABLE_BY_OTHERS = FindingKind(
    "msmtp_config.readable_by_others",
    Severity.WARNING,
    "Other users can access {config_file} (mode {mode})",
    "{exposure}",
    "{remedy}",
)
FROM_DIFFERS_FROM_USER = FindingKind(
    "msmtp_config.from_differs_from_user",
    Severity.WARNING,
    "From address {from_address} differs from the authenticated user {user}",
    "{provider_rule}",
    "Set `from {user}` in account {account}, or give {user} the right to send as "
    "{from_address} ({provider_remedy}).",
)
MSMTP_NOT_FOUND = FindingKind(
    "msmtp_config.msmtp_not_found",
    Severity.WARNING,
    "Cannot run {program}: {error}",
    "smtpdiag runs `{program} --version` to learn which authentication methods the "
    "installed msmtp supports, and that failed here: {error}. Expected when msmtp runs on "
    "another host.",
    "Install msmtp (Debian: apt install msmtp) or set msmtp_program to the binary's path.",
)

FINDINGS = (
    REJECTED_BY_MSMTP,
    ACCOUNT_NOT_FOUND,
    NO_DEFAULT_ACCOUNT,
    HOST_NOT_SET,
    FROM_MISSING,
    AUTH_OVERRIDDEN,
    AUTH_NOT_OAUTH2,
    NO_AUTH,
    MECHANISM_NOT_SUPPORTED,
    STARTTLS_ON_IMPLICIT_PORT,
    IMPLICIT_TLS_ON_STARTTLS_PORT,
    TLS_OFF_WITH_AUTH,
    CERTCHECK_OFF,
    TOKEN_IN_PASSWORD,
    PASSWORDEVAL_NOT_FOUND,
    PASSWORDEVAL_NOT_EXECUTABLE,
    LOGFILE_NOT_WRITABLE,
    READABLE_BY_OTHERS,
    FROM_DIFFERS_FROM_USER,
    MSMTP_NOT_FOUND,
)

# Effects of an auth setting other than XOAUTH2 or OAUTHBEARER on a token.
_AUTO_CHOICE = (
    "With auth on msmtp chooses the mechanism itself, and msmtp 1.8.23 never chooses "
    "XOAUTH2 or OAUTHBEARER: it sends the access token as a password with PLAIN or LOGIN, "
    'which providers reject, or stops with "cannot find a usable authentication method" '
    "when the server offers only OAuth2 mechanisms."
)
_AUTH_OFF = (
    "With auth off msmtp sends no AUTH command, and the server rejects the sender of an "
    "unauthenticated session."
)
_NON_OAUTH_EFFECT = (
    "With auth {mechanism} msmtp sends the access token as a password, which providers "
    "reject (Gmail with 535 5.7.8, Microsoft 365 with 535 5.7.3 or 5.7.139)."
)

_PROVIDER_RULES = {
    Provider.MICROSOFT: (
        "Exchange Online accepts only addresses the authenticated mailbox may send as, and "
        "rejects other messages after DATA with 554 5.2.252 SendAsDenied.",
        "Microsoft 365: Add-RecipientPermission -AccessRights SendAs",
    ),
    Provider.GOOGLE: (
        'Gmail replaces a From address that is not a verified "Send mail as" address of '
        "the account with the account's own address.",
        "Gmail: add it under Settings, Accounts, Send mail as",
    ),
}
_OTHER_PROVIDER_RULE = (
    "{provider} accepts only the authenticated mailbox and its confirmed aliases as the sender.",
    "an alias confirmed in the provider's settings",
)
_SENDER_CHECKING_PROVIDERS = frozenset(
    {Provider.GOOGLE, Provider.MICROSOFT, Provider.YANDEX, Provider.MAILRU, Provider.YAHOO}
)


@dataclass(frozen=True)
class PasswordLine:
    """One ``password`` line of the file; the value itself is never kept."""

    line: int
    length: int
    """Bytes of the line without its newline."""
    token_shaped: bool
    """Whether the value looks like an access token (``looks_like_token``)."""

    @property
    def too_long(self) -> bool:
        """Whether msmtp rejects the file because of this line's length."""
        return self.length >= MAX_LINE_BYTES


@dataclass(frozen=True)
class ProgramProblem:
    """A ``passwordeval`` program, script or interpreter that the shell cannot run."""

    path: str
    missing: bool
    """True when it does not exist, False when it exists but is not executable."""
    role: str = "program"
    """``program``, ``script`` (run by an interpreter) or ``interpreter`` (of a ``#!`` line)."""
    searched_path: bool = False
    """Whether the name was looked up in ``PATH`` rather than given as a path."""


@dataclass(frozen=True)
class MsmtpFacts:
    """Everything ``evaluate`` needs: the parsed file and what ``run`` found around it."""

    config: MsmtpFile
    account: Account | None
    """Account msmtp would use; None when none could be selected."""
    account_name: str
    """Account requested: ``--account``, else ``default``."""
    fell_back: bool = False
    """Whether the only account stood in for a missing ``default`` account."""
    mode: int | None = None
    """Permission bits of the file (``st_mode & 0o7777``); None when unknown."""
    password_lines: tuple[PasswordLine, ...] = ()
    command_problem: ProgramProblem | None = None
    logfile_problem: str | None = None
    """Reason msmtp cannot append to ``logfile``; None when it can or no file is set."""
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

    from smtpdiag.msmtprc.parser import parse_file

    try:
        config = parse_file(path)
    except UsageError as error:
        return CheckResult.unknown(CHECK_ID, f"cannot read {path}: {error.problem}")
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
    return MsmtpFacts(
        config=config,
        account=account,
        account_name=target.msmtp.account or "default",
        fell_back=fell_back,
        mode=mode,
        password_lines=read_password_lines(config.path),
        command_problem=inspect_command(command, search_path) if command else None,
        logfile_problem=logfile_problem(logfile) if logfile else None,
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
    """Return the account msmtp would use and whether ``default`` is missing from a file
    with one account.

    ``config.load`` stores the account it fell back to as if it had been named, so the
    fallback is recognised from the file: msmtp without ``-a`` fails on it either way.
    """
    from smtpdiag.msmtprc.locate import select_account

    try:
        account, _ = select_account(config, name)
    except UsageError:
        return None, False
    lone = len(config.accounts) == 1 and config.account("default") is None
    return account, lone


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


def read_password_lines(path: str) -> tuple[PasswordLine, ...]:
    """Return every ``password`` line of ``path`` with its length and shape.

    Token-shaped values and every password of six characters or more are registered with
    the redactor, so that no output can show them.
    """
    try:
        with open(path, "rb") as handle:
            raw_lines = handle.read().split(b"\n")
    except OSError:
        return ()
    found: list[PasswordLine] = []
    for number, raw in enumerate(raw_lines, start=1):
        match = _PASSWORD_LINE.match(raw)
        if match is None:
            continue
        value = _unquote((match.group(1) or b"").decode("utf-8", errors="replace"))
        REDACTOR.register(value)
        found.append(PasswordLine(number, len(raw), looks_like_token(value)))
    return tuple(found)


def _unquote(value: str) -> str:
    """Remove one pair of enclosing double quotes, as msmtp's ``trim_string`` does."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def inspect_command(command: str, search_path: str) -> ProgramProblem | None:
    """Return why ``/bin/sh -c command`` cannot start its program, or None when it can.

    Only the first simple command is looked at: the words before ``|``, ``;`` or ``&``.
    Commands whose program comes from a variable or a substitution are not judged.
    """
    words = _first_command_words(command)
    if not words:
        return None
    program = words[0]
    if os.path.basename(program) == "env":
        words = _after_env(words[1:])
        if not words:
            return None
        program = words[0]
    if program in SHELL_BUILTINS or "$" in program or "`" in program:
        return None
    located = _locate(program, search_path)
    if isinstance(located, ProgramProblem):
        return located
    inline_options = INTERPRETERS.get(os.path.basename(program))
    if inline_options is not None:
        return _inspect_script(words[1:], inline_options)
    return _inspect_shebang(located)


def _first_command_words(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars="|;&<>()")
    lexer.whitespace_split = True
    words: list[str] = []
    try:
        for word in lexer:
            if word and set(word) <= set("|;&<>()"):
                break
            words.append(word)
    except ValueError:
        # Unbalanced quotes: the shell fails with its own syntax error, not a missing program.
        return []
    # Leading VAR=value words set the environment of the command that follows.
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words.pop(0)
    return words


def _after_env(words: Sequence[str]) -> list[str]:
    rest = list(words)
    while rest and (rest[0].startswith("-") or "=" in rest[0]):
        option = rest.pop(0)
        if option in ("-u", "--unset", "-C", "--chdir") and rest:
            rest.pop(0)
    return rest


def _locate(program: str, search_path: str) -> str | ProgramProblem:
    """Return the path the shell would run, or the problem that stops it."""
    if "/" in program or program.startswith("~"):
        path = os.path.expanduser(program)
        return _executable_problem(path, searched=False) or path
    found = shutil.which(program, mode=os.F_OK, path=search_path)
    if found is None:
        return ProgramProblem(program, missing=True, searched_path=True)
    return _executable_problem(found, searched=True) or found


def _executable_problem(path: str, searched: bool) -> ProgramProblem | None:
    if not os.path.exists(path):
        return ProgramProblem(path, missing=True, searched_path=searched)
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        return ProgramProblem(path, missing=False, searched_path=searched)
    return None


def _inspect_script(
    arguments: Sequence[str], inline_options: Sequence[str]
) -> ProgramProblem | None:
    """Check the script argument of an interpreter, unless the code is inline or on stdin."""
    for argument in arguments:
        if argument in inline_options or argument == "-":
            return None
        if argument.startswith("-"):
            continue
        path = os.path.expanduser(argument)
        if not os.path.exists(path):
            return ProgramProblem(path, missing=True, role="script")
        return None
    return None


def _inspect_shebang(path: str) -> ProgramProblem | None:
    """Check the interpreter named by a script's ``#!`` line."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", errors="replace").split()
    if not words or os.path.exists(words[0]):
        return None
    return ProgramProblem(words[0], missing=True, role="interpreter")


def logfile_problem(logfile: str) -> str | None:
    """Return why the current user cannot append to ``logfile``, or None when it can.

    ``-`` (standard output) needs no file. msmtp expands a leading ``~``.
    """
    if logfile == "-":
        return None
    path = os.path.expanduser(logfile)
    if os.path.isdir(path):
        return f"{path} is a directory"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"{path} does not exist and neither does its directory {directory}"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"{path} does not exist and its directory {directory} is not writable"
    return None


def evaluate(facts: MsmtpFacts) -> CheckResult:
    """Turn the facts about an msmtp configuration into the check result. Pure."""
    findings = _file_findings(facts)
    account = facts.account
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
            "passwordeval": _mask_words(account.get("passwordeval")),
            "logfile": account.get("logfile"),
        }
    version = facts.version
    result["msmtp_version"] = version.version if version else None
    result["msmtp_mechanisms"] = list(version.mechanisms or ()) if version else None
    return result


def _mask_words(text: str | None) -> str | None:
    """Replace the token-shaped words of ``text`` with the mask and register them."""
    if text is None:
        return None
    words = text.split(" ")
    for index, word in enumerate(words):
        if looks_like_token(word):
            REDACTOR.register(word)
            words[index] = MASK
    return " ".join(words)


def _evidence(config: MsmtpFile, assignment: Assignment | None) -> str:
    if assignment is None:
        return ""
    value = MASK if assignment.command == "password" else _mask_words(assignment.value)
    return f"{config.path}:{assignment.line}: {assignment.command} {value}".rstrip()


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
    if facts.account is None:
        names = ", ".join(config.account_names) or "no account"
        details = _details(facts) | {"accounts": names}
        findings.append(
            ACCOUNT_NOT_FOUND.make(details=details, facts={"accounts": list(config.account_names)})
        )
    elif facts.fell_back:
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
            "length": password.length,
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
    details = _details(facts) | {"mode": f"{mode:04o}"}
    evidence = [f"{path}: mode {mode:04o}"]
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
    findings: list[Finding] = []
    findings += _presence_findings(facts, account)
    findings += _auth_findings(facts, account)
    findings += _tls_findings(facts, account)
    sender = _from_differs(facts, account)
    if sender is not None:
        findings.append(sender)
    return findings


def _presence_findings(facts: MsmtpFacts, account: Account) -> list[Finding]:
    findings: list[Finding] = []
    details = _details(facts, account)
    evidence = [f"{facts.config.path}:{account.line}: account {account.name}"]
    if not account.get("host"):
        findings.append(HOST_NOT_SET.make(details=details, evidence=evidence))
    if not account.get("from") and account.get("auto_from") not in ("", "on"):
        suggested = account.get("user") or "ADDRESS"
        findings.append(
            FROM_MISSING.make(details=details | {"suggested_from": suggested}, evidence=evidence)
        )
    return findings


def _auth_findings(facts: MsmtpFacts, account: Account) -> list[Finding]:
    """Report an overridden OAuth2 mechanism, else a missing or non-OAuth2 one."""
    overridden = _auth_overridden(facts, account)
    if overridden is not None:
        return [overridden]
    if account.auth is None:
        return _no_auth(facts, account)

    command = account.get("passwordeval")
    if account.auth in OAUTH_MECHANISMS or command is None:
        return []
    hint = TOKEN_COMMAND_HINT.search(command)
    if hint is None:
        return []

    assignment = account.assignment("auth")
    details = _details(facts, account) | {
        "value": assignment.value if assignment else account.auth,
        "line": assignment.line if assignment else 0,
        "hint": hint.group(0),
        "effect": _mechanism_effect(account.auth),
    }
    evidence = [
        _evidence(facts.config, assignment),
        _evidence(facts.config, account.assignment("passwordeval")),
    ]
    return [AUTH_NOT_OAUTH2.make(details=details, evidence=evidence)]


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
        "oauth_line": oauth.line,
        "value": in_force.value or "on",
        "line": in_force.line,
        "effect": _mechanism_effect(_mechanism(in_force.value)),
    }
    evidence = [_evidence(facts.config, oauth), _evidence(facts.config, in_force)]
    return AUTH_OVERRIDDEN.make(details=details, evidence=evidence)


def _mechanism(value: str) -> str | None:
    """Return the mechanism an ``auth`` value selects, as ``Account.auth`` does."""
    if value == "off":
        return None
    return "" if value in ("", "on") else value.lower()


def _mechanism_effect(mechanism: str | None) -> str:
    if mechanism is None:
        return _AUTH_OFF
    if mechanism == "":
        return _AUTO_CHOICE
    return _NON_OAUTH_EFFECT.format(mechanism=mechanism.upper())


def _tls_findings(facts: MsmtpFacts, account: Account) -> list[Finding]:
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
        findings.append(STARTTLS_ON_IMPLICIT_PORT.make(details=details, evidence=evidence))
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
    certcheck = account.assignment("tls_certcheck")
    if account.tls and certcheck is not None and certcheck.value == "off":
        evidence = [_evidence(config, certcheck)]
        findings.append(CERTCHECK_OFF.make(details=details, evidence=evidence))
    return findings


def _is_loopback(host: str | None) -> bool:
    """Tell whether ``host`` is this machine, where no one else can read the connection."""
    return host in ("localhost", "::1") or bool(host and host.startswith("127."))


def _from_differs(facts: MsmtpFacts, account: Account) -> Finding | None:
    sender = account.get("from")
    user = account.get("user")
    host = account.get("host")
    if not sender or not user or not host or "@" not in user:
        return None
    # Patterns (msmtp 1.8.16) and %U/%H/%C/%M substitutions are not one plain address.
    if re.search(r"[*?\[%]", sender) or sender.lower() == user.lower():
        return None
    provider = provider_from_host(host)
    if provider not in _SENDER_CHECKING_PROVIDERS:
        return None
    rule, remedy = _PROVIDER_RULES.get(provider, _OTHER_PROVIDER_RULE)
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
        details = _details(facts, account) | {
            "path": problem.path,
            "role": problem.role,
            "line": assignment.line if assignment else 0,
            "where": (
                " smtpdiag looked it up in its own PATH, and msmtpd's PATH may differ."
                if problem.searched_path
                else ""
            ),
        }
        kind = PASSWORDEVAL_NOT_FOUND if problem.missing else PASSWORDEVAL_NOT_EXECUTABLE
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
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    cleaned = [
        replace(finding, evidence=tuple(line for line in finding.evidence if line))
        for finding in findings
    ]
    return sorted(cleaned, key=lambda finding: order[finding.severity])


SPEC = CheckSpec(
    id=CHECK_ID,
    title="msmtp configuration",
    run=run,
    findings=FINDINGS,
)
