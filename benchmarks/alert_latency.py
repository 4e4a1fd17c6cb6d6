"""Defect on air to alert, for defects that start anywhere in a segment: p50 and p95.

The one-process pipeline (`vqm run`'s runtime: ingest, inference, alerting in one process)
follows ``--channels`` live synthetic channels (320x180, 2 s segments) whose black and freeze
defects (4 s each, kinds in turn) start at random instants, so where a defect starts within
its segment is uniform. Each alert's opening is stamped on the wall clock as the alerting
stage emits it; its latency is that stamp minus the instant the defect went on air (the
origin's clock). Printed: defects, alerts matched, p50 / p95 / max latency, and the issue's
bound, one segment + 1.5 s. A segment is published once it is complete, so a defect that
starts just after a segment boundary waits most of a segment before anyone can see it, and
the detectors' 2 s minimum duration comes on top.

    python benchmarks/alert_latency.py --channels 4 --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from soak import nearest_p95  # noqa: E402

from alerting.config import AlertingConfig  # noqa: E402
from alerting.models import AlertEvent, AlertTransition  # noqa: E402
from monitor.app.config import ChannelConfig, VqmConfig  # noqa: E402
from monitor.app.runtime import Runtime  # noqa: E402
from monitor.app.synthetic.channel import SyntheticChannel  # noqa: E402
from monitor.app.synthetic.defects import Defect, DefectSchedule  # noqa: E402
from monitor.app.synthetic.hls_server import LiveHlsServer  # noqa: E402
from monitor.core.settings import Settings  # noqa: E402
from stream_ingest.config import IngestConfig  # noqa: E402
from tests.conftest import free_port  # noqa: E402

SEGMENT = 2.0
DEFECT = 4.0
SPACING = 12.0  # seconds from one defect's start to the next's on a channel, at least
MATCH = 0.5  # an alert's media start within this of a defect's start is that defect's


def schedules(channels: int, seconds: float, rng: random.Random) -> dict[str, list[Defect]]:
    plans, kinds = {}, ("black", "freeze")
    for c in range(channels):
        defects, start = [], 8.0 + rng.uniform(0, SEGMENT)
        while start + DEFECT + 4.0 < seconds:
            defects.append(Defect(kind=kinds[len(defects) % 2], start=start, duration=DEFECT))
            start += SPACING + rng.uniform(0, 2 * SEGMENT)
        plans[f"ch{c}"] = defects
    return plans


async def run(args: argparse.Namespace) -> None:
    plans = schedules(args.channels, args.seconds, random.Random(args.seed))
    origin = LiveHlsServer(
        {
            cid: SyntheticChannel(
                seed=700 + i, width=320, height=180, schedule=DefectSchedule(defects=plan)
            )
            for i, (cid, plan) in enumerate(plans.items())
        },
        port=0,
    )
    await origin.start()
    on_air = time.time() - origin.uptime()  # the wall clock of channel time 0
    opened: list[tuple[float, AlertEvent]] = []

    async def record(event: AlertEvent) -> None:
        if event.transition is AlertTransition.OPENED:
            opened.append((time.time(), event))

    config = VqmConfig(
        channels=[ChannelConfig(id=cid, url=origin.playlist_url(cid)) for cid in plans],
        ingest=IngestConfig(start="first"),
        alerting=AlertingConfig(flap_window=0),
    )
    runtime = Runtime(config, Settings(api_port=free_port()), listeners=[record])
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    await asyncio.sleep(args.seconds + 2 * SEGMENT)
    stop.set()
    await asyncio.wait_for(task, 30)
    await origin.stop()
    report(plans, opened, on_air)


def report(plans: dict[str, list[Defect]], opened: list, on_air: float) -> None:  # type: ignore[type-arg]
    latencies, offsets, unmatched = [], [], 0
    for wall, event in opened:
        alert = event.alert
        hit = next(
            (d for d in plans.get(alert.channel_id, [])
             if d.kind == alert.detector and abs(d.start - alert.start) <= MATCH),
            None,
        )  # fmt: skip
        if hit is None:
            unmatched += 1
            continue
        latencies.append(wall - (on_air + hit.start))
        offsets.append(hit.start % SEGMENT)
    defects = sum(len(p) for p in plans.values())
    latencies.sort()
    p95 = nearest_p95(latencies)
    print(f"{len(plans)} channels, 320x180, {SEGMENT:.0f} s segments, defects {DEFECT:.0f} s")
    print("| defects | alerted | unmatched alerts | p50 | p95 | max | bound (segment + 1.5 s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {defects} | {len(latencies)} | {unmatched} | {statistics.median(latencies):.2f} s "
        f"| {p95:.2f} s | {latencies[-1]:.2f} s | {SEGMENT + 1.5:.1f} s |"
    )
    early = [v for v, o in zip(latencies, offsets, strict=True) if o < SEGMENT / 2]
    late = [v for v, o in zip(latencies, offsets, strict=True) if o >= SEGMENT / 2]
    for what, values in (("first half", early), ("second half", late)):
        if values:
            print(f"  starting in a segment's {what}: median {statistics.median(values):.2f} s "
                  f"({len(values)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
