"""Split a decoded SASL client response into its fields and name its syntax mistakes.

XOAUTH2: ``user=U`` 0x01 ``auth=Bearer T`` 0x01 0x01. OAUTHBEARER (RFC 7628 section 3.1): a
GS2 header such as ``n,a=U,``, 0x01, ``key=value`` pairs each ended by 0x01, and a final
0x01. PLAIN (RFC 4616): authzid 0x00 authcid 0x00 password. Every token or password found is
registered with the redactor here, before any caller can show the fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from smtpdiag.redact import REDACTOR
from smtpdiag.sasl.mechanisms import KVSEP, Mechanism
from smtpdiag.sasl.problems import ResponseProblem, ResponseProblemCode
from smtpdiag.sasl.tokens import looks_like_token

# Ways in which scripts write 0x01 literally instead of the byte: "^A" copied from the
# documentation, or an escape that echo without -e and Python raw strings leave unexpanded.
_SEPARATOR_LOOKALIKES = re.compile(r"\^A|\\x01|\\u0001|\\001|\\1")

# RFC 5801 GS2 header: optional "F," then "n", "y" or "p=<cb-name>", then the authzid part.
_GS2_HEADER = re.compile(r"(?:F,)?(?:[ny]|p=[A-Za-z0-9.\-]*),([^,\x01]*),?")
_GS2_START = re.compile(r"(?:F,)?(?:[ny],|p=)")
_PAIR_KEYS = ("user", "auth", "host", "port")
# Keys are matched without regard to case, so that "Auth=" or "USER=" still yields the token.
_FIRST_PAIR = re.compile(r"(?:auth|host|port)=", re.IGNORECASE)
# The space after the scheme name "Bearer" is never a missing separator, because a b64token
# such as "USER=" or "host=" may look like the next key (RFC 6750 section 2.1).
_SPACE_BEFORE_KEY = re.compile(r"(?<!\bbearer)\s+(?=(?:user|auth|host|port)=)", re.IGNORECASE)
_BEARER = re.compile(r"bearer\s+(\S.*)", re.IGNORECASE | re.DOTALL)
MAX_PORT_DIGITS = 5


@dataclass(frozen=True)
class PayloadFields:
    """Fields of one decoded client response, with the token kept out of ``repr``."""

    mechanism: Mechanism | None
    user: str | None = None
    host: str | None = None
    port: int | None = None
    token: str | None = field(default=None, repr=False)
    problems: tuple[ResponseProblem, ...] = ()


def detect_mechanism(text: str) -> Mechanism | None:
    """Name the mechanism whose syntax ``text`` starts with, or None."""
    if text[:5].lower() == "user=":
        return Mechanism.XOAUTH2
    if _GS2_START.match(text):
        return Mechanism.OAUTHBEARER
    if text.count("\0") == 2:
        return Mechanism.PLAIN
    return None


def parse_payload(text: str, hint: Mechanism | None) -> PayloadFields | None:
    """Parse a decoded client response, or return None when it has no SASL structure.

    ``hint`` is the mechanism named in ``AUTH``. It decides how a response that starts with
    a key-value pair is read, because such a response lacks the part that names the mechanism.
    """
    detected = detect_mechanism(text)
    if hint is Mechanism.OAUTHBEARER and detected is Mechanism.XOAUTH2:
        return _parse_oauthbearer_without_header(text)
    if detected is Mechanism.XOAUTH2:
        return _parse_xoauth2(text)
    if detected is Mechanism.OAUTHBEARER:
        return _parse_oauthbearer(text)
    if detected is Mechanism.PLAIN:
        return _parse_plain(text)
    if _FIRST_PAIR.match(text):
        if hint is Mechanism.XOAUTH2:
            return _parse_xoauth2(text)
        return _parse_oauthbearer_without_header(text)
    return None


def _parse_xoauth2(text: str) -> PayloadFields:
    problems = _terminator_problems(text, Mechanism.XOAUTH2)
    pairs, split_problems = _split_pairs(text)
    token, token_problems = _bearer_token(pairs.get("auth"))
    return PayloadFields(
        Mechanism.XOAUTH2,
        user=pairs.get("user"),
        token=token,
        problems=(*problems, *split_problems, *token_problems),
    )


def _parse_oauthbearer(text: str) -> PayloadFields:
    problems = _terminator_problems(text, Mechanism.OAUTHBEARER)
    header = _GS2_HEADER.match(text)
    if header is None:
        # A GS2 start without a complete header: read the pairs after the first 0x01.
        user, rest = None, text.partition(KVSEP)[2]
    else:
        user, header_problems = _authzid(header.group(1))
        problems = (*problems, *header_problems)
        rest = text[header.end() :]
    return _with_pairs(rest, user, problems)


def _parse_oauthbearer_without_header(text: str) -> PayloadFields:
    first_key = text.partition("=")[0]
    problem = ResponseProblem(
        ResponseProblemCode.NO_GS2_HEADER,
        f"The OAUTHBEARER response starts with '{first_key}=' instead of a GS2 header such as "
        "'n,,' or 'n,a=user@example.com,' (RFC 7628 section 3.1).",
    )
    problems = (*_terminator_problems(text, Mechanism.OAUTHBEARER), problem)
    fields = _with_pairs(text, None, problems)
    # Responses in XOAUTH2 form carry the user as "user=", which the report keeps.
    user = _split_pairs(text)[0].get("user")
    return PayloadFields(
        fields.mechanism, user, fields.host, fields.port, fields.token, fields.problems
    )


def _with_pairs(
    rest: str, user: str | None, problems: tuple[ResponseProblem, ...]
) -> PayloadFields:
    """Build OAUTHBEARER fields from the key-value pairs after the GS2 header."""
    pairs, split_problems = _split_pairs(rest)
    token, token_problems = _bearer_token(pairs.get("auth"))
    return PayloadFields(
        Mechanism.OAUTHBEARER,
        user=user,
        host=pairs.get("host"),
        port=_port(pairs.get("port")),
        token=token,
        problems=(*problems, *split_problems, *token_problems),
    )


def _parse_plain(text: str) -> PayloadFields:
    authzid, authcid, password = text.split("\0")
    REDACTOR.register(password)
    user = authcid or authzid or None
    if not looks_like_token(password):
        return PayloadFields(Mechanism.PLAIN, user=user)
    # msmtp with "auth plain" or "auth on" and an access token from passwordeval sends this.
    problem = ResponseProblem(
        ResponseProblemCode.RAW_TOKEN,
        "The PLAIN password is shaped like an OAuth access token, but servers expect the token "
        "inside an XOAUTH2 or OAUTHBEARER response.",
    )
    return PayloadFields(Mechanism.PLAIN, user=user, token=password, problems=(problem,))


def _authzid(part: str) -> tuple[str | None, tuple[ResponseProblem, ...]]:
    """Read the user from the authzid part of a GS2 header."""
    if part.startswith("a="):
        # RFC 5801 saslname escapes "," and "=" as "=2C" and "=3D".
        return part[2:].replace("=2C", ",").replace("=3D", "=") or None, ()
    if part.startswith("user="):
        # The SMTP example of RFC 7628 section 4.4 shows "n,user=...", although section 3.1
        # and RFC 5801 define "a=". Servers that follow the grammar ignore such a user.
        problem = ResponseProblem(
            ResponseProblemCode.USER_INSTEAD_OF_AUTHZID,
            "The GS2 header names the user with 'user=' where RFC 5801 defines 'a='.",
        )
        return part[5:] or None, (problem,)
    return None, ()


def _terminator_problems(text: str, mechanism: Mechanism) -> tuple[ResponseProblem, ...]:
    """Check that ``text`` uses 0x01 bytes and ends with two of them."""
    trimmed = text.rstrip("\r\n")
    detail: str | None = None
    if KVSEP not in text:
        detail = f"The {mechanism} response contains no 0x01 byte."
        if _SEPARATOR_LOOKALIKES.search(text):
            detail += " It contains '^A' or a '\\001'-style escape written as text instead."
    elif not trimmed.endswith(KVSEP * 2):
        ending = "one 0x01 byte" if trimmed.endswith(KVSEP) else "no 0x01 byte"
        detail = f"The {mechanism} response ends with {ending}; it must end with two."
    elif trimmed != text:
        detail = (
            f"A line break follows the two final 0x01 bytes of the {mechanism} response; "
            "echo adds one unless run with -n."
        )
    if detail is None:
        return ()
    return (ResponseProblem(ResponseProblemCode.MISSING_SEPARATORS, detail),)


def _split_pairs(text: str) -> tuple[dict[str, str], tuple[ResponseProblem, ...]]:
    """Split ``key=value`` pairs, also where 0x01 is missing or written as text."""
    pieces = text.split(KVSEP) if KVSEP in text else _SEPARATOR_LOOKALIKES.split(text)
    pairs: dict[str, str] = {}
    run_together = False
    for piece in pieces:
        parts = _SPACE_BEFORE_KEY.split(piece.strip("\r\n"))
        run_together = run_together or len(parts) > 1
        for part in parts:
            key, equals, value = part.partition("=")
            if equals and key.lower() in _PAIR_KEYS:
                pairs.setdefault(key.lower(), value)
    if not run_together or KVSEP not in text:
        # Without any 0x01, _terminator_problems has already reported the missing bytes.
        return pairs, ()
    problem = ResponseProblem(
        ResponseProblemCode.MISSING_SEPARATORS,
        "Two key-value pairs are separated by a space where a 0x01 byte belongs.",
    )
    return pairs, (problem,)


def _bearer_token(value: str | None) -> tuple[str | None, tuple[ResponseProblem, ...]]:
    """Return the token of an ``auth=`` value and the problem when the scheme is missing."""
    if value is None or not value.strip():
        return None, ()
    value = value.strip()
    REDACTOR.register(value)
    match = _BEARER.fullmatch(value)
    if match is not None:
        token = match.group(1).strip()
        REDACTOR.register(token)
        return token, ()

    # A value such as "ya29...." or "Bearerya29...": the scheme name or its space is missing.
    token = value[len("bearer") :] if value.lower().startswith("bearer") else value
    REDACTOR.register(token)
    problem = ResponseProblem(
        ResponseProblemCode.MISSING_BEARER,
        "The auth= value does not start with the scheme name 'Bearer' and a space "
        "(RFC 7628 section 3.1 and RFC 6750 section 2.1).",
    )
    return token or None, (problem,)


def _port(value: str | None) -> int | None:
    """Return the decimal port of a ``port=`` value, or None when it is not a number."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    if len(value) > MAX_PORT_DIGITS:
        return None
    return int(value)
