"""One ONNX Runtime call for the frames of several segments and channels.

The inference worker analyses the segments of different channels at the same time, each in its
own thread. Without help each thread would call the model with its own few frames; a GPU (and,
less so, a CPU) does far more work per second with one larger batch. A :class:`Batcher` sits
in front of one model: the first caller of a round waits ``max_wait`` seconds for others,
then runs every waiting input of the same picture size as one batch and hands each caller
its own rows::

    batcher = models.batcher(model)        # the runtime's one batcher for this model
    region, frame = batcher.run_all(x)      # x: (n, 3, H, W); same rows back as model.run_all

Inputs of different shapes (channels of different sizes) form separate batches. A failure of
the joined run is raised in every caller that was part of it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from monitor.inference.engine import OnnxModel

MAX_WAIT_S = 0.003  # what a lone caller pays for the chance of company
MAX_ROWS = 64


@dataclass
class _Call:
    x: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    outputs: list[np.ndarray] | None = None
    error: BaseException | None = None


class Batcher:
    """Joins concurrent ``run_all`` calls on one model into one run per round and shape."""

    def __init__(
        self, model: OnnxModel, max_wait: float = MAX_WAIT_S, max_rows: int = MAX_ROWS
    ) -> None:
        self.model = model
        self.max_wait = max_wait
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._waiting: dict[tuple[int, ...], list[_Call]] = {}
        self.runs = 0  # model calls made, for tests and metrics
        self.calls = 0  # run_all calls served

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.run_all(x)[0]

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        call = _Call(np.ascontiguousarray(x))
        key = tuple(call.x.shape[1:])
        with self._lock:
            self.calls += 1
            group = self._waiting.setdefault(key, [])
            group.append(call)
            leader = len(group) == 1
        if leader:
            time.sleep(self.max_wait)
            with self._lock:
                group = self._waiting.pop(key)
            self._run(group)
        call.done.wait()
        if call.error is not None:
            raise call.error
        assert call.outputs is not None
        return call.outputs

    def _run(self, group: list[_Call]) -> None:
        """Run the group in chunks of at most ``max_rows`` rows (a call is never split)."""
        chunk: list[_Call] = []
        for call in group:
            if chunk and sum(len(c.x) for c in chunk) + len(call.x) > self.max_rows:
                self._run_chunk(chunk)
                chunk = []
            chunk.append(call)
        if chunk:
            self._run_chunk(chunk)

    def _run_chunk(self, chunk: list[_Call]) -> None:
        try:
            joined = chunk[0].x if len(chunk) == 1 else np.concatenate([c.x for c in chunk])
            outputs = self.model.run_all(joined)
            with self._lock:  # leaders of other shapes run at the same time
                self.runs += 1
            start = 0
            for call in chunk:
                rows = slice(start, start + len(call.x))
                call.outputs = [o[rows] for o in outputs]
                start += len(call.x)
        except Exception as exc:  # every caller of the run gets it, raised in its own thread
            for call in chunk:
                call.error = exc
        finally:
            for call in chunk:
                call.done.set()
