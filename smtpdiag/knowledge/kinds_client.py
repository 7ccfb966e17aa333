"""Finding kinds about the client's side of AUTH: the token it sent and how it sent it.

Challenge findings come from the server's ``334`` replies (RFC 7628 §3.2.2 and Google's
XOAUTH2 error challenge). Response findings come from validating the client's XOAUTH2 or
OAUTHBEARER initial response.
"""

from __future__ import annotations

from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

_XOAUTH2_LAYOUT = "user=<address> 0x01 auth=Bearer <token> 0x01 0x01"

TOKEN_MISSING = FindingKind(
    "auth.token_missing",
    Severity.CRITICAL,
    "Server waited for the token after AUTH {mechanism}, but the client sent none",
    "The server replied to AUTH {mechanism} with an empty 334 challenge, which requests the "
    "token, and the client sent another command or unreadable data instead. The client had "
    "no token to send: the command that fetches it failed or printed nothing, or the client "
    "is set up for another mechanism.",
    "Run the token command by hand (msmtp: the passwordeval command) and check that it prints "
    "a current access token; check that the client's auth setting names this mechanism "
    "(msmtp: auth xoauth2 or auth oauthbearer).",
)
TOKEN_REJECTED = FindingKind(
    "auth.token_rejected",
    Severity.CRITICAL,
    "Server rejected the OAuth2 token (status {status})",
    "The server could not use the access token: the token expired or was revoked, was issued "
    "for another account than the user name or by an authorization server that the server "
    "does not ask, or is not an access token at all (an ID token, a refresh token or a "
    "truncated copy). In the SMTP session the server reports this with a 334 error challenge "
    "(RFC 7628) and a 535 after the client's dummy response. Its own log names the verdict "
    "of its token check, such as Dovecot's 'oauth2 failed: Introspection failed'.",
    "Fetch a fresh access token from the token endpoint and retry, and check that the user "
    "name is the account that authorised the token. If the refresh fails, run the consent "
    "flow again to get a new refresh token. On a server you run, check that it asks the "
    "authorization server that issues the tokens (Dovecot: introspection_url in the oauth2 "
    "passdb's settings).",
)
INSUFFICIENT_SCOPE = FindingKind(
    "auth.insufficient_scope",
    Severity.CRITICAL,
    "OAuth2 token lacks the scope {scope}",
    "The server requires the scope {scope}, and the token does not grant it because the "
    "client requested other scopes when the user consented.",
    "Request the scope in the authorization request (Gmail: https://mail.google.com/, "
    "Microsoft 365: https://outlook.office.com/SMTP.Send, Yandex: mail:smtp), have the user "
    "consent again and store the new refresh token. If the token already has the scope, check "
    "that the user name is the account that granted it. On a server you run, compare the "
    "scope it requires (Dovecot: scope in the oauth2 passdb's settings) with the token's.",
)
INVALID_REQUEST = FindingKind(
    "auth.invalid_request",
    Severity.CRITICAL,
    "Server found the OAUTHBEARER request malformed (invalid_request)",
    "The error challenge has the RFC 7628 status invalid_request: the client response breaks "
    "the OAUTHBEARER format, for example a missing auth key, a malformed GS2 header, or host "
    "and port values that the server checks.",
    "Decode the client's response (base64 -d) and compare it with "
    "n,a=<address>, 0x01 auth=Bearer <token> 0x01 0x01; fix or update the client library that "
    "builds it.",
)
CHALLENGE_UNANSWERED = FindingKind(
    "auth.challenge_unanswered",
    Severity.WARNING,
    "Client did not respond to the error challenge with the dummy response",
    "After a 334 error challenge the server waits for one more client line before it sends "
    "the final reply: an empty line for XOAUTH2, AQ== (one 0x01 byte) for OAUTHBEARER, or * "
    "to cancel. This client sent another command, so the server's final 535 or a 501 arrives "
    "as the reply to that command, and clients that wait for something else hang.",
    "First fix the token problem that the challenge names; then update the client or library "
    "so that it responds to error challenges before it sends other commands.",
)
CHALLENGE_DAMAGED = FindingKind(
    "auth.challenge_damaged",
    Severity.INFO,
    "Server's 334 challenge had damaged base64 that was tolerated",
    "The base64 text of the error challenge contained a line break or whitespace, or lacked "
    "its padding. smtpdiag decoded it anyway, but strict clients may fail to read the error "
    "details.",
    "Nothing to do unless a client fails to decode the challenge; then report the challenge "
    "to the server's operator.",
)

