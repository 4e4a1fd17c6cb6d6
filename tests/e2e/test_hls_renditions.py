"""A multi-bitrate channel as FFmpeg writes it (two video variants, one separate audio
rendition) followed with ``variant: all`` by a `vqm run`-style runtime: each variant is a
sub-channel of its own, so the black that only the small variant carries pages on that
rendition alone, and the silence of the shared audio rendition pages on both, at its time,
whether that rendition is MPEG-TS or packed audio, or the whole channel fMP4.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from alerting.config import AlertingConfig
from alerting.models import AlertEvent, AlertTransition
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.runtime import Runtime
from monitor.core.settings import Settings
from stream_ingest.config import IngestConfig
from tests.conftest import free_port
from tests.unit.stream_ingest.multivariant import BLACK_90P, SILENCE, pack_audio, write_master
from tests.unit.stream_ingest.origin import Origin, Response

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs FFmpeg's CLI"),
]
# FFmpeg's MPEG-TS muxer starts the PTS timeline, on which alerts are timed, at 1.4 s; its
# fMP4 fragments start at 0.
PTS_START = {"mpegts": 1.4, "packed": 1.4, "fmp4": 0.0}


@pytest.fixture(params=list(PTS_START))
async def origin(tmp_path: Path, request: pytest.FixtureRequest):
    """The channel on a local origin: MPEG-TS, MPEG-TS with packed audio, or fMP4."""
    write_master(tmp_path, fmp4=request.param == "fmp4")
    if request.param == "packed":
        pack_audio(tmp_path)
    server = Origin()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            server.routes["/" + path.relative_to(tmp_path).as_posix()] = Response(
                body=path.read_bytes()
            )
    await server.start()
    try:
        yield server, request.param
    finally:
        await server.stop()


async def test_variant_all_pages_each_defect_on_the_renditions_that_carry_it(
    origin: tuple[Origin, str],
) -> None:
    server, kind = origin
    pts_start = PTS_START[kind]
    events: list[AlertEvent] = []

    async def record(event: AlertEvent) -> None:
        events.append(event)

    config = VqmConfig(
        channels=[ChannelConfig(id="news", url=server.url("/master.m3u8"), variant="all")],
        ingest=IngestConfig(start="first"),
        alerting=AlertingConfig(flap_window=0),
    )
    runtime = Runtime(config, Settings(api_port=free_port()), listeners=[record])
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    wanted = {("news@90p", "black"), ("news@90p", "silence"), ("news@180p", "silence")}

    def resolved() -> dict[tuple[str, str], tuple[float, float]]:
        return {
            (e.alert.channel_id, e.alert.detector): (e.alert.start, e.alert.end)
            for e in events
            if e.transition is AlertTransition.RESOLVED
        }

    deadline = time.monotonic() + 120
    try:
        while not wanted <= set(resolved()):
            assert time.monotonic() < deadline, [(e.transition, e.alert) for e in events]
            assert not task.done()
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)

    opened = {
        (e.alert.channel_id, e.alert.detector) for e in events if e.transition.value == "opened"
    }
    assert opened == wanted, opened  # no black on the big variant, no alert on "news" itself
    times = resolved()
    for key, (start, end) in ((k, SILENCE) for k in wanted if k[1] == "silence"):
        assert times[key][0] == pytest.approx(start + pts_start, abs=0.3), key
        assert times[key][1] - times[key][0] == pytest.approx(end - start, abs=0.3), key
    black = times[("news@90p", "black")]
    assert black[0] == pytest.approx(BLACK_90P[0] + pts_start, abs=0.25)
    assert black[1] - black[0] == pytest.approx(BLACK_90P[1] - BLACK_90P[0], abs=0.25)
