"""audio_artifact's data splits and held-out evaluation: numpy and ONNX Runtime, no torch.

Kept apart from the training code so ``vqm eval audio_artifact`` scores the shipped model on a
machine without the ``train`` extra, exactly as the runtime engine loads it.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from lab.synth import audio_defects
from lab.synth.audio_defects import CLASSES, MARGIN, RECIPE, labelled_window
from lab.synth.speech import SpeechPool
from lab.training.common import (
    REPO_MODELS,
    classification_report,
    default_threads,
    timed,
    write_card,
)
from monitor.app.synthetic.audio import render_audio
from monitor.app.synthetic.scenes import ScenePlan
from monitor.inference.detectors.audio_artifact import (
    MODEL_NAME,
    MODEL_RATE,
    cut_windows,
    decide,
    to_model_rate,
)
from monitor.inference.engine import OnnxModel
from monitor.inference.models import ModelCache

SAMPLES = MODEL_RATE  # one second
SPLITS = {"train": 0, "validation": 1, "heldout": 2}


class TrainSettings(BaseModel):
    """Everything that decides the weights; recorded in the model card."""

    seed: int = 0
    train_per_class: int = Field(default=500, ge=10, description="Synthetic windows per class.")
    validation_per_class: int = Field(default=300, ge=10)
    heldout_per_class: int = Field(default=500, ge=10)
    speech_clips: int = Field(default=300, description="espeak clips in the training pool.")
    heldout_speech_clips: int = Field(default=120)
    real_train_per_class: int = Field(default=2000, ge=0, description="Real defect windows.")
    real_train_none: int = Field(default=4000, ge=0, description="Real clean windows.")
    real_validation_per_class: int = Field(default=300, ge=10)
    real_test_per_class: int = Field(default=500, ge=10)
    init: str | None = Field(
        default="exported_models/audio_artifact.onnx",
        description="Weights to fine-tune from (an exported model); None trains from scratch.",
    )
    # Defect probability that makes a clean train window a hard negative (default: the init
    # model's card threshold).
    hard_negative_threshold: float | None = None
    epochs: int = 12
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    gain_jitter_db: float = Field(default=6.0, description="Random level change per example.")
    time_budget_s: float = Field(default=1500.0, description="Stop after the epoch past this.")
    threads: int = Field(default_factory=default_threads)
    workers: int = Field(default=1, description="Processes generating examples.")


def _example(args: tuple[int, int, int, str, int]) -> np.ndarray:
    """One 32 kHz window: generated at 48 kHz with margins, resampled, margins cut."""
    split, seed, index, label, pool_size = args
    rng = np.random.default_rng([split, seed, index])
    audio = labelled_window(rng, label, _pool(split, seed, pool_size))
    x = to_model_rate(audio, audio_defects.RATE)
    skip = int(round(MARGIN * MODEL_RATE))
    return x[skip : skip + SAMPLES]


_POOLS: dict[tuple[int, int], SpeechPool] = {}


def _pool(split: int, seed: int, size: int) -> SpeechPool:
    """Training and validation share the training voices; held-out has its own voices and
    texts (the pool seed differs too, so no text repeats)."""
    heldout = split == SPLITS["heldout"]
    key = (int(heldout), seed)
    if key not in _POOLS:
        _POOLS[key] = SpeechPool(
            seed=seed + (1_000_003 if heldout else 0), size=size, heldout=heldout
        )
    return _POOLS[key]


def make_split(
    split: str, per_class: int, seed: int, pool_size: int, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(windows (n, 32000) float32, labels (n,)) with classes interleaved."""
    code = SPLITS[split]
    labels = np.arange(per_class * len(CLASSES)) % len(CLASSES)
    jobs = [(code, seed, i, CLASSES[c], pool_size) for i, c in enumerate(labels)]
    _pool(code, seed, pool_size).clips()  # render once, before workers fork
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            windows = pool.map(_example, jobs, chunksize=64)
    else:
        windows = [_example(job) for job in jobs]
    return np.stack(windows).astype(np.float32), labels.astype(np.int64)


