"""What a process says about itself on /metrics before anything happens.

``vqm_build_info`` names the stages a process runs (the rules' ``absent()`` checks look for
each stage by it), and every labelled error counter the stages may raise is exported at zero
for the label combinations known up front (channels, detectors, topics, notifiers, kinds), so
a panel or a ``rate()`` shows 0 instead of "No data" until the first error.

    export_known_series(metrics, config, {"alert"}, revision="4f2a9c0")
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.app.config import VqmConfig
from monitor.core.messages import INFORMATIONAL_KINDS, StreamEventKind
from monitor.core.metrics import Metrics

STAGES = frozenset({"ingest", "infer", "alert"})
# Ingest counts every finding but the informational ones (a recovery, a gap or an ad break
# the origin declares; stream_ingest.sources.hls), and "internal" for a failure of its own;
# decode errors are inference's and counted as vqm_decode_errors.
INGEST_ERROR_KINDS = tuple(
    sorted(
        {k.value for k in StreamEventKind if k not in INFORMATIONAL_KINDS} - {"decode_error"}
        | {"internal"}
    )
)
# Every place alerting counts a failure it carried on after (vqm_alerting_errors{where}):
# the engine's listeners, the worker's tick, poll and messages, the outbox, the resender.
ALERTING_ERROR_PLACES = ("listener", "message", "outbox", "poll", "resend", "tick")
# Every reason the outbox drops an entry for (vqm_notifications_dropped{reason}).
DROP_REASONS = ("expired", "refused", "unknown_notifier")


def export_known_series(
    metrics: Metrics, config: VqmConfig, stages: Iterable[str], revision: str = "unknown"
) -> None:
    """Build info for the stages run here, and their error counters at zero."""
    run = STAGES & set(stages)
    metrics.announce(run, revision=revision)
    channels = [c.id for c in config.channels]
    topics = config.topics
    if "ingest" in run:
        kinds = [{"channel": c, "kind": k} for c in channels for k in INGEST_ERROR_KINDS]
        metrics.zero(metrics.ingest_errors, kinds)
    if "infer" in run:
        metrics.zero(metrics.decode_errors, [{"channel": c} for c in channels])
        detectors = [
            {"channel": c.id, "detector": d}
            for c in config.channels
            for d in config.detectors_for(c)
        ]
        metrics.zero(metrics.detector_errors, detectors)
        _zero_topics(metrics, [topics.segments])
    if "alert" in run:
        _zero_topics(metrics, [topics.detections, topics.stream_events])
        _zero_alerting(metrics, list(config.notifications.notifiers))


def _zero_topics(metrics: Metrics, topics: list[str]) -> None:
    for family in (metrics.invalid_messages, metrics.poison_records, metrics.bus_errors):
        metrics.zero(family, [{"topic": t} for t in topics])


def _zero_alerting(metrics: Metrics, notifiers: list[str]) -> None:
    metrics.zero(metrics.alerting_errors, [{"where": w} for w in ALERTING_ERROR_PLACES])
    metrics.zero(
        metrics.notification_failures,
        [{"notifier": n, "retriable": r} for n in notifiers for r in ("true", "false")],
    )
    metrics.zero(
        metrics.notifications_dropped,
        [{"notifier": n, "reason": r} for n in notifiers for r in DROP_REASONS],
    )
