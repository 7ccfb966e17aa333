"""Finding kinds of the token check: token endpoint errors and token source problems.

The first group classifies an OAuth2 error body (RFC 6749 section 5.2) by its ``error`` code
and, where providers add them, by Microsoft's AADSTS codes and Google's and Yandex's
``error_description`` texts. The second group covers what the token check itself finds about
the endpoint, the token command and the token cache.

Placeholders (a placeholder that the caller leaves out renders as empty text):

- ``{error_label}``: the ``error`` code, followed by the AADSTS code when there is one,
  e.g. ``invalid_grant, AADSTS700082``.
- ``{provider_message}``: one sentence quoting the provider's ``error_description``, shortened
  to one line and starting with a space; empty when the body has no description.
- ``{cause_hint}``, ``{fix_hint}``: sentences specific to the provider or error code, starting
  with a space; often empty. For ``token.endpoint_unreachable`` they explain the failed step
  and only that one: before the request was sent (name resolution, a refused or timed-out
  connection, no route), or after it (the endpoint or a proxy stalled or closed the
  connection).
- ``{http_status}``: the HTTP status code of the reply.
- ``{content_type}``: the reply's media type, or ``no Content-Type``.
- ``{problem}``: what is wrong with a reply or with a command's output, as a phrase that
  completes "returned …" or "this command …", e.g. ``an HTML page`` or ``printed 3 lines``.
- ``{endpoint}``: the token endpoint URL, and ``{host}``, ``{port}`` its host and port.
- ``{reason}``: why a connection or command failed, e.g. ``the request was sent, but no
  reply came within 1 s``, ``exited with status 1``.
- ``{stderr}``: the token command's standard error output, already redacted, as a clause that
  starts with a semicolon, e.g. ``; it wrote to stderr: invalid_grant``; empty when there was
  none.
- ``{msmtp_outcome}``: one or two sentences on what msmtp does when its ``passwordeval``
  command fails the same way, e.g. that it waits without a time limit, so the mail hangs.
  The token command's kinds use ``{fix_hint}`` too, for a step specific to the problem.
- ``{stored}``: whether smtpdiag wrote the new refresh token back to its file, as a sentence
  that starts with a space.
- ``{path}``, ``{mode}``: the token cache file and its permission bits, e.g. ``0644``.
- ``{expires_in}``, ``{margin}``: the new token's lifetime and the refresh margin, in seconds.
"""

from __future__ import annotations

from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

_RECONSENT = (
    "Run the consent flow again for this mailbox with the same client id, and write the new "
    "refresh token to the refresh-token file."
)

# RFC 6749 section 5.2 error codes and their refinements.

