"""The Kafka implementation of :class:`~monitor.core.bus.Bus`, for the distributed mode.

Producers wait for ``acks="all"``; consumers commit by hand (at-least-once). Message size is
one number, ``max_message_bytes``, from which the producer's ``max_request_size``, the
consumer's fetch limits and (through :func:`monitor.core.topics.create_topics`) the topics'
``max.message.bytes`` are all derived, so a segment the producer accepts is one every broker
and consumer accepts too.

    bus = KafkaBus("kafka:9092", client_id="ingest-0")
    await bus.start()                      # waits (with back-off) for the broker
    try:
        await bus.publish("vqm.segments", key="news", value=data)
        consumer = bus.consumer(["vqm.segments"], group="infer")
        for record in await consumer.getmany(timeout_ms=1000):
            ...
        await consumer.commit()
    finally:
        await bus.stop()

The idempotent producer is a setting, off by default: some Kafka-protocol brokers (Tansu)
do not implement ``InitProducerId``. Nothing relies on it: a retried publish may duplicate a
message, and downstream work is idempotent on (channel_id, seq, detector).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
    UnknownError,
)
from aiokafka.structs import ConsumerRecord

from monitor.core.bus import Bus, BusError, Consumer, Record
from monitor.core.retry import RetryPolicy, RetryStopped

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
PUBLISH_RETRIES = 8  # with the default back-off (0.25 s doubling to 5 s): about 25 s
#: Segments are refused above 16 MiB; the rest covers the JSON header, key and batch framing.
DEFAULT_MAX_MESSAGE_BYTES = 16 * MIB + MIB
_T = TypeVar("_T")


class KafkaBusError(BusError):
    """A Kafka failure, with ``retriable`` taken from the underlying error."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


async def retry_until_stopped(
    attempt: Callable[[], Awaitable[_T]], stop: asyncio.Event, what: str, policy: RetryPolicy
) -> _T | None:
    """Call ``attempt`` until it succeeds (its result) or ``stop`` is set (None).

    Retriable Kafka errors and OS errors are logged and retried after the policy's back-off,
    which ``stop`` interrupts at once; anything else propagates, since waiting will not fix it.
    """
    try:
        return await policy.run(
            attempt,
            retriable=_worth_retrying,
            on_retry=functools.partial(_log_retry, what),
            stop=stop,
        )
    except RetryStopped:
        return None


def _worth_retrying(exc: Exception) -> bool:
    if isinstance(exc, KafkaError):
        return _retriable(exc)
    return isinstance(exc, OSError)


def _log_retry(what: str, exc: BaseException, attempt: int, delay: float) -> None:
    logger.warning("%s failed (%s); retrying in %.2f s", what, exc, delay)


def _retriable(exc: KafkaError) -> bool:
    """Kafka's own flag; connection failures carry it, but say so explicitly. A broker
    answers UNKNOWN_SERVER_ERROR while it comes back from a restart: worth a bounded retry."""
    return bool(exc.retriable) or isinstance(exc, KafkaConnectionError | UnknownError)


