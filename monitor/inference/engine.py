"""The one way the runtime runs a learned model: ONNX Runtime, checked against its model card.

A model ships as ``<name>.onnx`` beside ``<name>.json`` (the card: inputs, classes, thresholds,
metrics, sha256). Loading refuses a file whose bytes or input signature disagree with its card,
so a half-copied or swapped model fails at start-up with one line instead of giving quiet nonsense
on air::

    model = OnnxModel("audio_artifact")          # the shipped model, best available provider
    model.warm_up()                               # first run allocates; do it before "ready"
    probs = model.run(np.zeros((4, 32000), np.float32))
    model.version, model.provider                 # for detections and the model-info metric

Torch is never imported here: training lives in ``lab.training``. Which models a process has
loaded, and their sessions' lifetime, belong to the runtime's
:class:`~monitor.inference.models.ModelCache`.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.core.errors import VqmError

logger = logging.getLogger(__name__)

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_DTYPES = {"float32": "tensor(float)", "float16": "tensor(float16)", "int64": "tensor(int64)"}


class ModelLoadError(VqmError, RuntimeError):
    """A model that cannot be used: missing, corrupt, or not the model its card describes."""


class TensorSpec(BaseModel):
    """One input or output as the card states it; string dims are dynamic (e.g. ``"batch"``)."""

    model_config = ConfigDict(extra="allow")

    name: str
    shape: list[int | str]
    dtype: str = "float32"


class ModelCard(BaseModel):
    """The fields the runtime relies on; the card may carry more (data recipe, metrics...)."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)
    classes: list[str] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=dict)
    sha256: str
    file_size: int | None = None


def default_model_dir() -> Path:
    """The models shipped inside the package (``exported_models/``)."""
    return Path(str(importlib.resources.files("exported_models")))


def choose_providers(wanted: list[str] | None = None) -> list[str]:
    """Wanted providers this ONNX Runtime build has, in the wanted order.

    ``None`` means :data:`PROVIDER_ORDER` (TensorRT, CUDA, CPU); the deployment setting
    ``VQM_ONNX_PROVIDERS`` reaches here through the runtime's model cache. A list that keeps
    nothing is an error naming what was asked.
    """
    wanted = list(PROVIDER_ORDER) if wanted is None else wanted
    available = set(ort.get_available_providers())
    chosen = [p for p in wanted if p in available]
    if not chosen:
        raise ModelLoadError(f"none of the ONNX providers {wanted} is available ({available})")
    return chosen


def load_card(path: Path) -> ModelCard:
    try:
        return ModelCard.model_validate(json.loads(path.read_text()))
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{path}: model card missing") from exc
    except (OSError, ValueError, ValidationError) as exc:
        reason = str(exc).splitlines()[0]
        raise ModelLoadError(f"{path}: model card unreadable: {reason}") from exc


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_model(path: Path, card: ModelCard) -> bytes:
    """The model's bytes, only if they are the bytes the card was written for."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{path}: model file missing") from exc
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read model: {exc.strerror}") from exc
    digest = sha256_of(data)
    if digest != card.sha256:
        raise ModelLoadError(
            f"{path}: sha256 {digest[:12]}... does not match the card's {card.sha256[:12]}..."
        )
    return data


def _check_inputs(path: Path, session: ort.InferenceSession, card: ModelCard) -> None:
    """The graph's inputs must be the card's: same names, ranks, fixed dims and dtypes."""
    actual = {i.name: i for i in session.get_inputs()}
    if set(actual) != {spec.name for spec in card.inputs}:
        raise ModelLoadError(f"{path}: inputs {sorted(actual)} differ from the card's")
    for spec in card.inputs:
        node = actual[spec.name]
        if node.type != _DTYPES.get(spec.dtype):
            raise ModelLoadError(
                f"{path}: input {spec.name} is {node.type}, card says {spec.dtype}"
            )
        if not _shapes_agree(spec.shape, list(node.shape)):
            raise ModelLoadError(
                f"{path}: input {spec.name} has shape {node.shape}, card says {spec.shape}"
            )


def _shapes_agree(card: list[int | str], graph: list[Any]) -> bool:
    """The graph's declared shape is the card's: fixed dims equal, dynamic dims dynamic."""
    if len(card) != len(graph):
        return False
    for want, have in zip(card, graph, strict=True):
        if isinstance(want, int) and want != have:
            return False
        if isinstance(want, str) and isinstance(have, int):
            return False
    return True


def _fits(card: list[int | str], shape: tuple[int, ...]) -> bool:
    """A concrete array shape fits the card: same rank, fixed dims equal, dynamic dims free."""
    if len(card) != len(shape):
        return False
    return all(
        not isinstance(want, int) or want == have for want, have in zip(card, shape, strict=True)
    )


def card_version(name: str, model_dir: str | Path | None = None) -> str | None:
    """The version on a model's card, so detections can name a model before it is loaded."""
    directory = Path(model_dir) if model_dir is not None else default_model_dir()
    try:
        card = json.loads((directory / f"{name}.json").read_text())
        return str(card["version"])
    except (OSError, ValueError, KeyError):
        return None


