"""Parse a SASL client response as pasted from a transcript and name what is wrong with it.

Text input is the base64 line that the client sent, and bytes input is the decoded response.
The parser does not raise on malformed input but returns the problems it found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smtpdiag.redact import REDACTOR
from smtpdiag.sasl.lenient_base64 import decode_lenient
from smtpdiag.sasl.mechanisms import KVSEP, Mechanism
from smtpdiag.sasl.payloads import PayloadFields, detect_mechanism, parse_payload
from smtpdiag.sasl.problems import ResponseProblem, ResponseProblemCode
from smtpdiag.sasl.tokens import TokenKind, describe_token, looks_like_token

_BEARER_MECHANISMS = (Mechanism.XOAUTH2, Mechanism.OAUTHBEARER)
_PRINTABLE_CONTROLS = frozenset("\0\x01\t\r\n")
_BEARER_WORD = re.compile(r"bearer\s+([^\s\x01]+)", re.IGNORECASE)
PASSWORD_LENGTHS = range(4, 257)
"""Lengths of a single word that is taken for a password pasted in place of base64."""
MAX_PASSWORD_LENGTH = 1024
"""Longer decoded text is not registered as a possible LOGIN password."""


@dataclass(frozen=True)
class ClientResponse:
    """Content of a client response, described without its token."""

    mechanism: Mechanism | None
    """Mechanism whose syntax the response follows, or the ``AUTH`` hint when none matches."""
    user: str | None = None
    """XOAUTH2 ``user=``, OAUTHBEARER authzid or PLAIN authcid, or None when absent."""
    host: str | None = None
    """OAUTHBEARER ``host=`` value, or None when absent."""
    port: int | None = None
    """OAUTHBEARER ``port=`` value, or None when absent or not a decimal number."""
    token_kind: TokenKind | None = None
    """Kind of the token found, or None when the response carries no token."""
    token_length: int | None = None
    """Length of the token in characters, or None when the response carries no token."""
    is_dummy: bool = False
    """The response is the empty line, ``AQ==`` or one 0x01 byte sent after an error challenge."""
    is_cancel: bool = False
    """The response is ``*``, which cancels the exchange (RFC 4954 section 4)."""
    problems: tuple[ResponseProblem, ...] = ()

    @property
    def problem_codes(self) -> tuple[ResponseProblemCode, ...]:
        """Codes of ``problems`` in order of discovery."""
        return tuple(problem.code for problem in self.problems)


def parse_client_response(text: str | bytes, mechanism: Mechanism | None = None) -> ClientResponse:
    """Parse a client response: base64 text as sent on the wire, or the decoded bytes.

    ``mechanism`` is the one named in ``AUTH``, if known. Every token or password found is
    registered with the redactor before this function returns.
    """
    if isinstance(text, bytes):
        return _from_decoded(text, mechanism, ()) or _from_unstructured(
            text.decode("utf-8", errors="replace"), mechanism, ()
        )
    return _from_text(text, mechanism)


def _from_text(text: str, hint: Mechanism | None) -> ClientResponse:
    stripped = text.strip()
    if stripped == "*":
        return ClientResponse(hint, is_cancel=True)
    # "=" is the zero-length response of RFC 4954 section 4.
    if stripped in ("", "="):
        return ClientResponse(hint, is_dummy=True)

    if _is_decoded_response(stripped):
        problem = ResponseProblem(
            ResponseProblemCode.NOT_BASE64,
            "The response is decoded SASL text, not base64, so a server rejects it, "
            "usually with 501 5.5.2.",
        )
        return _from_decoded(stripped.encode(), hint, (problem,)) or ClientResponse(
            hint, problems=(problem,)
        )

    # NOTE: missing padding and the URL-safe alphabet are accepted without a problem, because
    # no problem code names them, although a strict server rejects them with 501.
    decoding = decode_lenient(stripped)
    if decoding.data is not None:
        problems = (_whitespace_problem(stripped),) if decoding.whitespace_inside else ()
        response = _from_decoded(decoding.data, hint, problems)
        if response is not None:
            return response
        if _is_text(decoding.data):
            text = decoding.data.decode("utf-8")
            return _from_unstructured(text, hint, problems)
    return _from_undecodable(stripped, hint, decoding.problem)


def _from_decoded(
    data: bytes, hint: Mechanism | None, problems: tuple[ResponseProblem, ...]
) -> ClientResponse | None:
    """Describe a decoded response, or return None when it has no SASL structure."""
    if data in (b"", KVSEP.encode()):
        return ClientResponse(hint, is_dummy=True, problems=problems)
    fields = parse_payload(data.decode("utf-8", errors="replace"), hint)
    if fields is None:
        return None
    return _from_fields(fields, problems)


def _from_fields(fields: PayloadFields, problems: tuple[ResponseProblem, ...]) -> ClientResponse:
    description = describe_token(fields.token) if fields.token else None
    return ClientResponse(
        fields.mechanism,
        user=fields.user,
        host=fields.host,
        port=fields.port,
        token_kind=description.kind if description else None,
        token_length=description.length if description else None,
        problems=(*problems, *fields.problems),
    )


def _from_unstructured(
    text: str, hint: Mechanism | None, problems: tuple[ResponseProblem, ...]
) -> ClientResponse:
    """Describe decoded text without SASL structure: a bare token, a LOGIN step, or noise."""
    candidate = text.strip()
    if looks_like_token(candidate):
        description = describe_token(candidate)
        problem = ResponseProblem(
            ResponseProblemCode.RAW_TOKEN,
            f"The response decodes to a bare {_kind_phrase(description.kind)} of "
            f"{description.length} characters instead of an {_expected(hint)} response.",
        )
        return ClientResponse(
            hint,
            token_kind=description.kind,
            token_length=description.length,
            problems=(*problems, problem),
        )

    # A token after "Bearer" is registered even where the pairs around it are unreadable.
    for match in _BEARER_WORD.finditer(candidate):
        REDACTOR.register(match.group(1))

    # A single value here is a LOGIN user name or password, and only the name has an "@".
    if "@" not in candidate and candidate.isprintable() and len(candidate) <= MAX_PASSWORD_LENGTH:
        REDACTOR.register(candidate)
    if hint in _BEARER_MECHANISMS:
        problem = ResponseProblem(
            ResponseProblemCode.MISSING_SEPARATORS,
            f"The response decodes to text without the key-value pairs and 0x01 bytes of {hint}.",
        )
        problems = (*problems, problem)
    return ClientResponse(hint, problems=problems)


def _from_undecodable(text: str, hint: Mechanism | None, reason: str | None) -> ClientResponse:
    """Describe text that is not base64, or whose bytes are no SASL response."""
    if looks_like_token(text):
        description = describe_token(text)
        problem = ResponseProblem(
            ResponseProblemCode.RAW_TOKEN,
            f"The response is a bare {_kind_phrase(description.kind)} of "
            f"{description.length} characters, not the base64 of an {_expected(hint)} response.",
        )
        return ClientResponse(
            hint,
            token_kind=description.kind,
            token_length=description.length,
            problems=(problem,),
        )
    if _looks_like_password(text):
        REDACTOR.register(text)
        problem = ResponseProblem(
            ResponseProblemCode.RAW_TOKEN,
            f"The response is a single word that looks like a password, not the base64 of an "
            f"{_expected(hint)} response.",
        )
        return ClientResponse(hint, problems=(problem,))

    cause = reason or "it decodes to binary data that is no SASL response"
    problem = ResponseProblem(
        ResponseProblemCode.NOT_BASE64, f"The response cannot be decoded as base64: {cause}."
    )
    return ClientResponse(hint, problems=(problem,))


def _whitespace_problem(text: str) -> ResponseProblem:
    line_breaks = text.count("\n")
    if line_breaks:
        detail = (
            f"The base64 text is split over {line_breaks + 1} lines; base64(1) wraps its output "
            "at 76 columns unless run with -w 0, and SMTP needs the response on one line."
        )
    else:
        detail = "The base64 text contains spaces; SMTP needs it as one unbroken word."
    return ResponseProblem(ResponseProblemCode.WHITESPACE_IN_BASE64, detail)


def _is_decoded_response(text: str) -> bool:
    """Tell whether pasted text is a decoded response rather than base64."""
    return (
        "\0" in text
        or KVSEP in text
        or detect_mechanism(text) is not None
        or (text.startswith(("auth=", "host=", "port=")))
    )


def _is_text(data: bytes) -> bool:
    """Tell whether ``data`` is UTF-8 text without control characters other than separators."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(char.isprintable() or char in _PRINTABLE_CONTROLS for char in text)


def _looks_like_password(text: str) -> bool:
    return (
        len(text) in PASSWORD_LENGTHS
        and text.isprintable()
        and not any(char.isspace() for char in text)
    )


def _kind_phrase(kind: TokenKind) -> str:
    return "JWT" if kind is TokenKind.JWT else "opaque token"


def _expected(hint: Mechanism | None) -> str:
    return str(hint) if hint in _BEARER_MECHANISMS else "XOAUTH2 or OAUTHBEARER"
