"""SIGTERM stops each distributed process within 10 s, exit code 0, with its finished work
committed: every segment below the inference group's committed offset has its detections."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest

from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.synthetic.channel import SyntheticChannel
from monitor.app.synthetic.hls_server import LiveHlsServer
from monitor.core.bus import Topics
from monitor.core.messages import DetectionMessage, SegmentMessage, decode_message
from tests.conftest import free_port
from tests.integration.processes import (
    Cluster,
    committed_offsets,
    make_topics,
    read_topic,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STOP_WITHIN = 10.0


async def test_sigterm_stops_ingest_infer_and_alert_within_ten_seconds_with_finished_work_committed(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, namespace: str, topics: Topics
) -> None:
    await make_topics(kafka_bootstrap, topics)
    channel = SyntheticChannel(seed=11, segment_duration=1.0, width=160, height=96)
    origin = LiveHlsServer({"news": channel}, port=free_port())
    await origin.start()
    config = VqmConfig(
        channels=[ChannelConfig(id="news", url=origin.playlist_url("news"))], topics=topics
    )
    cluster = Cluster(tmp_path, kafka_bootstrap, redis_url, namespace, config)
    try:
        processes = [cluster.start(stage) for stage in ("alert", "infer", "ingest")]
        for process in processes:
            await process.until_ready()
        group = f"{namespace}-inference"
        for _ in range(120):  # work in flight: the inference group has committed something
            if sum((await committed_offsets(kafka_bootstrap, group, topics.segments)).values()):
                break
            await asyncio.sleep(0.5)
        for process in processes:
            process.terminate()
        codes = await asyncio.gather(*(p.wait(STOP_WITHIN) for p in processes))
        assert codes == [0, 0, 0], cluster.logs()
    finally:
        cluster.stop()
        await origin.stop()
        print(cluster.logs())

    committed = await committed_offsets(kafka_bootstrap, group, topics.segments)
    assert sum(committed.values()) > 0
    segments = await read_topic(kafka_bootstrap, topics.segments)
    finished = {
        decode_message(r.value, SegmentMessage).seq
        for r in segments
        if r.offset < committed.get(r.partition, 0)
    }
    detectors: dict[int, set[str]] = defaultdict(set)
    for record in await read_topic(kafka_bootstrap, topics.detections):
        detection = decode_message(record.value, DetectionMessage)
        detectors[detection.seq].add(detection.detector)
    expected = set(config.detectors_for(config.channels[0]))
    assert {seq: expected - detectors[seq] for seq in finished if expected - detectors[seq]} == {}
