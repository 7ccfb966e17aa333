"""Finding kinds of the ``scope`` check: what an access token grants and to whom.

This module is core, so ``smtpdiag decode`` reports the same codes for a pasted JWT or a JWT
inside a transcript without importing ``checks``. Claims come from a JWT whose signature is
not verified; the findings built from them carry the fact ``signature_verified: false``.
"""

from __future__ import annotations

from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

_REFETCH = "then fetch a new access token, because a token keeps the grants it was issued with"

WRONG_AUDIENCE = FindingKind(
    "scope.wrong_audience",
    Severity.CRITICAL,
    "Access token is for {audience}, not for the mail server",
    "The token's audience (the aud claim, or the resource part of its scopes) is "
    "{audience}{audience_note}. The SMTP service accepts only tokens issued for it"
    "{expected_audience}, so it rejects this token whatever scopes the token lists."
    "{graph_note}",
    "Request the token for the mail service: {request}. The app registration's permission "
    "must belong to the mail API (for Microsoft 365: Office 365 Exchange Online, not "
    "Microsoft Graph). Send the access_token of the token response, never the id_token; "
    f"{_REFETCH}.",
)
MISSING = FindingKind(
    "scope.missing",
    Severity.CRITICAL,
    "Access token lacks the scope {required_scope}",
    "The token does not grant {required_scope}{why}. {granted}{note}",
    f"Request {{required_scope}} and consent to it again, {_REFETCH}. {{provider_fix}}",
)
USER_MISMATCH = FindingKind(
    "scope.user_mismatch",
    Severity.CRITICAL,
    "Access token belongs to {token_user}, not to the SMTP user {user}",
    "The token names {token_user} in its {claim} claim, and the SMTP login uses {user}. The "
    "server accepts a token only for the account named in AUTH, also when {user} is a shared "
    "mailbox that {token_user} may use. Exchange Online rejects it with 535 5.7.3. Dovecot's "
    "oauth2 passdb sends a 334 error challenge with the status 401, then 535 5.7.8.",
    "Use the account that the token names as the SMTP user, or create the refresh token by "
    "signing in as the SMTP user (the consent page uses the account that is signed in to the "
    "browser). To send from a shared mailbox, log in as the user who has access to it and put "
    "the shared address in From, which needs the Send As permission on that mailbox. On a "
    "server you run, check which field of the token it compares with the login (Dovecot: "
    "username_attribute and username_format in the oauth2 passdb's settings).",
)
WRONG_TENANT = FindingKind(
    "scope.wrong_tenant",
    Severity.CRITICAL,
    "Access token comes from tenant {token_tenant}, not {tenant}",
    "The token's tid claim names the Microsoft Entra tenant that issued it, {token_tenant}, "
    "and the configured tenant is {tenant}. A token from another tenant belongs to an account "
    "of another organization, so the mailbox in the configured tenant cannot use it.",
    "Fetch tokens from https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token and "
    "create the refresh token with an account of that tenant, or set the tenant to "
    "{token_tenant} if that is the mailbox's organization.",
)
TOKEN_EXPIRED = FindingKind(
    "scope.token_expired",
    Severity.CRITICAL,
    "Access token expired at {exp}",
    "The token's expiry time ({exp}, {age} before {clock}) has passed, and servers reject a "
    "token at or after that time (RFC 7519 section 4.1.4). Access tokens are usually valid "
    "for about an hour.",
    "Fetch a new access token for every login with the refresh token (msmtp runs its "
    "passwordeval command for each mail), and do not reuse a stored token after its "
    "expires_in. If fresh tokens also show as expired, check the local clock.",
)
TOKEN_NOT_YET_VALID = FindingKind(
    "scope.token_not_yet_valid",
    Severity.CRITICAL,
    "Access token is not valid before {nbf}",
    "The token's not-before time (nbf claim, {nbf}) is {ahead} ahead of {clock}, and servers "
    "reject a token before that time (RFC 7519 section 4.1.5). A freshly issued token is "
    "valid at once, so the clock that judged it is most likely behind.",
    "Compare the local clock with NTP (timedatectl status, or the clock check) and "
    "synchronise it, then fetch a new access token.",
)
UNVERIFIABLE = FindingKind(
    "scope.unverifiable",
    Severity.INFO,
    "Scopes of the opaque access token could not be checked",
    "The access token is not a JWT, no granted scopes are known (a token from a file or a "
    "command, or a token response without a usable scope field), and no introspection was "
    "done, so nothing shows what the token grants or to whom.{hint}",
    "Run with --introspect where the provider has a tokeninfo or RFC 7662 introspection "
    "endpoint (Google: https://oauth2.googleapis.com/tokeninfo; others: set "
    "introspection_endpoint). Otherwise the auth check's reply is the test of the token.",
)
TOKEN_INACTIVE = FindingKind(
    "scope.token_inactive",
    Severity.CRITICAL,
    "Introspection reports the access token as not active",
    "{endpoint} replied {answer}: the token has expired, was revoked, or was not issued by "
    "this authorization server.",
    "Fetch a new access token; a token script that caches its token (msmtp passwordeval "
    "scripts often do) keeps printing the inactive one until its cache file is removed. If a "
    "new token is also inactive, or the refresh is refused with invalid_grant, the refresh "
    "token or the app's consent was revoked: authorize the account again. Check that "
    "introspection_endpoint belongs to the authorization server that issues the tokens.",
)
INTROSPECTION_FAILED = FindingKind(
    "scope.introspection_failed",
    Severity.WARNING,
    "Introspection at {endpoint} failed: {reason}",
    "smtpdiag asked {endpoint} about the access token and got no usable answer ({reason}), "
    "so the token's state and scopes stay unknown.",
    "Check the endpoint URL, and that client_id and client_secret may call it (RFC 7662 "
    "endpoints require client authentication). For a TLS failure, set token_ca_file. Without "
    "introspection, the auth check's reply is the test of the token.",
)

SCOPE_FINDINGS: tuple[FindingKind, ...] = (
    WRONG_AUDIENCE,
    MISSING,
    USER_MISMATCH,
    WRONG_TENANT,
    TOKEN_EXPIRED,
    TOKEN_NOT_YET_VALID,
    UNVERIFIABLE,
    TOKEN_INACTIVE,
    INTROSPECTION_FAILED,
)
"""Every kind the scope check and decode's claim judgement can report, in catalog order."""
