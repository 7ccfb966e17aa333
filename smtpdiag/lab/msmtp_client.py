"""Send mail through a running lab with the real msmtp binary, so its log lines are real.

msmtp writes one log record per message; the demo and the tests feed those records to the
log parsers. The configuration file uses ``auth xoauth2`` and a ``passwordeval`` that prints
the token file, the usual OAuth2 setup of msmtp. The relay scenarios run that ``passwordeval``
through a token script, as sites do. The deployment chain's ``passwordeval`` runs a token
command that gets its access token from the lab token endpoint with the refresh-token grant
and caches it, as sites' OAuth2 helper scripts do.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # The runner writes msmtp configurations with this module, so the import runs only for
    # type checking.
    from smtpdiag.lab.runner import LabInfo

SEND_TIMEOUT_SECONDS = 30.0
"""Limit for one msmtp run; the lab replies within milliseconds."""

TEST_MESSAGE = "Subject: smtpdiag lab\r\n\r\nTest message sent through the smtpdiag lab.\r\n"


def find_msmtp() -> str | None:
    """Return the path of the msmtp binary, or None when it is not installed."""
    return shutil.which("msmtp")


def write_msmtprc(
    directory: Path,
    info: LabInfo,
    *,
    token_file: Path | None = None,
    logfile: Path | None = None,
    time_format: str | None = None,
    name: str = "msmtprc",
    password_command: str | None = None,
) -> Path:
    """Write an msmtp configuration for the lab's STARTTLS server and return its path.

    ``token_file`` defaults to the lab's access token; ``logfile`` to ``msmtp.log`` in
    ``directory``; ``time_format`` sets ``logfile_time_format`` (msmtp's default when None).
    ``password_command`` is the ``passwordeval`` command, ``cat`` of the token file when None.
    """
    if password_command is None:
        password_command = f"cat {token_file or info.access_token_file}"
    return write_server_msmtprc(
        directory / name,
        server=info.smtp_starttls,
        user=info.user,
        ca_file=info.ca_file,
        logfile=logfile or directory / "msmtp.log",
        password_command=password_command,
        time_format=time_format,
    )


def write_server_msmtprc(
    path: Path,
    *,
    server: str,
    user: str,
    ca_file: Path,
    logfile: Path,
    password_command: str,
    time_format: str | None = None,
) -> Path:
    """Write an msmtp configuration of mode 0600 for a STARTTLS server and return ``path``.

    ``server`` is ``HOST:PORT``. The account ``lab`` uses ``auth xoauth2``, trusts only
    ``ca_file`` and gets its token from the ``passwordeval`` command ``password_command``.
    """
    host, port = server.rsplit(":", 1)
    lines = [
        "defaults",
        "tls on",
        "tls_starttls on",
        f"tls_trust_file {ca_file}",
        # msmtp has no timeout by default. The lab replies within milliseconds.
        "timeout 30",
        f"logfile {logfile}",
    ]
    if time_format is not None:
        lines.append(f"logfile_time_format {time_format}")
    lines += [
        "account lab",
        f"host {host}",
        f"port {port}",
        "auth xoauth2",
        f"user {user}",
        f"from {user}",
        f"passwordeval {password_command}",
        "account default : lab",
    ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)  # msmtp refuses a configuration file that others can read
    return path


def write_token_script(path: Path, token_file: Path) -> Path:
    """Write a shell script of mode 0700 that prints ``token_file``, and return ``path``.

    It takes the place of the script that a site's ``passwordeval`` runs to get a fresh
    access token.
    """
    lines = [
        "#!/bin/sh",
        "# Print the lab access token for msmtp's passwordeval.",
        f"exec cat {shlex.quote(str(token_file))}",
    ]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")
    return path


def send(
    config: Path, msmtp: str, recipient: str = "rcpt@example.com"
) -> subprocess.CompletedProcess[str]:
    """Send the test message with ``msmtp -C config``; msmtp's exit code and output."""
    return subprocess.run(
        [msmtp, "-C", str(config), recipient],
        input=TEST_MESSAGE,
        capture_output=True,
        text=True,
        timeout=SEND_TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "HOME": str(config.parent)},
    )


TOKEN_EXPIRY_MARGIN_SECONDS = 60
"""The token command fetches a new access token once the cached one expires within this many
seconds, so msmtp never sends a token that expires during its session."""

TOKEN_REQUEST_TIMEOUT_SECONDS = 10.0
"""Limit for the token command's request to the token endpoint."""

TOKEN_COMMAND_FAILED = 1
"""Exit status of the token command when it has no token to print."""


