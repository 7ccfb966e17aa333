"""Problems that a SASL client response can have, named for the ``auth.response_*`` findings."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ResponseProblemCode(StrEnum):
    """Kind of mistake in a client response, reported as finding ``auth.response_<value>``."""

    MISSING_SEPARATORS = "missing_separators"
    """A 0x01 byte is missing where the mechanism requires one, often the second final one."""
    MISSING_BEARER = "missing_bearer"
    """The ``auth=`` value lacks the ``Bearer`` scheme name before the token."""
    RAW_TOKEN = "raw_token"  # noqa: S105 (a problem code, not a password)
    """A bare token or password was sent where a SASL response belongs."""
    NO_GS2_HEADER = "no_gs2_header"
    """An OAUTHBEARER response does not start with a GS2 header such as ``n,,``."""
    USER_INSTEAD_OF_AUTHZID = "user_instead_of_authzid"
    """The GS2 header carries ``user=`` where RFC 5801 defines ``a=``."""
    WHITESPACE_IN_BASE64 = "whitespace_in_base64"
    """Spaces or line breaks inside the base64 text."""
    NOT_BASE64 = "not_base64"
    """The text cannot be decoded as base64 at all."""


@dataclass(frozen=True)
class ResponseProblem:
    """One mistake found in a client response; ``detail`` never contains the token."""

    code: ResponseProblemCode
    detail: str
    """One plain sentence about this input, e.g. where the missing byte belongs."""
