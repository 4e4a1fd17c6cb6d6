"""The message bus: one small interface, an in-memory implementation here, Kafka beside it.

Stages talk only through :class:`Bus`. ``publish`` returns once the message is acknowledged;
a :class:`Consumer` hands out records in batches with a timed wait and commits by hand, so a
stage commits only after what it produced was acknowledged (at-least-once delivery).

    bus = MemoryBus()
    await bus.start()
    consumer = bus.consumer([Topics().segments], group="infer")
    await bus.publish(Topics().segments, key="news", value=b"...")
    for record in await consumer.getmany(timeout_ms=1000):
        ...
    await consumer.commit()
"""

from __future__ import annotations

import abc
import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from monitor.core.errors import BusError

__all__ = ["Bus", "BusError", "Consumer", "MemoryBus", "Record", "Topics"]


class Topics(BaseModel):
    """Topic names; configurable, these are the defaults of the design."""

    model_config = ConfigDict(extra="forbid")

    segments: str = Field(default="vqm.segments", description="Segments with their bytes.")
    detections: str = Field(default="vqm.detections", description="Detector results.")
    stream_events: str = Field(default="vqm.stream-events", description="Ingest findings.")


@dataclass(frozen=True)
class Record:
    """One message as the bus carries it."""

    topic: str
    key: str
    value: bytes
    partition: int = 0
    offset: int = 0


class Consumer(abc.ABC):
    """A member of a consumer group on some topics."""

    @abc.abstractmethod
    async def getmany(self, timeout_ms: int = 1000, max_records: int = 100) -> list[Record]:
        """Records not yet handed out, waiting at most ``timeout_ms`` for the first."""

    @abc.abstractmethod
    async def commit(self) -> None:
        """Commit everything handed out so far."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Leave the group (without committing)."""


class Bus(abc.ABC):
    """Publish keyed messages and create consumers; Kafka and memory implement it."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect; the memory bus needs nothing."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Disconnect."""

    @abc.abstractmethod
    async def publish(self, topic: str, key: str, value: bytes) -> None:
        """Send one message and return when it is acknowledged."""

    @abc.abstractmethod
    def consumer(self, topics: list[str], group: str) -> Consumer:
        """A consumer in ``group`` reading ``topics`` from the last committed offset."""

    async def ready(self) -> bool:
        """True when the bus can publish now (for /readyz)."""
        return True


@dataclass
class _Log:
    records: list[Record] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryBus(Bus):
    """In-process bus: one append-only log per topic, committed offsets per group.

    One partition per topic, so one consumer per group sees everything in order; that is all
    the one-process mode needs. Records are bytes, exactly what Kafka would carry, so the
    same validation path runs in both modes.
    """

    def __init__(self) -> None:
        self._logs: dict[str, _Log] = defaultdict(_Log)
        self._committed: dict[tuple[str, str], int] = defaultdict(int)

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        log = self._logs[topic]
        log.records.append(Record(topic, key, value, 0, len(log.records)))
        log.changed.set()
        log.changed = asyncio.Event()

    def consumer(self, topics: list[str], group: str) -> Consumer:
        return _MemoryConsumer(self, list(topics), group)

    def size(self, topic: str) -> int:
        return len(self._logs[topic].records)


class _MemoryConsumer(Consumer):
    def __init__(self, bus: MemoryBus, topics: list[str], group: str) -> None:
        self._bus = bus
        self._topics = topics
        self._group = group
        self._position = {t: bus._committed[(group, t)] for t in topics}

    def _pending(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        for topic in self._topics:
            records = self._bus._logs[topic].records
            start = self._position[topic]
            batch = records[start : start + max_records - len(out)]
            self._position[topic] = start + len(batch)
            out.extend(batch)
        return out

    async def getmany(self, timeout_ms: int = 1000, max_records: int = 100) -> list[Record]:
        batch = self._pending(max_records)
        if batch:
            return batch
        waits = [asyncio.ensure_future(self._bus._logs[t].changed.wait()) for t in self._topics]
        try:
            await asyncio.wait(waits, timeout=timeout_ms / 1000, return_when="FIRST_COMPLETED")
        finally:
            for w in waits:
                w.cancel()
        return self._pending(max_records)

    async def commit(self) -> None:
        for topic, pos in self._position.items():
            self._bus._committed[(self._group, topic)] = pos

    async def stop(self) -> None:
        self._position = {}
        self._topics = []
