"""Soak and fault run of the distributed mode: every defect paged once, nothing lost.

Two deployments share one Tansu broker:

- **analysed**: ``--channels`` synthetic live channels (320x180, 2 s segments) with a 6 s
  defect each minute (black, freeze and silence in turn), through ``vqm ingest``, ``vqm
  infer`` and ``vqm alert`` paging a local webhook receiver; its Redis keeps an append-only
  file (the persistence the README asks for).
- **followed**: ``--follow-channels`` channels (160x90, static looping origin, about 32 KB
  segments) through one ``vqm ingest`` on a Redis of its own: the lease load of many channels
  on one process.

Faults on a schedule (seconds after the start): SIGKILL of infer, alert and both ingests
(each restarted 3 s later), the analysed Redis restarted keeping its data, then restarted
empty (its data lost), the receiver down 30 s, and the broker restarted. The broker here
keeps topics in memory (the Tansu build in the test dependencies has no durable storage), so
its restart loses what it held: defects on air then are reported apart, as lost with the
broker, and the run checks that vqm carries on after it.

Printed: defects injected, paged once, paged twice (distinct deliveries of an opening),
missed, pages that match no defect; segments published against analysed; sequence gaps of
the followed channels; p50/p95 from a defect going on air to its page (which includes the
detector's minimum duration, 2 s for black and freeze, 2 s for silence).

    python benchmarks/soak.py --duration 420 --channels 12 --follow-channels 200
    python benchmarks/soak.py --duration 180 --channels 3 --follow-channels 20 --no-faults
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alerting.config import AlertingConfig  # noqa: E402
from alerting.notifiers import NotificationConfig  # noqa: E402
from alerting.outbox import OutboxConfig  # noqa: E402
from monitor.app.config import ChannelConfig, VqmConfig  # noqa: E402
from monitor.app.synthetic.channel import SyntheticChannel  # noqa: E402
from monitor.app.synthetic.defects import Defect  # noqa: E402
from monitor.app.synthetic.hls_server import LiveHlsServer  # noqa: E402
from monitor.core.bus import Topics  # noqa: E402
from monitor.core.bus_kafka import KafkaBus  # noqa: E402
from monitor.core.topics import create_topics  # noqa: E402
from stream_ingest.config import IngestConfig  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.integration.conftest import Service, start_tansu  # noqa: E402
from tests.integration.processes import Cluster, VqmProcess  # noqa: E402
from tests.receiver import Receiver  # noqa: E402

SEGMENT = 2.0
DEFECT = 6.0
KINDS = ("black", "freeze", "silence")
MATCH = 1.5  # seconds between a defect's start and its alert's start that still match
SETTLE = 25.0  # seconds after the run for the last pages
MAX_SEGMENT = 4 * 1024 * 1024
_HEADER = struct.Struct(">I")
SECRET = "soak-receiver-shared-secret"
SEVERITIES = ("critical", "major", "minor", "warning", "info")


# ------------------------------------------------------------------ the origins


class LoopingOrigin(LiveHlsServer):
    """A live origin whose every channel serves the same few pre-encoded segments in a loop:
    the playlist and sequence numbers of a live channel without the encoding cost."""

    def __init__(self, count: int, port: int = 0, pool: int = 5) -> None:
        channel = SyntheticChannel(
            seed=3, segment_duration=SEGMENT, width=160, height=90, scenes=["studio"]
        )
        super().__init__({f"loop{i:03d}": channel for i in range(count)}, port=port, window=15)
        self._pool = [channel.segment_bytes(i) for i in range(pool)]

    def _encode_now(self, channel_id: str, seq: int) -> bytes:
        return self._pool[seq % len(self._pool)]


def analysed_channels(count: int, duration: float) -> dict[str, SyntheticChannel]:
    return {
        f"ch{i:02d}": SyntheticChannel(
            seed=900 + i, width=320, height=180, schedule=schedule(i, duration)
        )
        for i in range(count)
    }


def playlist(port: int, channel: str) -> str:
    return f"http://127.0.0.1:{port}/{channel}/index.m3u8"


def serve_origin(kind: str, port: int, count: int, duration: float, conn) -> None:  # type: ignore[no-untyped-def]
    """Child process: one origin, so encoding the live channels (``kind`` "live") or serving
    the many looping ones ("looping") never competes with anything else for an interpreter.
    It answers "ready" once serving, then the epoch its channel time 0 went on air, and stops
    on "stop". The live origin starts on "start", so its channels begin when vqm is ready."""

    async def serve() -> None:
        origin = (
            LiveHlsServer(analysed_channels(count, duration), port=port, window=15, workers=2)
            if kind == "live"
            else LoopingOrigin(count, port=port)
        )
        if kind == "live":
            conn.send("ready")
            await asyncio.to_thread(conn.recv)
        await origin.start()
        conn.send(time.time() - origin.uptime())
        await asyncio.to_thread(conn.recv)
        await origin.stop()

    asyncio.run(serve())


def count_topic(bootstrap: str, topic: str, conn) -> None:  # type: ignore[no-untyped-def]
    """Child process: count a busy topic (many channels of segments) until "stop", then send
    the sequence numbers seen per channel."""

    async def count() -> None:
        tally, stop = Tally(), asyncio.Event()
        reader = asyncio.create_task(follow_topic(bootstrap, topic, tally, stop))
        await asyncio.to_thread(conn.recv)
        stop.set()
        await reader
        conn.send(dict(tally.fetched))

    asyncio.run(count())


def nearest_p95(ordered: list[float]) -> float:
    """The 95th percentile of sorted ``ordered``, nearest rank (one of the values)."""
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def schedule(index: int, duration: float) -> list[Defect]:
    """One defect a minute, kinds in turn, channels staggered by 7 s."""
    defects, start, k = [], 20.0 + 7.0 * (index % 6), index
    while start + DEFECT < duration:
        defects.append(Defect(kind=KINDS[k % len(KINDS)], start=start, duration=DEFECT))
        start, k = start + 60.0, k + 1
    return defects


# ------------------------------------------------------------------ Redis with a file


@dataclass
class Redis:
    """A redis-server with an append-only file, restartable with or without its data."""

    port: int = field(default_factory=free_port)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vqm-soak-redis-")))
    service: Service | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [
            shutil.which("redis-server") or "redis-server", "--port", str(self.port),
            "--bind", "127.0.0.1", "--dir", str(self.dir), "--appendonly", "yes",
            "--appendfsync", "everysec", "--save", "", "--logfile", str(self.dir / "log"),
        ]  # fmt: skip
        self.service = Service(cmd, self.port, self.dir / "log", "redis")
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            ).stdout.strip()
            != "PONG"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def kill(self, lose_data: bool) -> None:
        assert self.service is not None
        self.service.kill()
        self.service.wait()
        if lose_data:
            shutil.rmtree(self.dir)
            self.dir.mkdir()


# ------------------------------------------------------------------ what the run saw


@dataclass
class Tally:
    """Sequence numbers seen per channel on one topic, each with the wall clock its segment
    was fetched at (only the message headers are read)."""

    fetched: dict[str, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, value: bytes) -> None:
        (n,) = _HEADER.unpack_from(value)
        header = json.loads(value[_HEADER.size : _HEADER.size + n])
        self.fetched[header["channel_id"]][int(header["seq"])] = float(header["fetched_at"])

    def gaps(self) -> int:
        """Sequence numbers missing between each channel's first and last seen."""
        return sum(max(s) - min(s) + 1 - len(s) for s in self.fetched.values() if s)

    def gap_times(self) -> list[float]:
        """When each missing sequence number was due: the wall clock its channel fetched the
        last segment before it (the hole lies between that fetch and the next)."""
        times = []
        for fetched in self.fetched.values():
            seen = sorted(fetched)
            for before, after in zip(seen, seen[1:], strict=False):
                times += [fetched[before]] * (after - before - 1)
        return times

    def distinct(self) -> int:
        return sum(len(s) for s in self.fetched.values())