class KafkaBus(Bus):
    """A :class:`Bus` on a Kafka-protocol cluster.

    ``start`` returns once the producer is connected, retrying with back-off until then or
    until ``stop`` is called (the broker may come up after the process); ``ready`` is False
    meanwhile. Consumers start the same way, lazily, on their first ``getmany``. Both follow
    ``backoff``, a :class:`~monitor.core.retry.RetryPolicy` (or its ``(initial, cap)``).

    Commits are not retried here: a commit refused in a rebalance must not be retried (the
    partition, and its uncommitted records, belong to another member now). Publishes are,
    a few times: aiokafka retries within its request timeout, and a broker that restarts
    takes longer than that (measured by ``benchmarks/soak.py``).
    """

    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        enable_idempotence: bool = False,
        request_timeout_ms: int = 30_000,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 1_000,
        backoff: RetryPolicy | tuple[float, float] = (0.25, 5.0),
    ) -> None:
        if max_message_bytes <= 0:
            raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.max_message_bytes = max_message_bytes
        self.enable_idempotence = enable_idempotence
        self.request_timeout_ms = request_timeout_ms
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # Connecting retries until stopped, whatever retry count the policy was given.
        self.retry = RetryPolicy.of(backoff).model_copy(update={"max_retries": None})
        self._publish_retry = self.retry.model_copy(update={"max_retries": PUBLISH_RETRIES})
        self._producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self._consumers: list[KafkaConsumer] = []

    async def start(self) -> None:
        """Connect the producer, waiting for the broker; returns early if ``stop`` is called."""
        self._stopping.clear()
        self._producer = await retry_until_stopped(
            self._start_producer,
            self._stopping,
            f"connecting to Kafka at {self.bootstrap}",
            self.retry,
        )
        if self._producer is not None:
            logger.info("Kafka producer %s connected to %s", self.client_id, self.bootstrap)

    async def _start_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=self.enable_idempotence,
            max_request_size=self.max_message_bytes,
            request_timeout_ms=self.request_timeout_ms,
            linger_ms=0,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def stop(self) -> None:
        """Stop every consumer made here, then the producer (reverse order of start-up)."""
        self._stopping.set()
        for consumer in list(self._consumers):
            await consumer.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def ready(self) -> bool:
        """True when the producer is started and can reach a broker within a second."""
        producer = self._producer
        if producer is None:
            return False
        client = producer.client
        node = client.get_random_node()
        if node is None:
            return False
        try:
            return bool(await asyncio.wait_for(client.ready(node), 1.0))
        except (TimeoutError, KafkaError, OSError):
            return False

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        """Send and wait for every in-sync replica's acknowledgement; a retriable failure
        (the broker restarting: aiokafka's own retries spent) is tried again after the
        policy's back-off, ``PUBLISH_RETRIES`` times, so a broker that is back within about
        half a minute loses no segment. The last error propagates."""
        try:
            await self._publish_retry.run(
                lambda: self._publish_once(topic, key, value),
                retriable=lambda exc: isinstance(exc, KafkaBusError) and exc.retriable,
                on_retry=functools.partial(_log_retry, f"publish to {topic!r}"),
                stop=self._stopping,
            )
        except RetryStopped as exc:
            raise KafkaBusError(
                f"publish to {topic!r}: the bus is stopping", retriable=True
            ) from exc

    async def _publish_once(self, topic: str, key: str, value: bytes) -> None:
        if self._producer is None:
            raise KafkaBusError("Kafka bus is not started", retriable=True)
        try:
            await self._producer.send_and_wait(topic, value, key=key.encode())
        except MessageSizeTooLargeError as exc:
            raise KafkaBusError(
                f"message of {len(value)} bytes for {topic!r} (key {key!r}) exceeds "
                f"max_message_bytes={self.max_message_bytes}",
                retriable=False,
            ) from exc
        except KafkaError as exc:
            raise KafkaBusError(
                f"publish to {topic!r} failed: {type(exc).__name__}: {exc}",
                retriable=_retriable(exc),
            ) from exc

    def consumer(self, topics: list[str], group: str) -> KafkaConsumer:
        consumer = KafkaConsumer(self, list(topics), group)
        self._consumers.append(consumer)
        return consumer

    def _forget(self, consumer: KafkaConsumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)

    def _make_consumer(self, group: str) -> AIOKafkaConsumer:
        """Fetch limits follow ``max_message_bytes`` so the largest message always fits."""
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=self.max_message_bytes,
            fetch_max_bytes=max(self.max_message_bytes, 50 * MIB),
            request_timeout_ms=max(self.request_timeout_ms, self.session_timeout_ms + 5_000),
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
        )


