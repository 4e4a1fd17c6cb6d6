"""Grafana annotations: an opening marks the moment on the dashboards, the resolve makes the
mark a region that ends at the resolve.

Each alert's annotation carries the tag ``vqm_alert:<alert id>``, so the notifier finds it
again without keeping state of its own: an opening first looks the tag up (a re-sent opening
after a timeout adds no second mark), and a resolve patches every annotation it finds with
``timeEnd``, or, when the opening never reached Grafana, creates the region whole. Tags
``vqm``, ``channel:<id>``, ``detector:<name>`` and ``severity:<level>`` let a dashboard's
annotation query pick the channel it shows. Requests carry a service account token
(``Authorization: Bearer``) that may read and write annotations.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator

from alerting.models import Alert, AlertEvent, AlertTransition
from alerting.notifiers.base import HttpNotifier, NotifierConfig, NotifierError
from alerting.notifiers.registry import register
from alerting.notifiers.text import headline, lasted, tags
from monitor.core.redact import redact_url

ALERT_TAG = "vqm_alert:{id}"
_FIND_LIMIT = 10  # more than one is a race of two openings; patch them all


class GrafanaConfig(NotifierConfig):
    """A Grafana (8 or later) that vqm may annotate."""

    type: Literal["grafana"] = "grafana"
    url: AnyHttpUrl = Field(description="Grafana's base URL; '/api/annotations' is added.")
    token: SecretStr = Field(
        min_length=1, description="Service account token with annotations:read and :write."
    )
    dashboard_uid: str | None = Field(
        default=None,
        description="Annotate this dashboard only; default: an organisation annotation, shown "
        "on every dashboard whose annotation query matches its tags.",
    )
    panel_id: int | None = Field(default=None, ge=1, description="And only this panel of it.")
    tags: list[str] = Field(default_factory=list, description="Tags added to every annotation.")

    @model_validator(mode="after")
    def _panel_needs_a_dashboard(self) -> Self:
        if self.panel_id is not None and self.dashboard_uid is None:
            raise ValueError("grafana: panel_id needs dashboard_uid (a panel of which dashboard?)")
        return self


@register
class GrafanaNotifier(HttpNotifier):
    """Annotates openings and turns them into regions at the resolve."""

    key = "grafana"
    config_class = GrafanaConfig
    config: GrafanaConfig

    async def send(self, event: AlertEvent) -> None:
        alert = event.alert
        found = await self.find(alert)
        if event.transition is not AlertTransition.RESOLVED:
            if not found:  # else it is there already: this is a re-send
                await self.create(self.annotation(alert, resolved=False))
            return
        if not found:  # the opening never reached Grafana: the whole region at once
            await self.create(self.annotation(alert, resolved=True))
            return
        end = {
            "timeEnd": _ms(alert.resolved_at or alert.updated_at),
            "text": self.text(alert, True),
        }
        for annotation_id in found:
            await self.request("PATCH", f"{self.url}/api/annotations/{annotation_id}",
                               json=end, headers=self.headers)  # fmt: skip

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.token.get_secret_value()}"}

    async def find(self, alert: Alert) -> list[int]:
        """Ids of the annotations already made for this alert."""
        params: dict[str, Any] = {
            "tags": ALERT_TAG.format(id=alert.id),
            "type": "annotation",
            "limit": _FIND_LIMIT,
        }
        if self.config.dashboard_uid is not None:
            params["dashboardUID"] = self.config.dashboard_uid
        url = f"{self.url}/api/annotations"
        response = await self.request("GET", url, params=params, headers=self.headers)
        try:
            return [int(item["id"]) for item in response.json()]
        except (ValueError, TypeError, KeyError) as exc:
            raise NotifierError(
                f"{self.name}: {redact_url(url)} answered something that is not a list of "
                "annotations",
                retriable=False,
            ) from exc

    async def create(self, annotation: dict[str, Any]) -> None:
        await self.post(f"{self.url}/api/annotations", json=annotation, headers=self.headers)

    def annotation(self, alert: Alert, resolved: bool) -> dict[str, Any]:
        """A point at the opening, or (``resolved``) the region from opening to resolve."""
        body: dict[str, Any] = {
            "time": _ms(alert.opened_at),
            "tags": tags(alert, [ALERT_TAG.format(id=alert.id), *self.config.tags]),
            "text": self.text(alert, resolved),
        }
        if resolved:
            body["timeEnd"] = _ms(alert.resolved_at or alert.updated_at)
        if self.config.dashboard_uid is not None:
            body["dashboardUID"] = self.config.dashboard_uid
        if self.config.panel_id is not None:
            body["panelId"] = self.config.panel_id
        return body

    def text(self, alert: Alert, resolved: bool) -> str:
        """The headline, how long once resolved, and the wall's link on a line of its own."""
        text = f"{headline(alert)} [{alert.severity}]"
        if resolved:
            text += f", resolved after {lasted(alert)}"
        if self.links is not None:
            text += f"\n{self.links.wall(alert.channel_id)}"
        return text


def _ms(epoch_seconds: float) -> int:
    """Grafana's times are epoch milliseconds."""
    return round(epoch_seconds * 1000)