async def follow_topic(bootstrap: str, topic: str, tally: Tally, stop: asyncio.Event) -> None:
    """Count a topic with a group of its own, surviving a broker restart."""
    bus = KafkaBus(bootstrap, client_id="soak-reader")
    consumer = bus.consumer([topic], group=f"soak-{uuid.uuid4().hex[:8]}")
    try:
        while not stop.is_set():
            try:
                for record in await consumer.getmany(timeout_ms=500, max_records=500):
                    tally.add(record.value)
                await consumer.commit()
            except Exception as exc:  # the broker restarting: report, wait, carry on
                print(f"  reader of {topic}: {type(exc).__name__}: {exc}", file=sys.stderr)
                await asyncio.sleep(1.0)
    finally:
        await consumer.stop()
        await bus.stop()


class Pager(Receiver):
    """The webhook receiver, stamping each delivery's first arrival."""

    arrived: dict[str, float]

    async def watch(self, stop: asyncio.Event) -> None:
        self.arrived = {}
        while not stop.is_set():
            for request in self.accepted:
                key = request.headers.get("x-vqm-delivery", "")
                self.arrived.setdefault(key, time.time())
            await asyncio.sleep(0.05)


# ------------------------------------------------------------------ the run


@dataclass
class Soak:
    args: argparse.Namespace
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vqm-soak-")))
    broker_port: int = field(default_factory=free_port)
    broker: Service | None = None
    broker_down: list[tuple[float, float]] = field(default_factory=list)  # wall clock
    faults: list[tuple[float, float]] = field(default_factory=list)  # wall clock, each fault

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    def topics(self, name: str) -> Topics:
        return Topics(
            segments=f"{name}.segments",
            detections=f"{name}.detections",
            stream_events=f"{name}.stream-events",
        )

    async def make_topics(self, *names: str) -> None:
        for name in names:
            await create_topics(
                self.bootstrap, self.topics(name), partitions=6, replication=1,
                retention_ms=3_600_000, max_message_bytes=MAX_SEGMENT + 1024 * 1024,
            )  # fmt: skip

    async def restart_broker(self) -> None:
        assert self.broker is not None
        down = time.time()
        self.broker.kill()
        self.broker.wait()
        await asyncio.sleep(1.0)
        self.broker = start_tansu(self.broker_port)
        await self.make_topics("soak-a", "soak-f")
        self.broker_down.append((down, time.time()))