class OnnxModel:
    """One ONNX model checked against its card, on the best provider this machine has.

    ``model_dir`` defaults to the shipped models; ``providers`` to ``VQM_ONNX_PROVIDERS``
    (TensorRT, CUDA, CPU; unavailable ones are skipped). ``threads`` bounds ONNX Runtime's
    intra-op pool: detectors run beside decoding on a few cores, so a small pool is faster
    overall than one that takes every core.
    """

    def __init__(
        self,
        name: str,
        model_dir: str | Path | None = None,
        providers: list[str] | None = None,
        threads: int = 2,
    ) -> None:
        directory = Path(model_dir) if model_dir is not None else default_model_dir()
        self.path = directory / f"{name}.onnx"
        self.card = load_card(directory / f"{name}.json")
        if self.card.name != name:
            raise ModelLoadError(f"{self.path}: card is for model {self.card.name!r}")
        data = _read_model(self.path, self.card)
        self._session = self._open(data, choose_providers(providers), threads)
        _check_inputs(self.path, self._session, self.card)
        self._input = self.card.inputs[0]
        logger.info("loaded %s %s on %s", name, self.version, self.provider)

    def _open(self, data: bytes, providers: list[str], threads: int) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep rather than spin: the cores are shared with decoding and
        # the other channels' detectors, which a spinning wait takes CPU time from.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # provider fallback chatter is not an operator's concern
        try:
            return ort.InferenceSession(data, sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own untyped errors for corrupt graphs
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelLoadError(f"{self.path}: not a loadable ONNX model: {reason}") from exc

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> str:
        return self.card.version

    @property
    def provider(self) -> str:
        """The provider that runs the graph (the first one the session kept)."""
        return str(self._session.get_providers()[0])

    @property
    def classes(self) -> list[str]:
        return self.card.classes

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        """The card's input shape with every dynamic dim set to ``batch``."""
        return tuple(d if isinstance(d, int) else batch for d in self._input.shape)

    def warm_up(self) -> None:
        """One dummy batch, so the first real segment does not pay for allocation and tuning."""
        self.run(np.zeros(self.input_shape(1), dtype=self._input.dtype))

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The first output for one batch; the batch must match the card's fixed dims."""
        return self.run_all(batch)[0]

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output, in the card's order, for models with more than one (map and head)."""
        batch = np.ascontiguousarray(batch, dtype=self._input.dtype)
        if not _fits(self._input.shape, batch.shape):
            fixed = [d if isinstance(d, int) else "any" for d in self._input.shape]
            raise ValueError(f"{self.name}: batch shape {batch.shape}, expected {fixed}")
        outputs = self._session.run(None, {self._input.name: batch})
        return [np.asarray(o) for o in outputs]
