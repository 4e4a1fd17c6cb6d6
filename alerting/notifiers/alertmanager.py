"""Alertmanager: vqm alerts join Prometheus' alerts in the same routing, grouping and silences.

Each transition POSTs a one-alert list to ``{url}/api/v2/alerts``. Alertmanager tells alerts
apart by their labels, so the alert id is a label too: an older alert's resolve then never
ends a newer alert of the same channel and detector.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from alerting.models import Alert, AlertEvent, AlertTransition
from alerting.notifiers.base import HttpNotifier, NotifierConfig, rfc3339
from alerting.notifiers.registry import register


class AlertmanagerConfig(NotifierConfig):
    """An Alertmanager (v0.22 or later: API v2)."""

    type: Literal["alertmanager"] = "alertmanager"
    firing_timeout: float = Field(
        default=24 * 3600,
        gt=0,
        description="endsAt sent with an open alert, seconds ahead: Alertmanager resolves it by "
        "itself if vqm stops and never sends the resolve. Longer than any defect you expect.",
    )
    generator_url: str | None = Field(
        default=None,
        description="Link back to vqm shown in Alertmanager; '{channel}' and '{id}' are filled in.",
    )
    extra_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels added to every alert (e.g. site, team)."
    )


@register
class AlertmanagerNotifier(HttpNotifier):
    """POSTs alerts to Alertmanager's v2 API."""

    key = "alertmanager"
    config_class = AlertmanagerConfig
    config: AlertmanagerConfig

    async def send(self, event: AlertEvent) -> None:
        await self.post(f"{self.url}/api/v2/alerts", json=[self.payload(event)])

    def payload(self, event: AlertEvent) -> dict[str, Any]:
        """One postable alert: labels, annotations, startsAt, endsAt."""
        alert = event.alert
        body: dict[str, Any] = {
            "labels": self.labels(alert),
            "annotations": alert_annotations(alert),
            "startsAt": rfc3339(alert.opened_at),
            "endsAt": rfc3339(self.ends_at(event)),
        }
        if self.config.generator_url:
            body["generatorURL"] = self.config.generator_url.format(
                channel=alert.channel_id, id=alert.id
            )
        return body

    def labels(self, alert: Alert) -> dict[str, str]:
        labels = {
            **self.config.extra_labels,
            "alertname": f"vqm_{alert.detector}",
            "channel": alert.channel_id,
            "detector": alert.detector,
            "severity": alert.severity,
            "alert_id": alert.id,
        }
        if alert.label:
            labels["label"] = alert.label
        return labels

    def ends_at(self, event: AlertEvent) -> float:
        """The resolve time once resolved; until then a time far enough ahead to stay firing."""
        alert = event.alert
        if event.transition is AlertTransition.RESOLVED:
            return alert.resolved_at or alert.updated_at
        return self.clock() + self.config.firing_timeout


def alert_annotations(alert: Alert) -> dict[str, str]:
    what = alert.detector + (f" ({alert.label})" if alert.label else "")
    summary = alert.summary or f"{what} on {alert.channel_id}"
    description = (
        f"{what} on channel {alert.channel_id}, media {alert.start:.2f}s to {alert.end:.2f}s, "
        f"confidence {alert.confidence:.2f}"
    )
    if alert.offset_ms is not None:
        description += f", audio offset {alert.offset_ms:+.0f} ms"
    return {"summary": summary, "description": description}