INVALID_GRANT = FindingKind(
    "token.invalid_grant",
    Severity.CRITICAL,
    "The token endpoint rejected the refresh token ({error_label})",
    "The identity provider answered invalid_grant: the refresh token or authorization code it "
    "received is invalid, expired or revoked, or it was issued to another client id."
    "{provider_message}{cause_hint}",
    f"{_RECONSENT} Check that the configured client id is the one the refresh token was "
    "issued to.{fix_hint}",
)
REFRESH_TOKEN_EXPIRED = FindingKind(
    "token.refresh_token_expired",
    Severity.CRITICAL,
    "The refresh token expired ({error_label})",
    "The refresh token reached the end of its life: Microsoft ends a refresh token after 90 "
    "days without use (AADSTS700082).{provider_message}{cause_hint}",
    "Re-authorize once: run the consent flow for this mailbox and store the new refresh token. "
    "Then make the token helper write back every new refresh token the endpoint returns.{fix_hint}",
)
GRANT_REVOKED = FindingKind(
    "token.grant_revoked",
    Severity.CRITICAL,
    "The refresh token was revoked ({error_label})",
    "The provider invalidated the refresh token before its normal end. The usual reasons: the "
    "user changed or reset the password, the user or an admin revoked the app's access or "
    "the user's sessions, the token was unused for 6 months (Google), or the account has more "
    "than 100 newer refresh tokens for the same client (Google then drops the oldest). When "
    "this recurs every week, the Google app is still in Testing status, whose refresh tokens "
    "last 7 days.{provider_message}{cause_hint}",
    f"{_RECONSENT} Keep one refresh token per mailbox and client and reuse it, instead of "
    "authorizing again on every run. For a weekly recurrence, set the Google app's publishing "
    "status to In production (Google Cloud console, Google Auth Platform, Audience).{fix_hint}",
)
WRONG_TENANT = FindingKind(
    "token.wrong_tenant",
    Severity.CRITICAL,
    "The grant belongs to another Microsoft tenant ({error_label})",
    "Microsoft issued the refresh token or authorization code in a different tenant from the "
    "one in the token endpoint URL, so this tenant rejects it.{provider_message}",
    "Use the tenant the token was issued in: put that tenant's id (Microsoft Entra admin "
    "center, Overview, Tenant ID) in the token endpoint URL, or authorize again against the "
    "configured tenant and store the new refresh token.",
)
CONSENT_REQUIRED = FindingKind(
    "token.consent_required",
    Severity.CRITICAL,
    "Nobody consented to the app's permissions ({error_label})",
    "Microsoft Entra has no user or admin consent for this app to use the requested "
    "permission (SMTP.Send, or SMTP.SendAsApp for app-only access), so it issues no "
    "token.{provider_message}",
    "An admin grants consent in the Microsoft Entra admin center (App registrations, the app, "
    "API permissions, Grant admin consent), or the mailbox user signs in interactively once "
    "and accepts the consent prompt. Then get a new refresh token.",
)
SIGNIN_FREQUENCY = FindingKind(
    "token.signin_frequency",
    Severity.CRITICAL,
    "A sign-in frequency policy requires a new sign-in ({error_label})",
    "A Conditional Access policy with a sign-in frequency limit ended the session that the "
    "refresh token belongs to, so no unattended refresh works until the user signs in "
    "again.{provider_message}{cause_hint}",
    "Sign in interactively and store the new refresh token. To stop it recurring, an admin "
    "excludes this mailbox or app from the policy's sign-in frequency (Microsoft Entra admin "
    "center, Conditional Access, the policy, Session, Sign-in frequency), or the mailbox "
    "moves to app-only access (client credentials), which has no user session.{fix_hint}",
)
CODE_REUSED = FindingKind(
    "token.code_reused",
    Severity.CRITICAL,
    "The authorization code was already redeemed ({error_label})",
    "An authorization code can be exchanged for tokens only once, and this one was redeemed "
    "before, often by a retry or by a second tool that read the same redirect.",
    "Run the consent flow again to get a fresh code and exchange it once; after that, refresh "
    "with the refresh token from that exchange, not with the code.",
)
NOT_A_REFRESH_TOKEN = FindingKind(
    "token.not_a_refresh_token",
    Severity.CRITICAL,
    "The token request or its refresh token is malformed ({error_label})",
    "Microsoft could not read the request. Usually the refresh-token file holds something "
    "other than the refresh token: the access token, the authorization code, a token cut "
    "short, or a token with quotes, spaces or a line break inside.{provider_message}",
    "Check the refresh-token file: it must hold only the refresh_token value of the token "
    "response, on one line, without quotes or a 'Bearer ' prefix; an access token (a JWT "
    "starting with eyJ) does not belong there. If the file looks right, run the consent flow "
    "again and store the new refresh token.",
)
INVALID_CLIENT = FindingKind(
    "token.invalid_client",
    Severity.CRITICAL,
    "The token endpoint rejected the client credentials ({error_label})",
    "The identity provider could not authenticate the client: the client id is unknown, the "
    "client secret is wrong, or the client authenticates in a way the app registration does "
    "not expect.{provider_message}{cause_hint}",
    "Compare the client id and client secret with the app registration (Microsoft Entra admin "
    "center: App registrations, the app, Certificates & secrets; Google Cloud console: Google "
    "Auth Platform, Clients), and create a new secret when in doubt.{fix_hint}",
)
CLIENT_SECRET_EXPIRED = FindingKind(
    "token.client_secret_expired",
    Severity.CRITICAL,
    "The client secret expired ({error_label})",
    "Every client secret of a Microsoft Entra app registration has an end date, and the "
    "secret this client sends is past it.{provider_message}",
    "Create a new secret (Microsoft Entra admin center, App registrations, the app, "
    "Certificates & secrets, New client secret), put its Value in the configuration, and set "
    "a reminder before its end date; a certificate credential is the alternative.",
)
CLIENT_SECRET_MISSING = FindingKind(
    "token.client_secret_missing",
    Severity.CRITICAL,
    "The app registration requires a client secret ({error_label})",
    "The request carried no client_secret or client_assertion, but Microsoft treats this app "
    "as a confidential client, which must authenticate itself.{provider_message}",
    "Configure the app registration's client secret; or, for a public client without a "
    "secret, set Allow public client flows to Yes (Microsoft Entra admin center, App "
    "registrations, the app, Authentication).",
)
UNAUTHORIZED_CLIENT = FindingKind(
    "token.unauthorized_client",
    Severity.CRITICAL,
    "The client may not use this grant ({error_label})",
    "The client authenticated, but the provider does not let it use this grant type, or the "
    "refresh token was issued to another client id.{provider_message}{cause_hint}",
    "Check that the refresh token was obtained with the client id that now refreshes it, and "
    "that the app registration allows the grant: for client credentials at Microsoft, the app "
    "needs application permissions with admin consent.{fix_hint}",
)
UNSUPPORTED_GRANT_TYPE = FindingKind(
    "token.unsupported_grant_type",
    Severity.CRITICAL,
    "The token endpoint does not support this grant type ({error_label})",
    "The endpoint does not accept the grant_type value that was sent: the value is misspelt, "
    "or the URL points at a different endpoint.{provider_message}{cause_hint}",
    "Send grant_type=refresh_token for delegated access, or client_credentials for app-only "
    "access (Microsoft only), to the token endpoint listed in docs/providers.md.{fix_hint}",
)
INVALID_REQUEST = FindingKind(
    "token.invalid_request",
    Severity.CRITICAL,
    "The token endpoint rejected the request as malformed ({error_label})",
    "A required parameter is missing, repeated or invalid.{provider_message}{cause_hint}",
    "Read the description for the parameter it names, and compare the request with the "
    "provider profile: client_id, grant_type, refresh_token, scope, and client_secret for "
    "confidential clients.{fix_hint}",
)
INVALID_SCOPE = FindingKind(
    "token.invalid_scope",
    Severity.CRITICAL,
    "The token endpoint rejected the requested scope ({error_label})",
    "The scope parameter names a scope that the provider does not know or does not grant to "
    "this client.{provider_message}{cause_hint}",
    "Request the provider's SMTP scope: Google https://mail.google.com/; Microsoft "
    "https://outlook.office.com/SMTP.Send offline_access (delegated) or "
    "https://outlook.office365.com/.default (app-only); Yandex mail:smtp, which the app's "
    "settings at oauth.yandex.ru must include.{fix_hint}",
)
SCOPE_MULTIPLE_RESOURCES = FindingKind(
    "token.scope_multiple_resources",
    Severity.CRITICAL,
    "The scope names more than one Microsoft resource ({error_label})",
    "A Microsoft access token is for one resource (API), but the requested scope mixes "
    "resources, for example Exchange's https://outlook.office.com/SMTP.Send with a Microsoft "
    "Graph scope such as User.Read.{provider_message}",
    "Request only https://outlook.office.com/SMTP.Send offline_access (openid and profile may "
    "be added), and request scopes of other APIs in a separate token request.",
)
SCOPE_NEEDS_DEFAULT = FindingKind(
    "token.scope_needs_default",
    Severity.CRITICAL,
    "App-only tokens need a /.default scope ({error_label})",
    "The client credentials grant accepts only a scope of the form <resource>/.default, and "
    "the request named individual permissions such as SMTP.SendAsApp.{provider_message}",
    "Request scope=https://outlook.office365.com/.default; the token then carries the "
    "application permissions granted to the app, such as SMTP.SendAsApp.",
)
SCOPE_MISSING_IN_REQUEST = FindingKind(
    "token.scope_missing_in_request",
    Severity.CRITICAL,
    "The token request has no scope ({error_label})",
    "The provider requires a scope parameter in this request, and none was sent.{provider_message}",
    "Set the scope in the configuration, or use --provider so that the profile supplies it: "
    "Microsoft https://outlook.office.com/SMTP.Send offline_access (delegated) or "
    "https://outlook.office365.com/.default (app-only); Google https://mail.google.com/.",
)
UNKNOWN_ERROR = FindingKind(
    "token.error",
    Severity.CRITICAL,
    "The token endpoint returned an error: {error_label}",
    "The identity provider returned an error code that smtpdiag has no specific advice "
    "for.{provider_message}{cause_hint}",
    "Read the description and error_uri in the facts. For Microsoft, look the AADSTS code up "
    "at https://login.microsoftonline.com/error?code=<number>, or find the sign-in in the "
    "Microsoft Entra sign-in logs by its trace id and time.{fix_hint}",
)
MALFORMED_RESPONSE = FindingKind(
    "token.malformed_response",
    Severity.CRITICAL,
    "The token endpoint returned {problem} instead of a token response (HTTP {http_status})",
    "A token endpoint answers with a JSON object that contains access_token or an OAuth "
    "error, and this reply ({content_type}) contains neither.{cause_hint}",
    "Read the evidence to see who answered. Check the token endpoint URL against "
    "docs/providers.md, and ask the network team whether a proxy or firewall intercepts "
    "outbound HTTPS to the identity provider.{fix_hint}",
)
ENDPOINT_HTTP_ERROR = FindingKind(
    "token.endpoint_http_error",
    Severity.CRITICAL,
    "The token endpoint returned HTTP {http_status}",
    "The endpoint answered with an HTTP error status and without an OAuth error that names a "
    "problem in the request, so the request did not reach a working token service.{cause_hint}",
    "Check the token endpoint URL against docs/providers.md.{fix_hint}",
)

