"""Finding kinds that only log analysis reports.

A failure read from a log is classified to the most specific finding code the knowledge base
has: an SMTP reply to an ``auth.*`` kind, a TLS error text to a ``tls.*`` kind, an identity
provider error body to a ``token.*`` kind. The kinds below cover what only logs show: the
failure rate itself, local SASL and relay failures, and secrets written to a log.
"""

from __future__ import annotations

from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

THRESHOLD_EXCEEDED = FindingKind(
    "auth_failure_rate.threshold_exceeded",
    Severity.CRITICAL,
    "{failures} of {attempts} AUTH attempts failed ({percent}) between {window_start} and "
    "{window_end}",
    "More than {threshold_percent} of the AUTH attempts in a {window_minutes}-minute window "
    "failed, with {min_attempts} or more attempts, the rule of the SmtpAuthFailureRatioHigh "
    "alert. Mail from the failing senders is deferred or bounced. The top reasons below say "
    "which part broke.",
    "Fix the most frequent reason first (listed with its own fix), then watch the next window: "
    "smtpdiag logs --follow FILE shows the ratio as it changes.",
)
FAILURES_BELOW_THRESHOLD = FindingKind(
    "auth_failure_rate.failures_below_threshold",
    Severity.INFO,
    "{failures} of {attempts} AUTH attempts failed ({percent}){verdict}",
    "Some AUTH attempts failed, but no window had more than {threshold_percent} failures with "
    "{min_attempts} or more attempts. A few failures are normal when a token expires between "
    "refreshes or a user mistypes a password.",
    "Read the reasons below; act when one sender fails repeatedly.",
)
NO_ATTEMPTS = FindingKind(
    "auth_failure_rate.no_attempts",
    Severity.INFO,
    "No AUTH attempts in the logs read",
    "None of the {lines_read} read records an AUTH attempt or a submission through msmtp, "
    "msmtpd, Postfix, Exim or Dovecot. Either no mail was sent in that time, the files are not "
    "the mail logs, or the program logs elsewhere (Debian 12 logs to journald only).",
    "Point smtpdiag at the file the mail program writes (msmtp: the logfile option; Postfix: "
    "maillog_file or /var/log/mail.log), or read journald with --journal.",
)
NO_ATTEMPTS_IN_RANGE = FindingKind(
    "auth_failure_rate.no_attempts_in_range",
    Severity.INFO,
    "No AUTH attempts {period}",
    "{lines_read} read, with {attempts_read} in all, but no attempt falls {period}{newest}. "
    "Either no mail was sent in that time, or the times in the log are read in the wrong zone "
    "or format.",
    "Widen the time range (--since, --window or log_window_minutes), or set the zone "
    "(--timezone, log_timezone) and msmtp's time format (--msmtp-time-format, "
    "msmtp_time_format) that the log was written with.",
)
LOG_UNREADABLE = FindingKind(
    "auth_failure_rate.log_unreadable",
    Severity.WARNING,
    "Cannot read the log file {path}",
    "Reading {path} failed: {error}.",
    "Check that the path names the mail log file (a plain or gzip file, not a directory or a "
    "device) and that smtpdiag may read it: mail logs are often readable only by root and the "
    "adm group.",
)
BACKEND_UNAVAILABLE = FindingKind(
    "auth_failure_rate.backend_unavailable",
    Severity.CRITICAL,
    "Postfix lost its connection to the authentication server",
    "Postfix's smtpd could not reach the SASL service that checks credentials (Dovecot auth or "
    "saslauthd). The clients' credentials were never checked: every login fails until the "
    "service is back, whatever the client sends.",
    "Check the SASL service: systemctl status dovecot (or saslauthd), the socket named by "
    "smtpd_sasl_path, and that service's own log for the reason it stopped answering.",
)
LOCAL_SASL_FAILURE = FindingKind(
    "auth_failure_rate.local_sasl_failure",
    Severity.CRITICAL,
    "The local SASL plugin failed before the server could judge the login",
    "Postfix's SASL library reported '{sasl_text}' for {host}: the local plugin (for XOAUTH2, "
    "sasl-xoauth2) could not build the login, usually because refreshing the access token "
    "failed. The server did not reject anything.",
    "Read the plugin's own log lines (syslog tag sasl-xoauth2, with log_full_trace_on_failure "
    "set in /etc/sasl-xoauth2.conf) for the token endpoint's answer, and check the token file "
    "named in smtp_sasl_password_maps.",
)
NO_SASL_MECHANISM = FindingKind(
    "auth_failure_rate.no_sasl_mechanism",
    Severity.CRITICAL,
    "No SASL mechanism available to authenticate to {host}",
    "Postfix's SASL library has no mechanism that both it and the server support: the XOAUTH2 "
    "plugin is not installed or not found, or smtp_sasl_mechanism_filter excludes every "
    "mechanism the server offers.",
    "Install the plugin (Debian: sasl-xoauth2 or libsasl2-modules for the classic mechanisms), "
    "check that pluginviewer -c lists XOAUTH2, and compare smtp_sasl_mechanism_filter with the "
    "server's AUTH line.",
)
TOKEN_REFRESH_FAILED = FindingKind(
    "auth_failure_rate.token_refresh_failed",
    Severity.CRITICAL,
    "Refreshing the access token failed",
    "The SASL plugin could not get a new access token: {detail}. Without a token it cannot log "
    "in, so every delivery through the relay is deferred.",
    "Check that the host reaches the token endpoint (HTTPS, proxy settings) and that the "
    "refresh token in the plugin's token file is still valid. smtpdiag check --only token with "
    "the same client id and refresh token shows the identity provider's error.",
)
PIPE_COMMAND_FAILED = FindingKind(
    "auth_failure_rate.pipe_command_failed",
    Severity.CRITICAL,
    "The relay's pipe command failed with exit code {exit_code}",
    "msmtpd hands each message to msmtp and, when msmtp exits with an error, answers the "
    "sender with 'Pipe command reported error {exit_code}': 451 for exit codes 68, 69, 71 and "
    "75, 554 for every other code (older msmtpd releases answer 554 for all). Exit code 77 "
    "(EX_NOPERM) is an AUTH failure, 78 (EX_CONFIG) a configuration or passwordeval failure, "
    "74 a network error, 76 a TLS or protocol error. 554 is permanent, so the sending MTA "
    "bounces the message instead of retrying it: mail is lost for a problem that is usually "
    "temporary.",
    "Fix msmtp's own error (run the pipe command by hand, or read msmtp's log file). To keep "
    "mail queued meanwhile, make the relay answer 451 for these exit codes (a wrapper script "
    "that maps them to EX_TEMPFAIL, for which msmtpd itself replies 451) or let Postfix defer "
    "it (smtp_reply_filter rewriting the 554 to 451).",
)
PIPE_COMMAND_DEFERRED = FindingKind(
    "auth_failure_rate.pipe_command_deferred",
    Severity.WARNING,
    "The relay's pipe command failed with temporary exit code {exit_code}; mail stays queued",
    "msmtpd hands each message to msmtp and answers 451 'Pipe command reported error "
    "{exit_code}' when msmtp exits with 68 (EX_NOHOST), 69 (EX_UNAVAILABLE), 71 (EX_OSERR) or "
    "75 (EX_TEMPFAIL, such as a refused connection). 451 is temporary, so the sending MTA "
    "keeps the message queued and retries it; nothing is lost yet, but nothing is delivered "
    "either.",
    "Fix msmtp's own error: run the pipe command by hand or read msmtp's log file, and run "
    "smtpdiag check with the relay's msmtprc (--msmtprc), whose connect and dns checks name "
    "a network problem. Queued mail leaves on the MTA's next retry (Postfix: postqueue -f) "
    "until the queue lifetime runs out (Postfix: maximal_queue_lifetime, 5 days).",
)
CONNECTION_FAILED = FindingKind(
    "auth_failure_rate.connection_failed",
    Severity.CRITICAL,
    "Could not reach the submission server {host}",
    "The client could not connect or lost the connection before it could log in: {detail}.",
    "Run smtpdiag check against the same host and port: the connect and dns checks name the "
    "network problem.",
)
SUBMISSION_FAILED = FindingKind(
    "auth_failure_rate.submission_failed",
    Severity.WARNING,
    "A submission failed without an SMTP reply: {detail}",
    "The client gave up before or during AUTH and logged no server reply, so the log alone "
    "does not say which part failed.",
    "Run smtpdiag check against the same server with the same token source; it reproduces the "
    "session step by step.",
)
CLIENT_ABORTED = FindingKind(
    "auth_failure_rate.client_aborted",
    Severity.WARNING,
    "The client cancelled the AUTH exchange",
    "The client answered a challenge with '*', which cancels the exchange (RFC 4954). Clients "
    "do this after an error challenge they cannot handle or when their token source failed.",
    "Check the client's own log for the failure that made it cancel.",
)
MAIL_BOUNCED = FindingKind(
    "auth_failure_rate.mail_bounced",
    Severity.WARNING,
    "{messages} bounced after failures at or before AUTH: the mail is lost",
    "The logs show {messages} bounced after a failure at or before AUTH ({sources}). A "
    "bounce is final, so the sending MTA does not retry, although the cause (an expired "
    "token, a failed token script, a rejected login) is usually temporary. The sender gets a "
    "bounce notice unless the notice cannot be delivered either, as when it goes out through "
    "the same failing relay. The logs of one chain (Postfix, msmtpd) each record the same "
    "bounce, so the count is the largest of any one source, not their sum.",
    "Fix the most frequent reason first (listed with its own fix). So that the next failure "
    "keeps mail queued instead of bouncing it, make the failure temporary. Behind msmtpd, wrap "
    "msmtp so that its exit codes 77 and 78 become 75 (EX_TEMPFAIL), as "
    "docs/guide/msmtp-relay.md shows under 'The permanent-bounce trap'. With Postfix's own "
    "SASL client, keep smtp_sasl_auth_soft_bounce = yes, its default. The senders must send "
    "the bounced messages again.",
)
TOKEN_IN_LOG = FindingKind(
    "secrets.token_in_log",
    Severity.CRITICAL,
    "A secret is written in {path} (line {line_number}, {secret_kind})",
    "The log line holds a credential in clear: {secret_kind}. Anyone who can read the log "
    "can send mail as this account until the credential expires or is revoked; refresh tokens "
    "and client secrets stay valid for months.",
    "First turn off the debug or trace option that wrote it: msmtp --debug, Dovecot's "
    "auth_debug and auth_debug_passwords (then doveadm reload), a client's SMTP debug output "
    "or a proxy's request log. Then remove the lines from the log and its rotated copies, and "
    "revoke or rotate the credential.",
)

