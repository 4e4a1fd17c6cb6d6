"""Create vqm's topics on a Kafka cluster (``vqm topics create``), idempotently.

Topics are made explicitly rather than left to broker auto-creation so that partitions
(the unit of scaling: one channel stays on one partition), retention and
``max.message.bytes`` (which must admit the largest segment) are what the deployment asked for.

    await create_topics("kafka:9092", Topics(), partitions=12, replication=3,
                        retention_ms=3_600_000, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES)
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from monitor.core.bus import Topics
from monitor.core.bus_kafka import KafkaBusError

logger = logging.getLogger(__name__)


def topic_configs(retention_ms: int, max_message_bytes: int) -> dict[str, str]:
    """Broker-side settings of every vqm topic."""
    return {"retention.ms": str(retention_ms), "max.message.bytes": str(max_message_bytes)}


async def create_topics(
    bootstrap: str,
    topics: Topics,
    partitions: int,
    replication: int,
    retention_ms: int,
    max_message_bytes: int,
    request_timeout_ms: int = 30_000,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Existing topics are left as they are (their settings are not changed), so running it
    twice, or from several pods at once, is harmless.
    """
    if partitions < 1 or replication < 1:
        raise ValueError(f"partitions and replication must be >= 1: {partitions}, {replication}")
    names = list(dict.fromkeys(topics.model_dump().values()))
    configs = topic_configs(retention_ms, max_message_bytes)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=request_timeout_ms)
    try:
        await admin.start()
        response = await admin.create_topics(
            [NewTopic(n, partitions, replication, topic_configs=configs) for n in names]
        )
    except KafkaError as exc:
        raise KafkaBusError(
            f"cannot create topics at {bootstrap}: {exc}", retriable=bool(exc.retriable)
        ) from exc
    finally:
        await admin.close()
    return _check(response.topic_errors)


def _check(topic_errors: list[tuple[str, int] | tuple[str, int, str | None]]) -> list[str]:
    """Names created; an existing topic is fine, any other error is raised."""
    created = []
    for name, code, *message in topic_errors:  # version 0 responses carry no message
        if code == 0:
            logger.info("created topic %s", name)
            created.append(name)
            continue
        error = for_code(code)
        if error is TopicAlreadyExistsError:
            logger.info("topic %s exists already", name)
            continue
        raise KafkaBusError(
            f"creating topic {name!r} failed: {error.__name__}: {' '.join(map(str, message))}",
            retriable=bool(error.retriable),
        )
    return created
