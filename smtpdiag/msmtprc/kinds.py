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
