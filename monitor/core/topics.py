"""Create vqm's topics on a Kafka cluster (``vqm topics create``), and check them.

Topics are made explicitly rather than left to broker auto-creation so that partitions
(the unit of scaling: one channel stays on one partition), retention and
``max.message.bytes`` (which must admit the largest segment) are what the deployment asked for.

    await create_topics("kafka:9092", Topics(), partitions=12, replication=3,
                        retention_ms=3_600_000, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES)
    await wait_for_topics("kafka:9092", Topics(), segment_bytes=16 * MIB, stop=stop)

``create_topics`` leaves an existing topic as it is, then describes every topic (metadata
for partitions, DescribeConfigs for ``max.message.bytes``) and raises
:class:`TopicMismatchError` naming each one whose settings differ from those asked for: a
topic the broker created on its own, with its defaults, is found out here. ``wait_for_topics``
is what a stage runs before it produces or consumes: it waits (never creating anything:
metadata requests ask for no auto-creation) until the topics exist, then refuses a segments
topic that cannot hold ``ingest.max_segment_bytes``. Some brokers (Tansu) answer
DescribeConfigs only with the settings given when the topic was created, so a topic they
made themselves reports no ``max.message.bytes``; that is reported as unknown, never taken
as fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    IncompatibleBrokerVersion,
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    UnsupportedVersionError,
    for_code,
)
from aiokafka.protocol.metadata import MetadataRequest
from pydantic import BaseModel, ConfigDict

from monitor.core.bus import Topics
from monitor.core.bus_kafka import MIB, KafkaBusError
from monitor.core.errors import VqmError
from monitor.core.retry import RetryPolicy, pause

logger = logging.getLogger(__name__)

#: Room for a segment message's JSON header, key and batch framing above the segment itself.
HEADER_ALLOWANCE = MIB
MAX_MESSAGE_BYTES = "max.message.bytes"


def message_bytes_for(max_segment_bytes: int) -> int:
    """The ``max.message.bytes`` a topic needs to carry segments of ``max_segment_bytes``."""
    return max_segment_bytes + HEADER_ALLOWANCE


class TopicMismatchError(VqmError):
    """Topics whose settings are not what vqm needs; ``problems`` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class TopicState(BaseModel):
    """What the broker says of one topic. ``partitions`` None: it does not exist;
    ``max_message_bytes`` None: the broker did not say (``unknown_why`` says why)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    partitions: int | None
    max_message_bytes: int | None = None
    unknown_why: str = ""

    @property
    def exists(self) -> bool:
        return self.partitions is not None


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
    twice, or from several pods at once, is harmless; but every topic is then checked, and
    one whose partitions or ``max.message.bytes`` differ from those asked for (or whose
    ``max.message.bytes`` the broker does not report) raises :class:`TopicMismatchError`.
    """
    if partitions < 1 or replication < 1:
        raise ValueError(f"partitions and replication must be >= 1: {partitions}, {replication}")
    names = _names(topics)
    configs = topic_configs(retention_ms, max_message_bytes)
    async with _admin(bootstrap, request_timeout_ms, "create topics") as admin:
        response = await admin.create_topics(
            [NewTopic(n, partitions, replication, topic_configs=configs) for n in names]
        )
        created = _check(response.topic_errors)
        states = await describe_topics(admin, names)
    problems = [
        line
        for state in states
        for line in topic_problems(state, max_message_bytes, partitions=partitions, exact=True)
    ]
    if problems:
        raise TopicMismatchError(problems)
    return created


async def wait_for_topics(
    bootstrap: str,
    topics: Topics,
    segment_bytes: int | None,
    stop: asyncio.Event,
    policy: RetryPolicy | None = None,
) -> bool:
    """Wait until every topic exists (False if ``stop`` comes first); then, when
    ``segment_bytes`` is given, raise :class:`TopicMismatchError` if the segments topic
    cannot hold messages of that size. Nothing is created: that is ``vqm topics create``'s.
    """
    policy = policy or RetryPolicy(initial=0.5, cap=5.0)
    looks = 0
    while not stop.is_set():
        async with _admin(bootstrap, 30_000, "describe topics") as admin:
            states = await describe_topics(admin, _names(topics))
        missing = [s.name for s in states if not s.exists]
        if not missing:
            break
        looks += 1
        delay = policy.delay(looks)
        logger.warning(
            "topics %s do not exist; waiting for `vqm topics create` (next look in %.1f s)",
            ", ".join(missing),
            delay,
        )
        await pause(stop, delay)
    if stop.is_set():
        return False
    if segment_bytes is not None:
        [segments] = [s for s in states if s.name == topics.segments]
        problems = topic_problems(segments, message_bytes_for(segment_bytes))
        if problems:
            raise TopicMismatchError(problems)
    return True