def analysed_config(port: int, ids: list[str], pager: Receiver, topics: Topics) -> VqmConfig:
    notifications = NotificationConfig.model_validate(
        {
            "notifiers": {
                "hook": {"type": "webhook", "url": f"{pager.url}/page", "secret": SECRET}
            },
            "routes": [{"severities": list(SEVERITIES), "notifiers": ["hook"]}],
        }
    )
    return VqmConfig(
        channels=[ChannelConfig(id=c, url=playlist(port, c)) for c in ids],
        ingest=IngestConfig(start="first", max_segment_bytes=MAX_SEGMENT),
        topics=topics,
        notifications=notifications,
        alerting=AlertingConfig(
            flap_window=0, outbox=OutboxConfig(backoff_base=0.5, backoff_max=4.0)
        ),
    )


def followed_config(port: int, count: int, topics: Topics) -> VqmConfig:
    return VqmConfig(
        channels=[
            ChannelConfig(id=f"loop{i:03d}", url=playlist(port, f"loop{i:03d}"))
            for i in range(count)
        ],  # fmt: skip
        ingest=IngestConfig(max_segment_bytes=MAX_SEGMENT),
        topics=topics,
    )


async def kill_and_restart(cluster: Cluster, process: VqmProcess) -> VqmProcess:
    process.kill()
    await asyncio.sleep(3.0)
    return cluster.start(process.stage)


