"""The lab's one mailbox, and whether a lab server lets a client in with a token.

A lab server accepts the lab access token from the token file and every access token that
the lab token endpoint issued, which the endpoint registers in ``LabAccount.issued_tokens``,
until the token expires or the endpoint revokes it in that registry.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from smtpdiag.lab.options import GOOGLE_MAIL_SCOPE, ServerOptions
from smtpdiag.secrets import Secret

logger = logging.getLogger(__name__)

AUTH_ACCEPTED = "235 2.7.0 Accepted"
PLAIN_REJECTED = "535 5.7.8 Authentication credentials invalid"

DELEGATED_SMTP_PERMISSION = "SMTP.Send"
"""Delegated permission (``scp``) that Exchange Online requires for SMTP AUTH."""
APP_SMTP_PERMISSION = "SMTP.SendAsApp"
"""Application permission (``roles``) that Exchange Online requires for app-only SMTP AUTH."""


@dataclass(frozen=True)
class IssuedToken:
    """An access token that the lab token endpoint issued."""

    token: Secret
    client_id: str
    scope: str
    """Space-separated scopes that the token grants, as the endpoint reports them."""
    issued_at: float
    """Issue time in seconds since the epoch."""
    expires_at: float
    """Expiry time in seconds since the epoch."""
    claims: Mapping[str, Any] | None = None
    """Payload of a JWT access token; None for an opaque token."""

    @property
    def user(self) -> str | None:
        """The user that the token names: ``upn``, else ``unique_name``; None for an opaque
        or app-only token."""
        if self.claims is None:
            return None
        for name in ("upn", "unique_name"):
            value = self.claims.get(name)
            if isinstance(value, str):
                return value
        return None

    def expired(self, now: float | None = None) -> bool:
        """Return whether the token has expired at ``now`` (default: the current time)."""
        return (time.time() if now is None else now) >= self.expires_at


class IssuedTokens:
    """Thread-safe registry of the access tokens that the lab token endpoint issued.

    Tokens are kept under their SHA-256 digest, so a lookup compares digests, not tokens.
    The registry also records revoked tokens, the lab account's own token among them.
    """

    def __init__(self) -> None:
        self._tokens: dict[bytes, IssuedToken] = {}
        self._revoked: set[bytes] = set()
        self._lock = threading.Lock()

    def add(self, issued: IssuedToken) -> None:
        """Register ``issued`` so that lab servers and the endpoint recognise it."""
        with self._lock:
            self._tokens[_digest(issued.token.reveal())] = issued

    def find(self, token: str) -> IssuedToken | None:
        """Return the issued token equal to ``token``, expired or not; None when unknown."""
        with self._lock:
            return self._tokens.get(_digest(token))

    def revoke(self, token: str) -> None:
        """Record ``token`` as revoked, whether or not the endpoint issued it."""
        with self._lock:
            self._revoked.add(_digest(token))

    def revoke_all(self) -> int:
        """Record every token issued so far as revoked; return how many there are."""
        with self._lock:
            self._revoked.update(self._tokens)
            return len(self._tokens)

    def revoked(self, token: str) -> bool:
        """Return whether ``token`` was revoked."""
        with self._lock:
            return _digest(token) in self._revoked

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class LabAccount:
    """The one mailbox that lab servers accept."""

    user: str
    access_token: Secret
    issued_tokens: IssuedTokens = field(default_factory=IssuedTokens, repr=False, compare=False)
    """Access tokens that the lab token endpoint issued for this mailbox, and revocations."""
    token_scope: str = GOOGLE_MAIL_SCOPE
    """Scope that introspection reports for ``access_token``, which looks like Google's."""
    token_expires_at: float | None = None
    """Expiry of ``access_token`` in seconds since the epoch; None when it never expires."""
    token_user: str | None = None
    """User whom ``access_token`` was issued to; None for ``user``."""

    @property
    def token_owner(self) -> str:
        """User whom ``access_token`` was issued to: ``token_user``, else ``user``."""
        return self.token_user or self.user

    def owns(self, token: str) -> bool:
        """Return whether ``token`` is this account's own access token."""
        return hmac.compare_digest(token.encode(), self.access_token.reveal().encode())

    def token_active(self, now: float | None = None) -> bool:
        """Return whether the account's own token is neither revoked nor expired at ``now``."""
        if self.issued_tokens.revoked(self.access_token.reveal()):
            return False
        moment = time.time() if now is None else now
        return self.token_expires_at is None or moment < self.token_expires_at

    def accepts(self, user: str | None, token: str) -> bool:
        """Return whether ``token`` is this account's active token and ``user`` names its owner.

        ``user`` is None when the client named no user (OAUTHBEARER without an authzid); the
        token alone then identifies the account.
        """
        return self.owns(token) and user in (None, self.token_owner) and self.token_active()


