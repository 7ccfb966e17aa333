"""Tests of the helpers of bench/exporter.py: generated configurations, percentiles, docs page."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from exporters.settings import load_exporter_config
from smtpdiag.lab.certs import write_certificates

BENCH_FILE = Path(__file__).resolve().parents[2] / "bench" / "exporter.py"


def load_bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("exporter_bench", BENCH_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = load_bench_module()

LAB = bench.LabTarget(
    defaults={"timeout": 5, "ntp_servers": ["127.0.0.1"], "ntp_port": 12345},
    target={
        "host": "127.0.0.1",
        "port": 2525,
        "tls_mode": "starttls",
        "ca_file": '/tmp/lab "quoted"\\ca.pem',
        "user": "lab.user@example.com",
        "access_token_file": "/tmp/lab/access-token",
    },
)


def test_config_has_numbered_targets() -> None:
    document = tomllib.loads(bench.exporter_toml(LAB, 3))

    assert list(document["targets"]) == ["t000", "t001", "t002"]
    assert document["targets"]["t002"] == dict(LAB.target)
    assert document["defaults"] == dict(LAB.defaults)


def test_config_port_points_targets_at_proxy() -> None:
    document = tomllib.loads(bench.exporter_toml(LAB, 2, port=40000))

    assert [target["port"] for target in document["targets"].values()] == [40000, 40000]
    assert document["targets"]["t000"]["host"] == "127.0.0.1"


def test_config_loads_as_exporter_config(tmp_path: Path) -> None:
    # A quote and a space in the directory name exercise the TOML string escapes.
    directory = tmp_path / 'lab "quoted"'
    directory.mkdir()
    token_file = directory / "access-token"
    token_file.write_text("placeholder-token\n", encoding="utf-8")
    files = {
        "ca_file": write_certificates(directory).ca_file,
        "access_token_file": token_file,
    }
    lab = bench.LabTarget(
        defaults=LAB.defaults,
        target={**LAB.target, **{key: str(file) for key, file in files.items()}},
    )
    path = tmp_path / "exporter.toml"
    path.write_text(
        bench.exporter_toml(lab, 2, jobs=("connect", "tls"), interval=7, workers=3),
        encoding="utf-8",
    )

    config = load_exporter_config(str(path))

    assert [target.name for target in config.targets] == ["t000", "t001"]
    assert config.jobs == ("connect", "tls")
    assert {job: config.intervals[job] for job in config.jobs} == {"connect": 7.0, "tls": 7.0}
    assert config.workers == 3
    assert config.jitter == 0.0
    assert config.targets[0].target.ca_file == str(files["ca_file"])


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        pytest.param([5.0], 0.99, 5.0, id="single-value"),
        pytest.param([float(value) for value in range(1, 201)], 0.99, 198.0, id="p99-of-200"),
        pytest.param([float(value) for value in range(1, 201)], 0.50, 100.0, id="p50-of-200"),
        pytest.param([3.0, 1.0, 2.0], 0.90, 3.0, id="unsorted-input"),
    ],
)
def test_percentile_nearest_rank(values: list[float], fraction: float, expected: float) -> None:
    assert bench.percentile(values, fraction) == expected


def test_count_series_skips_comments() -> None:
    text = '# HELP a_total A.\n# TYPE a_total counter\na_total 1.0\nb{x="1"} 2.0\n# EOF\n'

    assert bench.count_series(text) == 2


def test_docs_section_created_at_end(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## Log analysis\n\nold text\n", encoding="utf-8")

    bench.write_docs(docs, "### 2026-01-01 00:00 UTC\n\nrun-one\n")
    text = docs.read_text(encoding="utf-8")

    assert text.startswith("# Benchmarks\n\n## Log analysis\n\nold text\n")
    assert text.index("## Exporter\n") > text.index("old text")
    assert text.endswith("### 2026-01-01 00:00 UTC\n\nrun-one\n")


def test_docs_newest_run_first(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n", encoding="utf-8")

    bench.write_docs(docs, "### 2026-01-01 00:00 UTC\n\nrun-one\n")
    bench.write_docs(docs, "### 2026-01-02 00:00 UTC\n\nrun-two\n")
    text = docs.read_text(encoding="utf-8")

    assert text.count("## Exporter\n") == 1
    assert text.index("run-two") < text.index("run-one")


def test_docs_run_stays_inside_section(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(
        "# Benchmarks\n\n## Exporter\n\nintro\n\n### 2026-01-01 00:00 UTC\n\nrun-one\n\n"
        "## Later section\n\nlater text\n",
        encoding="utf-8",
    )

    bench.write_docs(docs, "### 2026-01-02 00:00 UTC\n\nrun-two\n")
    text = docs.read_text(encoding="utf-8")

    assert text.index("intro") < text.index("run-two") < text.index("run-one")
    assert text.endswith("## Later section\n\nlater text\n")