RATE_CODES = frozenset(
    kind.code
    for kind in (THRESHOLD_EXCEEDED, FAILURES_BELOW_THRESHOLD, NO_ATTEMPTS, NO_ATTEMPTS_IN_RANGE)
)
"""Codes of the findings that judge the failure rate, one of which every analysis reports."""

AUTH_FAILURE_RATE_FINDINGS: tuple[FindingKind, ...] = (
    THRESHOLD_EXCEEDED,
    FAILURES_BELOW_THRESHOLD,
    NO_ATTEMPTS,
    NO_ATTEMPTS_IN_RANGE,
    LOG_UNREADABLE,
    BACKEND_UNAVAILABLE,
    LOCAL_SASL_FAILURE,
    NO_SASL_MECHANISM,
    TOKEN_REFRESH_FAILED,
    PIPE_COMMAND_FAILED,
    PIPE_COMMAND_DEFERRED,
    CONNECTION_FAILED,
    SUBMISSION_FAILED,
    CLIENT_ABORTED,
    MAIL_BOUNCED,
)
"""Kinds of the ``auth_failure_rate`` area, in catalog order."""

SECRETS_FINDINGS: tuple[FindingKind, ...] = (TOKEN_IN_LOG,)
"""Kinds of the ``secrets`` area that log analysis reports."""

KINDS_BY_CODE: dict[str, FindingKind] = {
    kind.code: kind for kind in (*AUTH_FAILURE_RATE_FINDINGS, *SECRETS_FINDINGS)
}
