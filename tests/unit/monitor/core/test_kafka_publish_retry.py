"""KafkaBus.publish rides over a broker restart: retriable failures are tried again.

A unit test of the one class, with a stand-in producer: the restart itself is in
benchmarks/soak.py, which found segments lost when a publish failed once and for all.
"""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, UnknownError

from monitor.core.bus_kafka import PUBLISH_RETRIES, KafkaBus, KafkaBusError
from monitor.core.retry import RetryPolicy


class Producer:
    """Fails with ``errors`` in turn, then acknowledges."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.sent = list(errors), 0

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent += 1


def bus_with(producer: Producer) -> KafkaBus:
    bus = KafkaBus("127.0.0.1:9", client_id="t", backoff=RetryPolicy(initial=0.001, cap=0.002))
    bus._producer = producer  # type: ignore[assignment]
    return bus


async def test_a_publish_is_retried_through_a_broker_restart() -> None:
    producer = Producer(KafkaConnectionError("closed"), UnknownError("restarting"))
    await bus_with(producer).publish("t.segments", "news", b"x")
    assert producer.sent == 1


async def test_a_publish_gives_up_after_its_retries_with_the_last_error() -> None:
    producer = Producer(*[KafkaConnectionError("down")] * (PUBLISH_RETRIES + 1))
    with pytest.raises(KafkaBusError, match="down") as caught:
        await bus_with(producer).publish("t.segments", "news", b"x")
    assert caught.value.retriable and producer.sent == 0


async def test_a_message_too_large_is_not_retried() -> None:
    producer = Producer(MessageSizeTooLargeError(), KafkaConnectionError("never reached"))
    with pytest.raises(KafkaBusError, match="exceeds"):
        await bus_with(producer).publish("t.segments", "news", b"x")
    assert len(producer.errors) == 1
