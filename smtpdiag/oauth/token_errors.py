"""Parse and classify the error replies of OAuth2 token endpoints.

An error body (RFC 6749 section 5.2) carries an ``error`` code and an optional
``error_description``, and providers add their own detail. Microsoft puts ``AADSTSnnnn`` codes
in the description and in ``error_codes``. Google sends fixed English texts, and in older
replies an ``error`` object with ``code``, ``message`` and ``status``. Yandex sends its own
error codes next to the RFC ones.

Classification takes the first match of: a known AADSTS code, a known Google or Yandex text,
the RFC 6749 ``error`` code. Microsoft warns that its error texts change while its codes stay,
so Microsoft replies are keyed on codes only; Google and Yandex send no codes, so their texts
are used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from smtpdiag.clock.symptoms import finding_for_clock_error
from smtpdiag.knowledge.providers import Provider
from smtpdiag.models import Finding
from smtpdiag.oauth import token_kinds as kinds
from smtpdiag.oauth.http import MAX_BODY_BYTES
from smtpdiag.oauth.model import HttpReply, TokenErrorBody, register_secret_fields
from smtpdiag.redact import REDACTOR, mask_pairs
from smtpdiag.spec import FindingKind

MAX_DESCRIPTION_CHARACTERS = 2000
"""Maximum length of the ``error_description`` kept in the facts.

Microsoft's descriptions are a few hundred characters long."""

MAX_FIELD_CHARACTERS = 200
"""Maximum length of ``error``, ``suberror``, a trace id or another short field in the facts."""

MAX_ERROR_CODES = 20
"""Maximum number of ``error_codes`` entries kept; Microsoft sends one or two."""

MAX_QUOTED_CHARACTERS = 300
"""Maximum length of the description quoted in a finding's cause."""

EXCERPT_BYTES = 300
"""Bytes of a reply body shown as evidence."""

