"""Which notifiers hear about which alerts: named receivers, routes by severity.

    notifications:
      notifiers:
        oncall: {type: pagerduty, routing_key: "..."}
        am:     {type: alertmanager, url: "http://alertmanager:9093"}
        ops:    {type: slack, url: "https://hooks.slack.com/services/..."}
        noc:    {type: teams, url: "https://.../workflows/.../invoke?...&sig=..."}
        genie:  {type: opsgenie, api_key: "...", region: eu}
        marks:  {type: grafana, url: "http://grafana:3000", token: "glsa_..."}
      routes:
        - {severities: [critical], notifiers: [oncall]}
        - {severities: [critical, major, minor, warning], notifiers: [am, ops]}

An alert goes to every notifier of every route that lists its severity, once each.
"""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerting.links import PageLinks
from alerting.models import AlertEvent, Severity
from alerting.notifiers.base import Notifier
from alerting.notifiers.registry import build_notifier, config_union

# Built once from the registry: an unknown ``type`` fails naming it and the known ones.
AnyNotifierConfig = config_union()


class Route(BaseModel):
    """Send alerts of these severities to these notifiers."""

    model_config = ConfigDict(extra="forbid")

    severities: list[Severity] = Field(min_length=1, description="Alert severities matched.")
    notifiers: list[str] = Field(min_length=1, description="Names from `notifiers`.")


class NotificationConfig(BaseModel):
    """Named notifiers and the routes between severities and them."""

    model_config = ConfigDict(extra="forbid")

    notifiers: dict[str, AnyNotifierConfig] = Field(  # type: ignore[valid-type]
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


def build_notifiers(
    config: NotificationConfig, client: httpx.AsyncClient, links: PageLinks | None = None
) -> Router:
    """Every configured notifier, sharing ``client`` (whose owner closes it) and ``links``."""
    notifiers = {
        name: build_notifier(name, c, client, links) for name, c in config.notifiers.items()
    }
    return Router(notifiers, config.routes)
