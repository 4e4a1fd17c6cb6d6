"""`vqm scan` with both learned detectors on one recording: damaged pictures and mains hum,
each reported where it was put and nowhere else."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lab.synth.corrupt import corrupt_stream
from monitor.app.config import VqmConfig
from monitor.app.scan import scan
from monitor.app.synthetic.channel import SyntheticChannel, write_clip
from monitor.core.bus import MemoryBus
from monitor.core.messages import DetectionMessage, SegmentMessage, decode_message, encode_message
from monitor.core.metrics import Metrics
from monitor.inference.engine import default_model_dir
from monitor.inference.models import ModelCache
from monitor.inference.worker import InferenceWorker
from tests.media_edits import add_hum

pytestmark = pytest.mark.skipif(
    not all(
        (default_model_dir() / f"{name}.onnx").exists()
        for name in ("block_corruption_light", "audio_artifact")
    ),
    reason="learned models not exported",
)

CORRUPT = (2.2, 3.0)  # damaged packets; the concealment lasts until the IDR at 4 s
HUM = (5.0, 7.0)


def test_scan_reports_damaged_pictures_and_hum_at_the_times_they_were_put_there(
    tmp_path: Path,
) -> None:
    clean, damaged, both = tmp_path / "clean.ts", tmp_path / "damaged.ts", tmp_path / "both.ts"
    write_clip(clean, 8.0, seed=88_001, scenes=["high_motion"])
    assert corrupt_stream(str(clean), str(damaged), *CORRUPT, seed=1, every=2) > 0
    add_hum(damaged, both, *HUM)
    config = VqmConfig.model_validate(
        {
            "detectors": [
                {"type": "block_corruption", "enabled": True},
                {"type": "audio_artifact", "enabled": True},
            ]
        }
    )
    found = list(scan(str(both), config))
    blocks = [d for d in found if d.detector == "block_corruption"]
    hums = [d for d in found if d.detector == "audio_artifact" and d.label == "hum"]
    assert blocks and hums, found
    assert all(d.start >= 2.0 and d.end <= 4.3 for d in blocks), blocks
    assert any(d.start < 3.0 and d.end > 3.5 for d in blocks), blocks
    assert all(d.start >= HUM[0] - 0.6 and d.end <= HUM[1] + 0.6 for d in hums), hums
    assert any(d.start < 5.5 and d.end > 6.5 for d in hums), hums
    others = [d for d in found if d.detector == "audio_artifact" and d.label != "hum"]
    assert not others, others


async def test_the_live_worker_emits_both_learned_detectors_spans_per_segment(
    tmp_path: Path, metrics: Metrics, models: ModelCache
) -> None:
    """The inference worker, as `vqm run` runs it: 2 s segments of a channel, one damaged
    (2.2-3.0 s) and two carrying hum (5-7 s); the detections carry the spans, at channel time."""
    channel = SyntheticChannel(seed=88_002, scenes=["high_motion"])
    payloads = []
    for seq in range(4):
        path = tmp_path / f"{seq}.ts"
        path.write_bytes(channel.segment_bytes(seq))
        edited = tmp_path / f"{seq}-edited.ts"
        if seq == 1:
            assert corrupt_stream(str(path), str(edited), *CORRUPT, seed=1, every=2) > 0
        elif seq in (2, 3):
            add_hum(path, edited, *HUM)
        else:
            edited = path
        payloads.append(edited.read_bytes())
    detectors = [
        {"type": "block_corruption", "enabled": True},
        {"type": "audio_artifact", "enabled": True},
    ]
    config = VqmConfig.model_validate(
        {"channels": [{"id": "c", "url": "http://unused/c.m3u8"}], "detectors": detectors}
    )
    bus = MemoryBus()
    for seq, payload in enumerate(payloads):
        message = SegmentMessage(channel_id="c", seq=seq, duration=2.0, payload=payload)
        await bus.publish(config.topics.segments, "c", encode_message(message))
    worker = InferenceWorker(config, bus, metrics, models)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    expected = 4 * len(worker.analyzer.detectors("c"))
    for _ in range(600):
        if bus.published(config.topics.detections) >= expected:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    consumer = bus.consumer([config.topics.detections], "check")
    found = [
        decode_message(r.value, DetectionMessage)
        for r in await consumer.getmany(timeout_ms=10, max_records=1000)
    ]
    spans = {
        name: [s for d in found if d.detector == name for s in d.spans]
        for name in ("block_corruption", "audio_artifact")
    }
    assert spans["block_corruption"] and all(
        s.start >= 2.0 and s.end <= 4.3 for s in spans["block_corruption"]
    ), spans
    hums = [s for s in spans["audio_artifact"] if s.label == "hum"]
    assert hums and all(s.start >= HUM[0] - 0.6 and s.end <= HUM[1] + 0.6 for s in hums), spans
    assert all(s.label == "hum" for s in spans["audio_artifact"]), spans
