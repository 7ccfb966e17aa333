"""Prometheus exporter for smtpdiag results.

``SMTPDIAG_PACKAGE`` marks this package as smtpdiag's own, so that the CLI can tell it from an
unrelated top-level package named ``exporters`` earlier on ``sys.path``.
"""

SMTPDIAG_PACKAGE = "smtpdiag.exporters"