async def run_faults(soak: Soak, clusters: dict[str, Cluster], redis: Redis, pager: Pager) -> None:
    """The fault schedule, spread over the run (times scale with --duration)."""
    d = soak.args.duration
    started = time.monotonic()

    async def at(fraction: float, what: str) -> None:
        if soak.faults:  # the previous fault is over
            soak.faults[-1] = (soak.faults[-1][0], time.time())
        await asyncio.sleep(max(0.0, started + fraction * d - time.monotonic()))
        print(f"  t={time.monotonic() - started:5.0f} s  {what}", file=sys.stderr)
        soak.faults.append((time.time(), time.time()))

    a, f = clusters["analysed"], clusters["followed"]

    def first(cluster: Cluster, stage: str) -> VqmProcess:
        return next(p for p in cluster.processes if p.stage == stage)

    await at(0.15, "SIGKILL infer")
    await kill_and_restart(a, first(a, "infer"))
    await at(0.25, "SIGKILL alert")
    await kill_and_restart(a, first(a, "alert"))
    await at(0.35, "SIGKILL both ingests")
    await asyncio.gather(
        kill_and_restart(a, first(a, "ingest")), kill_and_restart(f, first(f, "ingest"))
    )
    await at(0.45, "Redis restarted, data kept (AOF)")
    redis.kill(lose_data=False)
    redis.start()
    await at(0.55, "Redis restarted empty (data lost)")
    redis.kill(lose_data=True)
    redis.start()
    await at(0.65, "receiver down for 30 s")
    await pager.stop()
    await asyncio.sleep(30.0)
    await pager.start()
    await at(0.82, "broker restarted (memory storage: its records are lost)")
    await soak.restart_broker()
    soak.faults[-1] = (soak.faults[-1][0], time.time())


