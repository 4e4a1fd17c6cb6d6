"""Hot reload: a new model version copied into the model directory is used without a restart.

The watcher looks at the files of every model the cache has loaded every ``interval``
seconds, in a thread (hashing a model file is no work for the event loop). When a model's
card or file changed (size or mtime), stayed so for one more look (a deploy copying the model
and then its card is not caught half way), and the bytes on disk are not the ones running, it loads
the new version beside the running one, checked against its card (sha256, input spec, a
graph that loads) and warmed up, and stages it; the worker swaps staged models in between
segments (:meth:`~monitor.inference.models.ModelCache.swap_staged`). A refused version is
logged and counted (``vqm_model_reload_refusals``), the running one stays, and the same
files are not tried again until they change (a copy in progress is tried once it settles)::

    watcher = ModelWatcher(models, metrics, interval=5.0)
    task = asyncio.create_task(watcher.run(stop))   # the worker runs it beside its poll loop
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from monitor.core.metrics import Metrics
from monitor.core.retry import pause
from monitor.inference.engine import ModelLoadError, OnnxModel, load_card
from monitor.inference.models import ModelCache

logger = logging.getLogger(__name__)

Fingerprint = tuple[tuple[int, int] | None, tuple[int, int] | None]


def fingerprint(directory: Path, name: str) -> Fingerprint:
    """(mtime_ns, size) of the card and the model file; None for one that is missing."""

    def stat(path: Path) -> tuple[int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    return stat(directory / f"{name}.json"), stat(directory / f"{name}.onnx")


def file_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


class ModelWatcher:
    """Stages new versions of the cache's models; see the module docstring."""

    def __init__(self, models: ModelCache, metrics: Metrics, interval: float = 5.0) -> None:
        if interval <= 0:
            raise ValueError(f"model reload interval must be > 0 s, got {interval}")
        self.models = models
        self.metrics = metrics
        self.interval = interval
        self._seen: dict[tuple[type, str], Fingerprint] = {}  # files last acted on
        self._settling: dict[tuple[type, str], Fingerprint] = {}  # files seen once, changed

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await pause(stop, self.interval)
            if not stop.is_set():
                await asyncio.to_thread(self.check)

    def check(self) -> list[str]:
        """Look once (blocking); the names of the models staged."""
        staged = []
        for (kind, name), running in self.models.current().items():
            if running is None:
                continue  # an optional model that was missing stays off until a restart
            if self._check_one(kind, name, running):
                staged.append(name)
        return staged

    def _check_one(self, kind: type[OnnxModel], name: str, running: OnnxModel) -> bool:
        directory = self.models.model_dir
        key, seen = (kind, name), fingerprint(directory, name)
        if self._seen.get(key) == seen:
            return False
        if self._settling.get(key) != seen:
            self._settling[key] = seen  # act when the next look finds the files as they are
            return False
        self._seen[key] = seen
        if self._unchanged(directory, name, running):
            return False
        try:
            candidate = self.models.candidate(kind, name)
        except ModelLoadError as exc:
            self.metrics.model_reload_refusals.labels(model=name).inc()
            logger.error("new %s refused; %s %s stays in use: %s", name, name, running.version, exc)
            return False
        self.models.stage(kind, name, candidate)
        logger.info("%s %s staged to replace %s", name, candidate.version, running.version)
        return True

    def _unchanged(self, directory: Path, name: str, running: OnnxModel) -> bool:
        """Whether the files on disk are the ones running (a touch, or a copy of the same)."""
        try:
            card = load_card(directory / f"{name}.json")
        except ModelLoadError:
            return False  # let the candidate load say why, counted as a refusal
        same_card = (card.sha256, card.version) == (running.card.sha256, running.version)
        return same_card and file_sha256(directory / f"{name}.onnx") == running.card.sha256
