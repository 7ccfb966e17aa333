"""The fast text format writer against prometheus_client's generate_latest, byte for byte."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from test_collector import full_registry  # noqa: F401 (fixture)

from exporters.exposition import render_text


class Families:
    """Collector that returns fixed families, for a registry of test data."""

    def __init__(self, *families: Metric) -> None:
        self.families = families

    def collect(self) -> tuple[Metric, ...]:
        return self.families

    def describe(self) -> tuple[Metric, ...]:
        return ()


def library_text(*families: Metric) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families(*families))  # type: ignore[arg-type]
    return generate_latest(registry)


def test_full_scrape_identical(full_registry: CollectorRegistry) -> None:  # noqa: F811
    ProcessCollector(registry=full_registry)
    # One collect for both writers: the scrape duration and CPU time change between collects.
    families = list(full_registry.collect())
    assert render_text(families) == library_text(*families)


def gauge(*samples: tuple[list[str], float], help_text: str = "help") -> GaugeMetricFamily:
    family = GaugeMetricFamily("smtpdiag_test", help_text, labels=["target", "check"])
    for labels, value in samples:
        family.add_metric(labels, value)
    return family


@pytest.mark.parametrize(
    "value",
    [
        0.0,
        -0.0,
        1.0,
        2,
        0.25,
        1.7e9,
        1796439218.434499,
        123456789.0,
        -3.5,
        1e-7,
        math.inf,
        -math.inf,
        math.nan,
    ],
    ids=str,
)
def test_values_identical(value: float) -> None:
    family = gauge((["relay", "tls"], value), (["relay", "auth"], 0.0))
    assert render_text([family]) == library_text(family)


@pytest.mark.parametrize(
    "text",
    ['quote " inside', "back\\slash", "new\nline", "tab\tand é ü 中文", "", "{}=,"],
    ids=["quote", "backslash", "newline", "unicode", "empty", "punctuation"],
)
def test_label_values_escaped_identically(text: str) -> None:
    family = gauge(([text, "tls"], 1.0))
    assert render_text([family]) == library_text(family)


def test_help_escaped_identically() -> None:
    family = gauge((["relay", "tls"], 1.0), help_text='line one\nback\\slash "quoted"')
    assert render_text([family]) == library_text(family)


def test_counter_identical() -> None:
    family = CounterMetricFamily("smtpdiag_test_attempts", "help", labels=["source"])
    family.add_metric(["msmtp"], 12)
    family.add_metric(["postfix"], 0)
    assert render_text([family]) == library_text(family)


def test_unlabelled_gauge_identical() -> None:
    family = GaugeMetricFamily("smtpdiag_test_gauge", "help", value=3)
    assert render_text([family]) == library_text(family)


def test_unsupported_type_rejected() -> None:
    family = InfoMetricFamily("smtpdiag_test", "help", value={"version": "1"})
    with pytest.raises(ValueError, match="not supported"):
        render_text([family])


def test_timestamp_rejected() -> None:
    family = GaugeMetricFamily("smtpdiag_test", "help")
    family.samples.append(Sample("smtpdiag_test", {}, 1.0, timestamp=5.0))
    with pytest.raises(ValueError, match="not supported"):
        render_text([family])


def test_created_sample_rejected() -> None:
    family = CounterMetricFamily("smtpdiag_test", "help", value=1, created=100.0)
    with pytest.raises(ValueError, match="not supported"):
        render_text([family])


def test_label_name_needing_quotes_rejected() -> None:
    family = GaugeMetricFamily("smtpdiag_test", "help", labels=["target.name"])
    family.add_metric(["relay"], 1.0)
    with pytest.raises(ValueError, match="needs quoting"):
        render_text([family])
