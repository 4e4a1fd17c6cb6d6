"""Opsgenie Alert API: open creates an alert, resolve closes the same one.

The vqm alert id is the Opsgenie ``alias``: Opsgenie keeps one open alert per alias, so a
re-sent create (at-least-once delivery) only adds to its count, and the close finds it by
``identifierType=alias``. Requests carry ``Authorization: GenieKey <api_key>`` (an API
integration's key) to the account's region, US or EU. Opsgenie processes both asynchronously:
202 means accepted. Opsgenie shows no images, so the picture and wall links go in the
description and the details.
"""

from __future__ import annotations

from typing import Any, Literal, Self
from urllib.parse import quote

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, model_validator

from alerting.models import Alert, AlertEvent, AlertTransition
from alerting.notifiers.base import HttpNotifier, NotifierConfig
from alerting.notifiers.registry import register
from alerting.notifiers.text import facts, headline, lasted, tags, what

REGIONS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
PRIORITY = {"critical": "P1", "major": "P2", "minor": "P3", "warning": "P4", "info": "P5"}
# Opsgenie's limits: longer values are refused or cut.
_MESSAGE_MAX = 130
_DESCRIPTION_MAX = 15000
_TAGS_MAX = 20


class OpsgenieResponder(BaseModel):
    """Who Opsgenie notifies: a team, user, escalation or schedule, by name or id."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["team", "user", "escalation", "schedule"]
    name: str | None = Field(default=None, description="Name (a user's is their username).")
    id: str | None = Field(default=None, description="Opsgenie id, instead of the name.")

    @model_validator(mode="after")
    def _one_identifier(self) -> Self:
        if (self.name is None) == (self.id is None):
            raise ValueError(f"opsgenie responder ({self.type}): give `name` or `id`, one of them")
        return self

    def payload(self) -> dict[str, str]:
        if self.id is not None:
            return {"type": self.type, "id": self.id}
        key = "username" if self.type == "user" else "name"
        return {"type": self.type, key: self.name or ""}


class OpsgenieConfig(NotifierConfig):
    """An Opsgenie API integration."""

    type: Literal["opsgenie"] = "opsgenie"
    url: AnyHttpUrl | None = Field(  # type: ignore[assignment]
        default=None,
        description="API host instead of the region's (a proxy); '/v2/alerts' is added.",
    )
    region: Literal["us", "eu"] = Field(
        default="us", description="Where the Opsgenie account lives: api.opsgenie.com or api.eu."
    )
    api_key: SecretStr = Field(min_length=1, description="The API integration's key (GenieKey).")
    responders: list[OpsgenieResponder] = Field(
        default_factory=list, description="Who is notified; default: the integration's team."
    )
    tags: list[str] = Field(default_factory=list, description="Tags added to every alert.")

    @property
    def base_url(self) -> str:
        return str(self.url).rstrip("/") if self.url is not None else REGIONS[self.region]


@register
class OpsgenieNotifier(HttpNotifier):
    """Creates and closes Opsgenie alerts, one per vqm alert."""

    key = "opsgenie"
    config_class = OpsgenieConfig
    config: OpsgenieConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.url = self.config.base_url

    async def send(self, event: AlertEvent) -> None:
        headers = {"Authorization": f"GenieKey {self.config.api_key.get_secret_value()}"}
        alert = event.alert
        if event.transition is AlertTransition.RESOLVED:
            url = f"{self.url}/v2/alerts/{quote(alert.id, safe='')}/close?identifierType=alias"
            note = f"Resolved by vqm after {lasted(alert)}"
            await self.post(url, json={"source": "vqm", "note": note}, headers=headers)
            return
        await self.post(f"{self.url}/v2/alerts", json=self.create(alert), headers=headers)

    def create(self, alert: Alert) -> dict[str, Any]:
        """The create request: message, alias, description, details, tags, priority."""
        links = self.links_of(alert)  # once: a picture link is signed afresh each time
        body: dict[str, Any] = {
            "message": headline(alert)[:_MESSAGE_MAX],
            "alias": alert.id,
            "description": description(alert, links)[:_DESCRIPTION_MAX],
            "details": details(alert, links),
            "tags": tags(alert, self.config.tags)[:_TAGS_MAX],
            "entity": alert.channel_id,
            "source": "vqm",
            "priority": PRIORITY.get(alert.severity, "P3"),
        }
        if self.config.responders:
            body["responders"] = [r.payload() for r in self.config.responders]
        return body

    def links_of(self, alert: Alert) -> dict[str, str]:
        """``Wall`` and ``Picture`` links, those there are."""
        if self.links is None:
            return {}
        out = {"Wall": self.links.wall(alert.channel_id)}
        picture = self.links.picture(alert)
        if picture is not None:
            out["Picture"] = picture
        return out


def description(alert: Alert, links: dict[str, str]) -> str:
    """The headline, the facts and the links, one per line (Opsgenie shows plain text)."""
    lines = [headline(alert), "", f"Detector: {what(alert)}"]
    lines += [f"{name}: {value}" for name, value in facts(alert, resolved=False)]
    lines += [f"{name}: {url}" for name, url in links.items()]
    return "\n".join(lines)


def details(alert: Alert, links: dict[str, str]) -> dict[str, str]:
    """Opsgenie's details are string to string; the links are there too, to click."""
    out = {
        "channel": alert.channel_id,
        "detector": alert.detector,
        "severity": alert.severity,
        "confidence": f"{alert.confidence:.2f}",
        "media_start": f"{alert.start:.3f}",
    }
    if alert.label:
        out["label"] = alert.label
    if alert.offset_ms is not None:
        out["offset_ms"] = f"{alert.offset_ms:.0f}"
    return {**out, **{name.lower(): url for name, url in links.items()}}
