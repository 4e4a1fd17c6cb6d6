"""Microsoft Teams: an Adaptive Card per open and resolve, through a channel's webhook.

Teams takes the card as a message with one attachment of type
``application/vnd.microsoft.card.adaptive``, both at a Workflows webhook ("Post to a channel
when a webhook request is received") and at a legacy incoming webhook. The card has a title
coloured by state, the summary, the facts, the picture kept when the alert opened (Teams
fetches the signed link itself) and a button to the channel's tile on the wall. Teams cannot
update a posted card, so the resolve is a card of its own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AnyHttpUrl, Field

from alerting.models import Alert, AlertEvent, AlertTransition
from alerting.notifiers.base import HttpNotifier, NotifierConfig
from alerting.notifiers.registry import register
from alerting.notifiers.text import facts, headline, what

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"  # what Teams renders on desktop, web and mobile


class TeamsConfig(NotifierConfig):
    """A Teams channel's Workflows webhook (or a legacy incoming webhook)."""

    type: Literal["teams"] = "teams"
    url: AnyHttpUrl = Field(
        description="The webhook URL the Teams workflow (or incoming webhook) shows; its "
        "signature query is the credential, and is never logged."
    )


@register
class TeamsNotifier(HttpNotifier):
    """POSTs one Adaptive Card per transition."""

    key = "teams"
    config_class = TeamsConfig
    config: TeamsConfig

    async def send(self, event: AlertEvent) -> None:
        await self.post(self.url, json=self.payload(event))

    def payload(self, event: AlertEvent) -> dict[str, Any]:
        """The message Teams posts: one Adaptive Card attachment."""
        attachment = {"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": self.card(event)}
        return {"type": "message", "attachments": [attachment]}

    def card(self, event: AlertEvent) -> dict[str, Any]:
        alert = event.alert
        resolved = event.transition is AlertTransition.RESOLVED
        body: list[dict[str, Any]] = [_title(alert, resolved)]
        if alert.summary:
            body.append({"type": "TextBlock", "text": alert.summary, "wrap": True})
        body.append({"type": "FactSet", "facts": _facts(alert, resolved)})
        card: dict[str, Any] = {
            "$schema": CARD_SCHEMA,
            "type": "AdaptiveCard",
            "version": CARD_VERSION,
            "msteams": {"width": "Full"},
            "body": body,
        }
        if self.links is None:
            return card
        picture = None if resolved else self.links.picture(alert)
        if picture is not None:
            alt = f"{alert.channel_id} when the alert opened"
            body.append({"type": "Image", "url": picture, "altText": alt, "size": "Stretch"})
        wall = self.links.wall(alert.channel_id)
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open on the wall", "url": wall}]
        return card


def _title(alert: Alert, resolved: bool) -> dict[str, Any]:
    """Red (attention) while open, green once resolved."""
    text = f"Resolved: {what(alert)} on {alert.channel_id}" if resolved else headline(alert)
    return {
        "type": "TextBlock",
        "text": text,
        "size": "Large",
        "weight": "Bolder",
        "color": "Good" if resolved else "Attention",
        "wrap": True,
    }


def _facts(alert: Alert, resolved: bool) -> list[dict[str, str]]:
    named = [("Channel", alert.channel_id), ("Detector", what(alert)), *facts(alert, resolved)]
    return [{"title": name, "value": value} for name, value in named]
