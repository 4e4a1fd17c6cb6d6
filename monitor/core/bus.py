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
import itertools
import logging
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from monitor.core.errors import BusError

__all__ = ["Bus", "BusError", "Consumer", "MemoryBus", "Record", "Topics"]

logger = logging.getLogger(__name__)


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


# Backstop for a topic no group drains fast enough (or at all): one process's memory, not a
# retention period. 256 MiB holds minutes of backlog for a dozen 720p channels.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass
class _Log:
    """One topic: the records still held, from offset ``base`` on."""

    records: deque[Record] = field(default_factory=deque)
    base: int = 0
    nbytes: int = 0
    groups: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def end(self) -> int:
        return self.base + len(self.records)

    def drop_before(self, offset: int) -> int:
        """Drop the records below ``offset``; how many went."""
        dropped = 0
        while self.records and self.base < offset:
            self.nbytes -= len(self.records.popleft().value)
            self.base += 1
            dropped += 1
        return dropped


class MemoryBus(Bus):
    """In-process bus: one log per topic, committed offsets per group, bounded memory.

    One partition per topic, so one consumer per group sees everything in order; that is all
    the one-process mode needs. Records are bytes, exactly what Kafka would carry, so the
    same validation path runs in both modes.

    A record is dropped once every group reading its topic has committed past it, so a
    process that runs for days holds only what is in flight. ``max_bytes`` per topic is the
    backstop for a group that stalls or a topic nobody reads: the oldest records go, with a
    warning and ``dropped`` counting them, and a consumer behind them resumes at the oldest
    record left (what Kafka does when retention overtakes a consumer).
    """

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        on_drop: Callable[[str, int], None] | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._on_drop = on_drop
        self.dropped: dict[str, int] = defaultdict(int)
        self._logs: dict[str, _Log] = defaultdict(_Log)
        self._committed: dict[tuple[str, str], int] = defaultdict(int)

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        log = self._logs[topic]
        log.records.append(Record(topic, key, value, 0, log.end))
        log.nbytes += len(value)
        if log.nbytes > self.max_bytes:
            self._overflow(topic, log)
        log.changed.set()
        log.changed = asyncio.Event()

    def _overflow(self, topic: str, log: _Log) -> None:
        """Drop the oldest records until the topic fits its cap again (keeping the newest)."""
        dropped = 0
        while log.nbytes > self.max_bytes and len(log.records) > 1:
            dropped += log.drop_before(log.base + 1)
        self.dropped[topic] += dropped
        if self._on_drop is not None:
            self._on_drop(topic, dropped)
        logger.warning(
            "memory bus: topic %s over its %d-byte cap; dropped the %d oldest record(s) "
            "before every group read them",
            topic,
            self.max_bytes,
            dropped,
        )

    def consumer(self, topics: list[str], group: str) -> Consumer:
        for topic in topics:
            self._logs[topic].groups.add(group)
        return _MemoryConsumer(self, list(topics), group)

    def _commit(self, group: str, topic: str, position: int) -> None:
        """Record ``group``'s offset, then drop what every group of the topic has read."""
        self._committed[(group, topic)] = position
        log = self._logs[topic]
        log.drop_before(min(self._committed[(g, topic)] for g in log.groups))

    def published(self, topic: str) -> int:
        """How many records were ever published to ``topic`` (its end offset)."""
        return self._logs[topic].end

    def held(self, topic: str) -> int:
        """How many records of ``topic`` are in memory now."""
        return len(self._logs[topic].records)

    def held_bytes(self, topic: str) -> int:
        return self._logs[topic].nbytes


class _MemoryConsumer(Consumer):
    def __init__(self, bus: MemoryBus, topics: list[str], group: str) -> None:
        self._bus = bus
        self._topics = topics
        self._group = group
        self._position = {t: bus._committed[(group, t)] for t in topics}

    def _pending(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        for topic in self._topics:
            log = self._bus._logs[topic]
            # Behind the oldest record held (the cap dropped some): resume there.
            start = max(self._position[topic], log.base)
            count = min(max_records - len(out), log.end - start)
            out.extend(itertools.islice(log.records, start - log.base, start - log.base + count))
            self._position[topic] = start + count
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
            self._bus._commit(self._group, topic, pos)

    async def stop(self) -> None:
        self._position = {}
        self._topics = []
