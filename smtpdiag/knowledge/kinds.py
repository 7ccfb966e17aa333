"""Every finding kind of the ``auth`` area, in the stable order of the catalog.

Titles, causes and fixes may contain the fields in ``DETAIL_FIELDS``. Callers fill them with
``details_for_reply``, ``details_for_challenge``, ``no_final_reply_details`` or a
``mechanism`` value when they make a finding, because ``FindingKind.make`` renders a field
it is not given as empty text.
"""

from __future__ import annotations

import string

from smtpdiag.knowledge.kinds_client import CHALLENGE_FINDINGS, RESPONSE_FINDINGS
from smtpdiag.knowledge.kinds_microsoft import MICROSOFT_FINDINGS
from smtpdiag.knowledge.kinds_reply import REPLY_FINDINGS
from smtpdiag.spec import FindingKind

DETAIL_FIELDS = frozenset({"reply", "mechanism", "scope", "status", "explanation", "next_step"})
"""Names of the ``{field}`` placeholders that auth kinds may use."""

AUTH_FINDINGS: tuple[FindingKind, ...] = (
    *CHALLENGE_FINDINGS,
    *RESPONSE_FINDINGS,
    *REPLY_FINDINGS,
    *MICROSOFT_FINDINGS,
)
"""All auth kinds: challenge, client response, RFC 4954 and Gmail replies, then Microsoft."""

KINDS_BY_CODE: dict[str, FindingKind] = {kind.code: kind for kind in AUTH_FINDINGS}
"""Auth kinds by their finding code."""


def placeholders(kind: FindingKind) -> frozenset[str]:
    """Return the names of the ``{field}`` placeholders in a kind's title, cause and fix."""
    names: set[str] = set()
    for template in (kind.title, kind.cause, kind.fix):
        for _literal, field_name, _spec, _conversion in string.Formatter().parse(template):
            if field_name is not None:
                names.add(field_name)
    return frozenset(names)
