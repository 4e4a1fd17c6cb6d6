"""Model calls from concurrent segments joined into one run, each caller getting its rows."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from monitor.inference.batching import Batcher
from monitor.inference.detectors.block_corruption import MODEL_NAMES
from monitor.inference.engine import default_model_dir
from monitor.inference.models import ModelCache


class _Recorder:
    """A model stand-in that remembers the batches it was given."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[tuple[int, ...]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        with self.lock:
            self.batches.append(x.shape)
        if self.fail:
            raise RuntimeError("model broke")
        return [x * 2, x.reshape(len(x), -1).sum(axis=1)]


def _together(batcher: Batcher, inputs: list[np.ndarray]) -> list[list[np.ndarray]]:
    barrier = threading.Barrier(len(inputs))

    def call(x: np.ndarray) -> list[np.ndarray]:
        barrier.wait()
        return batcher.run_all(x)

    with ThreadPoolExecutor(len(inputs)) as pool:
        return list(pool.map(call, inputs))


def test_concurrent_calls_share_one_run_and_each_gets_its_own_rows() -> None:
    model = _Recorder()
    batcher = Batcher(model, max_wait=0.2)  # type: ignore[arg-type]
    inputs = [np.full((n, 2, 3), float(k)) for k, n in enumerate((1, 3, 2, 4))]
    results = _together(batcher, inputs)
    assert model.batches == [(10, 2, 3)]
    for x, (doubled, sums) in zip(inputs, results, strict=True):
        assert np.array_equal(doubled, x * 2)
        assert np.array_equal(sums, x.reshape(len(x), -1).sum(axis=1))
    assert batcher.runs == 1 and batcher.calls == 4


def test_pictures_of_other_sizes_run_separately_and_big_rounds_are_chunked() -> None:
    model = _Recorder()
    batcher = Batcher(model, max_wait=0.2, max_rows=4)  # type: ignore[arg-type]
    inputs = [np.zeros((2, 8)), np.zeros((3, 5)), np.zeros((2, 8)), np.zeros((2, 8))]
    results = _together(batcher, inputs)
    assert sorted(model.batches) == [(2, 8), (3, 5), (4, 8)]
    assert [r[0].shape for r in results] == [x.shape for x in inputs]


def test_a_failed_run_is_raised_in_every_caller_of_it() -> None:
    batcher = Batcher(_Recorder(fail=True), max_wait=0.2)  # type: ignore[arg-type]
    barrier = threading.Barrier(3)

    def call(_: int) -> str:
        barrier.wait()
        try:
            batcher.run_all(np.zeros((1, 4)))
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(call, range(3))) == ["model broke"] * 3


@pytest.mark.skipif(
    not (default_model_dir() / "block_corruption_light.onnx").exists(), reason="no model"
)
def test_the_shipped_model_gives_the_same_answers_batched_as_alone(models: ModelCache) -> None:
    model = models.model(MODEL_NAMES["light"])
    rng = np.random.default_rng(4)
    inputs = [rng.uniform(0, 255, (n, 3, 64, 96)).astype(np.float32) for n in (1, 2, 3)]
    alone = [model.run_all(x) for x in inputs]
    batcher = models.batcher(model)
    assert models.batcher(model) is batcher
    joined = _together(Batcher(model, max_wait=0.2), inputs)
    for a, b in zip(alone, joined, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
