"""Token commands run as msmtp's passwordeval runs them, and what their output can get wrong.

What msmtp does with each output was seen with Debian 12's msmtp 1.8.23 against the lab:
it uses the first line, ignores further lines and the exit status, and fails only on no
output at all.
"""

from __future__ import annotations

import sys
import time

import pytest

from smtpdiag.oauth.command import CommandOutcome, judge_output, run_token_command
from smtpdiag.redact import REDACTOR

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
