"""Tests of the token command parser and of the secret search in token scripts."""

from __future__ import annotations

import pytest

from smtpdiag.local.token_command import (
    TOKEN_PROGRAM,
    TOKEN_SCRIPT,
    CommandFile,
    command_files,
    command_words,
    script_secret_kinds,
)

PROGRAMS = {
    "python3": "/usr/bin/python3",
    "bash": "/usr/bin/bash",
    "sh": "/usr/bin/sh",
    "env": "/usr/bin/env",
    "perl": "/usr/bin/perl",
    "cat": "/usr/bin/cat",
}


def files_of(command: str) -> list[tuple[str, str | None]]:
    words = command_words(command)
    found = command_files(words, PROGRAMS.get, lambda word: word.replace("~", "/home/m"))
    return [(item.role, item.path) for item in found]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        pytest.param(
            "/usr/local/bin/msmtp-token",
            [(TOKEN_PROGRAM, "/usr/local/bin/msmtp-token")],
            id="script-path",
        ),
        pytest.param(
            "cat /etc/msmtp/access-token", [(TOKEN_PROGRAM, "/usr/bin/cat")], id="system-program"
        ),
        pytest.param(
            "python3 /opt/oauth/token.py --account alerts",
            [(TOKEN_PROGRAM, "/usr/bin/python3"), (TOKEN_SCRIPT, "/opt/oauth/token.py")],
            id="python-script",
        ),
        pytest.param(
            "python3 -W ignore -u /opt/oauth/token.py",
            [(TOKEN_PROGRAM, "/usr/bin/python3"), (TOKEN_SCRIPT, "/opt/oauth/token.py")],
            id="python-options",
        ),
        pytest.param("python3 -m oauth2ms", [(TOKEN_PROGRAM, "/usr/bin/python3")], id="module"),
        pytest.param(
            "bash -e /opt/oauth/token.sh",
            [(TOKEN_PROGRAM, "/usr/bin/bash"), (TOKEN_SCRIPT, "/opt/oauth/token.sh")],
            id="bash-errexit",
        ),
        pytest.param("sh -c 'cat /x'", [(TOKEN_PROGRAM, "/usr/bin/sh")], id="shell-inline"),
        pytest.param("sh -ec 'cat /x'", [(TOKEN_PROGRAM, "/usr/bin/sh")], id="shell-ec-inline"),
        pytest.param("perl -e 'print 1'", [(TOKEN_PROGRAM, "/usr/bin/perl")], id="perl-inline"),
        pytest.param(
            "env -i HOME=/root /usr/bin/python3 -u /opt/t.py",
            [
                (TOKEN_PROGRAM, "/usr/bin/env"),
                (TOKEN_PROGRAM, "/usr/bin/python3"),
                (TOKEN_SCRIPT, "/opt/t.py"),
            ],
            id="env-assignments",
        ),
        pytest.param(
            "env -S 'python3 /opt/t.py'",
            [
                (TOKEN_PROGRAM, "/usr/bin/env"),
                (TOKEN_PROGRAM, "/usr/bin/python3"),
                (TOKEN_SCRIPT, "/opt/t.py"),
            ],
            id="env-split-string",
        ),
        pytest.param(
            "TOKEN_ENV=/etc/msmtp/env /opt/t.sh | head -n 1",
            [(TOKEN_PROGRAM, "/opt/t.sh")],
            id="assignment-and-pipe",
        ),
        pytest.param(
            "exec /opt/t.sh;echo",
            [(TOKEN_PROGRAM, "/opt/t.sh")],
            id="exec-and-semicolon",
        ),
        pytest.param("~/bin/token", [(TOKEN_PROGRAM, "/home/m/bin/token")], id="home"),
        pytest.param("$HOME/bin/token", [], id="variable-not-expanded"),
        pytest.param("get-token", [(TOKEN_PROGRAM, None)], id="not-on-path"),
        pytest.param(
            "bash -- /opt/t.sh",
            [(TOKEN_PROGRAM, "/usr/bin/bash"), (TOKEN_SCRIPT, "/opt/t.sh")],
            id="double-dash",
        ),
        pytest.param("bash", [(TOKEN_PROGRAM, "/usr/bin/bash")], id="interpreter-alone"),
        pytest.param(
            "python3 token.py", [(TOKEN_PROGRAM, "/usr/bin/python3")], id="relative-script"
        ),
        pytest.param("./token.sh", [], id="relative-program"),
    ],
)
def test_command_files(command: str, expected: list[tuple[str, str | None]]) -> None:
    assert files_of(command) == expected


def test_command_words_unbalanced_quote() -> None:
    with pytest.raises(ValueError, match="quotation"):
        command_words("cat '/etc/x")


def test_command_file_keeps_word() -> None:
    found = command_files(["get-token"], PROGRAMS.get)
    assert found == [CommandFile(TOKEN_PROGRAM, "get-token", None)]


# Secrets written in scripts. Constructed values, not real credentials.


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        pytest.param('CLIENT_SECRET="GOCSPX-AbCdEfGhIjKlMnOp1234"\n', ("client_secret",), id="env"),
        pytest.param(
            'client_secret = "Abc8Q~DeFgHiJkLmNoPqRsTu"\n', ("client_secret",), id="python"
        ),
        pytest.param(
            "REFRESH_TOKEN='1//0gAbCdEfGhIjKlMnOpQrStUvWxYz'\n", ("refresh_token",), id="refresh"
        ),
        pytest.param(
            "echo ya29.a0AfH6SMBfaketokenforlocaltests\n",
            ("google_access_token",),
            id="google-token",
        ),
        pytest.param("token = refresh(refresh_token=args.refresh_token)\n", (), id="attribute"),
        pytest.param('client_secret=os.environ["CLIENT_SECRET"]\n', (), id="environ-lookup"),
        pytest.param('curl -d "refresh_token=${REFRESH_TOKEN}"\n', (), id="shell-variable"),
        pytest.param(". /etc/msmtp/token.env\nexec oauth2-refresh\n", (), id="no-secret"),
    ],
)
def test_script_secret_kinds(text: str, kinds: tuple[str, ...]) -> None:
    assert script_secret_kinds(text) == kinds
