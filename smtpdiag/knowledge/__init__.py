"""Knowledge base of the ``auth`` area: provider marks, reply codes and OAuth2 challenges.

Matching order for one AUTH exchange:

1. The provider comes from the host name, then from marks in the reply text
   (``detect_provider``); the host wins when both name one.
2. A ``334`` challenge goes to ``classify_challenge``: an empty challenge means the server
   waits for the token, and a JSON error challenge is read by its ``status`` field, in
   Google's or RFC 7628's shape. The client's next line goes to
   ``classify_challenge_response``.
3. The final reply goes to ``classify_reply``. The basic code and the enhanced code select
   the kind, so translated texts still classify. Known provider texts only refine a code,
   for example the reasons of Microsoft's 535 5.7.139. Any other 4xx or 5xx reply is
   ``auth.unclassified``.

``AUTH_FINDINGS`` lists every kind in the stable order of the findings catalog.
"""

from __future__ import annotations

from smtpdiag.knowledge.challenges import (
    classify_challenge,
    classify_challenge_response,
    details_for_challenge,
)
from smtpdiag.knowledge.kinds import AUTH_FINDINGS, DETAIL_FIELDS, KINDS_BY_CODE, placeholders
from smtpdiag.knowledge.kinds_client import no_final_reply_details
from smtpdiag.knowledge.providers import Provider, detect_provider
from smtpdiag.knowledge.replies import classify_reply, details_for_reply
from smtpdiag.knowledge.server_ids import server_id, server_timestamp

__all__ = [
    "AUTH_FINDINGS",
    "DETAIL_FIELDS",
    "KINDS_BY_CODE",
    "Provider",
    "classify_challenge",
    "classify_challenge_response",
    "classify_reply",
    "details_for_challenge",
    "details_for_reply",
    "detect_provider",
    "no_final_reply_details",
    "placeholders",
    "server_id",
    "server_timestamp",
]
