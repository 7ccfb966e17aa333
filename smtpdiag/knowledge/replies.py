"""Classification of the server's final reply to AUTH (and the DATA reply that follows it).

Rules are tried in order and the first match wins. Each rule keys on the basic code, the
enhanced code (RFC 3463) or both, so that a translated or reworded reply still lands on the
right kind. Reply text only refines a code, for example to tell the 5.7.139 reasons apart.
A rule may also be limited to providers, because Microsoft reuses 5.7.3 for a failed AUTH.
A 4xx or 5xx reply that no rule matches is ``auth.unclassified``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from smtpdiag.knowledge import kinds_microsoft as microsoft
from smtpdiag.knowledge import kinds_reply as reply
from smtpdiag.knowledge.providers import Provider
from smtpdiag.knowledge.server_ids import server_id, server_timestamp
from smtpdiag.spec import FindingKind

__all__ = ["classify_reply", "details_for_reply", "server_id", "server_timestamp"]

NO_ENHANCED_CODE = ""
"""Enhanced-code value of a rule that matches replies without an enhanced code."""

REPLY_DETAIL_LIMIT = 200
"""Maximum length, in characters, of the reply shown in a title."""


@dataclass(frozen=True)
class _Rule:
    """One row of the classification table, in which an empty set matches any value."""

    kind: FindingKind
    codes: frozenset[int] = frozenset()
    enhanced: frozenset[str] = frozenset()
    text: re.Pattern[str] | None = None
    providers: frozenset[Provider] = frozenset()

    def matches(self, code: int, enhanced_code: str, text: str, provider: Provider) -> bool:
        """Return whether the reply meets every condition of this rule."""
        return (
            (not self.codes or code in self.codes)
            and (not self.enhanced or enhanced_code in self.enhanced)
            and (self.text is None or self.text.search(text) is not None)
            and (not self.providers or provider in self.providers)
        )


def _rule(
    kind: FindingKind,
    codes: Iterable[int] = (),
    enhanced: Iterable[str] = (),
    text: str | None = None,
    providers: Iterable[Provider] = (),
) -> _Rule:
    pattern = re.compile(text, re.IGNORECASE) if text is not None else None
    return _Rule(kind, frozenset(codes), frozenset(enhanced), pattern, frozenset(providers))


_RULES: tuple[_Rule, ...] = (
    # Exchange Online, after DATA: "554 5.2.252 SendAsDenied; ... not allowed to send as ...".
    _rule(microsoft.SEND_AS_DENIED, enhanced=["5.2.252"]),
    _rule(microsoft.SEND_AS_DENIED, codes=[550, 554], text=r"SendAsDenied"),
    # "421 4.7.66 TLS 1.0 and 1.1 are not supported. ... https://aka.ms/smtp_auth_tls."
    _rule(microsoft.TLS_VERSION_REFUSED, enhanced=["4.7.66"]),
    _rule(microsoft.TLS_VERSION_REFUSED, codes=[421], text=r"TLS 1\.0 and 1\.1"),
    # 535 5.7.139 reasons as Exchange Online words them; the last rule takes any other text.
    _rule(
        microsoft.SMTP_AUTH_DISABLED_TENANT,
        enhanced=["5.7.139"],
        text=r"SmtpClientAuthentication is disabled for the Tenant",
    ),
    _rule(
        microsoft.SMTP_AUTH_DISABLED_MAILBOX,
        enhanced=["5.7.139"],
        text=r"SmtpClientAuthentication is disabled for the Mailbox",
    ),
    _rule(microsoft.SECURITY_DEFAULTS, enhanced=["5.7.139"], text=r"security defaults"),
    _rule(microsoft.CONDITIONAL_ACCESS, enhanced=["5.7.139"], text=r"did not meet the criteria"),
    _rule(microsoft.BASIC_AUTH_DISABLED, enhanced=["5.7.139"], text=r"basic auth\w* is disabled"),
    _rule(reply.CREDENTIALS_REJECTED, enhanced=["5.7.139"], text=r"credentials were incorrect"),
    _rule(microsoft.MICROSOFT_AUTH_FAILED, enhanced=["5.7.139"]),
    # "550 5.7.30 Basic authentication is not supported for Client Submission"; 5.7.30 is
    # registered as "REQUIRETLS support required", so other servers keep their meaning.
    _rule(microsoft.BASIC_AUTH_DISABLED, enhanced=["5.7.30"], text=r"basic auth"),
    _rule(microsoft.BASIC_AUTH_DISABLED, enhanced=["5.7.30"], providers=[Provider.MICROSOFT]),
    # "535 5.7.3 Authentication unsuccessful [server id]": Exchange Online reuses 5.7.3
    # ("security conversion required but not possible"); other providers fall through to 535.
    _rule(
        microsoft.EXCHANGE_REFUSED,
        codes=[535],
        enhanced=["5.7.3"],
        providers=[Provider.MICROSOFT, Provider.GENERIC],
    ),
    _rule(microsoft.CLIENT_NOT_AUTHENTICATED, enhanced=["5.7.57"]),
    _rule(microsoft.INVALID_XOAUTH2_DATA, enhanced=["5.5.124"]),
    _rule(microsoft.TOKEN_EXPIRES_SOON, enhanced=["5.5.127"]),
    _rule(microsoft.TOKEN_EXPIRES_SOON, codes=[501], text=r"token will expire soon"),
    # Yandex: "530 5.7.7 Email sending without SSL/TLS encryption is not allowed."
    _rule(reply.TLS_REQUIRED, codes=[530], enhanced=["5.7.7"]),
    # Gmail and Postfix: "530 5.7.0 Must issue a STARTTLS command first"; Exchange Online:
    # "451 5.7.3 STARTTLS is required to send mail".
    _rule(reply.STARTTLS_REQUIRED, codes=[530, 451], text=r"STARTTLS"),
    _rule(reply.AUTHENTICATION_REQUIRED, codes=[530]),
    # Gmail: "534 5.7.9 Application-specific password required"; Mail.ru: "535 5.7.0 NEOBHODIM
    # parol prilozheniya ... / Application password is REQUIRED".
    _rule(
        reply.APP_PASSWORD_REQUIRED,
        codes=[534, 535],
        text=r"application[- ]specific password|application password|parol prilozheniya",
    ),
    _rule(reply.APP_PASSWORD_REQUIRED, codes=[534], enhanced=["5.7.9", NO_ENHANCED_CODE]),
    # RFC 4954: 500 5.5.6 for an over-long line; Dovecot "500 5.5.2 Line too long", Gmail
    # "555 5.5.2 Syntax error, command line too long".
    _rule(reply.LINE_TOO_LONG, codes=[500, 555], text=r"too long"),
    _rule(reply.LINE_TOO_LONG, codes=[500], enhanced=["5.5.6"]),
    # Gmail "501 5.5.2 Cannot Decode response"; Exim "501 Invalid base64 data".
    _rule(reply.CANNOT_DECODE, codes=[501], enhanced=["5.5.2"]),
    _rule(reply.CANNOT_DECODE, codes=[501], text=r"cannot decode|base64"),
    _rule(reply.MECHANISM_UNSUPPORTED, codes=[504]),
    _rule(reply.TEMPORARY_FAILURE, codes=[454]),
    _rule(reply.LOCAL_ERROR, codes=[451]),
    _rule(reply.ENCRYPTION_REQUIRED, codes=[538]),
    _rule(reply.ENCRYPTION_REQUIRED, enhanced=["5.7.11"]),
    # RFC 4954: 535 5.7.8 is the default failure; Gmail sends 5.7.8 (older docs 5.7.1).
    _rule(reply.CREDENTIALS_REJECTED, codes=[535]),
)


def classify_reply(
    code: int, enhanced_code: str | None, text: str, provider: Provider
) -> FindingKind | None:
    """Return the finding kind for a server reply during AUTH, or None when it needs none.

    ``text`` is the reply text with its lines joined, as ``Reply.text`` gives it. Positive
    replies other than 235 return None, and so does 334 because challenges are classified
    by ``classify_challenge``.
    """
    if code == 235:
        return reply.ACCEPTED
    if code < 400:
        return None

    enhanced = (enhanced_code or NO_ENHANCED_CODE).strip()
    for rule in _RULES:
        if rule.matches(code, enhanced, text, provider):
            return rule.kind

    if code < 500:
        return reply.UNCLASSIFIED_TEMPORARY
    return reply.UNCLASSIFIED


def details_for_reply(code: int, enhanced_code: str | None, text: str) -> dict[str, str]:
    """Return the ``{reply}`` field for a kind's title: the reply on one shortened line."""
    words = " ".join(text.split())
    if enhanced_code and not words.startswith(enhanced_code):
        words = f"{enhanced_code} {words}"
    line = f"{code} {words}".rstrip()
    if len(line) > REPLY_DETAIL_LIMIT:
        line = line[: REPLY_DETAIL_LIMIT - 1].rstrip() + "…"
    return {"reply": line}
