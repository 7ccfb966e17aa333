"""The ``scope`` check: judge what the access token grants before AUTH sends it.

A JWT access token is judged by its claims (audience, ``scp`` or ``roles``, user, tenant,
``exp`` and ``nbf``), whose signature is not verified. An opaque token is judged by the
``scope`` of the token response and, with ``--introspect``, by the provider's tokeninfo or an
RFC 7662 introspection endpoint. The token itself never reaches a finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from smtpdiag.context import CheckContext, OAuthSettings, Target
from smtpdiag.knowledge.providers import Provider, detect_provider
from smtpdiag.models import CheckResult, Finding, Severity
from smtpdiag.oauth.claims import (
    ClaimView,
    Expectations,
    evaluate_claims,
    evaluate_scopes,
    infer_profile,
    iso_time,
    validity_findings,
)
from smtpdiag.oauth.model import ACCESS_TOKEN_OUTPUT, AccessToken, Grant
from smtpdiag.oauth.profiles import PROFILES, ProviderProfile, get_profile
from smtpdiag.oauth.scope_kinds import (
    INTROSPECTION_FAILED,
    SCOPE_FINDINGS,
    TOKEN_INACTIVE,
    UNVERIFIABLE,
)
from smtpdiag.spec import CheckSpec

if TYPE_CHECKING:
    from smtpdiag.oauth.introspection import Introspection

CHECK_ID = "scope"
TOKEN_CHECK_ID = "token"  # noqa: S105 (a check id)

_TOKENINFO_HINT = " The provider has a tokeninfo endpoint, so --introspect can read the token."


def run(target: Target, ctx: CheckContext) -> CheckResult:
    """Judge the access token that the token check obtained."""
    token = _access_token(ctx)
    if token is None:
        return CheckResult.skipped(CHECK_ID, "no access token: the token check did not produce one")
    profile = choose_profile(target, token)
    grant = token.grant or target.oauth.grant
    expectations = Expectations(
        profile=profile,
        grant=grant,
        user=target.user,
        tenant=target.oauth.tenant,
        requested_scopes=requested_scopes(target.oauth, profile, token.grant),
    )
    now = ctx.now()
    introspection: Introspection | Finding | None = None
    if target.oauth.introspect:
        introspection = _introspect(target, token, profile, ctx)
    return evaluate(token, expectations, now, introspection)


def evaluate(
    token: AccessToken,
    expectations: Expectations,
    now: datetime,
    introspection: Introspection | Finding | None = None,
) -> CheckResult:
    """Judge the token from its claims or response scopes and the introspection outcome.

    ``introspection`` is the endpoint's reply, the ``scope.introspection_failed`` finding,
    or None when introspection was not requested.
    """
    if token.claims is not None:
        findings = evaluate_claims(token.claims, expectations, now)
        facts = _jwt_facts(token, token.claims, expectations)
        if introspection is not None and not isinstance(introspection, Finding):
            from smtpdiag.oauth.introspection import judge

            # The claims judge scopes and times; the endpoint adds whether the token is active.
            judged = judge(introspection, expectations, now)
            findings += [finding for finding in judged if finding.code == TOKEN_INACTIVE.code]
    else:
        findings = _opaque_findings(token, expectations, now, introspection)
        facts = _opaque_facts(token, expectations, now)
    if isinstance(introspection, Finding):
        findings.append(introspection)
    elif introspection is not None:
        facts["introspection"] = introspection.facts()
    findings = _unique(findings)
    return CheckResult.from_findings(CHECK_ID, _summary(token, facts, findings), findings, facts)


def choose_profile(target: Target, token: AccessToken) -> ProviderProfile:
    """Return the configured provider's profile, else the one the claims or host point to."""
    if target.oauth.provider in PROFILES:
        return get_profile(target.oauth.provider)
    if token.claims is not None:
        inferred = infer_profile(token.claims)
        if inferred.provider is not Provider.GENERIC:
            return inferred
    provider = detect_provider(target.host or target.domain, None)
    return get_profile(provider.value)


def requested_scopes(
    oauth: OAuthSettings, profile: ProviderProfile, grant: Grant | None
) -> tuple[str, ...]:
    """Return the scopes the token check requested: the configured ones, else the profile's.

    A token from a file, a variable or a command has no known request, so only configured
    scopes count for it.
    """
    if oauth.scope:
        return tuple(oauth.scope.split())
    if grant is Grant.REFRESH_TOKEN and profile.scope:
        return tuple(profile.scope.split())
    if grant is Grant.CLIENT_CREDENTIALS and profile.app_scope:
        return tuple(profile.app_scope.split())
    return ()


def _access_token(ctx: CheckContext) -> AccessToken | None:
    upstream = ctx.upstream.get(TOKEN_CHECK_ID)
    if upstream is None:
        return None
    token = upstream.outputs.get(ACCESS_TOKEN_OUTPUT)
    return token if isinstance(token, AccessToken) else None


