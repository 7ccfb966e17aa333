"""Token commands run as msmtp's passwordeval runs them, and what their output can get wrong.

What msmtp does with each output was seen with Debian 12's msmtp 1.8.23 against the lab:
it uses the first line, ignores further lines and the exit status, and fails only on no
output at all.
"""

from __future__ import annotations

import base64
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smtpdiag.oauth.command import (
    MAX_OUTPUT_BYTES,
    STDERR_EXCERPT,
    CommandOutcome,
    judge_output,
    run_token_command,
)
from smtpdiag.redact import MASK, REDACTOR

TOKEN = "ya29.command-token-0123456789abcdef"


def problems(outcome: CommandOutcome) -> list[tuple[str, str, bool]]:
    return [
        (
            problem.code,
            problem.details.get("problem") or problem.details["reason"],
            problem.blocking,
        )
        for problem in outcome.problems
    ]


def test_bare_token_with_newline_is_taken() -> None:
    outcome = run_token_command(f"printf '%s\\n' {TOKEN}", timeout=5)
    assert outcome.problems == ()
    assert outcome.token is not None
    assert outcome.token.reveal() == TOKEN


def test_crlf_is_dropped_like_msmtp() -> None:
    outcome = judge_output(f"{TOKEN}\r\n".encode())
    assert outcome.token is not None
    assert outcome.token.reveal() == TOKEN
    assert outcome.problems == ()


@pytest.mark.parametrize(
    ("stdout", "problem"),
    [
        (b"", "printed nothing"),
        (b"\n\n", "printed nothing"),
        (f"Bearer {TOKEN}\n".encode(), "printed 'Bearer ' before the token"),
        (
            f'{{"access_token": "{TOKEN}", "expires_in": 3599}}\n'.encode(),
            "printed a JSON document",
        ),
        (b' {\n  "error": "invalid_grant"\n}\n', "printed a JSON document"),
        (f" {TOKEN}\n".encode(), "printed blanks around the token"),
        (f"{TOKEN} \n".encode(), "printed blanks around the token"),
        (b"\xff\xfe token", "printed bytes that are not UTF-8 text"),
        (b"{not json", "printed something that starts like JSON"),
        (f"\n{TOKEN}\n".encode(), "printed an empty first line"),
        (
            f"token: {TOKEN}\n".encode(),
            "printed a first line with spaces or control characters in it",
        ),
    ],
)
def test_output_msmtp_cannot_use(stdout: bytes, problem: str) -> None:
    outcome = judge_output(stdout)
    assert outcome.token is None
    assert problems(outcome)[0] == ("token.command_output_invalid", problem, True)


def test_extra_lines_warn_and_first_line_is_used() -> None:
    outcome = judge_output(f"{TOKEN}\nrefreshed at 10:00\n".encode())
    assert outcome.token is not None
    assert outcome.token.reveal() == TOKEN
    assert problems(outcome) == [
        (
            "token.command_output_invalid",
            "printed 2 lines, of which msmtp uses only the first",
            False,
        )
    ]


def test_log_line_before_token_blocks() -> None:
    outcome = judge_output(f"Refreshing token for lab.user@example.com\n{TOKEN}\n".encode())
    assert outcome.token is None
    assert [problem.blocking for problem in outcome.problems] == [True, False]


def test_json_output_keeps_body_and_registers_secrets() -> None:
    outcome = judge_output(b'{"error": "invalid_grant", "refresh_token": "1//0gSecretRefresh"}')
    assert outcome.json_body == {"error": "invalid_grant", "refresh_token": "1//0gSecretRefresh"}
    assert "1//0gSecretRefresh" not in REDACTOR.redact("x 1//0gSecretRefresh y")


