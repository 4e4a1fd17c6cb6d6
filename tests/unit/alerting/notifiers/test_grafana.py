"""Grafana annotations: a mark at the opening, made a region at the resolve, against a local
receiver that keeps annotations as Grafana's HTTP API does."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from alerting.notifiers import NotifierError
from alerting.notifiers.grafana import GrafanaConfig, GrafanaNotifier
from tests.receiver import Receiver, Request
from tests.unit.alerting.pages import OPENED_AT, WALL, make_alert, opened, page_links, resolved

TOKEN = "glsa_service_account_token"
_ONE = re.compile(r"^/api/annotations/(\d+)$")


class FakeGrafana:
    """``/api/annotations``: POST creates, GET finds by every tag given, PATCH by id updates."""

    def __init__(self) -> None:
        self.annotations: dict[int, dict[str, Any]] = {}

    def __call__(self, request: Request) -> tuple[int, Any]:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {"message": "Unauthorized"}
        one = _ONE.match(request.route)
        if request.method == "POST" and request.route == "/api/annotations":
            new = len(self.annotations) + 1
            self.annotations[new] = {"id": new, **request.json()}
            return 200, {"message": "Annotation added", "id": new}
        if request.method == "GET" and request.route == "/api/annotations":
            wanted = set(request.query.get("tags", []))
            found = [a for a in self.annotations.values() if wanted <= set(a["tags"])]
            return 200, found[: int(request.query["limit"][0])]
        if request.method == "PATCH" and one and int(one.group(1)) in self.annotations:
            self.annotations[int(one.group(1))].update(request.json())
            return 200, {"message": "Annotation patched"}
        return 404, {"message": "Not found"}


@pytest.fixture
async def grafana() -> Any:
    fake = FakeGrafana()
    receiver = Receiver(handler=fake)
    await receiver.start()
    yield fake, receiver
    await receiver.stop()


def notifier(receiver: Receiver, client: httpx.AsyncClient, **kw: Any) -> GrafanaNotifier:
    config = GrafanaConfig.model_validate({"url": receiver.url, "token": TOKEN, **kw})
    return GrafanaNotifier("marks", config, client, links=page_links())


async def test_an_opening_is_a_mark_and_its_resolve_makes_it_a_region(
    grafana: tuple[FakeGrafana, Receiver], client: httpx.AsyncClient
) -> None:
    fake, receiver = grafana
    marks = notifier(receiver, client, tags=["site:lab"])
    await marks.send(opened(make_alert(label="hum", detector="audio_artifact")))
    [mark] = fake.annotations.values()
    assert mark["time"] == OPENED_AT * 1000 and "timeEnd" not in mark
    assert mark["tags"] == [
        "vqm", "channel:news", "detector:audio_artifact", "severity:critical", "label:hum",
        "vqm_alert:news:black:1", "site:lab",
    ]  # fmt: skip
    assert mark["text"] == f"Black picture [critical]\n{WALL}"
    await marks.send(resolved())
    assert list(fake.annotations) == [mark["id"]]  # the same annotation, now a region
    region = fake.annotations[mark["id"]]
    assert (region["time"], region["timeEnd"]) == (OPENED_AT * 1000, (OPENED_AT + 80.5) * 1000)
    assert region["text"] == f"Black picture [critical], resolved after 1m 20s\n{WALL}"
    methods = [(r.method, r.route) for r in receiver.accepted]
    assert methods == [
        ("GET", "/api/annotations"), ("POST", "/api/annotations"),
        ("GET", "/api/annotations"), ("PATCH", f"/api/annotations/{mark['id']}"),
    ]  # fmt: skip
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in receiver.accepted)


async def test_a_resent_opening_adds_no_second_mark(
    grafana: tuple[FakeGrafana, Receiver], client: httpx.AsyncClient
) -> None:
    fake, receiver = grafana
    marks = notifier(receiver, client)
    await marks.send(opened())
    await marks.send(opened())  # at-least-once: the outbox sent it again
    assert len(fake.annotations) == 1


async def test_a_resolve_whose_opening_never_arrived_creates_the_whole_region(
    grafana: tuple[FakeGrafana, Receiver], client: httpx.AsyncClient
) -> None:
    fake, receiver = grafana
    await notifier(receiver, client, dashboard_uid="vqm-channel", panel_id=4).send(resolved())
    [region] = fake.annotations.values()
    assert (region["time"], region["timeEnd"]) == (OPENED_AT * 1000, (OPENED_AT + 80.5) * 1000)
    assert (region["dashboardUID"], region["panelId"]) == ("vqm-channel", 4)
    [find] = [r for r in receiver.accepted if r.method == "GET"]
    assert find.query["dashboardUID"] == ["vqm-channel"]


async def test_a_wrong_token_is_a_final_refusal_that_never_shows_the_token(
    grafana: tuple[FakeGrafana, Receiver],
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, receiver = grafana
    config = GrafanaConfig(url=receiver.url, token="glsa_wrong_token")
    with pytest.raises(NotifierError, match="answered 401") as caught:
        await GrafanaNotifier("marks", config, client).send(opened())
    assert not caught.value.retriable
    assert "glsa_wrong_token" not in str(caught.value) + caplog.text + repr(config)


async def test_an_answer_that_is_not_annotations_is_a_clear_error(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.handler = lambda request: (200, {"unexpected": "shape"})
    config = GrafanaConfig(url=receiver.url, token=TOKEN)
    with pytest.raises(NotifierError, match="not a list of annotations"):
        await GrafanaNotifier("marks", config, client).send(opened())


def test_a_panel_without_its_dashboard_is_refused() -> None:
    with pytest.raises(ValidationError, match="panel_id needs dashboard_uid"):
        GrafanaConfig(url="http://grafana:3000", token=TOKEN, panel_id=3)
