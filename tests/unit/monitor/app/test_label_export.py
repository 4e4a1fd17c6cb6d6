"""From a flagged segment to a dataset: the worker keeps the segment, an operator marks the
alert through the API, and ``vqm label export`` writes the label with the segment's frames."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from alerting.api import ApiContext, create_app
from alerting.engine import AlertEngine
from monitor.app.cli import app
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.runtime import make_feedback_state, make_samples
from monitor.app.synthetic.channel import SyntheticChannel
from monitor.app.synthetic.defects import Defect
from monitor.core.bus import MemoryBus
from monitor.core.messages import DetectionMessage, SegmentMessage, decode_message, encode_message
from monitor.core.metrics import Metrics
from monitor.core.settings import Settings
from monitor.core.state import MemoryStateStore
from monitor.inference.models import ModelCache
from monitor.inference.worker import InferenceWorker

CONFIG = VqmConfig(channels=[ChannelConfig(id="c", url="http://unused/c.m3u8")]).with_enabled(
    ["black"]
)
SEGMENTS = 4


async def analysed(worker: InferenceWorker, bus: MemoryBus) -> list[DetectionMessage]:
    """Run the worker over the published segments until each has its detection."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    deadline = time.monotonic() + 60
    per_segment = len(worker.analyzer.detectors("c"))
    while bus.published(CONFIG.topics.detections) < SEGMENTS * per_segment:
        assert time.monotonic() < deadline and not task.done(), "segments not analysed"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    consumer = bus.consumer([CONFIG.topics.detections], "check")
    records = await consumer.getmany(timeout_ms=10, max_records=1000)
    return [decode_message(r.value, DetectionMessage) for r in records]


async def test_a_false_alarm_marked_through_the_api_is_exported_with_its_frames(
    tmp_path: Path, models: ModelCache
) -> None:
    channel = SyntheticChannel(seed=5150, schedule=[Defect(kind="black", start=2.0, duration=4.0)])
    bus, metrics, settings = MemoryBus(), Metrics(CollectorRegistry()), Settings()
    for seq in range(SEGMENTS):
        segment = SegmentMessage(
            channel_id="c", seq=seq, duration=2.0, payload=channel.segment_bytes(seq)
        )
        await bus.publish(CONFIG.topics.segments, "c", encode_message(segment))
    samples = make_samples(settings, metrics)
    worker = InferenceWorker(CONFIG, bus, metrics, models, samples=samples)
    state = MemoryStateStore()
    engine = AlertEngine(CONFIG, state, metrics)
    for detection in sorted(await analysed(worker, bus), key=lambda d: d.seq):
        await engine.handle_detection(detection)
    assert samples is not None and [m.seq for m in samples.all()] == [1, 2]
    [alert] = await engine.store.active() + await engine.store.recent()

    feedback = make_feedback_state(settings, state)  # a file: this is the one-process mode
    await feedback.start()
    ctx = ApiContext(config=CONFIG, state=state, metrics=metrics, feedback=feedback)
    transport = httpx.ASGITransport(app=create_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as api:
        body = {"verdict": "false_alarm", "by": "ana"}
        response = await api.post(f"/api/alerts/{alert.id}/feedback", json=body)
        assert response.status_code == 201, response.text

    out = tmp_path / "dataset"
    # as another process would: the CLI reads the file afresh (its own event loop: a thread)
    result = await asyncio.to_thread(CliRunner().invoke, app, ["label", "export", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 labels, 1 with samples (2 segments)" in result.output
    [line] = (out / "labels.jsonl").read_text().splitlines()
    label = json.loads(line)
    assert (label["alert_id"], label["verdict"], label["by"]) == (alert.id, "false_alarm", "ana")
    assert [s["seq"] for s in label["samples"]] == [1, 2]
    for sample in label["samples"]:
        assert (out / sample["segment"]).read_bytes() == channel.segment_bytes(sample["seq"])
        assert sample["frames"] and all((out / f).stat().st_size > 0 for f in sample["frames"])
