"""`vqm topics create` against a real broker: the three topics, with their partitions."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from monitor.core.bus import Topics

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


def _create(bootstrap: str, config: Path) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "monitor.app.cli",
        "topics",
        "create",
        "--kafka",
        bootstrap,
        "--partitions",
        "4",
        "--config",
        str(config),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


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
