"""`vqm topics create` against a real broker: the three topics, with their partitions, and
what it and the stages say of topics made otherwise (by hand, or by the broker itself with its
defaults when a client asked for a topic that did not exist)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from monitor.core.bus import Topics
from monitor.core.topics import (
    TopicState,
    describe_topics,
    message_bytes_for,
    parse_message_bytes,
    topic_problems,
)
from stream_ingest.config import IngestConfig
from tests.integration.processes import REPO

pytestmark = pytest.mark.integration


def _topics_yaml(path: Path, topics: Topics) -> Path:
    path.write_text(
        "topics:\n"
        f"  segments: {topics.segments}\n"
        f"  detections: {topics.detections}\n"
        f"  stream_events: {topics.stream_events}\n"
    )
    return path


async def _partitions(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {d["topic"]: len(d["partitions"]) for d in described}


def _vqm(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "monitor.app.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False, cwd=REPO)


def _create(bootstrap: str, config: Path) -> subprocess.CompletedProcess[str]:
    return _vqm("topics", "create", "--kafka", bootstrap, "--partitions", "4", "-c", str(config))


async def _make(bootstrap: str, name: str, partitions: int, configs: dict[str, str]) -> None:
    """A topic made by hand, with settings of our choosing."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
    finally:
        await admin.close()


async def _auto_create(bootstrap: str, name: str) -> None:
    """Let the broker make ``name`` itself, with its defaults, as a stage's first publish did."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(name, b"before topics create")
    finally:
        await producer.stop()


async def _states(bootstrap: str, names: list[str]) -> dict[str, TopicState]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {s.name: s for s in await describe_topics(admin, names)}
    finally:
        await admin.close()


SEGMENT_BYTES = message_bytes_for(IngestConfig().max_segment_bytes)


def test_topics_create_makes_the_three_topics_and_is_idempotent(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    config = _topics_yaml(tmp_path / "channels.yaml", topics)
    first = _create(kafka_bootstrap, config)
    assert first.returncode == 0, first.stderr
    again = _create(kafka_bootstrap, config)
    assert again.returncode == 0, again.stderr
    names = [topics.segments, topics.detections, topics.stream_events]
    assert asyncio.run(_partitions(kafka_bootstrap, names)) == {name: 4 for name in names}


def test_topics_create_without_a_broker_address_says_so(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "monitor.app.cli", "topics", "create"]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 2
    assert "--kafka" in result.stderr


def test_topics_create_reports_an_existing_topic_with_other_partitions_or_message_size(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    config = _topics_yaml(tmp_path / "channels.yaml", topics)
    asyncio.run(_make(kafka_bootstrap, topics.segments, 2, {"max.message.bytes": "1048576"}))
    result = _create(kafka_bootstrap, config)
    assert result.returncode == 1, result.stderr
    assert f"topic {topics.segments} has 2 partitions, not 4" in result.stderr
    assert f"topic {topics.segments} has max.message.bytes 1048576, not {SEGMENT_BYTES}" in (
        result.stderr
    )
    assert f"error: topic {topics.detections}" not in result.stderr, "those it made are right"


def test_topics_create_reports_a_topic_the_broker_created_with_its_defaults(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    config = _topics_yaml(tmp_path / "channels.yaml", topics)
    asyncio.run(_auto_create(kafka_bootstrap, topics.segments))
    state = asyncio.run(_states(kafka_bootstrap, [topics.segments]))[topics.segments]
    if state.max_message_bytes is not None:
        pytest.skip("this broker reports the defaults of topics it creates (a real Kafka)")
    result = _create(kafka_bootstrap, config)
    assert result.returncode == 1, result.stderr
    assert f"topic {topics.segments}: cannot confirm max.message.bytes" in result.stderr
    assert "created itself" in result.stderr


def test_asking_about_topics_never_makes_the_broker_create_them(
    kafka_bootstrap: str, topics: Topics
) -> None:
    states = asyncio.run(_states(kafka_bootstrap, [topics.segments, topics.detections]))
    assert [s.exists for s in states.values()] == [False, False]
    again = asyncio.run(_states(kafka_bootstrap, [topics.segments]))
    assert not again[topics.segments].exists


def test_a_stage_refuses_to_start_on_a_segments_topic_too_small_for_the_largest_segment(
    kafka_bootstrap: str, redis_url: str, topics: Topics, tmp_path: Path
) -> None:
    config = _topics_yaml(tmp_path / "channels.yaml", topics)
    small = {"max.message.bytes": str(1024 * 1024)}
    for name in (topics.segments, topics.detections, topics.stream_events):
        asyncio.run(_make(kafka_bootstrap, name, 4, small))
    for stage in ("ingest", "infer"):
        result = _vqm(stage, "--kafka", kafka_bootstrap, "--redis", redis_url, "-c", str(config))
        assert result.returncode == 2, result.stderr[-3000:]
        assert f"topic {topics.segments} has max.message.bytes 1048576, below" in result.stderr
        assert f"vqm {stage} will not start" in result.stderr


def test_the_message_size_is_read_from_what_describe_configs_returns() -> None:
    """DescribeConfigs as Tansu answers it: the settings given at creation, or nothing."""
    responses = [
        {
            "throttle_time_ms": 0,
            "resources": [
                {
                    "error_code": 0,
                    "error_message": "No error.",
                    "resource_type": 2,
                    "resource_name": "made",
                    "config_entries": [
                        {"config_names": "max.message.bytes", "config_value": "17825792"},
                        {"config_names": "retention.ms", "config_value": "3600000"},
                    ],
                },
                {"error_code": 0, "error_message": "", "resource_type": 2,
                 "resource_name": "auto", "config_entries": []},
                {"error_code": 29, "error_message": "denied", "resource_type": 2,
                 "resource_name": "secret", "config_entries": []},
            ],
        }
    ]  # fmt: skip
    sizes, why = parse_message_bytes(responses, ["made", "auto", "secret"])
    assert sizes == {"made": 17825792}
    assert "created itself" in why["auto"] and "TopicAuthorizationFailedError" in why["secret"]
    unknown = TopicState(name="auto", partitions=4, unknown_why=why["auto"])
    [problem] = topic_problems(unknown, 17825792)
    assert "cannot confirm max.message.bytes >= 17825792" in problem
    fine = TopicState(name="made", partitions=4, max_message_bytes=20_000_000)
    assert topic_problems(fine, 17825792) == []
    assert topic_problems(fine, 17825792, partitions=4, exact=True) == [
        "topic made has max.message.bytes 20000000, not 17825792"
    ]
