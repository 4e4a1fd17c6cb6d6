"""Acknowledge, silence and thumbnail endpoints, and who may call them."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerting.api import ApiContext, create_app
from alerting.engine import AlertEngine
from alerting.store import Thumbnail
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.metrics import Metrics
from monitor.core.settings import Settings
from monitor.core.state import MemoryStateStore
from tests.unit.alerting.pages import frozen

TOKEN = "s3cr3t-test-token-0123456789"
CONFIG = VqmConfig(
    channels=[
        ChannelConfig(id="news", name="News 24", url="http://origin/news.m3u8"),
        ChannelConfig(id="sport", url="http://origin/sport.m3u8"),
    ]
)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings(**kw: object) -> Settings:
    return Settings.model_validate({"environment": "production", "api_token": TOKEN, **kw})


class World:
    def __init__(self) -> None:
        self.state = MemoryStateStore()
        self.metrics = Metrics(CollectorRegistry())
        self.engine = AlertEngine(CONFIG, self.state, self.metrics)

    def client(self, settings: Settings | None) -> httpx.AsyncClient:
        ctx = ApiContext(config=CONFIG, state=self.state, metrics=self.metrics, settings=settings)
        transport = httpx.ASGITransport(app=create_app(ctx))
        return httpx.AsyncClient(transport=transport, base_url="http://vqm")

    async def open_alert(self) -> str:
        await self.engine.handle_detection(frozen(0))
        [alert] = await self.engine.store.active()
        return alert.id


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
async def api(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with world.client(settings()) as c:
        yield c


async def test_acknowledging_with_the_token_marks_the_alert_in_every_listing(
    world: World, api: httpx.AsyncClient
) -> None:
    alert_id = await world.open_alert()
    response = await api.post(
        f"/api/alerts/{alert_id}/ack", json={"by": "ana", "comment": "on it"}, headers=AUTH
    )
    assert response.status_code == 200
    assert response.json()["acknowledged_by"] == "ana"
    [listed] = (await api.get("/api/alerts")).json()["alerts"]
    assert listed["acknowledged_by"] == "ana" and listed["acknowledged_at"] is not None
    channels = {c["id"]: c for c in (await api.get("/api/channels")).json()["channels"]}
    assert channels["news"]["active_alerts"][0]["acknowledged_by"] == "ana"


async def test_an_engine_update_after_the_ack_keeps_the_ack(
    world: World, api: httpx.AsyncClient
) -> None:
    alert_id = await world.open_alert()
    await api.post(f"/api/alerts/{alert_id}/ack", headers=AUTH)
    await world.engine.handle_detection(frozen(1))
    [listed] = (await api.get("/api/alerts")).json()["alerts"]
    assert (listed["end"], listed["acknowledged_at"] is not None) == (4.0, True)


async def test_acknowledging_an_unknown_alert_is_404_in_the_error_shape(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/api/alerts/nope/ack", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["no header", "wrong token", "not bearer"],
)
async def test_changing_calls_without_the_right_token_are_401(
    world: World, api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    alert_id = await world.open_alert()
    for response in (
        await api.post(f"/api/alerts/{alert_id}/ack", headers=headers),
        await api.post("/api/silences", json={"channel_id": "news"}, headers=headers),
        await api.delete("/api/silences/x", headers=headers),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "unauthorized"
    assert await world.engine.store.silences() == []


async def test_changing_calls_are_403_with_advice_when_no_token_is_configured(
    world: World,
) -> None:
    async with world.client(Settings(environment="production", api_token=None)) as api:
        response = await api.post("/api/silences", json={"channel_id": "news"}, headers=AUTH)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "VQM_API_TOKEN" in response.json()["error"]["message"]


async def test_a_local_environment_without_a_token_may_change(world: World) -> None:
    async with world.client(Settings(environment="local", api_token=None)) as api:
        response = await api.post("/api/silences", json={"channel_id": "news"})
    assert response.status_code == 201


async def test_reads_are_open_unless_the_read_token_is_required(world: World) -> None:
    async with world.client(settings()) as api:
        assert (await api.get("/api/channels")).status_code == 200
    async with world.client(settings(api_read_token_required=True)) as api:
        assert (await api.get("/api/channels")).status_code == 401
        assert (await api.get("/api/silences")).status_code == 401
        assert (await api.get("/api/channels", headers=AUTH)).status_code == 200
        assert (await api.get("/healthz")).status_code == 200
        assert (await api.get("/metrics")).status_code == 200
        assert (await api.get("/")).status_code == 200


def test_requiring_a_read_token_without_a_token_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="VQM_API_TOKEN"):
        Settings(api_read_token_required=True, api_token=None)


async def test_a_silence_is_created_listed_and_deleted(api: httpx.AsyncClient) -> None:
    now = time.time()
    created = await api.post(
        "/api/silences",
        json={
            "channel_id": "news",
            "detector": "freeze",
            "starts_at": now - 1,
            "ends_at": now + 3600,
            "comment": "encoder swap",
        },
        headers=AUTH,
    )
    assert created.status_code == 201
    silence_id = created.json()["id"]
    [listed] = (await api.get("/api/silences")).json()["silences"]
    assert (listed["id"], listed["active_now"], listed["comment"]) == (
        silence_id,
        True,
        "encoder swap",
    )
    assert (await api.delete(f"/api/silences/{silence_id}", headers=AUTH)).status_code == 204
    assert (await api.get("/api/silences")).json()["silences"] == []
    assert (await api.delete(f"/api/silences/{silence_id}", headers=AUTH)).status_code == 404


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"channel_id": "nope"}, "no configured channel"),
        ({"ends_at": 1.0}, "in the past"),
        ({"starts_at": 2e9, "ends_at": 1.9e9}, "not after"),
        ({"channel": "news"}, "extra"),
    ],
    ids=["unknown channel", "ended", "ends before start", "unknown key"],
)
async def test_a_bad_silence_is_422_naming_the_problem(
    api: httpx.AsyncClient, body: dict[str, object], says: str
) -> None:
    response = await api.post("/api/silences", json=body, headers=AUTH)
    assert response.status_code == 422
    assert says in response.json()["error"]["message"].lower()


async def test_a_silenced_alert_is_still_listed_and_marked(
    world: World, api: httpx.AsyncClient
) -> None:
    created = await api.post("/api/silences", json={"channel_id": "news"}, headers=AUTH)
    await world.open_alert()
    [listed] = (await api.get("/api/alerts")).json()["alerts"]
    assert listed["silenced_by"] == created.json()["id"]
    assert listed["unpaged"] is True


async def test_the_thumbnail_is_served_as_jpeg_and_linked_from_the_channel(
    world: World, api: httpx.AsyncClient
) -> None:
    assert (await api.get("/api/channels/news/thumbnail.jpg")).status_code == 404
    jpeg = b"\xff\xd8\xff\xe0fake"
    await world.engine.store.put_thumbnail(
        Thumbnail(channel_id="news", jpeg_base64=base64.b64encode(jpeg).decode(), seq=3, at=5.0)
    )
    response = await api.get("/api/channels/news/thumbnail.jpg")
    assert (response.status_code, response.headers["content-type"]) == (200, "image/jpeg")
    assert response.content == jpeg
    channels = {c["id"]: c for c in (await api.get("/api/channels")).json()["channels"]}
    assert channels["news"]["last_thumbnail"] == "/api/channels/news/thumbnail.jpg"
    assert channels["sport"]["last_thumbnail"] is None


async def test_a_detection_with_a_thumbnail_becomes_the_channels_picture(
    world: World, api: httpx.AsyncClient
) -> None:
    jpeg = b"\xff\xd8\xff\xe0frame"
    msg = frozen(0).model_copy(update={"thumbnail_jpeg": base64.b64encode(jpeg).decode()})
    await world.engine.handle_detection(msg)
    assert (await api.get("/api/channels/news/thumbnail.jpg")).content == jpeg


async def test_the_status_wall_and_its_assets_are_served(api: httpx.AsyncClient) -> None:
    page = await api.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/wall.js" in page.text
    for asset in ("/static/wall.js", "/static/wall.css"):
        assert (await api.get(asset)).status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # no external assets
