"""Finding kinds for Exchange Online's own AUTH replies (Microsoft 365 and Outlook.com).

Exchange Online reuses 5.7.3 for a failed AUTH and adds codes that are not in the IANA
registry: 5.7.139 with a reason text, 5.7.57, 5.5.124, 5.5.127, 4.7.66 and 5.2.252.
"""

from __future__ import annotations

from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

_ENABLE_MAILBOX = "Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false"

EXCHANGE_REFUSED = FindingKind(
    "auth.exchange_refused",
    Severity.CRITICAL,
    "Microsoft 365 rejected the OAuth2 token (535 5.7.3)",
    "Exchange Online replies '535 5.7.3 Authentication unsuccessful' without details when it "
    "cannot use the token for this mailbox: the token's audience is not "
    "https://outlook.office.com, it lacks SMTP.Send (delegated) or SMTP.SendAsApp (app-only), "
    "it was issued for another account than the user name, the app has no permission on the "
    "mailbox, or Exchange has no service principal for the app. With a password the same "
    "reply means a wrong password or blocked basic authentication.",
    "Check in order: (1) delegated tokens request https://outlook.office.com/SMTP.Send and "
    "offline_access; app-only tokens request https://outlook.office365.com/.default and need "
    "the SMTP.SendAsApp application permission of Office 365 Exchange Online with admin "
    "consent. (2) Decode the token: aud must be https://outlook.office.com, scp must contain "
    "SMTP.Send or roles SMTP.SendAsApp. (3) Use the mailbox the token belongs to as the "
    "XOAUTH2 user. (4) App-only: register the app in Exchange with New-ServicePrincipal "
    "-AppId <client id> -ObjectId <Object ID of the Enterprise application, not of the App "
    "registration>, then run Add-MailboxPermission -Identity <mailbox> -User <service "
    f"principal id> -AccessRights FullAccess. (5) Enable SMTP AUTH: {_ENABLE_MAILBOX}.",
)
SMTP_AUTH_DISABLED_TENANT = FindingKind(
    "auth.smtp_auth_disabled_tenant",
    Severity.CRITICAL,
    "SMTP AUTH is disabled for the Microsoft 365 tenant (535 5.7.139)",
    "The tenant-wide setting turns SMTP AUTH off, so Exchange Online rejects every mailbox "
    "that has no setting of its own, whatever the token.",
    "An Exchange admin enables it for the sending mailbox only, which overrides the tenant: "
    f"{_ENABLE_MAILBOX}; or for the whole tenant: Set-TransportConfig "
    "-SmtpClientAuthenticationDisabled $false.",
)
SMTP_AUTH_DISABLED_MAILBOX = FindingKind(
    "auth.smtp_auth_disabled_mailbox",
    Severity.CRITICAL,
    "SMTP AUTH is disabled for this Microsoft 365 mailbox (535 5.7.139)",
    "The mailbox's own setting turns SMTP AUTH off, and it overrides the tenant setting.",
    f"An Exchange admin runs {_ENABLE_MAILBOX}, or turns on Authenticated SMTP in the "
    "Microsoft 365 admin center (Users, Active users, the user, Mail, Manage email apps).",
)
SECURITY_DEFAULTS = FindingKind(
    "auth.security_defaults",
    Severity.CRITICAL,
    "Microsoft Entra security defaults blocked the sign-in (535 5.7.139)",
    "The tenant has security defaults turned on, and they block basic authentication, so "
    "Exchange Online rejects a password sent over SMTP AUTH.",
    "Send an OAuth2 access token with XOAUTH2 instead of a password; otherwise an admin turns "
    "security defaults off (Microsoft Entra admin center: Identity, Overview, Properties, "
    "Manage security defaults) and protects sign-ins with Conditional Access instead.",
)
CONDITIONAL_ACCESS = FindingKind(
    "auth.conditional_access",
    Severity.CRITICAL,
    "A Conditional Access policy blocked the sign-in (535 5.7.139)",
    "The reason 'the request did not meet the criteria to be authenticated successfully' "
    "means that a Microsoft Entra Conditional Access policy (location, device, MFA, or a "
    "block of legacy authentication) rejected this sign-in.",
    "An admin opens the Microsoft Entra sign-in logs, finds this sign-in by user and by the "
    "server time in the reply, and reads which policy failed; then exclude the sending "
    "account or its network from that policy, or meet its conditions.",
)
BASIC_AUTH_DISABLED = FindingKind(
    "auth.basic_auth_disabled",
    Severity.CRITICAL,
    "Microsoft 365 no longer accepts passwords on SMTP AUTH",
    "Exchange Online rejects basic authentication (a password) on SMTP AUTH for this tenant "
    "or mailbox: '535 5.7.139 basic authentication is disabled' or '550 5.7.30 Basic "
    "authentication is not supported for Client Submission'.",
    "Switch the client to XOAUTH2 with a token for https://outlook.office.com/SMTP.Send "
    "(msmtp: auth xoauth2 and a passwordeval command that prints the access token).",
)
MICROSOFT_AUTH_FAILED = FindingKind(
    "auth.microsoft_auth_failed",
    Severity.CRITICAL,
    "Microsoft 365 rejected AUTH: {reply}",
    "Exchange Online replied 535 5.7.139 (authentication unsuccessful) with a reason that "
    "smtpdiag does not know, for example a translated text.",
    "Read the reason in the reply, then check in order: SMTP AUTH is enabled for the mailbox "
    "(Get-CASMailbox -Identity <mailbox> | Format-List SmtpClientAuthenticationDisabled), "
    "security defaults and Conditional Access allow the sign-in (Microsoft Entra sign-in "
    "logs for this user and time), and the client sends an OAuth2 token, not a password.",
)
CLIENT_NOT_AUTHENTICATED = FindingKind(
    "auth.client_not_authenticated",
    Severity.CRITICAL,
    "Microsoft 365 rejected mail from an unauthenticated session (530 5.7.57)",
    "The client sent MAIL FROM without a successful AUTH: it skipped AUTH because no "
    "credentials are configured or it looked for AUTH before STARTTLS, or it carried on after "
    "AUTH failed.",
    "Configure the client to authenticate with STARTTLS on port 587 (msmtp: tls on, auth "
    "xoauth2, user, passwordeval); if it did try, the earlier AUTH reply names the real cause.",
)
INVALID_XOAUTH2_DATA = FindingKind(
    "auth.invalid_xoauth2_data",
    Severity.CRITICAL,
    "Microsoft 365 rejected the XOAUTH2 data (501 5.5.124)",
    "Exchange Online could not use the XOAUTH2 string: its layout is wrong, the token is for "
    "another resource, or the user name does not match the token. This reply has been seen "
    "on the High Volume Email endpoint smtp-hve.office365.com.",
    "Check the decoded string (user=<address> 0x01 auth=Bearer <token> 0x01 0x01), request "
    "the token for https://outlook.office365.com/.default (app-only) or "
    "https://outlook.office.com/SMTP.Send (delegated), and use the mailbox the token is for.",
)
TOKEN_EXPIRES_SOON = FindingKind(
    "auth.token_expires_soon",
    Severity.CRITICAL,
    "Microsoft 365 rejected a token that expires soon (501 5.5.127)",
    "Exchange Online rejects an access token that is close to its expiry time ('Token will "
    "expire soon'). The margin is not documented; one report saw rejections about 8 minutes "
    "before the token's exp time.",
    "Refresh the access token while at least 15 minutes of its lifetime remain, not only "
    "after it expires; a token helper that refreshes a few seconds before expiry keeps "
    "failing until the token runs out.",
)
TLS_VERSION_REFUSED = FindingKind(
    "auth.tls_version_refused",
    Severity.CRITICAL,
    "Microsoft 365 rejected TLS 1.0 or 1.1 (421 4.7.66)",
    "Exchange Online accepts SMTP AUTH only over TLS 1.2 or newer, and this client "
    "negotiated TLS 1.0 or 1.1.",
    "Update the client and its TLS library so that it offers TLS 1.2 or 1.3; for .NET "
    "Framework applications enable strong cryptography (the SchUseStrongCrypto registry "
    "value) or set TLS 1.2 in the application.",
)
SEND_AS_DENIED = FindingKind(
    "auth.send_as_denied",
    Severity.CRITICAL,
    "Microsoft 365 denied sending as the From address (554 5.2.252)",
    "AUTH succeeded, but the authenticated account has no Send As right for the From "
    "address, so Exchange Online rejects the message after DATA.",
    "Send with the authenticated mailbox as From, or grant the right: Add-RecipientPermission "
    "-Identity <From address> -Trustee <authenticated account> -AccessRights SendAs.",
)

MICROSOFT_FINDINGS = (
    EXCHANGE_REFUSED,
    SMTP_AUTH_DISABLED_TENANT,
    SMTP_AUTH_DISABLED_MAILBOX,
    SECURITY_DEFAULTS,
    CONDITIONAL_ACCESS,
    BASIC_AUTH_DISABLED,
    MICROSOFT_AUTH_FAILED,
    CLIENT_NOT_AUTHENTICATED,
    INVALID_XOAUTH2_DATA,
    TOKEN_EXPIRES_SOON,
    TLS_VERSION_REFUSED,
    SEND_AS_DENIED,
)
"""Kinds for Exchange Online's own replies."""
