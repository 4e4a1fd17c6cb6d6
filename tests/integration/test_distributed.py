"""The distributed mode as operators run it: ``vqm ingest``, ``vqm infer`` and ``vqm alert`` as
separate OS processes on a real Kafka-protocol broker and a real Redis, with a synthetic live
origin in the test process; and what happens when one of them dies or the broker is late."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerting.config import AlertingConfig
from alerting.notifiers import NotificationConfig
from alerting.outbox import OutboxConfig
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.synthetic.channel import SyntheticChannel
from monitor.app.synthetic.defects import Defect, DefectSchedule
from monitor.app.synthetic.hls_server import LiveHlsServer
from monitor.core.bus import Topics
from monitor.core.bus_kafka import KafkaBus
from monitor.core.messages import (
    DefectSpan,
    DetectionMessage,
    SegmentMessage,
    decode_message,
    encode_message,
)
from monitor.core.state_redis import RedisStateStore
from stream_ingest.config import IngestConfig
from stream_ingest.leases import LEASE_NS
from stream_ingest.positions import POSITION_NS, Position
from tests.conftest import free_port
from tests.integration.conftest import wait_for
from tests.integration.processes import Cluster, make_topics, read_topic
from tests.receiver import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEGMENT = 2.0
BLACK = (10.0, 14.0)
FREEZE = (20.0, 25.0)
RUN_UNTIL = 31.0  # channel seconds: both defects over and recovered
SECRET = "distributed-test-shared-secret"
LEASE_TTL = 2.0


def defect_channel() -> SyntheticChannel:
    """The one-process end-to-end scenario: black 10-14 s, freeze 20-25 s."""
    schedule = DefectSchedule(
        defects=[
            Defect(kind="black", start=BLACK[0], duration=BLACK[1] - BLACK[0]),
            Defect(kind="freeze", start=FREEZE[0], duration=FREEZE[1] - FREEZE[0]),
        ]
    )
    return SyntheticChannel(seed=424242, schedule=schedule)


def small_channel(seed: int) -> SyntheticChannel:
    """Cheap to encode: for tests about delivery and ownership, not about pictures."""
    return SyntheticChannel(seed=seed, segment_duration=1.0, width=160, height=96)


def webhook(receiver: Receiver) -> NotificationConfig:
    return NotificationConfig.model_validate(
        {
            "notifiers": {
                "hook": {"type": "webhook", "url": f"{receiver.url}/page", "secret": SECRET}
            },
            "routes": [{"severities": ["critical", "major"], "notifiers": ["hook"]}],
        }
    )


# Resolve at recovery (flap holds have their own tests) and retry pages quickly.
FAST_OUTBOX = AlertingConfig(
    flap_window=0, outbox=OutboxConfig(backoff_base=0.2, backoff_max=1.0, poll_interval=0.1)
)


@pytest.fixture
def cluster_factory(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, namespace: str
) -> Iterator[object]:
    """Makes the test's :class:`Cluster`; afterwards kills what is left and prints the logs
    (pytest shows them when the test failed)."""
    made: list[Cluster] = []

    def make(config: VqmConfig, kafka: str = kafka_bootstrap) -> Cluster:
        cluster = Cluster(tmp_path, kafka, redis_url, namespace, config, lease_ttl=LEASE_TTL)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()
        print(cluster.logs())


async def until(condition: object, timeout: float, what: str, cluster: Cluster) -> None:
    if not await wait_for(condition, timeout, interval=0.25):  # type: ignore[arg-type]
        pytest.fail(f"{what} not within {timeout} s\n{cluster.logs()}")


async def all_alerts(alert_process) -> list[dict]:  # type: ignore[no-untyped-def]
    response = await alert_process.get("/api/alerts?state=all")
    return [] if response is None else response.json()["alerts"]


def resolved(alerts: list[dict], detectors: set[str]) -> bool:
    done = {a["detector"] for a in alerts if a["state"] == "resolved"}
    return detectors <= done


def check_scenario_alerts(alerts: list[dict]) -> None:
    by_detector = defaultdict(list)
    for alert in alerts:
        by_detector[alert["detector"]].append(alert)
    assert set(by_detector) == {"black", "freeze"}, alerts
    for name, (start, end) in (("black", BLACK), ("freeze", FREEZE)):
        [alert] = by_detector[name]
        assert alert["start"] == pytest.approx(start, abs=0.25)
        assert alert["end"] == pytest.approx(end, abs=0.25)
        assert alert["state"] == "resolved"


async def test_three_processes_raise_the_one_process_alerts_black_and_freeze_and_nothing_else(
    cluster_factory, kafka_bootstrap: str, topics: Topics
) -> None:
    await make_topics(kafka_bootstrap, topics)
    origin = LiveHlsServer({"e2e": defect_channel()}, port=free_port(), window=15)
    config = VqmConfig(
        channels=[ChannelConfig(id="e2e", url=origin.playlist_url("e2e"))],
        ingest=IngestConfig(start="first"),
        topics=topics,
        alerting=AlertingConfig(flap_window=0),  # resolve at recovery, as the scenario expects
    )
    cluster = cluster_factory(config)
    alert = cluster.start("alert")
    cluster.start("infer")
    await origin.start()  # channel time 0 goes on air; ingest starts at the first segment
    try:
        cluster.start("ingest")
        await until(lambda: origin.uptime() > RUN_UNTIL, 60, "channel time", cluster)
        await until(
            lambda: _resolved_async(alert, {"black", "freeze"}), 60, "both alerts resolved", cluster
        )
        await asyncio.sleep(1.0)  # nothing more comes
        check_scenario_alerts(await all_alerts(alert))
    finally:
        await origin.stop()


async def _resolved_async(alert, detectors: set[str]) -> bool:  # type: ignore[no-untyped-def]
    return resolved(await all_alerts(alert), detectors)


def expected_detectors(config: VqmConfig) -> set[str]:
    return set(config.detectors_for(config.channels[0]))


async def test_an_inference_worker_killed_mid_stream_loses_no_segment_and_pages_nothing_twice(
    cluster_factory, kafka_bootstrap: str, topics: Topics, receiver: Receiver
) -> None:
    await make_topics(kafka_bootstrap, topics)
    black_at = (6.0, 10.0)
    channel = SyntheticChannel(
        seed=424242, schedule=[Defect(kind="black", start=black_at[0], duration=4.0)]
    )
    origin = LiveHlsServer({"e2e": channel}, port=free_port(), window=15)
    config = VqmConfig(
        channels=[ChannelConfig(id="e2e", url=origin.playlist_url("e2e"))],
        ingest=IngestConfig(start="first"),
        topics=topics,
        notifications=webhook(receiver),
        alerting=FAST_OUTBOX,
    )
    cluster = cluster_factory(config)
    alert = cluster.start("alert")
    doomed, survivor = cluster.start("infer"), cluster.start("infer")
    await origin.start()
    try:
        ingest = cluster.start("ingest")
        await until(lambda: origin.uptime() > black_at[0] + 2, 60, "mid-stream", cluster)
        doomed.kill()  # SIGKILL: no commit, no leaving the group
        await until(lambda: origin.uptime() > black_at[1] + 4, 60, "channel time", cluster)
        await until(lambda: _resolved_async(alert, {"black"}), 60, "black resolved", cluster)
        ingest.terminate()  # before the origin goes, so its going is not an alert
        assert await ingest.wait(10) == 0
        await asyncio.sleep(1.5)  # late duplicates would arrive by now
    finally:
        await origin.stop()
    assert survivor.popen.poll() is None

    segments = await read_topic(kafka_bootstrap, topics.segments)
    detections = await read_topic(kafka_bootstrap, topics.detections)
    published = {decode_message(r.value, SegmentMessage).seq for r in segments}
    found: dict[int, set[str]] = defaultdict(set)
    for record in detections:
        detection = decode_message(record.value, DetectionMessage)
        found[detection.seq].add(detection.detector)
    missing = {seq: expected_detectors(config) - found[seq] for seq in published}
    assert len(published) >= (black_at[1] + 4) / SEGMENT - 1
    assert {seq: m for seq, m in missing.items() if m} == {}

    pages = Counter((r.json()["alert"]["id"], r.json()["transition"]) for r in receiver.accepted)
    assert sorted(t for _, t in pages) == ["opened", "resolved"], pages
    assert max(pages.values()) == 1, pages
    [only] = await all_alerts(alert)
    assert (only["detector"], only["state"]) == ("black", "resolved")
    assert only["start"] == pytest.approx(black_at[0], abs=0.25)


def black(seq: int) -> DetectionMessage:
    start = seq * SEGMENT
    return DetectionMessage(
        channel_id="news",
        seq=seq,
        detector="black",
        media_start=start,
        media_end=start + SEGMENT,
        spans=[DefectSpan(start=start, end=start + SEGMENT, confidence=0.99)],
        fetched_at=time.time(),
    )


async def test_a_restarted_alerting_process_keeps_open_alerts_open_and_does_not_page_them_again(
    cluster_factory, kafka_bootstrap: str, topics: Topics, receiver: Receiver
) -> None:
    await make_topics(kafka_bootstrap, topics)
    config = VqmConfig(
        channels=[
            ChannelConfig(id="news", url="http://127.0.0.1:9/news.m3u8", severity="critical")
        ],
        topics=topics,
        notifications=webhook(receiver),
        alerting=FAST_OUTBOX,
    )
    cluster = cluster_factory(config)
    bus = KafkaBus(kafka_bootstrap, client_id="test-detections")
    await bus.start()
    try:
        first = cluster.start("alert")
        await first.until_ready()
        for seq in range(3):
            await bus.publish(topics.detections, "news", encode_message(black(seq)))
        await until(lambda: len(receiver.accepted) == 1, 30, "the opening page", cluster)
        [before] = (await first.get("/api/alerts")).json()["alerts"]  # type: ignore[union-attr]

        first.terminate()
        assert await first.wait(10) == 0
        second = cluster.start("alert")
        await second.until_ready()
        for seq in range(3, 6):  # the defect goes on
            await bus.publish(topics.detections, "news", encode_message(black(seq)))
        await until(
            lambda: _alert_end(second, before["id"], 6 * SEGMENT), 30, "the update", cluster
        )
        await asyncio.sleep(1.5)  # a second page would come by now
    finally:
        await bus.stop()
    [after] = (await second.get("/api/alerts")).json()["alerts"]  # type: ignore[union-attr]
    assert after["id"] == before["id"]
    assert after["state"] == "open"
    assert [r.json()["transition"] for r in receiver.accepted] == ["opened"]


async def _alert_end(process, alert_id: str, end: float) -> bool:  # type: ignore[no-untyped-def]
    response = await process.get("/api/alerts")
    if response is None:
        return False
    return any(a["id"] == alert_id and a["end"] >= end - 0.01 for a in response.json()["alerts"])


async def test_processes_started_before_the_broker_report_not_ready_then_carry_on_losing_nothing(
    cluster_factory, broker_later, topics: Topics
) -> None:
    port = free_port()
    kafka = f"127.0.0.1:{port}"
    origin = LiveHlsServer({"late": small_channel(5)}, port=free_port())
    await origin.start()
    config = VqmConfig(
        channels=[ChannelConfig(id="late", url=origin.playlist_url("late"))], topics=topics
    )
    cluster = cluster_factory(config, kafka=kafka)
    try:
        ingest, alert = cluster.start("ingest"), cluster.start("alert")
        started = time.monotonic()
        for process in (ingest, alert):
            await until(
                lambda p=process: _status_is(p, 503), 30, f"{process.name} answering 503", cluster
            )
        await asyncio.sleep(max(0.0, 10.0 - (time.monotonic() - started)))
        for process in (ingest, alert):
            assert await process.readyz() == 503
        broker_later(port)
        await make_topics(kafka, topics)
        came_up = time.time()
        for process in (ingest, alert):
            await process.until_ready(timeout=30)
        await asyncio.sleep(4.0)
        # The live edge when the stop is asked for: the origin goes on listing segments while
        # the worker drains, and those it was never going to fetch prove nothing.
        last_listed = origin.listed("late").stop - 1
        ingest.terminate()
        assert await ingest.wait(10) == 0
    finally:
        await origin.stop()
    seqs = sorted(
        decode_message(r.value, SegmentMessage).seq
        for r in await read_topic(kafka, topics.segments)
    )
    assert seqs, "nothing was published"
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"gaps or repeats: {seqs}"
    assert seqs[-1] >= last_listed - 1
    assert len(seqs) >= 3
    print(f"published {len(seqs)} segments from {came_up:.1f}")


async def _status_is(process, code: int) -> bool:  # type: ignore[no-untyped-def]
    return await process.readyz() == code


async def test_the_channels_of_a_killed_ingest_worker_are_followed_again_within_two_lease_periods(
    cluster_factory, kafka_bootstrap: str, redis_url: str, namespace: str, topics: Topics
) -> None:
    await make_topics(kafka_bootstrap, topics)
    ids = [f"ch{i}" for i in range(6)]
    origin = LiveHlsServer({cid: small_channel(i) for i, cid in enumerate(ids)}, port=free_port())
    await origin.start()
    config = VqmConfig(
        channels=[ChannelConfig(id=cid, url=origin.playlist_url(cid)) for cid in ids],
        topics=topics,
    )
    cluster = cluster_factory(config)
    store = RedisStateStore(redis_url, deployment=namespace)
    await store.start()
    try:
        doomed, survivor = cluster.start("ingest"), cluster.start("ingest")

        async def owners() -> dict[str, str]:
            return await store.items(LEASE_NS)

        async def split_evenly() -> bool:
            held = Counter((await owners()).values())
            return len(await owners()) == 6 and sorted(held.values()) == [3, 3]

        async def published_since(channels: set[str], since: float) -> bool:
            """Each of ``channels`` has a segment published after ``since`` (wall clock), as
            the followers record it in Redis after every publish."""
            positions = await store.items(POSITION_NS)
            return all(
                cid in positions
                and Position.model_validate_json(positions[cid]).published_at > since
                for cid in channels
            )

        await until(split_evenly, 60, "six channels split 3/3", cluster)
        theirs = {c for c, w in (await owners()).items() if w == doomed.worker_id}
        split_at = time.time()
        await until(lambda: published_since(set(ids), split_at), 30, "both publishing", cluster)
        doomed.kill()
        killed_at = time.time()

        async def all_taken() -> bool:
            return (
                set((await owners()).values()) == {survivor.worker_id} and len(await owners()) == 6
            )

        await until(all_taken, 4 * LEASE_TTL, "the survivor holding every lease", cluster)
        taken_after = time.time() - killed_at
        await until(
            lambda: published_since(set(ids), killed_at + taken_after),
            30,
            "the survivor publishing every channel, the dead worker's too",
            cluster,
        )
    finally:
        await store.stop()
        await origin.stop()
    print(f"channels taken over {taken_after:.2f} s after the kill (ttl {LEASE_TTL} s)")
    assert taken_after <= 2 * LEASE_TTL
    segments = [
        decode_message(r.value, SegmentMessage)
        for r in await read_topic(kafka_bootstrap, topics.segments)
    ]
    resumed = {s.channel_id for s in segments if s.fetched_at > killed_at + taken_after}
    assert theirs <= resumed, f"not followed again: {theirs - resumed}"
    assert set(ids) <= resumed
    seqs = defaultdict(set)
    for segment in segments:
        seqs[segment.channel_id].add(segment.seq)
    gaps = {cid: set(range(min(s), max(s) + 1)) - s for cid, s in seqs.items()}
    assert {cid: g for cid, g in gaps.items() if g} == {}, "the take-over resumed without a gap"
