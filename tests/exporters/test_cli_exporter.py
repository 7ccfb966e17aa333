"""``smtpdiag exporter`` and ``smtpdiag rules`` on the command line: exit codes and output."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from scripted_peer import unused_port

import exporters
from smtpdiag.cli import main
from smtpdiag.lab.runner import LabInfo, start_lab
from smtpdiag.lab.scenarios import get_scenario


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo the CLI's logging set-up and keep SMTPDIAG_CONFIG of the caller out."""
    monkeypatch.delenv("SMTPDIAG_CONFIG", raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_config(tmp_path: Path, exporter: str = "") -> Path:
    path = tmp_path / "exporter.toml"
    path.write_text(
        f'[targets.relay]\nhost = "127.0.0.1"\nport = {unused_port()}\ntimeout = 2\n\n'
        f'[exporter]\njobs = ["connect"]\n{exporter}',
        encoding="utf-8",
    )
    return path


CONFIG_ERRORS = [
    pytest.param("workers = 0\n", "workers", id="workers"),
    pytest.param('jobs = ["connect", "nosuch"]\n', "nosuch", id="unknown-job"),
    pytest.param("jitter = 0.9\n", "jitter", id="jitter"),
    pytest.param('colour = "blue"\n', "colour", id="unknown-key"),
    pytest.param("[exporter.intervals]\ntls = 0\n", "tls = 0", id="interval"),
]


def write_exporter_table(tmp_path: Path, exporter: str) -> Path:
    path = tmp_path / "exporter.toml"
    path.write_text(
        f'[targets.relay]\nhost = "127.0.0.1"\n\n[exporter]\n{exporter}', encoding="utf-8"
    )
    return path


@pytest.mark.parametrize(("exporter", "value"), CONFIG_ERRORS)
def test_config_error_exits_3(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exporter: str, value: str
) -> None:
    config = write_exporter_table(tmp_path, exporter)
    code, _, _ = run_main(capsys, "exporter", "--config", str(config), "--once")
    assert code == 3


@pytest.mark.parametrize(("exporter", "value"), CONFIG_ERRORS)
def test_config_error_names_value(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exporter: str, value: str
) -> None:
    config = write_exporter_table(tmp_path, exporter)
    _, _, err = run_main(capsys, "exporter", "--config", str(config), "--once")
    assert value in err


@pytest.mark.parametrize(
    ("args", "text"),
    [
        pytest.param(["exporter"], "SMTPDIAG_CONFIG", id="no-config"),
        pytest.param(
            ["exporter", "--config", "/nonexistent/exporter.toml"],
            "/nonexistent/exporter.toml",
            id="missing-file",
        ),
        pytest.param(
            ["exporter", "--config", "{config}", "--once", "--textfile", "{tmp}/out.txt"],
            "out.txt",
            id="textfile-suffix",
        ),
        pytest.param(
            ["exporter", "--config", "{config}", "--textfile", "{tmp}/out.prom"],
            "--once",
            id="textfile-without-once",
        ),
        pytest.param(
            ["exporter", "--config", "{config}", "--listen", "127.0.0.1"],
            "127.0.0.1",
            id="listen-without-port",
        ),
        pytest.param(
            ["exporter", "--config", "{config}", "--log-format", "xml"],
            "xml",
            id="log-format",
        ),
    ],
)
def test_usage_error_exits_3_naming_value(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], text: str
) -> None:
    config = write_config(tmp_path)
    filled = [arg.format(config=config, tmp=tmp_path) for arg in args]
    code, _, err = run_main(capsys, *filled)
    assert code == 3
    assert text in err


def test_foreign_exporters_package_rejected(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(exporters, "SMTPDIAG_PACKAGE", "someone.else")
    code, _, err = run_main(capsys, "exporter", "--config", str(write_config(tmp_path)), "--once")
    assert code == 3
    assert "is not smtpdiag's" in err


def test_foreign_exporters_package_rejected_by_rules(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exporters, "SMTPDIAG_PACKAGE", "someone.else")
    code, _, _ = run_main(capsys, "rules")
    assert code == 3


@pytest.fixture(scope="module")
def lab() -> Iterator[LabInfo]:
    with start_lab(get_scenario("healthy")) as info:
        yield info


def lab_exporter_config(lab: LabInfo, tmp_path: Path) -> Path:
    path = tmp_path / "exporter.toml"
    text = lab.config_file.read_text(encoding="utf-8")
    path.write_text(text + '\n[exporter]\njobs = ["connect", "tls"]\n', encoding="utf-8")
    return path


def test_once_prints_metrics(
    capsys: pytest.CaptureFixture[str], lab: LabInfo, tmp_path: Path
) -> None:
    code, out, _ = run_main(
        capsys, "exporter", "--config", str(lab_exporter_config(lab, tmp_path)), "--once"
    )
    assert code == 0
    assert 'smtpdiag_up{target="lab"} 1.0' in out


def test_once_config_from_environment(
    capsys: pytest.CaptureFixture[str],
    lab: LabInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMTPDIAG_CONFIG", str(lab_exporter_config(lab, tmp_path)))
    code, out, _ = run_main(capsys, "exporter", "--once")
    assert code == 0
    assert 'smtpdiag_check_success{check="tls",target="lab"} 1.0' in out


def test_once_textfile(capsys: pytest.CaptureFixture[str], lab: LabInfo, tmp_path: Path) -> None:
    textfile = tmp_path / "smtpdiag.prom"
    config = lab_exporter_config(lab, tmp_path)
    code, out, _ = run_main(
        capsys, "exporter", "--config", str(config), "--once", "--textfile", str(textfile)
    )
    assert code == 0
    assert out == ""
    assert "smtpdiag_build_info" in textfile.read_text()


def test_once_unreachable_target_exits_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run_main(capsys, "exporter", "--config", str(write_config(tmp_path)), "--once")
    assert code == 0
    assert 'smtpdiag_up{target="relay"} 0.0' in out


def test_rules_prints_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "rules")
    assert code == 0
    assert isinstance(yaml.safe_load(out)["groups"], list)


def test_rules_runbook_base(capsys: pytest.CaptureFixture[str]) -> None:
    base = "https://git.example.com/ops/smtpdiag/-/blob/main/"
    _, out, _ = run_main(capsys, "rules", "--runbook-base", base)
    urls = [
        rule["annotations"]["runbook_url"]
        for group in yaml.safe_load(out)["groups"]
        for rule in group["rules"]
        if "runbook_url" in rule.get("annotations", {})
    ]
    assert urls
    assert all(url.startswith(f"{base}docs/runbooks/") for url in urls)


def test_rules_invalid_base_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "rules", "--runbook-base", "git.example.com/ops")
    assert code == 3
    assert "git.example.com/ops" in err


def test_help_keeps_table_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "exporter", "--help")
    assert code == 0
    assert "[targets.NAME]" in out
    assert "[exporter]" in out