@dataclass(frozen=True)
class TokenCommandSettings:
    """Locations of the token endpoint, the client's secrets and the cache of the token command.

    The secrets stay in their own files of mode 0600; the settings hold only their paths.
    """

    token_url: str
    ca_file: Path
    """CA certificate that the token endpoint's certificate must chain to."""
    scope: str
    """``scope`` of the refresh-token request."""
    client_id_file: Path
    client_secret_file: Path
    refresh_token_file: Path
    cache_file: Path
    """JSON file of mode 0600 with the last access token and its expiry time."""

    def to_json(self) -> str:
        """Return the settings as one JSON object."""
        return json.dumps({name: str(value) for name, value in asdict(self).items()}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> TokenCommandSettings:
        """Return the settings that ``to_json`` wrote."""
        document = json.loads(text)
        return cls(
            token_url=document["token_url"],
            ca_file=Path(document["ca_file"]),
            scope=document["scope"],
            client_id_file=Path(document["client_id_file"]),
            client_secret_file=Path(document["client_secret_file"]),
            refresh_token_file=Path(document["refresh_token_file"]),
            cache_file=Path(document["cache_file"]),
        )


class TokenCommandError(Exception):
    """The token command has no access token to print; the message gives the reason, no secret."""


def write_refresh_token_script(path: Path, settings: TokenCommandSettings) -> Path:
    """Write a token script of mode 0700 for msmtp's ``passwordeval`` and return ``path``.

    The script is Python run by this interpreter in isolated mode (``-I``). It calls
    ``run_token_command`` with its settings, which go next to it in ``<path>.json``.
    """
    settings_file = path.with_name(path.name + ".json")
    _write_private(settings_file, settings.to_json() + "\n", 0o600)
    lines = [
        f"#!{sys.executable} -I",
        '"""Print an OAuth2 access token for msmtp\'s passwordeval."""',
        "import sys",
        "from pathlib import Path",
        "from smtpdiag.lab.msmtp_client import run_token_command",
        f"sys.exit(run_token_command(Path({str(settings_file)!r})))",
    ]
    _write_private(path, "\n".join(lines) + "\n", 0o700)
    return path


def run_token_command(settings_file: Path) -> int:
    """Print an access token for the refresh grant in ``settings_file``; return the exit status.

    A cached token is printed while it is valid for more than ``TOKEN_EXPIRY_MARGIN_SECONDS``.
    Otherwise the command requests one from the token endpoint, caches it and prints it.
    When the endpoint rejects the grant or cannot be reached, one line goes to standard error
    and the status is ``TOKEN_COMMAND_FAILED``, which makes msmtp exit with EX_CONFIG (78).
    """
    settings = TokenCommandSettings.from_json(settings_file.read_text(encoding="utf-8"))
    try:
        token = cached_access_token(settings.cache_file, time.time())
        if token is None:
            token = fetch_access_token(settings, time.time())
    except TokenCommandError as error:
        print(f"token command: {error}", file=sys.stderr)
        return TOKEN_COMMAND_FAILED
    print(token)
    return 0


def cached_access_token(cache_file: Path, now: float) -> str | None:
    """Return the cached access token when it is valid beyond the margin at ``now``; None
    when there is none, it expires soon, or the cache is unreadable."""
    try:
        document = json.loads(cache_file.read_text(encoding="utf-8"))
        token = document["access_token"]
        expires_at = float(document["expires_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(token, str) or expires_at - now <= TOKEN_EXPIRY_MARGIN_SECONDS:
        return None
    return token


def fetch_access_token(settings: TokenCommandSettings, now: float) -> str:
    """Get an access token with the refresh-token grant, cache it, and return it.

    A rotated refresh token in the reply replaces the one in ``refresh_token_file``. Raises
    ``TokenCommandError`` when the endpoint rejects the request or cannot be reached.
    """
    form = {
        "grant_type": "refresh_token",
        "client_id": _read_value(settings.client_id_file),
        "client_secret": _read_value(settings.client_secret_file),
        "refresh_token": _read_value(settings.refresh_token_file),
        "scope": settings.scope,
    }
    document = _post_form(settings.token_url, form, settings.ca_file)
    token = document.get("access_token")
    expires_in = document.get("expires_in")
    if not isinstance(token, str) or not isinstance(expires_in, int | float):
        raise TokenCommandError(
            f"token endpoint {settings.token_url} sent no access_token and expires_in"
        )
    cache = {"access_token": token, "expires_at": now + float(expires_in)}
    _replace_private(settings.cache_file, json.dumps(cache))
    rotated = document.get("refresh_token")
    if isinstance(rotated, str) and rotated:
        _replace_private(settings.refresh_token_file, rotated + "\n")
    return token


def _post_form(url: str, form: dict[str, str], ca_file: Path) -> dict[str, Any]:
    """POST ``form`` over HTTPS that trusts only ``ca_file``; return the JSON reply object."""
    if urllib.parse.urlsplit(url).scheme != "https":
        raise TokenCommandError(f"token endpoint {url} is not an https URL")
    context = ssl.create_default_context(cafile=str(ca_file))
    request = urllib.request.Request(  # noqa: S310 (the scheme is https, checked above)
        url,
        data=urllib.parse.urlencode(form).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(  # noqa: S310 (the scheme is https, checked above)
            request, timeout=TOKEN_REQUEST_TIMEOUT_SECONDS, context=context
        ) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        raise TokenCommandError(_rejection(url, error.code, error.read())) from None
    except (urllib.error.URLError, OSError) as error:
        raise TokenCommandError(f"token endpoint {url} is unreachable: {error}") from None
    try:
        document = json.loads(body)
    except ValueError:
        raise TokenCommandError(f"token endpoint {url} sent a reply that is not JSON") from None
    if not isinstance(document, dict):
        raise TokenCommandError(f"token endpoint {url} sent a reply that is not a JSON object")
    return document


def _rejection(url: str, status: int, body: bytes) -> str:
    """Return the one-line message for an HTTP error: status, OAuth2 ``error`` and the first
    line of ``error_description``, which names no secret."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return f"token endpoint {url} rejected the refresh grant with HTTP {status}"
    error = document.get("error", "")
    description = str(document.get("error_description", "")).splitlines()
    detail = f": {description[0]}" if description else ""
    return f"token endpoint {url} rejected the refresh grant with HTTP {status} {error}{detail}"


def _read_value(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise TokenCommandError(f"cannot read {path}: {error.strerror}") from None


def _write_private(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to a new file created with ``mode``."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)


def _replace_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in a file of mode 0600, atomically, so a concurrent
    reader sees the old or the new content."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    _write_private(temporary, text, 0o600)
    os.replace(temporary, path)
