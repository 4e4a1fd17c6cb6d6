"""Teams: an Adaptive Card per open and resolve, posted to a local receiver."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from alerting.notifiers import NotifierError
from alerting.notifiers.teams import ADAPTIVE_CARD, TeamsConfig, TeamsNotifier
from tests.receiver import Receiver
from tests.unit.alerting.pages import WALL, make_alert, opened, page_links, resolved, with_picture

# A Workflows webhook: the signature in the query is the credential.
WORKFLOW = "/workflows/4f1c/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers&sig=S1GNATURE"


def card_of(body: dict[str, Any]) -> dict[str, Any]:
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == ADAPTIVE_CARD
    card: dict[str, Any] = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    return card


def facts_of(card: dict[str, Any]) -> dict[str, str]:
    [fact_set] = [b for b in card["body"] if b["type"] == "FactSet"]
    return {f["title"]: f["value"] for f in fact_set["facts"]}


async def test_teams_gets_a_card_with_the_facts_the_picture_and_the_wall_for_open_and_resolve(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    config = TeamsConfig(url=f"{receiver.url}{WORKFLOW}")
    notifier = TeamsNotifier("noc", config, client, links=page_links())
    await notifier.send(opened(with_picture(make_alert(label="hum", detector="audio_artifact"))))
    await notifier.send(resolved(with_picture()))
    opening, resolve = (r.json() for r in receiver.accepted)
    assert receiver.accepted[0].path == WORKFLOW
    card = card_of(opening)
    title = card["body"][0]
    assert (title["text"], title["color"], title["weight"]) == (
        "Black picture",
        "Attention",
        "Bolder",
    )
    assert facts_of(card) == {
        "Channel": "news",
        "Detector": "audio_artifact (hum)",
        "Severity": "critical",
        "Since": "12:00:00 UTC",
        "Confidence": "0.99",
    }
    [image] = [b for b in card["body"] if b["type"] == "Image"]
    assert image["url"].startswith("https://vqm.example/noc/links/channels/news/alerts/")
    assert image["altText"] == "news when the alert opened"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open on the wall", "url": WALL}]
    done = card_of(resolve)
    assert (done["body"][0]["text"], done["body"][0]["color"]) == (
        "Resolved: black on news",
        "Good",
    )
    assert facts_of(done)["Lasted"] == "1m 20s"
    assert not [b for b in done["body"] if b["type"] == "Image"]
    assert done["actions"][0]["url"] == WALL


async def test_teams_without_a_public_url_gets_a_card_without_links(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    await TeamsNotifier("noc", TeamsConfig(url=receiver.url), client).send(opened(with_picture()))
    card = card_of(receiver.accepted[0].json())
    assert "actions" not in card
    assert [b["type"] for b in card["body"]] == ["TextBlock", "TextBlock", "FactSet"]


async def test_teams_refusal_names_the_status_but_never_the_webhook_signature(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.statuses = [400]
    notifier = TeamsNotifier("noc", TeamsConfig(url=f"{receiver.url}{WORKFLOW}"), client)
    with pytest.raises(NotifierError, match="answered 400") as caught:
        await notifier.send(opened())
    assert not caught.value.retriable
    assert "S1GNATURE" not in str(caught.value) and "4f1c" not in str(caught.value)
