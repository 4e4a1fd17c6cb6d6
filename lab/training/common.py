"""What every learned model's training shares: seeding, metrics, ONNX export, model cards.

Training needs the ``train`` extra (torch); nothing under ``monitor`` outside this package may
import it, and this module imports it only inside the functions that train or export, so the
metrics and model-card helpers also serve evaluations on machines without torch. A model
leaves training as ``exported_models/<name>.onnx`` plus ``<name>.json``, the
card that :class:`monitor.inference.engine.OnnxModel` checks on every load.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.inference.engine import sha256_of

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

REPO_MODELS = Path(__file__).resolve().parents[2] / "exported_models"


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Same seed, same weights: Python, numpy and torch seeded; torch kept to ``threads``."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)


def default_threads() -> int:
    """Training shares a small machine: leave a core for everyone else unless told otherwise."""
    return int(os.environ.get("VQM_TRAIN_THREADS", max(1, (os.cpu_count() or 2) - 1)))


@contextmanager
def timed(what: str, into: dict[str, float] | None = None) -> Iterator[None]:
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    logger.info("%s: %.1f s", what, seconds)
    if into is not None:
        into[what] = round(seconds, 1)


# ----------------------------------------------------------------------------- metrics


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Rows are the true class, columns the predicted one."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth), np.asarray(predicted)), 1)
    return matrix


def balanced_accuracy(matrix: np.ndarray) -> float:
    """Mean per-class recall: a classifier that ignores a rare class cannot hide behind the
    common ones."""
    support = matrix.sum(axis=1)
    recalls = np.diag(matrix)[support > 0] / support[support > 0]
    return float(recalls.mean()) if recalls.size else 0.0


def classification_report(
    truth: np.ndarray, predicted: np.ndarray, classes: Sequence[str]
) -> dict[str, Any]:
    matrix = confusion_matrix(truth, predicted, len(classes))
    support = matrix.sum(axis=1)
    recall = np.diag(matrix) / np.maximum(support, 1)
    precision = np.diag(matrix) / np.maximum(matrix.sum(axis=0), 1)
    return {
        "samples": int(matrix.sum()),
        "accuracy": round(float(np.trace(matrix) / max(matrix.sum(), 1)), 4),
        "balanced_accuracy": round(balanced_accuracy(matrix), 4),
        "recall": {c: round(float(r), 4) for c, r in zip(classes, recall, strict=True)},
        "precision": {c: round(float(p), 4) for c, p in zip(classes, precision, strict=True)},
        "confusion_matrix": {
            "rows_true_columns_predicted": list(classes),
            "counts": matrix.tolist(),
        },
    }


# ----------------------------------------------------------------------------- export


def export_onnx(
    module: torch.nn.Module,
    examples: tuple[torch.Tensor, ...],
    path: Path,
    inputs: dict[str, dict[int, str]],
    outputs: dict[str, dict[int, str]],
    opset: int = 17,
) -> None:
    """Export in eval mode (TorchScript exporter: no extra dependencies) and check the file.

    ``inputs`` and ``outputs`` name the graph's tensors in order, each with its dynamic
    dimensions, e.g. ``{"audio": {0: "batch"}}``.
    """
    import torch

    module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            module,
            examples,
            str(path),
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes={**inputs, **outputs},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    _check_onnx(path)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or an empty one when there is no such file (a card or a
    training record not written yet)."""
    return json.loads(path.read_text()) if path.exists() else {}


def _check_onnx(path: Path) -> None:
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise RuntimeError(f"{path}: weights went to an external file; the card hashes one file")


def write_card(path: Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write ``<name>.json`` beside the ONNX file, with its size and sha256 filled in."""
    onnx_path = path.with_suffix(".onnx")
    data = onnx_path.read_bytes()
    card = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **card,
        "file": onnx_path.name,
        "file_size": len(data),
        "sha256": sha256_of(data),
    }
    path.write_text(json.dumps(card, indent=2) + "\n")
    return card