def test_failed_exit_without_output() -> None:
    secret = "client-secret-value-42"
    REDACTOR.register(secret)
    outcome = run_token_command(
        f"echo 'refresh failed for {secret}: invalid_grant' >&2; exit 3", timeout=5
    )
    assert outcome.token is None
    assert problems(outcome) == [("token.command_failed", "exited with status 3", True)]
    assert outcome.facts["exit_status"] == 3
    assert "invalid_grant" in outcome.facts["command_stderr"]
    assert secret not in outcome.facts["command_stderr"]
    assert secret not in outcome.problems[0].details["stderr"]


def test_failed_exit_after_token_warns() -> None:
    outcome = run_token_command(f"echo {TOKEN}; echo 'cache write failed' >&2; exit 1", timeout=5)
    assert outcome.token is not None
    assert outcome.token.reveal() == TOKEN
    assert problems(outcome) == [("token.command_failed", "exited with status 1", False)]
    assert outcome.facts["command_stderr"] == "cache write failed"


def test_token_printed_by_failing_command_is_masked() -> None:
    run_token_command(f"echo Bearer {TOKEN}; exit 1", timeout=5)
    assert TOKEN not in REDACTOR.redact(f"seen {TOKEN}")


def test_timeout_kills_the_whole_group() -> None:
    started = time.monotonic()
    outcome = run_token_command("sleep 30 & sleep 30; echo late", timeout=0.5)
    elapsed = time.monotonic() - started
    assert problems(outcome) == [("token.command_failed", "timed out after 0.5 s", True)]
    # Generous bound: only a command left running would take the 30 s.
    assert elapsed < 20


def test_missing_program_is_a_failure_with_its_stderr() -> None:
    outcome = run_token_command("/nonexistent/refresh-token-script", timeout=5)
    assert problems(outcome) == [("token.command_failed", "exited with status 127", True)]
    assert "not found" in outcome.facts["command_stderr"]


def test_stdin_is_closed() -> None:
    outcome = run_token_command(f"cat; echo {TOKEN}", timeout=5)
    assert outcome.token is not None
    assert outcome.token.reveal() == TOKEN


def test_python_interpreter_script() -> None:
    outcome = run_token_command(f"{sys.executable} -c 'print(\"{TOKEN}\")'", timeout=10)
    assert outcome.token is not None
    assert outcome.token.reveal() == TOKEN


def test_unknown_tokens_in_stderr_are_masked() -> None:
    refresh = "1//0gUnknownRefreshTokenValue"
    long_word = "A" * 20 + "b" * 25
    trace = "00000000-0000-0000-0000-000000000001"
    outcome = run_token_command(
        f"echo 'refresh_token={refresh} body {long_word} trace {trace}' >&2; exit 1", timeout=5
    )
    stderr = outcome.facts["command_stderr"]
    assert refresh not in stderr
    assert long_word not in stderr
    assert trace in stderr
    assert stderr.startswith("refresh_token=[REDACTED] body [REDACTED]")


def test_stderr_uuid_stays_readable() -> None:
    outcome = run_token_command("echo 'trace 00000000-0000-0000-0000-000000000003' >&2", 5)
    assert outcome.facts["command_stderr"] == "trace 00000000-0000-0000-0000-000000000003"


# Output size: smtpdiag keeps at most MAX_OUTPUT_BYTES of standard output.


def test_long_first_line_is_cut_and_critical() -> None:
    outcome = run_token_command("head -c 200000 /dev/zero | tr '\\0' a", timeout=10)
    assert outcome.token is None
    assert problems(outcome) == [
        (
            "token.command_output_invalid",
            "printed more than 64 KiB without a line break",
            True,
        )
    ]


def test_endless_output_stops_before_timeout() -> None:
    # `yes` never ends: only stopping it at the limit avoids the timeout.
    outcome = run_token_command("yes", timeout=10)
    assert problems(outcome) == [
        (
            "token.command_output_invalid",
            "printed more than 64 KiB in at least 32768 lines, of which msmtp uses only the first",
            False,
        )
    ]
    assert outcome.token is not None
    assert outcome.token.reveal() == "y"
    assert "exit_status" not in outcome.facts


