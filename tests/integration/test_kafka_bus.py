"""KafkaBus against a real Kafka-protocol broker (Tansu unless VQM_TEST_KAFKA is set)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable

import pytest

from monitor.core.bus import BusError, Record, Topics
from monitor.core.bus_kafka import DEFAULT_MAX_MESSAGE_BYTES, KafkaBus, KafkaConsumer
from monitor.core.topics import create_topics
from tests.conftest import free_port
from tests.integration.conftest import Service, wait_for

pytestmark = pytest.mark.integration

PARTITIONS = 4
# Short group timings keep rebalances quick on Tansu; a real Kafka refuses sessions under 6 s.
SESSION_MS = 6_000 if os.environ.get("VQM_TEST_KAFKA") else 2_000


@pytest.fixture
async def made_topics(kafka_bootstrap: str, topics: Topics) -> Topics:
    await create_topics(
        kafka_bootstrap,
        topics,
        partitions=PARTITIONS,
        replication=1,
        retention_ms=3_600_000,
        max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
    )
    return topics


@pytest.fixture
async def bus(kafka_bootstrap: str) -> AsyncIterator[KafkaBus]:
    bus = KafkaBus(
        kafka_bootstrap, client_id="test", session_timeout_ms=SESSION_MS, heartbeat_interval_ms=300
    )
    await asyncio.wait_for(bus.start(), 30)
    try:
        yield bus
    finally:
        await bus.stop()


async def take(consumer: KafkaConsumer, count: int, timeout: float = 30) -> list[Record]:
    """Records from ``consumer`` until ``count`` arrived or ``timeout`` passed."""
    got: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got.extend(await consumer.getmany(timeout_ms=500))
    return got


async def test_published_records_come_back_with_their_keys_in_order_per_key(
    bus: KafkaBus, made_topics: Topics, namespace: str
) -> None:
    topic = made_topics.detections
    sent = [(f"ch{i % 3}", f"{i}".encode()) for i in range(12)]
    for key, value in sent:
        await bus.publish(topic, key, value)
    consumer = bus.consumer([topic], group=f"{namespace}-g")
    got = await take(consumer, len(sent))
    assert sorted((r.key, r.value) for r in got) == sorted(sent)
    for key in {"ch0", "ch1", "ch2"}:
        mine = [r for r in got if r.key == key]
        assert len({r.partition for r in mine}) == 1, "one key stays on one partition"
        assert [r.value for r in mine] == [v for k, v in sent if k == key]


async def test_an_eight_megabyte_segment_passes_end_to_end(
    bus: KafkaBus, made_topics: Topics, namespace: str
) -> None:
    payload = bytes(range(256)) * (8 * 1024 * 1024 // 256)
    await bus.publish(made_topics.segments, "news", payload)
    consumer = bus.consumer([made_topics.segments], group=f"{namespace}-g")
    [record] = await take(consumer, 1)
    assert record.key == "news"
    assert record.value == payload


async def test_a_message_over_the_size_limit_is_refused_with_a_clear_non_retriable_error(
    kafka_bootstrap: str, made_topics: Topics
) -> None:
    bus = KafkaBus(kafka_bootstrap, client_id="small", max_message_bytes=1024 * 1024)
    await bus.start()
    try:
        with pytest.raises(BusError, match=r"2097152 bytes .* exceeds max_message_bytes") as err:
            await bus.publish(made_topics.segments, "news", b"x" * 2 * 1024 * 1024)
        assert err.value.retriable is False
    finally:
        await bus.stop()


async def test_when_a_member_leaves_the_other_gets_its_partitions_and_its_uncommitted_records(
    bus: KafkaBus, made_topics: Topics, namespace: str
) -> None:
    topic = made_topics.detections
    group = f"{namespace}-g"
    first, second = bus.consumer([topic], group), bus.consumer([topic], group)
    # Both join before anything is published, so each ends up with half the partitions.
    await _both_assigned(first, second)
    sent = {(f"ch{i}", b"v") for i in range(16)}
    for key, value in sent:
        await bus.publish(topic, key, value)

    got_first, got_second = await _split(first, second, len(sent))
    assert got_first and got_second, "both members had partitions"
    await first.commit()  # the second member never commits: its records are owed again
    await second.stop()

    redelivered = await take(first, len(got_second), timeout=40)
    assert {(r.key, r.value) for r in redelivered} == {(r.key, r.value) for r in got_second}
    await first.commit()
    assert await first.getmany(timeout_ms=500) == []


async def _both_assigned(*consumers: KafkaConsumer) -> None:
    async def assigned() -> bool:
        for consumer in consumers:
            await consumer.getmany(timeout_ms=100)
        return all(c._consumer is not None and c._consumer.assignment() for c in consumers)

    assert await wait_for(assigned, timeout=30)


async def _split(
    first: KafkaConsumer, second: KafkaConsumer, total: int
) -> tuple[list[Record], list[Record]]:
    got_first: list[Record] = []
    got_second: list[Record] = []
    deadline = time.monotonic() + 30
    while len(got_first) + len(got_second) < total and time.monotonic() < deadline:
        a, b = await asyncio.gather(first.getmany(200), second.getmany(200))
        got_first.extend(a)
        got_second.extend(b)
    assert len(got_first) + len(got_second) == total
    return got_first, got_second


async def test_committed_offsets_hold_for_a_new_member_of_the_same_group(
    bus: KafkaBus, made_topics: Topics, namespace: str
) -> None:
    topic = made_topics.stream_events
    group = f"{namespace}-g"
    for i in range(5):
        await bus.publish(topic, "news", f"old{i}".encode())
    consumer = bus.consumer([topic], group)
    assert len(await take(consumer, 5)) == 5
    await consumer.commit()
    await consumer.stop()

    for i in range(3):
        await bus.publish(topic, "news", f"new{i}".encode())
    successor = bus.consumer([topic], group)
    got = await take(successor, 3)
    assert [r.value for r in got] == [b"new0", b"new1", b"new2"]
    await successor.stop()


async def test_start_waits_for_a_broker_that_comes_up_later_and_ready_then_turns_true(
    broker_later: Callable[[int], Service],
) -> None:
    port = free_port()
    bus = KafkaBus(f"127.0.0.1:{port}", client_id="late", backoff=(0.1, 0.5))
    starting = asyncio.create_task(bus.start())
    try:
        await asyncio.sleep(3)
        assert not starting.done()
        assert await bus.ready() is False
        broker_later(port)
        await asyncio.wait_for(starting, 15)
        assert await bus.ready() is True
        await bus.publish("late.topic", "k", b"v")
    finally:
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await bus.stop()


async def test_stop_ends_a_start_still_waiting_for_the_broker() -> None:
    bus = KafkaBus(f"127.0.0.1:{free_port()}", client_id="never", backoff=(0.1, 0.2))
    starting = asyncio.create_task(bus.start())
    await asyncio.sleep(0.5)
    began = time.monotonic()
    await bus.stop()
    await asyncio.wait_for(starting, 1.5)
    assert time.monotonic() - began < 1.5
    assert await bus.ready() is False
