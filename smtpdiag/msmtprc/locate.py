"""Find the msmtp configuration file and choose the account in it.

msmtp 1.8.23 (``msmtp --version`` lists the file names it uses) reads the system file
/etc/msmtprc and then one user file: ~/.msmtprc when it exists, else
$XDG_CONFIG_HOME/msmtp/config; accounts of the user file replace those of the same name in
the system file. ``find_msmtprc`` differs in two ways: it picks one file, the first that
exists of the user files and then /etc/msmtprc, and it treats an empty XDG_CONFIG_HOME as
unset (msmtp 1.8.23 then looks for /msmtp/config).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from pathlib import Path

from smtpdiag.errors import UsageError
from smtpdiag.msmtprc.model import DEFAULT_ACCOUNT, Account, MsmtpFile, shown_name

SYSTEM_MSMTPRC = "/etc/msmtprc"
"""msmtp's system configuration file on Debian and most Linux builds."""


def candidate_paths(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Return the msmtprc paths ``find_msmtprc`` tries, in order."""
    home = environ.get("HOME") or _passwd_home()
    config_home = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return (
        os.path.join(home, ".msmtprc"),
        os.path.join(config_home, "msmtp", "config"),
        SYSTEM_MSMTPRC,
    )


def _passwd_home() -> str:
    """Return the home directory of the current user from the password database, as msmtp
    does when HOME is unset."""
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return "/"


def find_msmtprc(environ: Mapping[str, str]) -> str:
    """Return the first existing msmtp configuration file, for ``msmtprc = auto``.

    A path that exists but is neither a directory nor a regular file is returned too, so that
    reading it shows what is wrong with it. Raises UsageError naming every path tried when none
    exists.
    """
    paths = candidate_paths(environ)
    for path in paths:
        try:
            os.lstat(path)
        except FileNotFoundError:
            continue
        except OSError as error:
            raise UsageError(
                f"Cannot look for the msmtp configuration file {path}: {error.strerror}.",
                "Run smtpdiag as the user whose msmtp configuration it is, or pass --msmtprc PATH.",
                value=path,
            ) from None
        if Path(path).is_dir():
            continue
        # Whatever else is there (a FIFO, a dangling link), reading it reports precisely what
        # is wrong with it.
        return path
    raise UsageError(
        f"No msmtp configuration file found (tried {', '.join(paths)}).",
        "Pass --msmtprc PATH with the file msmtp uses, or drop --msmtprc auto.",
        value="auto",
    )


def select_account(config: MsmtpFile, name: str | None) -> tuple[Account, bool]:
    """Return the account ``name``, or msmtp's ``default`` account when ``name`` is None.

    Without a ``default`` account, a file with exactly one account yields that one, and the
    returned flag is True: msmtp itself, run without ``-a``, would fail. Raises UsageError
    listing the accounts otherwise.
    """
    requested = DEFAULT_ACCOUNT if name is None else name
    account = config.account(requested)
    if account is not None:
        return account, False
    only = config.accounts[0] if len(config.accounts) == 1 else None
    if name is None and only is not None and shown_name(only.name) == only.name:
        return only, True
    names = ", ".join(shown_name(account) for account in config.account_names) or "none"
    if name is None:
        problem = f"{config.path} has no default account (accounts: {names})."
    else:
        problem = f"{config.path} has no account named {shown_name(name)!r} (accounts: {names})."
    raise UsageError(
        problem,
        "Pass --account NAME with one of those names, or add 'account default : NAME' to the file.",
        value=requested,
    )
