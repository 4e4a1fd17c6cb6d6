"""The alerting stage's sections of the channels file, and what the stage reads of the rest.

    alerting:
      flap_window: 60        # hold a resolve this long; a defect back within it is the same alert
      outbox: {backoff_max: 120}
    notifications:           # who gets paged: see alerting.notifiers.routing
      notifiers: {oncall: {type: pagerduty, routing_key: "..."}}
      routes: [{severities: [critical], notifiers: [oncall]}]
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from alerting.notifiers.routing import NotificationConfig
from alerting.outbox import OutboxConfig
from monitor.core.channels import Channels

__all__ = ["AlertingConfig", "AlertingView", "NotificationConfig"]


class AlertingConfig(BaseModel):
    """How alerts are held and delivered (channel severities live on the channels)."""

    model_config = ConfigDict(extra="forbid")

    flap_window: float = Field(
        default=30.0,
        ge=0,
        le=24 * 3600,
        description="Seconds a recovered alert stays open before it resolves; if the defect "
        "comes back within them the alert carries on, so a flapping defect pages once. "
        "0 resolves at recovery.",
    )
    outbox: OutboxConfig = Field(
        default_factory=OutboxConfig, description="Retry timing of notifier deliveries."
    )


class AlertingView(Channels, Protocol):
    """What the alerting stage reads of the channels file (the application config is one)."""

    @property
    def alerting(self) -> AlertingConfig: ...

    @property
    def notifications(self) -> NotificationConfig: ...
