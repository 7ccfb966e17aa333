"""Finding kinds for the server's final reply to AUTH: RFC 4954 codes, Gmail, Yandex, Mail.ru.

Microsoft's own codes (5.7.3, 5.7.139, 5.7.57, 5.5.124, 5.5.127, 4.7.66, 5.2.252) live in
``kinds_microsoft``. Titles that show the reply use the ``{reply}`` field.
"""

from __future__ import annotations

from dataclasses import replace

from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

_TLS_STEPS = (
    "use STARTTLS on port 587 (msmtp: tls on, tls_starttls on) or implicit TLS on port 465 "
    "(msmtp: tls on, tls_starttls off)"
)

ACCEPTED = FindingKind(
    "auth.accepted",
    Severity.INFO,
    "Authentication succeeded (235)",
    "The server accepted the credentials. Microsoft 365 checks the right to send as the From "
    "address only after DATA, so a later 554 5.2.252 is still possible.",
    "Nothing to do for AUTH.",
)
CREDENTIALS_REJECTED = FindingKind(
    "auth.credentials_rejected",
    Severity.CRITICAL,
    "Server rejected the credentials (535)",
    "The server did not accept the user name with this password or token (SMTP: 535 5.7.8, "
    "RFC 4954): the password is wrong, the user name is not the account's, or the account is "
    "disabled. With XOAUTH2 or OAUTHBEARER the access token expired, was revoked, was issued "
    "for another account than the user name, lacks the mail scope, or is not an access token. "
    "Gmail sends the same 'Username and Password not accepted' when an app password is sent "
    "where the token belongs.",
    "Check the user name and the password or token that the client sends. On a server you "
    "run, its log names the user and often the reason. For XOAUTH2 or OAUTHBEARER, fetch a "
    "fresh access token for the account in the user name and send it as auth=Bearer <token> "
    "(Gmail scope: https://mail.google.com/). Gmail, Yahoo and Mail.ru accept only app "
    "passwords on AUTH PLAIN and LOGIN.",
)
APP_PASSWORD_REQUIRED = FindingKind(
    "auth.app_password_required",
    Severity.CRITICAL,
    "Server requires an app password or OAuth2 instead of the account password",
    "The account uses two-step verification, so the server rejects its normal password over "
    "SMTP: Gmail replies 534 5.7.9 Application-specific password required, Mail.ru replies 535 "
    "with 'Application password is REQUIRED'. RFC 4954 defines 534 5.7.9 as an authentication "
    "mechanism too weak for the account.",
    "Switch the client to XOAUTH2 with an access token for the account, or create an app "
    "password (Google Account: Security, App passwords; Mail.ru: Security, Passwords for "
    "external applications) and use it with AUTH PLAIN or LOGIN.",
)
STARTTLS_REQUIRED = FindingKind(
    "auth.starttls_required",
    Severity.CRITICAL,
    "Server requires STARTTLS before AUTH",
    "The server accepts AUTH only on an encrypted session, and the client sent it in "
    "plaintext (RFC 3207). Common texts: '530 5.7.0 Must issue a STARTTLS command first', "
    "Microsoft '451 5.7.3 STARTTLS is required to send mail'.",
    f"Turn on TLS in the client: {_TLS_STEPS}.",
)
AUTHENTICATION_REQUIRED = FindingKind(
    "auth.authentication_required",
    Severity.CRITICAL,
    "Server requires authentication before this command (530)",
    "The client sent a command that needs an authenticated session, usually MAIL FROM, "
    "without a successful AUTH (RFC 4954: 530 5.7.0; Gmail: 530 5.5.1 Authentication "
    "Required). Either the client skipped AUTH or it carried on after AUTH failed.",
    "Configure the client to authenticate before sending (msmtp: auth xoauth2, user, "
    "passwordeval); if it did try, the earlier AUTH reply names the real cause.",
)
TLS_REQUIRED = FindingKind(
    "auth.tls_required",
    Severity.CRITICAL,
    "Server requires TLS for AUTH and sending (530 5.7.7)",
    "Yandex rejects AUTH on an unencrypted session with 530 5.7.7 'Email sending without "
    "SSL/TLS encryption is not allowed'.",
    f"Turn on TLS in the client: {_TLS_STEPS}. Yandex documents port 465 with implicit TLS.",
)
CANNOT_DECODE = FindingKind(
    "auth.cannot_decode",
    Severity.CRITICAL,
    "Server could not decode the client's AUTH response (501 5.5.2)",
    "The line the client sent after the 334 challenge is not valid base64 (RFC 4954): a "
    "wrapped or truncated payload, the XOAUTH2 string without encoding, or a QUIT or RSET "
    "sent in place of the dummy response after an error challenge.",
    "Send the payload base64-encoded on one line, and respond to an error challenge with an "
    "empty line (XOAUTH2) or AQ== (OAUTHBEARER) before any other command.",
)
MECHANISM_UNSUPPORTED = FindingKind(
    "auth.mechanism_unsupported",
    Severity.CRITICAL,
    "Server does not accept AUTH {mechanism} (504)",
    "The server does not support this SASL mechanism or does not allow it on this session "
    "(RFC 4954: 504 5.5.4). Microsoft 365 offers XOAUTH2 but not OAUTHBEARER, and many "
    "servers list AUTH only after STARTTLS.",
    "Use a mechanism from the AUTH line of the server's EHLO reply after STARTTLS (smtpdiag "
    "check shows it); for Microsoft 365 use XOAUTH2 (msmtp: auth xoauth2).",
)
TEMPORARY_FAILURE = FindingKind(
    "auth.temporary_failure",
    Severity.WARNING,
    "Server reported a temporary authentication failure (454)",
    "The server could not finish AUTH for a temporary reason: its authentication backend "
    "failed, or it throttles this account or address after too many attempts (Gmail: 454 "
    "4.7.0 Too many login attempts). With OAuth2 the backend can be the server's own check of "
    "the token, such as Dovecot's oauth2 passdb calling its introspection_url, which fails "
    "when that endpoint answers with an error or its CA file cannot be read.",
    "Do not retry at once (RFC 4954): stop other clients that retry with the same bad "
    "credentials, wait several minutes and try again. If it persists, check the provider's "
    "status page. On a server you run, read its log for the failed token check. For Dovecot's "
    "oauth2 passdb, check that introspection_url answers from the server host and that the "
    "file in tls_ca_cert_file is readable by the auth process, which runs as "
    "default_internal_user (usually dovecot).",
)
LOCAL_ERROR = FindingKind(
    "auth.local_error",
    Severity.WARNING,
    "Server reported a local error during AUTH (451)",
    "The server hit an internal error while it processed AUTH; the client is usually not at fault.",
    "Retry after a few minutes; if it persists, check the provider's status page or the "
    "server's logs.",
)
LINE_TOO_LONG = FindingKind(
    "auth.line_too_long",
    Severity.CRITICAL,
    "Server rejected the AUTH line as too long",
    "The AUTH command carried the token as initial response and exceeded the server's line "
    "limit (Gmail: 555 5.5.2 Syntax error, command line too long; Dovecot: 500 5.5.2 Line too "
    "long; RFC 4954: 500 5.5.6). Long Microsoft tokens make this common.",
    "Send AUTH XOAUTH2 alone and the payload after the server's 334 reply, which RFC 4954 "
    "allows; turn off the client's initial-response option (often called SASL-IR).",
)
ENCRYPTION_REQUIRED = FindingKind(
    "auth.encryption_required",
    Severity.CRITICAL,
    "Server requires encryption for this mechanism (538 5.7.11)",
    "The server allows this mechanism only on an encrypted session (RFC 4954: 538 5.7.11).",
    f"Turn on TLS in the client: {_TLS_STEPS}.",
)
UNCLASSIFIED = FindingKind(
    "auth.unclassified",
    Severity.CRITICAL,
    "Unexpected reply during AUTH: {reply}",
    "The server sent a reply that smtpdiag does not recognise. A 5xx reply is a "
    "permanent rejection, and a 4xx reply (reported as a warning) is temporary.",
    "Read the reply text and look its code up in the provider's documentation; retry 4xx "
    "replies later.",
)
UNCLASSIFIED_TEMPORARY = replace(UNCLASSIFIED, severity=Severity.WARNING)
"""The ``auth.unclassified`` kind with the warning severity used for 4xx replies."""

REPLY_FINDINGS = (
    ACCEPTED,
    CREDENTIALS_REJECTED,
    APP_PASSWORD_REQUIRED,
    STARTTLS_REQUIRED,
    AUTHENTICATION_REQUIRED,
    TLS_REQUIRED,
    CANNOT_DECODE,
    MECHANISM_UNSUPPORTED,
    TEMPORARY_FAILURE,
    LOCAL_ERROR,
    LINE_TOO_LONG,
    ENCRYPTION_REQUIRED,
    UNCLASSIFIED,
)
"""Kinds for final replies defined by RFC 4954 or sent by Gmail, Yandex and Mail.ru."""
