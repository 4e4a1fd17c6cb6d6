"""``vqm demo``: a synthetic live channel with scheduled defects, monitored end to end.

Everything runs in this process: the synthetic origin serves a live HLS playlist on
localhost, ingest follows it, inference decodes and detects, alerting opens and resolves
alerts (printed as they happen), pages a small built-in webhook receiver (which prints each
signed page it gets) and the API serves the status wall on localhost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import sys

from alerting.config import AlertingConfig
from alerting.notifiers import NotificationConfig, verify_signature
from alerting.notifiers.webhook import SIGNATURE_HEADER
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.console import print_alert
from monitor.app.runtime import Runtime
from monitor.app.synthetic.channel import SyntheticChannel
from monitor.app.synthetic.defects import Defect, DefectSchedule
from monitor.app.synthetic.hls_server import LiveHlsServer
from monitor.core.settings import Settings
from stream_ingest.config import IngestConfig

logger = logging.getLogger(__name__)

CHANNEL_ID = "demo-1"


def demo_schedule() -> DefectSchedule:
    """Black at 10-14 s, a freeze at 20-25 s, silence at 32-36 s, and black again later."""
    return DefectSchedule(
        defects=[
            Defect(kind="black", start=10.0, duration=4.0),
            Defect(kind="freeze", start=20.0, duration=5.0),
            Defect(kind="silence", start=32.0, duration=4.0),
            Defect(kind="black", start=48.0, duration=3.0),
        ]
    )


DEMO_FLAP_WINDOW = 8.0


def demo_config(playlist_url: str, webhook: DemoWebhook | None = None) -> VqmConfig:
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
        channels=[ChannelConfig(id=CHANNEL_ID, name="Demo channel", url=playlist_url)],
        ingest=IngestConfig(start="first"),
        notifications=notifications,
        # A short flap hold so resolves show within the demo; production default is 30 s.
        alerting=AlertingConfig(flap_window=DEMO_FLAP_WINDOW),
    )


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


async def run_demo(duration: float | None, port: int, seed: int) -> None:
    channel = SyntheticChannel(seed=seed, schedule=demo_schedule())
    origin = LiveHlsServer({CHANNEL_ID: channel}, host="127.0.0.1", port=0)
    await origin.start()
    webhook = DemoWebhook()
    await webhook.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    runtime = Runtime(
        demo_config(origin.playlist_url(CHANNEL_ID), webhook),
        Settings(api_port=port, kafka_bootstrap=None, redis_url=None),
        listeners=[print_alert],
    )
    _banner(origin.playlist_url(CHANNEL_ID), port, duration, webhook.url)
    timer = asyncio.create_task(_stop_after(stop, duration))
    try:
        await runtime.run(stop)
    finally:
        timer.cancel()
        await webhook.stop()
        await origin.stop()
    print("demo finished", flush=True)


def _banner(playlist: str, port: int, duration: float | None, webhook: str) -> None:
    lines = [
        f"vqm demo: synthetic channel {CHANNEL_ID} at {playlist}",
        "  injected: black 10-14 s, freeze 20-25 s, silence 32-36 s, black 48-51 s",
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
