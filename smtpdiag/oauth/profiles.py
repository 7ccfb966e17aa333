"""Provider profiles: what each provider's SMTP submission service expects from an OAuth2 client.

A profile supplies defaults (``--provider NAME``): the SMTP host and port, the token endpoint,
the scope to request, and what a correct access token contains. Values given on the command
line, in the environment or in the configuration file override them.

Sources: the providers' SMTP and OAuth2 documentation and Thunderbird's OAuth2 provider list;
``docs/providers.md`` lists what each value rests on.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from smtpdiag.knowledge.providers import Provider

MICROSOFT_TENANT_ALIASES = ("organizations", "common", "consumers")
"""Tenant path segments that are not a tenant id: work or school accounts only, any account,
personal Microsoft accounts only."""

EXCHANGE_AUDIENCES = (
    "https://outlook.office.com",
    "https://outlook.office365.com",
    "00000002-0000-0ff1-ce00-000000000000",
)
"""``aud`` values of access tokens for Exchange Online: its two resource URIs and its
application id."""

GRAPH_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
"""``aud`` values of Microsoft Graph tokens, which Exchange's SMTP service refuses."""


@dataclass(frozen=True)
class ProviderProfile:
    """Requirements of one provider's SMTP submission service."""

    provider: Provider
    smtp_host: str | None
    """Submission host, or None when the provider has none of its own (generic)."""
    smtp_port: int | None
    """Default submission port: 587 for STARTTLS, 465 for implicit TLS."""
    other_ports: tuple[int, ...]
    """Other submission ports the provider documents."""
    token_endpoint: str | None
    """Token endpoint URL; ``{tenant}`` stands for the Microsoft tenant."""
    scope: str | None
    """Scope to request in the refresh-token grant (delegated access)."""
    app_scope: str | None
    """Scope to request in the client-credentials grant (app-only access), if supported."""
    required_scopes: tuple[str, ...]
    """Scopes of which a delegated token must carry at least one, as the token response's
    ``scope`` or a JWT's ``scp`` lists them."""
    required_roles: tuple[str, ...]
    """Application roles of which an app-only token must carry at least one (``roles``)."""
    audiences: tuple[str, ...]
    """Accepted ``aud`` values of a JWT access token; empty when tokens are opaque."""
    wrong_audiences: tuple[str, ...]
    """``aud`` values of tokens for another API of the same provider, refused by SMTP."""
    jwt_access_tokens: bool
    """Whether access tokens are usually JWTs whose claims can be read."""
    tokeninfo_endpoint: str | None
    """Endpoint that describes an opaque access token (``--introspect``), or None."""
    refresh_token_lifetime: str
    """Known limits of a refresh token's life, in words."""
    default_tenant: str | None = None
    """Tenant used in the token endpoint when none is configured."""

    def endpoint_for(self, tenant: str | None) -> str | None:
        """Return the token endpoint with ``tenant`` (or the default tenant) filled in."""
        if self.token_endpoint is None:
            return None
        return self.token_endpoint.replace("{tenant}", tenant or self.default_tenant or "common")


PROFILES: MappingProxyType[str, ProviderProfile] = MappingProxyType(
    {
        "google": ProviderProfile(
            provider=Provider.GOOGLE,
            smtp_host="smtp.gmail.com",
            smtp_port=587,
            other_ports=(465,),
            token_endpoint="https://oauth2.googleapis.com/token",
            scope="https://mail.google.com/",
            app_scope=None,
            required_scopes=("https://mail.google.com/",),
            required_roles=(),
            audiences=(),
            wrong_audiences=(),
            jwt_access_tokens=False,
            tokeninfo_endpoint="https://oauth2.googleapis.com/tokeninfo",
            refresh_token_lifetime=(
                "7 days for an External app in Testing status; otherwise until revoked, "
                "unused for 6 months, the password changes, or more than 100 newer refresh "
                "tokens exist for the same account and client"
            ),
        ),
        "microsoft": ProviderProfile(
            provider=Provider.MICROSOFT,
            smtp_host="smtp.office365.com",
            smtp_port=587,
            other_ports=(),
            token_endpoint="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
            scope="https://outlook.office.com/SMTP.Send offline_access",
            app_scope="https://outlook.office365.com/.default",
            required_scopes=("SMTP.Send",),
            required_roles=("SMTP.SendAsApp",),
            audiences=EXCHANGE_AUDIENCES,
            wrong_audiences=GRAPH_AUDIENCES,
            # NOTE: tokens for personal Outlook.com accounts (smtp-mail.outlook.com) are
            # reported to be opaque; that host has no profile of its own.
            jwt_access_tokens=True,
            tokeninfo_endpoint=None,
            refresh_token_lifetime=(
                "90 days without use (AADSTS700082); every refresh returns a new refresh "
                "token that the client should store"
            ),
            default_tenant="common",
        ),
        "yandex": ProviderProfile(
            provider=Provider.YANDEX,
            smtp_host="smtp.yandex.ru",
            smtp_port=465,
            other_ports=(587,),
            token_endpoint="https://oauth.yandex.ru/token",
            scope="mail:smtp",
            app_scope=None,
            required_scopes=("mail:smtp",),
            required_roles=(),
            audiences=(),
            wrong_audiences=(),
            jwt_access_tokens=False,
            tokeninfo_endpoint=None,
            refresh_token_lifetime=(
                "not published; all tokens are revoked when the password changes, two-factor "
                "authentication is switched, or the app's rights change"
            ),
        ),
        "mailru": ProviderProfile(
            provider=Provider.MAILRU,
            smtp_host="smtp.mail.ru",
            smtp_port=465,
            other_ports=(),
            token_endpoint="https://o2.mail.ru/token",
            scope="mail.imap",
            app_scope=None,
            required_scopes=("mail.imap",),
            required_roles=(),
            audiences=(),
            wrong_audiences=(),
            jwt_access_tokens=False,
            tokeninfo_endpoint=None,
            refresh_token_lifetime="not published",
        ),
        # NOTE: AOL (smtp.aol.com:587, https://api.login.aol.com/oauth2/get_token) shares
        # Yahoo's scope and is detected as yahoo from its host, but has no profile of its own:
        # --provider yahoo sends AOL users to Yahoo's endpoint unless --token-endpoint is set.
        "yahoo": ProviderProfile(
            provider=Provider.YAHOO,
            smtp_host="smtp.mail.yahoo.com",
            smtp_port=465,
            other_ports=(),
            token_endpoint="https://api.login.yahoo.com/oauth2/get_token",
            scope="mail-w",
            app_scope=None,
            required_scopes=("mail-w",),
            required_roles=(),
            audiences=(),
            wrong_audiences=(),
            jwt_access_tokens=False,
            tokeninfo_endpoint=None,
            refresh_token_lifetime="not published",
        ),
        "generic": ProviderProfile(
            provider=Provider.GENERIC,
            smtp_host=None,
            smtp_port=None,
            other_ports=(),
            token_endpoint=None,
            scope=None,
            app_scope=None,
            required_scopes=(),
            required_roles=(),
            audiences=(),
            wrong_audiences=(),
            jwt_access_tokens=False,
            tokeninfo_endpoint=None,
            refresh_token_lifetime="set by the identity provider",
        ),
    }
)
"""Profiles by the name given to ``--provider``."""


def get_profile(name: str | None) -> ProviderProfile:
    """Return the profile called ``name``, or the generic one for None."""
    return PROFILES[name or "generic"]
