"""The ``token`` check: obtain the access token that AUTH will use, and explain any failure.

Sources, first configured wins: a token command (run as msmtp runs ``passwordeval``), a grant
at the token endpoint (refresh token, or client credentials for app-only access), then an
access token from a file, ``SMTPDIAG_ACCESS_TOKEN`` or a systemd credential. The token goes
to the scope and auth checks through ``outputs``; it never appears in the report.

A grant's token is cached until ``token_refresh_margin`` seconds before it expires, in
memory for the life of the process and, when ``token_cache_file`` is set, in that file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from smtpdiag.context import CheckContext, OAuthSettings, Target
from smtpdiag.models import CheckResult, Finding, Severity
from smtpdiag.oauth.claims import numeric_date
from smtpdiag.oauth.grants import choose_grant, request_fields, requested_scope, token_response
from smtpdiag.oauth.http import EndpointError, post_form
from smtpdiag.oauth.model import ACCESS_TOKEN_OUTPUT, AccessToken, Grant, TokenResponse
from smtpdiag.oauth.profiles import ProviderProfile, get_profile
from smtpdiag.oauth.token_kinds import TOKEN_FINDINGS, TOKEN_KINDS
from smtpdiag.sasl import jwt_claims
from smtpdiag.secrets import Secret
from smtpdiag.spec import CheckSpec

if TYPE_CHECKING:
    from smtpdiag.oauth.cache import UnsafeCacheFileError
    from smtpdiag.oauth.command import CommandOutcome

CHECK_ID = "token"

NO_SOURCE = (
    "not run: no token source configured (--refresh-token-file with --client-id, "
    "--client-id with --client-secret-file for client credentials, --token-command, or "
    "--access-token-file)"
)


def run(target: Target, ctx: CheckContext) -> CheckResult:
    """Obtain the access token from the configured source and report how that went."""
    oauth = target.oauth
    profile = get_profile(oauth.provider)
    if oauth.token_command:
        return _from_command(oauth.token_command, profile, ctx)
    grant = choose_grant(oauth)
    if grant is not None:
        return _from_endpoint(oauth, grant, profile, ctx)
    if target.access_token is not None:
        token = _access_token(target.access_token, target.access_token.source)
        return _result(f"access token from {target.access_token.source}", token, [], {}, ctx)
    return CheckResult.skipped(CHECK_ID, NO_SOURCE)


def _from_command(command: str, profile: ProviderProfile, ctx: CheckContext) -> CheckResult:
    from smtpdiag.oauth.command import run_token_command  # subprocess, only for this source

    outcome = run_token_command(command, ctx.io_timeout())
    facts = {"source": "token command", **outcome.facts}
    findings = [
        _make(
            problem.code,
            problem.details,
            facts,
            severity=None if problem.blocking else Severity.WARNING,
        )
        for problem in outcome.problems
    ]
    idp_error = _command_idp_error(outcome, profile)
    if idp_error is not None:
        # The identity provider's error names the cause, so it comes before the command's.
        finding, idp_summary = idp_error
        if outcome.token is not None:
            # The command still printed a token, which msmtp sends: a warning, as for its exit.
            finding = replace(finding, severity=Severity.WARNING)
        findings.insert(0, finding)
    if outcome.token is not None:
        token = _access_token(outcome.token, "token command")
        return _result("access token from the token command", token, findings, facts, ctx)
    if idp_error is not None:
        return CheckResult.from_findings(CHECK_ID, idp_summary, findings, facts)
    summary = f"the token command gave no usable token: {findings[0].title}"
    return CheckResult.from_findings(CHECK_ID, summary, findings, facts)


def _command_idp_error(
    outcome: CommandOutcome, profile: ProviderProfile
) -> tuple[Finding, str] | None:
    """Decode an OAuth error body that a token command printed or wrote to standard error.

    Returns the finding and the check's summary, or None when neither output contains an
    OAuth error body. ``run_token_command`` has registered the body's secret fields already.
    """
    if outcome.json_body is None and outcome.stderr_json is None:
        return None
    # The error knowledge loads only when a command printed JSON.
    from smtpdiag.oauth.token_errors import finding_for_error_body, parse_error_body

    sources = (
        (outcome.json_body, "the token command printed the identity provider's error {}"),
        (outcome.stderr_json, "the token command wrote the identity provider's error {} to stderr"),
    )
    for body, summary in sources:
        error = None if body is None else parse_error_body(body)
        if error is not None:
            return finding_for_error_body(error, profile.provider), summary.format(error.error)
    return None


def _from_endpoint(
    oauth: OAuthSettings, grant: Grant, profile: ProviderProfile, ctx: CheckContext
) -> CheckResult:
    endpoint = oauth.token_endpoint or profile.endpoint_for(oauth.tenant)
    if endpoint is None:
        return CheckResult.unknown(
            CHECK_ID, "no token endpoint: pass --token-endpoint URL or --provider NAME"
        )
    scope = requested_scope(oauth, profile, grant)
    facts: dict[str, Any] = {
        "source": f"{grant.value} grant",
        "grant": grant.value,
        "token_endpoint": endpoint,
        "provider": profile.provider.value,
        "requested_scope": scope,
    }
    from smtpdiag.oauth.cache import cache_key  # hashlib, only for grants

    key = cache_key(
        endpoint, oauth.client_id, grant, scope, oauth.refresh_token or oauth.client_secret
    )
    cached, findings = _cached(oauth, key, ctx)
    if cached is not None:
        return _result(
            f"cached access token from {endpoint}", cached, findings, {**facts, "cached": True}, ctx
        )

    try:
        reply = post_form(
            endpoint,
            request_fields(oauth, grant, scope),
            timeout=ctx.io_timeout(),
            ca_file=oauth.token_ca_file,
        )
    except EndpointError as error:
        from smtpdiag.oauth.endpoint_failure import endpoint_failure_details

        code = "token.endpoint_tls" if error.tls else "token.endpoint_unreachable"
        facts["endpoint_failure"] = error.failure.value
        finding = _make(code, endpoint_failure_details(error, endpoint), facts)
        return CheckResult.from_findings(CHECK_ID, f"{endpoint}: {error.reason}", [finding], facts)

    obtained_at = ctx.now()
    facts.update(_reply_facts(reply.status, reply.latency_seconds, reply.date, obtained_at))
    response = token_response(reply, obtained_at)
    if response is None:
        # The error knowledge loads only when a reply needs it: most runs get a token.
        from smtpdiag.oauth.token_errors import finding_for_reply

        finding = finding_for_reply(reply, profile.provider, endpoint)
        finding = _with_facts(finding, facts)
        summary = finding.title[:1].lower() + finding.title[1:]
        return CheckResult.from_findings(CHECK_ID, summary, [finding, *findings], facts)

    token = AccessToken(
        value=response.access_token,
        source=f"{grant.value} grant at {endpoint}",
        grant=grant,
        scopes=response.scopes,
        expires_at=response.expires_at,
        claims=jwt_claims(response.access_token.reveal()),
    )
    findings += _response_findings(oauth, response, facts)
    if ctx.token_cache is not None:
        ctx.token_cache.put(key, token)
    reported = {finding.code for finding in findings}
    findings += [
        finding for finding in _store(oauth, key, token, facts) if finding.code not in reported
    ]
    return _result(f"new access token from {endpoint}", token, findings, facts, ctx)


def _cached(
    oauth: OAuthSettings, key: str, ctx: CheckContext
) -> tuple[AccessToken | None, list[Finding]]:
    """Return a fresh cached token (memory first, then the cache file) and any finding."""
    now = ctx.now()
    if ctx.token_cache is not None:
        token = ctx.token_cache.get(key, now, oauth.refresh_margin)
        if token is not None:
            return token, []
    if oauth.token_cache_file is None:
        return None, []
    from smtpdiag.oauth.cache import UnsafeCacheFileError, load_cache_file

    try:
        return load_cache_file(oauth.token_cache_file, key, now, oauth.refresh_margin), []
    except UnsafeCacheFileError as error:
        return None, [_unsafe_cache(error)]


def _store(
    oauth: OAuthSettings, key: str, token: AccessToken, facts: dict[str, Any]
) -> list[Finding]:
    if oauth.token_cache_file is None:
        return []
    from smtpdiag.oauth.cache import UnsafeCacheFileError, store_cache_file

    try:
        store_cache_file(oauth.token_cache_file, key, token)
    except UnsafeCacheFileError as error:
        return [_unsafe_cache(error)]
    except OSError as error:
        facts["token_cache_error"] = f"{oauth.token_cache_file}: {error.strerror or error}"
    return []


def _unsafe_cache(error: UnsafeCacheFileError) -> Finding:
    return _make(
        "token.cache_file_unsafe",
        {"path": error.path, "mode": f"{error.mode:04o}"},
        {"token_cache_file": error.path, "mode": f"{error.mode:04o}"},
    )


def _response_findings(
    oauth: OAuthSettings, response: TokenResponse, facts: dict[str, Any]
) -> list[Finding]:
    findings: list[Finding] = []
    if response.refresh_token is not None:
        rotated = oauth.refresh_token is None or response.refresh_token != oauth.refresh_token
        facts["refresh_token_rotated"] = rotated
        if rotated:
            stored = _write_back(oauth, response.refresh_token, facts)
            findings.append(_make("token.refresh_token_rotated", {"stored": stored}, facts))
    else:
        facts["refresh_token_rotated"] = False
    if response.expires_in is not None and response.expires_in <= oauth.refresh_margin:
        details = {"expires_in": f"{response.expires_in:g}", "margin": f"{oauth.refresh_margin:g}"}
        findings.append(_make("token.expires_soon", details, facts))
    if response.token_type is not None:
        facts["token_type"] = response.token_type
    if response.expires_in is not None:
        facts["expires_in"] = response.expires_in
    if response.scopes is not None:
        facts["scopes"] = list(response.scopes)
    return findings


def _write_back(oauth: OAuthSettings, new_token: Secret, facts: dict[str, Any]) -> str:
    """Store a rotated refresh token when asked to; return the ``stored`` sentence."""
    if not oauth.write_back_refresh_token or oauth.refresh_token_file is None:
        return (
            " smtpdiag used the stored refresh token and did not store the new one"
            " (--write-back-refresh-token does)."
        )
    from smtpdiag.oauth.write_back import write_refresh_token

    try:
        write_refresh_token(oauth.refresh_token_file, new_token)
    except OSError as error:
        facts["refresh_token_written"] = False
        return (
            f" smtpdiag could not store the new one in {oauth.refresh_token_file}: "
            f"{error.strerror or error}."
        )
    facts["refresh_token_written"] = True
    return f" smtpdiag stored the new one in {oauth.refresh_token_file}."


def _reply_facts(
    status: int, latency: float, server_date: datetime | None, obtained_at: datetime
) -> dict[str, Any]:
    facts: dict[str, Any] = {"http_status": status, "latency_seconds": round(latency, 3)}
    if server_date is not None:
        facts["server_date"] = server_date.isoformat().replace("+00:00", "Z")
        # The Date header has one-second resolution; the clock check weighs this offset.
        facts["server_date_offset_seconds"] = round((server_date - obtained_at).total_seconds(), 1)
    return facts


def _access_token(value: Secret, source: str) -> AccessToken:
    claims = jwt_claims(value.reveal())
    return AccessToken(value=value, source=source, claims=claims, expires_at=_jwt_expiry(claims))


def _jwt_expiry(claims: Mapping[str, Any] | None) -> datetime | None:
    if claims is None:
        return None
    exp = numeric_date(claims["payload"].get("exp"))
    if exp is None:
        return None
    try:
        return datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _result(
    summary: str,
    token: AccessToken,
    findings: list[Finding],
    facts: dict[str, Any],
    ctx: CheckContext,
) -> CheckResult:
    facts = {**facts, "source": facts.get("source", token.source)}
    facts["token_kind"] = "jwt" if token.claims is not None else "opaque"
    facts["token_length"] = len(token.value)
    if token.expires_at is not None:
        facts["expires_at"] = token.expires_at.isoformat(timespec="seconds").replace("+00:00", "Z")
        facts["expires_in_seconds"] = round((token.expires_at - ctx.now()).total_seconds())
    if token.scopes is not None:
        facts["scopes"] = list(token.scopes)
    if token.claims is not None:
        # Header and payload only: the signature is neither shown nor verified.
        facts["jwt"] = dict(token.claims)
    return CheckResult.from_findings(
        CHECK_ID, summary, findings, facts, outputs={ACCESS_TOKEN_OUTPUT: token}
    )


def _make(
    code: str,
    details: Mapping[str, str],
    facts: Mapping[str, Any],
    severity: Severity | None = None,
) -> Finding:
    return TOKEN_KINDS[code].make(facts=dict(facts), details=details, severity=severity)


def _with_facts(finding: Finding, facts: Mapping[str, Any]) -> Finding:
    return replace(finding, facts={**facts, **finding.facts})


SPEC = CheckSpec(
    id=CHECK_ID,
    title="OAuth2 access token",
    run=run,
    findings=TOKEN_FINDINGS,
)