_AADSTS = re.compile(r"AADSTS(\d{1,10})")
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
# "must contain the following parameter: 'scope'", "Missing required parameter: scope",
# "scope cannot be empty", "The required field 'scope' is missing".
_SCOPE_MISSING = re.compile(
    r"(?:missing|must contain|required)[^.]{0,80}\bscope\b"
    r"|\bscope\b[^.]{0,40}\b(?:is missing|missing|is required|required|cannot be empty)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Advice:
    """Advice for a matched code or text: a more specific kind and provider-specific hints."""

    kind: FindingKind | None = None
    """The kind to report, or None when the RFC 6749 ``error`` code decides."""
    cause_hint: str = ""
    fix_hint: str = ""


# Microsoft Entra error codes (AADSTS numbers) and their meaning, as the error bodies in public
# bug reports show them.
_MICROSOFT_CODES: Mapping[int, _Advice] = {
    700082: _Advice(
        kinds.REFRESH_TOKEN_EXPIRED,
        cause_hint=" A job that sends mail rarely, or a helper that stored a refresh token and "
        "then stopped refreshing with it, reaches this limit.",
        fix_hint=" Refresh at least once a week, so that the stored token is never idle for "
        "90 days.",
    ),
    50173: _Advice(kinds.GRANT_REVOKED),
    7000012: _Advice(kinds.WRONG_TENANT),
    65001: _Advice(kinds.CONSENT_REQUIRED),
    70043: _Advice(kinds.SIGNIN_FREQUENCY),
    54005: _Advice(kinds.CODE_REUSED),
    9002313: _Advice(kinds.NOT_A_REFRESH_TOKEN),
    7000222: _Advice(kinds.CLIENT_SECRET_EXPIRED),
    7000218: _Advice(kinds.CLIENT_SECRET_MISSING),
    28000: _Advice(kinds.SCOPE_MULTIPLE_RESOURCES),
    1002012: _Advice(kinds.SCOPE_NEEDS_DEFAULT),
    # Only when the description names 'scope'; the same code reports other missing fields.
    900144: _Advice(kinds.SCOPE_MISSING_IN_REQUEST),
    7000215: _Advice(
        cause_hint=" Microsoft says the client secret is invalid; most often the secret's ID "
        "was configured instead of its value.",
        fix_hint=" Configure the secret's Value, which the portal shows only right after the "
        "secret is created; when it is no longer shown, create a new secret.",
    ),
    700016: _Advice(
        cause_hint=" Microsoft found no app with this client id in the tenant: the id is "
        "mistyped, or the app is registered in another tenant.",
        fix_hint=" Copy the Application (client) ID from the app's Overview page, and check "
        "the tenant in the token endpoint URL.",
    ),
    90002: _Advice(
        cause_hint=" Microsoft found no tenant by the name or id in the token endpoint URL.",
        fix_hint=" Put the Directory (tenant) ID from the app's Overview page in the URL.",
    ),
    90010: _Advice(
        cause_hint=" This grant is not available on the common and consumers endpoints.",
        fix_hint=" Put the tenant id or the tenant's domain name in the token endpoint URL "
        "instead of common or consumers.",
    ),
    9001023: _Advice(
        cause_hint=" This grant is not available on the common and consumers endpoints.",
        fix_hint=" Put the tenant id or the tenant's domain name in the token endpoint URL "
        "instead of common or consumers.",
    ),
}


@dataclass(frozen=True)
class _TextRule:
    """Advice for a provider's error text, used for providers that send no error codes."""

    providers: frozenset[Provider]
    errors: frozenset[str]
    """Lower-case ``error`` codes the rule applies to; empty for any."""
    pattern: re.Pattern[str] | None
    """Pattern searched in the description; None matches any description."""
    advice: _Advice


_GOOGLE = frozenset({Provider.GOOGLE, Provider.GENERIC})
_YANDEX = frozenset({Provider.YANDEX, Provider.GENERIC})
_YANDEX_ONLY = frozenset({Provider.YANDEX})
_ANY_PROVIDER = frozenset(Provider)

_YANDEX_REVOCATION = (
    " Yandex revokes every token of an account when the password changes, two-factor "
    "authentication is switched on or off, the account is recovered, or the user chooses "
    "'Log out everywhere', and all tokens of an app when its permissions change."
)

_YANDEX_AUTHORIZATION_HEADER = _Advice(
    kinds.INVALID_CLIENT,
    cause_hint=" Yandex could not read the Authorization header: it must be Basic with the "
    "base64 of <client_id>:<client_secret>.",
)

# Google's texts come from public bug reports and write-ups about Google's token endpoint.
# NOTE: Google's "Unauthorized" texts and Yandex's error codes and texts are not confirmed by a
# current primary source, so these rules may miss a reworded text. The RFC code decides then.
_TEXT_RULES: tuple[_TextRule, ...] = (
    _TextRule(
        _GOOGLE,
        frozenset({"invalid_grant"}),
        re.compile(r"token has been expired or revoked", re.IGNORECASE),
        _Advice(kinds.GRANT_REVOKED),
    ),
    _TextRule(
        _GOOGLE,
        frozenset({"invalid_grant"}),
        re.compile(r"invalid_rapt", re.IGNORECASE),
        _Advice(
            kinds.SIGNIN_FREQUENCY,
            cause_hint=" Google asks for a reauthentication (invalid_rapt) because a Google "
            "Workspace session control policy limits how long a sign-in lasts.",
            fix_hint=" At Google, a Workspace admin sets the reauthentication frequency in the "
            "Admin console (Security, Access and data control, Google Cloud session control).",
        ),
    ),
    _TextRule(
        _GOOGLE,
        frozenset({"invalid_grant"}),
        re.compile(r"^\s*bad request\.?\s*$", re.IGNORECASE),
        _Advice(
            cause_hint=" Google answers 'Bad Request' for a refresh token it does not "
            "recognise: one that was cut short or altered, or one that expired or was revoked "
            "some hours earlier.",
        ),
    ),
    _TextRule(
        _GOOGLE,
        frozenset({"invalid_client"}),
        re.compile(r"oauth client was not found", re.IGNORECASE),
        _Advice(
            cause_hint=" Google knows no OAuth client with this client id: it is mistyped, "
            "has spaces around it, or the client was deleted.",
        ),
    ),
    _TextRule(
        _GOOGLE,
        frozenset({"invalid_client"}),
        re.compile(r"^\s*unauthorized\s*$", re.IGNORECASE),
        _Advice(cause_hint=" Google answers this when the client secret does not match."),
    ),
    _TextRule(
        _GOOGLE,
        frozenset({"unauthorized_client"}),
        re.compile(r"^\s*unauthorized\s*$", re.IGNORECASE),
        _Advice(
            cause_hint=" Google answers this when the refresh token was issued to another "
            "client id than the one that now refreshes it.",
        ),
    ),
    _TextRule(
        _GOOGLE,
        frozenset({"admin_policy_enforced"}),
        None,
        _Advice(
            cause_hint=" A Google Workspace admin's policy blocks this app or the scopes it "
            "requests.",
            fix_hint=" The Workspace admin allows the app in the Admin console (Security, "
            "Access and data control, API controls).",
        ),
    ),
    _TextRule(
        _ANY_PROVIDER,
        frozenset({"bad_verification_code"}),
        None,
        _Advice(
            kinds.INVALID_GRANT,
            cause_hint=" The confirmation code sent is not a code that the provider issued.",
        ),
    ),
    _TextRule(
        _YANDEX,
        frozenset({"basic auth required", "malformed authorization header"}),
        None,
        _YANDEX_AUTHORIZATION_HEADER,
    ),
    _TextRule(
        _YANDEX,
        frozenset({"invalid_client", "invalid_request"}),
        re.compile(r"^\s*(?:basic auth required|malformed authorization header)", re.IGNORECASE),
        _YANDEX_AUTHORIZATION_HEADER,
    ),
    _TextRule(_ANY_PROVIDER, frozenset(), _SCOPE_MISSING, _Advice(kinds.SCOPE_MISSING_IN_REQUEST)),
    _TextRule(
        _YANDEX_ONLY, frozenset({"invalid_grant"}), None, _Advice(cause_hint=_YANDEX_REVOCATION)
    ),
    _TextRule(
        _YANDEX_ONLY,
        frozenset({"invalid_client"}),
        None,
        _Advice(
            cause_hint=" Yandex answers this when no app has this client id, the app is "
            "blocked, or the client secret is wrong.",
        ),
    ),
    _TextRule(
        _YANDEX_ONLY,
        frozenset({"unauthorized_client"}),
        None,
        _Advice(
            cause_hint=" Yandex answers this when the app was rejected in moderation, is "
            "waiting for moderation, or is blocked.",
        ),
    ),
    _TextRule(
        _YANDEX_ONLY,
        frozenset({"invalid_scope"}),
        None,
        _Advice(cause_hint=" Yandex answers this when the app's permissions changed."),
    ),
)

# RFC 6749 section 5.2 error codes.
_RFC_KINDS: Mapping[str, FindingKind] = {
    "invalid_grant": kinds.INVALID_GRANT,
    "invalid_client": kinds.INVALID_CLIENT,
    "unauthorized_client": kinds.UNAUTHORIZED_CLIENT,
    "unsupported_grant_type": kinds.UNSUPPORTED_GRANT_TYPE,
    "invalid_request": kinds.INVALID_REQUEST,
    "invalid_scope": kinds.INVALID_SCOPE,
}

# Texts that only Google sends, used to name the provider of a pasted body.
_GOOGLE_MARKS = re.compile(
    r"token has been expired or revoked|oauth client was not found|invalid_rapt", re.IGNORECASE
)


def parse_error_body(body: Mapping[str, Any]) -> TokenErrorBody | None:
    """Read the OAuth error of a token endpoint body, or return None when it carries none.

    Accepts any JSON value: a non-object, a missing or null ``error``, and fields of the wrong
    type yield None or are left out, and long texts are cut, so this never raises.
    """
    if not isinstance(body, Mapping):
        return None
    error, description = _error_and_description(body)
    if error is None:
        return None
    if description:
        # An endpoint (or a proxy) may repeat the request's form in its description.
        description = mask_pairs(description)

    codes = _aadsts_codes(description, body.get("error_codes"))
    return TokenErrorBody(
        error=error,
        description=description,
        error_uri=_short_text(body.get("error_uri")),
        error_codes=_error_codes(body.get("error_codes")),
        provider_error_code=_provider_error_code(codes),
        suberror=_short_text(body.get("suberror")),
        timestamp=_short_text(body.get("timestamp")),
        trace_id=_short_text(body.get("trace_id")),
        correlation_id=_short_text(body.get("correlation_id")),
    )


def provider_of_error_body(body: TokenErrorBody) -> Provider:
    """Name the provider that sent ``body``: Microsoft by its AADSTS codes or error URI, Google
    by its texts, otherwise generic."""
    if body.provider_error_code or body.error_codes:
        return Provider.MICROSOFT
    if body.error_uri and "login.microsoftonline.com" in body.error_uri.lower():
        return Provider.MICROSOFT
    if _GOOGLE_MARKS.search(body.description or "") or body.error == "admin_policy_enforced":
        return Provider.GOOGLE
    return Provider.GENERIC


def finding_for_error_body(
    body: TokenErrorBody,
    provider: Provider,
    http_status: int | None = None,
    evidence: Sequence[str] = (),
) -> Finding:
    """Turn an OAuth error body into the most specific finding of the token check, or of the
    clock check for an assertion time error.

    The facts are the body's facts plus ``http_status`` (when given) and ``provider``.
    """
    facts = {name: _redact_value(value) for name, value in body.facts().items()}
    if http_status is not None:
        facts["http_status"] = http_status
    facts["provider"] = provider.value

    label = body.error
    if body.provider_error_code:
        label = f"{body.error}, {body.provider_error_code}"
    details = {
        "error_label": REDACTOR.redact(label),
        "provider_message": _provider_message(body.description),
        "http_status": http_status,
    }
    redacted_evidence = [REDACTOR.redact(line) for line in evidence]

    # Assertion time errors (AADSTS700024, AADSTS50012) and Google's "Invalid JWT" are clock
    # symptoms, reported by the clock check's kinds with the times the description gives.
    clock_finding = finding_for_clock_error(body, facts, details, redacted_evidence)
    if clock_finding is not None:
        return clock_finding

    advice = _classify(body, provider)
    kind = advice.kind or _RFC_KINDS.get(body.error.lower())
    if kind is None and http_status is not None and http_status >= 500:
        # An unknown error code (Google's internal_failure, Microsoft's temporarily_unavailable)
        # names no problem in the request, and the 5xx status shows that the server failed.
        return _server_failure(details, facts, redacted_evidence, http_status)
    details.update(cause_hint=advice.cause_hint, fix_hint=advice.fix_hint)
    return (kind or kinds.UNKNOWN_ERROR).make(
        facts=facts, evidence=redacted_evidence, details=details
    )


def _server_failure(
    details: dict[str, Any], facts: dict[str, Any], evidence: list[str], http_status: int
) -> Finding:
    """Return ``token.endpoint_http_error`` for a 5xx reply whose OAuth error code is unknown."""
    status_cause, status_fix = _status_hints(http_status)
    error = f" The body names the error {details['error_label']}.{details['provider_message']}"
    details.update(cause_hint=error + status_cause, fix_hint=status_fix)
    return kinds.ENDPOINT_HTTP_ERROR.make(facts=facts, evidence=evidence, details=details)


def finding_for_reply(reply: HttpReply, provider: Provider, endpoint: str) -> Finding:
    """Explain a token endpoint reply that did not yield an access token; never raises.

    A 404 or 405 means a wrong URL whatever the body. An OAuth error body is classified by
    ``finding_for_error_body``, except that a 5xx status with an unknown error code is an
    HTTP error. A body that is cut short, empty, not UTF-8 or not JSON (an HTML proxy or
    sign-in page) is a malformed response, and so is a 2xx JSON reply without
    ``access_token``. Any other non-2xx status is an HTTP error.
    """
    value = None if reply.truncated else _load_json(reply.body)
    if isinstance(value, Mapping):
        register_secret_fields(value)
    evidence = _reply_evidence(reply, endpoint)

    if reply.status in (404, 405) or 300 <= reply.status < 400:
        return _http_error(reply, provider, endpoint, evidence)
    if reply.truncated:
        problem = f"a body over {_MAX_BODY_TEXT} (read cut at {_MAX_BODY_TEXT})"
        return _malformed(reply, provider, endpoint, evidence, problem, _TRUNCATED_HINT)
    if value is None:
        problem = _describe_non_json(reply)
        return _malformed(reply, provider, endpoint, evidence, problem, _NOT_JSON_HINT)

    if isinstance(value, Mapping):
        error_body = parse_error_body(value)
        if error_body is not None:
            return finding_for_error_body(error_body, provider, reply.status, evidence)
    if not 200 <= reply.status < 300:
        return _http_error(reply, provider, endpoint, evidence)

    problem = "a JSON object without access_token"
    if not isinstance(value, Mapping):
        problem = "JSON that is not an object"
    return _malformed(reply, provider, endpoint, evidence, problem, _UNEXPECTED_JSON_HINT)


# Parsing.


def _error_and_description(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Return the ``error`` code and the description, reading Google's older error object too."""
    raw = body.get("error")
    description = _long_text(body.get("error_description"))

    if isinstance(raw, Mapping):
        # Google's older shape: {"error": {"code": 400, "message": "...", "status": "..."}}.
        status = _short_text(raw.get("status"))
        code = raw.get("code")
        error = status or (str(code) if _is_integer(code) else None)
        return error, description or _long_text(raw.get("message"))
    if isinstance(raw, list):
        raw = next((item for item in raw if isinstance(item, str) and item.strip()), None)
    if _is_integer(raw):
        return str(raw), description
    return _short_text(raw), description


def _aadsts_codes(description: str | None, error_codes: object) -> list[int]:
    """Return the AADSTS numbers of the description, then those of ``error_codes``, once each."""
    found = [int(number) for number in _AADSTS.findall(description or "")]
    found.extend(_error_codes(error_codes))
    return list(dict.fromkeys(found))


def _error_codes(value: object) -> tuple[int, ...]:
    """Return Microsoft's ``error_codes`` as integers, skipping entries that are not numbers."""
    if not isinstance(value, list):
        return ()
    codes: list[int] = []
    for item in value[:MAX_ERROR_CODES]:
        if _is_integer(item) and 0 < item < 10**10:
            codes.append(item)
        elif isinstance(item, str) and item.isascii() and item.isdigit() and len(item) <= 10:
            codes.append(int(item))
    return tuple(codes)


def _provider_error_code(codes: list[int]) -> str | None:
    """Return ``AADSTSnnnn`` for the first known code, or for the first code when none is known."""
    if not codes:
        return None
    known = [code for code in codes if code in _MICROSOFT_CODES]
    return f"AADSTS{(known or codes)[0]}"


def _is_integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _clean(text: str) -> str:
    """Replace lone surrogates (JSON allows them) so that the text can be encoded as UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _short_text(value: object) -> str | None:
    """Return a short string field on one line, or None when it is missing, empty or no string."""
    if not isinstance(value, str):
        return None
    text = " ".join(_clean(value).split())[:MAX_FIELD_CHARACTERS]
    return text or None


def _long_text(value: object) -> str | None:
    """Return a description, cut at ``MAX_DESCRIPTION_CHARACTERS``, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return _clean(value)[:MAX_DESCRIPTION_CHARACTERS]


# Classification.


def _classify(body: TokenErrorBody, provider: Provider) -> _Advice:
    """Return the advice of the first matching AADSTS code or provider text, or no advice."""
    description = body.description or ""
    for code in _aadsts_codes(description, list(body.error_codes)):
        advice = _MICROSOFT_CODES.get(code)
        if advice is None:
            continue
        if code == 900144 and not re.search(r"\bscope\b", description, re.IGNORECASE):
            continue
        return advice

    error = body.error.lower()
    for rule in _TEXT_RULES:
        if provider not in rule.providers or (rule.errors and error not in rule.errors):
            continue
        if rule.pattern is None or rule.pattern.search(description):
            return rule.advice
    return _Advice()


def _provider_message(description: str | None) -> str:
    """Quote the first line of the description as one sentence, or return empty text."""
    if not description:
        return ""
    # Microsoft appends "Trace ID: …", "Correlation ID: …" and "Timestamp: …", on new lines
    # or, in some clients' logs, on the same line; the facts keep them.
    first = re.split(r"\r|\n|\s+Trace ID:", description, maxsplit=1)[0]
    text = " ".join(first.split())
    if len(text) > MAX_QUOTED_CHARACTERS:
        text = text[: MAX_QUOTED_CHARACTERS - 1] + "…"
    if not text:
        return ""
    end = "" if text.endswith((".", "!", "?", "…")) else "."
    return f' The provider says: "{REDACTOR.redact(text)}"{end}'


def _redact_value(value: Any) -> Any:
    return REDACTOR.redact(value) if isinstance(value, str) else value


# Replies that carry no OAuth error.

_NOT_JSON_HINT = (
    " Such a body usually comes from a proxy, captive portal, firewall or sign-in page that "
    "answered instead of the identity provider, or from a URL that points at a website rather "
    "than at the token endpoint."
)
_MAX_BODY_TEXT = f"{MAX_BODY_BYTES / 1_048_576:g} MiB"
"""``MAX_BODY_BYTES`` in words, e.g. ``1 MiB``."""

_TRUNCATED_HINT = (
    f" smtpdiag stopped reading after {_MAX_BODY_TEXT} ({MAX_BODY_BYTES} bytes), its limit "
    "for a reply. A token response is a few kilobytes, so something other than the token "
    "endpoint sent this body."
)
_UNEXPECTED_JSON_HINT = (
    " The URL may point at another API, or a gateway in front of the endpoint may have "
    "rewritten the reply."
)


def _load_json(body: bytes) -> object | None:
    """Parse ``body`` as JSON, or return None when it is empty, not UTF-8 or not JSON."""
    try:
        value: object = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return value


def _describe_non_json(reply: HttpReply) -> str:
    """Name what a body that is not JSON looks like, as a phrase after "returned"."""
    if not reply.body.strip():
        return "an empty body"
    try:
        text = reply.body.decode("utf-8")
    except UnicodeDecodeError:
        return "a body that is not UTF-8 text"

    if reply.content_type == "text/html" or text.lstrip().startswith("<"):
        match = _HTML_TITLE.search(text)
        title = " ".join(match.group(1).split())[:80] if match else ""
        if title:
            return f'an HTML page titled "{REDACTOR.redact(title)}"'
        return "an HTML page"
    return "text that is not JSON"


def _reply_evidence(reply: HttpReply, endpoint: str) -> list[str]:
    """Return the request line, the status line, the media type and a body excerpt, redacted."""
    lines = [f"POST {endpoint}", f"HTTP {reply.status} {reply.reason}".rstrip()]
    if reply.headers.get("content-type"):
        lines.append(f"Content-Type: {reply.headers['content-type']}")
    lines.append(f"body: {_excerpt(reply.body)}")
    return [REDACTOR.redact(_escape(line)) for line in lines]


def _excerpt(body: bytes) -> str:
    """Return the start of ``body`` with undecodable bytes escaped, or ``(empty)``.

    Known secrets are masked before the cut: a cut inside a secret would leave a piece that
    the redactor no longer recognises (an endpoint that echoes the request form, for one).
    The values of ``key=value`` pairs are masked in a shorter window, because a value that
    the window cuts is still replaced as a whole.
    """
    if not body:
        return "(empty)"
    whole = body[:_MASKED_BODY_BYTES].decode("utf-8", errors="backslashreplace")
    redacted = REDACTOR.redact(whole)
    text = mask_pairs(redacted[:_MASKED_PAIRS_CHARACTERS])
    cut = len(redacted) > _MASKED_PAIRS_CHARACTERS or len(body) > _MASKED_BODY_BYTES
    if len(text) > EXCERPT_BYTES or cut:
        text = text[:EXCERPT_BYTES] + " …"
    return text


_MASKED_BODY_BYTES = 65536
"""Bytes of a reply body in which known secrets are masked before the excerpt is cut."""

_MASKED_PAIRS_CHARACTERS = 2048
"""Characters of the redacted body in which ``key=value`` pairs are masked. The excerpt of
``EXCERPT_BYTES`` comes from them."""


def _escape(text: str) -> str:
    """Escape control characters, so that an evidence line stays one line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _reply_facts(reply: HttpReply, provider: Provider, endpoint: str) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "http_status": reply.status,
        "provider": provider.value,
        "endpoint": endpoint,
        "content_type": reply.content_type or None,
        "body_truncated": reply.truncated,
    }
    retry_after = reply.headers.get("retry-after")
    if retry_after:
        facts["retry_after"] = _escape(retry_after)[:MAX_FIELD_CHARACTERS]
    return facts


def _malformed(
    reply: HttpReply,
    provider: Provider,
    endpoint: str,
    evidence: list[str],
    problem: str,
    cause_hint: str,
) -> Finding:
    # A proxy's error page also has an error status, which narrows down who failed.
    status_cause, status_fix = (
        ("", "") if 200 <= reply.status < 300 else _status_hints(reply.status)
    )
    details = {
        "problem": problem,
        "http_status": reply.status,
        "content_type": reply.content_type or "no Content-Type",
        "cause_hint": cause_hint + status_cause,
        "fix_hint": status_fix,
    }
    return kinds.MALFORMED_RESPONSE.make(
        facts=_reply_facts(reply, provider, endpoint), evidence=evidence, details=details
    )


def _http_error(
    reply: HttpReply, provider: Provider, endpoint: str, evidence: list[str]
) -> Finding:
    cause_hint, fix_hint = _status_hints(reply.status)
    facts = _reply_facts(reply, provider, endpoint)
    if 300 <= reply.status < 400:
        location = REDACTOR.redact(reply.headers.get("location", "")[:300]) or "nowhere"
        facts["location"] = location
        cause_hint = (
            f" The endpoint redirects to {location}; smtpdiag, like token clients in "
            "general, does not follow redirects of a POST that carries secrets. A proxy's "
            "sign-in page or a moved or mistyped endpoint URL sends such redirects."
        )
        fix_hint = (
            " Use the provider's token endpoint URL exactly as documented, and check whether "
            "a proxy on this network intercepts HTTPS."
        )
    details = {"http_status": reply.status, "cause_hint": cause_hint, "fix_hint": fix_hint}
    return kinds.ENDPOINT_HTTP_ERROR.make(facts=facts, evidence=evidence, details=details)


def _status_hints(status: int) -> tuple[str, str]:
    """Return the cause and fix hints for an HTTP status without an OAuth error body."""
    if status in (404, 405):
        return (
            " HTTP 404 or 405 means that there is no token endpoint at this URL: its host, "
            "path or tenant is wrong.",
            " Microsoft's is https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token, "
            "Google's https://oauth2.googleapis.com/token, Yandex's "
            "https://oauth.yandex.ru/token.",
        )
    if status == 429:
        return (
            " HTTP 429 means that the provider is rate-limiting this client.",
            " Wait for the time in the Retry-After header before retrying, and run the check "
            "less often.",
        )
    if status in (401, 403):
        return (
            " A 401 or 403 without an OAuth error body usually comes from a proxy or web "
            "application firewall that blocks the request or wants its own authentication.",
            " Ask the network team whether outbound HTTPS to the identity provider needs proxy "
            "credentials or an allow-list entry.",
        )
    if status >= 500:
        return (
            " A 5xx status means that the identity provider, or a proxy or gateway in front "
            "of it, failed.",
            " A 5xx status is a failure of the server, not of this client's settings: retry in "
            "a few minutes and check the provider's service status. When it persists, find "
            "out whether a proxy sits in between.",
        )
    return "", ""
