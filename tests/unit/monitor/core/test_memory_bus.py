"""The memory bus holds only what some group has not committed, and never more than its cap."""

from __future__ import annotations

import pytest

from monitor.core.bus import MemoryBus


async def fill(bus: MemoryBus, count: int, size: int = 10, topic: str = "t") -> None:
    for i in range(count):
        await bus.publish(topic, key=str(i), value=bytes(size))


async def test_records_every_group_has_committed_are_dropped() -> None:
    bus = MemoryBus()
    infer, audit = bus.consumer(["t"], group="infer"), bus.consumer(["t"], group="audit")
    await fill(bus, 5)
    assert len(await infer.getmany(timeout_ms=0)) == 5
    await infer.commit()
    assert bus.held("t") == 5  # audit has read nothing yet
    assert len(await audit.getmany(timeout_ms=0, max_records=3)) == 3
    await audit.commit()
    assert bus.held("t") == 2
    assert bus.published("t") == 5


async def test_offsets_stay_absolute_after_records_are_dropped() -> None:
    bus = MemoryBus()
    consumer = bus.consumer(["t"], group="g")
    await fill(bus, 3)
    await consumer.getmany(timeout_ms=0)
    await consumer.commit()
    await fill(bus, 2)
    later = await consumer.getmany(timeout_ms=0)
    assert [r.offset for r in later] == [3, 4]
    assert [r.key for r in later] == ["0", "1"]


async def test_a_new_member_of_a_group_resumes_after_its_commit() -> None:
    bus = MemoryBus()
    first = bus.consumer(["t"], group="g")
    await fill(bus, 4)
    await first.getmany(timeout_ms=0, max_records=2)
    await first.commit()
    await first.stop()
    second = bus.consumer(["t"], group="g")
    assert [r.offset for r in await second.getmany(timeout_ms=0)] == [2, 3]


async def test_the_cap_drops_the_oldest_records_counts_them_and_a_lagging_consumer_skips_on() -> (
    None
):
    drops: list[tuple[str, int]] = []
    bus = MemoryBus(max_bytes=100, on_drop=lambda topic, n: drops.append((topic, n)))
    consumer = bus.consumer(["t"], group="slow")
    await fill(bus, 25, size=10)
    assert bus.held_bytes("t") <= 100
    assert bus.held("t") == 10
    assert sum(n for _, n in drops) == bus.dropped["t"] == 15
    assert [r.offset for r in await consumer.getmany(timeout_ms=0)] == list(range(15, 25))


async def test_a_topic_nobody_reads_is_held_up_to_the_cap() -> None:
    bus = MemoryBus(max_bytes=50)
    await fill(bus, 20, size=10)
    assert bus.held("t") == 5
    assert bus.published("t") == 20


async def test_one_record_larger_than_the_cap_is_still_delivered() -> None:
    bus = MemoryBus(max_bytes=10)
    consumer = bus.consumer(["t"], group="g")
    await fill(bus, 2, size=50)
    assert [r.offset for r in await consumer.getmany(timeout_ms=0)] == [1]


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        MemoryBus(max_bytes=0)