RESPONSE_MISSING_SEPARATORS = FindingKind(
    "auth.response_missing_separators",
    Severity.CRITICAL,
    "Client response lacks the 0x01 separators",
    "XOAUTH2 and OAUTHBEARER responses separate their fields with the byte 0x01 and end with "
    "two of them. This response has too few, often because ^A was typed as two characters or "
    "a space or newline was used instead.",
    f"Build the string as {_XOAUTH2_LAYOUT} before base64 encoding; in a shell use "
    "printf 'user=%s\\001auth=Bearer %s\\001\\001'.",
)
RESPONSE_MISSING_BEARER = FindingKind(
    "auth.response_missing_bearer",
    Severity.CRITICAL,
    "Client response has no Bearer scheme in its auth field",
    "The auth field holds an HTTP Authorization value: the word Bearer, one space and the "
    "token. Without the scheme the server cannot use the token and rejects it.",
    "Send auth=Bearer <token>; check the client option that sets the token type.",
)
RESPONSE_RAW_TOKEN = FindingKind(
    "auth.response_raw_token",
    Severity.CRITICAL,
    "Client sent a bare token or password instead of the XOAUTH2 string",
    "The base64 payload decodes to a token or password alone, without user= and auth= "
    "fields. The client passed the access token where the library expected the finished "
    "XOAUTH2 string, or sent a password on an XOAUTH2 exchange.",
    "Let the client build the string from the token (msmtp: auth xoauth2 with the token as "
    f"password), or build {_XOAUTH2_LAYOUT} and base64-encode it. A password belongs to AUTH "
    "PLAIN or LOGIN, not to XOAUTH2.",
)
RESPONSE_NO_GS2_HEADER = FindingKind(
    "auth.response_no_gs2_header",
    Severity.CRITICAL,
    "OAUTHBEARER response lacks the GS2 header",
    "RFC 7628 requires an OAUTHBEARER response to start with a GS2 header such as "
    "n,a=user@example.com, before the first 0x01. This one starts with a key, as an XOAUTH2 "
    "string does, so the server cannot parse it.",
    "Start the response with n,a=<address>, followed by 0x01, or use XOAUTH2 where the server "
    "offers it; update the client library.",
)
RESPONSE_USER_INSTEAD_OF_AUTHZID = FindingKind(
    "auth.response_user_instead_of_authzid",
    Severity.CRITICAL,
    "OAUTHBEARER header names the user with user= instead of a=",
    "The GS2 header names the authorization identity with a= (RFC 5801), as in "
    "n,a=user@example.com,. The SMTP example in RFC 7628 section 4.4 shows n,user= instead, and "
    "clients that copied it send a header that strict servers reject.",
    "Send n,a=<address>, as the header; update the client library or fix the code that builds "
    "the header.",
)
RESPONSE_WHITESPACE_IN_BASE64 = FindingKind(
    "auth.response_whitespace_in_base64",
    Severity.WARNING,
    "Client response contains whitespace or line breaks inside the base64",
    "The response must be one line of base64 without spaces (RFC 4954). This one is wrapped "
    "or contains spaces, as base64 tools produce by default at 76 characters; some servers "
    "reject it with 501 5.5.2.",
    "Encode without wrapping (GNU base64 -w 0, Python base64.b64encode) and send the payload "
    "as a single line.",
)
RESPONSE_NOT_BASE64 = FindingKind(
    "auth.response_not_base64",
    Severity.CRITICAL,
    "Client response is not valid base64",
    "The server cannot decode the payload, so it replies 501 5.5.2 or rejects the AUTH. The "
    "client sent the XOAUTH2 string without encoding it, used the URL-safe base64 alphabet, "
    "or the line was truncated.",
    "Base64-encode the complete XOAUTH2 or OAUTHBEARER string with the standard alphabet and "
    "padding, and check that nothing shortens the line.",
)

