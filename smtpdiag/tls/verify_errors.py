"""Names of the OpenSSL certificate verification error codes that servers commonly cause.

The codes are OpenSSL's ``X509_V_ERR_*`` values (``include/openssl/x509_vfy.h``), stable since
OpenSSL 1.0; the messages are the ones ``openssl s_client`` prints as ``verify error:``.
"""

from __future__ import annotations

UNABLE_TO_GET_ISSUER_CERT = 2
CERT_NOT_YET_VALID = 9
CERT_HAS_EXPIRED = 10
DEPTH_ZERO_SELF_SIGNED_CERT = 18
SELF_SIGNED_CERT_IN_CHAIN = 19
UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21

MISSING_ISSUER_CODES = frozenset(
    {UNABLE_TO_GET_ISSUER_CERT, UNABLE_TO_GET_ISSUER_CERT_LOCALLY, UNABLE_TO_VERIFY_LEAF_SIGNATURE}
)
"""Codes OpenSSL reports when it finds no issuer for a certificate in the chain or the store."""

DATE_CODES = frozenset({CERT_NOT_YET_VALID, CERT_HAS_EXPIRED})
"""Codes about a certificate's validity window; the leaf's dates are judged by the clock."""

_MESSAGES = {
    UNABLE_TO_GET_ISSUER_CERT: "unable to get issuer certificate",
    4: "unable to decrypt certificate's signature",
    7: "certificate signature failure",
    CERT_NOT_YET_VALID: "certificate is not yet valid",
    CERT_HAS_EXPIRED: "certificate has expired",
    DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed certificate",
    SELF_SIGNED_CERT_IN_CHAIN: "self-signed certificate in certificate chain",
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "unable to get local issuer certificate",
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: "unable to verify the first certificate",
    23: "certificate revoked",
    24: "invalid CA certificate",
    25: "path length constraint exceeded",
    26: "unsupported certificate purpose",
    27: "certificate not trusted",
    28: "certificate rejected",
    62: "hostname mismatch",
}


def verify_error_message(code: int) -> str:
    """Return OpenSSL's message for verification error ``code``, or a generic one."""
    return _MESSAGES.get(code, f"certificate verification error {code}")
