"""Build the client responses of XOAUTH2, OAUTHBEARER and PLAIN, and the dummy reply line.

The builders register each token and password with the redactor, so that a transcript that
contains the response is masked even when the caller passed a plain string.
"""

from __future__ import annotations

import base64

from smtpdiag.redact import REDACTOR
from smtpdiag.sasl.mechanisms import KVSEP, Mechanism

MAX_PORT = 65535


def xoauth2_response(user: str, token: str) -> bytes:
    """Build the XOAUTH2 response ``user=U`` 0x01 ``auth=Bearer T`` 0x01 0x01."""
    _check_value("user", user)
    _check_token(token)
    REDACTOR.register(token)
    return f"user={user}{KVSEP}auth=Bearer {token}{KVSEP}{KVSEP}".encode()


def oauthbearer_response(
    user: str | None, token: str, host: str | None = None, port: int | None = None
) -> bytes:
    """Build the OAUTHBEARER response of RFC 7628 section 3.1.

    The GS2 header is ``n,a=U,`` (or ``n,,`` without a user), followed by 0x01, the optional
    ``host`` and ``port`` pairs, the ``auth`` pair and a final 0x01.
    """
    _check_token(token)
    REDACTOR.register(token)

    pairs: list[str] = []
    if host is not None:
        _check_value("host", host)
        pairs.append(f"host={host}")
    if port is not None:
        if not 0 < port <= MAX_PORT:
            raise ValueError(f"port {port} is outside 1..{MAX_PORT}")
        # str() of an int has no leading zeros, as section 3.1 requires.
        pairs.append(f"port={port}")
    pairs.append(f"auth=Bearer {token}")

    body = "".join(pair + KVSEP for pair in pairs)
    return f"{_gs2_header(user)}{KVSEP}{body}{KVSEP}".encode()


def plain_response(user: str, password: str) -> bytes:
    """Build the PLAIN response ``0x00 user 0x00 password`` with an empty authzid (RFC 4616)."""
    for name, value in (("user", user), ("password", password)):
        if "\0" in value:
            raise ValueError(f"the {name} contains a NUL byte, which PLAIN uses as separator")
    REDACTOR.register(password)
    return f"\0{user}\0{password}".encode()


def encode(raw: bytes) -> str:
    """Encode a client response as one line of standard base64, as SMTP AUTH sends it."""
    return base64.b64encode(raw).decode("ascii")


def dummy_response(mechanism: Mechanism) -> str:
    """Return the line a client sends after an error challenge so that the server can fail.

    XOAUTH2 clients send an empty line (Gmail's documented flow, and msmtp). OAUTHBEARER
    clients send one 0x01 byte, ``AQ==`` in base64 (RFC 7628 section 3.2.3).
    """
    if mechanism is Mechanism.XOAUTH2:
        return ""
    if mechanism is Mechanism.OAUTHBEARER:
        return encode(KVSEP.encode())
    raise ValueError(f"{mechanism} has no error challenge; cancel an exchange with '*'")


def _gs2_header(user: str | None) -> str:
    """Return the GS2 header without channel binding, with ``user`` as authzid (RFC 5801)."""
    if user is None:
        return "n,,"
    _check_value("user", user)
    if not user:
        raise ValueError("the user is empty; pass None to send no authzid")
    # RFC 5801 saslname: "," and "=" are escaped as "=2C" and "=3D".
    escaped = user.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={escaped},"


def _check_value(name: str, value: str) -> None:
    """Raise ValueError when ``value`` contains the 0x01 separator."""
    if KVSEP in value:
        raise ValueError(f"the {name} {value!r} contains the 0x01 separator byte")


def _check_token(token: str) -> None:
    """Raise ValueError when ``token`` cannot follow ``Bearer `` (RFC 6750 b64token).

    The message never contains the token.
    """
    if not token:
        raise ValueError("the token is empty")
    if any(char.isspace() or not char.isprintable() for char in token):
        raise ValueError(
            f"the token ({len(token)} characters) contains whitespace or a control character"
        )