def _introspect(
    target: Target, token: AccessToken, profile: ProviderProfile, ctx: CheckContext
) -> Introspection | Finding:
    """Ask the endpoint about the token; a failure becomes the introspection_failed finding."""
    endpoint = target.oauth.introspection_endpoint or profile.tokeninfo_endpoint
    if endpoint is None:
        reason = (
            f"no introspection_endpoint is configured and the {profile.provider.value} "
            "profile has no tokeninfo endpoint"
        )
        return _introspection_failed("(none)", reason)
    # Loaded only with --introspect: the HTTP client and the reply parser.
    from smtpdiag.oauth.http import EndpointError
    from smtpdiag.oauth.introspection import IntrospectionError, introspect

    try:
        return introspect(
            endpoint,
            token.value,
            now=ctx.now(),
            timeout=ctx.io_timeout(),
            client_id=target.oauth.client_id,
            client_secret=target.oauth.client_secret,
            ca_file=target.oauth.token_ca_file,
        )
    except EndpointError as error:
        facts = {"tls_failed": error.tls}
        return _introspection_failed(endpoint, error.reason, facts)
    except IntrospectionError as error:
        return _introspection_failed(endpoint, error.reason, {"http_status": error.http_status})
    except ValueError as error:
        return _introspection_failed(endpoint, f"invalid endpoint URL: {error}")


def _introspection_failed(
    endpoint: str, reason: str, facts: dict[str, Any] | None = None
) -> Finding:
    finding_facts = {"introspection_endpoint": endpoint, "reason": reason, **(facts or {})}
    details = {"endpoint": endpoint, "reason": reason}
    return INTROSPECTION_FAILED.make(facts=finding_facts, details=details)


def _opaque_findings(
    token: AccessToken,
    expectations: Expectations,
    now: datetime,
    introspection: Introspection | Finding | None,
) -> list[Finding]:
    facts = {"token_kind": "opaque"}
    findings: list[Finding] = []
    if token.scopes is not None:
        source = "the token response's scope"
        findings += evaluate_scopes(token.scopes, expectations, source=source, facts=facts)
    if token.expires_at is not None:
        findings += validity_findings(token.expires_at.timestamp(), None, now, facts)
    if introspection is not None and not isinstance(introspection, Finding):
        from smtpdiag.oauth.introspection import judge

        findings += judge(introspection, expectations, now)
    elif token.scopes is None and introspection is None:
        # A failed introspection is its own finding, which states that the scopes are unknown.
        hint = _TOKENINFO_HINT if expectations.profile.tokeninfo_endpoint else ""
        findings.append(UNVERIFIABLE.make(facts=facts, details={"hint": hint}))
    return findings


def _jwt_facts(
    token: AccessToken, claims: Mapping[str, Any], expectations: Expectations
) -> dict[str, Any]:
    view = ClaimView.read(claims)
    facts = {"token_kind": "jwt", "source": token.source, **view.facts(expectations.profile)}
    facts["app_only"] = view.app_only(expectations.grant)
    if view.users:
        facts["token_user"] = view.users[0][1]
    if view.tenant:
        facts["tenant_id"] = view.tenant
    if view.expires is not None:
        facts["exp"] = iso_time(view.expires)
    return facts


def _opaque_facts(token: AccessToken, expectations: Expectations, now: datetime) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "token_kind": "opaque",
        "source": token.source,
        "provider": expectations.profile.provider.value,
        "scopes": list(token.scopes) if token.scopes is not None else None,
    }
    if token.expires_at is not None:
        facts["exp"] = token.expires_at.isoformat()
        facts["exp_in_seconds"] = round((token.expires_at - now).total_seconds(), 3)
    return facts


def _summary(token: AccessToken, facts: dict[str, Any], findings: list[Finding]) -> str:
    problems = [finding for finding in findings if finding.severity is not Severity.INFO]
    if token.claims is not None:
        suffix = "claims read from the JWT, signature not verified"
        if problems:
            return _problem_summary(problems, suffix)
        audience = facts.get("audience") or "no audience"
        granted = " ".join(facts.get("roles") or facts.get("scopes") or []) or "no scopes"
        return f"JWT for {audience} grants {granted} ({suffix})"
    if problems:
        return _problem_summary(problems, "opaque token")
    if findings:
        return findings[0].title
    return _opaque_grant_summary(facts)


def _opaque_grant_summary(facts: Mapping[str, Any]) -> str:
    """Name the scopes of an opaque token and where they come from.

    Introspection states what the token grants now, so its scopes come before those of the
    token response.
    """
    introspection = facts.get("introspection") or {}
    sources = (
        (introspection.get("scopes"), "introspection"),
        (facts.get("scopes"), "token response"),
    )
    for scopes, source in sources:
        if scopes is not None:
            granted = " ".join(scopes) or "no scopes"
            return f"opaque token grants {granted} ({source})"
    if introspection:
        return "opaque token is active, and introspection reports no scopes"
    return "opaque token grants scopes that are not known"


def _problem_summary(problems: list[Finding], suffix: str) -> str:
    more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
    return f"{problems[0].title}{more} ({suffix})"


def _unique(findings: list[Finding]) -> list[Finding]:
    """Drop repeats of a code with the same title, such as expiry seen twice."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.code, finding.title)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


SPEC = CheckSpec(
    id=CHECK_ID,
    title="Access token audience, scopes, user and validity",
    run=run,
    findings=SCOPE_FINDINGS,
    requires=(TOKEN_CHECK_ID,),
)
