"""The whole one-process pipeline on a live synthetic channel, as `vqm run` runs it.

The channel carries black at 10-14 s and a freeze at 20-25 s. Each alert must open within
one segment plus one second of the defect's start (wall clock, from the moment the origin's
clock reached that instant), plus the polling delay RFC 8216 imposes, resolve after the
defect ends, and nothing else may alert.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from alerting.config import AlertingConfig
from alerting.models import AlertEvent, AlertTransition
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.runtime import Runtime
from monitor.app.synthetic.channel import SyntheticChannel
from monitor.app.synthetic.defects import Defect, DefectSchedule
from monitor.app.synthetic.hls_server import LiveHlsServer
from monitor.core.settings import Settings
from stream_ingest.config import IngestConfig
from tests.conftest import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEGMENT = 2.0
BLACK = (10.0, 14.0)
FREEZE = (20.0, 25.0)
RUN_UNTIL = 31.0  # channel seconds: both defects over and recovered


@pytest.fixture
async def origin():
    schedule = DefectSchedule(
        defects=[
            Defect(kind="black", start=BLACK[0], duration=BLACK[1] - BLACK[0]),
            Defect(kind="freeze", start=FREEZE[0], duration=FREEZE[1] - FREEZE[0]),
        ]
    )
    server = LiveHlsServer({"e2e": SyntheticChannel(seed=424242, schedule=schedule)}, port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_black_and_freeze_are_alerted_on_time_and_resolved_and_nothing_else(origin) -> None:
    on_air = time.time()  # channel time 0 goes on air when the origin starts
    events: list[tuple[float, AlertEvent]] = []

    async def record(event: AlertEvent) -> None:
        events.append((time.time(), event))

    config = VqmConfig(
        channels=[ChannelConfig(id="e2e", url=origin.playlist_url("e2e"))],
        ingest=IngestConfig(start="first"),
        # Resolve at recovery: this test times detection; flap holds have their own tests.
        alerting=AlertingConfig(flap_window=0),
    )
    port = free_port()
    runtime = Runtime(config, Settings(api_port=port), listeners=[record])
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    await asyncio.sleep(RUN_UNTIL + SEGMENT + 1.0)
    async with httpx.AsyncClient() as client:
        channels = (await client.get(f"http://127.0.0.1:{port}/api/channels")).json()
    stop.set()
    await asyncio.wait_for(task, 15)

    opened = {
        e.alert.detector: (t, e.alert) for t, e in events if e.transition is AlertTransition.OPENED
    }
    resolved = {
        e.alert.detector: e.alert for _, e in events if e.transition is AlertTransition.RESOLVED
    }
    assert set(opened) == {"black", "freeze"}, [(e.transition, e.alert) for _, e in events]
    for name, (start, end) in (("black", BLACK), ("freeze", FREEZE)):
        wall, alert = opened[name]
        assert alert.start == pytest.approx(start, abs=0.25)
        latency = wall - (on_air + start)
        print(f"{name}: opened {latency:.2f} s after the defect went on air")
        # One segment (packaging) plus one second, plus the half target duration that
        # RFC 8216 section 6.3.4 makes a client wait after an unchanged reload.
        assert latency <= SEGMENT + 1.0 + SEGMENT / 2, f"{name} opened {latency:.2f} s late"
        assert name in resolved, f"{name} never resolved"
        assert resolved[name].end == pytest.approx(end, abs=0.25)
    assert channels["channels"][0]["id"] == "e2e"
