"""Channel health of a ``variant: all`` channel: each rendition (``news@720p``) goes down on
its own, and the channel itself is up while any rendition delivers."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry

from alerting.api import ApiContext, create_app
from alerting.engine import AlertEngine
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.messages import StreamEvent, StreamEventKind
from monitor.core.metrics import Metrics
from monitor.core.state import MemoryStateStore
from tests.unit.alerting.test_engine import T0, Clock, Recorder, gauge


def make_engine(clock: Clock, state: MemoryStateStore) -> tuple[AlertEngine, Metrics]:
    config = VqmConfig(
        channels=[ChannelConfig(id="news", url="http://origin/news.m3u8", variant="all")]
    )
    metrics = Metrics(CollectorRegistry())
    return AlertEngine(config, state, metrics, [Recorder()], clock=clock), metrics


async def test_a_rendition_that_stops_is_down_while_the_channel_stays_up() -> None:
    clock, state = Clock(), MemoryStateStore()
    engine, metrics = make_engine(clock, state)
    await engine.start()
    await engine.handle_segment_seen("news@720p", T0, 2.0)
    await engine.handle_segment_seen("news@360p", T0, 2.0)
    for t in (T0 + 4.0, T0 + 8.0):  # only 360p goes on delivering
        clock.t = t
        await engine.handle_segment_seen("news@360p", t, 2.0)
        await engine.tick()

    up = {
        c: gauge(metrics, "vqm_channel_up", channel=c) for c in ("news", "news@720p", "news@360p")
    }
    assert up == {"news": 1, "news@720p": 0, "news@360p": 1}


async def test_renditions_seen_are_still_watched_after_a_restart() -> None:
    clock, state = Clock(), MemoryStateStore()
    engine, _ = make_engine(clock, state)
    await engine.start()
    await engine.handle_segment_seen("news@720p", T0, 2.0)

    restarted, metrics = make_engine(clock, state)  # a new alerting process, same store
    await restarted.start()
    clock.t = T0 + 7.0
    await restarted.tick()
    assert gauge(metrics, "vqm_channel_up", channel="news@720p") == 0
    assert gauge(metrics, "vqm_channel_up", channel="news") == 0  # none delivers any more


async def test_the_api_serves_a_rendition_by_its_sub_channel_id() -> None:
    clock, state = Clock(), MemoryStateStore()
    engine, metrics = make_engine(clock, state)
    await engine.handle_segment_seen("news@720p", T0, 2.0)
    context = ApiContext(config=engine.config, state=state, metrics=metrics)
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://vqm") as client:
        rendition = await client.get("/api/channels/news@720p")
        stray = await client.get("/api/channels/sport@720p")

    assert rendition.status_code == 200
    assert (rendition.json()["id"], rendition.json()["name"]) == ("news@720p", "news 720p")
    assert rendition.json()["last_segment_at"] == T0
    assert stray.status_code == 404


async def test_the_channel_list_shows_each_sub_channel_seen_under_its_parent() -> None:
    clock, state = Clock(), MemoryStateStore()
    engine, metrics = make_engine(clock, state)
    await engine.start()
    for sub in ("news@360p", "news@1080p", "news@720p"):
        await engine.handle_segment_seen(sub, T0, 2.0)
    clock.t = T0 + 7.0
    await engine.handle_segment_seen("news@1080p", clock.t, 2.0)
    await engine.handle_segment_seen("news@360p", clock.t, 2.0)
    await engine.tick()  # 720p stopped delivering: down on its own
    ev = StreamEvent(channel_id="news@128k", kind=StreamEventKind.HTTP_ERROR, detail="404")
    await engine.handle_stream_event(ev)  # heard from, never delivered
    context = ApiContext(config=engine.config, state=state, metrics=metrics)
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://vqm") as client:
        listed = (await client.get("/api/channels")).json()["channels"]
        parent = (await client.get("/api/channels/news")).json()

    ids = ["news", "news@1080p", "news@720p", "news@360p", "news@128k"]
    assert [c["id"] for c in listed] == ids
    assert listed[0]["sub_channels"] == ids[1:] == parent["sub_channels"]
    assert [c["parent"] for c in listed] == [None, "news", "news", "news", "news"]
    status = {c["id"]: c["status"] for c in listed}
    assert status == {
        "news": "ok",
        "news@1080p": "ok",
        "news@720p": "down",
        "news@360p": "ok",
        "news@128k": "alerting",
    }
    assert listed[2]["name"] == "news 720p"
