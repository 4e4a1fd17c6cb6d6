"""The ``alerting:`` section of the channels file: flap suppression and paging delivery.

    alerting:
      flap_window: 60        # hold a resolve this long; a defect back within it is the same alert
      outbox: {backoff_max: 120}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from alerting.outbox import OutboxConfig


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