NO_FINAL_REPLY = FindingKind(
    "auth.no_final_reply",
    Severity.CRITICAL,
    "Server sent no usable final reply to AUTH {mechanism} ({reply})",
    "The AUTH exchange ended without a final 2xx, 4xx or 5xx reply. {explanation}",
    "Read the server's log around the time of the AUTH attempt. {next_step}",
)
REPEATED_CHALLENGE = FindingKind(
    "auth.repeated_challenge",
    Severity.CRITICAL,
    "Server asked for the AUTH {mechanism} response again after receiving it",
    "The server answered the client response with another empty 334, so it could not read "
    "the response it got: the mechanism is implemented differently there, or a proxy "
    "rewrites the exchange.",
    "Try the other mechanism with --mechanism, and compare the exchange with the server's "
    "documentation.",
)


def no_final_reply_details(
    mechanism: str, *, after_challenge: bool, connection_lost: bool
) -> dict[str, str]:
    """Return the ``explanation`` and ``next_step`` of ``auth.no_final_reply``.

    ``after_challenge`` is true when an error challenge came before the reply went missing,
    and ``connection_lost`` when the server closed or reset the connection.
    """
    if after_challenge:
        return {
            "explanation": "It stopped after an error challenge and the client's dummy "
            "response, which usually means that the server expects a different dummy "
            "response than the one the client sent.",
            "next_step": "Run again with --challenge-answer kvsep (AQ==) or "
            "--challenge-answer empty.",
        }
    other_mechanism = "OAUTHBEARER" if mechanism == "XOAUTH2" else "XOAUTH2"
    if connection_lost:
        return {
            "explanation": "The server or a middlebox dropped the connection at AUTH, before "
            "any challenge: an intrusion prevention system or firewall that inspects SMTP, a "
            "server process that crashed on the AUTH line, or a server that ends the "
            "connection when the AUTH line is longer than it accepts.",
            "next_step": f"Try --mechanism {other_mechanism}, and a shorter token if the "
            "provider can issue one, to rule out a line length limit. Run from another network "
            "to rule out a middlebox.",
        }
    return {
        "explanation": "No challenge came before it: the server's authentication backend "
        "hung, the server sent something that is not an SMTP reply, or a middlebox holds or "
        "rewrites the session.",
        "next_step": f"Try --mechanism {other_mechanism}, and run from another network to rule "
        "out a middlebox.",
    }


CHALLENGE_FINDINGS = (
    TOKEN_MISSING,
    TOKEN_REJECTED,
    INSUFFICIENT_SCOPE,
    INVALID_REQUEST,
    CHALLENGE_UNANSWERED,
    CHALLENGE_DAMAGED,
    NO_FINAL_REPLY,
    REPEATED_CHALLENGE,
)
"""Kinds found in the server's 334 challenges and the client's responses to them."""

RESPONSE_FINDINGS = (
    RESPONSE_MISSING_SEPARATORS,
    RESPONSE_MISSING_BEARER,
    RESPONSE_RAW_TOKEN,
    RESPONSE_NO_GS2_HEADER,
    RESPONSE_USER_INSTEAD_OF_AUTHZID,
    RESPONSE_WHITESPACE_IN_BASE64,
    RESPONSE_NOT_BASE64,
)
"""Kinds found by validating the client's XOAUTH2 or OAUTHBEARER initial response."""