def test_output_of_exactly_the_limit_is_read_whole() -> None:
    outcome = run_token_command(f"echo {TOKEN}; head -c {MAX_OUTPUT_BYTES - 36} /dev/zero", 10)
    assert len(f"{TOKEN}\n") == 36
    assert problems(outcome) == [
        (
            "token.command_output_invalid",
            "printed 2 lines, of which msmtp uses only the first",
            False,
        )
    ]


def test_cut_buffer_is_never_the_token() -> None:
    outcome = judge_output(b"a" * MAX_OUTPUT_BYTES, cut=True)
    assert outcome.token is None
    assert problems(outcome)[0][0] == "token.command_output_invalid"
    assert problems(outcome)[0][2] is True


def test_cut_output_counts_lines_read() -> None:
    outcome = judge_output(f"{TOKEN}\nlog 1\nlog 2\nlog".encode(), cut=True)
    assert outcome.token is not None
    assert problems(outcome) == [
        (
            "token.command_output_invalid",
            "printed more than 64 KiB in at least 4 lines, of which msmtp uses only the first",
            False,
        )
    ]


def test_large_stderr_is_drained_and_kept_short() -> None:
    outcome = run_token_command(
        f"head -c 1000000 /dev/zero | tr '\\0' 'e' | fold -w 30 >&2; echo {TOKEN}", timeout=10
    )
    assert outcome.token is not None
    assert outcome.token.reveal() == TOKEN
    assert len(outcome.facts["command_stderr"]) == STDERR_EXCERPT


# Masking: only values that can be secrets are registered.


def test_json_error_body_keeps_words_readable() -> None:
    body = (
        '{"error": "invalid_grant", "error_description": "Token has been expired or revoked.", '
        f'"access_token": "{TOKEN}", "refresh_token": "short-canary-1"}}'
    )
    judge_output(body.encode())
    readable = "invalid_grant error_description access_token refresh_token jq -r .access_token"
    assert REDACTOR.redact(readable) == readable
    assert REDACTOR.redact(TOKEN) == MASK
    assert REDACTOR.redact("short-canary-1") == MASK


@pytest.mark.parametrize(
    ("stdout", "secret"),
    [
        (f"{TOKEN}\n", TOKEN),
        ("opaque-token-of-20ch\n", "opaque-token-of-20ch"),
        ('"opaque-token-of-20ch"\n', "opaque-token-of-20ch"),
        ("Bearer opaque-token-of-20ch\n", "opaque-token-of-20ch"),
        ("refreshing\nrefresh_token=1//0gRefreshCanaryValue\n", "1//0gRefreshCanaryValue"),
        ("log\n0.AXoA-refresh-canary\n", "0.AXoA-refresh-canary"),
        ("log\nEwBwA8l6BAAUcanary\n", "EwBwA8l6BAAUcanary"),
        ("log: " + "x" * 45 + "\n", "x" * 45),
    ],
    ids=[
        "first-line",
        "short-opaque",
        "quoted",
        "bearer",
        "google-refresh",
        "ms-refresh",
        "ewb",
        "long-word",
    ],
)
def test_token_shaped_output_is_registered(stdout: str, secret: str) -> None:
    judge_output(stdout.encode())
    assert REDACTOR.redact(f"x {secret} y") == f"x {MASK} y"


@pytest.mark.parametrize(
    "stdout",
    [
        "refresh failed: invalid_grant\n",
        "error: invalid_grant\nsee error_description\n",
        "Refreshing token for lab.user@example.com\n",
        "trace 00000000-0000-0000-0000-000000000003\n",
        "log\nya29.short\n",
        "/usr/local/bin/get-token failed\n",
    ],
)
def test_words_and_codes_are_not_registered(stdout: str) -> None:
    # A first line that msmtp would send as the token is a secret at any length, so these
    # outputs are ones that it would not take as a token.
    judge_output(stdout.encode())
    assert REDACTOR.redact(stdout) == stdout


