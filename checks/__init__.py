"""smtpdiag's checks: one module per check, listed in ``REGISTRY``.

``SMTPDIAG_PACKAGE`` marks this package as smtpdiag's own, so that the CLI can tell it from an
unrelated top-level package named ``checks`` earlier on ``sys.path``.
"""

from __future__ import annotations

from checks import (
    auth,
    auth_failure_rate,
    clock,
    connect,
    dns,
    msmtp_config,
    relay,
    scope,
    secrets,
    tls,
    token,
)
from smtpdiag.spec import CheckSpec

__all__ = ["REGISTRY", "SMTPDIAG_PACKAGE", "CheckSpec"]

SMTPDIAG_PACKAGE = "smtpdiag.checks"

REGISTRY: tuple[CheckSpec, ...] = (
    dns.SPEC,
    connect.SPEC,
    tls.SPEC,
    token.SPEC,
    scope.SPEC,
    auth.SPEC,
    # Last because it reads the replies and the Date header that the checks above recorded.
    clock.SPEC,
    auth_failure_rate.SPEC,
    msmtp_config.SPEC,
    relay.SPEC,
    secrets.SPEC,
)
"""Every check, in the order reports list them."""