# What the token check finds about the endpoint, the token command and the token cache.

ENDPOINT_UNREACHABLE = FindingKind(
    "token.endpoint_unreachable",
    Severity.CRITICAL,
    "No complete HTTP reply from the token endpoint: {reason}",
    "smtpdiag got no complete HTTP reply from {endpoint} ({reason}).{cause_hint}",
    "From this host, test the endpoint with curl -sv --max-time 30 {endpoint} -o /dev/null, "
    "which shows the step at which it stops.{fix_hint}",
)
ENDPOINT_TLS = FindingKind(
    "token.endpoint_tls",
    Severity.CRITICAL,
    "TLS to the token endpoint failed: {reason}",
    "The HTTPS connection to {endpoint} failed in the TLS handshake or the certificate check "
    "({reason}). The usual causes are a TLS-inspecting proxy whose CA this host does not "
    "trust, a private CA that --token-ca-file does not name, a wrong system clock, or an "
    "outdated CA bundle.",
    "Look at the certificate this host receives (openssl s_client -connect {host}:{port} "
    "-servername {host}); install the inspecting proxy's CA in the system trust store, exempt "
    "the identity provider from inspection, or pass a private CA with --token-ca-file; check "
    "the clock (timedatectl).",
)
COMMAND_FAILED = FindingKind(
    "token.command_failed",
    Severity.CRITICAL,
    "The token command failed: {reason}",
    "The command that prints the access token {reason}{stderr}. {msmtp_outcome}",
    "Run the command by hand as the user that msmtp runs as (sudo -u <user> <command>) and "
    "fix what it reports, such as an expired refresh token, a missing file or variable, or no "
    "network access. The command must exit with status 0 and print the token.{fix_hint}",
)
COMMAND_OUTPUT_INVALID = FindingKind(
    "token.command_output_invalid",
    Severity.CRITICAL,
    "The token command's output is not a bare token: it {problem}",
    "msmtp's passwordeval sends the first line of the command's standard output, without its "
    "line ending, as the token, so that line must be the bare access token; this command "
    "{problem}.",
    "Make the command print only the access token: send logs and messages to standard error, "
    "drop a 'Bearer ' prefix, and extract access_token from a JSON reply (for example with "
    "jq -r .access_token).{fix_hint}",
)
REFRESH_TOKEN_ROTATED = FindingKind(
    "token.refresh_token_rotated",
    Severity.INFO,
    "The token endpoint returned a new refresh token",
    "The reply contains a refresh_token that replaces the stored one. Microsoft returns a new "
    "refresh token on every refresh and keeps the old one valid; servers with refresh token "
    "rotation revoke the old one at once, so a client that keeps using it loses access.{stored}",
    "Persist the new refresh token: make the token helper write it back to the refresh-token "
    "file after every refresh (to a temporary file, then rename it), so that the next refresh "
    "uses it. smtpdiag does that itself with --write-back-refresh-token.",
)
CACHE_FILE_UNSAFE = FindingKind(
    "token.cache_file_unsafe",
    Severity.WARNING,
    "The token cache file {path} is readable by other users",
    "The cache file that holds an access token has mode {mode}, so other local users can read "
    "the token and send mail as this mailbox. smtpdiag did not use it.",
    "Restrict it to its owner with chmod 600 {path}, and its directory with chmod 700; the "
    "next run uses the cache again.",
)
EXPIRES_SOON = FindingKind(
    "token.expires_soon",
    Severity.WARNING,
    "The new access token expires in {expires_in} s",
    "The token endpoint issued a token whose lifetime ({expires_in} s) is shorter than the "
    "refresh margin ({margin} s), so the token is due for a refresh as soon as it arrives. "
    "Exchange Online also rejects tokens close to their expiry (501 5.5.127).",
    "Lower the refresh margin below the token's lifetime, or find out why the provider issues "
    "short-lived tokens, for example a Microsoft Entra token lifetime policy or a token "
    "helper that hands out a cached token near its end.",
)