# Characters of the first line: RFC 6750 b64token.


@pytest.mark.parametrize(
    ("stdout", "problem"),
    [
        (f'"{TOKEN}"\n'.encode(), "printed the token in double quotes"),
        (f"'{TOKEN}'\n".encode(), "printed characters that a bearer token cannot contain"),
        (
            f"access_token={TOKEN}\n".encode(),
            "printed characters that a bearer token cannot contain",
        ),
        (f"{TOKEN};\n".encode(), "printed characters that a bearer token cannot contain"),
        (f"{TOKEN}é\n".encode(), "printed characters that a bearer token cannot contain"),
        (f"{TOKEN}\x7f\n".encode(), "printed a first line with spaces or control characters in it"),
        (f"{TOKEN}\xff\n".encode("latin-1"), "printed bytes that are not UTF-8 text"),
    ],
    ids=[
        "double-quotes",
        "single-quotes",
        "key-value",
        "semicolon",
        "non-ascii",
        "delete",
        "latin-1",
    ],
)
def test_first_line_characters(stdout: bytes, problem: str) -> None:
    outcome = judge_output(stdout)
    assert outcome.token is None
    assert problems(outcome) == [("token.command_output_invalid", problem, True)]


def test_double_quotes_hint_names_jq_raw_output() -> None:
    outcome = judge_output(f'"{TOKEN}"\n'.encode())
    assert "jq -r .access_token" in outcome.problems[0].details["fix_hint"]


@pytest.mark.parametrize(
    "token",
    [TOKEN, "1//0gRefresh+/token~value==", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln", "a.b_c-d"],
)
def test_b64token_characters_are_accepted(token: str) -> None:
    outcome = judge_output(f"{token}\n".encode())
    assert outcome.problems == ()
    assert outcome.token is not None
    assert outcome.token.reveal() == token


def test_non_utf8_after_first_line_only_warns() -> None:
    outcome = judge_output(f"{TOKEN}\nlog \xff\n".encode("latin-1"))
    assert outcome.token is not None
    assert problems(outcome) == [
        (
            "token.command_output_invalid",
            "printed 2 lines, of which msmtp uses only the first",
            False,
        )
    ]


# Standard error that contains the identity provider's JSON error body.


def test_stderr_json_error_is_returned_with_secrets_registered() -> None:
    refresh = "1//0gStderrRefreshCanary"
    outcome = run_token_command(
        f'echo \'refresh failed: {{"error": "invalid_grant", "refresh_token": "{refresh}"}}\''
        " >&2; exit 1",
        timeout=5,
    )
    assert outcome.stderr_json == {"error": "invalid_grant", "refresh_token": refresh}
    assert refresh not in outcome.facts["command_stderr"]
    assert REDACTOR.redact(refresh) == MASK


def test_stderr_json_skips_other_objects() -> None:
    outcome = run_token_command(
        """echo '{"level": "info"} then {"error": "invalid_client"}' >&2; exit 1""", timeout=5
    )
    assert outcome.stderr_json == {"error": "invalid_client"}


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        pytest.param(
            "token-command: HTTP 400 invalid_grant: AADSTS50173: The provided grant has "
            "expired due to it being revoked.",
            {
                "error": "invalid_grant",
                "error_description": "AADSTS50173: The provided grant has expired due to it "
                "being revoked.",
            },
            id="script-line",
        ),
        pytest.param(
            "error: invalid_client",
            {"error": "invalid_client", "error_description": ""},
            id="bare-code",
        ),
        pytest.param(
            "invalid_grant for refresh_token=1//0gPlainTextCanaryValue0123456789abcdefABCDEF",
            {"error": "invalid_grant", "error_description": "for refresh_token=[REDACTED]"},
            id="secret-in-description",
        ),
    ],
)
def test_stderr_error_code_in_text(stderr: str, expected: dict[str, str]) -> None:
    outcome = run_token_command(f"echo '{stderr}' >&2; exit 1", timeout=5)
    assert outcome.stderr_json == expected