def _names(topics: Topics) -> list[str]:
    return list(dict.fromkeys(topics.model_dump().values()))


@contextlib.asynccontextmanager
async def _admin(bootstrap: str, request_timeout_ms: int, what: str) -> Any:
    """A started admin client, closed afterwards; Kafka failures as :class:`KafkaBusError`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=request_timeout_ms)
    try:
        await admin.start()
        yield admin
    except KafkaError as exc:
        raise KafkaBusError(
            f"cannot {what} at {bootstrap}: {exc}", retriable=bool(exc.retriable)
        ) from exc
    finally:
        await admin.close()


async def describe_topics(admin: AIOKafkaAdminClient, names: list[str]) -> list[TopicState]:
    """Partitions and ``max.message.bytes`` of each topic, without creating any: the
    admin client's own ``describe_topics`` asks for auto-creation, and a broker that
    allows it creates a topic it is only asked about."""
    request = MetadataRequest(names, allow_auto_topic_creation=False)
    metadata = (await admin._send_request(request)).to_object()["topics"]
    partitions = {t["topic"]: _partitions(t) for t in metadata}
    present = [n for n in names if partitions.get(n) is not None]
    sizes, why = await _message_bytes(admin, present)
    return [
        TopicState(
            name=n,
            partitions=partitions.get(n),
            max_message_bytes=sizes.get(n),
            unknown_why="" if n in sizes else why.get(n, ""),
        )
        for n in names
    ]


def _partitions(topic: dict[str, Any]) -> int | None:
    """The topic's partition count; None when the broker says it does not exist."""
    error = for_code(topic["error_code"])
    if topic["error_code"] != 0 and error is UnknownTopicOrPartitionError:
        return None
    if topic["error_code"] != 0:
        raise KafkaBusError(
            f"describing topic {topic['topic']!r}: {error.__name__}", retriable=True
        )
    return len(topic["partitions"])


async def _message_bytes(
    admin: AIOKafkaAdminClient, names: list[str]
) -> tuple[dict[str, int], dict[str, str]]:
    """``max.message.bytes`` by topic as DescribeConfigs reports it, and why it is unknown
    for those it does not report."""
    if not names:
        return {}, {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
    try:
        responses = await admin.describe_configs(resources)
    except (UnsupportedVersionError, IncompatibleBrokerVersion) as exc:
        why = f"the broker does not answer DescribeConfigs ({type(exc).__name__})"
        return {}, dict.fromkeys(names, why)
    return parse_message_bytes([r.to_object() for r in responses], names)


def parse_message_bytes(
    responses: list[dict[str, Any]], names: list[str]
) -> tuple[dict[str, int], dict[str, str]]:
    """Read ``max.message.bytes`` out of DescribeConfigs responses (as ``to_object()``
    gives them); a topic without it, or with an error, gets a reason instead."""
    sizes: dict[str, int] = {}
    why = dict.fromkeys(names, "the broker's DescribeConfigs answer does not mention it")
    for response in responses:
        for resource in response["resources"]:
            name = resource["resource_name"]
            if resource["error_code"]:
                error = for_code(resource["error_code"]).__name__
                why[name] = f"DescribeConfigs failed: {error} {resource['error_message'] or ''}"
                continue
            for entry in resource["config_entries"]:
                if entry["config_names"] == MAX_MESSAGE_BYTES and entry["config_value"]:
                    sizes[name] = int(entry["config_value"])
            if name not in sizes:
                why[name] = (
                    "the broker reports no max.message.bytes for it (a topic the broker "
                    "created itself, with its defaults?)"
                )
    return sizes, why


def topic_problems(
    state: TopicState, message_bytes: int, partitions: int | None = None, exact: bool = False
) -> list[str]:
    """What is wrong with one topic: missing, other partitions than ``partitions``, and a
    ``max.message.bytes`` below ``message_bytes`` (or, ``exact``, other than it) or unknown."""
    name = state.name
    if not state.exists:
        return [f"topic {name} does not exist"]
    problems = []
    if partitions is not None and state.partitions != partitions:
        problems.append(f"topic {name} has {state.partitions} partitions, not {partitions}")
    size = state.max_message_bytes
    if size is None:
        problems.append(
            f"topic {name}: cannot confirm max.message.bytes >= {message_bytes}: "
            f"{state.unknown_why}"
        )
    elif size < message_bytes or (exact and size != message_bytes):
        problems.append(
            f"topic {name} has max.message.bytes {size}, "
            f"{'not' if exact else 'below'} {message_bytes}"
        )
    return problems


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
