"""``vqm retrain block_corruption``: refit the region head on operator labels, behind a gate.

What it learns from:

* **operator labels**, each a *unit* (an alert marked real defect / false alarm, with the
  frames of its span from the sample store; or a labelled annotation candidate, one frame):
  a false alarm says no region is corrupted, a real defect with marked patches says those are
  and the rest are not, a real defect on the whole frame confirms the regions the model flagged;
* **replayed training data**, frames of the lab's training splits (``real_train``, ``train``
  in the data folder), so the head does not forget what it was trained on for the sake of
  one channel's content.

The trunk stays frozen and only the 1x1 region head is refitted (:mod:`monitor.app.head_fit`),
which needs no deep learning framework and minutes of CPU. A quarter of the units (by a hash
of their key, when there are at least four) are held back from the fit.

The gate (thresholds in the model card's ``retraining_gate``, defaults below) compares the
refitted head with the running one at the card's decision thresholds, on the held-out real
test split (``real_test`` in the data folder: frame F1 and false alarms on frames without
corruption) and on the held-back units (false alarms flagged, real defects found). Only when
nothing regresses does it write a new version (patch number up) of the model and its card into
the model directory, where workers pick it up between segments (hot reload); otherwise it
says why and leaves the running model alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from monitor.app.block_features import (
    FrameView,
    at_recall,
    cell_mask,
    frame_views,
    labels_of,
    region_targets,
    scores_under,
)
from monitor.app.head_fit import RegionLabels, fit_head
from monitor.inference.detectors.block_corruption import model_name_for
from monitor.inference.engine import OnnxModel, sha256_of
from monitor.inference.graph_edit import region_head, with_region_head

logger = logging.getLogger(__name__)

REPLAY_SPLITS = ("real_train", "train")
VALIDATION_SPLIT = "real_validation"
TEST_SPLIT = "real_test"
REPLAY_FRAMES = 400  # frames drawn from the replay splits (all of them would take an hour)
OPERATOR_WEIGHT = (
    10.0  # an operator's region counts as ten replayed ones: it is this plant's content
)
HOLD_BACK_EVERY = 4
GATE = {
    "test_f1_drop": 0.02,
    "test_false_alarm_rise": 0.005,
    "held_back_false_alarm_rise": 0.0,
    "held_back_recall_drop": 0.0,
}


class RetrainError(RuntimeError):
    """Retraining cannot run (no test split, a model without features, no labels)."""


@dataclass(eq=False)  # frames are arrays: units compare by identity
class Unit:
    """One operator answer and the frames (RGB, as the detector judges them) it speaks for."""

    key: str
    defect: bool
    frames: list[np.ndarray]
    grid: int | None = None
    cells: list[tuple[int, int]] = field(default_factory=list)

    @property
    def held_back(self) -> bool:
        return int(hashlib.sha1(self.key.encode()).hexdigest(), 16) % HOLD_BACK_EVERY == 0


@dataclass
class Outcome:
    accepted: bool
    reasons: list[str]
    figures: dict[str, Any]
    version: str | None = None
    path: Path | None = None


def npz_groups(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """A lab split file (``<size>/<array>`` keys: rgb, regions, frames, undamaged)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path) as data:
        for key in data.files:
            size, name = key.split("/")
            out.setdefault(size, {})[name] = data[key]
    return out


def split_views(
    model: OnnxModel, path: Path, limit: int | None, rng: np.random.Generator
) -> tuple[list[FrameView], list[np.ndarray], np.ndarray]:
    """(views, region truth, frame truth) of a split, ``limit`` frames drawn at random."""
    views: list[FrameView] = []
    regions: list[np.ndarray] = []
    frames: list[np.ndarray] = []
    groups = npz_groups(path)
    total = sum(len(g["rgb"]) for g in groups.values())
    share = 1.0 if limit is None else min(1.0, limit / max(total, 1))
    for g in groups.values():
        pick = np.flatnonzero(rng.random(len(g["rgb"])) < share)
        views.extend(frame_views(model, g["rgb"][pick]))
        regions.extend(g["regions"][pick].astype(bool))
        frames.append(g["frames"][pick].astype(bool))
    return views, regions, np.concatenate(frames) if frames else np.zeros(0, bool)