def test_stderr_without_json_error() -> None:
    outcome = run_token_command("echo 'curl: (6) Could not resolve host' >&2; exit 6", 5)
    assert outcome.stderr_json is None


# What msmtp does when the command fails, as the finding's cause states it.


def msmtp_outcome(outcome: CommandOutcome) -> str:
    return outcome.problems[0].details["msmtp_outcome"]


def test_msmtp_outcome_without_output() -> None:
    outcome = run_token_command("exit 2", timeout=5)
    assert "cannot read output of" in msmtp_outcome(outcome)


def test_msmtp_outcome_after_token() -> None:
    outcome = run_token_command(f"echo {TOKEN}; exit 1", timeout=5)
    assert "sends the token it printed anyway" in msmtp_outcome(outcome)
    assert "goes unnoticed" in msmtp_outcome(outcome)


def test_msmtp_outcome_after_unusable_output() -> None:
    outcome = run_token_command(f"echo Bearer {TOKEN}; exit 1", timeout=5)
    assert "sends the first line of the output" in msmtp_outcome(outcome)
    assert problems(outcome) == [
        ("token.command_failed", "exited with status 1", True),
        ("token.command_output_invalid", "printed 'Bearer ' before the token", True),
    ]


def test_msmtp_outcome_on_timeout() -> None:
    outcome = run_token_command("sleep 30", timeout=0.5)
    assert "without a time limit" in msmtp_outcome(outcome)
    assert "timeout 60" in outcome.problems[0].details["fix_hint"]


def test_msmtp_outcome_when_shell_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_to_start(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", fail_to_start)
    outcome = run_token_command("true", timeout=5)
    assert problems(outcome) == [
        (
            "token.command_failed",
            "could not be started (Resource temporarily unavailable)",
            True,
        )
    ]
    assert "cannot run it either" in msmtp_outcome(outcome)


def test_closed_pipes_without_exit_time_out() -> None:
    outcome = run_token_command("exec >&- 2>&-; sleep 30", timeout=0.5)
    assert problems(outcome) == [("token.command_failed", "timed out after 0.5 s", True)]


def test_background_child_holding_stdout_does_not_time_out(tmp_path: Path) -> None:
    # msmtp reads one line and waits only for the shell, so it does not hang here either.
    pid_file = tmp_path / "pid"
    outcome = run_token_command(f"echo {TOKEN}; sleep 60 & echo $! > {pid_file}", timeout=10)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert outcome.problems == ()
    assert outcome.token is not None
    assert outcome.token.reveal() == TOKEN


@pytest.mark.parametrize("word", ["null", "None", "undefined", "false"])
def test_missing_value_word_is_not_a_token(word: str) -> None:
    outcome = judge_output(f"{word}\n".encode())
    assert outcome.token is None
    assert problems(outcome) == [
        ("token.command_output_invalid", f"printed {word!r} in place of a token", True)
    ]
    assert "jq -er" in outcome.problems[0].details["fix_hint"]


def test_stderr_request_secrets_are_masked(tmp_path: Path) -> None:
    basic = base64.b64encode(b"abc:CANARYbasicCS").decode()
    script = tmp_path / "token.sh"
    script.write_text(
        "#!/bin/sh\n"
        "echo 'grant_type=refresh_token&client_id=abc&client_secret=CANARYformCS"
        "&refresh_token=CANARYformRT' >&2\n"
        f"echo 'Authorization: Basic {basic}' >&2\n"
        "exit 1\n"
    )
    script.chmod(0o700)
    outcome = run_token_command(str(script), timeout=5.0)
    text = repr(outcome)
    for canary in ("CANARYformCS", "CANARYformRT", basic):
        assert canary not in text
    assert "client_id=abc" in outcome.problems[0].details["stderr"]