def token_accepted(
    options: ServerOptions, account: LabAccount, user: str | None, token: str
) -> bool:
    """Return whether a server with ``options`` lets ``user`` in with ``token``.

    The lab token from the token file is accepted until it is revoked or expires. A token
    that the lab token endpoint issued is accepted until it is revoked or expires, for the
    lab user, and with
    ``options.jwt_audiences`` set only when ``exchange_accepts`` its claims.
    """
    if options.reject_all_tokens:
        return False
    if account.accepts(user, token):
        return True
    issued = account.issued_tokens.find(token)
    if issued is None or user not in (None, account.user):
        return False
    if account.issued_tokens.revoked(token):
        logger.info("issued access token for %s was revoked", account.user)
        return False
    if issued.expired():
        logger.info("issued access token for %s has expired", account.user)
        return False
    if not options.jwt_audiences:
        return True
    return exchange_accepts(issued.claims, options.jwt_audiences, user or account.user)


def exchange_accepts(
    claims: Mapping[str, Any] | None, audiences: tuple[str, ...], user: str
) -> bool:
    """Return whether Exchange-like validation accepts a token with ``claims`` for ``user``.

    The ``aud`` claim must be one of ``audiences``. A delegated token needs ``SMTP.Send`` in
    ``scp`` and a ``upn`` (or ``unique_name``) equal to ``user``, compared without case. An
    app-only token needs ``SMTP.SendAsApp`` in ``roles`` and names no user. An opaque token
    (``claims`` None) has nothing to read and is accepted.
    """
    if claims is None:
        return True
    audience = claims.get("aud")
    if audience not in audiences:
        logger.info("JWT access token rejected: aud %r is not one of %s", audience, audiences)
        return False

    roles = claims.get("roles")
    if isinstance(roles, list) and APP_SMTP_PERMISSION in roles:
        return True
    scopes = str(claims.get("scp", "")).split()
    if DELEGATED_SMTP_PERMISSION not in scopes:
        logger.info("JWT access token rejected: scp %r lacks SMTP.Send", claims.get("scp"))
        return False

    token_user = claims.get("upn") or claims.get("unique_name")
    if not isinstance(token_user, str) or token_user.casefold() != user.casefold():
        logger.info("JWT access token rejected: upn %r is not the AUTH user %r", token_user, user)
        return False
    return True


@dataclass(frozen=True)
class PasswordAuthenticator:
    """aiosmtpd authenticator for PLAIN and LOGIN: the lab token is the password."""

    account: LabAccount
    options: ServerOptions

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False, message=PLAIN_REJECTED)
        try:
            user = auth_data.login.decode("utf-8")
            password = auth_data.password.decode("utf-8")
        except UnicodeDecodeError:
            return AuthResult(success=False, handled=False, message=PLAIN_REJECTED)
        if token_accepted(self.options, self.account, user, password):
            return AuthResult(success=True, message=AUTH_ACCEPTED, auth_data=user)
        return AuthResult(success=False, handled=False, message=PLAIN_REJECTED)
