"""Slack incoming webhook: one readable line per open and resolve, for a channel people watch."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AnyHttpUrl, Field

from alerting.models import Alert, AlertEvent, AlertTransition
from alerting.notifiers.base import HttpNotifier, NotifierConfig
from alerting.notifiers.registry import register

_ICON = {
    "critical": ":red_circle:",
    "major": ":large_orange_circle:",
    "info": ":information_source:",
}


class SlackConfig(NotifierConfig):
    """A Slack app's incoming webhook."""

    type: Literal["slack"] = "slack"
    url: AnyHttpUrl = Field(description="The incoming webhook URL (https://hooks.slack.com/...).")


@register
class SlackNotifier(HttpNotifier):
    """POSTs ``{"text": ...}`` to an incoming webhook."""

    key = "slack"
    config_class = SlackConfig
    config: SlackConfig

    async def send(self, event: AlertEvent) -> None:
        await self.post(self.url, json={"text": message(event)})


def message(event: AlertEvent) -> str:
    """E.g. ``:red_circle: *black* on *news* [critical]: Black picture`` plus a detail line."""
    alert = event.alert
    what = alert.detector + (f" ({alert.label})" if alert.label else "")
    if event.transition is AlertTransition.RESOLVED:
        head = f":white_check_mark: Resolved: *{what}* on *{alert.channel_id}*"
        return f"{head} after {_duration(alert)}"
    icon = _ICON.get(alert.severity, ":large_yellow_circle:")
    head = f"{icon} *{what}* on *{alert.channel_id}* [{alert.severity}]"
    if alert.summary:
        head += f": {_escape(alert.summary)}"
    detail = f"since {_clock(alert.opened_at)}, confidence {alert.confidence:.2f}"
    if alert.offset_ms is not None:
        detail += f", audio offset {alert.offset_ms:+.0f} ms"
    return f"{head}\n{detail}"


def _escape(text: str) -> str:
    """Slack reads ``<``, ``>`` and ``&`` as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clock(epoch_seconds: float) -> str:
    return dt.datetime.fromtimestamp(epoch_seconds, tz=dt.UTC).strftime("%H:%M:%S UTC")


def _duration(alert: Alert) -> str:
    seconds = max(0, round((alert.resolved_at or alert.updated_at) - alert.opened_at))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"
