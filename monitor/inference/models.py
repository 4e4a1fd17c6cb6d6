"""The models one process has loaded: owned by the runtime, shared by every channel.

A process creates one :class:`ModelCache` (the inference worker does, from the deployment
settings; ``vqm scan`` makes its own), hands it to the detectors it builds and closes it when
it stops. Every channel's detector of a kind then shares one ONNX Runtime session and its
memory, and one :class:`~monitor.inference.batching.Batcher` that joins their calls::

    models = ModelCache(model_dir=None, providers=settings.providers)   # None: shipped models
    model = models.model("audio_artifact")                # loaded once, checked against its card
    models.batcher(model).run(x)                          # joins concurrent callers' rows
    faces = models.optional("face_detector", LearnedFaces)   # None when missing: fall back
    models.loaded()                                       # {name: (version, provider)}
    models.close()

A new version of a loaded model (copied into the model directory) is loaded and checked
against its card beside the running one by :meth:`ModelCache.candidate`, kept aside with
:meth:`ModelCache.stage`, and put in place by :meth:`ModelCache.swap_staged`, which the
inference worker calls between segments: a segment runs on one version from start to end,
and nothing restarts (:mod:`monitor.inference.reload` drives this).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TypeVar

from monitor.inference.batching import Batcher
from monitor.inference.engine import ModelLoadError, OnnxModel, card_version, default_model_dir

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=OnnxModel)


class ModelCache:
    """One loaded copy of each model (per kind), its batcher, and their lifetime."""

    def __init__(
        self, model_dir: str | Path | None = None, providers: list[str] | None = None
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.providers = providers
        self._lock = threading.Lock()
        self._models: dict[tuple[type, str], OnnxModel | None] = {}
        self._batchers: dict[int, Batcher] = {}
        self._staged: dict[tuple[type, str], OnnxModel] = {}

    def model(self, name: str, kind: type[M] = OnnxModel) -> M:  # type: ignore[assignment]
        """Model ``name`` as ``kind`` (an :class:`OnnxModel` subclass with extra methods),
        loaded on first use; raises :class:`ModelLoadError` when it cannot be used."""
        with self._lock:
            key = (kind, name)
            if self._models.get(key) is None:
                self._models[key] = kind(name, self.model_dir, self.providers)
            return self._models[key]  # type: ignore[return-value]

    def optional(self, name: str, kind: type[M] = OnnxModel) -> M | None:  # type: ignore[assignment]
        """Like :meth:`model`, but None (warned once) when the model is missing or unusable:
        for models a detector can do without (it falls back to a classic method)."""
        with self._lock:
            key = (kind, name)
            if key not in self._models:
                try:
                    self._models[key] = kind(name, self.model_dir, self.providers)
                except ModelLoadError as exc:
                    logger.warning("%s is not available; carrying on without it: %s", name, exc)
                    self._models[key] = None
            return self._models[key]  # type: ignore[return-value]

    def batcher(self, model: OnnxModel) -> Batcher:
        """The one batcher in front of ``model`` (a model this cache loaded)."""
        with self._lock:
            if id(model) not in self._batchers:
                self._batchers[id(model)] = Batcher(model)
            return self._batchers[id(model)]

    def version(self, name: str) -> str | None:
        """The loaded model's version, else its card's: detections name a model before it
        is loaded, and after a reload they name the one that ran."""
        with self._lock:
            for (_, loaded_name), model in self._models.items():
                if loaded_name == name and model is not None:
                    return model.version
        return card_version(name, self.model_dir)

    def loaded(self) -> dict[str, tuple[str, str]]:
        """``{name: (version, provider)}`` of every model loaded (for /readyz and metrics)."""
        with self._lock:
            return {
                name: (model.version, model.provider)
                for (_, name), model in self._models.items()
                if model is not None
            }

    def current(self) -> dict[tuple[type, str], OnnxModel | None]:
        """Every model asked for, by (kind, name); None for an optional one that is missing."""
        with self._lock:
            return dict(self._models)

    def candidate(self, kind: type[M], name: str) -> M:
        """Load ``name`` afresh from the model directory and warm it up, outside the cache;
        raises :class:`ModelLoadError` when the files there cannot be used (blocking)."""
        model = kind(name, self.model_dir, self.providers)
        model.warm_up()
        return model

    def stage(self, kind: type, name: str, model: OnnxModel) -> None:
        """Keep ``model`` aside to replace (kind, name) at the next :meth:`swap_staged`."""
        with self._lock:
            self._staged[(kind, name)] = model

    def swap_staged(self) -> list[tuple[OnnxModel | None, OnnxModel]]:
        """Put staged models in place; ``(old, new)`` per swap. Call it between segments:
        a detector asks the cache for its model per segment, so the next one gets the new."""
        with self._lock:
            swapped = []
            for key, new in self._staged.items():
                old = self._models.get(key)
                self._models[key] = new
                if old is not None:
                    self._batchers.pop(id(old), None)
                swapped.append((old, new))
            self._staged.clear()
            return swapped

    def close(self) -> None:
        """Drop every session and batcher; the cache loads afresh if used again."""
        with self._lock:
            self._models.clear()
            self._batchers.clear()
            self._staged.clear()
