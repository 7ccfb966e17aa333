"""Finding kinds of the msmtp_config check, with the texts that fill their placeholders.

The module imports nothing from ``checks``, so any part of smtpdiag can import the kinds. The
texts describe msmtp 1.8.23 as read in its src/conf.c and src/smtp.c and seen when running it.
"""

from __future__ import annotations

from smtpdiag.knowledge.providers import Provider
from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

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

FROM_NOT_ADDRESS = FindingKind(
    "msmtp_config.from_not_address",
    Severity.WARNING,
    "The from value of account {account} is not a bare address: {from_value}",
    "msmtp sends the from value unchanged as the envelope sender (MAIL FROM:<{from_value}>), "
    "and servers reject a display name or angle brackets there with 501 or 553; msmtp then "
    'stops with "envelope from address ... not accepted by the server" (exit 65). {callers}',
    "Write the bare address, such as `from {suggested_from}`. A display name belongs in the "
    "message's From header, which the sending program writes.",
)
INLINE_COMMENT = FindingKind(
    "msmtp_config.inline_comment",
    Severity.CRITICAL,
    "Line {line} of {config_file} has a comment after the {command} value",
    "msmtp treats # as a comment only at the start of a line, so the text after the value "
    "on line {line} is part of it. {effect}",
    "Move the comment to a line of its own that starts with #, and leave only the value on "
    "line {line}.",
)
NO_TIMEOUT = FindingKind(
    "msmtp_config.no_timeout",
    Severity.WARNING,
    "Account {account} sets no timeout",
    "msmtp's default is no timeout (`msmtp --pretend` prints `timeout = off`), so a server "
    "that accepts the connection and then stops answering keeps msmtp waiting without end. "
    "msmtpd waits as long, until the session of the program that hands it the mail times "
    "out and that program tries again later.",
    "Add `timeout 30` to account {account} or to its defaults.",
)

# Kinds of authentication.

USER_MISSING = FindingKind(
    "msmtp_config.user_missing",
    Severity.CRITICAL,
    "Account {account} authenticates without a user",
    'Account {account} sets auth {value} but no user, so msmtp stops with "authentication '
    'method {mechanism} needs a user name" (exit 69) after it connects, and no mail goes out.',
    "Add `user` with the mailbox that the token belongs to, such as `user "
    "{suggested_user}`, to account {account}.",
)
PASSWORD_MISSING = FindingKind(
    "msmtp_config.password_missing",
    Severity.WARNING,
    "Account {account} authenticates without password or passwordeval",
    "Account {account} sets auth {value} but neither password nor passwordeval. msmtp then "
    "looks for a password in the keyring, ~/.netrc and /etc/netrc, and asks on the terminal "
    "when there is one. Under msmtpd or cron none of that usually applies, and msmtp stops "
    'with "authentication method {mechanism} needs a password" (exit 69).',
    "Add `passwordeval` with the command that prints the access token to account {account}.",
)

