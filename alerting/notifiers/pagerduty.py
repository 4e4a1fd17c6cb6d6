"""PagerDuty Events API v2: open pages an incident, resolve closes the same one.

The alert id is the ``dedup_key``, so a re-sent trigger (at-least-once delivery) adds nothing
to the open incident, and the resolve finds it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AnyHttpUrl, Field, SecretStr

from alerting.models import Alert, AlertEvent, AlertTransition
from alerting.notifiers.base import HttpNotifier, NotifierConfig, rfc3339
from alerting.notifiers.registry import register

# vqm severities -> the four PagerDuty knows.
SEVERITY = {
    "critical": "critical",
    "major": "error",
    "minor": "warning",
    "warning": "warning",
    "info": "info",
}
_SUMMARY_MAX = 1024  # PagerDuty refuses longer summaries


class PagerDutyConfig(NotifierConfig):
    """A PagerDuty service integration (Events API v2)."""

    type: Literal["pagerduty"] = "pagerduty"
    url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://events.pagerduty.com"),
        description="Events API host; '/v2/enqueue' is added.",
    )
    routing_key: SecretStr = Field(description="The service integration's routing key.")
    client_url: str | None = Field(
        default=None, description="Link back to vqm shown on the incident."
    )


@register
class PagerDutyNotifier(HttpNotifier):
    """Triggers and resolves PagerDuty incidents, one per vqm alert."""

    key = "pagerduty"
    config_class = PagerDutyConfig
    config: PagerDutyConfig

    async def send(self, event: AlertEvent) -> None:
        await self.post(f"{self.url}/v2/enqueue", json=self.payload(event))

    def payload(self, event: AlertEvent) -> dict[str, Any]:
        alert = event.alert
        body: dict[str, Any] = {
            "routing_key": self.config.routing_key.get_secret_value(),
            "dedup_key": alert.id,
            "event_action": "resolve"
            if event.transition is AlertTransition.RESOLVED
            else "trigger",
            "client": "vqm",
        }
        if self.config.client_url:
            body["client_url"] = self.config.client_url
        if body["event_action"] == "trigger":
            body["payload"] = trigger_payload(alert)
        return body


def trigger_payload(alert: Alert) -> dict[str, Any]:
    what = alert.detector + (f" ({alert.label})" if alert.label else "")
    summary = alert.summary or f"{what} on {alert.channel_id}"
    return {
        "summary": summary[:_SUMMARY_MAX],
        "source": alert.channel_id,
        "severity": SEVERITY.get(alert.severity, "error"),
        "timestamp": rfc3339(alert.opened_at),
        "component": alert.detector,
        "group": alert.channel_id,
        "class": what,
        "custom_details": alert.model_dump(mode="json", exclude_none=True),
    }
