"""A process exports its build, its process and Python metrics, and its error counters at 0."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from alerting.notifiers import NotificationConfig
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.telemetry import (
    ALERTING_ERROR_PLACES,
    DROP_REASONS,
    INGEST_ERROR_KINDS,
    export_known_series,
)
from monitor.core.metrics import Metrics
from tests.conftest import REPO

CONFIG = VqmConfig(
    channels=[ChannelConfig(id="news", url="http://origin/news.m3u8")],
    notifications=NotificationConfig.model_validate(
        {"notifiers": {"am": {"type": "alertmanager", "url": "http://am:9093"}}}
    ),
)


def exported(stages: set[str]) -> dict[str, float]:
    metrics = Metrics(CollectorRegistry())
    export_known_series(metrics, CONFIG, stages, revision="abc123")
    samples = {}
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_the_registry_carries_process_and_python_metrics() -> None:
    samples = exported(set())
    assert "process_cpu_seconds_total" in samples
    assert any(name.startswith("python_info{") for name in samples)
    assert any(name.startswith("python_gc_objects_collected_total") for name in samples)


def test_build_info_names_each_stage_run_here_and_not_the_api() -> None:
    build = [n for n in exported({"ingest", "alert", "api"}) if n.startswith("vqm_build_info")]
    assert len(build) == 2
    assert all('revision="abc123"' in n and 'python="3.' in n for n in build)
    assert {re.search(r'stage="(\w+)"', n).group(1) for n in build} == {"ingest", "alert"}  # type: ignore[union-attr]


def test_each_stage_exports_its_error_counters_at_zero_for_known_labels() -> None:
    samples = exported({"ingest", "infer", "alert"})
    for series in (
        'vqm_ingest_errors_total{channel="news",kind="http_error"}',
        'vqm_ingest_errors_total{channel="news",kind="internal"}',
        'vqm_decode_errors_total{channel="news"}',
        'vqm_detector_errors_total{channel="news",detector="black"}',
        'vqm_invalid_messages_total{topic="vqm.segments"}',
        'vqm_poison_records_total{topic="vqm.detections"}',
        'vqm_alerting_errors_total{where="resend"}',
        'vqm_notification_failures_total{notifier="am",retriable="false"}',
        'vqm_notifications_dropped_total{notifier="am",reason="expired"}',
    ):
        assert samples.get(series) == 0.0, series


def test_an_alert_process_exports_no_ingest_or_inference_errors() -> None:
    samples = exported({"alert"})
    assert not any(n.startswith(("vqm_ingest_errors", "vqm_decode_errors")) for n in samples)


def _literals(pattern: str, *folders: str) -> set[str]:
    found: set[str] = set()
    for folder in folders:
        for path in Path(REPO, folder).rglob("*.py"):
            found |= set(re.findall(pattern, path.read_text()))
    return found


def test_the_known_label_values_cover_every_one_the_code_counts() -> None:
    """A new place or reason in the code must be added here too, or it starts at "No data"."""
    assert _literals(r'labels\(where="(\w+)"\)', "alerting") == set(ALERTING_ERROR_PLACES)
    assert _literals(r'_drop\(entry, "(\w+)"', "alerting") == set(DROP_REASONS)
    assert _literals(r'ingest_errors\.labels\(.*kind="(\w+)"', "stream_ingest") <= set(
        INGEST_ERROR_KINDS
    )
