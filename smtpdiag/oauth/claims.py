"""Judge what an OAuth2 access token grants: audience, scopes or roles, user, tenant, validity.

The claims come from a JWT whose signature is not verified, so they show what the token claims
about itself, and the server that receives it checks the signature. Every finding built from
claims carries the fact ``signature_verified: false``. Malformed claims (a number where a
string belongs, a list where a string belongs, an absurd time) are skipped, never raised on.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from smtpdiag.knowledge.providers import Provider
from smtpdiag.models import Finding, Severity
from smtpdiag.oauth.model import Grant
from smtpdiag.oauth.profiles import (
    EXCHANGE_AUDIENCES,
    GRAPH_AUDIENCES,
    MICROSOFT_TENANT_ALIASES,
    ProviderProfile,
    get_profile,
)
from smtpdiag.oauth.scope_kinds import (
    MISSING,
    TOKEN_EXPIRED,
    TOKEN_NOT_YET_VALID,
    USER_MISMATCH,
    WRONG_AUDIENCE,
    WRONG_TENANT,
)

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_NUMERIC_TEXT = re.compile(r"-?\d{1,30}(?:\.\d{1,30})?")

USER_CLAIMS = ("upn", "preferred_username", "unique_name", "email")
"""Claims that name the signed-in account, in the order a mismatch reports them."""

MICROSOFT_ISSUER_HOSTS = ("sts.windows.net", "login.microsoftonline.com", "login.windows.net")
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")

# Scopes that a token endpoint handles itself and never lists among the granted API scopes:
# refresh tokens and OpenID Connect. A ".default" scope stands for the app's configured
# permissions, which the token lists by their own names.
_UNLISTED_SCOPES = frozenset({"offline_access", "openid", "profile", "email"})

EVIDENCE_VALUE_LENGTH = 200
"""Maximum length of a claim value in a finding's evidence, in characters."""

_GRAPH_NOTE = (
    " Microsoft Graph has its own SMTP.Send permission, and Exchange Online rejects a Graph "
    "token even when its scp claim lists SMTP.Send."
)
_CLIENT_AUDIENCE_NOTE = (
    ", the client's own application id, which marks an ID token rather than an access token"
)

_REQUESTS = {
    Provider.MICROSOFT: (
        "https://outlook.office.com/SMTP.Send offline_access for delegated access, or "
        "https://outlook.office365.com/.default for app-only access"
    ),
    Provider.GOOGLE: "https://mail.google.com/",
    Provider.YANDEX: "mail:smtp",
    Provider.MAILRU: "mail.imap",
    Provider.YAHOO: "mail-w",
}

_PROVIDER_FIXES = {
    (Provider.MICROSOFT, False): (
        "In Microsoft Entra, add the delegated permission SMTP.Send of Office 365 Exchange "
        "Online (API permissions, APIs my organization uses), grant consent, and request "
        "https://outlook.office.com/SMTP.Send offline_access."
    ),
    (Provider.MICROSOFT, True): (
        "In Microsoft Entra, add the application permission SMTP.SendAsApp of Office 365 "
        "Exchange Online, grant admin consent, and request "
        "https://outlook.office365.com/.default; Exchange also needs the app's service "
        "principal (New-ServicePrincipal) and a mailbox permission (Add-MailboxPermission)."
    ),
    (Provider.GOOGLE, False): (
        "Add https://mail.google.com/ to the OAuth consent screen and authorize the account "
        "again; https://www.googleapis.com/auth/gmail.send covers the Gmail API only, not SMTP."
    ),
    (Provider.YANDEX, False): (
        "Enable the mail:smtp permission in the app's settings at oauth.yandex.ru and "
        "authorize the account again; Yandex revokes the old tokens when an app's permissions "
        "change."
    ),
    (Provider.MAILRU, False): "Request mail.imap, which Mail.ru uses for SMTP as well.",
    (Provider.YAHOO, False): "Request mail-w (read and write mail) in the app's API permissions.",
}

# Scopes that look right but do not allow SMTP, with the reason.
_NEAR_MISSES = {
    "https://www.googleapis.com/auth/gmail.send": (
        " The token has https://www.googleapis.com/auth/gmail.send, which allows sending "
        "through the Gmail API only; SMTP needs https://mail.google.com/."
    ),
    "https://graph.microsoft.com/smtp.send": _GRAPH_NOTE,
}


