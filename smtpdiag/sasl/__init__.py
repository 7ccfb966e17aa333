"""Client side of the bearer-token SASL mechanisms: build responses, parse responses and challenges.

XOAUTH2 is Google's and Microsoft's mechanism, and OAUTHBEARER is RFC 7628. Parsing does not
raise on malformed input but reports what is wrong as data. Every token found in parsed input is
registered with the central redactor before the parser returns.
"""

from smtpdiag.sasl.builders import (
    dummy_response,
    encode,
    oauthbearer_response,
    plain_response,
    xoauth2_response,
)
from smtpdiag.sasl.challenges import (
    Challenge,
    ChallengeDamage,
    ChallengeShape,
    parse_challenge,
    reportable_damage,
)
from smtpdiag.sasl.mechanisms import KVSEP, Mechanism
from smtpdiag.sasl.problems import ResponseProblem, ResponseProblemCode
from smtpdiag.sasl.responses import ClientResponse, parse_client_response
from smtpdiag.sasl.tokens import TokenDescription, TokenKind, describe_token, jwt_claims

__all__ = [
    "KVSEP",
    "Challenge",
    "ChallengeDamage",
    "ChallengeShape",
    "ClientResponse",
    "Mechanism",
    "ResponseProblem",
    "ResponseProblemCode",
    "TokenDescription",
    "TokenKind",
    "describe_token",
    "dummy_response",
    "encode",
    "jwt_claims",
    "oauthbearer_response",
    "parse_challenge",
    "parse_client_response",
    "plain_response",
    "reportable_damage",
    "xoauth2_response",
]