AUTH_OVERRIDDEN = FindingKind(
    "msmtp_config.auth_overridden",
    Severity.CRITICAL,
    "auth {oauth_value} on line {oauth_line} is overridden by auth {value} on line {line}",
    "msmtp uses the last auth line that reaches an account: defaults written before the "
    "account, then the accounts it inherits from, then its own lines. The one in force for "
    "account {account} is `auth {value}`. {effect}",
    "Remove the later auth line, or write `auth {oauth_value}` in account {account} after "
    "it; `msmtp --pretend -a {account}` then prints `auth = {oauth_shown}`.",
)
AUTH_NOT_OAUTH2 = FindingKind(
    "msmtp_config.auth_not_oauth2",
    Severity.CRITICAL,
    "Account {account} sends its access token with auth {value}",
    "{source} {effect}",
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
    "waits for a plaintext greeting first. Neither side sends. {wait}",
    "Set `tls_starttls off` in account {account} for port 465, or use port 587 with STARTTLS."
    "{timeout_fix}",
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
TRUST_FILE_MISSING = FindingKind(
    "msmtp_config.trust_file_missing",
    Severity.CRITICAL,
    "The tls_trust_file of account {account} cannot be read",
    '{reason}. msmtp stops with "cannot set X509 trust file {trust_file} for TLS session: '
    'Error while reading file." (exit 66) before TLS starts, so no mail goes out.',
    "Point tls_trust_file on line {line} at the CA certificate file, or write "
    "`tls_trust_file system` for the system's CA store.",
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
    "The password on line {line} is shaped like an OAuth2 access token ({kind}, {length} "
    "characters long). {consequence}",
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
    "Install {path} or correct {correct}, then run the command as the user that runs msmtp "
    "and check that it prints the token.",
)
PASSWORDEVAL_SCRIPT_CRLF = FindingKind(
    "msmtp_config.passwordeval_script_crlf",
    Severity.CRITICAL,
    "The passwordeval script {path} has CRLF line ends",
    "The #! line of {path} ends with a carriage return, so the kernel looks for an "
    "interpreter whose name ends with that character and finds none. The shell reports "
    '"sh: 1: {path}: not found" although the script exists, and msmtp stops with "cannot '
    "read output of '...'\" before it connects.",
    "Convert the script to LF line ends, such as with `sed -i 's/\\r$//' {path}` or "
    "`dos2unix {path}`.",
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
    "Mode {mode} of {config_file} lets {access}",
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
    NO_DEFAULT_ACCOUNT,
    HOST_NOT_SET,
    FROM_MISSING,
    FROM_NOT_ADDRESS,
    INLINE_COMMENT,
    NO_TIMEOUT,
    USER_MISSING,
    PASSWORD_MISSING,
    AUTH_OVERRIDDEN,
    AUTH_NOT_OAUTH2,
    NO_AUTH,
    MECHANISM_NOT_SUPPORTED,
    STARTTLS_ON_IMPLICIT_PORT,
    IMPLICIT_TLS_ON_STARTTLS_PORT,
    TLS_OFF_WITH_AUTH,
    TRUST_FILE_MISSING,
    CERTCHECK_OFF,
    TOKEN_IN_PASSWORD,
    PASSWORDEVAL_NOT_FOUND,
    PASSWORDEVAL_NOT_EXECUTABLE,
    PASSWORDEVAL_SCRIPT_CRLF,
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

PROVIDER_RULES = {
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
"""Per provider, how it treats a From address other than the user's, and the remedy."""
OTHER_PROVIDER_RULE = (
    "{provider} accepts only the authenticated mailbox and its confirmed aliases as the sender.",
    "an alias confirmed in the provider's settings",
)
"""Rule and remedy for the other providers in ``SENDER_CHECKING_PROVIDERS``."""
SENDER_CHECKING_PROVIDERS = frozenset(
    {Provider.GOOGLE, Provider.MICROSOFT, Provider.YANDEX, Provider.MAILRU, Provider.YAHOO}
)
"""Providers that accept only the authenticated user and its aliases as the From address."""


def mechanism_effect(mechanism: str | None) -> str:
    """Describe what msmtp does with an access token under an auth setting other than OAuth2.

    ``mechanism`` is as ``Account.auth`` gives it: None for auth off, "" for auth on.
    """
    if mechanism is None:
        return _AUTH_OFF
    if mechanism == "":
        return _AUTO_CHOICE
    return _NON_OAUTH_EFFECT.format(mechanism=mechanism.upper())


def access_beyond_owner(mode: int) -> str:
    """Describe what ``mode`` allows beyond user read and write, such as "its group read it"."""
    parts = []
    if mode & 0o100:
        parts.append("its owner execute it")
    for shift, who in ((3, "its group"), (0, "other users")):
        bits = (mode >> shift) & 0o7
        words = [word for bit, word in ((4, "read"), (2, "write"), (1, "execute")) if bits & bit]
        if words:
            actions = " and ".join(words) if len(words) < 3 else "read, write and execute"
            parts.append(f"{who} {actions} it")
    return ", ".join(parts) if parts else "nothing beyond user read and write"


_COMMENT_EFFECTS = {
    "host": 'msmtp looks up the host name "{value}" and stops with "cannot locate host" (exit '
    "68), so no mail goes out.",
    "user": 'msmtp sends "{value}" as the user name, and the server rejects the token with 535.',
    "password": "msmtp sends the comment as part of the password, and the server rejects it.",
    "from": 'msmtp sends "{value}" as the envelope sender, which servers reject with 501.',
    "tls_trust_file": 'msmtp looks for a CA file named "{value}" and stops with "cannot set X509 '
    'trust file" (exit 66).',
    "logfile": 'msmtp appends its log to a file named "{value}", so the log file that '
    "smtpdiag and the administrator read stays empty.",
}
"""Per command, the effect of a value that includes a comment. Other commands get
``_COMMENT_EFFECT``."""
_COMMENT_EFFECT = 'msmtp uses "{value}" as the value of {command}.'
COMMENT_WARNING_COMMANDS = frozenset({"logfile", "logfile_time_format", "aliases", "from"})
"""Commands whose value with a comment still lets mail go out: a log or alias setting, and
``from``, which msmtpd's ``-f`` replaces."""


def comment_effect(command: str, shown_value: str) -> str:
    """Describe what msmtp does when the value of ``command`` includes a comment.

    ``shown_value`` is the value as output may show it, with secrets masked.
    """
    template = _COMMENT_EFFECTS.get(command, _COMMENT_EFFECT)
    return template.format(value=shown_value, command=command)
