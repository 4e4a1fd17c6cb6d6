"""The alerting stage: consume detections and stream events, feed the engine, commit.

    worker = AlertingWorker(bus, config.topics, engine)
    await worker.run(stop)      # returns within about a second of ``stop`` being set

Offsets are committed only after a whole batch was handled, so a crash redelivers it; the
engine's idempotency keys make that redelivery harmless. A message that does not validate is
counted and skipped; a store outage is retried with back-off (without committing) until it
passes or the worker is stopped; any other failure of one message is logged, counted and
skipped, so one poison message cannot stall a channel.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from alerting.engine import AlertEngine
from monitor.core.bus import Bus, Consumer, Record, Topics
from monitor.core.messages import (
    DetectionMessage,
    Message,
    MessageError,
    StreamEvent,
    decode_message,
)
from monitor.core.retry import RetryPolicy, RetryStopped, pause

logger = logging.getLogger(__name__)

GROUP = "vqm-alerting"
POLL_MS = 1000
TICK_SECONDS = 1.0
RETRY_FIRST = 0.2
# A record whose handling the store cannot take yet is retried until the store is back.
RETRY = RetryPolicy(initial=RETRY_FIRST, cap=5.0)


def is_retriable(exc: BaseException) -> bool:
    """Store and bus errors say so themselves; network errors are worth another try."""
    return bool(getattr(exc, "retriable", False)) or isinstance(
        exc, (ConnectionError, TimeoutError)
    )


def _log_retry(record: Record, exc: BaseException, attempt: int, delay: float) -> None:
    logger.warning("%s offset %d: %s; retrying in %.1f s", record.topic, record.offset, exc, delay)


class AlertingWorker:
    """One member of the ``vqm-alerting`` consumer group."""

    def __init__(
        self,
        bus: Bus,
        topics: Topics,
        engine: AlertEngine,
        *,
        group: str = GROUP,
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        self.bus = bus
        self.topics = topics
        self.engine = engine
        self.group = group
        self.tick_seconds = tick_seconds
        self.errors = 0
        self._routes: dict[str, tuple[type[Message], Callable[[Any], Awaitable[None]]]] = {
            topics.detections: (DetectionMessage, engine.handle_detection),
            topics.stream_events: (StreamEvent, engine.handle_stream_event),
        }
        self._last_tick = float("-inf")

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; every wait is at most a second."""
        await self.engine.start()
        consumer = self.bus.consumer(list(self._routes), group=self.group)
        logger.info("alerting worker consuming %s as %s", ", ".join(self._routes), self.group)
        try:
            while not stop.is_set():
                await self._poll(consumer, stop)
                await self._maybe_tick()
        finally:
            await consumer.stop()
            logger.info("alerting worker stopped")

    async def _poll(self, consumer: Consumer, stop: asyncio.Event) -> None:
        try:
            records = await consumer.getmany(timeout_ms=POLL_MS)
            for record in records:
                if not await self._handle_with_retry(record, stop):
                    return  # stopping mid-batch: leave it uncommitted for redelivery
            if records:
                await consumer.commit()
        except Exception:
            self.errors += 1
            self.engine.metrics.alerting_errors.labels(where="poll").inc()
            logger.exception("alerting poll failed; retrying")
            await pause(stop, RETRY_FIRST)

    async def _handle_with_retry(self, record: Record, stop: asyncio.Event) -> bool:
        """Handle one record; False when ``stop`` came while a store outage lasted."""
        try:
            await RETRY.run(
                lambda: self.handle(record),
                retriable=is_retriable,
                on_retry=functools.partial(_log_retry, record),
                stop=stop,
            )
        except RetryStopped:
            return False
        except Exception:
            self.errors += 1
            self.engine.metrics.alerting_errors.labels(where="message").inc()
            self.engine.metrics.poison_records.labels(record.topic).inc()
            logger.exception("skipping %s offset %d after an error", record.topic, record.offset)
        return True

    async def handle(self, record: Record) -> None:
        """Validate one record and give it to the engine; invalid ones are counted and skipped."""
        route = self._routes.get(record.topic)
        if route is None:
            logger.warning("record from unexpected topic %s; skipping", record.topic)
            return
        cls, handler = route
        try:
            msg = decode_message(record.value, cls)
        except MessageError as exc:
            self.engine.metrics.invalid_messages.labels(topic=record.topic).inc()
            logger.warning("invalid message on %s offset %d: %s", record.topic, record.offset, exc)
            return
        await handler(msg)

    async def _maybe_tick(self) -> None:
        clock = time.monotonic()
        if clock - self._last_tick < self.tick_seconds:
            return
        self._last_tick = clock
        try:
            await self.engine.tick()
        except Exception:
            self.errors += 1
            self.engine.metrics.alerting_errors.labels(where="tick").inc()
            logger.exception("alerting tick failed")
