"""``vqm demo``: six synthetic live channels with scheduled defects, monitored end to end.

Everything runs in this process: the synthetic origin serves six live HLS playlists on
localhost (a news desk, sport, a dark drama, a music channel, a test card, and a remote
contribution feed with problems), ingest follows them, inference decodes and detects,
alerting opens and resolves alerts (printed as they happen), pages a small built-in webhook
receiver (which prints each signed page it gets) and the API serves the status wall on
localhost. Every detector that is on by default fires once, on schedule, on one channel; the
drama and the test card stay clean (dark is not black; a card with a running clock is not
frozen).

Pictures are 320x180 and encoded ahead in one thread, so the six channels, their encoding and
their analysis fit on two shared cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import sys
from dataclasses import dataclass, field

from alerting.config import AlertingConfig
from alerting.notifiers import NotificationConfig, verify_signature
from alerting.notifiers.webhook import SIGNATURE_HEADER
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.console import print_alert
from monitor.app.runtime import Runtime
from monitor.app.synthetic.channel import SyntheticChannel
from monitor.app.synthetic.defects import Defect, DefectSchedule
from monitor.app.synthetic.hls_server import Faults, LiveHlsServer, PlaylistFault
from monitor.app.synthetic.scenes import SceneSpec
from monitor.core.channels import Severity
from monitor.core.settings import Settings
from monitor.inference.detectors.loudness import LoudnessConfig
from stream_ingest.config import IngestConfig

logger = logging.getLogger(__name__)

WIDTH, HEIGHT = 320, 180  # small pictures: six channels live on two shared cores


@dataclass(frozen=True)
class DemoChannel:
    """One channel of the demo: what it shows, what goes wrong on it, and when."""

    id: str
    name: str
    scenes: list[SceneSpec]
    defects: list[Defect] = field(default_factory=list)
    severity: Severity = "major"
    story: str = "clean"  # the banner's line about it


def _scenes(*specs: tuple[str, str | None]) -> list[SceneSpec]:
    return [SceneSpec(kind=kind, audio=audio) for kind, audio in specs]  # type: ignore[arg-type]


DEMO_CHANNELS: tuple[DemoChannel, ...] = (
    DemoChannel(
        "news",
        "News 24",
        _scenes(("studio", "speech"), ("talking", None)),
        [Defect(kind="freeze", start=20.0, duration=5.0)],
        "critical",
        "freeze 20-25 s",
    ),
    DemoChannel(
        "sport",
        "Sport HD",
        _scenes(("high_motion", "speech"), ("crowd", "music")),
        [Defect(kind="black", start=10.0, duration=4.0)],
        "major",
        "black 10-14 s",
    ),
    DemoChannel(
        "drama",
        "Night Drama",
        _scenes(("dark", "speech")),
        severity="minor",
        story="clean: dark night scenes that are not black",
    ),
    DemoChannel(
        "music",
        "Music TV",
        _scenes(("slow_pan", "music"), ("studio", "music")),
        [Defect(kind="silence", start=32.0, duration=4.0)],
        "minor",
        "silence 32-36 s",
    ),
    DemoChannel(
        "testcard",
        "Test Card",
        _scenes(("test_card", "tone")),
        severity="info",
        story="clean: bars and a -23 LUFS tone, still but never frozen",
    ),
    DemoChannel(
        "remote",
        "Remote OB",
        _scenes(("crowd", "speech"), ("talking", None)),
        [Defect(kind="loud", start=22.0, duration=14.0)],
        "major",
        "contribution problems: 10 dB too loud 22-36 s, playlist stuck 44-54 s",
    ),
)
# The remote feed's origin stops updating its playlist for ten seconds: a stale_playlist
# alert, and the tile goes down until segments flow again.
STALE_PLAYLIST = (44.0, 54.0)
DEMO_FLAP_WINDOW = 8.0
# A 20 s loudness window (production: 60 s) so the too-loud stretch both opens and resolves
# within the demo; the other loudness settings are the defaults.
DEMO_LOUDNESS_WINDOW = 20.0


def demo_config(urls: dict[str, str], webhook: DemoWebhook | None = None) -> VqmConfig:
    """The six channels at ``urls`` (by id), paging ``webhook`` for every severity."""
    notifications = NotificationConfig()
    if webhook is not None:
        notifications = NotificationConfig.model_validate(
            {
                "notifiers": {
                    "demo-webhook": {
                        "type": "webhook",
                        "url": webhook.url,
                        "secret": webhook.secret,
                    }
                },
                "routes": [
                    {
                        "severities": ["critical", "major", "minor", "warning", "info"],
                        "notifiers": ["demo-webhook"],
                    }
                ],
            }
        )
    return VqmConfig(
        channels=[
            ChannelConfig(id=c.id, name=c.name, url=urls[c.id], severity=c.severity)
            for c in DEMO_CHANNELS
        ],
        detectors=[LoudnessConfig(window=DEMO_LOUDNESS_WINDOW)],
        ingest=IngestConfig(start="first"),
        notifications=notifications,
        # A short flap hold so resolves show within the demo; production default is 30 s.
        alerting=AlertingConfig(flap_window=DEMO_FLAP_WINDOW),
    )


def demo_origin(seed: int) -> LiveHlsServer:
    """The six synthetic channels on one local origin (seeds ``seed``, ``seed + 1``, ...)."""
    channels = {
        c.id: SyntheticChannel(
            seed=seed + i,
            schedule=DefectSchedule(defects=list(c.defects)),
            scenes=c.scenes,
            width=WIDTH,
            height=HEIGHT,
        )
        for i, c in enumerate(DEMO_CHANNELS)
    }
    stale = PlaylistFault(
        channel="remote", start=STALE_PLAYLIST[0], end=STALE_PLAYLIST[1], kind="stale"
    )
    return LiveHlsServer(channels, host="127.0.0.1", port=0, faults=Faults(playlists=[stale]))


class DemoWebhook:
    """A tiny HTTP receiver on a free port standing in for on-call: one printed line a page."""

    def __init__(self) -> None:
        self.secret = secrets.token_hex(16)
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/page"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:] if h)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            signed = verify_signature(body, self.secret, headers.get(SIGNATURE_HEADER.lower()))
            print(_page_line(body, signed), flush=True)
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


def _page_line(body: bytes, signed: bool) -> str:
    event = json.loads(body)
    alert = event["alert"]
    what = alert["detector"] + (f"/{alert['label']}" if alert.get("label") else "")
    check = "signature ok" if signed else "BAD SIGNATURE"
    return f"  PAGE {event['transition']:<8} {alert['channel_id']} {what} [{check}]"


async def run_demo(
    duration: float | None, port: int, seed: int, stop: asyncio.Event | None = None
) -> None:
    """Run the demo until ``duration`` seconds have passed, Ctrl-C, or ``stop`` is set."""
    origin = demo_origin(seed)
    await origin.start()
    webhook = DemoWebhook()
    await webhook.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    urls = {c.id: origin.playlist_url(c.id) for c in DEMO_CHANNELS}
    runtime = Runtime(
        demo_config(urls, webhook),
        Settings(api_port=port, kafka_bootstrap=None, redis_url=None),
        listeners=[print_alert],
    )
    _banner(origin.base_url(), port, duration, webhook.url)
    timer = asyncio.create_task(_stop_after(stop, duration))
    try:
        await runtime.run(stop)
    finally:
        timer.cancel()
        await webhook.stop()
        await origin.stop()
    print("demo finished", flush=True)


def _banner(origin: str, port: int, duration: float | None, webhook: str) -> None:
    lines = [f"vqm demo: six synthetic channels at {origin}/<id>/index.m3u8"]
    lines += [f"  {c.id:<9} {c.name:<12} {c.story}" for c in DEMO_CHANNELS]
    lines += [
        f"  status wall: http://127.0.0.1:{port}/",
        f"  pages go to a built-in webhook at {webhook} (printed as PAGE lines)",
        f"  status API: http://127.0.0.1:{port}/api/channels  metrics: http://127.0.0.1:{port}/metrics",
        f"  stops after {duration:.0f} s or on Ctrl-C" if duration else "  stop with Ctrl-C",
        "  alerts (wall clock, transition, channel, detector, media time):",
    ]
    print("\n".join(lines), file=sys.stdout, flush=True)


async def _stop_after(stop: asyncio.Event, duration: float | None) -> None:
    if duration is None:
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), duration)
    stop.set()
