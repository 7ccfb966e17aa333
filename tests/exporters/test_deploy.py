"""Deploy examples: the files parse, Prometheus accepts its configuration, the dashboard reads
only exported or recorded series, and the systemd unit and Kubernetes sidecar keep their
contracts (credentials, reload, health endpoints, secret file mode)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from promql_names import DEPLOY, known_metrics, load_rules, metric_names
from system_programs import require_program

from exporters.descriptors import DEFAULT_OPEN_AT_START, descriptor_need
from exporters.settings import (
    DEFAULT_INTERVALS,
    JOBS,
    MAX_CONNECTIONS,
    MAX_WORKERS,
    ExporterConfig,
    ExporterTarget,
    WebSettings,
)
from smtpdiag.context import Settings, Target, TlsMode

YAML_FILES = ["kubernetes.yaml", "prometheus.yml", "alertmanager.yml"]
ALERT_NAMES = {str(rule["alert"]) for rule in load_rules() if "alert" in rule}


def load_yaml(name: str) -> list[Any]:
    return list(yaml.safe_load_all((DEPLOY / name).read_text(encoding="utf-8")))


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8")
    )
    return loaded


def dashboard_expressions() -> list[str]:
    expressions = [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(SELECTOR, LABEL) reads the series of SELECTOR.
            found = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["definition"])
            assert found is not None, variable["definition"]
            expressions.append(found.group(1))
    return expressions


def unit_settings() -> dict[str, list[str]]:
    """Return the [Service] settings of the systemd unit, each key with all its values."""
    settings: dict[str, list[str]] = {}
    section = ""
    text = (DEPLOY / "smtpdiag-exporter.service").read_text(encoding="utf-8")
    for line in (raw.strip() for raw in text.splitlines()):
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def exporter_container() -> dict[str, Any]:
    deployment = next(doc for doc in load_yaml("kubernetes.yaml") if doc["kind"] == "Deployment")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = next(c for c in containers if c["name"] == "smtpdiag-exporter")
    return found


@pytest.mark.parametrize("name", YAML_FILES)
def test_yaml_parses(name: str) -> None:
    assert all(document is not None for document in load_yaml(name))


def test_dashboard_parses() -> None:
    assert dashboard()["panels"] != []


def test_prometheus_config_valid() -> None:
    promtool = require_program("promtool")
    result = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("expression", dashboard_expressions())
def test_dashboard_reads_known_metrics(expression: str) -> None:
    assert metric_names(expression) - known_metrics() == set()


def test_dashboard_shows_failure_ratio_rule() -> None:
    expressions = " ".join(dashboard_expressions())
    assert "job_provider:smtpdiag_auth_failures_per_auth_attempts:ratio_rate15m" in expressions


def test_probe_job_relabels_target() -> None:
    config = load_yaml("prometheus.yml")[0]
    jobs = config["scrape_configs"]
    probe = next(job for job in jobs if job.get("metrics_path") == "/probe")
    targets = [
        (tuple(rule.get("source_labels", ())), rule["target_label"])
        for rule in probe["relabel_configs"]
    ]
    assert targets == [
        (("__address__",), "__param_target"),
        (("__param_target",), "instance"),
        ((), "__address__"),
    ]


def test_metrics_job_named_smtpdiag() -> None:
    config = load_yaml("prometheus.yml")[0]
    assert "smtpdiag" in [job["job_name"] for job in config["scrape_configs"]]


def test_alertmanager_matchers_name_real_alerts() -> None:
    config = load_yaml("alertmanager.yml")[0]
    matchers = [m for route in config["route"]["routes"] for m in route["matchers"]]
    for rule in config["inhibit_rules"]:
        matchers += rule["source_matchers"] + rule["target_matchers"]
    named = {m.split("=", 1)[1].strip('"') for m in matchers if m.startswith("alertname=")}
    assert named - ALERT_NAMES == set()


def test_alertmanager_groups_by_alert_job_provider() -> None:
    group_by = load_yaml("alertmanager.yml")[0]["route"]["group_by"]
    assert {"alertname", "job", "provider"} <= set(group_by)


def test_systemd_unit_loads_credentials() -> None:
    credentials = unit_settings().get("LoadCredential", [])
    assert {value.split(":")[0] for value in credentials} >= {"refresh_token", "client_secret"}


def test_systemd_unit_reloads_with_sighup() -> None:
    assert unit_settings().get("ExecReload") == ["/bin/kill -HUP $MAINPID"]


def test_systemd_unit_runs_exporter() -> None:
    (command,) = unit_settings()["ExecStart"]
    assert " exporter --config " in command


def largest_need() -> int:
    """Return the descriptor estimate of the largest configuration without log files: every
    job of ``MAX_WORKERS`` targets, ``MAX_WORKERS`` workers and ``MAX_CONNECTIONS``."""
    target = ExporterTarget(
        "t", Target(host="127.0.0.1", port=587, tls_mode=TlsMode.STARTTLS), Settings(), "generic"
    )
    config = ExporterConfig(
        path="/etc/smtpdiag/smtpdiag.toml",
        targets=(target,) * MAX_WORKERS,
        jobs=JOBS,
        intervals=DEFAULT_INTERVALS,
        jitter=0.1,
        workers=MAX_WORKERS,
        max_connections=MAX_CONNECTIONS,
        log_files=(),
        state_file=None,
        web=WebSettings(),
    )
    return descriptor_need(config, DEFAULT_OPEN_AT_START).total


def test_systemd_unit_soft_file_limit_1024() -> None:
    (limit,) = unit_settings()["LimitNOFILE"]
    assert limit.split(":")[0] == "1024"


def test_systemd_unit_hard_file_limit_fits_largest_configuration() -> None:
    (limit,) = unit_settings()["LimitNOFILE"]
    assert int(limit.split(":")[1]) >= largest_need()


@pytest.mark.parametrize(
    ("probe", "path"), [("readinessProbe", "/-/ready"), ("livenessProbe", "/-/healthy")]
)
def test_sidecar_probe_path(probe: str, path: str) -> None:
    assert exporter_container()[probe]["httpGet"]["path"] == path


def test_sidecar_listens_on_pod_address() -> None:
    assert "--listen=0.0.0.0:10587" in exporter_container()["args"]


def test_sidecar_secret_mode_0400() -> None:
    deployment = next(doc for doc in load_yaml("kubernetes.yaml") if doc["kind"] == "Deployment")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    secret = next(volume["secret"] for volume in volumes if "secret" in volume)
    assert secret["defaultMode"] == 0o400


def test_kubernetes_has_service_monitor() -> None:
    kinds = [document["kind"] for document in load_yaml("kubernetes.yaml")]
    assert kinds == ["ConfigMap", "Deployment", "Service", "ServiceMonitor"]


@pytest.mark.parametrize(
    "name", [*YAML_FILES, "grafana-dashboard.json", "smtpdiag-exporter.service"]
)
def test_readme_describes_file(name: str) -> None:
    assert f"`{name}`" in (DEPLOY / "README.md").read_text(encoding="utf-8")


def test_sidecar_configuration_loads(tmp_path: Path) -> None:
    from exporters.settings import load_exporter_config

    configmap = next(doc for doc in load_yaml("kubernetes.yaml") if doc["kind"] == "ConfigMap")
    text = configmap["data"]["smtpdiag.toml"]
    # The pod's mount points become directories under tmp_path.
    for directory in ("/var/run/secrets/smtpdiag", "/var/lib/smtpdiag", "/var/log/mail"):
        local = tmp_path / directory.strip("/").replace("/", "_")
        local.mkdir()
        text = text.replace(f"{directory}/", f"{local}/")
    (tmp_path / "var_run_secrets_smtpdiag" / "refresh_token").write_text("refresh-token\n")
    (tmp_path / "var_run_secrets_smtpdiag" / "client_secret").write_text("client-secret\n")
    config_file = tmp_path / "smtpdiag.toml"
    config_file.write_text(text, encoding="utf-8")

    config = load_exporter_config(str(config_file), environ={})

    assert [target.name for target in config.targets] == ["m365"]
    assert config.jobs == ("connect", "tls", "clock", "token", "auth")
    assert config.intervals["auth"] == 300