TOKEN_FINDINGS: tuple[FindingKind, ...] = (
    INVALID_GRANT,
    REFRESH_TOKEN_EXPIRED,
    GRANT_REVOKED,
    WRONG_TENANT,
    CONSENT_REQUIRED,
    SIGNIN_FREQUENCY,
    CODE_REUSED,
    NOT_A_REFRESH_TOKEN,
    INVALID_CLIENT,
    CLIENT_SECRET_EXPIRED,
    CLIENT_SECRET_MISSING,
    UNAUTHORIZED_CLIENT,
    UNSUPPORTED_GRANT_TYPE,
    INVALID_REQUEST,
    INVALID_SCOPE,
    SCOPE_MULTIPLE_RESOURCES,
    SCOPE_NEEDS_DEFAULT,
    SCOPE_MISSING_IN_REQUEST,
    UNKNOWN_ERROR,
    MALFORMED_RESPONSE,
    ENDPOINT_HTTP_ERROR,
    ENDPOINT_UNREACHABLE,
    ENDPOINT_TLS,
    COMMAND_FAILED,
    COMMAND_OUTPUT_INVALID,
    REFRESH_TOKEN_ROTATED,
    CACHE_FILE_UNSAFE,
    EXPIRES_SOON,
)
"""Every finding kind of the token check, in catalog order."""

TOKEN_KINDS: dict[str, FindingKind] = {kind.code: kind for kind in TOKEN_FINDINGS}
"""The token check's finding kinds by code."""
