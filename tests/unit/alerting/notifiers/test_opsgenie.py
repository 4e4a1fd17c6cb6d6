"""Opsgenie: create with the alert id as alias, close by alias, against a local receiver."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from alerting.notifiers import NotificationConfig, NotifierError
from alerting.notifiers.opsgenie import OpsgenieConfig, OpsgenieNotifier
from tests.receiver import Receiver
from tests.unit.alerting.pages import WALL, make_alert, opened, page_links, resolved, with_picture

KEY = "0a1b2c3d-genie-key"


async def test_opsgenie_creates_with_the_alias_and_closes_by_it(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    config = OpsgenieConfig.model_validate(
        {
            "url": receiver.url,
            "api_key": KEY,
            "responders": [{"type": "team", "name": "noc"}, {"type": "user", "name": "ana@x"}],
            "tags": ["site:lab"],
        }
    )
    notifier = OpsgenieNotifier("genie", config, client, links=page_links())
    alert = with_picture(make_alert(label="hum", detector="audio_artifact"))
    await notifier.send(opened(alert))
    await notifier.send(resolved(alert))
    create, close = receiver.accepted
    assert (create.method, create.path) == ("POST", "/v2/alerts")
    assert (close.route, close.query) == (
        "/v2/alerts/news%3Ablack%3A1/close",
        {"identifierType": ["alias"]},
    )
    assert create.headers["authorization"] == close.headers["authorization"] == f"GenieKey {KEY}"
    body = create.json()
    assert (body["alias"], body["message"], body["priority"]) == (
        "news:black:1",
        "Black picture",
        "P1",
    )
    assert (body["entity"], body["source"]) == ("news", "vqm")
    assert body["tags"] == [
        "vqm", "channel:news", "detector:audio_artifact", "severity:critical", "label:hum",
        "site:lab",
    ]  # fmt: skip
    assert body["responders"] == [
        {"type": "team", "name": "noc"},
        {"type": "user", "username": "ana@x"},
    ]
    assert body["details"]["wall"] == WALL
    assert body["details"]["picture"].startswith("https://vqm.example/noc/links/channels/news/")
    assert all(isinstance(v, str) for v in body["details"].values())
    assert f"Wall: {WALL}" in body["description"]
    assert "Detector: audio_artifact (hum)" in body["description"]
    assert close.json() == {"source": "vqm", "note": "Resolved by vqm after 1m 20s"}


async def test_opsgenie_without_links_carries_none(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    config = OpsgenieConfig(url=receiver.url, api_key=KEY)
    await OpsgenieNotifier("genie", config, client).send(opened(with_picture()))
    body = receiver.accepted[0].json()
    assert "wall" not in body["details"] and "http" not in body["description"]
    assert "responders" not in body


def test_opsgenie_region_picks_the_api_host() -> None:
    client = httpx.AsyncClient()
    us = OpsgenieNotifier("g", OpsgenieConfig(api_key=KEY), client)
    eu = OpsgenieNotifier("g", OpsgenieConfig(api_key=KEY, region="eu"), client)
    assert (us.url, eu.url) == ("https://api.opsgenie.com", "https://api.eu.opsgenie.com")


async def test_opsgenie_refusal_is_final_and_never_shows_the_key(
    receiver: Receiver, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [401]
    notifier = OpsgenieNotifier("genie", OpsgenieConfig(url=receiver.url, api_key=KEY), client)
    with pytest.raises(NotifierError, match="answered 401") as caught:
        await notifier.send(opened())
    assert not caught.value.retriable
    assert KEY not in str(caught.value) and KEY not in caplog.text
    assert KEY not in repr(notifier.config)


@pytest.mark.parametrize(
    "genie",
    [
        {"type": "opsgenie"},
        {"type": "opsgenie", "api_key": KEY, "region": "apac"},
        {"type": "opsgenie", "api_key": KEY, "responders": [{"type": "team"}]},
        {
            "type": "opsgenie",
            "api_key": KEY,
            "responders": [{"type": "team", "name": "a", "id": "b"}],
        },
        {"type": "opsgenie", "api_key": KEY, "teams": ["noc"]},
    ],
    ids=["no key", "unknown region", "nameless responder", "name and id", "unknown key"],
)
def test_opsgenie_config_refuses_what_cannot_work(genie: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        NotificationConfig.model_validate({"notifiers": {"genie": genie}})