def unit_labels(model: OnnxModel, unit: Unit, threshold: float) -> RegionLabels:
    parts = []
    for view in frame_views(model, np.stack(unit.frames)) if unit.frames else []:
        marked = None
        if unit.grid is not None and unit.cells:
            marked = cell_mask(view.probs.shape, unit.grid, unit.cells)
        targets, known = region_targets(view, unit.defect, threshold, marked)
        parts.append(labels_of(view, targets, known, OPERATOR_WEIGHT))
    return RegionLabels.join(parts)


def _f1(scores: np.ndarray, truth: np.ndarray, t: float) -> tuple[float, float]:
    """(frame F1, false alarms on frames without corruption) at threshold t."""
    flagged = scores >= t
    tp = float((flagged & truth).sum())
    precision = tp / max(float(flagged.sum()), 1.0)
    recall = tp / max(float(truth.sum()), 1.0)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return f1, float(flagged[~truth].mean()) if (~truth).any() else 0.0


Head = tuple[np.ndarray, float, float]  # weight, bias, region threshold


def matched_threshold(
    model: OnnxModel, data_dir: Path, running: tuple[np.ndarray, float],
    refitted: tuple[np.ndarray, float], decision: tuple[float, float], rng: np.random.Generator,
) -> float:  # fmt: skip
    """The refitted head's region threshold: the one that keeps the running head's frame
    recall on the validation split (a refit changes the probabilities' calibration, so the
    running threshold would mean something else). The running one when there is none."""
    t, area = decision
    path = data_dir / f"{VALIDATION_SPLIT}.npz"
    if not path.exists():
        return t
    views, _, truth = split_views(model, path, REPLAY_FRAMES, rng)
    if not truth.any():
        return t
    recall = float((scores_under(views, *running, area)[truth] >= t).mean())
    return at_recall(scores_under(views, *refitted, area), truth, recall).threshold


def _held_back_figures(
    model: OnnxModel, units: list[Unit], heads: dict[str, Head], area: float
) -> dict[str, dict[str, float | None]]:
    """Per head: share of held-back false-alarm frames flagged, of real-defect frames found."""
    views = {u.key: frame_views(model, np.stack(u.frames)) for u in units if u.frames}
    out: dict[str, dict[str, float | None]] = {}
    for name, (w, b, t) in heads.items():
        flagged = {k: scores_under(v, w, b, area) >= t for k, v in views.items()}
        clean = [f for u in units if not u.defect for f in flagged.get(u.key, [])]
        defect = [f for u in units if u.defect for f in flagged.get(u.key, [])]
        out[name] = {
            "false_alarms": float(np.mean(clean)) if clean else None,
            "recall": float(np.mean(defect)) if defect else None,
        }
    return out


def gate(figures: dict[str, Any], limits: dict[str, float]) -> list[str]:
    """Why the refitted head regresses; empty when it does not."""
    reasons = []
    old, new = figures["test"]["running"], figures["test"]["refitted"]
    if new["f1"] < old["f1"] - limits["test_f1_drop"]:
        reasons.append(f"test F1 falls from {old['f1']:.3f} to {new['f1']:.3f}")
    if new["false_alarms"] > old["false_alarms"] + limits["test_false_alarm_rise"]:
        reasons.append(
            f"test false alarms rise from {old['false_alarms']:.4f} to {new['false_alarms']:.4f}"
        )
    held = figures.get("held_back")
    if held:
        o, n = held["running"], held["refitted"]
        if o["false_alarms"] is not None and n["false_alarms"] > (
            o["false_alarms"] + limits["held_back_false_alarm_rise"]
        ):
            was, now = o["false_alarms"], n["false_alarms"]
            reasons.append(f"held-back false alarms rise from {was:.3f} to {now:.3f}")
        if o["recall"] is not None and n["recall"] < o["recall"] - limits["held_back_recall_drop"]:
            reasons.append(f"held-back recall falls from {o['recall']:.3f} to {n['recall']:.3f}")
    return reasons


