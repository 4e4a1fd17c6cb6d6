"""Every Prometheus metric vqm exports, created against one explicit registry.

Each process builds one :class:`Metrics` and hands it to its stages; tests build their own
with a fresh ``CollectorRegistry``, so no metric is ever registered twice. The registry also
carries prometheus_client's process, platform and GC collectors (``process_*``,
``python_*``), which a registry of one's own does not get by default.

    metrics = Metrics(CollectorRegistry())
    metrics.segments_ingested.labels(channel="news").inc()
    metrics.announce({"alert"}, revision="4f2a9c0")   # vqm_build_info of the stages run
    metrics.zero(metrics.alerting_errors, [{"where": "tick"}])   # a panel shows 0, not "No data"
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60)
_PROCESSING_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8)


class Metrics:
    """The metric families of DESIGN.md, prefixed ``vqm_``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        _add_runtime_collectors(r)
        self.build_info = Gauge(
            "vqm_build_info",
            "1 per stage this process runs (ingest, infer, alert), with the release, the "
            "source revision and the Python it runs on: which version runs where.",
            ["version", "revision", "python", "stage"],
            registry=r,
        )
        self.segments_ingested = Counter(
            "vqm_segments_ingested",
            "Segments fetched and published by ingest.",
            ["channel"],
            registry=r,
        )
        self.ingest_errors = Counter(
            "vqm_ingest_errors",
            "Ingest problems by kind (http_error, timeout, ...).",
            ["channel", "kind"],
            registry=r,
        )
        self.segments_processed = Counter(
            "vqm_segments_processed",
            "Segments decoded and analysed by inference.",
            ["channel"],
            registry=r,
        )
        self.decode_errors = Counter(
            "vqm_decode_errors", "Segments that could not be decoded.", ["channel"], registry=r
        )
        self.detector_errors = Counter(
            "vqm_detector_errors",
            "Segments a detector raised on; it gave no verdict, the other detectors carried on.",
            ["channel", "detector"],
            registry=r,
        )
        self.measurement = Gauge(
            "vqm_detector_measurement",
            "A detector's newest reading of a channel, by name (loudness: momentary_lufs, "
            "short_term_lufs, integrated_lufs, range_lu, true_peak_dbtp).",
            ["channel", "detector", "name"],
            registry=r,
        )
        self.poison_records = Counter(
            "vqm_poison_records",
            "Bus records that failed to process (not for a bus or store outage) and were "
            "skipped after retries, so one bad record never stalls a channel.",
            ["topic"],
            registry=r,
        )
        self.bus_errors = Counter(
            "vqm_bus_errors",
            "Bus polls, publishes or commits that failed with a retriable error (a broker "
            "restart, a rebalance) and were tried again after a pause; nothing committed is "
            "lost, what was not comes again.",
            ["topic"],
            registry=r,
        )
        self.bus_dropped = Counter(
            "vqm_bus_dropped_records",
            "One-process mode: records the memory bus dropped at its size cap before every "
            "consumer group read them (a stage that cannot keep up).",
            ["topic"],
            registry=r,
        )
        self.invalid_messages = Counter(
            "vqm_invalid_messages",
            "Bus messages that failed validation and were skipped.",
            ["topic"],
            registry=r,
        )
        self.processing_seconds = Histogram(
            "vqm_processing_seconds",
            "Decode plus detector time per segment.",
            ["channel", "detector"],
            buckets=_PROCESSING_BUCKETS,
            registry=r,
        )
        self.detection_latency = Histogram(
            "vqm_detection_latency_seconds",
            "From segment fetch to detection published.",
            ["channel", "detector"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.detections = Counter(
            "vqm_detections",
            "Detector results that contained a defect.",
            ["channel", "detector"],
            registry=r,
        )
        # The severity is the one the engine gave each alert (the detector's, else the
        # channel's), so the rules copy it instead of keeping severities of their own.
        self.active_alerts = Gauge(
            "vqm_active_alerts",
            "Alerts open now, by the severity vqm pages them with.",
            ["channel", "detector", "severity"],
            registry=r,
        )
        self.alerts_opened = Counter(
            "vqm_alerts_opened", "Alerts opened.", ["channel", "detector"], registry=r
        )
        self.channel_up = Gauge(
            "vqm_channel_up",
            "1 while the channel delivers segments, 0 when down.",
            ["channel"],
            registry=r,
        )
        self.ingest_up = Gauge(
            "vqm_ingest_up",
            "1 while ingest gets segments from the origin; 0 when failing or stale.",
            ["channel"],
            registry=r,
        )
        self.last_segment_timestamp = Gauge(
            "vqm_last_segment_timestamp_seconds",
            "Wall clock of the channel's latest segment.",
            ["channel"],
            registry=r,
        )
        self.model_info = Gauge(
            "vqm_model_info",
            "Models in use; value 1 (a reloaded model's old series is removed).",
            ["model", "version", "provider", "sha256"],
            registry=r,
        )
        self.samples_kept = Counter(
            "vqm_samples_kept",
            "Flagged segments kept in the sample store for training on operator feedback.",
            ["channel"],
            registry=r,
        )
        self.samples_evicted = Counter(
            "vqm_samples_evicted",
            "Samples dropped from the store, by bound (retention, quota, size).",
            ["reason"],
            registry=r,
        )
        self.candidates_kept = Counter(
            "vqm_candidates_kept",
            "Analysed frames kept as annotation candidates for `vqm label queue`.",
            ["channel", "detector"],
            registry=r,
        )
        self.sample_errors = Counter(
            "vqm_sample_errors",
            "Flagged segments that could not be kept (disk full, permissions); analysis goes on.",
            ["channel"],
            registry=r,
        )
        self.model_reloads = Counter(
            "vqm_model_reloads",
            "New model versions put in place without a restart.",
            ["model"],
            registry=r,
        )
        self.model_reload_refusals = Counter(
            "vqm_model_reload_refusals",
            "New model files refused (hash or input spec unlike the card, or not loadable); "
            "the model in use stays.",
            ["model"],
            registry=r,
        )
        self.notifications_delivered = Counter(
            "vqm_notifications_delivered",
            "Alert transitions a receiver accepted.",
            ["notifier"],
            registry=r,
        )
        self.notification_failures = Counter(
            "vqm_notification_failures",
            "Failed sends, by whether they will be retried.",
            ["notifier", "retriable"],
            registry=r,
        )
        self.notifications_dropped = Counter(
            "vqm_notifications_dropped",
            "Entries given up (refused, too old, unknown notifier).",
            ["notifier", "reason"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "vqm_outbox_pending", "Notifier deliveries waiting to be sent.", registry=r
        )
        self.alerting_errors = Counter(
            "vqm_alerting_errors",
            "Failures inside alerting that it carried on after (listener, tick, outbox).",
            ["where"],
            registry=r,
        )

    def announce(self, stages: Iterable[str], revision: str = "unknown") -> None:
        """``vqm_build_info`` = 1 for each stage run here; the rules' absent() checks read it."""
        for stage in sorted(stages):
            self.build_info.labels(
                version=vqm_version(),
                revision=revision,
                python=platform.python_version(),
                stage=stage,
            ).set(1)

    @staticmethod
    def zero(family: MetricWrapperBase, label_sets: Iterable[Mapping[str, str]]) -> None:
        """Export these label combinations of a labelled family now, at zero.

        A labelled counter has no series until its first increment, so a panel or a
        ``rate()`` over an error that never happened shows "No data", which a NOC cannot
        tell from a broken scrape.
        """
        for labels in label_sets:
            family.labels(**labels)


def vqm_version() -> str:
    """The installed distribution's version; "unknown" from a checkout not installed."""
    try:
        return metadata.version("vqm")
    except metadata.PackageNotFoundError:
        return "unknown"


def _add_runtime_collectors(registry: CollectorRegistry) -> None:
    """process_* (CPU, memory, open files), python_info and python_gc_* on ``registry``.

    The default registry has them; a registry of one's own must add them, each its own
    instances (the global ones belong to the default registry).
    """
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
