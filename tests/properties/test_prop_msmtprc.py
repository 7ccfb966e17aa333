"""Properties of the msmtprc reader: any text or bytes parse into accounts and problems, and
only an unreadable file raises, with ``ConfigError``."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from smtpdiag.errors import ConfigError
from smtpdiag.msmtprc.parser import parse_file, parse_text

# msmtp configuration commands, so that generated files reach the command handlers and not
# only the "unknown command" path.
COMMANDS = [
    "account",
    "defaults",
    "host",
    "port",
    "user",
    "from",
    "auth",
    "tls",
    "tls_starttls",
    "passwordeval",
    "eval",
    "logfile",
    "syslog",
    "password",
    "tls_trust_file",
]
CONFIG_LINE = st.one_of(
    st.text(max_size=60),
    st.builds(
        "{}{}{}".format,
        st.sampled_from(COMMANDS),
        st.sampled_from([" ", "\t", "  ", ""]),
        st.text(max_size=40),
    ),
    st.builds("account {} : {}".format, st.text(max_size=10), st.text(max_size=20)),
)
CONFIG_TEXT = st.lists(CONFIG_LINE, max_size=20).map("\n".join)


@given(CONFIG_TEXT | st.text())
def test_text_parses_without_raising(text: str) -> None:
    try:
        parsed = parse_text(text)
    except ConfigError:
        return
    assert parsed.path == "<text>"
    for problem in parsed.problems:
        assert 0 <= problem.line <= text.count("\n") + 1


@given(CONFIG_TEXT.map(str.encode) | st.binary(max_size=2000))
def test_file_parses_without_raising(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "msmtprc"
        path.write_bytes(data)
        try:
            parse_file(str(path))
        except ConfigError as error:
            assert error.path == str(path)
