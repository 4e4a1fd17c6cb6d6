"""PagerDuty Events API v2: open pages an incident, resolve closes the same one.

The alert id is the ``dedup_key``, so a re-sent trigger (at-least-once delivery) adds nothing
to the open incident, and the resolve finds it. With a public URL the trigger carries the
channel's tile on the wall as ``client_url`` and in ``links``, and the picture kept when the
alert opened in ``images`` (PagerDuty shows only images served over HTTPS, so an ``http``
public URL gets no image).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AnyHttpUrl, Field, SecretStr

from alerting.models import Alert, AlertEvent, AlertTransition
from alerting.notifiers.base import HttpNotifier, NotifierConfig, rfc3339
from alerting.notifiers.registry import register
from alerting.notifiers.text import headline, what

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
        default=None,
        description="Link back to vqm shown on the incident; default: the channel's tile on "
        "the wall under VQM_PUBLIC_URL.",
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
        client_url = self.config.client_url or (self.links and self.links.wall(alert.channel_id))
        if client_url:
            body["client_url"] = client_url
        if body["event_action"] == "trigger":
            body["payload"] = trigger_payload(alert)
            body.update(self.attachments(alert))
        return body

    def attachments(self, alert: Alert) -> dict[str, Any]:
        """``links`` to the wall and ``images`` of the picture, when there are links."""
        if self.links is None:
            return {}
        wall = self.links.wall(alert.channel_id)
        extra: dict[str, Any] = {"links": [{"href": wall, "text": "Channel on the vqm wall"}]}
        picture = self.links.picture(alert)
        if picture and picture.startswith("https://"):
            alt = f"{alert.channel_id} when the alert opened"
            extra["images"] = [{"src": picture, "href": wall, "alt": alt}]
        return extra


def trigger_payload(alert: Alert) -> dict[str, Any]:
    return {
        "summary": headline(alert)[:_SUMMARY_MAX],
        "source": alert.channel_id,
        "severity": SEVERITY.get(alert.severity, "error"),
        "timestamp": rfc3339(alert.opened_at),
        "component": alert.detector,
        "group": alert.channel_id,
        "class": what(alert),
        "custom_details": alert.model_dump(mode="json", exclude_none=True),
    }
