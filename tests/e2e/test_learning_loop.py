"""The learning loop end to end: a planted false alarm is raised, kept as annotation
candidates, queued, labelled, retrained behind the gate, hot-reloaded, and no longer raised.

The planted false alarm is a pixelated graphic (a mosaic of 16x16 coloured squares): a clean
picture that the shipped block corruption model takes for macroblocking on every frame. The
training data folder is a small stand-in for the lab's (damaged and clean synthetic clips with
their region labels, written as the lab writes its splits).
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from alerting.annotation import AnnotationStore, CandidateAnswer, CandidateLabel
from lab.synth.corrupt import TRAIN_KINDS, ClipSpec, corrupted_clip
from monitor.app.cli import app
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.retrain import next_version
from monitor.core.bus import MemoryBus
from monitor.core.messages import DetectionMessage, SegmentMessage, decode_message, encode_message
from monitor.core.metrics import Metrics
from monitor.core.samples import SampleStore
from monitor.core.state_file import FileStateStore
from monitor.inference.detectors.block_corruption import model_name_for
from monitor.inference.engine import default_model_dir
from monitor.inference.models import ModelCache
from monitor.inference.worker import InferenceWorker

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DETECTOR = "block_corruption"
MODEL = model_name_for("auto")  # what the detector and the retraining use on this CPU
DEADLINE = 120.0
SIZE = (352, 640)
# The stand-in splits: clips per split, three in four of them damaged. Some 25-30 frames of
# a split are corrupted, so one frame judged differently moves the test F1 by about 0.04: the
# card's 0.02 (meant for the lab's real test split) turned on a frame or two here, differently
# across fresh installs, so the copied card allows two to three frames' worth.
CLIPS = 32
DAMAGED = CLIPS * 3 // 4
GATE_HERE = {"test_f1_drop": 0.1}
SHIPPED = json.loads((default_model_dir() / f"{MODEL}.json").read_text())["version"]
REFITTED = next_version(SHIPPED)  # what a retraining writes


def copy_model(folder: Path) -> None:
    """The shipped model and its card, with the gate sized for the stand-in splits."""
    shutil.copy(default_model_dir() / f"{MODEL}.onnx", folder)
    card = json.loads((default_model_dir() / f"{MODEL}.json").read_text())
    card["retraining_gate"] = {**card.get("retraining_gate", {}), **GATE_HERE}
    (folder / f"{MODEL}.json").write_text(json.dumps(card))


def mosaic(seed: int, block: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = SIZE
    cells = rng.integers(0, 255, (h // block + 1, w // block + 1, 3)).astype(np.uint8)
    return np.repeat(np.repeat(cells, block, 0), block, 1)[:h, :w]


def mosaic_segment(seed: int, seq: int, seconds: float = 1.0) -> bytes:
    """One second of a still mosaic, H.264 at high quality, timed as segment ``seq``."""
    out = io.BytesIO()
    with av.open(out, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "14"})
        stream.height, stream.width = SIZE
        stream.pix_fmt = "yuv420p"
        picture = mosaic(seed)
        for i in range(int(25 * seconds)):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = int((seq * seconds) * 25) + i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def write_split(path: Path, seeds: range, damaged: int) -> None:
    """Clips as the lab's split files hold them: every 3rd frame, region and frame labels."""
    arrays: dict[str, list[np.ndarray]] = {}
    for i, seed in enumerate(seeds):
        spec = ClipSpec(
            seed=seed,
            scenes=(TRAIN_KINDS[i % len(TRAIN_KINDS)],),
            frames=24,
            damage=0.7 if i < damaged else 0.0,
        )
        clip = corrupted_clip(spec)
        picks = np.arange(0, spec.frames, 3)
        regions = clip.region_labels[picks]
        key = f"{spec.height}x{spec.width}"
        parts = {
            "rgb": clip.damaged[picks],
            "regions": regions,
            "frames": regions.mean(axis=(1, 2)) > 0.07,
            "clip": np.full(len(picks), i),
            "undamaged": np.full(len(picks), spec.damage == 0.0),
        }
        for name, value in parts.items():
            arrays.setdefault(f"{key}/{name}", []).append(value)
    np.savez(path, **{k: np.concatenate(v) for k, v in arrays.items()})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lab_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lab")
    for split, first in (("train", 91_000), ("real_validation", 92_000), ("real_test", 93_000)):
        write_split(folder / f"{split}.npz", range(first, first + CLIPS), damaged=DAMAGED)
    return folder