def retrain(
    model_dir: Path, data_dir: Path, units: list[Unit], seed: int = 0, dry_run: bool = False
) -> Outcome:
    """Refit, gate, and (unless refused or ``dry_run``) write the new version."""
    if not units:
        raise RetrainError("no operator labels for block_corruption: nothing to learn from")
    test_path = data_dir / f"{TEST_SPLIT}.npz"
    if not test_path.exists():
        raise RetrainError(f"no held-out test split at {test_path}: cannot gate a retraining")
    # the model the detector runs by default here: int8 only where the CPU computes it exactly
    model = OnnxModel(model_name_for("auto"), model_dir)
    t, area = model.card.thresholds.get("region", 0.5), model.card.thresholds.get("area", 0.07)
    w0, b0 = region_head(model.path.read_bytes())
    rng = np.random.default_rng(seed)
    holding = len(units) >= HOLD_BACK_EVERY
    trained = [u for u in units if not (holding and u.held_back)]
    held = [u for u in units if holding and u.held_back]
    parts = [unit_labels(model, u, t) for u in trained]
    replayed = 0
    for split in REPLAY_SPLITS:
        path = data_dir / f"{split}.npz"
        if path.exists():
            views, regions, _ = split_views(model, path, REPLAY_FRAMES // len(REPLAY_SPLITS), rng)
            parts += [
                labels_of(v, r.astype(float), np.ones(r.shape, bool))
                for v, r in zip(views, regions, strict=True)
            ]
            replayed += len(views)
    w, b = fit_head(w0, b0, RegionLabels.join(parts))
    t_new = matched_threshold(model, data_dir, (w0, b0), (w, b), (t, area), rng)
    views, _, truth = split_views(model, test_path, None, rng)
    figures: dict[str, Any] = {
        "units": {"trained": len(trained), "held_back": len(held)},
        "replayed_frames": replayed,
        "region_threshold": {"running": t, "refitted": round(t_new, 4)},
        "test": {},
    }
    heads = {"running": (w0, b0, t), "refitted": (w, b, t_new)}
    for name, (ww, bb, tt) in heads.items():
        f1, fa = _f1(scores_under(views, ww, bb, area), truth, tt)
        figures["test"][name] = {"f1": round(f1, 4), "false_alarms": round(fa, 4)}
    if held:
        figures["held_back"] = _held_back_figures(model, held, heads, area)
    limits = {**GATE, **dict(getattr(model.card, "retraining_gate", None) or {})}
    reasons = gate(figures, limits)
    if reasons or dry_run:
        return Outcome(False, reasons or ["dry run: nothing written"], figures)
    version, path = export_head(model, (w, b, t_new), figures, limits, model_dir)
    return Outcome(True, [], figures, version, path)


def next_version(version: str) -> str:
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return f"{version}.1"
    return f"{parts[0]}.{parts[1]}.{int(parts[2]) + 1}"


def export_head(
    model: OnnxModel, head: Head, figures: dict[str, Any], limits: dict[str, float],
    model_dir: Path,
) -> tuple[str, Path]:  # fmt: skip
    """The model with its new head and a card naming the version it came from; the graph is
    written first and the card last (the watcher loads a pair that matches)."""
    w, b, t = head
    data = with_region_head(model.path.read_bytes(), w, b)
    card = json.loads(model.path.with_suffix(".json").read_text())
    version = next_version(model.version)
    card.update(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        version=version,
        sha256=sha256_of(data),
        file_size=len(data),
        retraining_gate=limits,
        thresholds={**card.get("thresholds", {}), "region": round(t, 4)},
    )
    card.setdefault("history", []).append(
        {
            "version": version,
            "change": f"region head refitted on operator labels from {model.version}",
            "figures": figures,
        }
    )
    onnx_path = model_dir / model.path.name  # the model it was refitted from, replaced
    _write_atomic(onnx_path, data)
    _write_atomic(onnx_path.with_suffix(".json"), (json.dumps(card, indent=2) + "\n").encode())
    return version, onnx_path


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
