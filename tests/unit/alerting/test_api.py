"""The HTTP API: status codes, the error shape, channels, alerts, metrics and serving."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerting.api import ApiContext, ModelInfo, create_app, serve
from alerting.config import AlertingConfig
from alerting.engine import AlertEngine
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.messages import DefectSpan, DetectionMessage
from monitor.core.metrics import Metrics
from monitor.core.state import MemoryStateStore

CONFIG = VqmConfig(
    channels=[
        ChannelConfig(id="news", name="News 24", url="http://origin/news.m3u8"),
        ChannelConfig(id="sport", url="http://origin/sport.m3u8"),
    ],
    alerting=AlertingConfig(flap_window=0),  # resolve at recovery; flap holds tested apart
)


def detection(seq: int, frozen: bool, detector: str = "freeze") -> DetectionMessage:
    start = seq * 2.0
    spans = [DefectSpan(start=start, end=start + 2.0, confidence=0.9)] if frozen else []
    return DetectionMessage(
        channel_id="news",
        seq=seq,
        detector=detector,
        media_start=start,
        media_end=start + 2.0,
        spans=spans,
        fetched_at=time.time(),
    )


class World:
    def __init__(self) -> None:
        self.metrics = Metrics(CollectorRegistry())
        self.state = MemoryStateStore()
        self.engine = AlertEngine(CONFIG, self.state, self.metrics)
        self.components = {"bus": True, "state": True, "models": True}

    async def ready(self) -> dict[str, bool]:
        return dict(self.components)

    def context(self, models: Callable[[], Sequence[ModelInfo]] | None = None) -> ApiContext:
        return ApiContext(
            config=CONFIG,
            state=self.state,
            metrics=self.metrics,
            readiness=self.ready,
            models=models,
        )


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(world.context()))
    async with httpx.AsyncClient(transport=transport, base_url="http://vqm") as c:
        yield c


async def test_healthz_answers_ok_while_the_process_lives(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_200_with_components_when_everything_is_ready(
    world: World, client: httpx.AsyncClient
) -> None:
    world.metrics.model_info.labels("block_corruption", "1.2", "CUDAExecutionProvider", "ab").set(1)
    world.metrics.model_info.labels("block_corruption", "1.2", "CPUExecutionProvider", "ab").set(1)
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["components"] == {"bus": True, "state": True, "models": True}
    assert body["models"] == [
        {
            "name": "block_corruption",
            "version": "1.2",
            "sha256": "ab",
            "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        }
    ]


async def test_readyz_is_503_naming_the_component_that_is_not_ready(
    world: World, client: httpx.AsyncClient
) -> None:
    world.components["models"] = False
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"
    assert response.json()["components"]["models"] is False


async def test_readyz_is_503_when_the_check_itself_fails(world: World) -> None:
    async def broken() -> dict[str, bool]:
        raise ConnectionError("redis gone")

    ctx = ApiContext(config=CONFIG, state=world.state, metrics=world.metrics, readiness=broken)
    transport = httpx.ASGITransport(app=create_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://vqm") as c:
        response = await c.get("/readyz")
    assert response.status_code == 503


async def test_readyz_lists_the_models_the_context_gives(world: World) -> None:
    models = [ModelInfo(name="audio_artifact", version="3", providers=["CPUExecutionProvider"])]
    transport = httpx.ASGITransport(app=create_app(world.context(models=lambda: models)))
    async with httpx.AsyncClient(transport=transport, base_url="http://vqm") as c:
        body = (await c.get("/readyz")).json()
    assert body["models"] == [
        {
            "name": "audio_artifact",
            "version": "3",
            "sha256": None,
            "providers": ["CPUExecutionProvider"],
        }
    ]


async def test_metrics_are_served_in_prometheus_text(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.engine.handle_detection(detection(0, frozen=True))
    for path in ("/metrics", "/metrics/"):
        response = await client.get(path)
        assert response.status_code == 200
        sample = 'vqm_active_alerts{channel="news",detector="freeze",severity="major"} 1.0'
        assert sample in response.text


async def test_channels_list_every_configured_channel_with_its_status(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.engine.handle_detection(detection(0, frozen=True))
    response = await client.get("/api/channels")
    assert response.status_code == 200
    channels = {c["id"]: c for c in response.json()["channels"]}
    assert channels["news"]["name"] == "News 24"
    assert channels["news"]["status"] == "alerting"
    assert channels["news"]["last_segment_at"] is not None
    assert [a["detector"] for a in channels["news"]["active_alerts"]] == ["freeze"]
    assert channels["sport"]["status"] == "unknown"
    assert channels["sport"]["active_alerts"] == []


async def test_one_channel_is_served_by_id(world: World, client: httpx.AsyncClient) -> None:
    await world.engine.handle_detection(detection(0, frozen=False))
    response = await client.get("/api/channels/news")
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["status"]) == ("news", "ok")


async def test_an_unknown_channel_is_404_in_the_common_error_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/channels/nope")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no channel 'nope'"}}


async def test_an_unknown_path_is_404_in_the_common_error_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_a_bad_query_is_422_in_the_common_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/alerts", params={"state": "sideways"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "state" in error["message"]


async def test_alerts_filter_by_state_channel_and_detector(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.engine.handle_detection(detection(0, frozen=True, detector="black"))
    await world.engine.handle_detection(detection(1, frozen=False, detector="black"))
    await world.engine.handle_detection(detection(0, frozen=True, detector="freeze"))

    async def ids(**params: str) -> list[tuple[str, str]]:
        response = await client.get("/api/alerts", params=params)
        assert response.status_code == 200
        return [(a["detector"], a["state"]) for a in response.json()["alerts"]]

    assert await ids() == [("freeze", "open")]
    assert await ids(state="recent") == [("black", "resolved")]
    assert await ids(state="all") == [("freeze", "open"), ("black", "resolved")]
    assert await ids(state="all", detector="black") == [("black", "resolved")]
    assert await ids(state="all", channel="sport") == []


async def test_openapi_documents_the_endpoints(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {
        "/healthz",
        "/readyz",
        "/api/channels",
        "/api/channels/{channel_id}",
        "/api/alerts",
    } <= set(paths)


async def test_serve_runs_in_this_loop_and_stops_when_told(world: World, port: int) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(create_app(world.context()), "127.0.0.1", port, stop))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        for _ in range(100):
            try:
                response = await c.get("/healthz")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("the server never answered")
    assert response.status_code == 200
    stop.set()
    await asyncio.wait_for(task, 5.0)


async def test_serve_fails_clearly_when_the_port_is_taken(world: World, port: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(RuntimeError, match=f"could not start on 127.0.0.1:{port}"):
            await serve(create_app(world.context()), "127.0.0.1", port, asyncio.Event())