class _Handoff(ConsumerRebalanceListener):  # type: ignore[misc]
    """Forgets what was handed out from partitions this member loses.

    Nothing is committed on revocation: the caller commits only after its work is done, so
    records handed out but not committed go, from the committed offset, to whichever member
    gets the partition next (at-least-once).
    """

    def __init__(self, consumer: KafkaConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self._consumer._handed_out.pop(tp, None)
        if revoked:
            logger.info("group %s: partitions revoked: %s", self._consumer.group, _fmt(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        logger.info("group %s: partitions assigned: %s", self._consumer.group, _fmt(assigned))


def _fmt(tps: set[TopicPartition]) -> str:
    return ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in tps)) or "none"


class KafkaConsumer(Consumer):
    """One member of a consumer group; starts in the background on the first ``getmany``.

    ``getmany`` never waits longer than its ``timeout_ms``: while the member is still
    connecting or joining the group it returns an empty list.
    """

    def __init__(self, bus: KafkaBus, topics: list[str], group: str) -> None:
        self.bus = bus
        self.topics = topics
        self.group = group
        self._consumer: AIOKafkaConsumer | None = None
        self._starting: asyncio.Task[AIOKafkaConsumer | None] | None = None
        self._stopping = asyncio.Event()
        self._handed_out: dict[TopicPartition, int] = {}

    async def _connect(self) -> AIOKafkaConsumer:
        consumer = self.bus._make_consumer(self.group)
        consumer.subscribe(self.topics, listener=_Handoff(self))
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def _started(self, timeout_ms: int) -> AIOKafkaConsumer | None:
        """The started consumer, or None if it is not up within ``timeout_ms``."""
        if self._consumer is not None:
            return self._consumer
        if self._starting is None:
            self._starting = asyncio.create_task(
                retry_until_stopped(
                    self._connect,
                    self._stopping,
                    f"consumer group {self.group} joining",
                    self.bus.retry,
                )
            )
        done, _ = await asyncio.wait({self._starting}, timeout=timeout_ms / 1000)
        if not done:
            return None
        task, self._starting = self._starting, None
        try:
            self._consumer = task.result()
        except KafkaError as exc:
            raise KafkaBusError(f"consumer group {self.group}: {exc}", retriable=False) from exc
        return self._consumer

    async def getmany(self, timeout_ms: int = 1000, max_records: int = 100) -> list[Record]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        consumer = await self._started(timeout_ms)
        if consumer is None:
            return []
        left_ms = max(0, int((deadline - loop.time()) * 1000))
        try:
            batches = await consumer.getmany(timeout_ms=left_ms, max_records=max_records)
        except KafkaError as exc:
            raise KafkaBusError(
                f"consume from {self.topics} failed: {exc}", retriable=bool(exc.retriable)
            ) from exc
        return self._flatten(batches)

    def _flatten(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> list[Record]:
        out: list[Record] = []
        for tp, messages in batches.items():
            for m in messages:
                key = m.key.decode(errors="replace") if m.key is not None else ""
                out.append(Record(tp.topic, key, m.value or b"", tp.partition, m.offset))
            if messages:
                self._handed_out[tp] = messages[-1].offset + 1
        return out

    async def commit(self) -> None:
        """Commit, per partition still assigned, the offset after the last record handed out."""
        consumer = self._consumer
        if consumer is None or not self._handed_out:
            return
        assigned = consumer.assignment()
        offsets = {tp: off for tp, off in self._handed_out.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except CommitFailedError as exc:
            raise KafkaBusError(
                f"group {self.group}: commit refused during a rebalance; "
                "the uncommitted records will be delivered again",
                retriable=True,
            ) from exc
        except KafkaError as exc:
            raise KafkaBusError(
                f"group {self.group}: commit failed: {exc}", retriable=bool(exc.retriable)
            ) from exc

    async def stop(self) -> None:
        """Leave the group without committing; a pending start is abandoned."""
        self._stopping.set()
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.cancel()  # a group join can take seconds; _connect cleans up on cancel
            with contextlib.suppress(asyncio.CancelledError, KafkaError, OSError):
                late = await starting
                if late is not None:
                    await late.stop()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        self._handed_out.clear()
        self.bus._forget(self)
