"""The lab's one mailbox, and whether a lab server lets a client in with a token."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from smtpdiag.lab.options import ServerOptions
from smtpdiag.secrets import Secret

AUTH_ACCEPTED = "235 2.7.0 Accepted"
PLAIN_REJECTED = "535 5.7.8 Authentication credentials invalid"


@dataclass(frozen=True)
class LabAccount:
    """The one mailbox that lab servers accept."""

    user: str
    access_token: Secret

    def accepts(self, user: str | None, token: str) -> bool:
        """Return whether ``token`` is this account's and ``user`` names it.

        ``user`` is None when the client named no user (OAUTHBEARER without an authzid); the
        token alone then identifies the account.
        """
        same_token = hmac.compare_digest(token.encode(), self.access_token.reveal().encode())
        return same_token and user in (None, self.user)


def token_accepted(
    options: ServerOptions, account: LabAccount, user: str | None, token: str
) -> bool:
    """Return whether a server with ``options`` lets ``user`` in with ``token``."""
    return not options.reject_all_tokens and account.accepts(user, token)


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