def report(
    soak: Soak, defects: list[tuple[str, Defect]], on_air: float, pager: Pager,
    published: Tally, analysed: Tally, followed: Tally,
) -> None:  # fmt: skip
    opens: dict[str, dict] = {}
    for request in pager.accepted:
        event = request.json()
        if event["transition"] == "opened":
            opens.setdefault(request.headers.get("x-vqm-delivery", ""), event["alert"])
    matched: dict[int, list[str]] = defaultdict(list)
    unmatched = []
    for key, alert in opens.items():
        hit = next(
            (
                i
                for i, (channel, d) in enumerate(defects)
                if channel == alert["channel_id"]
                and d.kind == alert["detector"]
                and abs(d.start - alert["start"]) <= MATCH
            ),
            None,
        )
        if hit is None:
            unmatched.append(alert)
        else:
            matched[hit].append(key)

    def with_broker(d: Defect) -> bool:
        """On air within 5 s of the broker being down."""
        return any(
            a - 5 <= on_air + d.end and on_air + d.start <= b + 5 for a, b in soak.broker_down
        )

    once = sum(1 for keys in matched.values() if len(keys) == 1)
    twice = sum(1 for keys in matched.values() if len(keys) > 1)
    missed = [i for i in range(len(defects)) if i not in matched]
    lost = [i for i in missed if with_broker(defects[i][1])]
    latency = {i: pager.arrived[k[0]] - (on_air + defects[i][1].start) for i, k in matched.items()}

    def clear(d: Defect) -> bool:
        """No fault from 10 s before the defect to 30 s after it."""
        return all(b < on_air + d.start - 10 or a > on_air + d.end + 30 for a, b in soak.faults)

    latencies = sorted(latency.values())
    calm = sorted(v for i, v in latency.items() if clear(defects[i][1]))
    print("| measure | value |\n| --- | --- |")
    print(f"| defects injected | {len(defects)} |")
    print(f"| paged once | {once} |")
    print(f"| paged twice or more | {twice} |")
    print(f"| missed | {len(missed) - len(lost)} |")
    print(f"| missed while the broker (memory storage) restarted | {len(lost)} |")
    print(f"| pages matching no defect | {len(unmatched)} |")
    counts = f"{published.distinct()} / {analysed.distinct()}"
    print(f"| segments published / analysed (analysed deployment) | {counts} |")
    print(
        f"| sequence gaps, analysed / followed channels | {published.gaps()} / {followed.gaps()} |"
    )
    gap_times = followed.gap_times()
    at_broker = sum(1 for t in gap_times if any(a - 5 <= t <= b + 5 for a, b in soak.broker_down))
    print(f"| of the followed channels' gaps, with the broker restarting | {at_broker} |")
    by_ten = Counter(int(t - on_air) // 10 * 10 for t in gap_times)
    spread = ", ".join(f"{s}-{s + 10} s: {n}" for s, n in sorted(by_ten.items()))
    print(f"  followed channels' gaps by channel time: {spread or 'none'}", file=sys.stderr)
    print(f"| segments published, followed channels | {followed.distinct()} |")
    for what, values in (("all defects", latencies), ("defects clear of faults", calm)):
        if values:
            p95 = nearest_p95(values)
            spread = f"{statistics.median(values):.1f} s / {p95:.1f} s ({len(values)})"
            print(f"| defect to page, p50 / p95, {what} | {spread} |")
    for i in missed:
        print(f"  missed: {defects[i][0]} {defects[i][1]}", file=sys.stderr)
    for alert in unmatched:
        print(f"  unmatched page: {alert['channel_id']} {alert['detector']} {alert.get('label')} "
              f"{alert['start']:.1f}", file=sys.stderr)  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    soak = Soak(args)
    soak.broker = start_tansu(soak.broker_port)
    await soak.make_topics("soak-a", "soak-f")
    redis, follow_redis = Redis(), Redis()
    redis.start()
    follow_redis.start()
    ids = [f"ch{i:02d}" for i in range(args.channels)]
    defects = [(c, d) for i, c in enumerate(ids) for d in schedule(i, args.duration)]
    spawn = multiprocessing.get_context("spawn")
    ports = (free_port(), free_port())
    pipes, children = {}, []
    for kind, port, count in (
        ("live", ports[0], args.channels),
        ("looping", ports[1], args.follow_channels),
    ):
        pipes[kind], child = spawn.Pipe()
        children.append(
            spawn.Process(
                target=serve_origin, args=(kind, port, count, args.duration, child), daemon=True
            )
        )
        children[-1].start()
        assert pipes[kind].poll(120), f"the {kind} origin did not start"
        pipes[kind].recv()
    pager = Pager()
    await pager.start()
    topics_a, topics_f = soak.topics("soak-a"), soak.topics("soak-f")
    for sub in ("a", "f"):
        (soak.tmp / sub).mkdir()
    clusters = {
        "analysed": Cluster(soak.tmp / "a", soak.bootstrap, redis.url, "soak-a",
                            analysed_config(ports[0], ids, pager, topics_a), lease_ttl=6.0),
        "followed": Cluster(soak.tmp / "f", soak.bootstrap, follow_redis.url, "soak-f",
                            followed_config(ports[1], args.follow_channels, topics_f),
                            lease_ttl=6.0),
    }  # fmt: skip
    counter, child = spawn.Pipe()
    counting = spawn.Process(
        target=count_topic, args=(soak.bootstrap, topics_f.segments, child), daemon=True
    )
    counting.start()
    published, analysed, followed, stop = Tally(), Tally(), Tally(), asyncio.Event()
    readers = [
        asyncio.create_task(follow_topic(soak.bootstrap, topic, tally, stop))
        for topic, tally in ((topics_a.segments, published), (topics_a.detections, analysed))
    ]
    watcher = asyncio.create_task(pager.watch(stop))
    try:
        a = clusters["analysed"]
        for stage in ("alert", "infer"):
            await a.start(stage).until_ready(120)
        await clusters["followed"].start("ingest").until_ready(120)
        pipes["live"].send("start")
        on_air = await asyncio.to_thread(pipes["live"].recv)
        await a.start("ingest").until_ready(120)
        faults = asyncio.create_task(
            run_faults(soak, clusters, redis, pager) if args.faults else asyncio.sleep(0)
        )
        await asyncio.sleep(args.duration)
        await faults
        await asyncio.sleep(SETTLE)
        stop.set()
        counter.send("stop")
        followed.fetched.update(await asyncio.to_thread(counter.recv))
        await asyncio.gather(*readers, watcher)
        report(soak, defects, on_air, pager, published, analysed, followed)
    finally:
        stop.set()
        for cluster in clusters.values():
            cluster.stop()
        for log in sorted(soak.tmp.glob("*/*.log")):
            print(f"  log: {log}", file=sys.stderr)
        for pipe, child_process in zip(pipes.values(), children, strict=True):
            pipe.send("stop")
            child_process.join(15)
        counting.join(5)
        await pager.stop()
        for r in (redis, follow_redis):
            r.kill(lose_data=False)
        soak.broker.stop()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=420.0, help="seconds of live run")
    parser.add_argument("--channels", type=int, default=12, help="analysed channels")
    parser.add_argument("--follow-channels", type=int, default=200, help="ingest-only channels")
    parser.add_argument("--no-faults", dest="faults", action="store_false")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