@dataclass(frozen=True)
class Expectations:
    """Requirements of the SMTP service for an access token, with the user's configuration."""

    profile: ProviderProfile
    """Provider profile; the generic one when the provider is unknown."""
    grant: Grant | None
    """REFRESH_TOKEN for delegated access (scp), CLIENT_CREDENTIALS for app-only access
    (roles), or None to infer it from the claims."""
    user: str | None
    """SMTP user, compared with upn, preferred_username, unique_name and email."""
    tenant: str | None
    """Configured tenant id or domain; only a tenant id (GUID) is compared with tid."""
    requested_scopes: tuple[str, ...] = ()
    """Scopes the client requested; each should be granted."""


@dataclass(frozen=True)
class ClaimView:
    """The claims that matter for SMTP, read leniently from a JWT payload."""

    payload: Mapping[str, Any]
    audiences: tuple[str, ...]
    scopes: tuple[str, ...]
    """Delegated scopes from ``scp``, or from ``scope`` when there is no ``scp``."""
    scope_claim: str
    roles: tuple[str, ...]
    users: tuple[tuple[str, str], ...]
    """Pairs of claim name and account name from ``USER_CLAIMS``."""
    tenant: str | None
    expires: float | None
    """``exp`` in seconds since the epoch, or None when absent or not a number."""
    not_before: float | None

    @classmethod
    def read(cls, claims: Mapping[str, Any]) -> ClaimView:
        """Read the payload of ``{"header": …, "payload": …}``; wrong types count as absent."""
        payload = claims.get("payload") if isinstance(claims, Mapping) else None
        if not isinstance(payload, Mapping):
            payload = {}
        scope_claim = "scp" if "scp" in payload else "scope"
        users = tuple(
            (name, value.strip())
            for name in USER_CLAIMS
            if isinstance(value := payload.get(name), str) and value.strip()
        )
        tenant = payload.get("tid")
        return cls(
            payload=payload,
            audiences=_strings(payload.get("aud")),
            scopes=_words(payload.get(scope_claim)),
            scope_claim=scope_claim,
            roles=_words(payload.get("roles")),
            users=users,
            tenant=tenant.strip() if isinstance(tenant, str) and tenant.strip() else None,
            expires=numeric_date(payload.get("exp")),
            not_before=numeric_date(payload.get("nbf")),
        )

    def app_only(self, grant: Grant | None) -> bool:
        """Tell whether the token is app-only: by the grant, else by roles without scp."""
        if grant is not None:
            return grant is Grant.CLIENT_CREDENTIALS
        if self.payload.get("idtyp") == "app":
            return True
        return bool(self.roles) and not self.scopes

    def facts(self, profile: ProviderProfile) -> dict[str, Any]:
        """Return the facts that every finding about these claims carries."""
        audience: Any = list(self.audiences) if len(self.audiences) != 1 else self.audiences[0]
        facts: dict[str, Any] = {
            "signature_verified": False,
            "provider": profile.provider.value,
            "audience": audience or None,
            "scopes": list(self.scopes),
            "jwt": dict(self.payload),
        }
        if self.roles:
            facts["roles"] = list(self.roles)
        return facts


def evaluate_claims(
    claims: Mapping[str, Any],
    expectations: Expectations,
    now: datetime | None,
    *,
    clock: str = "the local clock",
) -> list[Finding]:
    """Judge a JWT's claims: audience, scopes or roles, user, tenant, then ``exp`` and ``nbf``.

    ``now`` is the time to judge validity at, and ``clock`` names where it comes from in the
    finding text. None skips ``exp`` and ``nbf``, for a token seen in a transcript that shows
    no server time.
    """
    view = ClaimView.read(claims)
    facts = view.facts(expectations.profile)
    findings = [
        *_audience_findings(view, expectations, facts),
        *_claim_scope_findings(view, expectations, facts),
    ]
    if not view.app_only(expectations.grant):
        findings += user_findings(view.users, expectations.user, facts)
    findings += _tenant_findings(view, expectations, facts)
    if now is not None:
        findings += validity_findings(view.expires, view.not_before, now, facts, clock=clock)
    return findings


def decode_findings(claims: Mapping[str, Any], now: datetime | None) -> list[Finding]:
    """Judge a pasted JWT against the provider its claims point to, without a user or tenant."""
    expectations = Expectations(profile=infer_profile(claims), grant=None, user=None, tenant=None)
    return evaluate_claims(claims, expectations, now)


