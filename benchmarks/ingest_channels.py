"""Ingest's CPU for many channels: a connection pool per channel against one shared pool.

One origin process serves ``--channels`` live channels that loop a few pre-encoded 160x90
segments (the soak benchmark's looping origin: 2 s segments of about 32 KB, a 15 s window).
One ingest process (``IngestService`` on the memory bus, the work of ``vqm ingest`` without
the broker) follows all of them for ``--seconds`` after a warm-up, in turns:

- **per channel** (shipped): every channel's follower on an HTTP client of its own;
- **shared**: all of them on one client handed in, as ingest did before.

Printed for each: the ingest process's CPU (cores), segments published per second (the
channels publish one each every 2 s when they keep up), and the ratio. httpcore walks each of
a pool's connections on every request and every response closed, so a shared pool costs in
proportion to the channels; a pool per channel does not.

    python benchmarks/ingest_channels.py --channels 200 --seconds 40 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from prometheus_client import CollectorRegistry  # noqa: E402
from soak import followed_config, serve_origin  # noqa: E402

from monitor.core.bus import MemoryBus, Topics  # noqa: E402
from monitor.core.metrics import Metrics  # noqa: E402
from stream_ingest.fetch import make_client  # noqa: E402
from stream_ingest.service import IngestService  # noqa: E402
from tests.conftest import free_port  # noqa: E402

WARM_UP = 10.0


def follow(port: int, channels: int, seconds: float, shared: bool, out) -> None:  # type: ignore[no-untyped-def]
    """Child process: follow every channel; send (CPU seconds, segments) of the measured part."""

    async def run() -> None:
        config = followed_config(port, channels, Topics())
        bus, stop = MemoryBus(max_bytes=64 * 1024 * 1024), asyncio.Event()
        # nobody reads the segments here: the bus dropping the oldest is expected, not news
        logging.getLogger("monitor.core.bus").setLevel(logging.ERROR)
        client = make_client(config.ingest) if shared else None
        service = IngestService(config, bus, Metrics(CollectorRegistry()), client=client)
        task = asyncio.create_task(service.run(stop))
        await asyncio.sleep(WARM_UP)
        cpu, published = time.process_time(), bus.published(config.topics.segments)
        await asyncio.sleep(seconds)
        cpu, published = (
            time.process_time() - cpu,
            bus.published(config.topics.segments) - published,
        )
        stop.set()
        await task
        if client is not None:
            await client.aclose()
        out.send((cpu, published))

    asyncio.run(run())


def measure(port: int, channels: int, seconds: float, shared: bool) -> tuple[float, float]:
    spawn = multiprocessing.get_context("spawn")
    here, there = spawn.Pipe()
    child = spawn.Process(target=follow, args=(port, channels, seconds, shared, there))
    child.start()
    cpu, published = here.recv()
    child.join(30)
    return cpu / seconds, published / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    port = free_port()
    control, child_end = spawn.Pipe()
    origin = spawn.Process(
        target=serve_origin, args=("looping", port, args.channels, 0.0, child_end), daemon=True
    )
    origin.start()
    control.recv()  # serving
    runs: dict[str, list[tuple[float, float]]] = {"per channel": [], "shared": []}
    try:
        for _ in range(args.rounds):
            for mode in runs:  # in turns, so a busy spell falls on both alike
                runs[mode].append(measure(port, args.channels, args.seconds, mode == "shared"))
    finally:
        control.send("stop")
        origin.join(15)
    cpu = {m: statistics.median(c for c, _ in r) for m, r in runs.items()}
    rate = {m: statistics.median(p for _, p in r) for m, r in runs.items()}
    print(f"{args.channels} channels, {args.seconds:.0f} s after {WARM_UP:.0f} s, "
          f"median of {args.rounds}; {args.channels / 2:.0f} segments/s on air")  # fmt: skip
    print("| clients | ingest CPU, cores | segments published / s |")
    print("| --- | --- | --- |")
    for mode in runs:
        print(f"| {mode} | {cpu[mode]:.2f} | {rate[mode]:.1f} |")
    print(f"shared / per channel, CPU: {cpu['shared'] / cpu['per channel']:.2f}")


if __name__ == "__main__":
    main()