async def until(what: Callable[[], bool], why: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {why}")
        await asyncio.sleep(0.1)


class Channel:
    def __init__(self, bus: MemoryBus, config: VqmConfig, worker: InferenceWorker) -> None:
        self.bus, self.config, self.sent = bus, config, 0
        self.per_segment = len(worker.analyzer.detectors("m"))

    async def send(self, seeds: list[int]) -> list[DetectionMessage]:
        first = self.sent
        for seed in seeds:
            segment = SegmentMessage(
                channel_id="m", seq=self.sent, duration=1.0,
                payload=mosaic_segment(seed, self.sent),
            )  # fmt: skip
            await self.bus.publish(self.config.topics.segments, "m", encode_message(segment))
            self.sent += 1
        topic = self.config.topics.detections
        count = self.sent * self.per_segment
        await until(lambda: self.bus.published(topic) >= count, f"{self.sent} segments' detections")
        consumer = self.bus.consumer([topic], f"check-{first}")
        records = await consumer.getmany(timeout_ms=10, max_records=10_000)
        found = [decode_message(r.value, DetectionMessage) for r in records]
        return [d for d in found if d.seq >= first]


async def test_a_planted_false_alarm_is_labelled_retrained_reloaded_and_no_longer_raised(
    tmp_path: Path, lab_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models_dir, data_dir = tmp_path / "models", tmp_path / "data"
    models_dir.mkdir()
    copy_model(models_dir)
    monkeypatch.setenv("VQM_DATA_DIR", str(data_dir))
    config = VqmConfig(channels=[ChannelConfig(id="m", url="http://unused/m.m3u8")])
    config = config.with_enabled([DETECTOR])
    bus, metrics = MemoryBus(), Metrics()
    models = ModelCache(models_dir, ["CPUExecutionProvider"])
    candidates = SampleStore(data_dir / "candidates")
    worker = InferenceWorker(
        config, bus, metrics, models, reload_interval=0.1,
        candidates=candidates, candidates_every=1,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    channel = Channel(bus, config, worker)
    try:
        before = [d for d in await channel.send(list(range(8))) if d.detector == DETECTOR]
        assert len(before) == 8 and all(d.spans for d in before), "the mosaic is a false alarm"
        assert len([m for m in candidates.all() if DETECTOR in m.detectors]) == 8

        command = ["label", "queue", DETECTOR, "--budget", "8"]
        queued = await asyncio.to_thread(CliRunner().invoke, app, command)
        assert queued.exit_code == 0, queued.output
        state = FileStateStore(data_dir / "feedback.json")
        await state.start()
        notes = AnnotationStore(state)
        queue = await notes.queue(DETECTOR)
        assert queue is not None and len(queue.items) == 8
        for item in queue.items:  # the operator: every one of them is a clean picture
            answer = CandidateAnswer(verdict="clean", by="ana")
            await notes.put_label(CandidateLabel.of(DETECTOR, item, answer, time.time()))
        await state.stop()

        command = ["retrain", DETECTOR, "--data", str(lab_data), "--models", str(models_dir)]
        retrained = await asyncio.to_thread(CliRunner().invoke, app, command)
        assert retrained.exit_code == 0, retrained.output
        assert f"wrote block_corruption {REFITTED}" in retrained.output, retrained.output
        card = json.loads((models_dir / f"{MODEL}.json").read_text())
        assert card["version"] == REFITTED and card["history"][-1]["figures"]["units"]

        reloads = {"model": MODEL}
        await until(
            lambda: (
                (metrics.registry.get_sample_value("vqm_model_reloads_total", reloads) or 0) >= 1
            ),
            "the hot reload",
        )
        after = [d for d in await channel.send([100, 101]) if d.detector == DETECTOR]
        assert [d.model_version for d in after] == [REFITTED, REFITTED]
        assert not any(d.spans for d in after), [d.spans for d in after]
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        models.close()


def test_labels_that_would_break_detection_are_refused_and_the_model_kept(
    tmp_path: Path, lab_data: Path
) -> None:
    """An operator who answers backwards (damaged pictures "false alarm", clean ones corrupted
    all over): the refit flags clean pictures and misses damaged ones, the gate sees the test
    F1 fall, and nothing is written. (Damaged pictures answered "clean" alone are not enough:
    the refitted threshold keeps the validation recall, and they change nothing.)"""
    from monitor.app.retrain import Unit, npz_groups, retrain

    copy_model(tmp_path)
    before = (tmp_path / f"{MODEL}.onnx").read_bytes()
    [group] = npz_groups(lab_data / "train.npz").values()
    damaged = group["rgb"][group["frames"]]
    clean = group["rgb"][group["undamaged"]][: len(damaged)]
    everywhere = [(r, c) for r in range(16) for c in range(16)]
    units = [Unit(key=f"wrong/{i}", defect=False, frames=[f]) for i, f in enumerate(damaged)]
    units += [
        Unit(key=f"backwards/{i}", defect=True, frames=[f], grid=16, cells=everywhere)
        for i, f in enumerate(clean)
    ]
    outcome = retrain(tmp_path, lab_data, units)
    assert not outcome.accepted
    assert any("test F1 falls" in r for r in outcome.reasons), outcome.reasons
    assert (tmp_path / f"{MODEL}.onnx").read_bytes() == before
    assert json.loads((tmp_path / f"{MODEL}.json").read_text())["version"] == SHIPPED


def test_alert_feedback_becomes_a_unit_of_the_frames_the_detector_judged(tmp_path: Path) -> None:
    from alerting.feedback import Feedback, Regions, Verdict
    from monitor.app.retrain_units import feedback_units
    from monitor.core.samples import SampleMeta

    samples = SampleStore(tmp_path)
    for seq in (0, 1):
        meta = SampleMeta(
            channel_id="m", seq=seq, media_start=seq, media_end=seq + 1.0,
            detectors=[DETECTOR],
        )  # fmt: skip
        samples.put(meta, mosaic_segment(seq, seq))
    answer = Feedback(
        alert_id="a1", channel_id="m", detector=DETECTOR, start=1.0, end=1.99,
        verdict=Verdict.REAL_DEFECT, by="ana", at=1.0,
        regions=Regions(grid=16, cells=[(2, 3)]),
    )  # fmt: skip
    other = answer.model_copy(update={"alert_id": "a2", "detector": "black"})
    [unit] = feedback_units([answer, other], samples, stride=5)
    assert unit.key == "alert/a1" and unit.defect and unit.grid == 16 and unit.cells == [(2, 3)]
    assert len(unit.frames) == 5  # frames 0, 5, ..., 20 of the second segment
    assert all(f.shape == (*SIZE, 3) for f in unit.frames)
    assert np.abs(unit.frames[0].astype(int) - mosaic(1)).mean() < 8  # the second segment's
