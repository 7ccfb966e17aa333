"""Result of decoding one pasted input (schema ``smtpdiag.decode/1``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from smtpdiag.models import Finding, Status, worst_status

DECODE_SCHEMA = "smtpdiag.decode/1"


class InputKind(StrEnum):
    """Kind of input that a pasted text was recognised as."""

    SMTP_REPLY = "smtp_reply"
    SMTP_TRANSCRIPT = "smtp_transcript"
    SASL_CLIENT_RESPONSE = "sasl_client_response"
    SASL_CHALLENGE = "sasl_challenge"
    JWT = "jwt"
    TOKEN_RESPONSE = "token_response"  # noqa: S105 (an input kind, not a secret)
    TLS_ERROR = "tls_error"
    LOG = "log"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DecodeResult:
    """Facts and findings that one input yields."""

    input_kind: InputKind
    facts: Mapping[str, Any] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()

    @property
    def status(self) -> Status:
        """Worst finding severity as a status; unknown when the input was not recognised."""
        if self.input_kind is InputKind.UNKNOWN:
            return Status.UNKNOWN
        if not self.findings:
            return Status.OK
        return worst_status(finding.severity.status for finding in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """Return the ``smtpdiag.decode/1`` JSON document."""
        return {
            "schema": DECODE_SCHEMA,
            "input_kind": self.input_kind.value,
            "facts": dict(self.facts),
            "findings": [finding.to_dict() for finding in self.findings],
        }
