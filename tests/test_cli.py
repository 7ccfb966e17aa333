"""CLI: exit codes, usage errors, output formats, start-up imports and the entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scripted_peer import unused_port

from smtpdiag import __version__
from smtpdiag.cli import main

HEAVY_MODULES = ("OpenSSL", "dns", "prometheus_client", "aiosmtpd", "cryptography")


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--version")
    assert (code, out.strip()) == (0, f"smtpdiag {__version__}")


USAGE = [
    pytest.param(["check", "127.0.0.1", "--only", "nosuch"], "nosuch", id="unknown-check"),
    pytest.param(
        ["check", "127.0.0.1", "--timeout", "-2"], "Invalid timeout '-2'", id="negative-timeout"
    ),
    pytest.param(["check", "127.0.0.1", "--tls-mode", "ssl"], "ssl", id="bad-tls-mode"),
    pytest.param(["check"], "No target given", id="no-target"),
    pytest.param(["check", "127.0.0.1:70000"], "70000", id="bad-port"),
    pytest.param(
        ["check", "--config", "/nonexistent.toml", "--target", "x"],
        "/nonexistent.toml",
        id="missing-config",
    ),
    pytest.param(["check", "127.0.0.1", "--format", "xml"], "xml", id="bad-format"),
    pytest.param(["nosuchcommand"], "nosuchcommand", id="unknown-command"),
]


@pytest.mark.parametrize(("args", "message"), USAGE)
def test_usage_error_exits_3(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, _ = run_main(capsys, *args)
    assert code == 3


@pytest.mark.parametrize(("args", "message"), USAGE)
def test_usage_error_names_value(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    _, _, err = run_main(capsys, *args)
    assert message in err


GLOBAL_OPTION_AFTER_COMMAND = [
    pytest.param(["check", "-vv", "127.0.0.1"], "-v", "check", id="check-vv"),
    pytest.param(["check", "127.0.0.1", "--verbose"], "--verbose", "check", id="check-verbose"),
    pytest.param(
        ["check", "127.0.0.1", "--log-level", "debug"], "--log-level", "check", id="log-level"
    ),
    pytest.param(["decode", "-v", "535 5.7.3"], "-v", "decode", id="decode-v"),
    pytest.param(["logs", "--version"], "--version", "logs", id="logs-version"),
]


@pytest.mark.parametrize(("args", "option", "command"), GLOBAL_OPTION_AFTER_COMMAND)
def test_global_option_after_command_exits_3(
    capsys: pytest.CaptureFixture[str], args: list[str], option: str, command: str
) -> None:
    code, _, _ = run_main(capsys, *args)
    assert code == 3


@pytest.mark.parametrize(("args", "option", "command"), GLOBAL_OPTION_AFTER_COMMAND)
def test_global_option_after_command_hint(
    capsys: pytest.CaptureFixture[str], args: list[str], option: str, command: str
) -> None:
    _, _, err = run_main(capsys, *args)
    assert f"Error: No such option: {option}. " in err
    assert "options of smtpdiag itself" in err
    assert f"smtpdiag -vv {command} …" in err


def test_global_option_hint_drops_suggestions(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run_main(capsys, "check", "127.0.0.1", "--log-level", "debug")
    assert "Possible options" not in err


def test_unknown_command_option_has_no_hint(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "check", "127.0.0.1", "--colour")
    assert code == 3
    assert "No such option: --colour" in err
    assert "options of smtpdiag itself" not in err


def test_refused_port_exits_critical(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run_main(capsys, "check", f"127.0.0.1:{unused_port()}", "--only", "connect")
    assert code == 2


def test_json_output_status(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_main(
        capsys, "check", f"127.0.0.1:{unused_port()}", "--only", "connect", "--format", "json"
    )
    assert json.loads(out)["status"] == "critical"


def test_nagios_output_first_word(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_main(
        capsys, "check", f"127.0.0.1:{unused_port()}", "--only", "connect", "-f", "nagios"
    )
    assert out.startswith("SMTPDIAG CRITICAL")


def test_junit_output_is_xml(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_main(
        capsys, "check", f"127.0.0.1:{unused_port()}", "--only", "connect", "-f", "junit"
    )
    assert out.lstrip().startswith("<?xml")


def test_table_output_names_fix(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_main(capsys, "check", f"127.0.0.1:{unused_port()}", "--only", "connect")
    assert "fix:" in out


def test_skip_everything_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from checks import REGISTRY

    code, _, _ = run_main(
        capsys, "check", "127.0.0.1", "--skip", ",".join(spec.id for spec in REGISTRY)
    )
    assert code == 3


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["check", "--help"]], ids=" ".join)
def test_startup_imports_no_heavy_library(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from smtpdiag.cli import main\n"
        f"main({args!r})\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip().splitlines()[-1] == "[]"


def test_python_dash_m_entry_point() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "smtpdiag", "--version"], capture_output=True, text=True, check=False
    )
    assert (completed.returncode, completed.stdout.strip()) == (0, f"smtpdiag {__version__}")


def test_console_script_exit_code() -> None:
    script = shutil.which("smtpdiag", path=str(Path(sys.executable).parent)) or shutil.which(
        "smtpdiag"
    )
    assert script is not None, "the smtpdiag console script is not installed: pip install -e ."
    completed = subprocess.run(
        [script, "check", f"127.0.0.1:{unused_port()}", "--only", "connect", "-f", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert completed.returncode == 2


def test_console_script_usage_error_exit_code() -> None:
    script = shutil.which("smtpdiag", path=str(Path(sys.executable).parent)) or shutil.which(
        "smtpdiag"
    )
    assert script is not None
    completed = subprocess.run(
        [script, "check", "--timeout", "zero", "x"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 3


def test_json_output_matches_schema(capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema

    schema_path = (
        Path(__file__).resolve().parent.parent
        / "docs"
        / "schemas"
        / "smtpdiag.report-1.schema.json"
    )
    schema = json.loads(schema_path.read_text())
    _, out, _ = run_main(capsys, "check", f"127.0.0.1:{unused_port()}", "--format", "json")
    jsonschema.validate(json.loads(out), schema)
    assert json.loads(out)["schema"] == "smtpdiag.report/1"


def test_internal_error_exits_3_without_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import smtpdiag.engine

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(smtpdiag.engine, "run_checks", broken)
    code, _, err = run_main(capsys, "check", "127.0.0.1:1")
    assert code == 3
    assert "internal error: RuntimeError: renderer bug" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(
            PermissionError(13, "Permission denied", "/var/log/mail.log"),
            "smtpdiag: cannot read or write /var/log/mail.log: Permission denied.\n",
            id="with-file",
        ),
        pytest.param(
            OSError(28, "No space left on device"),
            "smtpdiag: cannot write the output: No space left on device.\n",
            id="without-file",
        ),
    ],
)
def test_os_error_names_file(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    error: OSError,
    expected: str,
) -> None:
    import smtpdiag.engine

    def broken(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(smtpdiag.engine, "run_checks", broken)
    code, _, err = run_main(capsys, "check", "127.0.0.1:1")
    assert (code, err) == (3, expected)


def test_internal_error_hint_is_two_sentences(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import smtpdiag.engine

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(smtpdiag.engine, "run_checks", broken)
    _, _, err = run_main(capsys, "check", "127.0.0.1:1")
    assert err == (
        "smtpdiag: internal error: RuntimeError: renderer bug. "
        "Please report it; run again with --log-level debug for the traceback.\n"
    )


def test_token_check_needs_no_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "token.sh"
    script.write_text("#!/bin/sh\necho ya29.a0ExampleAccessTokenForTheTokenCheckOnly0123456789\n")
    script.chmod(0o700)
    code, out, _ = run_main(
        capsys, "check", "--only", "token", "--token-command", str(script), "--format", "json"
    )
    report = json.loads(out)
    assert code == 0
    assert report["target"]["name"] == "local"
    assert [check["id"] for check in report["checks"]] == ["token"]


def test_log_file_pipe_is_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "mail.pipe"
    os.mkfifo(fifo)
    code, _, err = run_main(capsys, "check", "--only", "secrets", "--log-file", str(fifo))
    assert code == 3
    assert f"The log file {fifo} is a pipe or a device" in err
