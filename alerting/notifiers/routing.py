"""Which notifiers hear about which alerts: named receivers, routes by severity.

    notifications:
      notifiers:
        oncall: {type: pagerduty, routing_key: "..."}
        am:     {type: alertmanager, url: "http://alertmanager:9093"}
        ops:    {type: slack, url: "https://hooks.slack.com/services/..."}
      routes:
        - {severities: [critical], notifiers: [oncall]}
        - {severities: [critical, major, minor, warning], notifiers: [am, ops]}

An alert goes to every notifier of every route that lists its severity, once each.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerting.models import AlertEvent, Severity
from alerting.notifiers.alertmanager import AlertmanagerConfig, AlertmanagerNotifier
from alerting.notifiers.base import Notifier
from alerting.notifiers.pagerduty import PagerDutyConfig, PagerDutyNotifier
from alerting.notifiers.slack import SlackConfig, SlackNotifier
from alerting.notifiers.webhook import WebhookConfig, WebhookNotifier

AnyNotifierConfig = Annotated[
    AlertmanagerConfig | PagerDutyConfig | WebhookConfig | SlackConfig,
    Field(discriminator="type"),
]


class Route(BaseModel):
    """Send alerts of these severities to these notifiers."""

    model_config = ConfigDict(extra="forbid")

    severities: list[Severity] = Field(min_length=1, description="Alert severities matched.")
    notifiers: list[str] = Field(min_length=1, description="Names from `notifiers`.")


class NotificationConfig(BaseModel):
    """Named notifiers and the routes between severities and them."""

    model_config = ConfigDict(extra="forbid")

    notifiers: dict[str, AnyNotifierConfig] = Field(
        default_factory=dict, description="Receivers by name, each with its `type`."
    )
    routes: list[Route] = Field(default_factory=list, description="Severity -> notifier names.")

    @model_validator(mode="after")
    def _routes_name_known_notifiers(self) -> NotificationConfig:
        for i, route in enumerate(self.routes):
            unknown = [n for n in route.notifiers if n not in self.notifiers]
            if unknown:
                known = ", ".join(sorted(self.notifiers)) or "none"
                raise ValueError(
                    f"routes.{i}: unknown notifier {', '.join(map(repr, unknown))}; known: {known}"
                )
        return self


class Router:
    """The built notifiers and the routes that pick among them."""

    def __init__(self, notifiers: dict[str, Notifier], routes: list[Route]) -> None:
        self.notifiers = notifiers
        self.routes = routes

    def targets(self, event: AlertEvent) -> list[str]:
        """Names of the notifiers this event goes to, in config order, each once."""
        names: dict[str, None] = {}
        for route in self.routes:
            if event.alert.severity in route.severities:
                names.update(dict.fromkeys(route.notifiers))
        return list(names)

    def get(self, name: str) -> Notifier | None:
        return self.notifiers.get(name)


def build_notifier(name: str, config: AnyNotifierConfig, client: httpx.AsyncClient) -> Notifier:
    if isinstance(config, AlertmanagerConfig):
        return AlertmanagerNotifier(name, config, client)
    if isinstance(config, PagerDutyConfig):
        return PagerDutyNotifier(name, config, client)
    if isinstance(config, WebhookConfig):
        return WebhookNotifier(name, config, client)
    if isinstance(config, SlackConfig):
        return SlackNotifier(name, config, client)
    raise ValueError(f"notifier {name!r}: unknown type {type(config).__name__}")


def build_notifiers(config: NotificationConfig, client: httpx.AsyncClient) -> Router:
    """Every configured notifier, sharing ``client`` (whose owner closes it)."""
    notifiers = {name: build_notifier(name, c, client) for name, c in config.notifiers.items()}
    return Router(notifiers, config.routes)