def infer_profile(claims: Mapping[str, Any]) -> ProviderProfile:
    """Return the provider profile that issued the token, from ``iss`` and ``aud``.

    Returns the generic profile when neither names a known provider.
    """
    view = ClaimView.read(claims)
    issuer = view.payload.get("iss")
    issuer = issuer.strip() if isinstance(issuer, str) else ""
    host = _host(issuer)
    audiences = {_normalise(audience) for audience in view.audiences}
    microsoft_audiences = {_normalise(value) for value in (*EXCHANGE_AUDIENCES, *GRAPH_AUDIENCES)}
    if host in MICROSOFT_ISSUER_HOSTS or audiences & microsoft_audiences:
        return get_profile(Provider.MICROSOFT.value)
    if issuer.rstrip("/") in GOOGLE_ISSUERS:
        return get_profile(Provider.GOOGLE.value)
    return get_profile(None)


def evaluate_scopes(
    granted: Sequence[str],
    expectations: Expectations,
    *,
    source: str,
    facts: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Judge the scopes of an opaque token, as the token response or introspection lists them.

    ``source`` names where the scopes come from in the finding text, e.g. ``the token
    response's scope``. App-only grants list no roles there, so only delegated access is judged.
    """
    base = {**(facts or {}), "provider": expectations.profile.provider.value}
    base["scopes"] = list(granted)
    findings = _resource_findings(granted, expectations, base)
    if expectations.grant is Grant.CLIENT_CREDENTIALS:
        return findings
    required = expectations.profile.required_scopes
    findings += _missing(granted, required, expectations, base, where=f"in {source}")
    return findings


def user_findings(
    users: Sequence[tuple[str, str]], user: str | None, facts: Mapping[str, Any]
) -> list[Finding]:
    """Report when no account name in ``users`` equals the SMTP ``user``, ignoring case.

    ``users`` contains pairs of claim or field name and account name. Nothing is reported when
    either side is missing: app-only tokens name no user.
    """
    if not user or not users:
        return []
    wanted = user.strip().lower()
    if any(_account(value) == wanted for _name, value in users):
        return []
    claim, token_user = users[0]
    details = {"token_user": token_user, "user": user, "claim": claim}
    finding_facts = {**facts, "token_user": token_user, "user": user, "user_claim": claim}
    evidence = (f"{claim}: {_shown(token_user)}",)
    return [USER_MISMATCH.make(facts=finding_facts, evidence=evidence, details=details)]


NOT_BEFORE_LEEWAY_SECONDS = 60.0
"""Seconds by which ``nbf`` may lie ahead of the local clock before the token counts as not
yet valid. RFC 7519 allows validators a small leeway, and a few seconds of skew are the
clock check's to report, not a reason to call a fresh token unusable."""


def validity_findings(
    expires: float | None,
    not_before: float | None,
    now: datetime,
    facts: Mapping[str, Any],
    *,
    clock: str = "the local clock",
) -> list[Finding]:
    """Report a token at or after its expiry time, or more than the leeway before its
    not-before time.

    ``expires`` and ``not_before`` are seconds since the epoch (``exp``, ``nbf``); ``clock``
    names the clock that ``now`` comes from in the finding text.
    """
    findings = []
    reference = now.timestamp()
    if expires is not None and expires <= reference:
        seconds = expires - reference
        shown = iso_time(expires) or "a time before the year 1"
        finding_facts = {**facts, "exp": iso_time(expires), "exp_in_seconds": _round(seconds)}
        details = {"exp": shown, "age": _duration(-seconds), "clock": clock}
        evidence = (f"exp: {_shown(expires)} ({shown})",)
        findings.append(TOKEN_EXPIRED.make(facts=finding_facts, evidence=evidence, details=details))
    if not_before is not None and not_before > reference + NOT_BEFORE_LEEWAY_SECONDS:
        seconds = not_before - reference
        shown = iso_time(not_before) or "a time after the year 9999"
        finding_facts = {**facts, "nbf": iso_time(not_before), "nbf_in_seconds": _round(seconds)}
        details = {"nbf": shown, "ahead": _duration(seconds), "clock": clock}
        evidence = (f"nbf: {_shown(not_before)} ({shown})",)
        findings.append(
            TOKEN_NOT_YET_VALID.make(facts=finding_facts, evidence=evidence, details=details)
        )
    return findings


def numeric_date(value: Any) -> float | None:
    """Return a NumericDate (RFC 7519 section 2) as float seconds, or None when not a number.

    Numeric strings are accepted, because Google's tokeninfo sends ``exp`` as a string. An
    integer too large for a float becomes an infinity of its sign.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _NUMERIC_TEXT.fullmatch(value.strip()):
        value = float(value.strip())
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float) and not math.isnan(value):
        return value
    return None


def iso_time(seconds: float) -> str | None:
    """Return epoch ``seconds`` as ISO 8601 UTC, or None when out of datetime's range."""
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return None


def scope_matches(granted: str, wanted: str) -> bool:
    """Tell whether the ``granted`` scope is the ``wanted`` one, ignoring case.

    A short name matches the last path segment of a full one: ``SMTP.Send`` (as ``scp`` lists
    it) matches ``https://outlook.office.com/SMTP.Send`` (as the token response lists it). Two
    full scopes match only when their resources are the same.
    """
    granted_name, wanted_name = _normalise(granted), _normalise(wanted)
    if not granted_name or not wanted_name:
        return False
    if granted_name == wanted_name:
        return True
    if "://" in granted_name and "://" in wanted_name:
        return False
    short = _short_scope(granted_name)
    return short is not None and short == _short_scope(wanted_name)


def _audience_findings(
    view: ClaimView, expectations: Expectations, facts: Mapping[str, Any]
) -> list[Finding]:
    accepted = {_normalise(audience) for audience in expectations.profile.audiences}
    if not accepted or not view.audiences:
        return []
    if any(_normalise(audience) in accepted for audience in view.audiences):
        return []
    audience = view.audiences[0]
    evidence: tuple[str, ...] = (f"aud: {_shown(view.payload.get('aud'))}",)
    if view.scopes:
        evidence += (f"{view.scope_claim}: {_shown(view.payload.get(view.scope_claim))}",)
    return [_wrong_audience(audience, view, expectations.profile, facts, evidence)]


def _wrong_audience(
    audience: str,
    view: ClaimView | None,
    profile: ProviderProfile,
    facts: Mapping[str, Any],
    evidence: tuple[str, ...],
) -> Finding:
    note = ""
    graph = _normalise(audience) in {_normalise(value) for value in GRAPH_AUDIENCES}
    if graph:
        note = " (Microsoft Graph)"
    elif view is not None and _is_client_audience(audience, view):
        note = _CLIENT_AUDIENCE_NOTE
    expected = ""
    if profile.audiences:
        expected = f" ({' or '.join(profile.audiences[:2])})"
    details = {
        "audience": audience,
        "audience_note": note,
        "expected_audience": expected,
        "graph_note": _GRAPH_NOTE if graph else "",
        "request": _REQUESTS.get(profile.provider, "the scope the provider documents for SMTP"),
    }
    return WRONG_AUDIENCE.make(facts=facts, evidence=evidence, details=details)


def _is_client_audience(audience: str, view: ClaimView) -> bool:
    """Tell whether ``aud`` is the client's own id, as in an ID token (``azp`` or ``appid``)."""
    clients = {view.payload.get("azp"), view.payload.get("appid")}
    return any(isinstance(client, str) and client == audience for client in clients)


def _claim_scope_findings(
    view: ClaimView, expectations: Expectations, facts: Mapping[str, Any]
) -> list[Finding]:
    profile = expectations.profile
    if view.app_only(expectations.grant):
        where = "in the roles claim, which lists an app-only token's application permissions"
        scope_facts = {**facts, "scopes": list(view.roles)}
        roles, required = view.roles, profile.required_roles
        return _missing(roles, required, expectations, scope_facts, where=where, app_only=True)
    where = f"in the {view.scope_claim} claim, which lists a delegated token's scopes"
    return _missing(view.scopes, profile.required_scopes, expectations, facts, where=where)


def _missing(
    granted: Sequence[str],
    required: Sequence[str],
    expectations: Expectations,
    facts: Mapping[str, Any],
    *,
    where: str,
    app_only: bool = False,
) -> list[Finding]:
    """Report a required scope that none of ``granted`` matches, then unmet requested scopes."""
    findings = []
    if required and not _grants_any(granted, required):
        why = f", which the SMTP service requires {where}"
        findings.append(_missing_finding(required[0], granted, why, expectations, facts, app_only))
    for requested in expectations.requested_scopes:
        if not _listed(requested) or _grants_any(granted, (requested,)):
            continue
        if findings and _grants_any(required, (requested,)):
            continue  # already reported as the required scope
        why = ", which the client requested; the authorization server granted less"
        finding = _missing_finding(requested, granted, why, expectations, facts, app_only)
        if not _grants_any(required, (requested,)):
            # A requested scope that SMTP does not need is a warning, not the cause.
            finding = replace(finding, severity=Severity.WARNING)
        findings.append(finding)
    return findings


def _missing_finding(
    required_scope: str,
    granted: Sequence[str],
    why: str,
    expectations: Expectations,
    facts: Mapping[str, Any],
    app_only: bool,
) -> Finding:
    listed = " ".join(granted)
    granted_text = f"It grants: {listed}." if listed else "It grants no scopes at all."
    note = "".join(text for scope, text in _NEAR_MISSES.items() if _grants_any(granted, (scope,)))
    provider = expectations.profile.provider
    details = {
        "required_scope": required_scope,
        "why": why,
        "granted": granted_text,
        "note": note,
        "provider_fix": _PROVIDER_FIXES.get((provider, app_only), ""),
    }
    finding_facts = {**facts, "required_scope": required_scope}
    evidence = (f"granted: {_shown(listed)}",)
    return MISSING.make(facts=finding_facts, evidence=evidence, details=details)


def _resource_findings(
    granted: Sequence[str], expectations: Expectations, facts: Mapping[str, Any]
) -> list[Finding]:
    """Report when every granted SMTP scope belongs to another API (Graph's SMTP.Send)."""
    profile = expectations.profile
    wrong = {_normalise(value) for value in profile.wrong_audiences}
    required = (*profile.required_scopes, *profile.required_roles)
    matching = [scope for scope in granted if _grants_any((scope,), required)]
    resources = [_resource(scope) for scope in matching]
    if not matching or not wrong or not all(resource in wrong for resource in resources):
        return []
    audience = resources[0] or ""
    evidence = (f"granted: {_shown(' '.join(granted))}",)
    return [_wrong_audience(audience, None, profile, {**facts, "audience": audience}, evidence)]


def _tenant_findings(
    view: ClaimView, expectations: Expectations, facts: Mapping[str, Any]
) -> list[Finding]:
    tenant = (expectations.tenant or "").strip()
    if view.tenant is None or not _GUID.fullmatch(tenant):
        return []  # a domain or an alias such as "common" names no single tenant id
    if tenant.lower() in MICROSOFT_TENANT_ALIASES or view.tenant.lower() == tenant.lower():
        return []
    details = {"token_tenant": view.tenant, "tenant": tenant}
    finding_facts = {**facts, "tenant": tenant, "token_tenant": view.tenant}
    evidence = (f"tid: {_shown(view.tenant)}",)
    return [WRONG_TENANT.make(facts=finding_facts, evidence=evidence, details=details)]


def _grants_any(granted: Sequence[str], wanted: Sequence[str]) -> bool:
    return any(scope_matches(scope, name) for scope in granted for name in wanted)


def _listed(scope: str) -> bool:
    """Tell whether a requested scope appears among granted scopes when it is granted."""
    name = scope.strip().lower()
    return bool(name) and name not in _UNLISTED_SCOPES and not name.endswith(".default")


def _strings(value: Any) -> tuple[str, ...]:
    """Return ``value`` as a tuple of non-empty strings: a string, or the strings of a list."""
    if isinstance(value, str):
        return (value.strip(),) if value.strip() else ()
    if isinstance(value, list | tuple):
        return tuple(item.strip() for item in value if isinstance(item, str) and item.strip())
    return ()


def _words(value: Any) -> tuple[str, ...]:
    """Return the space-separated words of a string claim, or of each string in a list."""
    return tuple(word for text in _strings(value) for word in text.split())


def _normalise(value: str) -> str:
    return value.strip().lower().rstrip("/")


def _short_scope(scope: str) -> str | None:
    """Return the permission name of a scope: the last path segment of a URI, or the name."""
    if "://" not in scope:
        return scope
    rest = scope.split("://", 1)[1]
    if "/" not in rest:
        return None
    return rest.rsplit("/", 1)[1] or None


def _resource(scope: str) -> str | None:
    """Return the resource URI of a full scope (``https://host``), or None for a short name."""
    name = scope.strip()
    if "://" not in name:
        return None
    return _normalise(name.rsplit("/", 1)[0])


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _account(value: str) -> str:
    """Return an account name for comparison: guests' ``live.com#user@…`` loses its prefix."""
    return value.rsplit("#", 1)[-1].strip().lower()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds >= 10 * 365 * 86400:
        return "more than ten years"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.0f} days"


def _round(seconds: float) -> float | None:
    """Return seconds rounded for facts; None for an infinity, which JSON cannot carry."""
    return round(seconds, 3) if math.isfinite(seconds) else None


def _shown(value: Any) -> str:
    """Return a claim value as JSON for evidence, cut at ``EVIDENCE_VALUE_LENGTH``."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > EVIDENCE_VALUE_LENGTH:
        text = text[:EVIDENCE_VALUE_LENGTH] + "…"
    return text
