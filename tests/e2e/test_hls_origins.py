"""The same clip served three ways (plain HLS, FFmpeg's AES-128 HLS, and an LL-HLS-style
playlist that moves by delta updates and lists parts) must give the same alerts.

The clip (320x180, 10 s, black 4-7 s) is written by the synthetic channel and cut into 2 s
segments by FFmpeg's HLS muxer, once in the clear and once with ``-hls_key_info_file``; a
loopback origin serves them, and one `vqm run`-style runtime follows the three channels.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from alerting.config import AlertingConfig
from alerting.models import AlertEvent, AlertTransition
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.runtime import Runtime
from monitor.app.synthetic.channel import write_clip
from monitor.app.synthetic.defects import Defect
from monitor.core.settings import Settings
from stream_ingest.config import IngestConfig
from tests.conftest import free_port
from tests.unit.stream_ingest.origin import Origin, Response

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs FFmpeg's CLI"),
]

BLACK = (4.0, 7.0)


def hls(clip: Path, out: Path, *extra: str) -> list[str]:
    """Cut ``clip`` into 2 s segments with FFmpeg; the playlist's lines."""
    out.mkdir()
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(clip), "-c", "copy", "-f", "hls", "-hls_time", "2",
         "-hls_playlist_type", "vod", *extra, "-hls_segment_filename", str(out / "seg%d.ts"),
         str(out / "index.m3u8")],
        check=True, timeout=60,
    )  # fmt: skip
    return (out / "index.m3u8").read_text().splitlines()


def serve_dir(origin: Origin, directory: Path, prefix: str) -> None:
    for path in directory.iterdir():
        origin.routes[f"/{prefix}/{path.name}"] = Response(body=path.read_bytes())


def ll_hls_updates(lines: list[str]) -> list[Response]:
    """The plain playlist as an LL-HLS origin would serve it live: first the opening segments
    with parts and a preload hint, then a delta update skipping what the client has, ending."""
    header = [line for line in lines if line.startswith("#EXT-X-") and "ENDLIST" not in line]
    header = [h for h in header if not h.startswith("#EXT-X-PLAYLIST-TYPE")]
    entries = [
        (lines[i], lines[i + 1]) for i, line in enumerate(lines) if line.startswith("#EXTINF")
    ]
    control = ["#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.5",
               "#EXT-X-PART-INF:PART-TARGET=0.5"]  # fmt: skip

    def parts(uri: str) -> list[str]:
        return [f'#EXT-X-PART:DURATION=0.5,URI="{uri}.part{n}",INDEPENDENT=YES' for n in range(4)]

    first = ["#EXTM3U", *header, *control]
    for extinf, uri in entries[:2]:
        first += [*parts(uri), extinf, uri]
    first += [f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{entries[2][1]}.part0"']
    delta = ["#EXTM3U", *header, *control, "#EXT-X-SKIP:SKIPPED-SEGMENTS=1"]
    for extinf, uri in entries[1:]:
        delta += [extinf, uri]
    delta += ['#EXT-X-RENDITION-REPORT:URI="../plain/index.m3u8",LAST-MSN=4', "#EXT-X-ENDLIST"]
    return [Response(body=("\n".join(p) + "\n").encode()) for p in (first, delta)]


@pytest.fixture
async def origin(tmp_path: Path):
    clip = tmp_path / "clip.ts"
    write_clip(clip, 10.0, seed=19_019, schedule=[Defect(kind="black", start=4.0, duration=3.0)],
               width=320, height=180)  # fmt: skip
    server = Origin()
    plain = hls(clip, tmp_path / "plain")
    serve_dir(server, tmp_path / "plain", "plain")
    key = tmp_path / "key.bin"
    key.write_bytes(os.urandom(16))
    info = tmp_path / "key.info"
    info.write_text(f"key.bin\n{key}\n")  # no IV line: the sequence number is the IV
    aes = hls(clip, tmp_path / "aes", "-hls_key_info_file", str(info))
    assert any(line.startswith("#EXT-X-KEY:METHOD=AES-128") for line in aes)
    serve_dir(server, tmp_path / "aes", "aes")
    server.routes["/aes/key.bin"] = Response(body=key.read_bytes())
    for path in (tmp_path / "plain").glob("seg*.ts"):
        server.routes[f"/ll/{path.name}"] = Response(body=path.read_bytes())
    server.routes["/ll/index.m3u8"] = ll_hls_updates(plain)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_aes128_and_ll_hls_give_the_same_black_alert_as_plain_hls(origin: Origin) -> None:
    events: list[AlertEvent] = []

    async def record(event: AlertEvent) -> None:
        events.append(event)

    names = ("plain", "aes", "ll")
    config = VqmConfig(
        channels=[ChannelConfig(id=n, url=origin.url(f"/{n}/index.m3u8")) for n in names],
        ingest=IngestConfig(start="first"),
        alerting=AlertingConfig(flap_window=0),
    )
    runtime = Runtime(config, Settings(api_port=free_port()), listeners=[record])
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))

    def resolved() -> dict[str, tuple[float, float]]:
        return {
            e.alert.channel_id: (e.alert.start, e.alert.end)
            for e in events
            if e.transition is AlertTransition.RESOLVED
        }

    deadline = time.monotonic() + 90
    try:
        while set(resolved()) != set(names):
            assert time.monotonic() < deadline, [(e.transition, e.alert) for e in events]
            assert not task.done()
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)

    alerts = [e.alert for e in events if e.transition is AlertTransition.OPENED]
    assert sorted((a.channel_id, a.detector) for a in alerts) == sorted(
        (n, "black") for n in names
    ), alerts
    times = resolved()
    start, end = times["plain"]
    # On the stream's PTS timeline, which FFmpeg's MPEG-TS muxer starts at 1.4 s.
    assert start == pytest.approx(BLACK[0] + 1.4, abs=0.25)
    assert end - start == pytest.approx(BLACK[1] - BLACK[0], abs=0.25)
    assert times["aes"] == pytest.approx(times["plain"], abs=1e-6)
    assert times["ll"] == pytest.approx(times["plain"], abs=1e-6)
