"""Turn an msmtp account into smtpdiag configuration values.

Every value passes the parser of its key in ``smtpdiag.config_values``. msmtp accepts more
than smtpdiag can use, so a value that would fail (a ``domain`` with msmtp's ``%H`` pattern,
a host name with a space) is left out rather than failing the run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from smtpdiag.config_values import KEYS
from smtpdiag.msmtprc.model import Account, MsmtpFile

logger = logging.getLogger(__name__)

SYSTEM_TRUST = "system"
"""``tls_trust_file`` value for the system's CA store, msmtp's default since 1.8.2."""

OAUTH_MECHANISMS = ("xoauth2", "oauthbearer")


def config_values(config: MsmtpFile, account: Account) -> dict[str, Any]:
    """Return the smtpdiag configuration keys that ``account`` of ``config`` determines.

    Values are typed as in TOML. The keys, each present only when the account sets it:

    - host, port (msmtp's default when unset), user
    - tls_mode: ``starttls`` or ``implicit``, absent when TLS is off
    - auth_mechanism: XOAUTH2 or OAUTHBEARER only
    - token_command: ``passwordeval``
    - ca_file: ``tls_trust_file`` unless ``system``, when the file exists
    - sni: ``tls_host_override``; ehlo_name: ``domain``
    - log_files: ``logfile`` unless ``-``, when the file exists
    - msmtp_time_format: ``logfile_time_format``
    - provider: when the host is a provider profile's SMTP host
    """
    candidates: dict[str, Any] = {
        "host": account.get("host"),
        "port": account.port or None,
        "tls_mode": _tls_mode(account),
        "user": account.get("user") or None,
        "auth_mechanism": _mechanism(account),
        "token_command": account.get("passwordeval") or None,
        "ca_file": _existing(_trust_file(account)),
        "sni": account.get("tls_host_override") or None,
        "ehlo_name": account.get("domain") or None,
        "log_files": _log_files(account),
        "msmtp_time_format": account.get("logfile_time_format") or None,
    }
    values = {}
    for key, value in candidates.items():
        if value is not None and _valid(config, account, key, value):
            values[key] = value
    provider = _provider(values.get("host"))
    if provider is not None:
        values["provider"] = provider
    return values


def _valid(config: MsmtpFile, account: Account, key: str, value: object) -> bool:
    """Return whether the key's parser accepts ``value``; log the reason when it does not."""
    try:
        KEYS[key].parse(value)
    except ValueError as error:
        logger.info(
            "%s account %s: %s %r left out: %s", config.path, account.name, key, value, error
        )
        return False
    return True


def _tls_mode(account: Account) -> str | None:
    if not account.tls:
        return None
    return "starttls" if account.starttls else "implicit"


def _mechanism(account: Account) -> str | None:
    mechanism = account.auth
    return mechanism.upper() if mechanism in OAUTH_MECHANISMS else None


def _trust_file(account: Account) -> str | None:
    value = account.get("tls_trust_file")
    if not value or value == SYSTEM_TRUST:
        return None
    return _expand_tilde(value)


def _log_files(account: Account) -> list[str] | None:
    value = account.get("logfile")
    if not value or value == "-":
        return None
    path = _existing(_expand_tilde(value))
    return [path] if path is not None else None


def _existing(path: str | None) -> str | None:
    """Return ``path`` when it names an existing regular file, else None."""
    return path if path is not None and Path(path).is_file() else None


def _expand_tilde(path: str) -> str:
    """Replace a leading ``~`` with $HOME, as msmtp's ``expand_tilde`` does for file commands
    (``~user`` is not looked up)."""
    return os.environ.get("HOME", "") + path[1:] if path.startswith("~") else path


def _provider(host: str | None) -> str | None:
    """Return the provider profile whose SMTP host is ``host``, or None."""
    if host is None:
        return None
    from smtpdiag.oauth.profiles import PROFILES

    normalised = host.rstrip(".").lower()
    for name, profile in PROFILES.items():
        if profile.smtp_host is not None and profile.smtp_host.lower() == normalised:
            return name
    return None