def cached_split(
    out_dir: Path, split: str, per_class: int, seed: int, pool_size: int, workers: int
) -> tuple[np.ndarray, np.ndarray]:
    path = out_dir / f"{split}-s{seed}-n{per_class}.npz"
    if path.exists():
        with np.load(path) as data:
            return data["x"], data["y"]
    with timed(f"generate {split} ({per_class} per class)"):
        x, y = make_split(split, per_class, seed, pool_size, workers)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y)
    return x, y


def _decisions(probs: np.ndarray, threshold: float) -> np.ndarray:
    """The detector's own rule (best defect class if it reaches the threshold, else none)."""
    return np.array([CLASSES.index(label) for label, _ in decide(probs, list(CLASSES), threshold)])


def evaluate(
    models_dir: str | Path = REPO_MODELS,
    out_dir: str | Path | None = None,
    seed: int = 0,
    per_class: int | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Score the exported ONNX model (the shipped artifact, through the runtime engine) on the
    held-out split; writes the metrics into the card unless ``write`` is False."""
    models = Path(models_dir)
    card_path = models / f"{MODEL_NAME}.json"
    card = json.loads(card_path.read_text())
    settings = TrainSettings(**card["training"]["settings"])
    per_class = per_class or card["data"]["examples"]["heldout"] // len(CLASSES)
    work = Path(out_dir) if out_dir else default_out_dir()
    x, y = cached_split(
        work, "heldout", per_class, seed, settings.heldout_speech_clips, settings.workers
    )
    model = OnnxModel(MODEL_NAME, models, providers=["CPUExecutionProvider"], threads=1)
    started = time.perf_counter()
    probs = np.concatenate([model.run(x[i : i + 64]) for i in range(0, len(x), 64)])
    seconds = time.perf_counter() - started
    threshold = float(card["thresholds"]["defect"])
    metrics = classification_report(y, _decisions(probs, threshold), CLASSES)
    metrics["synthetic_channel_flagged_windows"] = channel_false_alarms(model, threshold)
    metrics.update(
        {
            "threshold": threshold,
            "target_balanced_accuracy": 0.986,
            "target_met": metrics["balanced_accuracy"] >= 0.986,
            "cpu_ms_per_window": round(1000 * seconds / len(x), 2),
        }
    )
    if not metrics["target_met"]:
        metrics["note"] = (
            f"balanced accuracy {metrics['balanced_accuracy']} is below the 0.986 target; "
            f"most errors: {_worst_confusion(metrics)}"
        )
    if write:
        card["heldout_metrics"] = metrics
        write_card(
            card_path,
            {k: v for k, v in card.items() if k not in ("file", "file_size", "sha256")},
        )
    return metrics


def _worst_confusion(metrics: dict[str, Any]) -> str:
    """The pair of classes most often taken for each other, both ways, from the matrix."""
    counts = np.asarray(metrics["confusion_matrix"]["counts"])
    both = counts + counts.T
    np.fill_diagonal(both, 0)
    i, j = np.unravel_index(int(both.argmax()), both.shape)
    return f"{CLASSES[i]} <-> {CLASSES[j]} ({int(both[i, j])} of {int(both.sum()) // 2} errors)"


def channel_false_alarms(model: OnnxModel, threshold: float, plans: int = 5) -> float:
    """Share of one-second windows (hop 0.5 s) flagged over 60 s of each of ``plans``
    held-out synthetic channel plans: clean programme, so every flag is a false alarm."""
    low = RECIPE["channel_plan_seeds"]["heldout"][0]
    flagged = total = 0
    for seed in range(low + 500_000, low + 500_000 + plans):
        audio = render_audio(ScenePlan(seed=seed, fps=25), 0, 60 * audio_defects.RATE)
        windows = cut_windows(to_model_rate(audio, audio_defects.RATE), MODEL_RATE, 0.5)
        labels = decide(model.run(windows.batch), model.classes, threshold)
        flagged += sum(label != "none" for label, _ in labels)
        total += len(labels)
    return round(flagged / total, 4)


TARGET_BALANCED_ACCURACY = 0.986
TARGET_ALERTS_PER_HOUR = 0.0


def real_evaluate(
    models_dir: str | Path = REPO_MODELS,
    out_dir: str | Path | None = None,
    seed: int = 0,
    split: str = "test",
) -> dict[str, Any]:
    """The model on real programme: balanced accuracy over the five classes on ``split``'s
    windows (real defects mixed into the catalogue's sound), and the alerts the detector
    opens at its shipped defaults, ``min_duration`` included, over every second of that
    split's clean sound. Empty when the real catalogue was never fetched."""
    from lab.training import audio_artifact_real as real_data

    if not real_data.split_items(split):
        return {"skipped": f"no real {split}-split sound catalogued on this machine"}
    models = Path(models_dir)
    card = json.loads((models / f"{MODEL_NAME}.json").read_text())
    settings = TrainSettings(**card["training"]["settings"])
    per_class = (
        settings.real_test_per_class if split == "test" else settings.real_validation_per_class
    )
    work = Path(out_dir) if out_dir else default_out_dir()
    x, y = real_data.split_windows(work, split, per_class, seed)
    model = OnnxModel(MODEL_NAME, models, providers=["CPUExecutionProvider"], threads=1)
    probs = np.concatenate([model.run(x[i : i + 64]) for i in range(0, len(x), 64)])
    threshold = float(card["thresholds"]["defect"])
    metrics = classification_report(y, _decisions(probs, threshold), CLASSES)
    metrics["split"] = split
    metrics["threshold"] = threshold
    metrics["target_balanced_accuracy"] = TARGET_BALANCED_ACCURACY
    metrics["clean_programme"] = clean_alerts(models, real_data.load(split))
    metrics["target_alerts_per_hour"] = TARGET_ALERTS_PER_HOUR
    metrics["target_met"] = (
        metrics["balanced_accuracy"] >= TARGET_BALANCED_ACCURACY
        and metrics["clean_programme"]["alerts_per_hour"] <= TARGET_ALERTS_PER_HOUR
    )
    return metrics


CALIBRATION_GRID = (0.5, 0.6, 0.7, 0.8, 0.9)


def calibrate(
    models_dir: str | Path = REPO_MODELS, out_dir: str | Path | None = None, seed: int = 0
) -> dict[str, Any]:
    """Choose the card's threshold on the **validation** split only: of ``CALIBRATION_GRID``
    and the training's pick, the threshold with the fewest alerts over the clean validation
    programme (the detector at its defaults), then the best validation balanced accuracy,
    then the one nearest the training's pick. Writes it into the card."""
    from lab.training import audio_artifact_real as real_data

    models = Path(models_dir)
    card_path = models / f"{MODEL_NAME}.json"
    card = json.loads(card_path.read_text())
    settings = TrainSettings(**card["training"]["settings"])
    work = Path(out_dir) if out_dir else default_out_dir()
    x, y = real_data.split_windows(work, "validation", settings.real_validation_per_class, seed)
    model = OnnxModel(MODEL_NAME, models, providers=["CPUExecutionProvider"], threads=1)
    probs = np.concatenate([model.run(x[i : i + 64]) for i in range(0, len(x), 64)])
    programme = real_data.load("validation")
    picked = float(card["thresholds"]["defect"])
    rows = []
    for threshold in sorted({picked, *CALIBRATION_GRID}):
        report = classification_report(y, _decisions(probs, threshold), CLASSES)
        alerts = clean_alerts(models, programme, threshold)
        rows.append(
            {
                "threshold": threshold,
                "balanced_accuracy": report["balanced_accuracy"],
                "clean_alerts": alerts["alerts"],
                "clean_hours": alerts["hours"],
            }
        )
    best = min(
        rows,
        key=lambda r: (r["clean_alerts"], -r["balanced_accuracy"], abs(r["threshold"] - picked)),
    )
    card["thresholds"]["defect"] = best["threshold"]
    card["threshold_choice"] = {
        "split": "validation",
        "rule": "fewest alerts on clean validation programme, then best validation balanced "
        "accuracy, then nearest the training's pick",
        "training_pick": picked,
        "candidates": rows,
    }
    write_card(
        card_path, {k: v for k, v in card.items() if k not in ("file", "file_size", "sha256")}
    )
    return card["threshold_choice"]


def clean_alerts(
    models_dir: Path, programme: Any, threshold: float | None = None
) -> dict[str, Any]:
    """Alerts per hour over clean real programme: the detector at its shipped defaults (the
    card's threshold, ``sensitivity: normal``) on 2 s segments, joined by the alerting rule
    (``min_duration``), so every alert is a false one."""
    from lab.evaluation.audio_levels import run
    from monitor.inference.detectors.audio_artifact import AudioArtifactConfig

    config = AudioArtifactConfig(enabled=True, threshold=threshold)
    cache = _OneThreadCache(models_dir, ["CPUExecutionProvider"])
    alerts: list[dict[str, Any]] = []
    by_source: dict[str, int] = {}
    flagged = 0.0
    try:
        for item, audio in zip(programme.items, programme.audio, strict=True):
            found, spans = run(audio.astype(np.float64), config, cache)
            alerts += found
            by_source[item.source] = by_source.get(item.source, 0) + len(found)
            flagged += sum(s.end - s.start for s in spans)
    finally:
        cache.close()
    hours = programme.seconds / 3600
    by_label: dict[str, int] = {}
    for a in alerts:
        by_label[a.get("label", "")] = by_label.get(a.get("label", ""), 0) + 1
    return {
        "hours": round(hours, 3),
        "files": len(programme.items),
        "sources": programme.sources(),
        "alerts": len(alerts),
        "alerts_per_hour": round(len(alerts) / hours, 1) if hours else None,
        "alerts_by_label": by_label,
        "alerts_by_source": {k: v for k, v in by_source.items() if v},
        "paging_seconds_flagged_share": round(flagged / max(programme.seconds, 1e-9), 4),
    }


class _OneThread(OnnxModel):
    """The engine's model on one ONNX Runtime thread: evaluation runs beside training."""

    def __init__(
        self, name: str, model_dir: str | Path | None = None, providers: list[str] | None = None
    ) -> None:
        super().__init__(name, model_dir, providers, threads=1)


class _OneThreadCache(ModelCache):
    def model(self, name: str, kind: type[Any] = OnnxModel) -> Any:
        return super().model(name, _OneThread if kind is OnnxModel else kind)


def default_out_dir() -> Path:
    return Path.home() / ".cache" / "vqm" / "training" / MODEL_NAME


def main(argv: list[str] | None = None) -> int:
    """``vqm eval audio_artifact``: score the shipped model on the held-out split."""
    import argparse

    parser = argparse.ArgumentParser(prog="vqm eval audio_artifact")
    parser.add_argument("command", nargs="?", default="eval", choices=["eval", "calibrate"])
    parser.add_argument("--models", type=Path, default=REPO_MODELS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="Store the figures in the card.")
    args = parser.parse_args(argv)
    if args.command == "calibrate":
        print(json.dumps(calibrate(args.models, None, args.seed), indent=2))
        return 0
    figures = {
        "synthetic_heldout": evaluate(args.models, None, args.seed, write=args.write),
        "real_test": real_evaluate(args.models, None, args.seed),
    }
    if args.write:
        write_real_metrics(args.models, figures["real_test"])
    print(json.dumps(figures, indent=2))
    return 0


def write_real_metrics(models_dir: Path, metrics: dict[str, Any]) -> None:
    """The real-programme figures into the card, beside the synthetic held-out ones."""
    card_path = Path(models_dir) / f"{MODEL_NAME}.json"
    card = json.loads(card_path.read_text())
    card["real_metrics"] = metrics
    write_card(
        card_path, {k: v for k, v in card.items() if k not in ("file", "file_size", "sha256")}
    )
