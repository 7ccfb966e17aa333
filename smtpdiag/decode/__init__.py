"""``smtpdiag decode``: explain a pasted reply, transcript, SASL blob, JWT or token response."""

from smtpdiag.decode.result import DECODE_SCHEMA, DecodeResult, InputKind

__all__ = ["DECODE_SCHEMA", "DecodeResult", "InputKind"]
