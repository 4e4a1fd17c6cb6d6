"""``vqm demo``: a synthetic live channel with scheduled defects, monitored end to end.

Everything runs in this process: the synthetic origin serves a live HLS playlist on
localhost, ingest follows it, inference decodes and detects, alerting opens and resolves
alerts (printed as they happen) and the API serves the status on localhost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from monitor.config import ChannelConfig, IngestConfig, Settings, VqmConfig
from monitor.console import print_alert
from monitor.pipeline import Runtime
from monitor.synth.channel import SyntheticChannel
from monitor.synth.defects import Defect, DefectSchedule
from monitor.synth.hls_server import LiveHlsServer

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


def demo_config(playlist_url: str) -> VqmConfig:
    return VqmConfig(
        channels=[ChannelConfig(id=CHANNEL_ID, name="Demo channel", url=playlist_url)],
        ingest=IngestConfig(start="first"),
    )


async def run_demo(duration: float | None, port: int, seed: int) -> None:
    channel = SyntheticChannel(seed=seed, schedule=demo_schedule())
    origin = LiveHlsServer({CHANNEL_ID: channel}, host="127.0.0.1", port=0)
    await origin.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    runtime = Runtime(
        demo_config(origin.playlist_url(CHANNEL_ID)),
        Settings(api_port=port, kafka_bootstrap=None, redis_url=None),
        listeners=[print_alert],
    )
    _banner(origin.playlist_url(CHANNEL_ID), port, duration)
    timer = asyncio.create_task(_stop_after(stop, duration))
    try:
        await runtime.run(stop)
    finally:
        timer.cancel()
        await origin.stop()
    print("demo finished", flush=True)


def _banner(playlist: str, port: int, duration: float | None) -> None:
    lines = [
        f"vqm demo: synthetic channel {CHANNEL_ID} at {playlist}",
        "  injected: black 10-14 s, freeze 20-25 s, silence 32-36 s, black 48-51 s",
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
