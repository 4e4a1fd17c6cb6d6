"""Slack incoming webhook: a Block Kit message per open and resolve, for a channel people watch.

The message has a header, the facts as fields, the picture kept when the alert opened (an
image block with its signed link) and a button to the channel's tile on the wall, when a
public URL is set; ``text`` stays as the plain fallback that notifications and old clients
show. Slack fetches the picture itself and refuses the whole message when it cannot (a wall
on a closed network): vqm then sends it again without the picture, so the page still lands.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import AnyHttpUrl, Field

from alerting.links import PageLinks
from alerting.models import Alert, AlertEvent, AlertTransition
from alerting.notifiers.base import HttpNotifier, NotifierConfig, NotifierError
from alerting.notifiers.registry import register
from alerting.notifiers.text import clock, facts, lasted, what

logger = logging.getLogger(__name__)

_ICON = {
    "critical": ":red_circle:",
    "major": ":large_orange_circle:",
    "info": ":information_source:",
}
_HEADER_MAX = 150  # Slack's limit on a header's text
_FIELD_MAX = 2000  # and on a field's


class SlackConfig(NotifierConfig):
    """A Slack app's incoming webhook."""

    type: Literal["slack"] = "slack"
    url: AnyHttpUrl = Field(description="The incoming webhook URL (https://hooks.slack.com/...).")


@register
class SlackNotifier(HttpNotifier):
    """POSTs ``{"text": ..., "blocks": [...]}`` to an incoming webhook."""

    key = "slack"
    config_class = SlackConfig
    config: SlackConfig

    async def send(self, event: AlertEvent) -> None:
        resolved = event.transition is AlertTransition.RESOLVED
        # The picture shows the defect: worth a look at the opening, not at the resolve.
        picture = self.links.picture(event.alert) if self.links and not resolved else None
        text = message(event)
        try:
            await self.post(
                self.url, json={"text": text, "blocks": blocks(event, self.links, picture)}
            )
        except NotifierError as exc:
            if picture is None or exc.retriable:
                raise
            # Slack could not fetch the picture (or refused it): a page without it beats none.
            logger.warning("%s: Slack refused the page with its picture (%s); sending it "
                           "without", self.name, exc)  # fmt: skip
            await self.post(self.url, json={"text": text, "blocks": blocks(event, self.links)})


def message(event: AlertEvent) -> str:
    """E.g. ``:red_circle: *black* on *news* [critical]: Black picture`` plus a detail line."""
    alert = event.alert
    if event.transition is AlertTransition.RESOLVED:
        head = f":white_check_mark: Resolved: *{what(alert)}* on *{alert.channel_id}*"
        return f"{head} after {lasted(alert)}"
    head = f"{_icon(alert)} *{what(alert)}* on *{alert.channel_id}* [{alert.severity}]"
    if alert.summary:
        head += f": {_escape(alert.summary)}"
    detail = f"since {clock(alert.opened_at)}, confidence {alert.confidence:.2f}"
    if alert.offset_ms is not None:
        detail += f", audio offset {alert.offset_ms:+.0f} ms"
    return f"{head}\n{detail}"


def blocks(
    event: AlertEvent, links: PageLinks | None, picture: str | None = None
) -> list[dict[str, Any]]:
    """Header, facts, the picture (when given) and a button to the wall (when linked)."""
    alert = event.alert
    resolved = event.transition is AlertTransition.RESOLVED
    title = (
        f":white_check_mark: Resolved: {what(alert)} on {alert.channel_id}"
        if resolved
        else f"{_icon(alert)} {what(alert)} on {alert.channel_id}"
    )
    out: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(title[:_HEADER_MAX])},
        _facts(alert, resolved),
    ]
    if picture is not None:
        alt = f"{alert.channel_id} when the alert opened"
        out.append({"type": "image", "image_url": picture, "alt_text": alt})
    if links is not None:
        button = {
            "type": "button",
            "text": _plain("Open on the wall"),
            "url": links.wall(alert.channel_id),
        }
        out.append({"type": "actions", "elements": [button]})
    out.append({"type": "context", "elements": [_mrkdwn(f"vqm alert `{alert.id}`")]})
    return out


def _facts(alert: Alert, resolved: bool) -> dict[str, Any]:
    """A section: the summary as text, the facts on-call asks first as fields."""
    fields = [
        _mrkdwn(f"*{name}*\n{_escape(value)}"[:_FIELD_MAX])
        for name, value in facts(alert, resolved)
    ]
    section: dict[str, Any] = {"type": "section", "fields": fields}
    if alert.summary:
        section["text"] = _mrkdwn(_escape(alert.summary)[:_FIELD_MAX])
    return section


def _icon(alert: Alert) -> str:
    return _ICON.get(alert.severity, ":large_yellow_circle:")


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _escape(text: str) -> str:
    """Slack reads ``<``, ``>`` and ``&`` as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
