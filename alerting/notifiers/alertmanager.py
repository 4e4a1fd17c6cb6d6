"""Alertmanager: vqm alerts join Prometheus' alerts in the same routing, grouping and silences.

Each transition POSTs a one-alert list to ``{url}/api/v2/alerts`` of every Alertmanager of the
HA list. Alertmanager tells alerts apart by their labels, so the alert id is a label too: an
older alert's resolve then never ends a newer alert of the same channel and detector.

Alertmanager keeps alerts in memory only, so one that restarts forgets every vqm alert, and
an alert whose resolve never comes (vqm stopped) stays until its ``endsAt``. vqm therefore does
what Prometheus does: it re-sends every firing alert each ``resend_interval`` (the resender,
:mod:`alerting.resend`) with ``endsAt`` four intervals ahead, so a restarted Alertmanager has
the alert back within one interval, and a dead vqm's alerts expire within four.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal, Self

from pydantic import AnyHttpUrl, Field, model_validator

from alerting.models import (
    Alert,
    AlertEvent,
    AlertTransition,
    alert_name,
    prefixed,
    runbook_path,
)
from alerting.notifiers.base import HttpNotifier, NotifierConfig, NotifierError, rfc3339
from alerting.notifiers.registry import register
from alerting.notifiers.text import headline, what

logger = logging.getLogger(__name__)

# Prometheus sends firing alerts with endsAt = now + 4 x max(evaluation interval, resend
# delay) ("allow for two Eval or Alertmanager send failures"); vqm has no evaluation interval.
ENDS_AT_INTERVALS = 4


class AlertmanagerConfig(NotifierConfig):
    """An Alertmanager (v0.22 or later: API v2), or the members of an HA cluster."""

    type: Literal["alertmanager"] = "alertmanager"
    url: AnyHttpUrl | None = Field(  # type: ignore[assignment]
        default=None, description="One Alertmanager; or give `urls`."
    )
    urls: list[AnyHttpUrl] = Field(
        default_factory=list,
        description="Every Alertmanager of an HA cluster: each alert goes to all of them, as "
        "Prometheus sends it (do not put a load balancer in front of the cluster).",
    )
    resend_interval: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds between re-sends of every firing alert (Prometheus' "
        "--rules.alert.resend-delay, 1 min): a restarted Alertmanager has them back within it.",
    )
    firing_timeout: float | None = Field(
        default=None,
        gt=0,
        description="endsAt sent with a firing alert, seconds ahead; Alertmanager resolves it "
        "by itself unless vqm re-sends it first (vqm stopped). Default: 4 x resend_interval.",
    )
    resolved_retention: float = Field(
        default=15 * 60.0,
        ge=0,
        description="Seconds a resolve keeps being re-sent (Prometheus: 15 min), so an "
        "Alertmanager that was away when it was sent still hears of it.",
    )
    generator_url: str | None = Field(
        default=None,
        description="Link back to vqm shown in Alertmanager; '{channel}' and '{id}' are filled "
        "in. Default: the channel's tile on the wall under VQM_PUBLIC_URL.",
    )
    extra_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels added to every alert (e.g. site, team)."
    )
    runbook_base_url: str = Field(
        default="",
        pattern=r"^(https?://.*)?$",
        description="Put before each page's runbook_url (docs/runbook.md#<alert name>); give "
        "it what the Prometheus rules get (Helm: prometheusRule.runbookBaseUrl), so both "
        "paths link the same section. Empty: the path in the repository as it is.",
    )

    @model_validator(mode="after")
    def _one_way_to_name_the_receivers(self) -> Self:
        if (self.url is None) == (not self.urls):
            raise ValueError(
                "alertmanager: give `url` (one Alertmanager) or `urls` (an HA list), "
                + ("not both" if self.url is not None else "one of them")
            )
        if self.firing_timeout is not None and self.firing_timeout <= self.resend_interval:
            raise ValueError(
                f"alertmanager: firing_timeout {self.firing_timeout:g} s must exceed "
                f"resend_interval {self.resend_interval:g} s, or firing alerts expire between "
                "re-sends"
            )
        return self

    @property
    def endpoints(self) -> list[str]:
        """Base URLs of every Alertmanager, without a trailing slash."""
        return [str(u).rstrip("/") for u in ([self.url] if self.url is not None else self.urls)]

    @property
    def valid_for(self) -> float:
        """Seconds a firing alert is sent as valid for."""
        return self.firing_timeout or ENDS_AT_INTERVALS * self.resend_interval


@register
class AlertmanagerNotifier(HttpNotifier):
    """POSTs alerts to the v2 API of every configured Alertmanager."""

    key = "alertmanager"
    config_class = AlertmanagerConfig
    config: AlertmanagerConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.urls = self.config.endpoints
        self.url = self.urls[0]
        self.resend_interval = self.config.resend_interval
        self.resolved_retention = self.config.resolved_retention

    async def send(self, event: AlertEvent) -> None:
        await self.resend([event])

    async def resend(self, events: list[AlertEvent]) -> None:
        """POST ``events`` to every Alertmanager at once; accepted when one of them took it.

        Like Prometheus: members of an HA cluster share what they receive, and the re-sends
        bring a member that missed it up to date. Each member that failed is logged; when
        all failed, the error says whether trying again can help.
        """
        body = [self.payload(e) for e in events]
        results = await asyncio.gather(
            *(self.post(f"{url}/api/v2/alerts", json=body) for url in self.urls),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        unexpected = [f for f in failures if not isinstance(f, NotifierError)]
        if unexpected:
            raise unexpected[0]
        if len(failures) == len(results):
            errors = [f for f in failures if isinstance(f, NotifierError)]
            retriable = any(f.retriable for f in errors)
            message = "; ".join(str(f) for f in failures)
            raise NotifierError(message, retriable=retriable, retry_after=_soonest_retry(errors))
        for failure in failures:
            logger.warning("%s: one Alertmanager did not take %d alert(s): %s", self.name,
                           len(events), failure)  # fmt: skip

    def payload(self, event: AlertEvent) -> dict[str, Any]:
        """One postable alert: labels, annotations, startsAt, endsAt."""
        alert = event.alert
        body: dict[str, Any] = {
            "labels": self.labels(alert),
            "annotations": {**alert_annotations(alert), "runbook_url": self.runbook_url(alert)},
            "startsAt": rfc3339(alert.opened_at),
            "endsAt": rfc3339(self.ends_at(event)),
        }
        if self.config.generator_url:
            body["generatorURL"] = self.config.generator_url.format(
                channel=alert.channel_id, id=alert.id
            )
        elif self.links is not None:
            body["generatorURL"] = self.links.wall(alert.channel_id)
        return body

    def labels(self, alert: Alert) -> dict[str, str]:
        labels = {
            **self.config.extra_labels,
            "alertname": alert_name(alert.detector),  # the rule of the same defect is named so
            "channel": alert.channel_id,
            "detector": alert.detector,
            "severity": alert.severity,
            "alert_id": alert.id,
        }
        if alert.label:
            labels["label"] = alert.label
        return labels

    def runbook_url(self, alert: Alert) -> str:
        """The runbook section the Prometheus rule of the same defect links, too."""
        return prefixed(self.config.runbook_base_url, runbook_path(alert_name(alert.detector)))

    def ends_at(self, event: AlertEvent) -> float:
        """The resolve time once resolved; until then a few re-send intervals ahead."""
        alert = event.alert
        if event.transition is AlertTransition.RESOLVED:
            return alert.resolved_at or alert.updated_at
        return self.clock() + self.config.valid_for


def alert_annotations(alert: Alert) -> dict[str, str]:
    description = (
        f"{what(alert)} on channel {alert.channel_id}, media {alert.start:.2f}s to "
        f"{alert.end:.2f}s, confidence {alert.confidence:.2f}"
    )
    if alert.offset_ms is not None:
        description += f", audio offset {alert.offset_ms:+.0f} ms"
    return {"summary": headline(alert), "description": description}


def _soonest_retry(errors: list[NotifierError]) -> float | None:
    """When the first member that may take it asked to be tried again: the shortest
    Retry-After among the retriable failures, or None (plain back-off) when one gave none."""
    asked = [e.retry_after for e in errors if e.retriable]
    waits = [a for a in asked if a is not None]
    if not waits or len(waits) < len(asked):
        return None
    return min(waits)
