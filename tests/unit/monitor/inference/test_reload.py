"""Hot reload: a worker picks up a new model version between segments, refuses a bad one."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.synthetic.channel import SyntheticChannel
from monitor.core.bus import MemoryBus
from monitor.core.messages import DetectionMessage, SegmentMessage, decode_message, encode_message
from monitor.core.metrics import Metrics
from monitor.inference.engine import OnnxModel, sha256_of
from monitor.inference.models import ModelCache
from monitor.inference.reload import ModelWatcher
from monitor.inference.worker import InferenceWorker
from tests.unit.monitor.inference.conftest import COPIED_MODEL

NAME = COPIED_MODEL
DEADLINE = 30.0


def new_version(directory: Path, version: str) -> str:
    """Write a new version of the model into ``directory`` the way a deploy copies one: the
    graph first, then its card. The graph differs only in its doc string (a protobuf field
    appended: the last one wins), which makes different bytes of the same network."""
    path = directory / f"{NAME}.onnx"
    note = f"retrained {version}".encode()
    data = path.read_bytes() + b"\x32" + bytes([len(note)]) + note  # field 6: doc_string
    path.write_bytes(data)
    card = json.loads((directory / f"{NAME}.json").read_text())
    card.update(version=version, sha256=sha256_of(data), file_size=len(data))
    (directory / f"{NAME}.json").write_text(json.dumps(card))
    return card["sha256"]  # type: ignore[no-any-return]


async def until(what: Callable[[], bool], why: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {why}")
        await asyncio.sleep(0.05)


@dataclass
class Running:
    bus: MemoryBus
    worker: InferenceWorker
    metrics: Metrics
    channel: SyntheticChannel
    config: VqmConfig
    sent: int = 0

    async def send(self, count: int) -> None:
        for _ in range(count):
            segment = SegmentMessage(
                channel_id="c", seq=self.sent, duration=2.0,
                payload=self.channel.segment_bytes(self.sent),
            )  # fmt: skip
            await self.bus.publish(self.config.topics.segments, "c", encode_message(segment))
            self.sent += 1
        per_segment = len(self.worker.analyzer.detectors("c"))
        await until(
            lambda: self.bus.published(self.config.topics.detections) >= self.sent * per_segment,
            f"detections of {self.sent} segments",
        )

    async def detections(self) -> list[DetectionMessage]:
        consumer = self.bus.consumer([self.config.topics.detections], "check")
        records = await consumer.getmany(timeout_ms=10, max_records=10_000)
        found = [decode_message(r.value, DetectionMessage) for r in records]
        return [d for d in found if d.detector == NAME]

    def info(self) -> dict[str, str]:
        """Labels of the one ``vqm_model_info`` series of the model (exactly one is live)."""
        [sample] = [s for f in self.metrics.model_info.collect() for s in f.samples]
        return sample.labels

    def count(self, name: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"model": NAME})
        return value or 0.0


@pytest.fixture(scope="module")
def channel() -> SyntheticChannel:
    return SyntheticChannel(seed=77)


@pytest.fixture
async def running(model_copy: Path, channel: SyntheticChannel) -> AsyncIterator[Running]:
    config = VqmConfig(channels=[ChannelConfig(id="c", url="http://unused/c.m3u8")])
    config = config.with_enabled([NAME])
    metrics, bus = Metrics(), MemoryBus()
    models = ModelCache(model_copy, ["CPUExecutionProvider"])
    worker = InferenceWorker(config, bus, metrics, models, reload_interval=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield Running(bus, worker, metrics, channel, config)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        models.close()


async def test_a_new_version_copied_in_mid_run_is_used_from_the_next_segment_and_none_is_lost(
    running: Running, model_copy: Path
) -> None:
    await running.send(2)
    old = running.info()
    sha = new_version(model_copy, "1.3.0-test")
    await until(lambda: running.count("vqm_model_reloads_total") == 1, "the reload")
    assert running.info() == {**old, "version": "1.3.0-test", "sha256": sha}
    await running.send(2)
    versions = {d.seq: d.model_version for d in await running.detections()}
    assert versions == {0: old["version"], 1: old["version"], 2: "1.3.0-test", 3: "1.3.0-test"}
    assert running.worker.ready


async def test_a_corrupted_model_file_is_refused_and_the_old_one_keeps_serving(
    running: Running, model_copy: Path
) -> None:
    await running.send(1)
    old = running.info()
    path = model_copy / f"{NAME}.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    await until(lambda: running.count("vqm_model_reload_refusals_total") == 1, "the refusal")
    await running.send(2)
    assert running.info() == old
    assert running.count("vqm_model_reloads_total") == 0
    versions = {d.seq: d.model_version for d in await running.detections()}
    assert versions == {0: old["version"], 1: old["version"], 2: old["version"]}


def test_a_card_whose_input_spec_disagrees_with_the_graph_is_refused_once(
    model_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    models = ModelCache(model_copy, ["CPUExecutionProvider"])
    running: OnnxModel = models.model(NAME)
    card = json.loads((model_copy / f"{NAME}.json").read_text())
    shipped = card["version"]
    card["inputs"][0]["shape"] = ["batch", 16000]
    card["version"] = "9.9.9"
    (model_copy / f"{NAME}.json").write_text(json.dumps(card))
    watcher = ModelWatcher(models, metrics, interval=1.0)

    def refused() -> float | None:
        return metrics.registry.get_sample_value("vqm_model_reload_refusals_total", {"model": NAME})

    assert watcher.check() == [] and refused() is None  # changed files settle for one look
    assert watcher.check() == [] and refused() == 1
    assert watcher.check() == [] and refused() == 1  # the same files are not tried again
    assert "input audio has shape" in caplog.text and f"{shipped} stays in use" in caplog.text
    assert models.swap_staged() == [] and models.model(NAME) is running


def test_touching_the_files_without_changing_them_reloads_nothing(model_copy: Path) -> None:
    models = ModelCache(model_copy, ["CPUExecutionProvider"])
    models.model(NAME)
    watcher = ModelWatcher(models, Metrics(), interval=1.0)
    for suffix in (".onnx", ".json"):
        path = model_copy / f"{NAME}{suffix}"
        path.write_bytes(path.read_bytes())
    assert watcher.check() == [] and watcher.check() == []


def test_a_deploy_caught_between_model_and_card_is_not_refused(model_copy: Path) -> None:
    models = ModelCache(model_copy, ["CPUExecutionProvider"])
    models.model(NAME)
    metrics = Metrics()
    watcher = ModelWatcher(models, metrics, interval=1.0)
    card = (model_copy / f"{NAME}.json").read_text()
    new_version(model_copy, "2.0.0")
    new_card = (model_copy / f"{NAME}.json").read_text()
    (model_copy / f"{NAME}.json").write_text(card)  # the new model landed, its card not yet
    assert watcher.check() == []
    (model_copy / f"{NAME}.json").write_text(new_card)
    assert watcher.check() == []
    assert watcher.check() == [NAME]
    refused = metrics.registry.get_sample_value("vqm_model_reload_refusals_total", {"model": NAME})
    assert refused is None
    [(_, new)] = models.swap_staged()
    assert new.version == "2.0.0" and models.model(NAME) is new
