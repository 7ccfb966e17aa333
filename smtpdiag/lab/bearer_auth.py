"""Server side of the bearer-token SASL mechanisms: parse client responses, build error challenges.

XOAUTH2 (Google, Microsoft): ``user=<user>`` 0x01 ``auth=Bearer <token>`` 0x01 0x01.
OAUTHBEARER (RFC 7628 section 3.1): a GS2 header such as ``n,a=<user>,``, then 0x01, then
``key=value`` pairs each ended by 0x01, then a final 0x01. ``auth`` is required; ``host``,
``port`` and unknown keys are allowed and ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from smtpdiag.lab.options import ErrorChallenge

KVSEP = "\x01"
"""Separator of the key-value pairs in both mechanisms."""


class MalformedResponseError(ValueError):
    """A client response does not follow the mechanism's syntax.

    The message names the syntax problem only, never the token.
    """


@dataclass(frozen=True)
class BearerResponse:
    """The identity and token that a client sent."""

    user: str | None
    """Requested user: XOAUTH2 ``user=``, OAUTHBEARER authzid ``a=``; None when absent."""
    token: str = field(repr=False)


def parse_xoauth2(payload: bytes) -> BearerResponse:
    """Parse a decoded XOAUTH2 client response."""
    text = _decode(payload, "XOAUTH2")
    if not text.endswith(KVSEP * 2):
        raise MalformedResponseError("XOAUTH2 response does not end with two 0x01 bytes")
    pairs = _parse_pairs(text[:-2].split(KVSEP), "XOAUTH2")
    if "user" not in pairs:
        raise MalformedResponseError("XOAUTH2 response has no user= field")
    return BearerResponse(pairs["user"], _bearer_token(pairs, "XOAUTH2"))


def parse_oauthbearer(payload: bytes) -> BearerResponse:
    """Parse a decoded OAUTHBEARER client response (RFC 7628 section 3.1)."""
    text = _decode(payload, "OAUTHBEARER")
    header, separator, rest = text.partition(KVSEP)
    if not separator or not rest.endswith(KVSEP):
        raise MalformedResponseError("OAUTHBEARER response is not GS2 header, pairs and 0x01")
    user = _parse_gs2_header(header)

    # ``rest`` is *(key=value 0x01) followed by the final 0x01.
    body = rest[:-1]
    if body and not body.endswith(KVSEP):
        raise MalformedResponseError("OAUTHBEARER key-value pair is not ended by 0x01")
    pairs = _parse_pairs(body[:-1].split(KVSEP) if body else [], "OAUTHBEARER")
    return BearerResponse(user, _bearer_token(pairs, "OAUTHBEARER"))


def _decode(payload: bytes, mechanism: str) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedResponseError(f"{mechanism} response is not UTF-8") from None


def _parse_gs2_header(header: str) -> str | None:
    """Return the authzid of an RFC 5801 GS2 header, or None when it has none."""
    parts = header.split(",")
    if len(parts) != 3 or parts[2] != "" or parts[0] not in ("n", "y"):
        raise MalformedResponseError("OAUTHBEARER GS2 header is not 'n,[a=user],' or 'y,[a=user],'")
    authzid = parts[1]
    if not authzid:
        return None
    if not authzid.startswith("a="):
        raise MalformedResponseError("OAUTHBEARER GS2 authzid does not start with a=")
    # RFC 5801 section 4: "," and "=" in the authzid are sent as =2C and =3D.
    return authzid[2:].replace("=2C", ",").replace("=3D", "=")


def _parse_pairs(items: list[str], mechanism: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise MalformedResponseError(f"{mechanism} field is not key=value")
        pairs[key] = value
    return pairs


def _bearer_token(pairs: dict[str, str], mechanism: str) -> str:
    if "auth" not in pairs:
        raise MalformedResponseError(f"{mechanism} response has no auth= field")
    scheme, _, token = pairs["auth"].partition(" ")
    # RFC 7628 section 3.1: the scheme name is case-insensitive.
    if scheme.lower() != "bearer" or not token:
        raise MalformedResponseError(f"{mechanism} auth= field is not 'Bearer <token>'")
    return token


# Fields of each challenge shape that come before "scope". Google's XOAUTH2 documentation
# shows "401" with "bearer"; Gmail sends "400" with "Bearer" for a token without the mail
# scope. RFC 7628 section 3.2.2 defines status, scope and openid-configuration; "schemes"
# appears only in the SMTP example of its section 4.4, so the RFC shape leaves it out.
_CHALLENGE_FIELDS = {
    ErrorChallenge.GOOGLE_401: {"status": "401", "schemes": "bearer"},
    ErrorChallenge.GOOGLE_400: {"status": "400", "schemes": "Bearer"},
    ErrorChallenge.RFC7628: {"status": "invalid_token"},
}


def error_challenge(shape: ErrorChallenge, mechanism: str, scope: str) -> bytes | None:
    """Return the JSON error challenge of ``shape`` for a token rejected in ``mechanism``.

    Returns None for ``ErrorChallenge.NONE``. The server sends the JSON base64-encoded in a
    ``334``.
    """
    if shape is ErrorChallenge.BY_MECHANISM:
        shape = ErrorChallenge.GOOGLE_401 if mechanism == "XOAUTH2" else ErrorChallenge.RFC7628
    if shape is ErrorChallenge.NONE:
        return None
    document = {**_CHALLENGE_FIELDS[shape], "scope": scope}
    return json.dumps(document, separators=(",", ":")).encode()
